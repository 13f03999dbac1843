"""Logs, spans and hooks of structured calls (repairllm.observe), on scripted backends.

The real parts (a driver against a loopback server, the llama.cpp server) are in
tests/backends/test_observe_real.py.
"""

from __future__ import annotations

import ast
import asyncio
import logging
import subprocess
import sys
from collections.abc import Generator, Iterable, Iterator
from pathlib import Path
from typing import Any

import pytest
import scripted_backend
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode
from pydantic import BaseModel

import repairllm as rl
from repairllm import observe
from repairllm.backend import ChatOptions, Chunk, Completion, Message, Usage
from repairllm.errors import BackendTimeout

SECRET_WORD = "Zanzibar-7731"  # a word only the model's reply holds


class Person(BaseModel):
    name: str
    age: int


class Scripted(scripted_backend.Scripted):
    """The shared scripted backend as model ``tiny-1``, streamed in two halves.

    Its usage is 10 + the request's number in, the reply's characters out, so that
    each request's tokens differ and can be told apart in logs and spans.
    """

    def __init__(self, script: Iterable[Any], *, json_schema: bool = False) -> None:
        super().__init__(script, json_schema=json_schema)
        self.model = "tiny-1"

    def _usage(self, messages: list[Message], text: str) -> Usage:
        return Usage(10 + len(self.requests), len(text))

    def _stream(self, messages: list[Message], options: ChatOptions) -> Iterator[Chunk]:
        reply = self._chat(messages, options)
        half = len(reply.text) // 2
        yield Chunk(reply.text[:half])
        yield Chunk(reply.text[half:], reply.finish_reason, reply.usage)


# One bad reply (a string where the schema wants an integer, the name in the reply only),
# then one that needs a repair (a trailing comma, a number in quotes).
BAD = f'{{"name": "{SECRET_WORD}", "age": "thirty-one"}}'
REPAIRED = f'{{"name": "{SECRET_WORD}", "age": "31",}}'


@pytest.fixture(autouse=True)
def _text_off() -> Iterator[None]:
    observe.log_text(None)
    yield
    observe.log_text(None)


def attempt_records(caplog: pytest.LogCaptureFixture, logger: str) -> list[logging.LogRecord]:
    return [
        r
        for r in caplog.records
        if r.name == logger and r.levelno == logging.INFO and "attempt" in r.__dict__
    ]


def everything_logged(caplog: pytest.LogCaptureFixture) -> str:
    """Each record's message and every attribute it carries (what a JSON formatter shows)."""
    return "\n".join(f"{r.getMessage()} {vars(r)!r}" for r in caplog.records)


def by_name(spans: Iterable[ReadableSpan], name: str) -> list[ReadableSpan]:
    return [s for s in spans if s.name == name]


# -- logs -------------------------------------------------------------------------------


def test_one_info_record_per_attempt_with_its_fields(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="repairllm")
    llm = Scripted([BAD, REPAIRED])
    result = rl.generate(llm, "Who is 31?", Person, outcome=True, max_tokens=64)
    first, second = attempt_records(caplog, "repairllm.generate")
    assert [vars(first)["attempt"], vars(second)["attempt"]] == [1, 2]
    for record, attempt in zip((first, second), result.attempts, strict=True):
        fields = vars(record)
        assert fields["backend"] == "scripted"
        assert fields["model"] == "tiny-1"
        assert fields["input_tokens"] == attempt.usage.prompt_tokens > 0
        assert fields["output_tokens"] == attempt.usage.completion_tokens > 0
        assert fields["seconds"] == pytest.approx(attempt.seconds, abs=1e-5)
        assert fields["finish_reason"] == "stop"
        assert fields["continuations"] == 0
        assert fields["transient_errors"] == 0
        assert fields["native"] is False
        assert fields["operation"] == "generate"
    assert vars(first)["ok"] is False
    assert vars(first)["issues"] == 1
    assert vars(second)["ok"] is True
    assert vars(second)["issues"] == 0
    assert "trailing_comma" in vars(second)["rules"]
    assert vars(second)["cost"] == pytest.approx(result.ledger.cost)
    assert "attempt 2 ok" in second.getMessage()
    assert "1 issue(s) left" in first.getMessage()


