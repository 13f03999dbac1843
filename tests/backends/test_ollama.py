"""The ollama driver against a loopback server speaking Ollama's wire format.

Every test talks HTTP to :class:`ollama_server.FakeOllama` on 127.0.0.1, so the
request bodies the driver sends and its reading of replies, streams and errors are
checked on the wire. ``TestRealOllama`` runs the same calls against a real Ollama
when ``OLLAMA_HOST`` names one that answers.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import os
import socket
import threading
import time
from collections.abc import Callable, Generator, Iterator
from typing import Any

import httpx
import jsonschema
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from ollama_server import MID_STREAM_ERROR, FakeOllama, Model, Reply, example_instance

import repairllm
from repairllm.backend import Chunk, Completion, RedactedCause
from repairllm.errors import (
    BackendError,
    BackendStatusError,
    BackendTimeout,
    BackendUnreachable,
    BadResponse,
    ConfigError,
    ContextTooLong,
    InvalidInput,
)
from repairllm.registry import connect
from repairllm_backends.ollama import DEFAULT_HOST, OllamaBackend, OllamaOptions

MODEL = "tiny:latest"
# The no_secret fixture (conftest.py): fails if a secret shows in an error or a log.
SecretCheck = Callable[..., list[BaseException]]

PERSON = {
    "type": "object",
    "properties": {
        "name": {"type": "string", "minLength": 2},
        "age": {"type": "integer", "minimum": 18},
        "role": {"enum": ["admin", "user"]},
        "tags": {"type": "array", "items": {"type": "string"}, "minItems": 2},
        "address": {"$ref": "#/$defs/address"},
    },
    "required": ["name", "age", "role", "tags", "address"],
    "additionalProperties": False,
    "$defs": {
        "address": {
            "type": "object",
            "properties": {"city": {"type": "string"}, "zip": {"type": ["string", "null"]}},
            "required": ["city"],
        }
    },
}


@pytest.fixture
def fake() -> Iterator[FakeOllama]:
    server = FakeOllama(
        [
            Model(MODEL, context_length=8192),
            Model("ctx:latest", context_length=32768, num_ctx=2048),
            Model("small:latest", context_length=64),
        ]
    )
    with server:
        yield server
    assert server.errors == []


@pytest.fixture
def llm(fake: FakeOllama) -> Iterator[OllamaBackend]:
    with OllamaBackend(MODEL, base_url=fake.url, timeout=10) as backend:
        yield backend


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def collect(iterator: Iterator[Chunk]) -> tuple[list[Chunk], BaseException | None]:
    """The chunks a stream gave before it raised, and what it raised."""
    chunks: list[Chunk] = []
    try:
        for chunk in iterator:
            chunks.append(chunk)
    except Exception as exc:
        return chunks, exc
    return chunks, None


# -- the happy path ---------------------------------------------------------------------


def test_chat_returns_text_finish_reason_and_the_servers_counts(
    llm: OllamaBackend, fake: FakeOllama
) -> None:
    fake.script(Reply(text="one two three"))
    out = llm.chat("a b c d")
    assert isinstance(out, Completion)
    assert out.text == "one two three"
    assert out.finish_reason == "stop"
    assert not out.truncated
    assert (out.usage.prompt_tokens, out.usage.completion_tokens) == (4, 3)
    assert out.raw["done"] is True


def test_chat_sends_the_documented_body(llm: OllamaBackend, fake: FakeOllama) -> None:
    llm.chat([{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}])
    (body,) = fake.bodies()
    assert body == {
        "model": MODEL,
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Hi"},
        ],
        "stream": False,
    }
    (request,) = [r for r in fake.requests if r.path == "/api/chat"]
    assert request.method == "POST"
    assert request.headers["content-type"] == "application/json"
    assert request.headers["user-agent"].startswith("repairllm/")


def test_the_reply_depends_on_the_prompt(llm: OllamaBackend) -> None:
    # The fake echoes, so a driver sending the wrong message would be caught here.
    assert llm.chat("first").text == "You said: first"
    assert llm.chat("second").text == "You said: second"


def test_stream_concatenates_and_ends_with_a_done_chunk(
    llm: OllamaBackend, fake: FakeOllama
) -> None:
    text = "alpha beta  gamma\ndelta "
    fake.script(Reply(text=text))
    chunks = list(llm.stream("go"))
    assert "".join(c.text for c in chunks) == text
    assert len(chunks) >= 4
    *body, last = chunks
    assert all(c.finish_reason is None and c.usage is None for c in body)
    assert last.finish_reason == "stop"
    assert last.usage is not None
    assert last.usage.completion_tokens == 4
    assert fake.bodies()[0]["stream"] is True


def test_stream_is_lazy_and_sends_nothing_until_iterated(
    llm: OllamaBackend, fake: FakeOllama
) -> None:
    iterator = llm.stream("hello", max_tokens=5)
    assert fake.bodies() == []
    assert next(iterator).text
    assert len(fake.bodies()) == 1
    assert isinstance(iterator, Generator)
    iterator.close()


@pytest.fixture(scope="module")
def shared() -> Iterator[tuple[FakeOllama, OllamaBackend]]:
    with FakeOllama() as server, OllamaBackend(MODEL, base_url=server.url) as backend:
        yield server, backend
    assert server.errors == []


@settings(max_examples=40, deadline=None)
@given(text=st.text(st.characters(blacklist_categories=["Cs"]), max_size=80))
def test_any_text_survives_chat_and_stream(
    shared: tuple[FakeOllama, OllamaBackend], text: str
) -> None:
    server, backend = shared
    server.script(Reply(text=text), Reply(text=text))
    assert backend.chat("x").text == text
    assert "".join(c.text for c in backend.stream("x")) == text


# -- structured output and options --------------------------------------------------------


def test_json_schema_is_sent_as_format_and_the_reply_satisfies_it(
    llm: OllamaBackend, fake: FakeOllama
) -> None:
    out = llm.chat("Make up a person.", json_schema=PERSON)
    assert fake.bodies()[0]["format"] == PERSON
    value = json.loads(out.text)
    jsonschema.validate(value, PERSON)
    assert repairllm.repair(out.text, PERSON) == value


def test_json_mode_sends_format_json(llm: OllamaBackend, fake: FakeOllama) -> None:
    out = llm.chat("Reply in JSON: hi", json_mode=True)
    assert fake.bodies()[0]["format"] == "json"
    assert json.loads(out.text) == {"reply": "Reply in JSON: hi"}


def test_a_schema_wins_over_json_mode(llm: OllamaBackend, fake: FakeOllama) -> None:
    llm.chat("x", json_schema={"type": "object"}, json_mode=True)
    assert fake.bodies()[0]["format"] == {"type": "object"}


def test_streamed_structured_output_parses(llm: OllamaBackend, fake: FakeOllama) -> None:
    text = "".join(c.text for c in llm.stream("person", json_schema=PERSON))
    jsonschema.validate(json.loads(text), PERSON)
    assert fake.bodies()[0]["format"] == PERSON


def test_options_map_to_ollamas_names(fake: FakeOllama) -> None:
    with OllamaBackend(
        MODEL, base_url=fake.url, options={"top_k": 5, "repeat_penalty": 1.1, "num_predict": 1}
    ) as backend:
        backend.chat(
            "x",
            max_tokens=30,
            temperature=0.2,
            top_p=0.9,
            stop=["END"],
            seed=7,
            options={"top_k": 20, "num_ctx": 4096},
        )
        backend.chat("y")
    first, second = fake.bodies()
    assert first["options"] == {
        "num_predict": 30,  # the common option wins over the driver's own options
        "temperature": 0.2,
        "top_p": 0.9,
        "stop": ["END"],
        "seed": 7,
        "top_k": 20,  # the call's options win over the driver's
        "num_ctx": 4096,
        "repeat_penalty": 1.1,
    }
    assert second["options"] == {"top_k": 5, "repeat_penalty": 1.1, "num_predict": 1}


def test_defaults_apply_when_a_call_does_not_give_the_option(fake: FakeOllama) -> None:
    with OllamaBackend(
        MODEL, base_url=fake.url, defaults={"temperature": 0.0, "max_tokens": 9}
    ) as backend:
        backend.chat("x")
        backend.chat("x", max_tokens=3)
    first, second = fake.bodies()
    assert first["options"] == {"temperature": 0.0, "num_predict": 9}
    assert second["options"] == {"temperature": 0.0, "num_predict": 3}


@pytest.mark.parametrize("streaming", [False, True], ids=["chat", "stream"])
def test_num_predict_cuts_the_reply_with_finish_reason_length(
    llm: OllamaBackend, fake: FakeOllama, streaming: bool
) -> None:
    fake.script(Reply(text="one two three four five"))
    if streaming:
        chunks = list(llm.stream("x", max_tokens=2))
        text, reason = "".join(c.text for c in chunks), chunks[-1].finish_reason
    else:
        out = llm.chat("x", max_tokens=2)
        text, reason = out.text, out.finish_reason
        assert out.truncated
    assert text == "one two "
    assert reason == "length"
    assert fake.bodies()[0]["options"] == {"num_predict": 2}


def test_stop_sequences_reach_the_server(llm: OllamaBackend, fake: FakeOllama) -> None:
    fake.script(Reply(text='{"a": 1} END and more'))
    out = llm.chat("x", stop=["END"])
    assert out.text == '{"a": 1} '
    assert out.finish_reason == "stop"


def test_keep_alive_from_the_driver_and_per_call(fake: FakeOllama) -> None:
    with OllamaBackend(MODEL, base_url=fake.url, keep_alive="10m") as backend:
        backend.chat("x")
        backend.chat("x", keep_alive=0)
        list(backend.stream("x", keep_alive=-1))
    sent = [b["keep_alive"] for b in fake.bodies()]
    assert sent == ["10m", 0, -1]
    assert [type(v) for v in sent] == [str, int, int]  # Ollama reads a number as seconds


def test_no_keep_alive_is_sent_unless_asked(llm: OllamaBackend, fake: FakeOllama) -> None:
    llm.chat("x")
    assert "keep_alive" not in fake.bodies()[0]


def test_think_is_sent_at_the_top_level(llm: OllamaBackend, fake: FakeOllama) -> None:
    llm.chat("x", think=False)
    assert fake.bodies()[0]["think"] is False


def test_unknown_options_are_refused_before_any_request(
    llm: OllamaBackend, fake: FakeOllama
) -> None:
    with pytest.raises(ConfigError, match="num_ctx"):
        llm.chat("x", num_ctx=4096)
    assert fake.bodies() == []


def test_capabilities_and_options_class() -> None:
    assert OllamaBackend.name == "ollama"
    assert OllamaBackend.supports_json_schema
    assert OllamaBackend.supports_json_mode
    assert OllamaBackend.supports_streaming
    assert OllamaBackend.options_cls is OllamaOptions


def test_content_parts_become_text_and_images(llm: OllamaBackend, fake: FakeOllama) -> None:
    llm.chat(
        [
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "What is this?"},
                    {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0K"}},
                ],
            }
        ]
    )
    (message,) = fake.bodies()[0]["messages"]
    assert message == {"role": "user", "content": "What is this?", "images": ["iVBORw0K"]}


def test_an_image_link_is_refused(llm: OllamaBackend, fake: FakeOllama) -> None:
    part = {"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}}
    with pytest.raises(InvalidInput, match="data: URL"):
        llm.chat([{"role": "user", "content": [part]}])
    assert fake.bodies() == []


# -- the other endpoints --------------------------------------------------------------------


def test_list_models_reads_api_tags(llm: OllamaBackend, fake: FakeOllama) -> None:
    assert llm.list_models() == [MODEL, "ctx:latest", "small:latest"]
    fake.add_model("qwen2.5:0.5b")
    fake.remove_model("small:latest")
    assert llm.list_models() == [MODEL, "ctx:latest", "qwen2.5:0.5b"]
    assert [r.method for r in fake.requests if r.path == "/api/tags"] == ["GET", "GET"]


def test_context_length_comes_from_api_show_once(llm: OllamaBackend, fake: FakeOllama) -> None:
    assert llm.context_length == 8192
    assert llm.context_length == 8192
    assert fake.bodies("/api/show") == [{"model": MODEL}]


def test_a_modelfile_num_ctx_wins_over_the_models_maximum(fake: FakeOllama) -> None:
    with OllamaBackend("ctx:latest", base_url=fake.url) as backend:
        assert backend.context_length == 2048


@pytest.mark.parametrize(
    ("fields", "expected"),
    [({"context_length": 1000}, 1000), ({"options": {"num_ctx": 3000}}, 3000)],
    ids=["given", "num_ctx"],
)
def test_a_known_context_length_asks_nothing(
    fake: FakeOllama, fields: dict[str, Any], expected: int
) -> None:
    with OllamaBackend(MODEL, base_url=fake.url, **fields) as backend:
        assert backend.context_length == expected
        backend.chat("x")
    assert fake.bodies("/api/show") == []


def test_a_failing_api_show_means_unknown_and_is_not_asked_again(fake: FakeOllama) -> None:
    fake.break_path("/api/show")
    with OllamaBackend(MODEL, base_url=fake.url) as backend:
        assert backend.context_length is None
        assert backend.chat("x").text == "You said: x"
        assert backend.context_length is None
    assert len(fake.bodies("/api/show")) == 1


def test_a_server_that_is_down_is_asked_again_later() -> None:
    port = closed_port()
    with OllamaBackend(MODEL, base_url=f"http://127.0.0.1:{port}") as backend:
        assert backend.context_length is None
        with FakeOllama() as server:
            backend.base_url = server.url
            backend.close()  # the next call connects to the new address
            assert backend.context_length == 8192


def test_a_prompt_too_long_for_the_context_is_refused_before_the_request(
    fake: FakeOllama,
) -> None:
    with OllamaBackend("small:latest", base_url=fake.url) as backend:
        with pytest.raises(ContextTooLong) as info:
            backend.chat("word " * 200)
        assert info.value.limit == 64
    assert fake.bodies("/api/chat") == []


# -- async ----------------------------------------------------------------------------------


def test_achat_and_astream(llm: OllamaBackend, fake: FakeOllama) -> None:
    fake.script(Reply(text="async reply"), Reply(text="streamed async reply"))

    async def main() -> tuple[Completion, list[Chunk]]:
        out = await llm.achat("hi", max_tokens=50, json_mode=True)
        chunks = [c async for c in llm.astream("hi", keep_alive="1m")]
        return out, chunks

    out, chunks = asyncio.run(main())
    assert out.text == "async reply"
    assert out.usage.completion_tokens == 2
    assert "".join(c.text for c in chunks) == "streamed async reply"
    assert chunks[-1].finish_reason == "stop"
    assert chunks[-1].usage is not None
    first, second = fake.bodies()
    assert (first["stream"], first["format"], first["options"]) == (
        False,
        "json",
        {"num_predict": 50},
    )
    assert (second["stream"], second["keep_alive"]) == (True, "1m")


def test_async_calls_work_across_event_loops(llm: OllamaBackend) -> None:
    # Scripts call asyncio.run() more than once; a client kept from the first loop would fail.
    assert asyncio.run(llm.achat("one")).text == "You said: one"
    assert asyncio.run(llm.achat("two")).text == "You said: two"


def test_achat_reads_the_context_length_asynchronously(fake: FakeOllama) -> None:
    with OllamaBackend("small:latest", base_url=fake.url) as backend:
        with pytest.raises(ContextTooLong):
            asyncio.run(backend.achat("word " * 200))
        assert backend._client is None  # no sync client was opened inside the loop
    assert len(fake.bodies("/api/show")) == 1


# -- connect and configuration -----------------------------------------------------------


def test_connect_builds_the_ollama_driver(
    fake: FakeOllama, monkeypatch: pytest.MonkeyPatch
) -> None:
    for key in ("BACKEND", "MODEL", "BASE_URL", "CONTEXT_LENGTH", "TIMEOUT"):
        monkeypatch.delenv(f"REPAIRLLM_{key}", raising=False)
    with connect("ollama", model=MODEL, base_url=fake.url, timeout=7, dotenv=None) as backend:
        assert isinstance(backend, OllamaBackend)
        assert (backend.model, backend.base_url, backend.timeout) == (MODEL, fake.url, 7.0)
        assert backend.chat("via connect").text == "You said: via connect"


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        (None, DEFAULT_HOST),
        ("", DEFAULT_HOST),
        ("1.2.3.4", "http://1.2.3.4:11434"),
        (":56789", "http://127.0.0.1:56789"),
        ("example.com:56789/", "http://example.com:56789"),
        ("http://example.com", "http://example.com:80"),
        ("https://example.com", "https://example.com:443"),
        ("https://example.com:8443/ollama/", "https://example.com:8443/ollama"),
        ("[::1]:4000", "http://[::1]:4000"),
        ("0.0.0.0", "http://0.0.0.0:11434"),
    ],
)
def test_base_url_is_read_as_ollama_reads_ollama_host(
    given: str | None, expected: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("OLLAMA_HOST", raising=False)
    assert OllamaBackend(MODEL, base_url=given).base_url == expected


def test_ollama_host_is_the_default_base_url(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OLLAMA_HOST", "gpu-box:9999")
    assert OllamaBackend(MODEL).base_url == "http://gpu-box:9999"
    assert OllamaBackend(MODEL, base_url="other").base_url == "http://other:11434"


@pytest.mark.parametrize(
    "fields",
    [
        {"model": ""},
        {"model": MODEL, "timeout": 0},
        {"model": MODEL, "base_url": "http://h:x"},
        {"model": MODEL, "base_url": "http://[::1"},
        {"model": MODEL, "base_url": "ftp://h"},
    ],
    ids=["no-model", "zero-timeout", "bad-port", "unclosed-ipv6", "not-http"],
)
def test_bad_fields_are_config_errors(fields: dict[str, Any]) -> None:
    with pytest.raises(ConfigError):
        OllamaBackend(**fields)


def test_close_is_idempotent_and_the_driver_reconnects(llm: OllamaBackend) -> None:
    llm.chat("x")
    llm.close()
    llm.close()
    assert llm.chat("again").text == "You said: again"


# -- faults ---------------------------------------------------------------------------------


def test_an_unknown_model_says_to_pull_it(fake: FakeOllama) -> None:
    with OllamaBackend("qwen9:1b", base_url=fake.url) as backend:
        for call in (lambda: backend.chat("x"), lambda: list(backend.stream("x"))):
            with pytest.raises(BackendStatusError) as info:
                call()
            error = info.value
            assert error.status == 404
            assert "ollama pull qwen9:1b" in str(error)
            assert json.loads(error.body) == {
                "error": "model 'qwen9:1b' not found, try pulling it first"
            }
            assert not error.transient


def test_a_wrong_base_path_says_how_to_fix_base_url(fake: FakeOllama) -> None:
    with (
        OllamaBackend(MODEL, base_url=fake.url + "/v1") as backend,
        pytest.raises(BackendStatusError, match="without /v1") as info,
    ):
        backend.chat("x")
    assert info.value.status == 404


def test_a_format_the_server_refuses_is_a_400(llm: OllamaBackend, fake: FakeOllama) -> None:
    fake.script(Reply(status=400, error='invalid format: expected "json" or a valid JSON schema'))
    with pytest.raises(BackendStatusError, match="invalid format") as info:
        llm.chat("x", json_schema={"type": "object"})
    assert info.value.status == 400
    assert not info.value.transient


@pytest.mark.parametrize("streaming", [False, True], ids=["chat", "stream"])
def test_a_500_keeps_its_body_and_is_transient(
    llm: OllamaBackend, fake: FakeOllama, streaming: bool
) -> None:
    body = '{"error":"llama runner process has terminated: signal: killed"}'
    fake.script(Reply(status=500, body=body))
    with pytest.raises(BackendStatusError) as info:
        list(llm.stream("x")) if streaming else llm.chat("x")
    error = info.value
    assert (error.status, error.body, error.transient) == (500, body, True)
    assert "llama runner process has terminated" in str(error)
    assert error.backend == "ollama"


def test_connection_refused_is_unreachable_for_every_call() -> None:
    url = f"http://127.0.0.1:{closed_port()}"
    with OllamaBackend(MODEL, base_url=url, timeout=5) as backend:
        calls = {
            "chat": lambda: backend.chat("x"),
            "stream": lambda: list(backend.stream("x")),
            "list_models": backend.list_models,
            "achat": lambda: asyncio.run(backend.achat("x")),
            "astream": lambda: asyncio.run(_drain(backend, "x")),
        }
        for name, call in calls.items():
            start = time.monotonic()
            with pytest.raises(BackendUnreachable, match="ollama serve") as info:
                call()
            assert time.monotonic() - start < 5, name
            assert info.value.transient, name
            assert isinstance(info.value.__cause__, httpx.ConnectError), name


async def _drain(backend: OllamaBackend, prompt: str, **options: Any) -> list[Chunk]:
    return [c async for c in backend.astream(prompt, **options)]


@pytest.mark.parametrize(
    "reply",
    [
        Reply(body="{not json"),
        Reply(body="[1, 2]"),
        Reply(body='{"done": true}'),
        Reply(body='{"message": {"role": "assistant", "content": 3}, "done": true}'),
        Reply(body='{"message": {"role": "assistant", "content": "x"}}'),
    ],
    ids=["not-json", "not-object", "no-message", "content-not-text", "not-done"],
)
def test_a_malformed_reply_is_a_bad_response(
    llm: OllamaBackend, fake: FakeOllama, reply: Reply
) -> None:
    fake.script(reply)
    with pytest.raises(BadResponse) as info:
        llm.chat("x")
    assert not info.value.transient


def test_a_malformed_stream_line_is_a_bad_response(llm: OllamaBackend, fake: FakeOllama) -> None:
    good = json.dumps({"message": {"role": "assistant", "content": "ok "}, "done": False})
    fake.script(Reply(lines=[good, "{broken"]))
    chunks, error = collect(llm.stream("x"))
    assert [c.text for c in chunks] == ["ok "]
    assert isinstance(error, BadResponse)
    assert "{broken" in str(error)


@pytest.mark.parametrize(
    ("reply", "received"),
    [(Reply(cut_after=2), "one two "), (Reply(end_early=True), "one two three four")],
    ids=["connection-cut", "no-done-line"],
)
def test_a_stream_cut_off_is_unreachable_and_transient(
    llm: OllamaBackend, fake: FakeOllama, reply: Reply, received: str
) -> None:
    reply.text = "one two three four"
    fake.script(reply)
    start = time.monotonic()
    chunks, error = collect(llm.stream("x"))
    assert time.monotonic() - start < 5
    assert isinstance(error, BackendUnreachable)
    assert error.transient
    assert "".join(c.text for c in chunks) == received
    assert all(c.finish_reason is None for c in chunks)


def test_an_error_line_mid_stream_is_a_status_error(llm: OllamaBackend, fake: FakeOllama) -> None:
    fake.script(Reply(text="one two three", error_after=2))
    chunks, error = collect(llm.stream("x"))
    assert [c.text for c in chunks] == ["one ", "two "]
    assert isinstance(error, BackendStatusError)
    assert MID_STREAM_ERROR in str(error)
    assert error.transient


def test_an_astream_cut_off_is_unreachable(llm: OllamaBackend, fake: FakeOllama) -> None:
    fake.script(Reply(text="one two three", cut_after=1))
    with pytest.raises(BackendUnreachable):
        asyncio.run(_drain(llm, "x"))


CALLS = {
    "chat": lambda backend: backend.chat("x"),
    "stream": lambda backend: list(backend.stream("x")),
    "achat": lambda backend: asyncio.run(backend.achat("x")),
    "astream": lambda backend: asyncio.run(_drain(backend, "x")),
}


@pytest.mark.parametrize("call", list(CALLS))
def test_a_silent_server_times_out_in_time(fake: FakeOllama, call: str) -> None:
    fake.script(Reply(delay=30))
    with OllamaBackend(MODEL, base_url=fake.url, timeout=0.3) as backend:
        start = time.monotonic()
        with pytest.raises(BackendTimeout) as info:
            CALLS[call](backend)
        assert time.monotonic() - start < 3
    assert info.value.transient
    # httpx's own timeout, or (async) the deadline's cancellation, whichever came first.
    assert isinstance(info.value.__cause__, httpx.TimeoutException | TimeoutError)


def test_a_call_timeout_overrides_the_drivers(llm: OllamaBackend, fake: FakeOllama) -> None:
    fake.script(Reply(delay=30))
    start = time.monotonic()
    with pytest.raises(BackendTimeout):
        llm.chat("x", timeout=0.3)
    assert time.monotonic() - start < 3


def test_a_stream_that_stalls_between_lines_times_out(fake: FakeOllama) -> None:
    fake.script(Reply(text="one two three", line_delay=30))
    with OllamaBackend(MODEL, base_url=fake.url, timeout=0.3) as backend:
        chunks, error = collect(backend.stream("x"))
    assert [c.text for c in chunks] == ["one "]
    assert isinstance(error, BackendTimeout)


def test_every_failure_is_one_of_ours(llm: OllamaBackend, fake: FakeOllama) -> None:
    faults = [
        Reply(status=503, body="<html>proxy down</html>"),
        Reply(body=b"\xff\xfe"),
        Reply(lines=["", "   ", "null"]),
        Reply(status=418),
    ]
    for fault in faults:
        fake.script(fault)
        with pytest.raises(BackendError):
            list(llm.stream("x")) if fault.lines else llm.chat("x")


# -- the timeout bounds the whole call ----------------------------------------------------

TIMEOUT = 1.0
# A bound, not a timing: a per-read timeout would let each of these calls run a minute
# or more (one byte every 0.2 s); connecting takes a little.
WITHIN = 2 * TIMEOUT + 1.0


@pytest.mark.parametrize("call", ["chat", "achat"])
@pytest.mark.parametrize("trickle_from", [None, 0], ids=["body", "status-line-and-headers"])
def test_a_trickling_server_is_cut_at_the_timeout(
    fake: FakeOllama, call: str, trickle_from: int | None
) -> None:
    fake.script(Reply(text="x" * 400, trickle=0.2, trickle_from=trickle_from))
    with OllamaBackend(MODEL, base_url=fake.url, timeout=TIMEOUT, context_length=8192) as llm:
        start = time.monotonic()
        with pytest.raises(BackendTimeout) as info:
            CALLS[call](llm)
        elapsed = time.monotonic() - start
    assert elapsed < WITHIN
    assert "within timeout=1s, which bounds the whole call" in str(info.value)


@pytest.mark.parametrize("call", ["stream", "astream"])
def test_a_stream_stalled_inside_a_line_is_cut_between_chunks(fake: FakeOllama, call: str) -> None:
    fake.script(Reply(text="one " + "x" * 400, trickle=0.2))
    with OllamaBackend(MODEL, base_url=fake.url, timeout=TIMEOUT, context_length=8192) as llm:
        start = time.monotonic()
        with pytest.raises(BackendTimeout) as info:
            CALLS[call](llm)
        elapsed = time.monotonic() - start
    assert elapsed < WITHIN
    assert "timeout=1s, which bounds the wait between chunks" in str(info.value)


def test_a_steady_stream_outlasts_the_timeout(fake: FakeOllama) -> None:
    fake.script(Reply(text="word " * 40, line_delay=0.1))
    with OllamaBackend(MODEL, base_url=fake.url, timeout=TIMEOUT, context_length=8192) as llm:
        start = time.monotonic()
        chunks = list(llm.stream("x"))
    assert time.monotonic() - start > 2 * TIMEOUT
    assert chunks[-1].finish_reason == "stop"


STREAMS: dict[str, Callable[..., object]] = {
    "stream": lambda backend, **options: list(backend.stream("x", **options)),
    "astream": lambda backend, **options: asyncio.run(_drain(backend, "x", **options)),
}


@pytest.mark.parametrize("call", list(STREAMS))
@pytest.mark.parametrize("where", ["per-call", "driver"])
def test_stream_timeout_bounds_the_whole_stream(fake: FakeOllama, call: str, where: str) -> None:
    fake.script(Reply(text="word " * 100, line_delay=0.1))
    fields: dict[str, Any] = {"stream_timeout": 1.5} if where == "driver" else {}
    options: dict[str, Any] = {"stream_timeout": 1.5} if where == "per-call" else {}
    with OllamaBackend(
        MODEL, base_url=fake.url, timeout=TIMEOUT, context_length=8192, **fields
    ) as llm:
        start = time.monotonic()
        with pytest.raises(BackendTimeout) as info:
            STREAMS[call](llm, **options)
        elapsed = time.monotonic() - start
    assert 1.5 <= elapsed < 2 * 1.5 + 1.0
    assert "stream_timeout=1.5s, which bounds the whole stream" in str(info.value)


@pytest.fixture
def hung_url() -> Iterator[str]:
    """A server that accepts connections and never answers anything."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    server.settimeout(0.05)  # so that the accepting thread sees the stop
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        while not stop.is_set():
            try:
                held.append(server.accept()[0])
            except TimeoutError:
                continue
            except OSError:
                return

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.getsockname()[1]}"
    finally:
        stop.set()
        server.close()
        for conn in held:
            conn.close()
        thread.join(5)


