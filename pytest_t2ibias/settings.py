"""The plugin's settings, read and checked once.

Every setting is a ``--t2i-*`` option over a ``t2ibias_*`` ini value (the command line wins). The plugin
registers them from :data:`OPTIONS`; ``pytest_configure`` reads them into one frozen :class:`Settings`
(:meth:`Settings.from_config`), which fails with one usage error naming the option and the ini key, before
any test runs. Everything downstream reads the typed value from the session's ``settings``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

import pytest
from pydantic import BaseModel, ConfigDict, ValidationError, ValidationInfo, field_validator

from pytest_t2ibias.masking import mask_credentials

#: (option, ini name, help, default): every setting under one prefix; the command line wins over the ini.
OPTIONS: list[tuple[str, str, str, str | None]] = [
    ("--t2i-model", "t2ibias_model", "Model: diffusers hub id, local pipeline folder, 'tiny' or 'synthetic'.", None),
    (
        "--t2i-scorer",
        "t2ibias_scorer",
        "Scorer: tiny, open_clip:ARCH/PRETRAINED, hf:ID, vqa:ID, captioner:ID, "
        "labels:PATH, synthetic (default: open_clip:ViT-L-14/openai; synthetic for the synthetic model, tiny for "
        "the tiny one).",
        None,
    ),
    (
        "--t2i-scorer-card",
        "t2ibias_scorer_card",
        "Scorer card JSON (t2ibias audit-scorer): correct the metrics for the scorer's errors.",
        None,
    ),
    ("--t2i-revision", "t2ibias_revision", "Hub revision (branch, tag or commit) of the model.", None),
    ("--t2i-suite", "t2ibias_suite", "Prompt suite: a built-in name or a YAML path.", "t2i-biasbench"),
    ("--t2i-images-per-prompt", "t2ibias_images_per_prompt", "Images per prompt (default: the suite's).", None),
    ("--t2i-device", "t2ibias_device", "Device: auto (CUDA when present), cpu, cuda or cuda:N.", "auto"),
    ("--t2i-dtype", "t2ibias_dtype", "Dtype: auto (fp16 on CUDA), fp32, fp16 or bf16.", "auto"),
    ("--t2i-steps", "t2ibias_steps", "Inference steps of the diffusion model.", None),
    ("--t2i-batch-size", "t2ibias_batch_size", "Images per pipeline call.", None),
    (
        "--t2i-cache",
        "t2ibias_cache",
        "Image cache folder or fsspec URL (s3://, gs://, file://); default: .t2ibias_cache in the rootdir; "
        "'none' disables.",
        None,
    ),
    (
        "--t2i-lock-timeout",
        "t2ibias_lock_timeout",
        "Seconds to wait in all for image batches another process (an xdist worker, a second run) is "
        "generating in the same cache, then fail naming the lock and its holder (default 600).",
        "600",
    ),
    ("--t2i-mode", "t2ibias_mode", "Metric mode: strict (default, for gating) or paper.", "strict"),
    (
        "--t2i-thresholds",
        "t2ibias_thresholds",
        "Folder of threshold policies (default: thresholds/ in the rootdir).",
        None,
    ),
    ("--t2i-report", "t2ibias_report", "Write the run's results as JSON to this path.", None),
    (
        "--t2i-html",
        "t2ibias_html",
        "Write a self-contained HTML report (image grids, flips against the baseline) to this path.",
        None,
    ),
    (
        "--t2i-allow-pickle",
        "t2ibias_allow_pickle",
        "Load pickle (.bin) model weights: true or false (default false: safetensors only).",
        "false",
    ),
    (
        "--t2i-label-problems",
        "t2ibias_label_problems",
        "Precomputed labels missing, unplanned or outside the suite's groups: error (default) or warn.",
        "error",
    ),
    (
        "--t2i-unconfigured",
        "t2ibias_unconfigured",
        "What a bias test does when no model is configured: fail (default) or skip.",
        "fail",
    ),
    (
        "--t2i-allow-all-skipped",
        "t2ibias_allow_all_skipped",
        "A run whose bias tests were all skipped passes: true or false (default false: it fails).",
        "false",
    ),
    (
        "--t2i-require-gate",
        "t2ibias_require_gate",
        "Fail a bias test that no assertion helper judged (policy or baseline): true or false (default false).",
        "false",
    ),
]

#: (option, dest, help): the flags of one run, command line only.
FLAGS: list[tuple[str, str, str]] = [
    (
        "--t2i-update-baselines",
        "t2ibias_update",
        "Approve this run's metrics as the baselines (same as --snapshot-update).",
    ),
    (
        "--t2i-force-update",
        "t2ibias_force_update",
        "Allow updating baselines in a CI job (CI, GITHUB_ACTIONS, GITLAB_CI, ... set).",
    ),
    (
        "--t2i-reset-anchor",
        "t2ibias_reset_anchor",
        "When approving, make this run the new anchor (the cumulative allowance counts from it).",
    ),
    (
        "--t2i-prune-baselines",
        "t2ibias_prune",
        "After a full, passing run, delete the baselines no collected test owns.",
    ),
]

#: The baselines folder's name (``snapshot.BASELINE_DIR``, not imported here: that module loads numpy).
BASELINE_DIR = "__baselines__"


def add_options(parser: pytest.Parser) -> None:
    """One option group, every option under ``--t2i-``, each setting also an ini value."""
    group = parser.getgroup("t2ibias", "text-to-image bias tests")
    for option, ini, help_text, default in OPTIONS:
        group.addoption(option, action="store", dest=ini, default=None, help=help_text)
        parser.addini(ini, help_text, default=default)
    for option, dest, help_text in FLAGS:
        group.addoption(option, action="store_true", dest=dest, default=False, help=help_text)


def _flag(ini: str) -> str:
    """``t2ibias_allow_pickle`` -> ``--t2i-allow-pickle``."""
    return "--t2i-" + ini.removeprefix("t2ibias_").replace("_", "-")


#: The settings with a fixed set of values, and how their usage error names the values.
_CHOICES: dict[str, tuple[tuple[str, ...], str]] = {
    "mode": (("paper", "strict"), "'paper' or 'strict'"),
    "label_problems": (("error", "warn"), "error or warn"),
    "unconfigured": (("fail", "skip"), "'fail' or 'skip'"),
}


class Settings(BaseModel):
    """Every setting of a run, typed: the command line, else the ini file, else the default.

    The fields that are checked come first, in the order their errors are reported.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    mode: Literal["paper", "strict"] = "strict"
    allow_pickle: bool = False
    allow_all_skipped: bool = False
    require_gate: bool = False
    label_problems: Literal["error", "warn"] = "error"
    unconfigured: Literal["fail", "skip"] = "fail"
    #: seconds to wait for image batches another process is generating
    lock_timeout: float = 600.0
    images_per_prompt: int | None = None
    steps: int | None = None
    batch_size: int | None = None
    model: str | None = None
    scorer: str | None = None
    scorer_card: str | None = None
    revision: str | None = None
    suite: str = "t2i-biasbench"
    device: str = "auto"
    dtype: str = "auto"
    cache: str | None = None
    thresholds: str | None = None
    report: str | None = None
    html: str | None = None
    #: approving (``--t2i-update-baselines`` or syrupy's ``--snapshot-update``)
    update: bool = False
    force_update: bool = False
    reset_anchor: bool = False
    prune: bool = False

    @field_validator("mode", "label_problems", "unconfigured", mode="before")
    @classmethod
    def _one_of(cls, value: Any, info: ValidationInfo) -> Any:
        allowed, said = _CHOICES[str(info.field_name)]
        if value not in allowed:
            name = f"t2ibias_{info.field_name}"
            raise ValueError(f"t2ibias: {_flag(name)} / {name} must be {said}, got {value!r}")
        return value

    @field_validator("allow_pickle", "allow_all_skipped", "require_gate", mode="before")
    @classmethod
    def _true_or_false(cls, value: Any, info: ValidationInfo) -> Any:
        if isinstance(value, bool):
            return value
        if value not in ("true", "false"):
            name = f"t2ibias_{info.field_name}"
            raise ValueError(f"t2ibias: {_flag(name)} / {name} must be true or false, got {value!r}")
        return value == "true"

    @field_validator("lock_timeout", mode="before")
    @classmethod
    def _seconds(cls, value: Any) -> Any:
        if value is None:  # an empty ini value: the default
            return 600.0
        try:
            seconds = float(value)
        except ValueError:
            seconds = float("nan")
        if not 0 < seconds < float("inf"):
            raise ValueError(
                f"t2ibias: --t2i-lock-timeout / t2ibias_lock_timeout must be a positive number of seconds, "
                f"got {value!r}"
            )
        return seconds

    @field_validator("images_per_prompt", "steps", "batch_size", mode="before")
    @classmethod
    def _count(cls, value: Any, info: ValidationInfo) -> Any:
        if value is None:
            return None
        name = f"t2ibias_{info.field_name}"
        try:
            number = int(value)
        except ValueError:
            raise ValueError(f"t2ibias: {name} must be an integer, got {value!r}") from None
        if not 1 <= number <= 100_000:
            raise ValueError(f"t2ibias: {name} must be between 1 and 100000, got {number}")
        return number

    @field_validator("suite", "device", "dtype", mode="before")
    @classmethod
    def _default_when_empty(cls, value: Any, info: ValidationInfo) -> Any:
        return cls.model_fields[str(info.field_name)].default if value is None else value

    @classmethod
    def from_config(cls, config: pytest.Config) -> Settings:
        """The settings of ``config``'s options and ini values, checked (the output locations and the cache
        against the file system too).

        Raises:
            pytest.UsageError: the first setting that is wrong, naming its option and ini key (masked: a
                location may be a URL with a password).
        """
        values: dict[str, Any] = {ini.removeprefix("t2ibias_"): _raw(config, ini) for _, ini, _, _ in OPTIONS}
        values["update"] = bool(config.getoption("t2ibias_update")) or bool(
            getattr(config.option, "update_snapshots", False)
        )
        for name in ("force_update", "reset_anchor", "prune"):
            values[name] = bool(config.getoption(f"t2ibias_{name}"))
        try:
            try:
                settings = cls.model_validate(values)
            except ValidationError as err:
                raise pytest.UsageError(_first_message(err)) from None
            settings.check_locations(config.rootpath)
        except pytest.UsageError as err:
            raise pytest.UsageError(mask_credentials(str(err))) from None
        return settings

    def rooted(self, value: str, root: Path) -> Path:
        """A path setting: as given when absolute, else relative to the rootdir."""
        return Path(value) if Path(value).is_absolute() else root / value

    def check_locations(self, root: Path) -> None:
        """The report files, the cache folder (or URL) and ``GITHUB_STEP_SUMMARY`` can be used.

        Raises:
            pytest.UsageError: naming the setting and the path.
        """
        for name, kind in (("report", "a file"), ("html", "a file"), ("cache", "a folder")):
            value = getattr(self, name)
            if value is None or value.lower() == "none":
                continue
            if name == "cache" and _is_url(value):
                _check_remote_cache(value)
                continue
            path = self.rooted(value, root)
            what = f"--t2i-{name} / t2ibias_{name}"
            if kind == "a file" and path.is_dir():
                raise pytest.UsageError(f"t2ibias: {what} must be a file, {path} is a folder")
            if kind == "a file":
                check_output_path(path, what)
            if kind == "a folder" and path.exists() and not path.is_dir():
                raise pytest.UsageError(f"t2ibias: --t2i-cache / t2ibias_cache must be a folder, {path} is a file")
        summary = os.environ.get("GITHUB_STEP_SUMMARY")
        if summary:  # appended to, so one inside a baselines folder would corrupt a baseline
            check_output_path(Path(summary), "GITHUB_STEP_SUMMARY")


