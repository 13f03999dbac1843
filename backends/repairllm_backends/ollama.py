"""The ollama driver: Ollama's native API (``/api/chat``) over httpx.

Ollama also serves an OpenAI-compatible ``/v1``, but only the native API takes a
JSON Schema in ``format``, the Modelfile ``options`` (``num_ctx``, ``num_predict``
...) and ``keep_alive``, and reports ``done_reason``. Tools go in ``tools``; the calls
come back in ``message.tool_calls`` with ``arguments`` as an object, not a string.
Streaming is NDJSON: one JSON object per line, the last with ``"done": true`` and the
token counts. An error is ``{"error": "..."}``, either as the body of an HTTP error
status or, once a stream has begun, as a line of the stream.

Example:
    >>> llm = OllamaBackend("qwen2.5:0.5b")  # doctest: +SKIP
    >>> llm.chat("Name a colour.", max_tokens=8).text  # doctest: +SKIP
    'Blue.'
"""

from __future__ import annotations

import os
import threading
import urllib.parse
import weakref
from collections.abc import AsyncIterator, Iterator, Mapping
from contextlib import contextmanager
from typing import Any, ClassVar

import httpx
import orjson

from repairllm import __version__
from repairllm.backend import (
    Backend,
    ChatOptions,
    Chunk,
    Completion,
    Message,
    Messages,
    ToolCall,
    Usage,
    redact_error,
    redact_text,
)
from repairllm.errors import (
    BackendError,
    BackendStatusError,
    BackendTimeout,
    BackendUnreachable,
    BadResponse,
    ConfigError,
    InvalidInput,
    RepairLLMError,
)

from ._http import (
    SECRETS,
    Deadline,
    StreamDeadlines,
    async_deadline,
    bound_transports,
    checked_url,
    current_deadline,
    protect_logs,
    shared_ssl_context,
    url_secrets,
    within,
)

__all__ = ["DEFAULT_HOST", "OllamaBackend", "OllamaOptions"]

DEFAULT_HOST = "http://127.0.0.1:11434"
_DEFAULT_PORT = 11434
# The context length before the server was asked. ``None`` after asking means the
# server could not say, so a server without /api/show is asked once, not every call.
_UNSET: Any = object()
# Headers whose values say nothing secret; every other header given is redacted.
_PLAIN_HEADERS = frozenset(
    {"accept", "accept-encoding", "accept-language", "cache-control", "connection"}
    | {"content-type", "user-agent"}
)


class OllamaOptions(ChatOptions):
    """Per-call options: the common ones plus Ollama's own.

    Attributes:
        keep_alive: how long Ollama keeps the model loaded after the call (``"5m"``,
            seconds as a number, ``-1`` for ever, ``0`` to unload at once).
        options: Modelfile parameters sent in ``options`` (``num_ctx``, ``top_k``,
            ``repeat_penalty`` ...), over the driver's own ``options``; the common
            options (``max_tokens`` as ``num_predict``, ``temperature`` ...) win over both.
        think: Ollama's ``think`` for reasoning models (``False`` turns thinking off,
            which small models need to answer with JSON at once).
    """

    keep_alive: str | int | float | None = None
    options: dict[str, Any] | None = None
    think: bool | str | None = None


class _ServerError(Exception):
    """Ollama said ``{"error": ...}``: in an error status's body or as a stream line."""

    def __init__(self, status: int, body: str, mid_stream: bool = False) -> None:
        super().__init__(body)
        self.status = status
        self.body = body
        self.mid_stream = mid_stream


class _StreamEnded(Exception):
    """The NDJSON stream ended before its ``done`` line."""


