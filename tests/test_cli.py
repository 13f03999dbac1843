"""The command line: each subcommand, its output streams and exit codes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import repairllm as rl
from repairllm import registry
from repairllm.backend import Backend, ChatOptions, Completion, Message, Usage
from repairllm.cli import main

SCHEMAS = Path(__file__).resolve().parent.parent / "schemas"
PERSON = str(SCHEMAS / "person.json")


class Answers(Backend):
    """Answers every task by echoing back the JSON it was shown, or a fixed reply."""

    name = "answers"

    def __init__(self, model: str = "answers", reply: str | None = None, **_: Any) -> None:
        self.model = model
        self.reply = reply

    def _chat(self, messages: list[Message], options: ChatOptions) -> Completion:
        text = self.reply if self.reply is not None else "{'full_name': 'Ada', 'age': '36'}"
        return Completion(text, "stop", Usage(10, 5))


@pytest.fixture(autouse=True)
def _answers(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(registry, "_registered", {})
    rl.register("answers", Answers)


def test_repair_reads_stdin_and_writes_json(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr("sys.stdin", __import__("io").StringIO("{'a': 1,}"))
    assert main(["repair", "--ledger"]) == 0
    out, err = capsys.readouterr()
    assert json.loads(out) == {"a": 1}
    assert "single_quotes" in err or "trailing_comma" in err


def test_validate_exit_codes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    good = tmp_path / "good.json"
    good.write_text(json.dumps({"full_name": "Ada", "age": 36}))
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"full_name": "Ada", "age": "old"}))
    assert main(["validate", str(good), "--schema", PERSON]) == 0
    assert json.loads(capsys.readouterr().out) == {"valid": True, "issues": 0}
    assert main(["validate", str(bad), "--schema", PERSON]) == 1
    out, err = capsys.readouterr()
    assert json.loads(out)["valid"] is False
    assert "/age" in err


def test_errors_go_to_stderr_with_exit_1(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", "nope.json", "--schema", PERSON]) == 1
    out, err = capsys.readouterr()
    assert out == ""
    assert err.startswith("repairllm: ")
    assert "nope.json" in err


def test_generate_through_a_registered_backend(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["generate", "--backend", "answers", "--schema", PERSON, "Ada is 36."]) == 0
    value = json.loads(capsys.readouterr().out)
    assert value["full_name"] == "Ada"
    assert value["age"] == 36, "the string '36' was coerced"
    assert value["languages"] == [], "the schema's default was filled in"


def test_generate_failure_is_exit_1(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(
        ["generate", "--backend", "answers", "--set", "reply=no idea", "--schema", PERSON, "x"]
    )
    assert code == 1
    assert "RetriesExhausted" in capsys.readouterr().err


def test_a_set_value_json_cannot_read_stays_text(capsys: pytest.CaptureFixture[str]) -> None:
    # An integer longer than Python converts is not an internal error: the driver gets
    # the text (here the Answers fake takes it as its reply, which holds no JSON).
    digits = "1" * 5000
    code = main(
        ["generate", "--backend", "answers", "--set", f"reply={digits}", "--schema", PERSON, "x"]
    )
    assert code == 1
    err = capsys.readouterr().err
    assert "internal error" not in err
    assert "RetriesExhausted" in err


def test_backends_lists_entry_points(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["backends"]) == 0
    out = capsys.readouterr().out
    assert "repairllm_backends.openai:vllm_preset" in out
    assert "answers" in out


def test_bench_model_and_compare_write_cards(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out_dir = tmp_path / "cards"
    assert main(["bench", "model", "--backend", "answers", "-n", "3", "--out", str(out_dir)]) == 0
    card_path = out_dir / "answers-answers.json"
    card = json.loads(card_path.read_text())
    assert card["summary"]["tasks"] == 3
    assert 0.0 <= card["summary"]["valid_after_retries"] <= 1.0
    assert len(card["results"]) == 3
    assert (out_dir / "answers-answers.md").read_text().startswith("# Report card: answers")
    capsys.readouterr()
    assert main(["bench", "compare", str(card_path), str(card_path), "--out", str(out_dir)]) == 0
    table = capsys.readouterr().out
    assert table.startswith("# Model comparison")
    assert table.count("answers (answers)") == 2
    assert (out_dir / "compare.md").exists()


def test_bench_compare_refuses_a_file_that_is_not_a_card(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    other = tmp_path / "x.json"
    other.write_text("[1, 2]")
    assert main(["bench", "compare", str(other), "--out", str(tmp_path)]) == 1
    assert "not a report card" in capsys.readouterr().err


@pytest.mark.parametrize(
    "argv", [["--help"], ["bench", "--help"], ["bench", "model", "--help"], ["generate", "--help"]]
)
def test_help_everywhere(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 0
    assert "usage: repairllm" in capsys.readouterr().out


# -- the command line never shows a traceback -------------------------------------------


def _cli(args: list[str], stdin: bytes = b"") -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-m", "repairllm", *args], input=stdin, capture_output=True, timeout=120
    )


def _one_clean_line(result: subprocess.CompletedProcess[bytes]) -> str:
    err = result.stderr.decode()
    assert "Traceback" not in err
    assert len(err.strip().splitlines()) == 1, err
    return err


BINARY = bytes(range(256)) * 4


@pytest.mark.parametrize(
    ("args", "stdin", "says"),
    [
        (["repair"], BINARY, "stdin is not UTF-8"),
        (["repair"], b'{"a": 1}\x00\x00', "looks binary"),
        (["repair", "{binary}"], b"", "is not UTF-8"),
        (["repair", "--schema", "{latin1}"], b"{}", "schema file"),
        (["repair", "--schema", "{deep}"], b"{}", "SchemaError"),
        (["repair"], b"1e999", "beyond the range of a double"),
        (["repair"], b"[" + b"7" * 5000 + b"]", "more than 4300 digits"),
        (["validate", "--schema", "{}"], b"[NaN, 1e999]", "not JSON"),
        (["validate", "--schema", "{}"], b"[1e999]", "infinity"),
        (["validate", "--schema", "{}"], b"[" * 100000 + b"]" * 100000, "not JSON"),
        (["validate", "--schema", "{}"], b"[" + b"7" * 5000 + b"]", "4300 digits"),
    ],
    ids=[
        "binary-stdin",
        "nul-in-stdin",
        "binary-file",
        "latin1-schema",
        "deep-schema",
        "repair-1e999",
        "repair-5000-digits",
        "validate-nan",
        "validate-1e999",
        "validate-deep",
        "validate-5000-digits",
    ],
)
def test_bad_input_is_one_line_and_exit_1(
    args: list[str], stdin: bytes, says: str, tmp_path: Path
) -> None:
    files = {
        "{binary}": BINARY,
        "{latin1}": '{"description": "café"}'.encode("latin-1"),
        "{deep}": b"[" * 100000 + b"]" * 100000,
    }
    for name, data in files.items():
        (tmp_path / name.strip("{}")).write_bytes(data)
    args = [str(tmp_path / a.strip("{}")) if a in files else a for a in args]
    result = _cli(args, stdin)
    assert result.returncode == 1
    assert says in _one_clean_line(result)
    assert result.stdout in (b"", b"")


def test_a_lone_surrogate_is_written_as_an_escape() -> None:
    result = _cli(["repair"], b'"\\ud800 and \xc3\xa9"')
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == "\ud800 and é"
    assert b"\\ud800" in result.stdout


def test_a_closed_pipe_is_a_clean_exit() -> None:
    big = b"[" + b",".join([b'"x"'] * 300000) + b"]"
    proc = subprocess.Popen(
        [sys.executable, "-m", "repairllm", "repair", "--indent", "1"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert proc.stdin is not None
    assert proc.stdout is not None
    assert proc.stderr is not None
    proc.stdin.write(big)
    proc.stdin.close()
    assert proc.stdout.read(10)
    proc.stdout.close()  # what `| head` does
    err = proc.stderr.read().decode()
    proc.stderr.close()
    assert proc.wait(timeout=120) == 0
    assert "Traceback" not in err
    assert "BrokenPipe" not in err