def _raw(config: pytest.Config, name: str) -> str | None:
    """A setting as given: the command line, else the ini file, else its default (None when empty)."""
    value = config.getoption(name)
    if value is None:
        value = config.getini(name)
    return None if value in (None, "") else str(value)


def _first_message(err: ValidationError) -> str:
    """The message a validator raised for the first wrong setting (pydantic's own wording otherwise)."""
    first = err.errors()[0]
    cause = first.get("ctx", {}).get("error")
    if isinstance(cause, ValueError):
        return str(cause)
    return f"t2ibias: {'.'.join(map(str, first['loc']))}: {first['msg']}"


def check_output_path(path: Path, what: str) -> None:
    """A report's path: never inside a baselines folder (after resolving links: a report written there
    replaces or corrupts an approved baseline), never under a file (it could not be written at all)."""
    resolved = path.resolve()
    if BASELINE_DIR in resolved.parts:
        raise pytest.UsageError(
            f"t2ibias: {what}: {path}{f' (resolved {resolved})' if resolved != path else ''} is inside a "
            f"baselines folder ({BASELINE_DIR}); write reports elsewhere"
        )
    parent = next((p for p in resolved.parents if p.exists()), None)
    if parent is not None and not parent.is_dir():
        raise pytest.UsageError(f"t2ibias: {what}: {path} cannot be written, {parent} is a file, not a folder")


def _is_url(value: str) -> bool:
    from pytest_t2ibias.generate.storage import is_url

    return is_url(value)


def _check_remote_cache(url: str) -> None:
    """An fsspec URL cache must open (fsspec and its filesystem installed); credentials masked."""
    from pytest_t2ibias.generate.storage import CacheStorageError, RemoteStore

    try:
        RemoteStore(url)
    except CacheStorageError as err:
        raise pytest.UsageError(f"t2ibias: --t2i-cache / t2ibias_cache: {err}") from None
