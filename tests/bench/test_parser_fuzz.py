"""Tests for the parser fuzz benchmark (``repairllm bench parser``) and its instance generator."""

from __future__ import annotations

import argparse
import importlib.util
import json
import random
import re
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from jsonschema.validators import validator_for

from repairllm import compile_schema
from repairllm.bench import parser as bench
from repairllm.bench.corrupt import SCHEMA_LEVEL, WRAPPERS
from repairllm.bench.instances import (
    GenerationError,
    TimeLimitExceeded,
    fill_defaults,
    generate,
    make_instances,
    regex_example,
    time_limit,
)

SCHEMAS_DIR = Path(__file__).resolve().parents[2] / "schemas"
SCHEMA_FILES = sorted(SCHEMAS_DIR.glob("*.json"))
RATES = ("exact", "valid", "silently_wrong", "wrong", "error")
SMALL = {"quick": True, "docs_per_operator": 2, "progress": False}


def _load(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


def _counts(report: dict[str, Any]) -> dict[str, Any]:
    """Everything in a report that does not depend on timing."""
    return {
        name: {
            "overall": [tool[key] for key in (*RATES, "n")],
            "operators": {
                op: [cell[key] for key in (*RATES, "n")] for op, cell in tool["operators"].items()
            },
        }
        for name, tool in report["tools"].items()
    }


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], Path]:
    out = tmp_path_factory.mktemp("bench")
    report = bench.run_parser_bench(
        None,
        seed=0,
        out=out,
        tools=["repairllm", "repairllm:strict", "json", "json_repair:schema", "no_such_tool"],
        **SMALL,
    )
    return report, out


# --------------------------------------------------------------------------- #
# The report
# --------------------------------------------------------------------------- #


def test_report_has_the_documented_shape(run: tuple[dict[str, Any], Path]) -> None:
    report, _ = run
    assert set(report) >= {"tools", "skipped", "coverage", "ratios", "config"}
    assert list(report["tools"]) == ["repairllm", "repairllm:strict", "json", "json_repair:schema"]
    operators = report["config"]["operators"]
    assert "trailing_comma+single_quotes" in operators
    assert any(op.count("+") == 2 for op in operators)
    for name, tool in report["tools"].items():
        assert set(tool) >= {*RATES, "n", "mb_per_s", "operators"}
        assert set(tool["operators"]) <= set(operators)
        for cell in [tool, *tool["operators"].values(), *tool["serializations"].values()]:
            assert all(0.0 <= cell[key] <= 1.0 for key in RATES), name
            assert cell["exact"] + cell["wrong"] + cell["error"] == pytest.approx(1.0)
            assert cell["silently_wrong"] <= cell["wrong"] + 1e-9
            assert cell["exact"] - 1e-9 <= cell["valid"] <= cell["exact"] + cell["wrong"] + 1e-9
            assert cell["mb_per_s"] is None or cell["mb_per_s"] > 0
            # Each document's best time counts its first call too, so it is never slower.
            first = cell["mb_per_s_first_call"]
            assert (first is None) is (cell["mb_per_s"] is None)
            assert first is None or cell["mb_per_s"] >= first - 0.002
    definitions = report["config"]["definitions"]
    assert {"exact", "valid", "silently_wrong", "wrong", "error", "mb_per_s_first_call"} <= set(
        definitions
    )


def test_overall_rates_leave_out_clean_and_lossy_documents(
    run: tuple[dict[str, Any], Path],
) -> None:
    report, _ = run
    tool = report["tools"]["repairllm"]
    lossy = set(report["config"]["lossy_operators"])
    assert "truncated" in lossy
    assert "truncated+think_block" in lossy
    damaged = sum(
        cell["n"] for op, cell in tool["operators"].items() if op != "none" and op not in lossy
    )
    assert tool["n"] == damaged
    assert tool["lossy"]["n"] == sum(tool["operators"][op]["n"] for op in lossy)


