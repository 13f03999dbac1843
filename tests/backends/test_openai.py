"""The openai driver: against a fake loopback server for faults and request shapes,
and against a real llama-cpp-python server (SmolLM2-135M) for behaviour."""

from __future__ import annotations

import asyncio
import importlib.util
import json
import logging
import re
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jsonschema
import pytest

from repairllm import registry
from repairllm.backend import RedactedCause
from repairllm.bench.llamacpp_server import LlamaServer, serve
from repairllm.errors import (
    BackendError,
    BackendStatusError,
    BackendTimeout,
    BackendUnreachable,
    BadResponse,
    ConfigError,
    ContextTooLong,
    MissingKey,
)
from repairllm_backends.openai import OpenAIBackend

# The no_secret fixture (conftest.py): fails if a secret shows in an error or a log.
SecretCheck = Callable[..., list[BaseException]]

needs_llama_cpp = pytest.mark.skipif(
    importlib.util.find_spec("llama_cpp") is None, reason="llama-cpp-python is not installed"
)


# -- a fake OpenAI-compatible server on a real loopback socket ---------------------------


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    body: Any


Route = Callable[[BaseHTTPRequestHandler, Any], None]


@dataclass
class FakeServer:
    url: str
    routes: dict[tuple[str, str], Route] = field(default_factory=dict)
    seen: list[Seen] = field(default_factory=list)
    release: threading.Event = field(default_factory=threading.Event)

    def chat_requests(self) -> list[Seen]:
        return [s for s in self.seen if s.path == "/v1/chat/completions"]


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = 5  # an idle keep-alive connection must not hold the server's shutdown

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _handle(self, method: str) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        body = json.loads(raw) if raw else None
        fake: FakeServer = self.server.fake  # type: ignore[attr-defined]
        headers = {k.lower(): v for k, v in self.headers.items()}
        fake.seen.append(Seen(method, self.path, headers, body))
        route = fake.routes.get((method, self.path))
        try:
            if route is None:
                send_json(self, 404, {"detail": "Not Found"})
            else:
                route(self, body)
        except OSError:
            self.close_connection = True  # the client went away (timeout tests)

    def do_GET(self) -> None:
        self._handle("GET")

    def do_POST(self) -> None:
        self._handle("POST")


def send_raw(h: BaseHTTPRequestHandler, status: int, body: bytes, ctype: str) -> None:
    h.send_response(status)
    h.send_header("Content-Type", ctype)
    h.send_header("Content-Length", str(len(body)))
    h.end_headers()
    h.wfile.write(body)


def send_json(h: BaseHTTPRequestHandler, status: int, obj: Any) -> None:
    send_raw(h, status, json.dumps(obj).encode(), "application/json")


def completion(text: str = "hi", finish: str = "stop", usage: bool = True) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": "c1",
        "object": "chat.completion",
        "created": 0,
        "model": "m",
        "choices": [
            {"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": finish}
        ],
    }
    if usage:
        out["usage"] = {"prompt_tokens": 7, "completion_tokens": 2, "total_tokens": 9}
    return out


def chunk(text: str | None = None, finish: str | None = None) -> str:
    delta = {"content": text} if text is not None else {}
    return json.dumps(
        {
            "id": "c1",
            "object": "chat.completion.chunk",
            "created": 0,
            "model": "m",
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
        }
    )


def usage_chunk(prompt: int, completion: int) -> str:
    return json.dumps(
        {
            "id": "c1",
            "object": "chat.completion.chunk",
            "created": 0,
            "model": "m",
            "choices": [],
            "usage": {
                "prompt_tokens": prompt,
                "completion_tokens": completion,
                "total_tokens": prompt + completion,
            },
        }
    )


def send_sse(h: BaseHTTPRequestHandler, events: list[str], *, tail: str = "done") -> None:
    """Stream events. ``tail``: ``done`` ends properly; ``cut-chunked`` drops the
    connection inside a chunked body; ``cut-close`` ends a close-delimited body
    in the middle of an event."""
    chunked = tail != "cut-close"
    h.send_response(200)
    h.send_header("Content-Type", "text/event-stream")
    if chunked:
        h.send_header("Transfer-Encoding", "chunked")
    else:
        h.send_header("Connection", "close")
    h.end_headers()

    def write(data: bytes) -> None:
        h.wfile.write(b"%x\r\n%s\r\n" % (len(data), data) if chunked else data)
        h.wfile.flush()

    for event in events:
        write(f"data: {event}\n\n".encode())
    if tail == "done":
        write(b"data: [DONE]\n\n")
        h.wfile.write(b"0\r\n\r\n")
        return
    write(b'data: {"id": "c1", "object": "chat.completion.chunk", "choi')
    h.close_connection = True
    h.connection.shutdown(socket.SHUT_RDWR)


@pytest.fixture
def fake() -> Iterator[FakeServer]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    server = FakeServer(f"http://127.0.0.1:{httpd.server_address[1]}/v1")
    httpd.fake = server  # type: ignore[attr-defined]
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.release.set()
        httpd.shutdown()
        httpd.server_close()
        thread.join()


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def local(fake: FakeServer, **fields: Any) -> OpenAIBackend:
    fields.setdefault("model", "m")
    fields.setdefault("timeout", 5)
    return OpenAIBackend(preset="vllm", base_url=fake.url, **fields)


# -- faults over real sockets -------------------------------------------------------------


def test_refused_connection_is_unreachable_and_transient() -> None:
    url = f"http://127.0.0.1:{closed_port()}/v1"
    start = time.monotonic()
    with (
        OpenAIBackend(preset="vllm", base_url=url, model="m", timeout=5) as llm,
        pytest.raises(BackendUnreachable) as info,
    ):
        llm.chat("hi")
    assert time.monotonic() - start < 5
    assert info.value.transient
    assert "127.0.0.1" in str(info.value)
    assert isinstance(info.value.__cause__, Exception)  # raised from the SDK's error


def test_status_500_keeps_status_and_body(fake: FakeServer) -> None:
    fake.routes["POST", "/v1/chat/completions"] = lambda h, _: send_raw(
        h, 500, b"upstream model crashed: CUDA OOM", "text/plain"
    )
    with local(fake) as llm, pytest.raises(BackendStatusError) as info:
        llm.chat("hi")
    assert info.value.status == 500
    assert "CUDA OOM" in info.value.body
    assert "500" in str(info.value)
    assert info.value.transient