def test_no_reply_text_by_default_even_at_debug(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="repairllm")
    rl.generate(Scripted([BAD, REPAIRED]), "Who is 31?", Person)
    assert any(r.levelno == logging.DEBUG for r in caplog.records)  # details were logged
    assert SECRET_WORD not in everything_logged(caplog)
    assert "thirty-one" not in everything_logged(caplog)


@pytest.mark.parametrize("how", ["function", "environment"])
def test_reply_text_when_asked(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch, how: str
) -> None:
    if how == "function":
        observe.log_text(True)
    else:
        monkeypatch.setenv("REPAIRLLM_LOG_TEXT", "1")
    caplog.set_level(logging.DEBUG, logger="repairllm")
    rl.generate(Scripted([BAD, REPAIRED]), "Who is 31?", Person)
    texts = [r for r in caplog.records if "text" in r.__dict__]
    assert [vars(r)["text"] for r in texts] == [BAD, REPAIRED]
    assert all(r.levelno == logging.DEBUG for r in texts)
    assert "/age" in " ".join(vars(texts[0])["issue_messages"])
    assert "'31' -> 31" in " ".join(vars(texts[1])["fixes"])


def test_text_stays_out_at_info_when_asked(caplog: pytest.LogCaptureFixture) -> None:
    observe.log_text(True)
    caplog.set_level(logging.INFO, logger="repairllm")
    rl.generate(Scripted([BAD, REPAIRED]), "Who is 31?", Person)
    assert SECRET_WORD not in everything_logged(caplog)


def test_debug_records_per_request_count_continuations(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="repairllm.generate")
    llm = Scripted([('{"name": "Ann", "ag', "length"), 'e": 31}'])
    rl.generate(llm, "Ann is 31.", Person, stop_at_value=False)
    requests = [r for r in caplog.records if "continuation" in r.__dict__]
    assert [vars(r)["continuation"] for r in requests] == [False, True]
    assert [vars(r)["finish_reason"] for r in requests] == ["length", "stop"]
    (attempt,) = attempt_records(caplog, "repairllm.generate")
    assert vars(attempt)["continuations"] == 1


def test_transient_errors_are_counted_in_the_attempt_record(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="repairllm")
    llm = Scripted([BackendTimeout("no answer in 1 s", "scripted"), '{"name": "Ann", "age": 31}'])
    rl.generate(llm, "Ann is 31.", Person, backoff=0)
    (record,) = attempt_records(caplog, "repairllm.generate")
    assert vars(record)["transient_errors"] == 1
    assert vars(record)["ok"] is True


def test_the_library_adds_only_a_null_handler() -> None:
    handlers = logging.getLogger("repairllm").handlers
    assert handlers
    assert all(isinstance(h, logging.NullHandler) for h in handlers)
    for family in ("generate", "stream", "choose"):
        assert logging.getLogger(f"repairllm.{family}").handlers == []


def test_stream_and_choose_log_their_attempt(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="repairllm")
    parts = list(rl.stream(Scripted([REPAIRED]), "Who?", Person))
    assert parts[-1].done
    (streamed,) = attempt_records(caplog, "repairllm.stream")
    assert vars(streamed)["ok"] is True
    assert "trailing_comma" in vars(streamed)["rules"]
    assert vars(streamed)["output_tokens"] == len(REPAIRED)
    assert rl.choose(Scripted(["maybe", "B"]), "Good?", ["yes", "no"]) == "no"
    chose = attempt_records(caplog, "repairllm.choose")
    assert [vars(r)["ok"] for r in chose] == [False, True]


# -- spans ------------------------------------------------------------------------------


