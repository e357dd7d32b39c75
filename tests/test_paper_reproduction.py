"""Paper mode reproduces every published number of the T2I-BiasBench results files.

The results files round values to 4 decimals and distributions to 3; each comparison rounds ours the
same way and asserts agreement to 1e-4 (every one of the 57 rows per model, distributions included).
"""

from __future__ import annotations

import ast
import csv
import json
import re
from pathlib import Path

import pytest

from pytest_t2ibias.cli import main
from pytest_t2ibias.replay import replay

MODELS = {
    "sd": ("captions/SD.csv", "metrics/bias_metrics_results_sd.csv"),
    "gemini": ("captions/Gemini.csv", "metrics/bias_metrics_results_Gemini.csv"),
}

# Published row names -> metric ids (first matching prefix wins).
ROW_IDS = [
    ("Representation Parity", "representation_parity"),
    ("Animal Type Distribution", "representation_parity"),
    ("Insect Type Distribution", "representation_parity"),
    ("Skin Tone Distribution", "representation_parity"),
    ("Parity Diff", "parity_difference"),
    ("Bias Amplification", "bias_amplification"),
    ("Stereotype Amplification (Male Dominance)", "male_share"),
    ("KL Divergence", "kl_divergence"),
    ("CAS - ", "cas"),
    ("GMR - ", "gmr"),
    ("IEMR - ", "iemr"),
    ("Hallucination Score", "hallucination"),
    ("Vendi Score", "vendi"),
    ("CLIP Proxy Score", "clip_proxy"),
    ("Cultural Accuracy Ratio", "car"),
    ("Unique ", "unique_count"),
    ("Puzzle Accuracy Ratio", "puzzle_ratio"),
    ("Laboratory Context Ratio", "lab_ratio"),
    ("Morning Light Accuracy Ratio", "morning_light_ratio"),
    (">>> COMPOSITE", "composite"),
]
ENTROPY_ROW = re.compile(r"Shannon Entropy")
NORMALISED = re.compile(r"Normalised=(-?[0-9.]+)")


def published_rows(path: Path) -> list[tuple[str, str, object]]:
    """(category, metric id, value) for every published row; entropy rows also give the normalised one."""
    rows: list[tuple[str, str, object]] = []
    with path.open(newline="", encoding="utf-8") as handle:
        for record in csv.DictReader(handle):
            category = record["Prompt"].strip().lower()
            name, raw = record["Metric"].strip(), record["Value"].strip()
            value: object = ast.literal_eval(raw) if raw.startswith("{") else float(raw)
            if ENTROPY_ROW.search(name):
                rows.append((category, "entropy", value))
                normalised = NORMALISED.search(record["Note"])
                assert normalised, f"entropy row without Normalised= note: {record}"
                rows.append((category, "entropy_normalized", float(normalised.group(1))))
                continue
            metric_id = next((mid for prefix, mid in ROW_IDS if name.startswith(prefix)), None)
            assert metric_id is not None, f"unmapped published row {name!r}"
            rows.append((category, metric_id, value))
    return rows


def reproduced(reference_dir: Path, suite, model: str):  # type: ignore[no-untyped-def]
    captions, _ = MODELS[model]
    return replay(reference_dir / captions, suite, mode="paper")


@pytest.mark.parametrize("model", sorted(MODELS))
class TestPublishedResults:
    def test_every_row_is_mapped(self, reference_dir: Path, model: str) -> None:
        rows = published_rows(reference_dir / MODELS[model][1])
        entropy_rows = sum(1 for _, mid, _ in rows if mid == "entropy")
        assert len(rows) - entropy_rows == 57  # 57 published rows; each entropy row holds two values

    def test_scalars_match_to_1e4(self, reference_dir: Path, suite, model: str) -> None:  # type: ignore[no-untyped-def]
        result = reproduced(reference_dir, suite, model)
        mismatches = []
        for category, metric_id, published in published_rows(reference_dir / MODELS[model][1]):
            if isinstance(published, dict):
                continue
            ours = result.categories[category].metrics[metric_id]
            assert isinstance(ours, float), (category, metric_id, ours)
            if abs(round(ours, 4) - published) > 1e-4:
                mismatches.append(f"{category}.{metric_id}: ours {ours:.6f}, published {published}")
        assert not mismatches, "\n".join(mismatches)

    def test_distributions_match_to_1e4(self, reference_dir: Path, suite, model: str) -> None:  # type: ignore[no-untyped-def]
        result = reproduced(reference_dir, suite, model)
        checked = 0
        for category, metric_id, published in published_rows(reference_dir / MODELS[model][1]):
            if not isinstance(published, dict):
                continue
            ours = result.categories[category].metrics[metric_id]
            assert isinstance(ours, dict)
            assert set(ours) == set(published), (category, ours, published)
            for group, share in published.items():
                assert abs(round(ours[group], 3) - share) <= 1e-4, (category, group, ours[group], share)
            checked += 1
        assert checked == 5

    def test_no_extra_metrics(self, reference_dir: Path, suite, model: str) -> None:  # type: ignore[no-untyped-def]
        """A metric that does not apply to a category is absent, so published and ours list the same ids."""
        result = reproduced(reference_dir, suite, model)
        published: dict[str, set[str]] = {}
        for category, metric_id, _ in published_rows(reference_dir / MODELS[model][1]):
            published.setdefault(category, set()).add(metric_id)
        assert {c: set(m.metrics) for c, m in result.categories.items()} == published


def test_sd_category_sizes(reference_dir: Path, suite) -> None:  # type: ignore[no-untyped-def]
    result = reproduced(reference_dir, suite, "sd")
    assert {c: m.n for c, m in result.categories.items()} == {
        "beauty": 100,
        "doctor": 100,
        "culture": 96,
        "animal": 100,
        "nature": 100,
    }
    assert result.unmatched_rows == 0 and result.unmatched_images == []


def test_cli_json_reproduces_gemini(reference_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The command, not only the library: JSON output carries the published numbers, unrounded."""
    code = main(["replay", str(reference_dir / "captions/Gemini.csv"), "--format", "json", "--model-name", "GEMINI"])
    assert code == 0
    out = json.loads(capsys.readouterr().out)
    assert out["model"] == "GEMINI" and out["mode"] == "paper"
    doctor = out["categories"]["doctor"]
    assert doctor["n"] == 15
    assert doctor["metrics"]["representation_parity"] == {"female": 1.0}
    assert doctor["metrics"]["composite"] == 1.0
    entropy = out["categories"]["beauty"]["metrics"]["entropy"]
    assert abs(entropy - 1.9086) < 1e-4
    assert entropy != round(entropy, 4)  # unrounded in JSON
