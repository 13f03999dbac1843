"""The human driver: a person's reply read from a stream, the conversation shown on another."""

from __future__ import annotations

import asyncio
import io
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

import repairllm
from repairllm.errors import BackendUnreachable, ConfigError
from repairllm.registry import connect
from repairllm_backends.human import HumanBackend


def human(reply: str, **fields: Any) -> tuple[HumanBackend, io.StringIO]:
    shown = io.StringIO()
    return HumanBackend(input=io.StringIO(reply), output=shown, **fields), shown


def test_the_reply_runs_to_the_terminator_line() -> None:
    llm, shown = human('{"name": "Ada",\n "age": 36}\n.\nnot read\n')
    out = llm.chat("Who wrote the first program? Answer as JSON.")
    assert out.text == '{"name": "Ada",\n "age": 36}'
    assert out.finish_reason == "stop"
    assert "Who wrote the first program? Answer as JSON." in shown.getvalue()
    assert "not read" not in out.text


def test_usage_is_estimated_from_both_sides() -> None:
    prompt = "Tell me everything about JSON, please, at some length."
    llm, _ = human("short\n.\n")
    out = llm.chat(prompt)
    assert out.usage.prompt_tokens == llm.count_tokens([{"role": "user", "content": prompt}])
    assert out.usage.completion_tokens == llm.count_tokens("short")
    assert out.usage.prompt_tokens > out.usage.completion_tokens


def test_consecutive_calls_read_consecutive_replies() -> None:
    llm, shown = human("first\n.\nsecond\nline\n.\n")
    assert llm.chat("one").text == "first"
    assert llm.chat("two").text == "second\nline"
    assert shown.getvalue().count("repairllm asks human") == 2


@pytest.mark.parametrize(
    ("typed", "terminator", "expected"),
    [
        ("a\nb", ".", "a\nb"),  # end of input ends the reply too
        ("a\r\n.\r\n", ".", "a"),  # Windows line ends
        ("a\n . \n.\n", ".", "a\n . "),  # only a line holding exactly the terminator ends it
        ("x\nEND\ny\n", "END", "x"),
        ("x\n.\ny\n", None, "x\n.\ny"),  # no terminator: read to the end
        (".\n", ".", ""),  # an empty reply, given on purpose
    ],
    ids=["eof", "crlf", "spaced-dot", "custom", "none", "empty"],
)
def test_where_a_reply_ends(typed: str, terminator: str | None, expected: str) -> None:
    llm, _ = human(typed, terminator=terminator)
    assert llm.chat("x").text == expected


def test_end_of_input_before_any_reply_is_unreachable_and_not_transient() -> None:
    llm, _ = human("")
    with pytest.raises(BackendUnreachable, match="input ended") as info:
        llm.chat("x")
    assert not info.value.transient
    assert info.value.backend == "human"


def test_a_closed_input_stream_is_unreachable() -> None:
    source = io.StringIO("x\n.\n")
    source.close()
    llm = HumanBackend(input=source, output=io.StringIO())
    with pytest.raises(BackendUnreachable, match="streams failed") as info:
        llm.chat("x")
    assert not info.value.transient
    assert isinstance(info.value.__cause__, ValueError)


def test_the_schema_to_follow_is_shown() -> None:
    schema = {"type": "object", "properties": {"city": {"type": "string"}}}
    llm, shown = human('{"city": "Oslo"}\n.\n')
    out = llm.chat("Where?", json_schema=schema)
    text = shown.getvalue()
    assert "schema" in text
    assert json.loads(text[text.index("{") : text.rindex("}") + 1]) == schema
    assert repairllm.repair(out.text, schema) == {"city": "Oslo"}


def test_json_mode_is_announced() -> None:
    llm, shown = human("{}\n.\n")
    llm.chat("x", json_mode=True)
    assert "JSON object" in shown.getvalue()


