"""Credentials never reach a log, an error, a report or the terminal (issue 21, item 6).

One table of secret shapes through :func:`~pytest_t2ibias.masking.mask_credentials`: the secret is gone, the
host, bucket and path stay. Then the paths a user-given location travels: the plugin's and the CLI's
errors, the CLI's argparse errors, the results JSON.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from pytest_t2ibias.masking import mask_credentials

#: (text, the secret it must not show, the parts it must keep).
SHAPES: list[tuple[str, str, tuple[str, ...]]] = [
    ("https://user:hunter2@host/model", "hunter2", ("https://", "host/model")),
    ("hf://tok3n@hub/org/model", "tok3n", ("hub/org/model",)),
    ("s3://AKIAEXAMPLE:wJal/K7MDENG@bucket/c", "K7MDENG", ("s3://", "bucket/c")),
    ("s3://AKIAEXAMPLE:wJal/K7MDENG@bucket/c", "AKIAEXAMPLE", ("bucket/c",)),
    ("https://u:pa#ssw0rd@host/m", "ssw0rd", ("host/m",)),
    ("https://u:pa?ssw0rd@host/m?rev=2", "ssw0rd", ("host/m", "rev=2")),
    ("s3://key:p@ss@bucket/x", "p@ss", ("bucket/x",)),
    ("gs://u:a/b?c#d@bucket/path/f.png", "a/b?c#d", ("bucket/path/f.png",)),
    (
        "https://b.s3.amazonaws.com/k?X-Amz-Signature=5ig5ig&X-Amz-Date=1",
        "5ig5ig",
        ("b.s3.amazonaws.com/k", "X-Amz-Date=1"),
    ),
    ("https://b.s3.amazonaws.com/k?X-Amz-Security-Token=FwoGZX", "FwoGZX", ("b.s3.amazonaws.com/k",)),
    ("https://b.s3.amazonaws.com/k?X-Amz-Credential=AKIA%2F2026%2Fs3", "AKIA%2F2026", ("b.s3.amazonaws.com/k",)),
    ("https://storage.googleapis.com/b/o?X-Goog-Signature=a1b2c3", "a1b2c3", ("storage.googleapis.com/b/o",)),
    ("https://storage.googleapis.com/b/o?X-Goog-Credential=sa%40p.iam", "sa%40p.iam", ("storage.googleapis.com/b/o",)),
    (
        "https://acct.blob.core.windows.net/c/b?sv=2024&sig=AzS1g%3D",
        "AzS1g",
        ("acct.blob.core.windows.net/c/b", "sv=2024"),
    ),
    ("https://host/m?token=t0k3n&x=1", "t0k3n", ("host/m", "x=1")),
    ("https://host/oauth?client_id=app&client_secret=cl1ent", "cl1ent", ("host/oauth", "client_id=app")),
    ("https://gitlab.example/api?private_token=pr1vate", "pr1vate", ("gitlab.example/api",)),
    ("https://host/x?api-key=ap1key", "ap1key", ("host/x",)),
    ("https://host/x?apiKey=ap1key2", "ap1key2", ("host/x",)),
    ("https://host/x?secret_key=s3cr3tk", "s3cr3tk", ("host/x",)),
    ("https://host/x?access_token=acc3ss", "acc3ss", ("host/x",)),
    ("https://host/x?user=ann&password=passw0rd", "passw0rd", ("host/x", "user=ann")),
    ("https://host/x?auth=aUth0", "aUth0", ("host/x",)),
    ("https://host/cb#access_token=fr4gment&state=s", "fr4gment", ("host/cb", "state=s")),
    ("cannot load model 'https://u:hunter2@host/m': 401", "hunter2", ("host/m", "cannot load model", ": 401")),
    ('{"model": "s3://AK:wJal/K7@bucket/m", "n": 3}', "wJal/K7", ('"n": 3', "bucket/m")),
]


@pytest.mark.parametrize(("text", "secret", "kept"), SHAPES, ids=[f"{i}" for i in range(len(SHAPES))])
def test_no_secret_shape_survives_masking(text: str, secret: str, kept: tuple[str, ...]) -> None:
    masked = mask_credentials(text)
    assert secret not in masked, masked
    assert "***" in masked
    for part in kept:
        assert part in masked, (part, masked)


@pytest.mark.parametrize(
    "text",
    [
        "https://host/path/user@example.com",  # an @ in the path is not user info
        "https://host:8080/a/b?rev=main&design=x&monkey=1",  # ports, and names that only contain "sig"/"key"
        "no url here: a@b.c token=abc",
        "s3://bucket/prefix/file.png",
    ],
)
def test_text_without_credentials_is_unchanged(text: str) -> None:
    assert mask_credentials(text) == text


@pytest.mark.parametrize(
    ("name", "secret"),
    [
        *[(name, True) for name in ("X-Amz-Signature", "sessionToken", "PWD", "x_goog_credential")],
        *[(name, False) for name in ("rev", "keyword", "signal", "author", "tokens_used")],
    ],
)
def test_secret_parameter_names(name: str, secret: bool) -> None:
    from pytest_t2ibias.masking import secret_parameter

    assert secret_parameter(name) is secret


def _t2ibias(*args: str) -> subprocess.CompletedProcess[str]:
    code = "import sys; from pytest_t2ibias.cli import main; sys.exit(main())"
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=120)


def test_cli_generate_never_prints_the_model_password() -> None:
    done = _t2ibias("generate", "--model", "https://u:hunter2@host/m")
    assert done.returncode == 1
    assert "hunter2" not in done.stdout + done.stderr
    assert "model spec 'https://***@host/m' matches no known prefix" in done.stderr


def test_cli_usage_errors_never_print_a_password() -> None:
    done = _t2ibias("generate", "--model", "tiny", "--dtype", "https://u:hunter2@host/m")
    assert done.returncode == 2
    assert "hunter2" not in done.stdout + done.stderr and "--dtype" in done.stderr


def test_cli_evaluate_masks_the_scorer_card_location(tmp_path: pytest.TempPathFactory) -> None:
    done = _t2ibias(
        "evaluate", "--model", "synthetic", "--scorer", "synthetic", "--no-cache", "--category", "doctor",
        "--images-per-prompt", "1", "--scorer-card", "https://u:hunter2@host/card.json?sig=s1gn",
    )  # fmt: skip
    assert done.returncode == 1, done.stderr
    assert "hunter2" not in done.stderr + done.stdout and "s1gn" not in done.stderr + done.stdout
    assert "host/card.json" in done.stderr


def test_plugin_never_prints_the_model_password(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        "import pytest\n\n@pytest.mark.t2ibias(category='doctor')\ndef test_doctor(t2ibias_result):\n    pass\n"
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--t2i-model=https://u:hunter2@host/m")
    text = result.stdout.str() + result.stderr.str()
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    assert "hunter2" not in text
    assert "https://***@host/m" in text


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("--t2i-suite", "https://u:hunter2@host/suite.yaml"),
        ("--t2i-scorer-card", "https://u:hunter2@host/card.json"),
        ("--t2i-thresholds", "https://u:hunter2@host/thresholds"),
    ],
)
def test_plugin_usage_errors_never_print_a_password(pytester: pytest.Pytester, option: str, value: str) -> None:
    pytester.makepyfile("def test_x():\n    pass\n")
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--t2i-model=synthetic", f"{option}={value}")
    text = result.stdout.str() + result.stderr.str()
    assert result.ret == pytest.ExitCode.USAGE_ERROR, text
    assert "hunter2" not in text


def test_the_results_json_masks_every_location() -> None:
    from pytest_t2ibias.results import RunResult

    run = RunResult(model="s3://AKIA:wJal/K7@bucket/m?X-Amz-Signature=abc", scorer="hf:https://u:hunter2@h/c")
    text = run.to_json()
    assert "wJal" not in text and "hunter2" not in text and "X-Amz-Signature=***" in text
    assert json.loads(text)["model"] == "s3://***@bucket/m?X-Amz-Signature=***"