class OllamaBackend(Backend):
    """Ollama's native chat API.

    Args:
        model: the model tag, as ``ollama list`` shows it (``"qwen2.5:0.5b"``).
        base_url: the server; a bare ``host``, ``host:port`` or ``:port`` is read as
            Ollama reads ``OLLAMA_HOST``. Defaults to ``OLLAMA_HOST``, else
            ``http://127.0.0.1:11434``.
        timeout: seconds a call may take, in all: for :meth:`chat` (and ``achat``)
            from the call to the whole reply, connecting, sending, every read and the
            ``/api/show`` request the first call makes included, however slowly the
            server trickles its bytes (a model that is still loading can take a
            while). For :meth:`stream` it bounds the wait for each line: the first
            (all of the above until it) and every later one. A call's ``timeout=``
            option replaces it for that call. Past it:
            :class:`~repairllm.errors.BackendTimeout` naming the deadline.
        stream_timeout: seconds a whole stream may take, however steadily lines come;
            ``None`` (the default): only ``timeout`` between lines bounds it.
        keep_alive: sent with every call unless the call gives its own.
        options: Modelfile parameters sent with every call (``{"num_ctx": 8192}``).
        context_length: the context window. When not given it is read once, on first
            use, from the ``options``' ``num_ctx``, else from ``/api/show`` (the
            Modelfile's ``num_ctx``, else the model's ``*.context_length``), and is
            ``None`` (no check) when the server cannot say. Ollama itself runs a model
            with its default ``num_ctx`` unless told otherwise and cuts longer prompts
            silently, so set ``options={"num_ctx": N}`` to make both agree.
        defaults: option values for calls that do not give them.
        headers: extra HTTP headers (a proxy's authorization, for example). Their
            values (all but plain ones such as ``Accept``) are secrets: redacted from
            every error, its cause chain and the transport's log records.

    Raises:
        ConfigError: without a model, or with a base URL that is not a URL.
    """

    name: ClassVar[str] = "ollama"
    supports_json_schema: bool = True
    supports_json_mode: bool = True
    # Models whose template has no tools are refused with a 400 ("... does not support
    # tools"), which structured calls read as a refusal and fall back from.
    supports_tools: bool = True
    supports_streaming: ClassVar[bool] = True
    options_cls: ClassVar[type[ChatOptions]] = OllamaOptions

    def __init__(
        self,
        model: str,
        *,
        base_url: str | None = None,
        timeout: float = 120.0,
        stream_timeout: float | None = None,
        keep_alive: str | int | float | None = None,
        options: Mapping[str, Any] | None = None,
        context_length: int | None = None,
        defaults: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        if not model or not isinstance(model, str):
            raise ConfigError(
                "the ollama backend needs a model: connect('ollama', model='qwen2.5:0.5b'); "
                "`ollama list` shows the installed ones"
            )
        if not isinstance(timeout, int | float) or timeout <= 0:
            raise ConfigError(f"timeout must be a positive number of seconds, not {timeout!r}")
        if stream_timeout is not None and (
            not isinstance(stream_timeout, int | float) or stream_timeout <= 0
        ):
            raise ConfigError(
                f"stream_timeout must be a positive number of seconds, not {stream_timeout!r}"
            )
        self.model = model
        self.base_url = _parse_host(base_url or os.environ.get("OLLAMA_HOST"))
        try:
            httpx.URL(self.base_url)
        except httpx.InvalidURL as exc:
            raise ConfigError(f"base_url {base_url!r} is not a URL: {exc}") from exc
        self.timeout = float(timeout)
        self.stream_timeout = None if stream_timeout is None else float(stream_timeout)
        self.keep_alive = keep_alive
        self.ollama_options: dict[str, Any] = dict(options or {})
        self.defaults = dict(defaults or {})
        self._headers = {"User-Agent": f"repairllm/{__version__}", **(headers or {})}
        self._secrets = _header_secrets(headers or {}) + tuple(url_secrets(self.base_url))
        SECRETS.add(self._secrets)
        self._forget_secrets = weakref.finalize(self, SECRETS.discard, self._secrets)
        protect_logs()
        self._client: httpx.Client | None = None
        self._lock = threading.Lock()
        if context_length is None and isinstance(self.ollama_options.get("num_ctx"), int):
            context_length = self.ollama_options["num_ctx"]
        self._context_length: Any = _UNSET if context_length is None else context_length

    # -- context length ---------------------------------------------------------------

    @property
    def context_length(self) -> int | None:
        """The context window in tokens, read from the server on first use (see the class)."""
        if self._context_length is _UNSET:
            with self._bounded():
                return self._discover_context_length()
        return self._context_length  # type: ignore[no-any-return]

    @context_length.setter
    def context_length(self, value: int | None) -> None:
        self._context_length = value

    def _discover_context_length(self) -> int | None:
        # Under the call's deadline: a hung server costs the first call one timeout.
        try:
            response = self._sync_client().post(
                "/api/show", json={"model": self.model}, timeout=self._time_left(10.0)
            )
        except httpx.ConnectError:
            # The server is not up yet: ask again next time rather than remember "unknown".
            return None
        except httpx.HTTPError:
            response = None
        self._context_length = _context_length_from_response(response)
        return self._context_length  # type: ignore[no-any-return]

    async def _adiscover_context_length(self, client: httpx.AsyncClient) -> None:
        if self._context_length is not _UNSET:
            return
        try:
            response = await client.post(
                "/api/show", json={"model": self.model}, timeout=self._time_left(10.0)
            )
        except httpx.ConnectError:
            return
        except httpx.HTTPError:
            response = None
        self._context_length = _context_length_from_response(response)

    # -- the contract -----------------------------------------------------------------

    def chat(self, messages: Messages, **options: Any) -> Completion:
        """Send the messages and return the reply, all within ``timeout`` (see the class).

        Raises:
            ContextTooLong: before any request, when the prompt cannot fit.
            BackendTimeout: when the deadline passes, naming it.
            BackendError: its kinds, for whatever the server or connection did.
        """
        protect_logs()
        with self._errors():
            timeout = self._timeout_of(options)
            self._sync_client()  # its setup (an SSL context) is not the server's time
            with within(Deadline(timeout)):
                return super().chat(messages, **options)

    def stream(self, messages: Messages, **options: Any) -> Iterator[Chunk]:
        """Like :meth:`chat`, yielding the reply line by line: ``timeout`` bounds the wait
        for each line, and ``stream_timeout`` (when set) the whole stream.

        The prompt is checked at once (the first call asks ``/api/show`` for the
        context length); the request is sent when the stream is first iterated.
        """
        protect_logs()
        with self._errors():
            self.options(**options)
            self._sync_client()  # its setup (an SSL context) is not the server's time
            clocks = self._stream_deadlines(options)
            with within(clocks.now):
                msgs, opts = self._prepare(messages, options)
        clocks.pause()
        return self._stream(msgs, opts, clocks)

    def _chat(self, messages: list[Message], options: ChatOptions) -> Completion:
        body = self._body(messages, options, stream=False)
        with self._errors():
            response = self._sync_client().post("/api/chat", json=body, timeout=self._time_left())
            if response.is_error:
                raise _ServerError(response.status_code, response.text)
            return self._completion(_loads(response.content, self._secrets), messages)

    def _stream(
        self,
        messages: list[Message],
        options: ChatOptions,
        clocks: StreamDeadlines | None = None,
    ) -> Iterator[Chunk]:
        if clocks is None:
            clocks = self._stream_deadlines(options)
        clocks.resume()
        body = self._body(messages, options, stream=True)
        decoder = _StreamDecoder(self, messages)
        client = self._sync_client()
        with self._errors(clocks):
            with within(clocks.now):
                request = client.stream("POST", "/api/chat", json=body, timeout=self._time_left())
                response = request.__enter__()
            try:
                with within(clocks.now):
                    if response.is_error:
                        response.read()
                        raise _ServerError(response.status_code, response.text)
                lines = response.iter_lines()
                while True:
                    # The deadline is set around each read, never across the yield.
                    with within(clocks.now):
                        line = next(lines, None)
                    if line is None:
                        break
                    chunk = decoder.feed(line)
                    if chunk is not None:
                        yield chunk
                    if decoder.done:
                        return
                    clocks.next_chunk()
                decoder.finish()
            finally:
                request.__exit__(None, None, None)

    async def achat(self, messages: Messages, **options: Any) -> Completion:
        """Async :meth:`chat` over ``httpx.AsyncClient``, within the same deadline."""
        protect_logs()
        timeout = self._timeout_of(options)
        client = self._async_client()  # its setup (an SSL context) is not the server's time
        deadline = Deadline(timeout)
        with self._errors(deadline), within(deadline):
            async with client, async_deadline(deadline):
                await self._adiscover_context_length(client)
                msgs, opts = self._prepare(messages, options)
                body = self._body(msgs, opts, stream=False)
                response = await client.post("/api/chat", json=body, timeout=self._time_left())
            if response.is_error:
                raise _ServerError(response.status_code, response.text)
            return self._completion(_loads(response.content, self._secrets), msgs)

    async def astream(self, messages: Messages, **options: Any) -> AsyncIterator[Chunk]:
        """Async :meth:`stream` over ``httpx.AsyncClient``, with the same deadlines."""
        protect_logs()
        self.options(**options)
        client = self._async_client()  # its setup (an SSL context) is not the server's time
        clocks = self._stream_deadlines(options)
        with self._errors(clocks):
            async with client:
                with within(clocks.now):
                    async with async_deadline(clocks.now):
                        await self._adiscover_context_length(client)
                        msgs, opts = self._prepare(messages, options)
                body = self._body(msgs, opts, stream=True)
                decoder = _StreamDecoder(self, msgs)
                with within(clocks.now):
                    async with async_deadline(clocks.now):
                        request = client.stream(
                            "POST", "/api/chat", json=body, timeout=self._time_left()
                        )
                        response = await request.__aenter__()
                try:
                    if response.is_error:
                        with within(clocks.now):
                            async with async_deadline(clocks.now):
                                await response.aread()
                        raise _ServerError(response.status_code, response.text)
                    lines = response.aiter_lines()
                    while True:
                        with within(clocks.now):
                            async with async_deadline(clocks.now):
                                line = await anext(lines, None)
                        if line is None:
                            break
                        chunk = decoder.feed(line)
                        if chunk is not None:
                            yield chunk
                        if decoder.done:
                            return
                        clocks.next_chunk()
                    decoder.finish()
                finally:
                    await request.__aexit__(None, None, None)

    # -- Ollama's other endpoints -------------------------------------------------------

    def list_models(self) -> list[str]:
        """The models the server has (``/api/tags``), by name.

        Raises:
            BackendError: its kinds, as for :meth:`chat`.
        """
        with self._errors(), self._bounded():
            response = self._sync_client().get("/api/tags", timeout=self._time_left())
            if response.is_error:
                raise _ServerError(response.status_code, response.text)
            data = _loads(response.content, self._secrets)
            models = data.get("models") if isinstance(data, dict) else None
            if not isinstance(models, list):
                raise ValueError("/api/tags did not hold a 'models' list")
            names = [m.get("name") or m.get("model") for m in models if isinstance(m, dict)]
            return [n for n in names if isinstance(n, str)]

    def close(self) -> None:
        """Close the HTTP connections. Safe to call twice."""
        with self._lock:
            client, self._client = self._client, None
        if client is not None:
            client.close()

    # -- plumbing -----------------------------------------------------------------------

    def _sync_client(self) -> httpx.Client:
        with self._lock:
            if self._client is None:
                self._client = httpx.Client(
                    base_url=self.base_url,
                    timeout=self.timeout,
                    headers=self._headers,
                    verify=shared_ssl_context(httpx.Client) or True,
                )
                # Every socket wait ends by the call's deadline (httpx's are per read).
                bound_transports(self._client)
            return self._client

    def _async_client(self) -> httpx.AsyncClient:
        # One client per call: an AsyncClient belongs to the event loop it first ran
        # in, and scripts often call asyncio.run() more than once. A local Ollama costs
        # nothing to reconnect to next to the generation itself.
        return httpx.AsyncClient(
            base_url=self.base_url,
            timeout=self.timeout,
            headers=self._headers,
            verify=shared_ssl_context(httpx.AsyncClient) or True,
        )

    def _timeout_of(self, options: Mapping[str, Any]) -> float:
        """The call's ``timeout``: its own option, else the driver's (options checked)."""
        return self.options(**options).timeout or self.timeout

    def _stream_deadlines(self, options: Mapping[str, Any] | ChatOptions) -> StreamDeadlines:
        opts = options if isinstance(options, ChatOptions) else self.options(**options)
        return StreamDeadlines(
            opts.timeout or self.timeout, opts.stream_timeout or self.stream_timeout
        )

    def _time_left(self, cap: float | None = None) -> float:
        """Seconds the running call has left, as an httpx timeout (never zero: httpx
        reads 0 as "no wait" and the bound sockets fail past the deadline anyway)."""
        deadline = current_deadline()
        left = max(deadline.remaining(), 0.001) if deadline is not None else self.timeout
        return min(left, cap) if cap is not None else left

    @contextmanager
    def _bounded(self) -> Iterator[None]:
        """Under the running call's deadline, or, called on its own, under ``timeout``."""
        if current_deadline() is not None:
            yield
        else:
            with within(Deadline(self.timeout)):
                yield

    def _body(self, messages: list[Message], options: ChatOptions, stream: bool) -> dict[str, Any]:
        body: dict[str, Any] = {
            "model": self.model,
            "messages": [_to_ollama(m, i) for i, m in enumerate(messages)],
            "stream": stream,
        }
        if options.json_schema is not None:
            body["format"] = options.json_schema
        elif options.json_mode:
            body["format"] = "json"
        tools = _offered_tools(options)
        if tools:
            if stream:
                raise ConfigError(
                    "the ollama driver reads tool calls from chat() and achat(), not from a "
                    "stream; call chat, or drop the tools option"
                )
            body["tools"] = tools
        own = options if isinstance(options, OllamaOptions) else OllamaOptions()
        sampling = {**self.ollama_options, **(own.options or {})}
        common = {
            "num_predict": options.max_tokens,
            "temperature": options.temperature,
            "top_p": options.top_p,
            "stop": options.stop,
            "seed": options.seed,
        }
        sampling.update({k: v for k, v in common.items() if v is not None})
        if sampling:
            body["options"] = sampling
        keep_alive = own.keep_alive if own.keep_alive is not None else self.keep_alive
        if keep_alive is not None:
            body["keep_alive"] = keep_alive
        if own.think is not None:
            body["think"] = own.think
        return body

    def _completion(self, data: Any, messages: list[Message]) -> Completion:
        if not isinstance(data, dict):
            raise ValueError(f"the reply is a JSON {type(data).__name__}, not an object")
        if "error" in data:
            raise _ServerError(500, orjson.dumps(data).decode())
        text = _content(data)
        if data.get("done") is not True:
            raise ValueError("the reply lacks 'done': true")
        return Completion(
            text=text,
            finish_reason=_finish_reason(data),
            usage=self._usage(data, messages, text),
            raw=data,
            tool_calls=_tool_calls(data),
        )

    def _usage(self, data: Mapping[str, Any], messages: list[Message], text: str) -> Usage:
        # Ollama leaves prompt_eval_count out when the whole prompt came from its cache.
        prompt = data.get("prompt_eval_count")
        completion = data.get("eval_count")
        return Usage(
            prompt if isinstance(prompt, int) else self.count_tokens(messages),
            completion if isinstance(completion, int) else self.count_tokens(text),
        )

    @contextmanager
    def _errors(self, clock: Deadline | StreamDeadlines | None = None) -> Iterator[None]:
        """The driver's one translation place, around everything that can fail.

        httpx's and Ollama's failures become ours (a timeout naming the deadline of
        ``clock``, else of the running call), and every repairllm error leaving the
        block has the secrets (header values, a URL's password) taken out of its
        message, attributes and cause chain.
        """
        try:
            try:
                yield
            except RepairLLMError:
                raise
            except (httpx.HTTPError, _ServerError, _StreamEnded, ValueError, TimeoutError) as exc:
                deadline = clock.now if isinstance(clock, StreamDeadlines) else clock
                raise self._translate(exc, deadline or current_deadline()) from exc
        except RepairLLMError as error:
            redact_error(error, self._secrets)
            raise

    def _translate(self, exc: Exception, deadline: Deadline | None = None) -> BackendError:
        """Where httpx's and Ollama's failures become ours."""
        where = self.base_url
        if isinstance(exc, httpx.TimeoutException | TimeoutError):
            within = (
                f"within {deadline.describe()}"
                if deadline is not None
                else f"within the timeout ({type(exc).__name__})"
            )
            option = deadline.option if deadline is not None else "timeout"
            return BackendTimeout(
                f"no complete answer from Ollama at {where} {within}; "
                "a model that is still loading can take longer: "
                f"raise {option}=, or check the server with `ollama ps`",
                self.name,
            )
        if isinstance(exc, httpx.ConnectError):
            return BackendUnreachable(
                f"cannot connect to Ollama at {where} ({exc}); start it with `ollama serve`, "
                "or point base_url (or OLLAMA_HOST) at the right host and port",
                self.name,
            )
        if isinstance(exc, _StreamEnded | httpx.RemoteProtocolError | httpx.ReadError):
            return BackendUnreachable(
                f"Ollama at {where} closed the connection before the reply was done ({exc}); "
                "the server may have restarted or run out of memory: retry",
                self.name,
            )
        if isinstance(exc, _ServerError):
            return self._status_error(exc)
        if isinstance(exc, httpx.TransportError):
            return BackendUnreachable(f"the request to Ollama at {where} failed: {exc}", self.name)
        return BadResponse(
            f"Ollama at {where} answered something that is not its documented format ({exc})",
            self.name,
        )

    def _status_error(self, exc: _ServerError) -> BackendStatusError:
        # Redacted before anything is cut from it: a key cut in two keeps its first half.
        body = redact_text(exc.body, self._secrets)
        message = _error_text(body)
        status = exc.status
        if exc.mid_stream:
            # The error came after the 200 headers; the same failure outside a stream
            # is a 500 from Ollama, and a 500 is what retry logic should see.
            hint = f"Ollama failed in the middle of the reply: {message}; retry"
        elif status == 404 and "model" in message.lower():
            hint = (
                f"Ollama has no model {self.model!r} ({message}); download it with "
                f"`ollama pull {self.model}`, or list the installed ones with `ollama list`"
            )
        elif status == 404:
            hint = (
                f"{self.base_url} answered 404 ({message}); base_url should be the server's "
                "root, such as http://127.0.0.1:11434, without /v1 or /api"
            )
        elif status == 400:
            hint = f"Ollama refused the request (400: {message}); check the options and format"
        elif status >= 500:
            hint = (
                f"Ollama failed (status {status}: {message}); it may be out of memory or "
                "restarting: retry, and see the server's log"
            )
        else:
            hint = f"Ollama answered status {status}: {message}"
        return BackendStatusError(hint, self.name, status=status, body=body)


class _StreamDecoder:
    """Turns NDJSON lines into chunks and notices the ``done`` line."""

    def __init__(self, backend: OllamaBackend, messages: list[Message]) -> None:
        self._backend = backend
        self._messages = messages
        self._parts: list[str] = []
        self.done = False

    def feed(self, line: str) -> Chunk | None:
        if not line.strip():
            return None
        data = _loads(line, self._backend._secrets)
        if not isinstance(data, dict):
            raise ValueError(f"a stream line is a JSON {type(data).__name__}, not an object")
        if "error" in data:
            raise _ServerError(500, line, mid_stream=True)
        text = _content(data, allow_missing=True)
        self._parts.append(text)
        if data.get("done") is not True:
            return Chunk(text) if text else None
        self.done = True
        usage = self._backend._usage(data, self._messages, "".join(self._parts))
        return Chunk(text, _finish_reason(data), usage)

    def finish(self) -> None:
        if not self.done:
            raise _StreamEnded("no line with 'done': true")


def _header_secrets(headers: Mapping[str, str]) -> tuple[str, ...]:
    """The values of the headers given, and the credential after a scheme
    (``Bearer <token>``), as secrets; plain headers and values under 4 characters aside."""
    found: list[str] = []
    for name, value in headers.items():
        if name.lower() in _PLAIN_HEADERS or not isinstance(value, str):
            continue
        found.append(value.strip())
        scheme, _, credential = value.strip().partition(" ")
        if credential and scheme.isalpha():
            found.append(credential.strip())
    return tuple(s for s in dict.fromkeys(found) if len(s) >= 4)


def _loads(raw: bytes | str, secrets: tuple[str, ...] = ()) -> Any:
    try:
        return orjson.loads(raw)
    except ValueError as exc:
        text = raw[:1000].decode("utf-8", "replace") if isinstance(raw, bytes) else raw[:1000]
        # Redacted before it is cut: a key cut in two would keep its first half.
        shown = redact_text(text, secrets)[:120]
        raise ValueError(f"not JSON: {exc}; it began {shown!r}") from exc


def _content(data: Mapping[str, Any], allow_missing: bool = False) -> str:
    message = data.get("message")
    if message is None and allow_missing:
        return ""
    if not isinstance(message, dict):
        raise ValueError("the reply has no 'message' object")
    content = message.get("content", "" if allow_missing else None)
    if not isinstance(content, str):
        raise ValueError("the reply's message has no 'content' string")
    return content


def _offered_tools(options: ChatOptions) -> list[dict[str, Any]]:
    """The tools to send. Ollama has no ``tool_choice``: a choice naming one function
    sends that function alone, and ``"none"`` sends none."""
    tools = list(options.tools or [])
    choice = options.tool_choice
    if choice == "none":
        return []
    if isinstance(choice, Mapping):
        function = choice.get("function")
        name = function.get("name") if isinstance(function, Mapping) else None
        named = [t for t in tools if (t.get("function") or {}).get("name") == name]
        if not named:
            raise ConfigError(f"tool_choice names {name!r}, which is not among the tools given")
        return named
    return tools


def _tool_calls(data: Mapping[str, Any]) -> tuple[ToolCall, ...]:
    """``message.tool_calls``, with each call's ``arguments`` (an object) as JSON text.

    Raises:
        ValueError: a call that is not ``{"function": {"name": ...}}``.
    """
    calls = data["message"].get("tool_calls") or []
    if not isinstance(calls, list):
        raise ValueError("the reply's message has 'tool_calls' that is not a list")
    out: list[ToolCall] = []
    for call in calls:
        function = call.get("function") if isinstance(call, dict) else None
        name = function.get("name") if isinstance(function, dict) else None
        if not isinstance(name, str) or not name:
            raise ValueError("the reply has a tool call without a function name")
        arguments = function.get("arguments") if isinstance(function, dict) else None
        if not isinstance(arguments, str):
            arguments = "" if arguments is None else orjson.dumps(arguments).decode()
        call_id = call.get("id")
        out.append(ToolCall(name, arguments, call_id if isinstance(call_id, str) else None))
    return tuple(out)


def _finish_reason(data: Mapping[str, Any]) -> str:
    # Ollama before 0.3 sent no done_reason; "stop" is what it meant.
    reason = data.get("done_reason")
    return reason if isinstance(reason, str) and reason else "stop"


def _error_text(body: str) -> str:
    try:
        data = _loads(body)
    except ValueError:
        return body.strip()[:300] or "(empty body)"
    if isinstance(data, dict) and isinstance(data.get("error"), str):
        return str(data["error"])
    return body.strip()[:300]


def _context_length_from_response(response: httpx.Response | None) -> int | None:
    if response is None or response.is_error:
        return None
    try:
        return _context_length_from_show(_loads(response.content))
    except ValueError:
        return None


def _context_length_from_show(info: Any) -> int | None:
    """The window Ollama runs the model with, from an ``/api/show`` reply."""
    if not isinstance(info, dict):
        return None
    # A Modelfile's `PARAMETER num_ctx` is what Ollama actually uses.
    parameters = info.get("parameters")
    if isinstance(parameters, str):
        for line in parameters.splitlines():
            key, _, value = line.strip().partition(" ")
            if key == "num_ctx" and value.strip().isdigit():
                return int(value.strip())
    model_info = info.get("model_info")
    if not isinstance(model_info, dict):
        return None
    arch = model_info.get("general.architecture")
    preferred = model_info.get(f"{arch}.context_length") if isinstance(arch, str) else None
    if isinstance(preferred, int) and preferred > 0:
        return preferred
    for key, value in model_info.items():
        if key.endswith(".context_length") and isinstance(value, int) and value > 0:
            return value
    return None


def _to_ollama(message: Message, index: int) -> dict[str, Any]:
    """An OpenAI-style message as Ollama takes it: text content, images apart."""
    out: dict[str, Any] = {"role": message["role"]}
    content = message.get("content")
    images = list(message.get("images") or [])
    if isinstance(content, list):
        texts: list[str] = []
        for part in content:
            kind = part.get("type") if isinstance(part, Mapping) else None
            if kind == "text":
                texts.append(str(part.get("text", "")))
            elif kind == "image_url":
                url = part.get("image_url")
                url = url.get("url") if isinstance(url, Mapping) else url
                if not isinstance(url, str) or ";base64," not in url:
                    raise InvalidInput(
                        f"message {index}: Ollama takes images inline; give a data: URL "
                        "with base64 content, not a link"
                    )
                images.append(url.split(",", 1)[1])
            else:
                raise InvalidInput(
                    f"message {index} has a content part Ollama cannot take: {part!r}"
                )
        content = "\n".join(texts)
    out["content"] = content or ""
    if images:
        out["images"] = images
    for key in ("tool_calls", "tool_name", "thinking"):
        if message.get(key) is not None:
            out[key] = message[key]
    return out


def _parse_host(host: str | None) -> str:
    """Read a host as Ollama reads ``OLLAMA_HOST``.

    No scheme means ``http`` and port 11434; a scheme without a port means its usual
    port; ``:port`` alone means 127.0.0.1. A path is kept, without the trailing slash.
    """
    host = (host or "").strip()
    if not host:
        return DEFAULT_HOST
    scheme, sep, rest = host.partition("://")
    if sep:
        port = {"http": 80, "https": 443}.get(scheme.lower(), _DEFAULT_PORT)
    else:
        scheme, rest, port = "http", host, _DEFAULT_PORT
    # No host means 127.0.0.1 (":11434"), but the scheme and the port must be usable.
    checked_url(f"{scheme}://{rest}", "base_url (or OLLAMA_HOST)", host_required=False)
    split = urllib.parse.urlsplit(f"{scheme}://{rest}")
    try:
        hostname = split.hostname or "127.0.0.1"
        port = split.port or port
    except ValueError as exc:
        raise ConfigError(f"cannot read {host!r} as an Ollama host: {exc}") from exc
    if ":" in hostname:
        hostname = f"[{hostname}]"  # an IPv6 address keeps its brackets in a URL
    path = split.path.strip("/")
    return f"{scheme}://{hostname}:{port}" + (f"/{path}" if path else "")
