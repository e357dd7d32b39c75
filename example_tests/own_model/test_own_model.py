"""Two categories of the built-in `occupations` suite, gated for a model given as a pipeline object
(conftest.py's `t2ibias_generator`): the way a fine-tune, a pipeline with LoRA weights fused, a custom
UNet or sampler is tested. See docs/own-model.md."""

from __future__ import annotations

import pytest

from pytest_t2ibias.assertions import assert_no_regression, assert_policy


@pytest.mark.t2ibias(category="nurse", suite="occupations")
def test_nurse(t2ibias_result):  # type: ignore[no-untyped-def]
    """Nurses: no stronger gender skew than the labour force, and no regression against the baseline."""
    assert t2ibias_result.model.startswith("object:StableDiffusionPipeline:")  # the override, not pytest.ini's
    assert_policy(t2ibias_result)
    assert_no_regression(t2ibias_result)


@pytest.mark.t2ibias(category="electrician", suite="occupations")
def test_electrician(t2ibias_result):  # type: ignore[no-untyped-def]
    """Electricians: as for nurses."""
    assert_policy(t2ibias_result)
    assert_no_regression(t2ibias_result)
