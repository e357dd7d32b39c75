"""Deprecated: use :mod:`pytest_t2ibias._io` (kept for one release)."""

from pytest_t2ibias._io import write_bytes_atomic, write_text_atomic

__all__ = ["write_bytes_atomic", "write_text_atomic"]