def test_a_generate_with_one_retry_makes_a_span_tree(spans: InMemorySpanExporter) -> None:
    llm = Scripted([BAD, REPAIRED])
    result = rl.generate(llm, "Who is 31?", Person, outcome=True, max_tokens=64, temperature=0)
    finished = spans.get_finished_spans()
    (root,) = by_name(finished, "repairllm.generate")
    attempts = sorted(by_name(finished, "repairllm.attempt"), key=lambda s: s.start_time or 0)
    requests = sorted(by_name(finished, "chat tiny-1"), key=lambda s: s.start_time or 0)
    assert len(finished) == 5
    assert len(attempts) == 2
    assert len(requests) == 2
    assert root.parent is None or root.parent.span_id != root.context.span_id
    for attempt, request in zip(attempts, requests, strict=True):
        assert attempt.parent is not None
        assert attempt.parent.span_id == root.context.span_id
        assert request.parent is not None
        assert request.parent.span_id == attempt.context.span_id
    assert root.kind is SpanKind.INTERNAL
    a = dict(root.attributes or {})
    assert a["repairllm.attempts"] == 2
    assert a["repairllm.retries"] == 1
    assert a["repairllm.ok"] is True
    assert a["repairllm.issues"] == 0
    assert "trailing_comma" in a["repairllm.rules"]  # type: ignore[operator]
    assert a["repairllm.cost"] == pytest.approx(result.ledger.cost)
    assert a["repairllm.usage.output_tokens"] == result.usage.completion_tokens
    first, second = (dict(s.attributes or {}) for s in attempts)
    assert (first["repairllm.ok"], first["repairllm.issues"]) == (False, 1)
    assert (second["repairllm.ok"], second["repairllm.attempt"]) == (True, 2)
    r = dict(requests[0].attributes or {})
    assert r["gen_ai.operation.name"] == "chat"
    assert r["gen_ai.provider.name"] == "scripted"
    assert r["gen_ai.request.model"] == "tiny-1"
    assert r["gen_ai.request.max_tokens"] == 64
    assert r["gen_ai.request.temperature"] == 0.0
    assert isinstance(r["gen_ai.request.temperature"], float)  # a double, as the conventions say
    assert r["gen_ai.output.type"] == "json"
    assert r["gen_ai.response.finish_reasons"] == ("stop",)
    assert r["gen_ai.usage.input_tokens"] == result.attempts[0].usage.prompt_tokens
    assert r["gen_ai.usage.output_tokens"] == len(BAD)
    assert r["repairllm.continuation"] is False
    # No gen_ai usage above the requests, so a backend summing spans counts tokens once.
    assert not any(k.startswith("gen_ai.usage") for k in a)
    # Reply text goes into no span.
    assert all(SECRET_WORD not in repr(dict(s.attributes or {})) for s in finished)


def test_a_continuation_is_a_request_span_of_the_same_attempt(
    spans: InMemorySpanExporter,
) -> None:
    llm = Scripted([('{"name": "Ann", "ag', "length"), 'e": 31}'])
    rl.generate(llm, "Ann is 31.", Person, stop_at_value=False)
    finished = spans.get_finished_spans()
    (attempt,) = by_name(finished, "repairllm.attempt")
    requests = sorted(by_name(finished, "chat tiny-1"), key=lambda s: s.start_time or 0)
    assert [dict(s.attributes or {})["repairllm.continuation"] for s in requests] == [
        False,
        True,
    ]
    assert all(s.parent and s.parent.span_id == attempt.context.span_id for s in requests)
    assert dict(attempt.attributes or {})["repairllm.continuations"] == 1


def test_a_backend_error_sets_the_status_and_records_the_exception(
    spans: InMemorySpanExporter,
) -> None:
    llm = Scripted([rl.BackendStatusError("no such model", "scripted", 400)])
    with pytest.raises(rl.BackendStatusError):
        rl.generate(llm, "Ann is 31.", Person)
    finished = spans.get_finished_spans()
    for name in ("chat tiny-1", "repairllm.attempt", "repairllm.generate"):
        (span,) = by_name(finished, name)
        assert span.status.status_code is StatusCode.ERROR, name
    (request,) = by_name(finished, "chat tiny-1")
    assert dict(request.attributes or {})["error.type"] == "BackendStatusError"
    (event,) = [e for e in request.events if e.name == "exception"]
    assert "no such model" in str(dict(event.attributes or {})["exception.message"])


def test_retries_exhausted_keep_the_reply_out_of_the_span(spans: InMemorySpanExporter) -> None:
    with pytest.raises(rl.RetriesExhausted):
        rl.generate(Scripted([BAD, BAD]), "Who?", Person, retries=1)
    (root,) = by_name(spans.get_finished_spans(), "repairllm.generate")
    assert root.status.status_code is StatusCode.ERROR
    assert dict(root.attributes or {})["error.type"] == "RetriesExhausted"
    shown = repr([(e.name, dict(e.attributes or {})) for e in root.events])
    assert "2 attempt(s)" in shown
    assert "thirty-one" not in shown


