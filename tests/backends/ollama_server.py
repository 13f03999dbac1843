"""A loopback server speaking Ollama's native API, for the ollama driver's tests.

No Ollama binary can be installed where the tests run, so this stands in for one: a
real HTTP/1.1 server on 127.0.0.1 (keep-alive, chunked NDJSON streams) that answers
``/api/chat``, ``/api/tags``, ``/api/show`` and ``/api/version`` in the shapes
Ollama's API documentation gives, errors included (``{"error": "..."}`` with 400,
404 or 500, or as a line in the middle of a stream).

The "model" is deterministic: it echoes the last user message, or, when ``format``
holds a JSON Schema, answers with an instance built from the schema; ``format:
"json"`` gives a small object. With ``tools`` it calls the first tool (the only one
when several are sent) with an instance of its ``parameters``, the arguments an
object as Ollama sends them; a :class:`Model` with ``tools=False`` is refused with
Ollama's 400 "... does not support tools". ``options.num_predict`` cuts the reply at that many
tokens (whitespace-separated words) with ``done_reason: "length"``, and
``options.stop`` cuts it at a stop string. Tests script other replies and faults
with :class:`Reply`, and read what the server received in :attr:`FakeOllama.requests`.

Example:
    with FakeOllama() as server:
        server.script(Reply(text="hello"), Reply(status=500, body='{"error":"boom"}'))
        llm = OllamaBackend("tiny:latest", base_url=server.url)
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import re
import socket
import sys
import threading
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

__all__ = ["FakeOllama", "Model", "Reply", "Request", "example_instance"]

MID_STREAM_ERROR = "an error was encountered while running the model: unexpected EOF"


@dataclass
class Reply:
    """One scripted answer to the next ``/api/chat`` request.

    Attributes:
        text: the model's reply (else the default: an echo, or an instance of the schema).
        status: the HTTP status; with an error status and no ``body``, the body is
            ``{"error": "..."}``.
        body: a raw body sent as is instead of the reply (malformed JSON, say).
        lines: raw NDJSON lines sent as the stream instead of the reply's lines.
        delay: seconds to wait before answering (longer than the client's timeout
            to test timeouts).
        line_delay: seconds to wait between streamed lines.
        cut_after: in a stream, drop the connection after this many lines, without
            ending the chunked body.
        end_early: in a stream, end the body cleanly but leave out the ``done`` line.
        error_after: in a stream, send ``{"error": error}`` after this many lines.
        error: the error text for ``error_after`` and for bodiless error statuses.
        done_reason: overrides the computed ``done_reason``.
        counts: whether the final object carries ``prompt_eval_count``/``eval_count``.
        trickle: send the answer one byte every ``trickle`` seconds (a server that is
            slow but never silent for long), from byte ``trickle_from`` of the raw
            response: by default the body (a stream: after its first line); 0 trickles
            the status line and headers as well.
        trickle_from: see ``trickle``.
        echo: the name of a request header whose value a careless server repeats: it
            replaces ``{echo}`` in ``text``, ``body``, ``lines`` and ``error``, and comes
            back as the response header ``X-Echo`` (tests of key leaks).
        tool_calls: the calls the model makes, each ``{"name": ..., "arguments": ...}``
            (an object, as Ollama sends them, or a string); ``[]`` makes none, so the
            reply is ``text`` alone. By default a request with ``tools`` gets one call.
    """

    text: str | None = None
    status: int = 200
    body: str | bytes | None = None
    lines: list[str] | None = None
    delay: float = 0.0
    line_delay: float = 0.0
    cut_after: int | None = None
    end_early: bool = False
    error_after: int | None = None
    error: str = MID_STREAM_ERROR
    done_reason: str | None = None
    counts: bool = True
    trickle: float = 0.0
    trickle_from: int | None = None
    echo: str | None = None
    tool_calls: list[dict[str, Any]] | None = None

    def echoed(self, headers: Mapping[str, str]) -> Reply:
        """This reply with the echoed header's value put in (a copy; itself without ``echo``)."""
        if self.echo is None:
            return self
        value = headers.get(self.echo.lower(), "")

        def put(text: Any) -> Any:
            if isinstance(text, bytes):
                return text.replace(b"{echo}", value.encode())
            return text.replace("{echo}", value) if isinstance(text, str) else text

        return dataclasses.replace(
            self,
            text=put(self.text),
            body=put(self.body),
            lines=[put(line) for line in self.lines] if self.lines is not None else None,
            error=put(self.error),
        )