def test_only_the_new_turn_and_the_system_message_are_shown() -> None:
    llm, shown = human("ok\n.\n")
    llm.chat(
        [
            {"role": "system", "content": "SYSTEM-RULES"},
            {"role": "user", "content": "OLD-QUESTION"},
            {"role": "assistant", "content": "OLD-ANSWER"},
            {"role": "user", "content": "NEW-FEEDBACK"},
            {"role": "user", "content": "NEW-QUESTION"},
        ]
    )
    text = shown.getvalue()
    for seen in ("SYSTEM-RULES", "NEW-FEEDBACK", "NEW-QUESTION", "2 earlier messages not shown"):
        assert seen in text
    assert "OLD-QUESTION" not in text
    assert "OLD-ANSWER" not in text
    assert text.index("SYSTEM-RULES") < text.index("NEW-FEEDBACK") < text.index("NEW-QUESTION")


def test_a_trailing_assistant_turn_is_shown_to_be_continued() -> None:
    llm, shown = human("rest\n.\n")
    llm.chat([{"role": "user", "content": "Q"}, {"role": "assistant", "content": '{"a": '}])
    assert '{"a": ' in shown.getvalue()


def test_content_parts_are_shown_as_text() -> None:
    llm, shown = human("ok\n.\n")
    llm.chat([{"role": "user", "content": [{"type": "text", "text": "PART-ONE"}]}])
    assert "PART-ONE" in shown.getvalue()


def test_stream_and_async_give_the_whole_reply() -> None:
    llm, _ = human("a\n.\nb\n.\n")
    (chunk,) = list(llm.stream("x"))
    assert (chunk.text, chunk.finish_reason) == ("a", "stop")
    assert chunk.usage is not None
    assert asyncio.run(llm.achat("y")).text == "b"


def test_the_default_streams_are_stdin_and_stderr_at_call_time(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    llm = HumanBackend()
    monkeypatch.setattr(sys, "stdin", io.StringIO("from stdin\n.\n"))
    assert llm.chat("PROMPT-TEXT").text == "from stdin"
    captured = capsys.readouterr()
    assert "PROMPT-TEXT" in captured.err
    assert captured.out == ""


def test_options_are_validated() -> None:
    llm, _ = human("x\n.\n")
    with pytest.raises(ConfigError):
        llm.chat("x", tempreature=0.5)


def test_connect_builds_the_human_driver(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in ("BACKEND", "MODEL", "BASE_URL", "CONTEXT_LENGTH", "TIMEOUT"):
        monkeypatch.delenv(f"REPAIRLLM_{key}", raising=False)
    shown = io.StringIO()
    llm = connect("human", input=io.StringIO("hi\n.\n"), output=shown, dotenv=None)
    assert isinstance(llm, HumanBackend)
    assert (llm.name, llm.model) == ("human", "human")
    assert not llm.supports_json_schema
    assert llm.chat("x").text == "hi"


def _run(code: str, stdin: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("REPAIRLLM_")}
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
        cwd=cwd,
        env=env,
        check=False,
    )


def test_a_person_answers_through_a_real_pipe(tmp_path: Path) -> None:
    code = """
        import json
        import repairllm
        from repairllm.registry import connect

        llm = connect("human")
        out = llm.chat("Give a person as JSON.", json_schema={"type": "object"})
        print(json.dumps({"text": out.text, "value": repairllm.repair(out.text)}))
    """
    done = _run(code, "{'name': 'Ada', 'age': 36,}\n.\nleft over\n", tmp_path)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["text"] == "{'name': 'Ada', 'age': 36,}"
    assert result["value"] == {"name": "Ada", "age": 36}
    assert "Give a person as JSON." in done.stderr
    assert "schema" in done.stderr


def test_a_closed_pipe_fails_with_our_error(tmp_path: Path) -> None:
    code = """
        from repairllm.errors import BackendUnreachable
        from repairllm.registry import connect

        try:
            connect("human").chat("anyone there?")
        except BackendUnreachable as exc:
            print("unreachable", exc.transient)
    """
    done = _run(code, "", tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "unreachable False"
