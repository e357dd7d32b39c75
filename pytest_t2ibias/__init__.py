"""pytest-t2ibias: bias regression tests for text-to-image models."""

__version__ = "0.1.0"