def test_status_400_is_not_transient(fake: FakeServer) -> None:
    fake.routes["POST", "/v1/chat/completions"] = lambda h, _: send_json(
        h, 400, {"error": {"message": "temperature must be <= 2", "type": "invalid"}}
    )
    with local(fake) as llm, pytest.raises(BackendStatusError) as info:
        llm.chat("hi")
    assert info.value.status == 400
    assert not info.value.transient
    assert "temperature must be <= 2" in str(info.value)


@pytest.mark.parametrize(
    ("body", "ctype"),
    [
        (b'{"id": "c1", "choices": [', "application/json"),
        (b"<html>502 Bad Gateway</html>", "text/html"),
        (b'{"id": "c1", "object": "chat.completion"}', "application/json"),
        (b'{"id": "c1", "choices": []}', "application/json"),
        (b'{"id": "c1", "choices": [{"index": 0, "finish_reason": "stop"}]}', "application/json"),
        (b"[1, 2, 3]", "application/json"),
    ],
    ids=["truncated-json", "html", "no-choices", "empty-choices", "no-message", "a-list"],
)
def test_malformed_reply_is_bad_response(fake: FakeServer, body: bytes, ctype: str) -> None:
    fake.routes["POST", "/v1/chat/completions"] = lambda h, _: send_raw(h, 200, body, ctype)
    with local(fake) as llm, pytest.raises(BadResponse):
        llm.chat("hi")


@pytest.mark.parametrize("tail", ["cut-chunked", "cut-close"])
def test_stream_cut_mid_event_raises_backend_error(fake: FakeServer, tail: str) -> None:
    fake.routes["POST", "/v1/chat/completions"] = lambda h, _: send_sse(
        h, [chunk("Hel"), chunk("lo")], tail=tail
    )
    start = time.monotonic()
    received = []
    with local(fake) as llm, pytest.raises(BackendError) as info:  # noqa: PT012
        for piece in llm.stream("hi"):  # the error comes mid-iteration, not before
            received.append(piece.text)
    assert time.monotonic() - start < 5
    assert received == ["Hel", "lo"]  # what arrived before the cut was delivered
    assert isinstance(info.value, BackendUnreachable | BadResponse)
    assert info.value.transient


def test_async_faults_are_translated_too(fake: FakeServer) -> None:
    fake.routes["POST", "/v1/chat/completions"] = lambda h, _: send_sse(
        h, [chunk("Hel")], tail="cut-chunked"
    )
    refused = f"http://127.0.0.1:{closed_port()}/v1"

    async def drain(llm: OpenAIBackend) -> list[str]:
        return [c.text async for c in llm.astream("hi")]

    with local(fake) as llm, pytest.raises(BackendUnreachable, match="mid-request"):
        asyncio.run(drain(llm))
    with (
        OpenAIBackend(preset="vllm", base_url=refused, model="m") as llm,
        pytest.raises(BackendUnreachable, match="could not connect"),
    ):
        asyncio.run(llm.achat("hi"))


def test_stream_ending_without_finish_reason_is_transient_bad_response(fake: FakeServer) -> None:
    # llama-cpp-python's server does this when another request interrupts a stream.
    fake.routes["POST", "/v1/chat/completions"] = lambda h, _: send_sse(h, [chunk("Hel")])
    with local(fake) as llm, pytest.raises(BadResponse) as info:
        list(llm.stream("hi"))
    assert info.value.transient
    assert "finish_reason" in str(info.value)


@pytest.mark.parametrize(
    ("error", "kind"),
    [
        ({"message": "generation failed: out of memory", "code": 500}, BackendStatusError),
        (
            {"message": "exceeds the context", "n_prompt_tokens": 900, "n_ctx": 512},
            ContextTooLong,
        ),
    ],
    ids=["status", "context"],
)
def test_error_event_mid_stream(fake: FakeServer, error: dict[str, Any], kind: type) -> None:
    fake.routes["POST", "/v1/chat/completions"] = lambda h, _: send_sse(
        h, [chunk("Hel"), json.dumps({"error": error})]
    )
    with local(fake) as llm, pytest.raises(kind) as info:
        list(llm.stream("hi"))
    if isinstance(info.value, BackendStatusError):
        assert info.value.status == 500
        assert info.value.transient
        assert "out of memory" in str(info.value)
    else:
        assert (info.value.n_tokens, info.value.limit) == (900, 512)


def test_slow_server_times_out(fake: FakeServer) -> None:
    def never(h: BaseHTTPRequestHandler, _: Any) -> None:
        fake.release.wait(10)
        send_json(h, 200, completion())

    fake.routes["POST", "/v1/chat/completions"] = never
    start = time.monotonic()
    with local(fake, timeout=0.3) as llm, pytest.raises(BackendTimeout) as info:
        llm.chat("hi")
    assert time.monotonic() - start < 3
    assert info.value.transient
    assert "0.3s" in str(info.value)


def test_per_call_timeout_overrides_the_driver_timeout(fake: FakeServer) -> None:
    def slow(h: BaseHTTPRequestHandler, _: Any) -> None:
        fake.release.wait(10)
        send_json(h, 200, completion())

    fake.routes["POST", "/v1/chat/completions"] = slow
    start = time.monotonic()
    with local(fake, timeout=30) as llm, pytest.raises(BackendTimeout):
        llm.chat("hi", timeout=0.2)
    assert time.monotonic() - start < 3


# -- the timeout bounds the whole call ----------------------------------------------------

TIMEOUT = 1.0
# A bound, not a timing: a per-read timeout would let each of these calls run a minute
# or more (one byte every 0.2 s); connecting and the SDK's first imports take a little.
WITHIN = 2 * TIMEOUT + 1.0
JSON_HEAD = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n"
SSE_HEAD = b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nConnection: close\r\n\r\n"


def trickle(fake: FakeServer, data: bytes, *, head: bytes = b"", every: float = 0.2) -> Route:
    """A route that sends ``head`` at once, then ``data`` one byte every ``every`` seconds."""

    def route(h: BaseHTTPRequestHandler, _: Any) -> None:
        h.close_connection = True
        h.wfile.write(head)
        h.wfile.flush()
        for i in range(len(data)):
            if fake.release.wait(every):
                return
            h.wfile.write(data[i : i + 1])
            h.wfile.flush()

    return route