@pytest.mark.parametrize("call", list(CALLS))
def test_a_hung_server_costs_the_first_call_one_timeout(hung_url: str, call: str) -> None:
    # The first call asks /api/show for the context length before the chat; both share
    # the call's deadline.
    with OllamaBackend(MODEL, base_url=hung_url, timeout=2) as llm:
        start = time.monotonic()
        with pytest.raises(BackendTimeout) as info:
            CALLS[call](llm)
        elapsed = time.monotonic() - start
    assert 2 <= elapsed < 1.6 * 2  # twice the timeout before
    assert "timeout=2s" in str(info.value)


# -- no key anywhere ------------------------------------------------------------------------

KEY = "sk-test-LEAKCHECK-1234"
GOOD_LINE = json.dumps({"message": {"role": "assistant", "content": "ok "}, "done": False})
ECHO = "authorization"  # the fake repeats this request header where a reply says {echo}

LEAKS = {
    # kind: (the scripted reply, calls that meet it, the error)
    "status-401": (
        Reply(status=401, body='{"error": "unauthorized: {echo}"}', echo=ECHO),
        list(CALLS),
        BackendStatusError,
    ),
    "status-500": (
        Reply(status=500, error="bad header {echo}", echo=ECHO),
        ["chat"],
        BackendStatusError,
    ),
    "200-not-json": (Reply(body="<html>{echo}</html>", echo=ECHO), ["chat", "achat"], BadResponse),
    "error-line": (
        Reply(lines=[GOOD_LINE, '{"error": "bad key {echo}"}'], echo=ECHO),
        ["stream", "astream"],
        BackendStatusError,
    ),
    "broken-line": (Reply(lines=["{broken {echo}"], echo=ECHO), ["stream", "astream"], BadResponse),
}


