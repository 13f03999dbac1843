"""Logs and spans of structured calls through real drivers: the Ollama driver against the
loopback Ollama server (a key it echoes shows nowhere), and one generate against the
real SmolLM2 behind llama-cpp-python's server (the span tree a user would export)."""

from __future__ import annotations

import logging
import subprocess
import sys
from collections.abc import Callable, Iterator

import pytest
from ollama_server import FakeOllama, Reply
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

import repairllm as rl
from repairllm import observe
from repairllm.bench.llamacpp_server import LlamaServer
from repairllm_backends.ollama import OllamaBackend

# The no_secret fixture (conftest.py): fails if a secret shows in an error or a log.
SecretCheck = Callable[..., list[BaseException]]
KEY = "sk-test-LEAKCHECK-9876"
ECHO = "authorization"  # the fake repeats this request header where a reply says {echo}
PERSON = {
    "type": "object",
    "properties": {"name": {"type": "string"}, "age": {"type": "integer"}},
    "required": ["name", "age"],
}


@pytest.fixture
def fake() -> Iterator[FakeOllama]:
    with FakeOllama() as server:
        yield server


@pytest.fixture
def text_logged() -> Iterator[None]:
    observe.log_text(True)
    yield
    observe.log_text(None)


def shown(spans: tuple[ReadableSpan, ...]) -> str:
    """Everything an exporter sends: names, attributes, events and statuses."""
    return repr(
        [
            (
                s.name,
                dict(s.attributes or {}),
                [dict(e.attributes or {}) for e in s.events],
                s.status.description,
            )
            for s in spans
        ]
    )


def logged(caplog: pytest.LogCaptureFixture) -> str:
    return "\n".join(f"{r.getMessage()} {vars(r)!r}" for r in caplog.records)


def test_an_echoed_key_shows_in_no_log_record_field_and_no_span(
    fake: FakeOllama,
    caplog: pytest.LogCaptureFixture,
    spans: InMemorySpanExporter,
    text_logged: None,
    no_secret: SecretCheck,
) -> None:
    caplog.set_level(logging.DEBUG)
    fake.script(
        # The first reply quotes the key where the name should be and leaves age out;
        # the second request is refused with an error that quotes it again.
        Reply(text='{"name": "{echo}"}', echo=ECHO),
        Reply(status=401, body='{"error": "unauthorized: {echo}"}', echo=ECHO),
    )
    headers = {"Authorization": f"Bearer {KEY}"}
    with (
        OllamaBackend("tiny:latest", base_url=fake.url, headers=headers, timeout=10) as llm,
        pytest.raises(rl.BackendStatusError) as info,
    ):
        rl.generate(llm, "Who?", PERSON, retries=1, transient_retries=0)
    assert fake.requests[-1].headers["authorization"] == f"Bearer {KEY}"  # it was sent
    texts = [r for r in caplog.records if "text" in vars(r)]
    assert texts, "the reply text was logged, as asked"
    assert "***" in vars(texts[0])["text"]  # the key in it, masked
    attempts = [r for r in caplog.records if r.levelno == logging.INFO and "attempt" in vars(r)]
    assert [vars(r)["attempt"] for r in attempts] == [1, 2]
    assert "***" in str(vars(attempts[1])["error"])
    assert KEY not in logged(caplog)
    no_secret(KEY, info.value, logs=caplog.text)
    finished = spans.get_finished_spans()
    assert len([s for s in finished if s.name == "chat tiny:latest"]) == 2
    assert KEY not in shown(finished)


def test_an_echoed_key_in_the_reply_stays_out_of_our_own_errors(
    fake: FakeOllama,
    caplog: pytest.LogCaptureFixture,
    spans: InMemorySpanExporter,
    text_logged: None,
    no_secret: SecretCheck,
) -> None:
    # Every reply quotes the key, so the errors that quote the reply, and hold it,
    # would show it: retries exhausted (generate, call_tools, choose), an invalid item,
    # no JSON. Their messages, and the data they hold, show it masked.
    caplog.set_level(logging.DEBUG)
    bad = Reply(text='{"name": "{echo}", "age": "x{echo}"}', echo=ECHO, tool_calls=[])
    called = Reply(text='[{"name": "{echo}", "arguments": {}}]', echo=ECHO, tool_calls=[])
    items = Reply(text='[{"name": "{echo}", "age": "x{echo}"}]', echo=ECHO)
    calls: list[Callable[[rl.Backend], object]] = [
        lambda llm: rl.generate(llm, "Who?", PERSON, retries=1, transient_retries=0),
        lambda llm: rl.call_tools(llm, "Who?", {"person": PERSON}, retries=1),
        lambda llm: rl.choose(llm, "Who?", ["yes", "no"], retries=1),
        lambda llm: list(
            rl.stream_items(llm, "Who?", {"type": "array", "items": PERSON}, on_invalid="raise")
        ),
        lambda llm: list(rl.stream_items(llm, "Who?", {"type": "array", "items": PERSON})),
    ]
    fake.script(bad, bad, called, called, bad, bad, items, Reply(text="no {echo}", echo=ECHO))
    headers = {"Authorization": f"Bearer {KEY}"}
    errors: list[rl.RepairLLMError] = []
    with OllamaBackend("tiny:latest", base_url=fake.url, headers=headers, timeout=10) as llm:
        for ask in calls:
            with pytest.raises(rl.RepairLLMError) as info:
                ask(llm)
            assert not isinstance(info.value, rl.BackendError)
            assert "***" in str(info.value)  # the reply was quoted, the key masked
            no_secret(KEY, info.value)
            errors.append(info.value)
    assert fake.requests[-1].headers["authorization"] == f"Bearer {KEY}"  # it was sent
    # The data keeps its types, masked where the key was.
    exhausted = errors[0]
    assert isinstance(exhausted, rl.RetriesExhausted)
    first = exhausted.attempts[0]
    assert isinstance(first, rl.Attempt)
    assert first.raw == '{"name": "***", "age": "x***"}'
    assert first.outcome is not None
    assert first.outcome.value["name"] == "***"
    assert all(isinstance(i, rl.Issue) for i in first.issues)
    assert first.issues
    item = errors[3]
    assert isinstance(item, rl.ItemFailed)
    assert item.best is not None
    assert isinstance(item.best.ledger, rl.Ledger)
    assert item.best.data == {"name": "***", "age": "x***"}
    assert isinstance(errors[4], rl.NoJSONFound)
    assert errors[4].raw == "no ***"
    assert KEY not in logged(caplog)
    assert KEY not in shown(spans.get_finished_spans())