def test_stream_and_choose_spans(spans: InMemorySpanExporter) -> None:
    list(rl.stream(Scripted([REPAIRED]), "Who?", Person))
    rl.choose(Scripted(["B"]), "Good?", ["yes", "no"])
    finished = spans.get_finished_spans()
    (streamed,) = by_name(finished, "repairllm.stream")
    assert dict(streamed.attributes or {})["repairllm.ok"] is True
    (chose,) = by_name(finished, "repairllm.choose")
    assert dict(chose.attributes or {})["repairllm.attempts"] == 1
    requests = by_name(finished, "chat tiny-1")
    assert len(requests) == 2
    types = sorted(str(dict(s.attributes or {})["gen_ai.output.type"]) for s in requests)
    assert types == ["json", "text"]


def test_a_stream_closed_early_is_no_error(spans: InMemorySpanExporter) -> None:
    parts = rl.stream(Scripted([REPAIRED]), "Who?", Person)
    assert isinstance(parts, Generator)
    next(parts)
    parts.close()
    finished = spans.get_finished_spans()
    (root,) = by_name(finished, "repairllm.stream")
    assert root.status.status_code is not StatusCode.ERROR
    assert dict(root.attributes or {})["repairllm.closed_early"] is True


def test_agenerate_spans_nest_the_same_way(spans: InMemorySpanExporter) -> None:
    llm = Scripted([BAD, REPAIRED])
    asyncio.run(rl.agenerate(llm, "Who is 31?", Person))
    finished = spans.get_finished_spans()
    (root,) = by_name(finished, "repairllm.agenerate")
    attempts = by_name(finished, "repairllm.attempt")
    assert len(attempts) == 2
    assert all(s.parent and s.parent.span_id == root.context.span_id for s in attempts)
    assert len(by_name(finished, "chat tiny-1")) == 2


# -- hooks ------------------------------------------------------------------------------


def recording_hooks(seen: list[tuple[str, Any]]) -> rl.Hooks:
    return rl.Hooks(
        on_request=lambda r: seen.append(("request", r)),
        on_repair=lambda a: seen.append(("repair", a)),
        on_attempt=lambda a: seen.append(("attempt", a)),
        on_retry=lambda a: seen.append(("retry", a)),
    )


def test_hooks_are_called_in_order_with_the_right_records() -> None:
    seen: list[tuple[str, Any]] = []
    llm = Scripted([BAD, REPAIRED])
    result = rl.generate(llm, "Who?", Person, outcome=True, hooks=recording_hooks(seen))
    first, second = result.attempts
    assert [kind for kind, _ in seen] == [
        "request",
        "attempt",
        "retry",
        "request",
        "repair",
        "attempt",
    ]
    request = seen[0][1]
    assert isinstance(request, observe.RequestRecord)
    assert (request.operation, request.backend, request.model) == ("generate", "scripted", "tiny-1")
    assert (request.attempt, request.continuation) == (1, False)
    assert request.reply is not None
    assert request.reply.text == BAD
    assert request.messages == llm.requests[0][0]
    assert seen[1][1] is first
    assert seen[2][1] is first
    assert seen[3][1].attempt == 2
    assert seen[4][1] is second
    assert "trailing_comma" in second.ledger.rules()
    assert seen[5][1] is second


def test_a_raising_hook_stops_the_call_with_a_hook_error(spans: InMemorySpanExporter) -> None:
    def stop(attempt: rl.Attempt) -> None:
        raise RuntimeError("budget spent")

    llm = Scripted([BAD, REPAIRED])
    with pytest.raises(rl.HookError) as info:
        rl.generate(llm, "Who?", Person, hooks=rl.Hooks(on_retry=stop))
    assert info.value.hook == "on_retry"
    assert isinstance(info.value.__cause__, RuntimeError)
    assert len(info.value.attempts) == 1
    assert len(llm.requests) == 1  # the retry was never sent
    assert llm.script == [REPAIRED]
    (root,) = by_name(spans.get_finished_spans(), "repairllm.generate")
    assert root.status.status_code is StatusCode.ERROR
    assert len(by_name(spans.get_finished_spans(), "repairllm.attempt")) == 1