@pytest.mark.parametrize(
    ("kind", "call"),
    [(kind, call) for kind, (_, calls, _) in LEAKS.items() for call in calls],
)
def test_an_echoed_header_shows_nowhere(
    fake: FakeOllama,
    caplog: pytest.LogCaptureFixture,
    no_secret: SecretCheck,
    kind: str,
    call: str,
) -> None:
    caplog.set_level(logging.DEBUG)
    reply, _, error = LEAKS[kind]
    fake.script(reply)
    headers = {"Authorization": f"Bearer {KEY}"}
    with (
        OllamaBackend(MODEL, base_url=fake.url, headers=headers, timeout=10) as llm,
        pytest.raises(error) as info,
    ):
        CALLS[call](llm)
    assert fake.requests[-1].headers["authorization"] == f"Bearer {KEY}"  # it was sent
    assert "X-Echo" in caplog.text  # the echoed header was logged (redacted)
    chain = no_secret(KEY, info.value, logs=caplog.text)
    # Ollama's error, and httpx's holding the request and its headers, are not kept.
    assert all(isinstance(link, RedactedCause) for link in chain[1:])
    if isinstance(info.value, BackendStatusError):
        assert "***" in info.value.body


@pytest.mark.parametrize(
    "reply",
    [
        Reply(body="<html>{echo}</html>", echo=ECHO),  # quoted: its first 120 characters
        Reply(status=401, body="denied {echo}", echo=ECHO),  # not JSON: 300 characters
        Reply(lines=["{broken {echo}"], echo=ECHO),
    ],
    ids=["200-not-json", "401-not-json", "broken-line"],
)
def test_a_key_cut_by_a_shortened_message_leaves_no_part_behind(
    fake: FakeOllama, reply: Reply
) -> None:
    # Wherever the cut falls, no first half of the key may stay (the key is redacted
    # before anything is cut). The body of an error status keeps 2,000 characters.
    headers = {"Authorization": f"Bearer {KEY}"}
    call = "stream" if reply.lines else "chat"
    with OllamaBackend(MODEL, base_url=fake.url, headers=headers, context_length=8192) as llm:
        for pad in [*range(60, 330, 4), *range(1960, 2010, 4)]:
            filler = "p" * pad
            fake.script(
                dataclasses.replace(
                    reply,
                    body=reply.body.replace("{echo}", filler + "{echo}") if reply.body else None,
                    lines=[line.replace("{echo}", filler + "{echo}") for line in reply.lines]
                    if reply.lines
                    else None,
                )
            )
            with pytest.raises(BackendError) as info:
                CALLS[call](llm)
            shown = str(info.value) + repr(info.value) + str(getattr(info.value, "body", ""))
            assert KEY[:10] not in shown, pad