@pytest.mark.server
def test_one_generate_against_the_real_model_exports_its_span_tree(
    llama_server: LlamaServer, spans: InMemorySpanExporter, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="repairllm")
    llm = rl.connect("llamacpp", base_url=llama_server.base_url, timeout=120)
    with llm:
        try:
            result = rl.generate(
                llm,
                "Ada Lovelace is 36.",
                PERSON,
                retries=1,
                outcome=True,
                max_tokens=48,
                temperature=0,
            )
            attempts = result.attempts
        except rl.RetriesExhausted as exc:  # a 135M model may fail; the trace is the point
            attempts = exc.attempts
    finished = spans.get_finished_spans()
    (root,) = [s for s in finished if s.name == "repairllm.generate"]
    tree = [s for s in finished if s.name == "repairllm.attempt"]
    requests = [s for s in finished if s.name.startswith("chat")]
    assert len(tree) == len(attempts)
    assert len(requests) == sum(1 + a.continuations for a in attempts)
    ids = {s.context.span_id for s in tree}
    assert all(s.parent is not None and s.parent.span_id == root.context.span_id for s in tree)
    assert all(s.parent is not None and s.parent.span_id in ids for s in requests)
    first = dict(sorted(requests, key=lambda s: s.start_time or 0)[0].attributes or {})
    assert requests[0].kind is SpanKind.CLIENT
    assert requests[0].name == f"chat {llm.model}"  # the model the driver discovered
    assert first["gen_ai.provider.name"] == "llamacpp"
    assert first["gen_ai.request.model"] == llm.model
    assert first["server.address"] == "127.0.0.1"
    assert first["server.port"] == llama_server.port
    assert first["gen_ai.request.max_tokens"] == 48
    assert first["repairllm.native"] is True
    assert int(first["gen_ai.usage.output_tokens"]) > 0  # type: ignore[arg-type]
    assert first["gen_ai.usage.input_tokens"] == attempts[0].usage.prompt_tokens
    reasons = first["gen_ai.response.finish_reasons"]
    assert isinstance(reasons, tuple)
    assert set(reasons) <= {"stop", "length", "loop"}
    top = dict(root.attributes or {})
    assert top["repairllm.attempts"] == len(attempts)
    assert top["repairllm.usage.output_tokens"] == sum(a.usage.completion_tokens for a in attempts)
    assert (root.status.status_code is StatusCode.ERROR) != attempts[-1].ok
    records = [r for r in caplog.records if r.levelno == logging.INFO and "attempt" in vars(r)]
    assert {vars(r)["backend"] for r in records} == {"llamacpp"}  # the preset, not "openai"
    assert [vars(r)["output_tokens"] for r in records] == [
        a.usage.completion_tokens for a in attempts
    ]


def test_the_first_request_of_a_fresh_process_logs_no_key(fake: FakeOllama) -> None:
    # httpcore makes its HTTP/1.1 logger (which repeats response headers) at the first
    # connection, after the driver put its filter on the loggers that existed.
    fake.script(Reply(text="hi", echo=ECHO))
    probe = (
        "import logging, sys\n"
        "from repairllm_backends.ollama import OllamaBackend\n"
        "seen = []\n"
        "class Keep(logging.Handler):\n"
        "    def emit(self, record): seen.append(record.getMessage())\n"
        "logging.getLogger().addHandler(Keep()); logging.getLogger().setLevel(logging.DEBUG)\n"
        f"headers = {{'Authorization': 'Bearer {KEY}'}}\n"
        f"with OllamaBackend('tiny:latest', base_url={fake.url!r}, headers=headers) as llm:\n"
        "    list(llm.stream('hi'))\n"
        "print(any('X-Echo' in m for m in seen), any(" + repr(KEY) + " in m for m in seen))\n"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["True", "False"]  # the headers were logged, masked


def test_the_secrets_filter_cleans_extra_fields_of_every_shape() -> None:
    from repairllm_backends._http import SECRETS

    SECRETS.add([KEY])
    try:
        record = logging.makeLogRecord(
            {
                "msg": "attempt %d",
                "args": (1,),
                "text": f"the reply says {KEY}",
                "notes": [f"refused ({KEY})", "fine"],
                "fields": {"error": (KEY, 3)},
                "count": 3,
            }
        )
        untouched = record.__dict__["notes"]
        assert SECRETS.filter(record)
        shown = repr(vars(record))
        assert KEY not in shown
        assert vars(record)["text"] == "the reply says ***"
        assert vars(record)["notes"] == ["refused (***)", "fine"]
        assert vars(record)["fields"] == {"error": ("***", 3)}
        assert vars(record)["count"] == 3
        assert untouched == [f"refused ({KEY})", "fine"]  # the caller's list is not mutated
    finally:
        SECRETS.discard([KEY])
