"""The local batch engine: one output row per input row, in order, whatever the row holds."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from repairllm.batch import (
    COLUMNS,
    ERROR_KINDS,
    BatchInterrupted,
    Repairer,
    RepairSpec,
    repair_file,
    repair_iter,
)
from repairllm.errors import ConfigError, SchemaError

pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")

PERSON = {
    "type": "object",
    "properties": {"name": {"type": "string"}, "age": {"type": "integer"}},
    "required": ["name", "age"],
}

# (id, the JSONL line's bytes, the error kind expected: None when the row repairs)
LINES: list[tuple[str, bytes, str | None]] = [
    ("valid", b'{"reply": "{\\"name\\": \\"Ann\\", \\"age\\": 31}"}', None),
    ("python-dict", b"{\"reply\": \"{'name': 'Bo', 'age': '40',}\"}", None),
    ("fenced", b'{"reply": "Sure!\\n```json\\n{\\"name\\": \\"Cy\\", \\"age\\": 2}\\n```"}', None),
    ("empty", b'{"reply": ""}', "Empty"),
    ("whitespace", b'{"reply": "  \\n "}', "Empty"),
    ("null", b'{"reply": null}', "Empty"),
    ("no-json", b'{"reply": "I cannot help with that."}', "NoJSONFound"),
    ("invalid", b'{"reply": "{\\"name\\": \\"Di\\", \\"age\\": \\"old\\"}"}', "RepairFailed"),
    ("binary-garbage", b"\xff\xfe\x00\x81garbage\x9c", "InvalidInput"),
    ("control-garbage", b'{"reply": "\\u0000\\u0001\\u0002\\u0003"}', "NoJSONFound"),
    ("not-json-line", b"{reply: oops", "BadRecord"),
    ("not-an-object", b"[1, 2, 3]", "BadRecord"),
    ("missing-field", b'{"answer": "{}"}', "MissingField"),
    ("number-field", b'{"reply": 42}', "InvalidInput"),
]


def _jsonl(path: Path, lines: list[bytes]) -> Path:
    path.write_bytes(b"".join(line + b"\n" for line in lines))
    return path


def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


@pytest.mark.parametrize(("line", "kind"), [(x[1], x[2]) for x in LINES], ids=[x[0] for x in LINES])
def test_every_kind_of_row_gives_one_row_with_its_error(
    tmp_path: Path, line: bytes, kind: str | None
) -> None:
    source = _jsonl(tmp_path / "in.jsonl", [b'{"reply": "{}"}', line, b'{"reply": "[]"}'])
    summary = repair_file(source, tmp_path / "out.jsonl", RepairSpec(field="reply", schema=PERSON))
    rows = _read_jsonl(tmp_path / "out.jsonl")
    assert [r["row"] for r in rows] == [0, 1, 2]
    assert summary.rows == 3
    row = rows[1]
    assert list(row) == list(COLUMNS)
    assert row["error"] == kind
    assert row["ok"] is (kind is None)
    if kind is None:
        assert set(row["value"]) == {"name", "age"}
    else:
        assert row["value"] is None
        assert row["message"]
        assert kind in ERROR_KINDS


def test_a_failed_repair_keeps_the_best_candidates_issues_and_ledger(tmp_path: Path) -> None:
    line = b"{\"reply\": \"{'name': 'Di', 'age': 'old'}\"}"
    repair_file(
        _jsonl(tmp_path / "in.jsonl", [line]),
        tmp_path / "out.jsonl",
        RepairSpec(field="reply", schema=PERSON),
    )
    (row,) = _read_jsonl(tmp_path / "out.jsonl")
    assert row["error"] == "RepairFailed"
    assert [i["path"] for i in row["issues"]] == ["/age"]
    assert "single_quotes" in row["rules"]
    assert row["cost"] == pytest.approx(sum(f["cost"] for f in row["ledger"]))


def test_jsonl_csv_and_parquet_inputs_give_the_same_rows(tmp_path: Path) -> None:
    replies = ["{'name': 'Ann', 'age': 31}", "", "no json", '{"name": "Bo", "age": "7"}']
    ids = ["a", "b", "c", "d"]
    jsonl = _jsonl(
        tmp_path / "in.jsonl",
        [json.dumps({"key": k, "reply": r}).encode() for k, r in zip(ids, replies, strict=True)],
    )
    with (tmp_path / "in.csv").open("w", newline="", encoding="utf-8") as file:
        writer = csv.writer(file)
        writer.writerow(["key", "reply"])
        writer.writerows(zip(ids, replies, strict=True))
    pq.write_table(pa.table({"key": ids, "reply": replies}), tmp_path / "in.parquet")
    spec = RepairSpec(field="reply", id_field="key", schema=PERSON)
    outputs = []
    for name in ("in.jsonl", "in.csv", "in.parquet"):
        out = tmp_path / f"{name}.out.jsonl"
        repair_file(tmp_path / name if name != "in.jsonl" else jsonl, out, spec)
        outputs.append(out.read_bytes())
    assert outputs[0] == outputs[1] == outputs[2]
    rows = _read_jsonl(tmp_path / "in.jsonl.out.jsonl")
    assert [r["id"] for r in rows] == ids
    assert [r["error"] for r in rows] == [None, "Empty", "NoJSONFound", None]


def test_csv_bytes_that_are_not_utf8_are_that_rows_error(tmp_path: Path) -> None:
    source = tmp_path / "in.csv"
    source.write_bytes(b'reply\n"{""a"": 1}"\n\xff\xfe\x00zz\n[2]\n')
    repair_file(source, tmp_path / "out.jsonl", RepairSpec(field="reply"))
    rows = _read_jsonl(tmp_path / "out.jsonl")
    assert [r["error"] for r in rows] == [None, "InvalidInput", None]
    assert [r["value"] for r in rows] == [{"a": 1}, None, [2]]


def test_parquet_binary_column_with_garbage(tmp_path: Path) -> None:
    table = pa.table({"reply": pa.array([b'{"a": 1}', b"\xff\xfe", None, b""], pa.binary())})
    pq.write_table(table, tmp_path / "in.parquet")
    repair_file(tmp_path / "in.parquet", tmp_path / "out.parquet", RepairSpec(field="reply"))
    out = pq.read_table(tmp_path / "out.parquet")
    assert out.schema.names == list(COLUMNS)
    assert out.column("error").to_pylist() == [None, "InvalidInput", "Empty", "Empty"]
    assert out.column("value").to_pylist() == ['{"a":1}', None, None, None]


def test_order_and_count_survive_chunks_and_processes(tmp_path: Path) -> None:
    lines = [
        json.dumps({"text": f"{{'n': {i},}}" if i % 7 else "nothing"}).encode() for i in range(500)
    ]
    source = _jsonl(tmp_path / "in.jsonl", lines)
    one = tmp_path / "one.jsonl"
    two = tmp_path / "two.jsonl"
    repair_file(source, one, RepairSpec(), chunk_rows=1000)
    summary = repair_file(source, two, RepairSpec(), chunk_rows=13, jobs=2)
    assert one.read_bytes() == two.read_bytes()
    rows = _read_jsonl(two)
    assert [r["row"] for r in rows] == list(range(500))
    assert [r["value"]["n"] for r in rows if r["ok"]] == [i for i in range(500) if i % 7]
    assert summary.rows == 500
    assert summary.by_error == {"NoJSONFound": 72}
    assert summary.by_rule["single_quotes"] == 500 - 72


def test_a_schema_per_row_by_name_or_inline(tmp_path: Path) -> None:
    numbers = {"type": "array", "items": {"type": "integer"}}
    lines = [
        {"kind": "person", "reply": "{'name': 'Ann', 'age': '31'}"},
        {"kind": "numbers", "reply": "[1, '2', 3]"},
        {"kind": "nope", "reply": "[1]"},
        {"kind": json.dumps({"type": "string"}), "reply": '"hi"'},
        {"kind": {"type": "integer"}, "reply": "7"},
        {"kind": None, "reply": "{'free': true}"},
    ]
    source = _jsonl(tmp_path / "in.jsonl", [json.dumps(x).encode() for x in lines])
    spec = RepairSpec(
        field="reply", schema_field="kind", schemas={"person": PERSON, "numbers": numbers}
    )
    repair_file(source, tmp_path / "out.jsonl", spec)
    rows = _read_jsonl(tmp_path / "out.jsonl")
    assert [r["value"] for r in rows] == [
        {"name": "Ann", "age": 31},
        [1, 2, 3],
        None,
        "hi",
        7,
        {"free": True},
    ]
    assert rows[2]["error"] == "SchemaError"
    assert "nope" in rows[2]["message"]


def test_a_bad_schema_for_the_whole_run_fails_before_any_file_is_written(tmp_path: Path) -> None:
    source = _jsonl(tmp_path / "in.jsonl", [b'{"text": "{}"}'])
    with pytest.raises(SchemaError):
        repair_file(source, tmp_path / "out.jsonl", RepairSpec(schema={"type": 12}))
    assert not (tmp_path / "out.jsonl").exists()


def test_repair_iter_takes_texts_and_mappings() -> None:
    rows = list(repair_iter(["{'a': 1}", {"text": "[1,]"}, "nope"]))
    assert [r["value"] for r in rows] == ['{"a":1}', "[1]", None]
    assert [r["row"] for r in rows] == [0, 1, 2]
    assert rows[2]["error"] == "NoJSONFound"


@settings(max_examples=150, deadline=None)
@given(st.binary(max_size=200))
def test_no_line_makes_a_row_raise(line: bytes) -> None:
    row = Repairer(RepairSpec(schema=PERSON)).row(3, line)
    assert row["row"] == 3
    assert row["ok"] or row["error"] in ERROR_KINDS
    assert row["error"] != "InternalError", row["message"]


@settings(max_examples=100, deadline=None)
@given(st.text(max_size=200))
def test_no_reply_makes_a_row_raise(text: str) -> None:
    row = Repairer(RepairSpec()).row(0, {"text": text})
    assert row["ok"] or row["error"] in ERROR_KINDS
    assert row["error"] != "InternalError", row["message"]


@pytest.mark.parametrize("fmt", ["jsonl", "parquet"])
def test_an_interrupted_run_leaves_a_valid_output_and_resumes_to_the_same_result(
    tmp_path: Path, fmt: str
) -> None:
    lines = [json.dumps({"text": f"[{i}, 'x',]"}).encode() for i in range(300)]
    source = _jsonl(tmp_path / "in.jsonl", lines)
    whole = tmp_path / f"whole.{fmt}"
    repair_file(source, whole, RepairSpec(), chunk_rows=25)
    out = tmp_path / f"out.{fmt}"
    calls = []

    def interrupt(rows: int, progress: int) -> None:
        calls.append(rows)
        if len(calls) == 3:
            raise KeyboardInterrupt

    with pytest.raises(BatchInterrupted) as stopped:
        repair_file(source, out, RepairSpec(), chunk_rows=25, on_progress=interrupt)
    assert stopped.value.rows == 75
    partial = _rows(out, fmt)
    assert [r["row"] for r in partial] == list(range(75))
    with pytest.raises(ConfigError, match="--resume"):
        repair_file(source, out, RepairSpec(), chunk_rows=25)
    with pytest.raises(ConfigError, match="another run"):
        repair_file(source, out, RepairSpec(policy="strict"), chunk_rows=25, resume=True)
    summary = repair_file(source, out, RepairSpec(), chunk_rows=25, resume=True)
    assert summary.rows == 300
    assert summary.resumed_rows == 75
    assert _rows(out, fmt) == _rows(whole, fmt)
    assert not (tmp_path / f"out.{fmt}.resume.json").exists()


def _rows(path: Path, fmt: str) -> list[dict[str, Any]]:
    if fmt == "jsonl":
        return _read_jsonl(path)
    rows: list[dict[str, Any]] = pq.read_table(path).to_pylist()
    return rows


def test_resume_drops_a_half_written_last_line(tmp_path: Path) -> None:
    source = _jsonl(
        tmp_path / "in.jsonl", [json.dumps({"text": f"[{i}]"}).encode() for i in range(40)]
    )
    whole = tmp_path / "whole.jsonl"
    repair_file(source, whole, RepairSpec(), chunk_rows=10)
    out = tmp_path / "out.jsonl"
    with pytest.raises(BatchInterrupted):
        repair_file(source, out, RepairSpec(), chunk_rows=10, on_progress=_stop_after(2))
    with out.open("ab") as file:  # a kill in the middle of a write
        file.write(b'{"row":20,"id":20,"val')
    repair_file(source, out, RepairSpec(), chunk_rows=10, resume=True)
    assert out.read_bytes() == whole.read_bytes()


def _stop_after(chunks: int) -> Any:
    seen = []

    def stop(rows: int, progress: int) -> None:
        seen.append(rows)
        if len(seen) == chunks:
            raise KeyboardInterrupt

    return stop


@pytest.mark.slow
def test_ctrl_c_on_the_command_line_then_resume(tmp_path: Path) -> None:
    """A real SIGINT to `repairllm batch repair`: exit 130, a valid partial file, a resume."""
    replies = [f"Here: {{'id': {i}, 'tags': ['a', 'b',], 'ok': True,}}" for i in range(6_000)]
    source = _jsonl(tmp_path / "in.jsonl", [json.dumps({"text": r}).encode() for r in replies])
    out = tmp_path / "out.parquet"
    command = [sys.executable, "-m", "repairllm", "batch", "repair", str(source), "-o", str(out)]
    command += ["--chunk-rows", "100", "--quiet"]
    process = subprocess.Popen(command, stderr=subprocess.PIPE, text=True)
    point = tmp_path / "out.parquet.resume.json"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and process.poll() is None:
        if point.exists() and json.loads(point.read_text() or "{}").get("rows", 0) >= 500:
            break
        time.sleep(0.05)
    assert process.poll() is None, "the run finished before it could be interrupted"
    os.kill(process.pid, signal.SIGINT)
    _, err = process.communicate(timeout=60)
    assert process.returncode == 130, err
    assert "--resume" in err
    done = pq.read_table(out).column("row").to_pylist()
    assert done == list(range(len(done)))
    assert 500 <= len(done) < 6_000
    summary = json.loads((tmp_path / "out.parquet.summary.json").read_text())
    assert summary["complete"] is False
    assert summary["rows"] == len(done)
    finished = subprocess.run([*command, "--resume"], capture_output=True, text=True, timeout=300)
    assert finished.returncode == 0, finished.stderr
    table = pq.read_table(out)
    assert table.column("row").to_pylist() == list(range(6_000))
    assert all(table.column("ok").to_pylist())
    summary = json.loads((tmp_path / "out.parquet.summary.json").read_text())
    assert (summary["rows"], summary["ok"], summary["resumed_rows"]) == (6_000, 6_000, len(done))


def test_the_command_writes_the_summary_and_prints_it(tmp_path: Path) -> None:
    from repairllm.cli import main

    source = _jsonl(tmp_path / "in.jsonl", [x[1] for x in LINES])
    schema = tmp_path / "person.json"
    schema.write_text(json.dumps(PERSON))
    out = tmp_path / "out.jsonl"
    args = ["batch", "repair", str(source), "-o", str(out), "--field", "reply"]
    code = main([*args, "--schema", str(schema), "--quiet"])
    assert code == 0
    summary = json.loads((tmp_path / "out.jsonl.summary.json").read_text())
    assert summary["rows"] == len(LINES)
    assert summary["ok"] == 3
    expected: dict[str, int] = {}
    for _, _, kind in LINES:
        if kind:
            expected[kind] = expected.get(kind, 0) + 1
    assert summary["by_error"] == expected
    assert summary["by_rule"]["single_quotes"] == 1
    assert summary["mb_per_second"] is not None


def test_the_command_names_a_missing_input(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from repairllm.cli import main

    code = main(["batch", "repair", str(tmp_path / "nope.jsonl"), "-o", str(tmp_path / "o.jsonl")])
    assert code == 1
    assert "cannot read" in capsys.readouterr().err