def run_call(llm: OpenAIBackend, call: str, **options: Any) -> list[str]:
    """Make the call; the texts it gave (a stream's chunks) before it ended or raised."""
    texts: list[str] = []

    async def drain() -> None:
        async for piece in llm.astream("hi", **options):
            texts.append(piece.text)

    if call == "chat":
        texts.append(llm.chat("hi", **options).text)
    elif call == "achat":
        texts.append(asyncio.run(llm.achat("hi", **options)).text)
    elif call == "stream":
        texts.extend(piece.text for piece in llm.stream("hi", **options))
    else:
        asyncio.run(drain())
    return texts


@pytest.mark.parametrize("call", ["chat", "achat"])
@pytest.mark.parametrize("what", ["body", "status-line-and-headers"])
def test_a_trickling_server_is_cut_at_the_timeout(fake: FakeServer, call: str, what: str) -> None:
    body = json.dumps(completion("x" * 400)).encode()
    head = JSON_HEAD % len(body)
    route = trickle(fake, body, head=head) if what == "body" else trickle(fake, head + body)
    fake.routes["POST", "/v1/chat/completions"] = route
    with local(fake, timeout=TIMEOUT) as llm:
        start = time.monotonic()
        with pytest.raises(BackendTimeout) as info:
            run_call(llm, call)
        elapsed = time.monotonic() - start
    assert elapsed < WITHIN
    assert "within timeout=1s, which bounds the whole call" in str(info.value)
    assert info.value.transient


@pytest.mark.parametrize("call", ["stream", "astream"])
def test_a_stream_stalled_inside_an_event_is_cut_between_chunks(
    fake: FakeServer, call: str
) -> None:
    first = f"data: {chunk('a')}\n\n".encode()
    route = trickle(fake, b"data: " + b"x" * 1000, head=SSE_HEAD + first)
    fake.routes["POST", "/v1/chat/completions"] = route
    with local(fake, timeout=TIMEOUT) as llm:
        start = time.monotonic()
        with pytest.raises(BackendTimeout) as info:
            run_call(llm, call)
        elapsed = time.monotonic() - start
    assert elapsed < WITHIN
    assert "timeout=1s, which bounds the wait between chunks" in str(info.value)


def steady(fake: FakeServer, every: float = 0.25) -> Route:
    """A route that streams a one-word chunk every ``every`` seconds, for ever."""

    def route(h: BaseHTTPRequestHandler, _: Any) -> None:
        h.close_connection = True
        h.wfile.write(SSE_HEAD)
        h.wfile.flush()
        while not fake.release.wait(every):
            h.wfile.write(f"data: {chunk('word ')}\n\n".encode())
            h.wfile.flush()

    return route


def test_a_steady_stream_outlasts_the_timeout(fake: FakeServer) -> None:
    fake.routes["POST", "/v1/chat/completions"] = steady(fake)
    with local(fake, timeout=TIMEOUT) as llm:
        start, texts = time.monotonic(), []
        for piece in llm.stream("hi"):
            texts.append(piece.text)
            if time.monotonic() - start > 2.5 * TIMEOUT:
                break
    assert len(texts) >= 6


@pytest.mark.parametrize("call", ["stream", "astream"])
@pytest.mark.parametrize("where", ["per-call", "driver"])
def test_stream_timeout_bounds_the_whole_stream(fake: FakeServer, call: str, where: str) -> None:
    fake.routes["POST", "/v1/chat/completions"] = steady(fake)
    fields: dict[str, Any] = {"stream_timeout": 1.5} if where == "driver" else {}
    options: dict[str, Any] = {"stream_timeout": 1.5} if where == "per-call" else {}
    with local(fake, timeout=TIMEOUT, **fields) as llm:
        start = time.monotonic()
        with pytest.raises(BackendTimeout) as info:
            run_call(llm, call, **options)
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
        yield f"http://127.0.0.1:{server.getsockname()[1]}/v1"
    finally:
        stop.set()
        server.close()
        for conn in held:
            conn.close()
        thread.join(5)


@pytest.mark.parametrize("call", ["chat", "achat", "stream"])
@pytest.mark.parametrize("model", [None, "m"], ids=["model-discovered", "model-given"])
def test_a_hung_server_costs_the_first_call_one_timeout(
    hung_url: str, call: str, model: str | None
) -> None:
    # The first call asks /v1/models before the chat; both share the call's deadline.
    with OpenAIBackend(preset="vllm", base_url=hung_url, model=model, timeout=2) as llm:
        start = time.monotonic()
        with pytest.raises(BackendTimeout) as info:
            run_call(llm, call)
        elapsed = time.monotonic() - start
    assert 2 <= elapsed < 1.6 * 2  # twice the timeout before
    assert "timeout=2s" in str(info.value)


# -- context length -------------------------------------------------------------------


def test_context_too_long_is_raised_before_any_request() -> None:
    # A closed port: any request would raise BackendUnreachable instead.
    url = f"http://127.0.0.1:{closed_port()}/v1"
    with OpenAIBackend(preset="vllm", base_url=url, model="m", context_length=50) as llm:
        with pytest.raises(ContextTooLong) as info:
            llm.chat("word " * 200)
        assert info.value.limit == 50
        assert info.value.n_tokens > 50
        with pytest.raises(ContextTooLong):  # room for the reply counts too
            llm.chat("hi", max_tokens=60)


def test_server_context_error_becomes_context_too_long_and_is_learnt(fake: FakeServer) -> None:
    message = (
        "This model's maximum context length is 2048 tokens. However, you requested "
        "3012 tokens (2990 in the messages, 22 in the completion). Please reduce the length."
    )
    fake.routes["POST", "/v1/chat/completions"] = lambda h, _: send_json(
        h, 400, {"error": {"message": message, "code": "context_length_exceeded"}}
    )
    with local(fake) as llm:
        assert llm.context_length is None
        with pytest.raises(ContextTooLong) as info:
            llm.chat("word " * 100)
        assert (info.value.n_tokens, info.value.limit) == (3012, 2048)
        assert llm.context_length == 2048
        sent = len(fake.chat_requests())
        with pytest.raises(ContextTooLong):
            llm.chat("word " * 10_000)
        assert len(fake.chat_requests()) == sent  # refused locally this time