@pytest.mark.parametrize("call", list(CALLS))
def test_the_headers_do_not_reach_an_error_through_its_cause(
    no_secret: SecretCheck, call: str
) -> None:
    # httpx's ConnectError holds the request, and the request the headers.
    url = f"http://127.0.0.1:{closed_port()}"
    with (
        OllamaBackend(MODEL, base_url=url, headers={"X-Api-Key": KEY}) as llm,
        pytest.raises(BackendUnreachable) as info,
    ):
        CALLS[call](llm)
    chain = no_secret(KEY, info.value)
    assert len(chain) > 1
    assert isinstance(chain[1], RedactedCause)
    assert chain[1].type_name == "httpx.ConnectError"


# -- the schema instances the fake builds ----------------------------------------------------


@pytest.mark.parametrize(
    "schema",
    [
        PERSON,
        {"type": "array", "items": {"type": "number", "exclusiveMinimum": 3}, "maxItems": 0},
        {"anyOf": [{"type": "string", "format": "email"}, {"type": "null"}]},
        {"allOf": [{"type": "object", "properties": {"a": {"const": 1}}}]},
        {"type": "string", "minLength": 12, "maxLength": 14},
    ],
    ids=["person", "empty-array", "any-of", "all-of", "string-lengths"],
)
def test_the_fakes_schema_instances_are_valid(schema: dict[str, Any]) -> None:
    jsonschema.validate(example_instance(schema), schema)


