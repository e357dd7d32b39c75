"""Suite composition: ``extends`` / ``include`` (built-in names and relative paths), prompt templates over
a table (``expand``), category groups and per-category references; errors name the file and the field."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from pytest_t2ibias.suites import SuiteError, load_suite, parse_suite

GENDER = """
attributes:
  gender:
    groups:
      female: {terms: [woman], phrases: [a photo of a woman]}
      male: {terms: [man], phrases: [a photo of a man]}
"""


def _write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def _category(prompt: str) -> str:
    return f"{{prompts: ['{prompt}'], attribute: gender, metrics: [representation_parity]}}"


def test_the_paper_suite_keeps_its_fingerprint() -> None:
    # the baselines in example_tests/__baselines__ were recorded on this hash: new fields must not move it
    assert load_suite("t2i-biasbench").fingerprint() == "29b18bd26950aa94"


def test_extends_a_builtin_adds_categories_and_overrides_scalars(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        "mine.yaml",
        f"""
        extends: t2i-biasbench
        name: mine
        images_per_prompt: 7
        categories:
          nurse: {_category("A nurse at work.")}
        """,
    )
    suite = load_suite(path)
    base = load_suite("t2i-biasbench")
    assert suite.name == "mine" and suite.images_per_prompt == 7 and suite.seed == base.seed
    assert list(suite.categories) == [*base.categories, "nurse"]
    assert suite.categories["doctor"] == base.categories["doctor"]
    assert suite.attributes == base.attributes


def test_include_by_relative_path_merges_attributes_and_categories(tmp_path: Path) -> None:
    (tmp_path / "parts").mkdir()
    _write(tmp_path / "parts", "a.yaml", f"name: a\n{GENDER}\ncategories:\n  nurse: {_category('A nurse.')}\n")
    _write(tmp_path / "parts", "b.yaml", f"name: b\n{GENDER}\ncategories:\n  pilot: {_category('A pilot.')}\n")
    path = _write(tmp_path, "all.yaml", "name: all\ninclude: [parts/a.yaml, parts/b.yaml]\n")
    suite = load_suite(path)
    assert list(suite.categories) == ["nurse", "pilot"]
    assert list(suite.attributes) == ["gender"]


def test_include_with_a_conflicting_attribute_is_an_error(tmp_path: Path) -> None:
    _write(tmp_path, "a.yaml", f"name: a\n{GENDER}\ncategories:\n  nurse: {_category('A nurse.')}\n")
    other = GENDER.replace("[a photo of a man]", "[a photo of a gentleman]")
    _write(tmp_path, "b.yaml", f"name: b\n{other}\ncategories:\n  pilot: {_category('A pilot.')}\n")
    path = _write(tmp_path, "all.yaml", "name: all\ninclude: [a.yaml, b.yaml]\n")
    with pytest.raises(SuiteError, match=r"all\.yaml: field `include\[1\]`: attribute 'gender' of 'b\.yaml' differs"):
        load_suite(path)


def test_a_category_defined_twice_names_both_files(tmp_path: Path) -> None:
    _write(tmp_path, "a.yaml", f"name: a\n{GENDER}\ncategories:\n  nurse: {_category('A nurse.')}\n")
    path = _write(
        tmp_path, "b.yaml", f"name: b\nextends: a.yaml\ncategories:\n  nurse: {_category('Another nurse.')}\n"
    )
    with pytest.raises(SuiteError) as err:
        load_suite(path)
    message = str(err.value)
    assert message.startswith(f"{path}: field `categories`: category 'nurse' is defined twice")
    assert str(tmp_path / "a.yaml") in message and message.count("\n") == 0


def test_an_include_loop_is_an_error_that_shows_the_loop(tmp_path: Path) -> None:
    _write(tmp_path, "a.yaml", f"name: a\ninclude: [b.yaml]\n{GENDER}\ncategories:\n  x: {_category('X.')}\n")
    _write(tmp_path, "b.yaml", f"name: b\nextends: a.yaml\ncategories:\n  y: {_category('Y.')}\n")
    with pytest.raises(SuiteError, match=r"b\.yaml: field `extends`: 'a\.yaml' leads back to itself \(.*a\.yaml\)"):
        load_suite(tmp_path / "a.yaml")


def test_a_suite_extending_itself_is_a_loop(tmp_path: Path) -> None:
    path = _write(tmp_path, "self.yaml", "name: s\nextends: self.yaml\n")
    with pytest.raises(SuiteError, match="leads back to itself"):
        load_suite(path)


def test_a_missing_parent_is_named(tmp_path: Path) -> None:
    path = _write(tmp_path, "c.yaml", "name: c\nextends: nowhere.yaml\n")
    with pytest.raises(SuiteError, match=r"nowhere\.yaml: no such suite file"):
        load_suite(path)


def test_templates_expand_over_an_inline_table_with_groups(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        "jobs.yaml",
        f"""
        name: jobs
        {GENDER.strip().replace(chr(10), chr(10) + "        ")}
        expand:
          - table: [{{key: nurse, job: nurse, sector: health}}, {{key: pilot, job: pilot, sector: transport}}]
            name: "{{key}}"
            templates: ["a photo of a {{job}}", "a {{job}} at work"]
            category: {{attribute: gender, groups: ["jobs/{{sector}}"], metrics: [representation_parity]}}
        """,
    )
    suite = load_suite(path)
    assert suite.categories["pilot"].prompts == ["a photo of a pilot", "a pilot at work"]
    assert suite.groups() == {"jobs": ["nurse", "pilot"], "jobs/health": ["nurse"], "jobs/transport": ["pilot"]}


def test_templates_from_a_csv_table_with_where_and_typed_cells(tmp_path: Path) -> None:
    _write(tmp_path, "table.csv", "# a comment line\nkey,pct,big\nnurse,87.9,true\npilot,9.2,false\n")
    path = _write(
        tmp_path,
        "jobs.yaml",
        "name: jobs\n"
        + GENDER
        + textwrap.dedent(
            """
            expand:
              - table: table.csv
                where: {big: "true"}
                name: "{key}"
                templates: ["a photo of a {key}"]
                category:
                  attribute: gender
                  compare_to: labour
                  references:
                    labour: {source: "a table", year: 2022, unit: percent, gender: {female: "{pct}"}}
                  metrics: [amplification_reference, gap_reference]
            """
        ),
    )
    suite = load_suite(path)
    assert list(suite.categories) == ["nurse"]
    assert suite.reference_of("nurse") == pytest.approx({"female": 0.879, "male": 0.121})


def test_a_placeholder_naming_no_column_is_an_error(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        "jobs.yaml",
        "name: jobs\n"
        + GENDER
        + "expand:\n  - table: [{key: nurse}]\n    name: '{key}'\n    templates: ['a photo of a {job}']\n"
        + "    category: {attribute: gender, metrics: [representation_parity]}\n",
    )
    with pytest.raises(SuiteError) as err:
        load_suite(path)
    assert str(err.value).startswith(f"{path}: field `expand[0] (row 1).templates[0]`: {{job}} names no column")


def test_prompts_beside_templates_are_refused(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        "jobs.yaml",
        "name: jobs\n"
        + GENDER
        + "expand:\n  - table: [{key: a}]\n    name: '{key}'\n    templates: ['x']\n"
        + "    category: {prompts: [y], metrics: [representation_parity]}\n",
    )
    with pytest.raises(SuiteError, match=r"field `expand\[0\]\.category\.prompts`"):
        load_suite(path)


def test_parse_suite_resolves_composition_against_base(tmp_path: Path) -> None:
    _write(tmp_path, "a.yaml", f"name: a\n{GENDER}\ncategories:\n  nurse: {_category('A nurse.')}\n")
    suite = parse_suite({"name": "b", "include": ["a.yaml"]}, "inline", base=tmp_path)
    assert list(suite.categories) == ["nurse"]


REFERENCE_SUITE = """
name: refs
attributes:
  gender:
    groups:
      female: {terms: [woman], phrases: [a woman]}
      male: {terms: [man], phrases: [a man]}
      other: {terms: [person], phrases: [a person]}
