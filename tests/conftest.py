from __future__ import annotations

from pathlib import Path

import pytest

pytest_plugins = ["pytester"]

#: The paper authors' captions and published results, laid beside the repository (never copied in).
REFERENCE_DIR = Path(__file__).resolve().parents[1].parent / "shared" / "t2ibiasbench"


@pytest.fixture(scope="session")
def reference_dir() -> Path:
    if not (REFERENCE_DIR / "captions").is_dir() or not (REFERENCE_DIR / "metrics").is_dir():
        pytest.skip(f"T2I-BiasBench reference data not found at {REFERENCE_DIR}")
    return REFERENCE_DIR


@pytest.fixture(scope="session")
def suite():  # type: ignore[no-untyped-def]
    from pytest_t2ibias.suites import load_suite

    return load_suite("t2i-biasbench")