@dataclass(frozen=True)
class Request:
    """What the server received: method, path, parsed JSON body (or raw text), headers."""

    method: str
    path: str
    body: Any
    headers: Mapping[str, str]


@dataclass(frozen=True)
class Model:
    """A model the server "has", with what ``/api/show`` reports about it."""

    name: str
    context_length: int = 8192
    num_ctx: int | None = None
    family: str = "llama"
    tools: bool = True
    """Whether its template takes tools; without, ``tools`` are refused with a 400."""


@dataclass
class _State:
    models: dict[str, Model] = field(default_factory=dict)
    replies: deque[Reply] = field(default_factory=deque)
    requests: list[Request] = field(default_factory=list)
    broken: dict[str, tuple[int, str]] = field(default_factory=dict)
    errors: list[BaseException] = field(default_factory=list)


class FakeOllama:
    """A loopback Ollama. Use as a context manager, or call :meth:`start` and :meth:`stop`.

    Args:
        models: the models it has; by default one, ``tiny:latest``.
    """

    def __init__(self, models: Iterable[Model | str] = ("tiny:latest",)) -> None:
        self._state = _State()
        self._lock = threading.Lock()
        for model in models:
            self.add_model(model)
        self._stopping = threading.Event()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle ----------------------------------------------------------------------

    def start(self) -> FakeOllama:
        self._server = _Server(self)
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving, drop open connections and join every thread."""
        server, thread = self._server, self._thread
        if server is None or thread is None:
            return
        self._stopping.set()
        server.shutdown()
        server.drop_connections()
        server.server_close()  # joins the handler threads (block_on_close)
        thread.join()
        self._server = self._thread = None

    def __enter__(self) -> FakeOllama:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        assert self._server is not None, "start the server first"
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    @property
    def port(self) -> int:
        assert self._server is not None, "start the server first"
        return int(self._server.server_address[1])

    # -- scripting ----------------------------------------------------------------------

    def add_model(self, model: Model | str) -> None:
        """Give the server a model (a name, or a :class:`Model` with its context length)."""
        model = Model(model) if isinstance(model, str) else model
        with self._lock:
            self._state.models[model.name] = model

    def remove_model(self, name: str) -> None:
        with self._lock:
            self._state.models.pop(name, None)

    def script(self, *replies: Reply) -> None:
        """Queue replies for the next ``/api/chat`` requests, in order."""
        with self._lock:
            self._state.replies.extend(replies)

    def break_path(self, path: str, status: int = 500, body: str | None = None) -> None:
        """Make every request to ``path`` fail with ``status`` and an Ollama error body."""
        with self._lock:
            self._state.broken[path] = (status, body or json.dumps({"error": "broken"}))

    @property
    def requests(self) -> list[Request]:
        with self._lock:
            return list(self._state.requests)

    def bodies(self, path: str = "/api/chat") -> list[Any]:
        """The JSON bodies received on ``path``, oldest first."""
        return [r.body for r in self.requests if r.path == path]

    @property
    def errors(self) -> list[BaseException]:
        """Exceptions raised inside the server (other than clients hanging up)."""
        with self._lock:
            return list(self._state.errors)

    # -- the API ------------------------------------------------------------------------

    def _handle(self, handler: _Handler, method: str) -> None:
        length = int(handler.headers.get("Content-Length") or 0)
        raw = handler.rfile.read(length) if length else b""
        path = handler.path.split("?", 1)[0]
        try:
            body: Any = json.loads(raw) if raw else None
            bad_json: str | None = None
        except ValueError as exc:
            body, bad_json = raw.decode("utf-8", "replace"), str(exc)
        with self._lock:
            self._state.requests.append(
                Request(method, path, body, {k.lower(): v for k, v in handler.headers.items()})
            )
            broken = self._state.broken.get(path)
        if broken is not None:
            _send(handler, broken[0], broken[1])
        elif bad_json is not None:
            _send_error(handler, 400, f"invalid character in request body: {bad_json}")
        elif (method, path) == ("GET", "/"):
            _send(handler, 200, "Ollama is running", "text/plain; charset=utf-8")
        elif (method, path) == ("GET", "/api/version"):
            _send_json(handler, 200, {"version": "0.5.7"})
        elif (method, path) == ("GET", "/api/tags"):
            self._tags(handler)
        elif (method, path) == ("POST", "/api/show"):
            self._show(handler, body)
        elif (method, path) == ("POST", "/api/chat"):
            self._chat(handler, body)
        elif path in {"/api/tags", "/api/show", "/api/chat", "/api/version"}:
            _send(handler, 405, "405 method not allowed", "text/plain")
        else:
            _send(handler, 404, "404 page not found", "text/plain")

    def _tags(self, handler: _Handler) -> None:
        with self._lock:
            models = list(self._state.models.values())
        _send_json(
            handler,
            200,
            {
                "models": [
                    {
                        "name": m.name,
                        "model": m.name,
                        "modified_at": "2024-12-06T00:46:58.265747Z",
                        "size": 397821319,
                        "digest": f"{abs(hash(m.name)):064x}"[:64],
                        "details": {
                            "format": "gguf",
                            "family": m.family,
                            "families": [m.family],
                            "parameter_size": "135M",
                            "quantization_level": "Q4_1",
                        },
                    }
                    for m in models
                ]
            },
        )

    def _model(self, handler: _Handler, body: Any, key: str = "model") -> Model | None:
        name = (body.get(key) or body.get("name")) if isinstance(body, dict) else None
        if not isinstance(name, str) or not name:
            _send_error(handler, 400, "model is required")
            return None
        with self._lock:
            model = self._state.models.get(name) or self._state.models.get(f"{name}:latest")
        if model is None:
            _send_error(handler, 404, f"model '{name}' not found, try pulling it first")
        return model

    def _show(self, handler: _Handler, body: Any) -> None:
        model = self._model(handler, body)
        if model is None:
            return
        parameters = 'stop                           "<|im_end|>"'
        if model.num_ctx is not None:
            parameters += f"\nnum_ctx                        {model.num_ctx}"
        _send_json(
            handler,
            200,
            {
                "modelfile": f"FROM {model.name}\n",
                "parameters": parameters,
                "template": "{{ .Prompt }}",
                "details": {"format": "gguf", "family": model.family},
                "model_info": {
                    "general.architecture": model.family,
                    "general.parameter_count": 134515008,
                    f"{model.family}.context_length": model.context_length,
                    f"{model.family}.embedding_length": 576,
                },
                "capabilities": ["completion", "tools"] if model.tools else ["completion"],
            },
        )

    def _chat(self, handler: _Handler, body: Any) -> None:
        model = self._model(handler, body)
        if model is None:
            return
        messages = body.get("messages")
        if not isinstance(messages, list) or not all(
            isinstance(m, dict) and isinstance(m.get("content", ""), str) for m in messages
        ):
            _send_error(handler, 400, "messages must be a list of objects with string content")
            return
        fmt = body.get("format")
        if fmt not in (None, "", "json") and not isinstance(fmt, dict):
            _send_error(handler, 400, 'invalid format: expected "json" or a valid JSON schema')
            return
        options = body.get("options") or {}
        if not isinstance(options, dict):
            _send_error(handler, 400, "options must be an object")
            return
        tools = body.get("tools") or []
        if not _valid_tools(tools):
            _send_error(handler, 400, "invalid tools: expected a list of function tools")
            return
        if tools and not model.tools:
            _send_error(
                handler, 400, f"registry.ollama.ai/library/{model.name} does not support tools"
            )
            return
        with self._lock:
            reply = self._state.replies.popleft() if self._state.replies else Reply()
        if reply.echo is not None:
            handler.echo = handler.headers.get(reply.echo, "")
            reply = reply.echoed({k.lower(): v for k, v in handler.headers.items()})
        if reply.delay and self._stopping.wait(reply.delay):
            return
        if reply.status >= 400 or (reply.body is not None and reply.lines is None):
            if reply.body is None:
                _send_error(handler, reply.status, reply.error)
            else:
                _send(handler, reply.status, reply.body)
            return
        calls = _calls(reply, tools)
        if reply.text is not None:
            text = reply.text
        else:
            text = "" if calls else _default_text(messages, fmt)
        text, done_reason = _apply_limits(text, options)
        message: dict[str, Any] = {"role": "assistant", "content": text}
        if calls:
            message["tool_calls"] = calls
        final = {
            "model": model.name,
            "created_at": _now(),
            "done": True,
            "done_reason": reply.done_reason or done_reason,
            "total_duration": 1_000_000,
            "load_duration": 10_000,
        }
        if reply.counts:
            final["prompt_eval_count"] = sum(len(_tokens(m.get("content") or "")) for m in messages)
            final["prompt_eval_duration"] = 100_000
            final["eval_count"] = len(_tokens(text))
            final["eval_duration"] = 800_000
        if body.get("stream", True) is False:
            final["message"] = message
            if reply.trickle:
                self._send_trickle(handler, [json.dumps(final)], reply, stream=False)
                return
            _send_json(handler, 200, final)
            return
        if reply.lines is not None:
            lines = list(reply.lines)
        else:
            lines = [
                json.dumps(
                    {
                        "model": model.name,
                        "created_at": _now(),
                        "message": {"role": "assistant", "content": token},
                        "done": False,
                    }
                )
                for token in _tokens(text)
            ]
            if calls:  # Ollama streams the calls whole, in one line of their own
                lines.append(
                    json.dumps(
                        {
                            "model": model.name,
                            "created_at": _now(),
                            "message": {"role": "assistant", "content": "", "tool_calls": calls},
                            "done": False,
                        }
                    )
                )
            final["message"] = {"role": "assistant", "content": ""}
            lines.append(json.dumps(final))
        if reply.trickle:
            self._send_trickle(handler, lines, reply, stream=True)
            return
        self._send_stream(handler, lines, reply)

    def _send_trickle(
        self, handler: _Handler, lines: list[str], reply: Reply, *, stream: bool
    ) -> None:
        """Send the answer as raw bytes, the part after ``trickle_from`` one at a time."""
        body = "".join(line + "\n" for line in lines).encode() if stream else lines[0].encode()
        kind = "application/x-ndjson" if stream else "application/json; charset=utf-8"
        # A stream is delimited by closing the connection; a reply by its length.
        length = "Connection: close" if stream else f"Content-Length: {len(body)}"
        head = f"HTTP/1.1 200 OK\r\nContent-Type: {kind}\r\n{length}\r\n\r\n".encode()
        raw = head + body
        start = reply.trickle_from
        if start is None:
            start = len(head) + (len(lines[0]) + 1 if stream else 0)
        handler.close_connection = True
        handler.wfile.write(raw[:start])
        handler.wfile.flush()
        for i in range(start, len(raw)):
            if self._stopping.wait(reply.trickle):
                return
            handler.wfile.write(raw[i : i + 1])
            handler.wfile.flush()

    def _send_stream(self, handler: _Handler, lines: list[str], reply: Reply) -> None:
        handler.send_response(200)
        handler.send_header("Content-Type", "application/x-ndjson")
        handler.send_header("Transfer-Encoding", "chunked")
        _echo_header(handler)
        handler.end_headers()
        for i, line in enumerate(lines):
            if reply.error_after is not None and i == reply.error_after:
                _write_chunk(handler, json.dumps({"error": reply.error}) + "\n")
                break
            if reply.cut_after is not None and i == reply.cut_after:
                # Leave the chunked body unfinished: the client sees the peer hang up.
                handler.close_connection = True
                return
            if reply.end_early and i == len(lines) - 1:
                break
            _write_chunk(handler, line + "\n")
            if reply.line_delay and self._stopping.wait(reply.line_delay):
                handler.close_connection = True
                return
        handler.wfile.write(b"0\r\n\r\n")

    def _record_error(self, exc: BaseException) -> None:
        with self._lock:
            self._state.errors.append(exc)


class _Server(ThreadingHTTPServer):
    # Join the handler threads on close, instead of leaving daemon threads behind.
    daemon_threads = False
    block_on_close = True

    def __init__(self, fake: FakeOllama) -> None:
        self.fake = fake
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        super().__init__(("127.0.0.1", 0), _Handler)

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        with self._connections_lock:
            self._connections.add(request)
        try:
            super().process_request_thread(request, client_address)
        finally:
            with self._connections_lock:
                self._connections.discard(request)

    def drop_connections(self) -> None:
        # Wake handler threads waiting for a keep-alive client's next request.
        with self._connections_lock:
            connections = list(self._connections)
        for sock in connections:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def handle_error(self, request: Any, client_address: Any) -> None:
        exc = sys.exc_info()[1]
        if exc is not None and not isinstance(exc, ConnectionError | TimeoutError):
            self.fake._record_error(exc)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "ollama-fake/0.1"
    timeout = 10  # an idle keep-alive connection ends on its own
    server: _Server
    echo: str | None = None  # a header value the scripted reply repeats as X-Echo

    def do_GET(self) -> None:
        self.echo = None
        self.server.fake._handle(self, "GET")

    def do_POST(self) -> None:
        self.echo = None
        self.server.fake._handle(self, "POST")

    def do_DELETE(self) -> None:
        self.echo = None
        self.server.fake._handle(self, "DELETE")

    def log_message(self, format: str, *args: Any) -> None:
        pass


# -- wire helpers ------------------------------------------------------------------------


def _send(handler: _Handler, status: int, body: str | bytes, content_type: str = "") -> None:
    data = body.encode() if isinstance(body, str) else body
    handler.send_response(status)
    handler.send_header("Content-Type", content_type or "application/json; charset=utf-8")
    handler.send_header("Content-Length", str(len(data)))
    _echo_header(handler)
    handler.end_headers()
    handler.wfile.write(data)


def _echo_header(handler: _Handler) -> None:
    if handler.echo:
        handler.send_header("X-Echo", handler.echo)


def _send_json(handler: _Handler, status: int, data: Any) -> None:
    _send(handler, status, json.dumps(data))


def _send_error(handler: _Handler, status: int, message: str) -> None:
    _send_json(handler, status, {"error": message})


def _write_chunk(handler: _Handler, text: str) -> None:
    data = text.encode()
    handler.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")


def _now() -> str:
    return datetime.now(timezone.utc).isoformat().replace("+00:00", "Z")


# -- the "model" -------------------------------------------------------------------------


def _tokens(text: str) -> list[str]:
    """Words with their trailing space: joined again they give the text back."""
    return re.findall(r"\S+\s*|\s+", text)


def _default_text(messages: list[dict[str, Any]], fmt: Any) -> str:
    last = next((m.get("content") or "" for m in reversed(messages) if m.get("role") == "user"), "")
    if isinstance(fmt, dict):
        return json.dumps(example_instance(fmt))
    if fmt == "json":
        return json.dumps({"reply": last})
    return f"You said: {last}"


def _valid_tools(tools: Any) -> bool:
    return isinstance(tools, list) and all(
        isinstance(t, dict)
        and t.get("type", "function") == "function"
        and isinstance(t.get("function"), dict)
        and isinstance(t["function"].get("name"), str)
        for t in tools
    )


def _calls(reply: Reply, tools: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The ``tool_calls`` of the reply, in Ollama's shape (arguments as objects)."""
    if reply.tool_calls is not None:
        wanted = reply.tool_calls
    elif tools:
        function = tools[0]["function"]
        wanted = [
            {
                "name": function["name"],
                "arguments": example_instance(function.get("parameters") or {"type": "object"}),
            }
        ]
    else:
        return []
    return [
        {"function": {"index": i, "name": c["name"], "arguments": c.get("arguments", {})}}
        for i, c in enumerate(wanted)
    ]