def test_strict_parser_is_exact_on_clean_json_and_fails_on_damage(
    run: tuple[dict[str, Any], Path],
) -> None:
    report, _ = run
    plain = report["tools"]["json"]
    assert plain["clean_json"]["n"] > 0
    assert plain["clean_json"]["exact"] == 1.0
    # No parser-level operator leaves text that strict JSON reads (as the same or
    # another value); damage only a schema can undo may be valid JSON of another value.
    for operator, rates in plain["operators"].items():
        if operator != "none" and not set(operator.split("+")) & SCHEMA_LEVEL:
            assert rates["error"] == 1.0, operator
    assert report["tools"]["repairllm"]["clean"]["exact"] == 1.0


def test_missing_and_unknown_tools_are_skipped_and_listed(
    run: tuple[dict[str, Any], Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    report, _ = run
    assert "no_such_tool" in report["skipped"]
    assert "unknown tool" in report["skipped"]["no_such_tool"]
    monkeypatch.setitem(sys.modules, "dirtyjson", None)  # makes `import dirtyjson` fail
    tools, skipped = bench.load_tools(["json", "dirtyjson"])
    assert [tool.name for tool in tools] == ["json"]
    assert "pip install dirtyjson" in skipped["dirtyjson"]


def test_files_are_written(run: tuple[dict[str, Any], Path]) -> None:
    report, out = run
    written = json.loads((out / "report.json").read_text(encoding="utf-8"))
    assert _counts(written) == _counts(report)
    table = (out / "report.md").read_text(encoding="utf-8")
    assert all(name in table for name in report["tools"])
    if importlib.util.find_spec("matplotlib") is None:
        assert report["plot"].startswith("skipped: matplotlib is not installed")
    else:
        assert (out / "plot.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_same_seed_gives_the_same_counts(run: tuple[dict[str, Any], Path]) -> None:
    report, _ = run
    tools = list(report["tools"])
    again = bench.run_parser_bench(None, seed=0, out=None, tools=tools, **SMALL)
    assert _counts(again) == _counts(report)

    def untimed(coverage: dict[str, Any]) -> dict[str, Any]:
        return {group: {**cov, "seconds": None} for group, cov in coverage.items()}

    assert untimed(again["coverage"]) == untimed(report["coverage"])


def test_a_different_seed_gives_different_documents() -> None:
    entries = [_entry(SCHEMAS_DIR / "person.json"), _entry(SCHEMAS_DIR / "invoice.json")]
    first, _ = bench.build_docs(entries, 3, seed=1)
    second, _ = bench.build_docs(entries, 3, seed=2)
    assert [d.text for d in first] != [d.text for d in second]


def _entry(path: Path) -> bench.Entry:
    schema = _load(path)
    cls = validator_for(schema)
    check = cls(schema, format_checker=cls.FORMAT_CHECKER)
    made = make_instances(schema, count=3, seed=0)
    return bench.Entry("schemas", path.name, schema, compile_schema(schema), check, made.values)


@pytest.mark.parametrize("combo", bench.COMBINATIONS, ids=["+".join(c) for c in bench.COMBINATIONS])
def test_combinations_damage_json_text_only(combo: tuple[str, ...]) -> None:
    # Operators read JSON text; after single_quotes or a wrapper only wrappers may follow.
    for index, name in enumerate(combo):
        if name == "single_quotes" or name in WRAPPERS:
            assert all(later in WRAPPERS for later in combo[index + 1 :])
    assert 2 <= len(combo) <= 3


def test_documents_keep_ground_truth_honest() -> None:
    entries = [_entry(path) for path in SCHEMA_FILES[:8]]
    docs, _ = bench.build_docs(entries, 3, seed=0)
    combos = {d.operator for d in docs if "+" in d.operator}
    assert len(combos) >= len(bench.COMBINATIONS) - 2
    checks = {id(e): e.check for e in entries}
    for doc in docs:
        try:
            strict = json.loads(doc.text)
        except ValueError:
            continue
        if set(doc.operator.split("+")) & SCHEMA_LEVEL:
            # Valid JSON of another value, which the schema refuses.
            check = checks[id(entries[doc.entry])]
            assert bench.same_value(strict, doc.expected) or not check.is_valid(strict)
            continue
        assert doc.operator == "none"
        assert bench.same_value(strict, doc.expected)


# --------------------------------------------------------------------------- #
# Coverage over a folder of schemas
# --------------------------------------------------------------------------- #


def test_coverage_counts_and_names_each_failure(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "corpus"
    folder.mkdir()
    good = {"type": "object", "properties": {"name": {"type": "string"}}, "required": ["name"]}
    (folder / "good.json").write_text(json.dumps(good), encoding="utf-8")
    (folder / "invalid.json").write_text('{"type": "nonsense"}', encoding="utf-8")
    (folder / "broken.json").write_text("{not json", encoding="utf-8")
    bad_ref = {
        "type": "object",
        "properties": {"a": {"$ref": "#/definitions/missing"}},
        "required": ["a"],
    }
    (folder / "bad_ref.json").write_text(json.dumps(bad_ref), encoding="utf-8")
    (folder / "README.md").write_text("not a schema", encoding="utf-8")
    sub = folder / "more"
    sub.mkdir()
    (sub / "list.json").write_text('{"type": "array", "items": {"type": "integer"}}', "utf-8")

    report = bench.run_parser_bench([folder], builtin=False, tools=["json"], seed=0, **SMALL)
    assert capsys.readouterr() == ("", "")  # the library prints nothing without progress

    top, nested = report["coverage"]["corpus"], report["coverage"]["corpus/more"]
    assert (top["schemas"], top["loaded"], top["compiled"], top["generated"]) == (4, 3, 2, 1)
    assert top["clean_exact"] == 1
    named = {stage: [f["schema"] for f in found] for stage, found in top["failures"].items()}
    assert named["not_json"] == ["broken.json"]
    assert named["schema_error"] == ["invalid.json"]
    assert named["no_instance"] == ["bad_ref.json"]
    assert "missing" in top["failures"]["no_instance"][0]["reason"]
    assert (nested["schemas"], nested["generated"], nested["clean_exact"]) == (1, 1, 1)
    assert report["config"]["schema_groups"]["corpus"]["usable"] == 1


def test_a_missing_or_empty_folder_is_an_error_not_a_crash(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="not a folder"):
        bench.run_parser_bench([tmp_path / "nope"], tools=["json"], **SMALL)
    with pytest.raises(ValueError, match=r"no \*\.json files"):
        bench.run_parser_bench([tmp_path], tools=["json"], **SMALL)


def test_cli_prints_tables_and_writes_files(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cli = argparse.ArgumentParser()
    bench.add_arguments(cli)
    args = cli.parse_args(
        [
            "--quick",
            "--docs",
            "1",
            "--tools",
            "json,orjson",
            "--out",
            str(tmp_path),
            "--no-progress",
        ]
    )
    assert bench.main(args) == 0
    shown = capsys.readouterr().out
    assert "Parser fuzz" in shown
    assert "Coverage per folder" in shown
    assert (tmp_path / "report.json").is_file()


# --------------------------------------------------------------------------- #
# Instances
# --------------------------------------------------------------------------- #


@pytest.mark.parametrize("path", SCHEMA_FILES, ids=[p.stem for p in SCHEMA_FILES])
def test_generated_instances_validate(path: Path) -> None:
    schema = _load(path)
    cls = validator_for(schema)
    check = cls(schema, format_checker=cls.FORMAT_CHECKER)
    made = make_instances(schema, count=4, seed=1, examples=False)
    assert made.sources == ["generator"] * len(made.values)
    assert len(made.values) >= 2
    for value in made.values:
        errors = [e.message for e in check.iter_errors(value)]
        assert errors == []


def test_examples_come_first_and_instances_are_seeded() -> None:
    schema = _load(SCHEMAS_DIR / "person.json")
    made = make_instances(schema, count=len(schema["examples"]) + 2, seed=7)
    assert made.values[: len(schema["examples"])] == schema["examples"]
    assert made.source == "example+generator"
    assert make_instances(schema, count=6, seed=7) == made
    assert make_instances(schema, count=6, seed=8).values != made.values


@pytest.mark.parametrize(
    "pattern",
    [
        r"^[A-Z]{2}-\d{4}$",
        r"^[a-z\d_\.\+-]+@([a-z\d\.-]+\.)+[a-z]+$",
        r"^(foo|bar)+[^abc]?\s\w*$",
        r"^(?:\+?1-)?\d{3}-\d{3}-\d{4}$",
        r"^(ab)c\1$",
    ],
    ids=["fixed", "email", "branches", "phone", "backref"],
)
def test_regex_example_matches(pattern: str) -> None:
    rng = random.Random(0)
    for _ in range(20):
        assert re.search(pattern, regex_example(pattern, rng))


def test_recursion_that_never_ends_is_a_generation_error() -> None:
    schema = {
        "$defs": {
            "node": {
                "type": "object",
                "properties": {"next": {"$ref": "#/$defs/node"}},
                "required": ["next"],
            }
        },
        "$ref": "#/$defs/node",
    }
    with pytest.raises(GenerationError, match="grew past"):
        generate(schema, random.Random(0))
    with pytest.raises(GenerationError):
        make_instances(schema, count=1, seed=0)


def test_unsatisfiable_schema_is_a_generation_error() -> None:
    with pytest.raises(GenerationError):
        make_instances({"type": "integer", "minimum": 5, "maximum": 1}, count=1, seed=0)
    with pytest.raises(GenerationError):
        make_instances(False, count=1, seed=0)


def _spin(seconds: float) -> None:
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        pass


def test_time_limit_interrupts_python_code() -> None:
    started = time.perf_counter()
    with pytest.raises(TimeLimitExceeded), time_limit(0.2):
        _spin(30)
    assert time.perf_counter() - started < 2
    with time_limit(0.2):
        _spin(0.01)  # no alarm left behind after a block that finishes in time
    _spin(0.3)


def test_fill_defaults_fills_only_absent_properties() -> None:
    schema = {
        "type": "object",
        "properties": {
            "unit": {"type": "string", "default": "celsius"},
            "days": {"type": "integer", "default": 1},
            "items": {
                "type": "array",
                "items": {"$ref": "#/$defs/item"},
            },
        },
        "$defs": {"item": {"type": "object", "properties": {"ok": {"default": True}}}},
    }
    value = {"days": 3, "items": [{}, {"ok": False}]}
    filled = fill_defaults(schema, value)
    assert filled == {"days": 3, "unit": "celsius", "items": [{"ok": True}, {"ok": False}]}
    assert value == {"days": 3, "items": [{}, {"ok": False}]}


@pytest.mark.parametrize(
    ("a", "b", "same"),
    [
        (True, 1, False),
        (1, 1.0, True),
        ({"a": [1, None]}, {"a": [1, None]}, True),
        ({"a": 1}, {"a": 1, "b": 2}, False),
        ("1", 1, False),
    ],
    ids=["bool-int", "int-float", "nested", "extra-key", "str-int"],
)
def test_same_value_is_json_equality(a: Any, b: Any, same: bool) -> None:
    assert bench.same_value(a, b) is same


def test_the_tools_are_timed_in_turns_document_by_document() -> None:
    # Timed one tool after the other, a machine's drifting speed moved one tool's
    # figures against another's; in turns, all are timed in the same moments.
    schema = {"type": "object"}
    entry = bench.Entry("g", "s", schema, compile_schema(schema), validator_for(schema)(schema), [])
    docs = [
        bench.Doc(text, json.loads(text), 0, op, "minified", False, len(text))
        for text, op in (('{"a": 1}', bench.CLEAN), ('{"b": 2}', "trailing_comma"))
    ]
    calls: list[tuple[str, str]] = []

    def tool(name: str) -> bench.Tool:
        def call(text: str, _entry: bench.Entry) -> Any:
            calls.append((name, text))
            return json.loads(text)

        return bench.Tool(name, call, "1", (ValueError,))

    runs = [bench.score(tool(n), docs, [entry], timeout=None, advance=lambda _: None) for n in "AB"]
    assert [run.cells[(bench.CLEAN, "minified", "g")].exact for run in runs] == [1, 1]
    calls.clear()
    bench.time_calls(runs, docs, [entry], repeat=3, advance=lambda _: None)
    clean, damaged = docs[0].text, docs[1].text
    # each tool's calls on a document back to back, then the next tool's, then the next document
    expected = [("A", clean)] * bench.CLEAN_CALLS + [("B", clean)] * bench.CLEAN_CALLS
    expected += [("A", damaged)] * 2 + [("B", damaged)] * 2
    assert calls == expected
    for run in runs:
        seconds = sum(tally.seconds for tally in run.cells.values())
        first = sum(tally.first_seconds for tally in run.cells.values())
        assert 0 < seconds <= first  # the best call of each document, at most its first