@pytest.mark.parametrize(
    "hooks",
    [{"on_request": print}, print, "on_request", rl.Hooks(on_attempt="print")],  # type: ignore[arg-type]
    ids=["a-dict", "a-function", "a-string", "a-hook-not-callable"],
)
def test_hooks_that_cannot_be_called_are_refused_before_any_request(hooks: Any) -> None:
    llm = Scripted([REPAIRED, REPAIRED, REPAIRED, REPAIRED])
    with pytest.raises(rl.InvalidInput, match="Hooks"):
        rl.generate(llm, "Who?", Person, hooks=hooks)
    with pytest.raises(rl.InvalidInput, match="Hooks"):
        list(rl.stream(llm, "Who?", Person, hooks=hooks))
    with pytest.raises(rl.InvalidInput, match="Hooks"):
        list(rl.stream_items(llm, "Who?", list[Person], hooks=hooks))
    with pytest.raises(rl.InvalidInput, match="Hooks"):
        rl.call_tools(llm, "Who?", {"person": Person}, hooks=hooks)
    assert llm.requests == []


def test_a_hook_failing_while_the_call_fails_keeps_the_calls_error(
    caplog: pytest.LogCaptureFixture,
) -> None:
    def broken(attempt: rl.Attempt) -> None:
        raise ValueError("hook bug")

    llm = Scripted([rl.BackendStatusError("bad request", "scripted", 400)])
    with pytest.raises(rl.BackendStatusError):
        rl.generate(llm, "Who?", Person, hooks=rl.Hooks(on_attempt=broken))
    (warning,) = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert vars(warning)["hook"] == "on_attempt"


def test_hooks_on_stream_and_choose() -> None:
    seen: list[tuple[str, Any]] = []
    list(rl.stream(Scripted([REPAIRED]), "Who?", Person, hooks=recording_hooks(seen)))
    assert [kind for kind, _ in seen] == ["request", "repair", "attempt"]
    assert seen[0][1].reply.text == REPAIRED
    assert seen[0][1].operation == "stream"
    seen.clear()
    rl.choose(Scripted(["maybe", "A"]), "Good?", ["yes", "no"], hooks=recording_hooks(seen))
    assert [kind for kind, _ in seen] == ["request", "attempt", "retry", "request", "attempt"]
    assert seen[-1][1].ok
    assert seen[-1][1].outcome.value == "yes"


# -- without OpenTelemetry ---------------------------------------------------------------