def test_llamacpp_native_context_error_fields(fake: FakeServer) -> None:
    body = {
        "error": {
            "code": 400,
            "message": "the request exceeds the available context size, try increasing it",
            "type": "exceed_context_size_error",
            "n_prompt_tokens": 5000,
            "n_ctx": 4096,
        }
    }
    fake.routes["POST", "/v1/chat/completions"] = lambda h, _: send_json(h, 400, body)
    with local(fake) as llm, pytest.raises(ContextTooLong) as info:
        llm.chat("hi")
    assert (info.value.n_tokens, info.value.limit) == (5000, 4096)


def test_context_error_without_numbers_stays_a_status_error(fake: FakeServer) -> None:
    fake.routes["POST", "/v1/chat/completions"] = lambda h, _: send_json(
        h, 400, {"error": {"message": "prompt is too long for the context"}}
    )
    with local(fake) as llm, pytest.raises(BackendStatusError) as info:
        llm.chat("hi")
    assert info.value.status == 400
    assert "too long" in info.value.body


def test_models_listing_gives_model_and_context(fake: FakeServer) -> None:
    fake.routes["GET", "/v1/models"] = lambda h, _: send_json(
        h, 200, {"object": "list", "data": [{"id": "qwen-0.5b", "max_model_len": 100}]}
    )
    fake.routes["POST", "/v1/chat/completions"] = lambda h, _: send_json(h, 200, completion())
    with OpenAIBackend(preset="vllm", base_url=fake.url) as llm:
        assert llm.chat("hi").text == "hi"
        assert llm.model == "qwen-0.5b"
        assert llm.context_length == 100
        assert fake.chat_requests()[0].body["model"] == "qwen-0.5b"
        with pytest.raises(ContextTooLong):
            llm.chat("word " * 400)


def test_server_without_models_needs_a_model_name(fake: FakeServer) -> None:
    with OpenAIBackend(preset="vllm", base_url=fake.url) as llm, pytest.raises(ConfigError) as info:
        llm.chat("hi")
    assert "model=" in str(info.value)


# -- request shapes -----------------------------------------------------------------------

SCHEMA = {
    "title": "Person record",
    "type": "object",
    "properties": {"name": {"type": "string"}, "age": {"type": "integer"}},
    "required": ["name", "age"],
    "additionalProperties": False,
}