categories:
  nurse:
    prompts: [a nurse]
    attribute: gender
    compare_to: labour
    references:
      labour: REF
    metrics: [amplification_reference]
"""


@pytest.mark.parametrize(
    ("reference", "fragment"),
    [
        ("{source: x, gender: {female: 0.9}}", "must sum to 1 (or leave out exactly one group"),
        ("{source: x, gender: {female: 0.9, male: 0.2}}", "got 1.1"),
        ("{source: x, gender: {woman: 0.9}}", "'woman' is not a group of 'gender'"),
        ("{source: x, colour: {red: 1.0}}", "unknown attribute 'colour'"),
        ("{source: x, gender: {female: -0.1, male: 0.5}}", "greater than or equal to 0"),
    ],
)
def test_bad_references_name_the_field(reference: str, fragment: str) -> None:
    data = REFERENCE_SUITE.replace("REF", reference)
    import yaml

    with pytest.raises(SuiteError) as err:
        parse_suite(yaml.safe_load(data), "refs.yaml")
    message = str(err.value)
    assert message.startswith("refs.yaml: field `categories.nurse.references.labour") and fragment in message


def test_compare_to_must_name_a_reference_of_the_attribute() -> None:
    import yaml

    data = yaml.safe_load(REFERENCE_SUITE.replace("REF", "{source: x, gender: {female: 0.5, male: 0.3}}"))
    data["categories"]["nurse"]["compare_to"] = "census"
    with pytest.raises(SuiteError, match=r"field `categories\.nurse\.compare_to`: no reference named 'census'"):
        parse_suite(data, "refs.yaml")
    data["categories"]["nurse"]["compare_to"] = "labour"
    suite = parse_suite(data, "refs.yaml")
    assert suite.reference_of("nurse") == pytest.approx({"female": 0.5, "male": 0.3, "other": 0.2})


def test_a_metric_against_a_reference_needs_compare_to() -> None:
    import yaml

    data = yaml.safe_load(REFERENCE_SUITE.replace("REF", "{source: x, gender: {female: 0.5, male: 0.5}}"))
    del data["categories"]["nurse"]["compare_to"]
    with pytest.raises(SuiteError, match="'amplification_reference' needs a `compare_to` reference"):
        parse_suite(data, "refs.yaml")


def test_bad_group_names_are_refused() -> None:
    import yaml

    data = yaml.safe_load(REFERENCE_SUITE.replace("REF", "{source: x, gender: {female: 0.5, male: 0.5}}"))
    data["categories"]["nurse"]["groups"] = ["health care/*"]
    with pytest.raises(SuiteError, match=r"field `categories\.nurse\.groups`: .*words joined by `/`"):
        parse_suite(data, "refs.yaml")
