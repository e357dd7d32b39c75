"""The settings are read once, into one frozen ``Settings`` (issue 25): the command line over the ini,
typed, and a wrong value is one usage error naming the option and the ini key."""

from __future__ import annotations

import pydantic
import pytest

from pytest_t2ibias.settings import OPTIONS, Settings


def test_the_defaults_are_the_ini_defaults(pytester: pytest.Pytester) -> None:
    settings = Settings.from_config(pytester.parseconfig())
    assert settings == Settings()
    assert (settings.mode, settings.suite, settings.device, settings.lock_timeout) == (
        "strict",
        "t2i-biasbench",
        "auto",
        600.0,
    )
    assert settings.model is None and settings.images_per_prompt is None and not settings.allow_pickle


def test_the_command_line_wins_over_the_ini_and_values_are_typed(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\nt2ibias_mode = paper\nt2ibias_steps = 4\nt2ibias_require_gate = true\n")
    settings = Settings.from_config(pytester.parseconfig("--t2i-mode=strict", "--t2i-images-per-prompt=8"))
    assert (settings.mode, settings.steps, settings.images_per_prompt, settings.require_gate) == ("strict", 4, 8, True)


def test_settings_are_frozen() -> None:
    with pytest.raises(pydantic.ValidationError):
        Settings().mode = "paper"  # type: ignore[misc]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--t2i-mode=fast"], "t2ibias: --t2i-mode / t2ibias_mode must be 'paper' or 'strict', got 'fast'"),
        (
            ["--t2i-allow-pickle=yes"],
            "t2ibias: --t2i-allow-pickle / t2ibias_allow_pickle must be true or false, got 'yes'",
        ),
        (
            ["--t2i-label-problems=x"],
            "t2ibias: --t2i-label-problems / t2ibias_label_problems must be error or warn, got 'x'",
        ),
        (
            ["--t2i-unconfigured=x"],
            "t2ibias: --t2i-unconfigured / t2ibias_unconfigured must be 'fail' or 'skip', got 'x'",
        ),
        (
            ["--t2i-lock-timeout=-1"],
            "t2ibias: --t2i-lock-timeout / t2ibias_lock_timeout must be a positive number of seconds, got '-1'",
        ),
        (["--t2i-steps=ten"], "t2ibias: t2ibias_steps must be an integer, got 'ten'"),
        (["--t2i-batch-size=0"], "t2ibias: t2ibias_batch_size must be between 1 and 100000, got 0"),
        # the first wrong setting, in the order they are checked
        (
            ["--t2i-steps=0", "--t2i-mode=fast"],
            "t2ibias: --t2i-mode / t2ibias_mode must be 'paper' or 'strict', got 'fast'",
        ),
    ],
)
def test_a_wrong_setting_is_one_usage_error_naming_it(pytester: pytest.Pytester, args: list[str], message: str) -> None:
    with pytest.raises(pytest.UsageError) as raised:
        Settings.from_config(pytester.parseconfig(*args))
    assert str(raised.value) == message


def test_every_option_is_a_field() -> None:
    assert {ini.removeprefix("t2ibias_") for _, ini, _, _ in OPTIONS} <= set(Settings.model_fields)