def test_options_are_sent_and_reply_is_read(fake: FakeServer) -> None:
    fake.routes["POST", "/v1/chat/completions"] = lambda h, _: send_json(
        h, 200, completion("hello there", "length")
    )
    with local(fake, defaults={"temperature": 0.5}) as llm:
        out = llm.chat(
            [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hi"}],
            max_tokens=2,
            stop=["\n"],
            seed=3,
        )
    assert (out.text, out.finish_reason, out.truncated) == ("hello there", "length", True)
    assert (out.usage.prompt_tokens, out.usage.completion_tokens) == (7, 2)
    body = fake.chat_requests()[0].body
    assert body["model"] == "m"
    assert body["messages"][0] == {"role": "system", "content": "be brief"}
    assert (body["max_tokens"], body["temperature"], body["stop"], body["seed"]) == (
        2,
        0.5,
        ["\n"],
        3,
    )
    assert "response_format" not in body
    assert "top_p" not in body  # unset options are not sent: the server's defaults hold


def test_unknown_option_is_refused_before_sending(fake: FakeServer) -> None:
    with local(fake) as llm, pytest.raises(ConfigError) as info:
        llm.chat("hi", max_token=5)
    assert "max_token" in str(info.value)
    assert fake.chat_requests() == []


@pytest.mark.parametrize(
    ("preset", "expected"),
    [
        (
            "vllm",
            {
                "type": "json_schema",
                "json_schema": {"name": "Person_record", "schema": SCHEMA, "strict": True},
            },
        ),
        ("llamacpp", {"type": "json_object", "schema": SCHEMA}),
    ],
)
def test_json_schema_form_follows_the_preset(
    fake: FakeServer, preset: str, expected: dict[str, Any]
) -> None:
    fake.routes["POST", "/v1/chat/completions"] = lambda h, _: send_json(h, 200, completion("{}"))
    with OpenAIBackend(preset=preset, base_url=fake.url, model="m") as llm:
        assert llm.supports_json_schema
        llm.chat("hi", json_schema=SCHEMA)
        llm.chat("hi", json_mode=True)
    first, second = fake.chat_requests()
    assert first.body["response_format"] == expected
    assert second.body["response_format"] == {"type": "json_object"}


def _refusing(refused: dict[str, tuple[int, bytes]]) -> Route:
    """A chat route that refuses the response_format kinds in ``refused`` with a status."""

    def route(h: BaseHTTPRequestHandler, body: Any) -> None:
        rf = body.get("response_format")
        kind = None if rf is None else ("json_object_schema" if "schema" in rf else rf["type"])
        if kind in refused:
            status, text = refused[kind]
            if status == 0:  # drop the connection without an answer
                h.close_connection = True
                h.connection.shutdown(socket.SHUT_RDWR)
                return
            send_raw(h, status, text, "application/json")
            return
        if body.get("stream"):
            send_sse(h, [chunk("{}"), chunk(None, "stop")])
        else:
            send_json(h, 200, completion("{}"))

    return route


def _kinds(fake: FakeServer) -> list[str | None]:
    out: list[str | None] = []
    for seen in fake.chat_requests():
        rf = seen.body.get("response_format")
        out.append(None if rf is None else ("json_object_schema" if "schema" in rf else rf["type"]))
    return out


_ABOUT_RF = b'{"detail": "1 validation error: response_format.type must be json_object"}'


@pytest.mark.parametrize(
    ("refused", "sent"),
    [
        ({"json_schema": (500, _ABOUT_RF)}, ["json_schema", "json_object_schema"]),
        ({"json_schema": (400, b"{}")}, ["json_schema", "json_object_schema"]),
        (
            {"json_schema": (422, b"{}"), "json_object_schema": (500, b'{"e": "grammar"}')},
            ["json_schema", "json_object_schema", "json_object"],
        ),
        (
            {
                "json_schema": (400, b"{}"),
                "json_object_schema": (400, b"{}"),
                "json_object": (400, b"{}"),
            },
            ["json_schema", "json_object_schema", "json_object", None],
        ),
        ({"json_schema": (0, b"")}, ["json_schema", "json_object_schema"]),
    ],
    ids=["500-about-format", "400", "422-then-500-grammar", "all-refused", "dropped"],
)
@pytest.mark.parametrize("how", ["chat", "stream", "achat", "astream"])
def test_refused_structured_forms_fall_through_and_are_remembered(
    fake: FakeServer, refused: dict[str, tuple[int, bytes]], sent: list[str | None], how: str
) -> None:
    fake.routes["POST", "/v1/chat/completions"] = _refusing(refused)

    def ask(llm: OpenAIBackend) -> tuple[str, tuple[str, ...]]:
        if how == "chat":
            out = llm.chat("hi", json_schema=SCHEMA)
            return out.text, out.notes
        if how == "stream":
            chunks = list(llm.stream("hi", json_schema=SCHEMA))
        else:

            async def run() -> Any:
                if how == "achat":
                    return await llm.achat("hi", json_schema=SCHEMA)
                return [c async for c in llm.astream("hi", json_schema=SCHEMA)]

            result = asyncio.run(run())
            if how == "achat":
                return result.text, result.notes
            chunks = result
        return "".join(c.text for c in chunks), tuple(n for c in chunks for n in c.notes)

    with OpenAIBackend(base_url=fake.url, model="m", supports_json_schema=True, timeout=5) as llm:
        text, notes = ask(llm)
        assert text == "{}"
        assert _kinds(fake) == sent
        assert len(notes) == len(sent) - 1
        assert all("refused" in n for n in notes)
        # Remembered: the next call goes straight to the form that worked.
        before = len(fake.chat_requests())
        _, notes = ask(llm)
        assert _kinds(fake)[before:] == [sent[-1]]
        assert len(notes) == 1
        assert "earlier" in notes[0]


def test_a_500_that_is_not_about_the_format_is_not_a_refusal(fake: FakeServer) -> None:
    fake.routes["POST", "/v1/chat/completions"] = _refusing(
        {"json_schema": (500, b"upstream model crashed: CUDA OOM")}
    )
    with (
        OpenAIBackend(base_url=fake.url, model="m", supports_json_schema=True, timeout=5) as llm,
        pytest.raises(BackendStatusError) as info,
    ):
        llm.chat("hi", json_schema=SCHEMA)
    assert info.value.status == 500
    assert _kinds(fake) == ["json_schema"]


def test_a_request_without_a_form_is_never_retried_by_the_chain(fake: FakeServer) -> None:
    fake.routes["POST", "/v1/chat/completions"] = _refusing({None: (400, b"{}")})  # type: ignore[dict-item]
    with local(fake) as llm, pytest.raises(BackendStatusError):
        llm.chat("hi")
    assert _kinds(fake) == [None]


def test_structured_mode_the_server_lacks_is_refused(fake: FakeServer) -> None:
    with OpenAIBackend(preset="fastchat", base_url=fake.url, model="m") as llm:
        assert not llm.supports_json_schema
        assert not llm.supports_json_mode
        with pytest.raises(ConfigError, match="supports_json_schema=True"):
            llm.chat("hi", json_schema=SCHEMA)
    with OpenAIBackend(
        preset="fastchat", base_url=fake.url, model="m", supports_json_mode=True
    ) as llm:
        assert llm.supports_json_mode
    # The class itself claims nothing; only instances know their server.
    assert not OpenAIBackend.supports_json_schema


def test_stream_reports_server_usage_on_the_last_chunk(fake: FakeServer) -> None:
    fake.routes["POST", "/v1/chat/completions"] = lambda h, _: send_sse(
        h, [chunk("Hel"), chunk("lo"), chunk(None, "stop"), usage_chunk(11, 2)]
    )
    with local(fake) as llm:
        chunks = list(llm.stream("hi"))
    assert "".join(c.text for c in chunks) == "Hello"
    assert [c.finish_reason for c in chunks] == [None, None, "stop"]
    last = chunks[-1].usage
    assert last is not None
    assert (last.prompt_tokens, last.completion_tokens) == (11, 2)
    body = fake.chat_requests()[0].body
    assert body["stream"] is True
    assert body["stream_options"] == {"include_usage": True}


def test_usage_is_counted_when_the_server_gives_none(fake: FakeServer) -> None:
    fake.routes["POST", "/v1/chat/completions"] = lambda h, _: send_json(
        h, 200, completion("a" * 30, usage=False)
    )
    with local(fake) as llm:
        out = llm.chat("b" * 60)
    # No tokenizer endpoint here, so the base estimate: 1 token per 3 characters.
    assert out.usage.completion_tokens == 10
    assert out.usage.prompt_tokens >= 20


# -- keys -----------------------------------------------------------------------------


def test_hosted_preset_without_key_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DEEPSEEK_API_KEY", raising=False)
    with pytest.raises(MissingKey) as info:
        OpenAIBackend(preset="deepseek", model="deepseek-chat")
    assert info.value.env_var == "DEEPSEEK_API_KEY"
    assert "DEEPSEEK_API_KEY" in str(info.value)
    with pytest.raises(MissingKey):
        registry.connect("deepseek", model="deepseek-chat", dotenv=None)
    monkeypatch.setenv("DEEPSEEK_API_KEY", "")  # empty counts as unset
    with pytest.raises(MissingKey):
        OpenAIBackend(preset="deepseek", model="deepseek-chat")


@pytest.mark.parametrize(
    ("base_url", "says"),
    [
        ("http://[::1", "Invalid IPv6 URL"),
        ("http://127.0.0.1:99999/v1", "Port out of range"),
        ("ftp://127.0.0.1/v1", "http:// or https://"),
        ("127.0.0.1:8080/v1", "http:// or https://"),
        ("http://", "no host"),
        ("http://user:hunter2@[::1", "Invalid IPv6 URL"),
    ],
    ids=["unclosed-ipv6", "port-out-of-range", "not-http", "no-scheme", "no-host", "password"],
)
def test_a_base_url_that_is_no_server_address_is_a_config_error(base_url: str, says: str) -> None:
    # A ValueError from the URL parser, or "lost the connection" at the first request.
    with pytest.raises(ConfigError, match=re.escape(says)) as info:
        OpenAIBackend(preset="llamacpp", base_url=base_url)
    assert "hunter2" not in str(info.value)


def test_hosted_preset_needs_a_model(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DEEPSEEK_API_KEY", "sk-test")
    with pytest.raises(ConfigError, match="model="):
        OpenAIBackend(preset="deepseek")


def test_unknown_preset_lists_known_ones() -> None:
    with pytest.raises(ConfigError, match="llamacpp"):
        OpenAIBackend(preset="nosuch", base_url="http://127.0.0.1:1/v1")


def test_local_servers_get_a_placeholder_not_the_openai_key(
    fake: FakeServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The SDK alone would send OPENAI_API_KEY to whatever base_url it is given.
    monkeypatch.setenv("OPENAI_API_KEY", "sk-real-openai-key")
    monkeypatch.delenv("VLLM_API_KEY", raising=False)
    fake.routes["POST", "/v1/chat/completions"] = lambda h, _: send_json(h, 200, completion())
    with local(fake) as llm:
        llm.chat("hi")
    # The "openai" preset pointed at a local server is a local server: no key needed.
    with OpenAIBackend(preset="openai", base_url=fake.url, model="m") as llm:
        pass
    monkeypatch.setenv("VLLM_API_KEY", "vllm-key")
    with local(fake) as llm:
        llm.chat("hi")
    first, second = (r.headers["authorization"] for r in fake.chat_requests())
    assert "sk-real-openai-key" not in first
    assert first == "Bearer sk-no-key-required"
    assert second == "Bearer vllm-key"


def test_api_key_never_shows_in_repr_errors_or_logs(
    fake: FakeServer, caplog: pytest.LogCaptureFixture
) -> None:
    key = "sk-very-secret-0123456789"

    def echo_key(h: BaseHTTPRequestHandler, _: Any) -> None:
        # A careless server that repeats the credentials it was sent.
        auth = h.headers.get("Authorization", "")
        send_json(h, 401, {"error": {"message": f"invalid key in header {auth!r}"}})

    caplog.set_level(logging.DEBUG)
    errors: list[BaseException] = []
    fake.routes["POST", "/v1/chat/completions"] = echo_key
    with OpenAIBackend(preset="openai", base_url=fake.url, model="m", api_key=key) as llm:
        text = repr(llm) + str(llm)
        with pytest.raises(BackendStatusError) as info:
            llm.chat("hi")
        errors.append(info.value)
    url = f"http://127.0.0.1:{closed_port()}/v1"
    with OpenAIBackend(preset="openai", base_url=url, model="m", api_key=key) as llm:
        with pytest.raises(BackendUnreachable) as info2:
            llm.chat("hi")
        errors.append(info2.value)
    assert fake.chat_requests()[0].headers["authorization"] == f"Bearer {key}"  # it was sent
    status_error = errors[0]
    assert isinstance(status_error, BackendStatusError)
    assert status_error.status == 401
    assert "***" in status_error.body
    for error in errors:
        text += str(error) + repr(error) + str(getattr(error, "body", ""))
    assert "Sending HTTP Request" in caplog.text  # the SDK's debug log was captured
    text += caplog.text
    assert key not in text


KEY = "sk-test-LEAKCHECK-1234"


def echoing(kind: str, pad: int = 0) -> Route:
    """A careless server that repeats the Authorization header it got, in the reply
    (as ``kind`` says, after ``pad`` characters) and as the response header ``X-Echo``."""

    def route(h: BaseHTTPRequestHandler, _: Any) -> None:
        auth = "p" * pad + h.headers.get("Authorization", "")
        replies: dict[str, tuple[int, str, bytes]] = {
            "status-401": (
                401,
                "application/json",
                json.dumps({"error": {"message": f"invalid key in header {auth!r}"}}).encode(),
            ),
            "200-no-choices": (
                200,
                "application/json",
                json.dumps({**completion(), "choices": [], "echo": auth}).encode(),
            ),
            "200-not-json": (200, "application/json", f"<html>{auth}</html>".encode()),
            "chunk-no-choices": (
                200,
                "text/event-stream",
                f"data: {json.dumps({'id': 'c1', 'object': 'chat.completion.chunk', 'echo': auth})}"
                "\n\n".encode(),
            ),
            "error-event": (
                200,
                "text/event-stream",
                f"data: {json.dumps({'error': {'message': f'bad key {auth}'}})}\n\n".encode(),
            ),
        }
        status, ctype, body = replies[kind]
        h.send_response(status)
        h.send_header("Content-Type", ctype)
        h.send_header("Content-Length", str(len(body)))
        h.send_header("X-Echo", h.headers.get("Authorization", ""))
        h.end_headers()
        h.wfile.write(body)

    return route


LEAKS = {
    # kind: (calls that meet it, the error)
    "status-401": (["chat", "achat", "stream", "astream"], BackendStatusError),
    "200-no-choices": (["chat", "achat"], BadResponse),
    "200-not-json": (["chat", "achat"], BadResponse),
    "chunk-no-choices": (["stream", "astream"], BadResponse),
    "error-event": (["stream", "astream"], BackendStatusError),
}


@pytest.mark.parametrize(
    ("kind", "call"),
    [(kind, call) for kind, (calls, _) in LEAKS.items() for call in calls],
)
def test_an_echoed_key_shows_nowhere(
    fake: FakeServer,
    caplog: pytest.LogCaptureFixture,
    no_secret: SecretCheck,
    kind: str,
    call: str,
) -> None:
    caplog.set_level(logging.DEBUG)
    fake.routes["POST", "/v1/chat/completions"] = echoing(kind)
    with local(fake, api_key=KEY) as llm, pytest.raises(LEAKS[kind][1]) as info:
        run_call(llm, call)
    assert fake.chat_requests()[-1].headers["authorization"] == f"Bearer {KEY}"  # it was sent
    assert "X-Echo" in caplog.text  # the echoed header was logged (redacted)
    chain = no_secret(KEY, info.value, logs=caplog.text)
    # The SDK's exceptions (which hold the request and its headers) are not kept.
    assert all(isinstance(link, RedactedCause) for link in chain[1:])


@pytest.mark.parametrize("kind", ["status-401", "200-no-choices", "chunk-no-choices"])
def test_a_key_cut_by_a_shortened_message_leaves_no_part_behind(
    fake: FakeServer, kind: str
) -> None:
    # Messages quote at most a few hundred characters of a reply; wherever the cut falls,
    # no first half of the key may stay (the key is redacted before anything is cut).
    call = LEAKS[kind][0][0]
    with local(fake, api_key=KEY) as llm:
        for pad in range(0, 330, 4):
            fake.routes["POST", "/v1/chat/completions"] = echoing(kind, pad)
            with pytest.raises(BackendError) as info:
                run_call(llm, call)
            shown = str(info.value) + repr(info.value) + str(getattr(info.value, "body", ""))
            assert KEY[:10] not in shown, pad


def test_a_key_in_base_url_shows_nowhere(
    caplog: pytest.LogCaptureFixture, no_secret: SecretCheck, hung_url: str
) -> None:
    caplog.set_level(logging.DEBUG)
    url = hung_url.replace("http://", "http://user:pw-LEAKCHECK-5678@")
    with OpenAIBackend(base_url=url, model="m", timeout=0.5) as llm:
        with pytest.raises(BackendTimeout) as info:
            llm.chat("hi")
        assert "pw-LEAKCHECK-5678" not in repr(llm)
    no_secret("pw-LEAKCHECK-5678", info.value, logs=caplog.text)


# -- connect --------------------------------------------------------------------------


def test_connect_builds_presets(fake: FakeServer) -> None:
    llm = registry.connect("llamacpp", base_url=fake.url, model="m", dotenv=None)
    with llm:
        assert isinstance(llm, OpenAIBackend)
        assert llm.preset is not None
        assert llm.preset.name == "llamacpp"
        assert llm.base_url == fake.url
    with registry.connect("openai", base_url=fake.url, model="m", dotenv=None) as llm:
        assert isinstance(llm, OpenAIBackend)
    with pytest.raises(ConfigError, match="refused"):
        registry.connect("vllm", base_url=fake.url, bogus_field=1, dotenv=None)


def test_close_is_idempotent(fake: FakeServer) -> None:
    llm = local(fake)
    llm.close()
    llm.close()


# -- against a real llama-cpp-python server ------------------------------------------------

PROMPT = [{"role": "user", "content": "What is the capital of France? Answer in one sentence."}]


@pytest.fixture
def llm(llama_server: LlamaServer) -> Iterator[OpenAIBackend]:
    with OpenAIBackend(preset="llamacpp", base_url=llama_server.base_url, timeout=60) as backend:
        yield backend


@pytest.mark.server
def test_real_chat_returns_text_usage_and_finish(llm: OpenAIBackend) -> None:
    out = llm.chat(PROMPT, max_tokens=32, temperature=0)
    assert out.text.strip()
    assert out.finish_reason in ("stop", "length")
    assert out.usage.prompt_tokens > 5
    assert 0 < out.usage.completion_tokens <= 32
    assert llm.model.endswith(".gguf")  # discovered from /v1/models


@pytest.mark.server
def test_real_max_tokens_cuts_with_length(llm: OpenAIBackend) -> None:
    out = llm.chat("Write a long story about a dragon.", max_tokens=5, temperature=0)
    assert out.finish_reason == "length"
    assert out.truncated
    assert out.usage.completion_tokens == 5


@pytest.mark.server
def test_real_stream_matches_chat(llm: OpenAIBackend) -> None:
    whole = llm.chat(PROMPT, max_tokens=24, temperature=0)
    chunks = list(llm.stream(PROMPT, max_tokens=24, temperature=0))
    streamed = "".join(c.text for c in chunks)
    assert streamed.strip()
    assert streamed == whole.text
    assert len(chunks) > 2  # it did arrive in pieces
    assert chunks[-1].finish_reason == whole.finish_reason
    assert all(c.finish_reason is None for c in chunks[:-1])
    usage = chunks[-1].usage
    assert usage is not None
    # llama-cpp-python sends no usage in streams; the driver counts with the server's
    # tokenizer, which may split the text a little differently from generation.
    assert abs(usage.completion_tokens - whole.usage.completion_tokens) <= 2


@pytest.mark.server
def test_real_json_schema_output_validates(llm: OpenAIBackend) -> None:
    schema = {
        "type": "object",
        "properties": {
            "city": {"type": "string", "maxLength": 20},
            "population_millions": {"type": "integer"},
        },
        "required": ["city", "population_millions"],
        "additionalProperties": False,
    }
    out = llm.chat(
        "Paris has about 2 million people. Give the city and its population as JSON.",
        json_schema=schema,
        temperature=0,
        max_tokens=48,
    )
    value = json.loads(out.text)
    jsonschema.validate(value, schema)


@pytest.mark.server
def test_real_server_refusal_of_the_openai_form_moves_to_the_next_one(
    llama_server: LlamaServer,
) -> None:
    # llama-cpp-python 0.3.x answers OpenAI's own {"type": "json_schema"} with HTTP 500
    # (pydantic's complaint about response_format.type); the driver then sends the
    # schema inside {"type": "json_object"}, which that server accepts, and remembers.
    schema = {
        "type": "object",
        "properties": {"city": {"type": "string", "maxLength": 20}},
        "required": ["city"],
    }
    with OpenAIBackend(
        base_url=llama_server.base_url, supports_json_schema=True, timeout=60
    ) as llm:
        out = llm.chat("Name a city as JSON.", json_schema=schema, max_tokens=24, temperature=0)
        jsonschema.validate(json.loads(out.text), schema)
        assert any("refused" in n and "json_schema" in n for n in out.notes), out.notes
        again = llm.chat("Name a city as JSON.", json_schema=schema, max_tokens=24, temperature=0)
        assert any("earlier" in n for n in again.notes), again.notes


@pytest.mark.server
@pytest.mark.slow
def test_real_connect_openai_at_a_llamacpp_server_gives_valid_values(
    llama_server: LlamaServer,
) -> None:
    # The way most people point an OpenAI client at a local server: the "openai"
    # preset, whose JSON Schema form this server refuses.
    from repairllm import connect, generate

    schema = {
        "type": "object",
        "properties": {"name": {"type": "string"}, "age": {"type": "integer"}},
        "required": ["name", "age"],
    }
    with connect("openai", base_url=llama_server.base_url, dotenv=None) as llm:
        for prompt in ("Alice is 31.", "Bob Stone is 45 years old.", "Carla, aged 27."):
            result = generate(llm, prompt, schema, outcome=True, temperature=0, max_tokens=48)
            jsonschema.validate(result.data, schema)
            assert result.attempts[-1].native
    notes = [n for a in result.attempts for n in a.notes]
    assert any("earlier" in n for n in notes), notes


@pytest.mark.server
def test_real_timeout(llm: OpenAIBackend) -> None:
    start = time.monotonic()
    with pytest.raises(BackendTimeout):
        llm.chat("Write a long story about a dragon.", max_tokens=48, timeout=0.05)
    assert time.monotonic() - start < 5


@pytest.mark.server
def test_real_context_too_long(llm: OpenAIBackend, llama_server: LlamaServer) -> None:
    huge = "apple " * 2500
    # Unknown context: the server refuses, and the driver reads its numbers.
    with pytest.raises(ContextTooLong) as info:
        llm.chat(huge, max_tokens=8)
    assert info.value.limit == 2048
    assert info.value.n_tokens > 2048
    assert llm.context_length == 2048
    # A context given up front: refused before any request.
    with OpenAIBackend(
        preset="llamacpp", base_url=llama_server.base_url, context_length=64
    ) as small:
        with pytest.raises(ContextTooLong) as info:
            small.chat("apple " * 80, max_tokens=8)
        assert info.value.limit == 64


@pytest.mark.server
def test_real_count_tokens_uses_the_server_tokenizer(llm: OpenAIBackend) -> None:
    # SmolLM2's template is ChatML: with a system message the count is exact ...
    messages = [{"role": "system", "content": "You are terse."}, *PROMPT]
    out = llm.chat(messages, max_tokens=4, temperature=0)
    assert llm.count_tokens(messages) == out.usage.prompt_tokens
    # ... and without one the template adds its default system prompt, not counted.
    out = llm.chat(PROMPT, max_tokens=4, temperature=0)
    assert 0 < llm.count_tokens(PROMPT) < out.usage.prompt_tokens
    # Characters per token differ from the estimate's fixed three: proof it asked the server.
    assert llm.count_tokens("a" * 300) != 100
    assert llm.count_tokens("hello world") < llm.count_tokens("hello world, hello moon")


@pytest.mark.server
def test_real_async(llm: OpenAIBackend) -> None:
    async def run() -> tuple[str, str]:
        whole = await llm.achat(PROMPT, max_tokens=16, temperature=0)
        parts = [c async for c in llm.astream(PROMPT, max_tokens=16, temperature=0)]
        assert parts[-1].finish_reason == whole.finish_reason
        assert whole.usage.completion_tokens > 0
        return whole.text, "".join(p.text for p in parts)

    whole, streamed = asyncio.run(run())
    assert whole.strip()
    assert streamed == whole
    # A second event loop works too: no client outlives its loop.
    again = asyncio.run(llm.achat(PROMPT, max_tokens=16, temperature=0))
    assert again.text == whole


@pytest.mark.server
def test_real_connect_by_preset_name(llama_server: LlamaServer) -> None:
    with registry.connect("llamacpp", base_url=llama_server.base_url, dotenv=None) as llm:
        assert isinstance(llm, OpenAIBackend)
        out = llm.chat("Say yes.", max_tokens=4, temperature=0)
    assert out.text
    assert out.usage.completion_tokens > 0


@pytest.mark.server
@pytest.mark.slow
@needs_llama_cpp
def test_real_server_killed_mid_stream() -> None:
    with serve(n_ctx=512) as second:
        with OpenAIBackend(preset="llamacpp", base_url=second.base_url, timeout=30) as llm:
            chunks = llm.stream(
                "Count from 1 to 500, one number per line.", max_tokens=400, temperature=0
            )
            first = next(chunks)
            assert first.finish_reason is None
            second.process.kill()
            start = time.monotonic()
            with pytest.raises(BackendError) as info:
                for _ in chunks:
                    pass
            assert time.monotonic() - start < 5
        assert info.value.transient
        assert second.process.wait(5) is not None


# -- the serve() utility ------------------------------------------------------------------


def test_serve_without_llama_cpp_gives_the_install_hint(monkeypatch: pytest.MonkeyPatch) -> None:
    from repairllm.bench import llamacpp_server

    monkeypatch.setattr(llamacpp_server, "_NEEDED", ("llama_cpp_not_installed_here",))
    with pytest.raises(ConfigError, match=r"pip install 'llama-cpp-python\[server\]'"), serve():
        pass


@needs_llama_cpp
def test_serve_refuses_a_missing_model_file(tmp_path: Any) -> None:
    with pytest.raises(ConfigError, match="no model file"), serve(tmp_path / "nothing.gguf"):
        pass


@pytest.mark.server
@needs_llama_cpp
def test_serve_reports_a_server_that_dies_with_its_output(tmp_path: Any) -> None:
    broken = tmp_path / "broken.gguf"
    broken.write_bytes(b"this is not a gguf file")
    start = time.monotonic()
    with (
        pytest.raises(BackendUnreachable, match="exited with code") as info,
        serve(broken, startup_timeout=60),
    ):
        pass
    assert time.monotonic() - start < 60
    assert "broken.gguf" in str(info.value)  # the server's own complaint is in the message


@pytest.mark.server
def test_serve_cleans_up(llama_server: LlamaServer) -> None:
    with serve(n_ctx=256) as other:
        assert other.port != llama_server.port
        assert other.base_url == f"http://127.0.0.1:{other.port}/v1"
        assert other.process.poll() is None
        log = other.log_path
    assert other.process.returncode is not None
    assert not log.exists()
    with pytest.raises(ConnectionRefusedError):  # nothing listens there any more
        socket.create_connection(("127.0.0.1", other.port), timeout=2).close()