# -- a real Ollama, when there is one -----------------------------------------------------


@pytest.fixture(scope="module")
def real_llm() -> Iterator[OllamaBackend]:
    host = os.environ.get("OLLAMA_HOST")
    if not host:
        pytest.skip("set OLLAMA_HOST (and optionally OLLAMA_TEST_MODEL) to test a real Ollama")
    probe = OllamaBackend("probe", base_url=host, timeout=5)
    try:
        models = probe.list_models()
    except BackendError as exc:
        pytest.skip(f"OLLAMA_HOST={host} does not answer /api/tags: {exc}")
    finally:
        probe.close()
    model = os.environ.get("OLLAMA_TEST_MODEL") or (models[0] if models else None)
    if model is None:
        pytest.skip(f"the Ollama at {host} has no model; `ollama pull qwen2.5:0.5b`")
    with OllamaBackend(model, base_url=host, timeout=300) as backend:
        yield backend


@pytest.mark.slow
class TestRealOllama:
    """The same calls against a real server: the wire format as Ollama really speaks it."""

    def test_chat(self, real_llm: OllamaBackend) -> None:
        out = real_llm.chat("Say hello in one word.", max_tokens=16, temperature=0)
        assert out.text.strip()
        assert out.finish_reason in ("stop", "length")
        assert out.usage.prompt_tokens > 0
        assert out.usage.completion_tokens > 0

    def test_structured_output_follows_the_schema(self, real_llm: OllamaBackend) -> None:
        schema = {
            "type": "object",
            "properties": {"name": {"type": "string"}, "age": {"type": "integer"}},
            "required": ["name", "age"],
        }
        out = real_llm.chat(
            "Alice Smith is 31. Reply with her name and age as JSON.",
            json_schema=schema,
            temperature=0,
            max_tokens=100,
        )
        jsonschema.validate(repairllm.repair(out.text, schema), schema)

    def test_stream_ends_with_usage(self, real_llm: OllamaBackend) -> None:
        chunks = list(real_llm.stream("Count from 1 to 5.", max_tokens=40, temperature=0))
        assert "".join(c.text for c in chunks).strip()
        assert chunks[-1].finish_reason in ("stop", "length")
        assert chunks[-1].usage is not None
        assert chunks[-1].usage.completion_tokens > 0

    def test_context_length_is_known(self, real_llm: OllamaBackend) -> None:
        assert real_llm.context_length is None or real_llm.context_length > 0

    def test_max_tokens_truncates(self, real_llm: OllamaBackend) -> None:
        out = real_llm.chat("Write a long story about a llama.", max_tokens=5)
        assert out.finish_reason == "length"
        assert out.usage.completion_tokens <= 6