def test_without_opentelemetry_calls_work_and_nothing_is_imported() -> None:
    probe = (
        "import sys\n"
        "sys.modules['opentelemetry'] = None  # as if not installed: importing it fails\n"
        "import repairllm as rl\n"
        "from repairllm.backend import Backend, Completion\n"
        "class One(Backend):\n"
        "    def _chat(self, messages, options):\n"
        "        return Completion('{\"a\": 1,}')\n"
        "seen = []\n"
        "hooks = rl.Hooks(on_attempt=seen.append)\n"
        "assert rl.generate(One(), 'hi', {'type': 'object'}, hooks=hooks) == {'a': 1}\n"
        "assert len(seen) == 1\n"
        "from repairllm import spans\n"
        "assert spans.tracer() is None\n"
        "print(sorted(m for m, v in sys.modules.items() if m.startswith('opentelemetry') and v))\n"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == "[]"


def test_import_alone_loads_no_opentelemetry() -> None:
    probe = "import sys, repairllm\nprint([m for m in sys.modules if 'opentelemetry' in m])"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


# -- tool calls -------------------------------------------------------------------------


class Calling(Scripted):
    """Answers each request with one call of the tool ``person`` with these arguments."""

    supports_tools = True

    def _chat(self, messages: list[Message], options: ChatOptions) -> Completion:
        reply = super()._chat(messages, options)
        call = rl.ToolCall("person", reply.text, f"call-{len(self.requests)}")
        return Completion("", "tool_calls", reply.usage, tool_calls=(call,))


def test_call_tools_logs_spans_and_hooks_each_attempt(
    caplog: pytest.LogCaptureFixture, spans: InMemorySpanExporter
) -> None:
    caplog.set_level(logging.INFO, logger="repairllm")
    seen: list[tuple[str, Any]] = []
    llm = Calling([BAD, REPAIRED])
    uses = rl.call_tools(llm, "Who?", {"person": Person}, hooks=recording_hooks(seen))
    assert [u.arguments for u in uses] == [Person(name=SECRET_WORD, age=31)]
    first, second = attempt_records(caplog, "repairllm.tools")
    assert (vars(first)["ok"], vars(second)["ok"]) == (False, True)
    assert vars(second)["tools"] is True
    assert [kind for kind, _ in seen] == ["request", "attempt", "retry", "request", "attempt"]
    finished = spans.get_finished_spans()
    (root,) = by_name(finished, "repairllm.call_tools")
    assert dict(root.attributes or {})["repairllm.ok"] is True
    requests = by_name(finished, "chat tiny-1")
    assert [dict(s.attributes or {})["repairllm.tools"] for s in requests] == [True, True]
    reasons = [dict(s.attributes or {})["gen_ai.response.finish_reasons"] for s in requests]
    assert reasons == [("tool_calls",), ("tool_calls",)]


# -- item by item -----------------------------------------------------------------------


def test_stream_items_counts_invalid_items_and_reports_its_request(
    caplog: pytest.LogCaptureFixture, spans: InMemorySpanExporter
) -> None:
    caplog.set_level(logging.INFO, logger="repairllm")
    seen: list[tuple[str, Any]] = []
    reply = '[{"name": "Ann", "age": 31}, {"name": "Bo", "age": "old"}] and some prose after'
    items = list(
        rl.stream_items(Scripted([reply]), "Two people", list[Person], hooks=recording_hooks(seen))
    )
    assert [i.ok for i in items] == [True, False]
    (record,) = attempt_records(caplog, "repairllm.stream")
    assert vars(record)["issues"] == len(items[1].issues) > 0
    assert vars(record)["output_tokens"] == len(reply)  # the usage came before the close
    assert [kind for kind, _ in seen] == ["request", "attempt"]
    assert seen[0][1].reply is not None
    assert seen[0][1].reply.text.startswith("[")
    finished = spans.get_finished_spans()
    (root,) = by_name(finished, "repairllm.stream_items")
    (request,) = by_name(finished, "chat tiny-1")
    assert request.status.status_code is not StatusCode.ERROR
    # The reader closed the stream once the list was complete: no error, but said.
    assert dict(request.attributes or {})["repairllm.closed_early"] is True
    assert dict(root.attributes or {})["repairllm.issues"] == len(items[1].issues)


def test_astream_items_nests_its_spans(spans: InMemorySpanExporter) -> None:
    async def collect() -> list[Any]:
        stream = rl.astream_items(Scripted(['[{"name": "Ann", "age": 31}]']), "One", list[Person])
        return [item async for item in stream]

    assert [i.value for i in asyncio.run(collect())] == [Person(name="Ann", age=31)]
    finished = spans.get_finished_spans()
    (root,) = by_name(finished, "repairllm.astream_items")
    (attempt,) = by_name(finished, "repairllm.attempt")
    (request,) = by_name(finished, "chat tiny-1")
    assert attempt.parent is not None
    assert attempt.parent.span_id == root.context.span_id
    assert request.parent is not None
    assert request.parent.span_id == attempt.context.span_id


# -- the library never prints -----------------------------------------------------------

ROOT = Path(__file__).resolve().parents[1]
# What talks to a person on purpose: the command line, the demo and the bench harness.
SPEAKS = ("repairllm/cli.py", "repairllm/demo.py", "repairllm/bench/", "repairllm/batch/cli.py")


def test_the_library_never_prints() -> None:
    printing = []
    for package in ("repairllm", "backends/repairllm_backends"):
        for path in sorted((ROOT / package).rglob("*.py")):
            where = path.relative_to(ROOT).as_posix()
            if where.startswith(SPEAKS):
                continue
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if (
                    isinstance(node, ast.Call)
                    and isinstance(node.func, ast.Name)
                    and node.func.id == "print"
                ):
                    printing.append(f"{where}:{node.lineno}")
    assert printing == []


def test_the_call_span_is_current_inside_the_call_and_only_there(
    spans: InMemorySpanExporter,
) -> None:
    seen: list[Any] = []
    hooks = rl.Hooks(on_attempt=lambda attempt: seen.append(trace.get_current_span()))
    before = trace.get_current_span()
    rl.generate(Scripted(['{"name": "Ann", "age": 31}']), "Ann?", Person, hooks=hooks)
    assert trace.get_current_span() is before
    (root,) = by_name(spans.get_finished_spans(), "repairllm.generate")
    assert seen[0].get_span_context().span_id == root.context.span_id
    # A stream yields to its caller between steps: its span is never made current there.
    for _ in rl.stream(Scripted(['{"name": "Ann", "age": 31}']), "Ann?", Person):
        assert trace.get_current_span() is before