def _apply_limits(text: str, options: Mapping[str, Any]) -> tuple[str, str]:
    stops = options.get("stop") or []
    cuts = [text.find(s) for s in stops if isinstance(s, str) and s and s in text]
    if cuts:
        text = text[: min(cuts)]
    limit = options.get("num_predict")
    tokens = _tokens(text)
    if isinstance(limit, int) and 0 <= limit < len(tokens):
        return "".join(tokens[:limit]), "length"
    return text, "stop"


def example_instance(schema: Any, root: Any = None, depth: int = 0) -> Any:
    """A value that satisfies ``schema`` (the common keywords), as a constrained model gives."""
    root = schema if root is None else root
    if not isinstance(schema, dict) or depth > 20:
        return None
    if "$ref" in schema:
        target: Any = root
        for part in schema["$ref"].lstrip("#/").split("/"):
            if part:
                target = target[part.replace("~1", "/").replace("~0", "~")]
        return example_instance(target, root, depth + 1)
    if "const" in schema:
        return schema["const"]
    if schema.get("enum"):
        return schema["enum"][0]
    for key in ("anyOf", "oneOf"):
        if schema.get(key):
            return example_instance(schema[key][0], root, depth + 1)
    if schema.get("allOf"):
        merged = {k: v for k, v in schema.items() if k != "allOf"}
        for sub in schema["allOf"]:
            merged.update(sub)
        return example_instance(merged, root, depth + 1)
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    if kind is None:
        kind = "object" if "properties" in schema else "array" if "items" in schema else "string"
    if kind == "object":
        return {
            name: example_instance(sub, root, depth + 1)
            for name, sub in (schema.get("properties") or {}).items()
        }
    if kind == "array":
        count = max(int(schema.get("minItems", 1)), 0)
        count = min(count, int(schema.get("maxItems", count)))
        return [example_instance(schema.get("items") or {}, root, depth + 1) for _ in range(count)]
    if kind in ("integer", "number"):
        value: float = 1 if kind == "integer" else 1.5
        if "minimum" in schema:
            value = max(value, schema["minimum"])
        if "exclusiveMinimum" in schema:
            value = max(value, schema["exclusiveMinimum"] + 1)
        if "maximum" in schema:
            value = min(value, schema["maximum"])
        return int(value) if kind == "integer" else value
    if kind == "boolean":
        return True
    if kind == "null":
        return None
    formats = {
        "date": "2024-01-31",
        "date-time": "2024-01-31T12:00:00Z",
        "email": "someone@example.com",
        "uri": "https://example.com/",
    }
    text = formats.get(schema.get("format", ""), "example")
    text = text.ljust(int(schema.get("minLength", 0)), "x")
    return text[: int(schema.get("maxLength", len(text)))]
