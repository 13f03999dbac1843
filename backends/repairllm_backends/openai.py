"""The driver for OpenAI-compatible servers, through the official ``openai`` SDK.

One class serves every server that speaks ``/v1/chat/completions``: OpenAI itself,
vLLM, llama.cpp's server and llama-cpp-python's, LM Studio, FastChat and hosted
compatible modes. What differs between them is data, kept in
:mod:`repairllm_backends.presets`: where they listen, which environment variable
holds the key, which structured modes they accept.

Every exception the SDK raises is translated in :func:`translate_error`, and every
error the driver raises passes :meth:`OpenAIBackend._errors`, which takes the key
out of it and out of its cause chain; nothing from ``openai`` or ``httpx`` reaches
the caller. ``timeout`` is a deadline for the whole call (see :mod:`._http`).
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import sys
import weakref
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from contextlib import contextmanager, suppress
from typing import TYPE_CHECKING, Any, ClassVar, Literal
from urllib.parse import urlsplit

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
    refuses_structured,
)
from repairllm.errors import (
    BackendError,
    BackendStatusError,
    BackendTimeout,
    BackendUnreachable,
    BadResponse,
    ConfigError,
    ContextTooLong,
    MissingKey,
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
from .presets import PRESETS, Preset

if TYPE_CHECKING:
    import openai

__all__ = ["OpenAIBackend", "translate_error"]

_INSTALL_HINT = "pip install 'repairllm[openai]'"
# Local servers ignore the key, but the SDK refuses to build a client without one.
_PLACEHOLDER_KEY = "sk-no-key-required"
_SCHEMA_NAME = re.compile(r"[^a-zA-Z0-9_-]+")
# Where servers say the prompt is too long, and the numbers they give. An error body can
# be anything (a proxy's page, an echo of the prompt), so only its start is read, the gap
# between the two numbers is bounded and a number never gives back digits: on a
# hostile body the search is linear, where ``\d+.*?`` retried per digit was quadratic.
_CONTEXT_PATTERNS = (
    # OpenAI, vLLM and llama-cpp-python's server (which copies OpenAI's wording).
    re.compile(
        r"maximum context length is (?P<limit>\d{1,12})(?!\d)"
        r".{0,400}?requested (?P<n>\d{1,12})(?!\d)",
        re.S,
    ),
    # llama-cpp-python's own exception text, when a server passes it through.
    re.compile(
        r"Requested tokens \((?P<n>\d{1,12})\) exceed context window of (?P<limit>\d{1,12})(?!\d)"
    ),
)
#: How much of an error body the patterns read: the message comes first.
_CONTEXT_SCAN = 16 * 1024
# Keys that servers put in /v1/models entries for the context length (vLLM,
# LM Studio and others); llama-cpp-python's server gives none.
_CONTEXT_KEYS = ("max_model_len", "context_length", "max_context_length", "n_ctx")


def _sdk() -> Any:
    try:
        import openai
    except ImportError as exc:
        raise ConfigError(f"the openai driver needs the openai SDK: {_INSTALL_HINT}") from exc
    return openai


class OpenAIBackend(Backend):
    """A driver for any server with an OpenAI-compatible chat completions API.

    Args:
        model: the model name the server expects. Optional for local servers: the
            first model the server lists at ``/v1/models`` is used (llama-cpp-python's
            server serves one model and lists it there). Required for hosted presets.
        base_url: the API root, usually ending in ``/v1``; the preset's by default.
        api_key: the key itself; prefer ``api_key_env``, which keeps it out of configs.
        api_key_env: the environment variable holding the key; the preset's by default.
        preset: a name in :data:`~repairllm_backends.presets.PRESETS` (``"vllm"``,
            ``"llamacpp"``, ``"openai"`` ...) giving the defaults above and the
            server's structured modes.
        timeout: seconds a call may take, in all: for :meth:`chat` (and ``achat``) from
            the call to the whole reply, connecting, sending, every read and any
            discovery request the call makes first (``/v1/models``, the token count)
            included, however slowly the server trickles its bytes. For
            :meth:`stream` it bounds the wait for each chunk: the first (all of the
            above until it) and every later one. A call's ``timeout=`` option
            replaces it for that call. Past it: :class:`~repairllm.errors.BackendTimeout`
            naming the deadline.
        stream_timeout: seconds a whole stream may take, however steadily chunks come;
            ``None`` (the default): only ``timeout`` between chunks bounds it. A
            call's ``stream_timeout=`` option replaces it.
        context_length: the model's context in tokens. When ``None`` it is read from
            ``/v1/models`` where the server says it, or learnt from the first
            "context exceeded" answer; until then prompts are not checked before sending.
        defaults: option values for every call (``{"temperature": 0}``).
        max_retries: retries inside the SDK. 0 by default, since repairllm's
            ``generate`` owns retrying and counts every attempt.
        supports_json_schema: override the preset's claim about native JSON Schema mode.
        supports_json_mode: override the preset's claim about JSON mode.
        supports_tools: override the preset's claim about tool calls (``tools`` with a
            forcing ``tool_choice``, read back from ``tool_calls``).

    Raises:
        ConfigError: for an unknown preset, a missing ``base_url`` or ``model``, or
            bad ``defaults``.
        MissingKey: when a hosted preset's key is neither given nor in its variable.

    Example:
        >>> llm = OpenAIBackend(preset="llamacpp")  # doctest: +SKIP
        >>> llm.chat("Say hi", max_tokens=5).text  # doctest: +SKIP
    """

    name: ClassVar[str] = "openai"

    def __init__(
        self,
        model: str | None = None,
        *,
        base_url: str | None = None,
        api_key: str | None = None,
        api_key_env: str | None = None,
        preset: str | None = None,
        timeout: float = 60.0,
        stream_timeout: float | None = None,
        context_length: int | None = None,
        defaults: Mapping[str, Any] | None = None,
        max_retries: int = 0,
        supports_json_schema: bool | None = None,
        supports_json_mode: bool | None = None,
        supports_tools: bool | None = None,
    ) -> None:
        self._sdk = _sdk()
        self.preset: Preset | None = _find_preset(preset)
        p = self.preset
        url = base_url or (p.base_url if p is not None else None)
        if not url:
            raise ConfigError(
                "the openai driver needs base_url= (for example http://127.0.0.1:8080/v1) "
                f"or preset= (one of {', '.join(sorted(PRESETS))})"
            )
        self.base_url = checked_url(url.rstrip("/"))
        # A hosted preset pointed somewhere else (a local server behind the
        # "openai" name, say) is no longer the hosted service: no key is needed.
        self.hosted = bool(p and p.key_required and _same_origin(self.base_url, p.base_url))
        self.api_key_env = api_key_env or (p.api_key_env if p is not None else None)
        key = api_key or (os.environ.get(self.api_key_env) if self.api_key_env else None)
        if not key:
            if self.hosted and self.api_key_env:
                raise MissingKey(self.api_key_env, self.name)
            key = _PLACEHOLDER_KEY
        self._api_key = key
        # The placeholder is no secret; every real key (and a password in base_url) is
        # scrubbed from every error and from the transport's log records.
        self._secret = key if key != _PLACEHOLDER_KEY else None
        self._secrets = tuple(s for s in (self._secret, *url_secrets(self.base_url)) if s)
        SECRETS.add(self._secrets)
        self._forget_secrets = weakref.finalize(self, SECRETS.discard, self._secrets)
        protect_logs()
        if self.hosted and not model:
            raise ConfigError(
                f"the {p.name if p else 'openai'} preset needs model= (the service serves "
                "many models and picking one silently would bill the wrong one)"
            )
        self.model = model or ""
        if timeout <= 0:
            raise ConfigError(f"timeout must be positive seconds, got {timeout!r}")
        if stream_timeout is not None and stream_timeout <= 0:
            raise ConfigError(f"stream_timeout must be positive seconds, got {stream_timeout!r}")
        self.timeout = float(timeout)
        self.stream_timeout = None if stream_timeout is None else float(stream_timeout)
        self.max_retries = max_retries
        self.context_length = context_length
        # Capabilities depend on the server behind the URL, not on this class, so
        # they are set per instance from the preset (the base class declares them as
        # plain attributes, not ClassVars, for drivers like this one).
        self.supports_json_schema = (
            supports_json_schema if supports_json_schema is not None else bool(p and p.json_schema)
        )
        self.supports_json_mode = (
            supports_json_mode if supports_json_mode is not None else bool(p and p.json_mode)
        )
        self.supports_tools = supports_tools if supports_tools is not None else bool(p and p.tools)
        self.defaults = dict(defaults or {})
        self.options()  # fail now, not on the first call, when a default is bad
        # None: not tried yet; False: the server has no tokenize endpoint.
        self._tokenizer: bool | None = False if self.hosted else None
        self._discovered = self.hosted
        # The SDK's own default client, with every socket wait bound to the call's
        # deadline (httpx's timeouts are per read: see _http.bound_transports).
        extra = _http_client(self._sdk, "DefaultHttpxClient")
        if extra:
            bound_transports(extra["http_client"])
        self._client: openai.OpenAI = self._sdk.OpenAI(
            api_key=self._api_key,
            base_url=self.base_url,
            timeout=self.timeout,
            max_retries=self.max_retries,
            **extra,
        )
        self._closed = False
        # Structured-output forms this server refused: not sent again.
        self._refused_forms: set[str] = set()

    def __repr__(self) -> str:
        preset = self.preset.name if self.preset else None
        return redact_text(
            f"<{type(self).__name__} {self.name} preset={preset!r} model={self.model!r} "
            f"base_url={self.base_url!r}>",
            self._secrets,
        )

    # -- the contract -------------------------------------------------------------------

    def chat(self, messages: Messages, **options: Any) -> Completion:
        """Send the messages and return the reply, all within ``timeout`` (see the class).

        Raises:
            ContextTooLong: before any request, when the prompt cannot fit.
            BackendTimeout: when the deadline passes, naming it.
            BackendError: its kinds, for whatever the server or connection did.
        """
        protect_logs()
        with self._errors():
            deadline = Deadline(self._timeout_of(options))
            with within(deadline):
                return super().chat(messages, **options)

    def stream(self, messages: Messages, **options: Any) -> Iterator[Chunk]:
        """Like :meth:`chat`, yielding the reply as it comes: ``timeout`` bounds the wait
        for each chunk, and ``stream_timeout`` (when set) the whole stream.

        The prompt is checked (and the server asked for its model and context, the
        first time) at once; the request is sent when the stream is first iterated.
        """
        protect_logs()
        with self._errors():
            clocks = self._stream_deadlines(options)
            with within(clocks.now):
                msgs, opts = self._prepare(messages, options)
        clocks.pause()
        return self._stream(msgs, opts, clocks)

    def _chat(self, messages: list[Message], options: ChatOptions) -> Completion:
        with self._errors():
            response, tried = self._create(messages, options, stream=False)
            text, finish, usage = self._read(response)
            calls = self._tool_calls(response)
            if usage is None:
                usage = self._count_usage(messages, text)
        return Completion(text, finish, usage, response, notes=tried.notes(), tool_calls=calls)

    def _stream(
        self,
        messages: list[Message],
        options: ChatOptions,
        clocks: StreamDeadlines | None = None,
    ) -> Iterator[Chunk]:
        if clocks is None:
            clocks = self._stream_deadlines(options)
        clocks.resume()
        state = _StreamState(self.name, self._secrets)
        with self._errors(clocks):
            with within(clocks.now):
                events, tried = self._create(messages, options, stream=True)
            if tried.notes():
                yield Chunk("", notes=tried.notes())
            with events:
                iterator = iter(events)
                while True:
                    # The deadline is set around each read, never across the yield.
                    with within(clocks.now):
                        event = next(iterator, _END)
                    if event is _END:
                        break
                    text = state.feed(event)
                    if text:
                        yield Chunk(text)
                    clocks.next_chunk()
            finish, usage = state.end()
            if usage is None:
                with within(clocks.now):
                    usage = self._count_usage(messages, state.text)
        yield Chunk("", finish, usage)

    async def achat(self, messages: Messages, **options: Any) -> Completion:
        """Async :meth:`chat`, over ``openai.AsyncOpenAI``, within the same deadline.

        The preparation (option checks, token counting, model discovery) may make
        small HTTP requests of its own, so it runs in a worker thread.
        """
        protect_logs()
        timeout = self._timeout_of(options)
        client = self._async_client()  # its setup (an SSL context) is not the server's time
        deadline = Deadline(timeout)
        with self._errors(deadline), within(deadline):
            async with client, async_deadline(deadline):
                msgs, opts = await asyncio.to_thread(self._prepare, messages, options)
                response, tried = await self._acreate(client, msgs, opts, stream=False)
                text, finish, usage = self._read(response)
                calls = self._tool_calls(response)
                if usage is None:
                    usage = await asyncio.to_thread(self._count_usage, msgs, text)
        return Completion(text, finish, usage, response, notes=tried.notes(), tool_calls=calls)

    async def astream(self, messages: Messages, **options: Any) -> AsyncIterator[Chunk]:
        """Async :meth:`stream`, over ``openai.AsyncOpenAI``, with the same deadlines."""
        protect_logs()
        self.options(**options)
        client = self._async_client()  # its setup (an SSL context) is not the server's time
        clocks = self._stream_deadlines(options)
        state = _StreamState(self.name, self._secrets)
        with self._errors(clocks):
            async with client:
                with within(clocks.now):
                    async with async_deadline(clocks.now):
                        msgs, opts = await asyncio.to_thread(self._prepare, messages, options)
                with within(clocks.now):
                    async with async_deadline(clocks.now):
                        events, tried = await self._acreate(client, msgs, opts, stream=True)
                if tried.notes():
                    yield Chunk("", notes=tried.notes())
                async with events:
                    iterator = events.__aiter__()
                    while True:
                        with within(clocks.now):
                            async with async_deadline(clocks.now):
                                event = await anext(iterator, _END)
                        if event is _END:
                            break
                        text = state.feed(event)
                        if text:
                            yield Chunk(text)
                        clocks.next_chunk()
                finish, usage = state.end()
            if usage is None:
                with within(clocks.now):
                    usage = await asyncio.to_thread(self._count_usage, msgs, state.text)
        yield Chunk("", finish, usage)

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

    def _create(
        self, messages: list[Message], options: ChatOptions, *, stream: bool
    ) -> tuple[Any, _Forms]:
        """Send the request, moving to the next structured form while one is refused."""
        tried = _Forms(self, options)
        while True:
            params = self._params(messages, options, stream=stream, form=tried.form)
            try:
                with self._errors():
                    return self._client.chat.completions.create(**params), tried
            except BackendError as exc:
                tried.refused(exc)

    async def _acreate(
        self,
        client: openai.AsyncOpenAI,
        messages: list[Message],
        options: ChatOptions,
        *,
        stream: bool,
    ) -> tuple[Any, _Forms]:
        """Async :meth:`_create` (parameters are built in a thread: they may discover)."""
        tried = _Forms(self, options)
        while True:
            params = await asyncio.to_thread(
                self._params, messages, options, stream=stream, form=tried.form
            )
            try:
                with self._errors():
                    return await client.chat.completions.create(**params), tried
            except BackendError as exc:
                tried.refused(exc)

    def count_tokens(self, text: Messages) -> int:
        """Tokens the text or messages take.

        With llama-cpp-python's server this is its tokenizer's count (through
        ``/extras/tokenize/count``); messages are counted as rendered in ChatML, so
        a model whose template adds a default system prompt uses a few tokens more.
        Other servers get the base class's estimate.
        """
        if self._tokenizer is not False:
            rendered = text if isinstance(text, str) else _render_chatml(text)
            with self._bounded():
                n = self._server_count(rendered)
            if n is not None:
                return n
        return super().count_tokens(text)

    def check_fits(self, messages: Messages, max_tokens: int | None = None) -> int:
        """Like :meth:`Backend.check_fits`, reading the context length from the server first.

        While the context length is unknown nothing can be checked, so the count
        returned is the base class's estimate and costs no request.

        Raises:
            ContextTooLong: with both numbers, when the prompt cannot fit.
        """
        with self._bounded():
            if self.context_length is None and not self._discovered:
                # When the server is down the request itself will say so, better. The
                # discovery shares the call's deadline: a hung server costs one timeout.
                with suppress(BackendError):
                    self._discover()
            if self.context_length is None:
                return Backend.count_tokens(self, messages)
            return super().check_fits(messages, max_tokens)

    def close(self) -> None:
        """Close the HTTP connections. Safe to call twice."""
        if not self._closed:
            self._closed = True
            self._client.close()
            self._forget_secrets()

    # -- requests -----------------------------------------------------------------------

    def _params(
        self,
        messages: list[Message],
        options: ChatOptions,
        *,
        stream: bool,
        form: StructuredForm | None = None,
    ) -> dict[str, Any]:
        params: dict[str, Any] = {
            "model": self._model_name(),
            "messages": messages,
            # The time the call has left; the bound sockets enforce it on every read.
            "timeout": self._time_left(),
        }
        for field in ("max_tokens", "temperature", "top_p", "stop", "seed"):
            value = getattr(options, field)
            if value is not None:
                params[field] = value
        response_format = _response_format(options, form)
        if response_format is not None:
            params["response_format"] = response_format
        if options.tools:
            if stream:
                raise ConfigError(
                    "the openai driver reads tool calls from chat() and achat(), not from a "
                    "stream; call chat, or drop the tools option"
                )
            params["tools"] = options.tools
            if options.tool_choice is not None:
                params["tool_choice"] = options.tool_choice
        if stream:
            params["stream"] = True
            # Servers that do not know the field ignore it (llama-cpp-python does);
            # usage is then counted here after the stream ends.
            params["stream_options"] = {"include_usage": True}
        return params

    def structured_forms(self, options: ChatOptions) -> list[StructuredForm | None]:
        """The ``response_format`` forms to try for these options, best first.

        A JSON Schema goes first in the form the preset names (OpenAI's
        ``json_schema``, or llama-cpp-python's ``json_object`` with ``schema``), then
        in the other, then as plain JSON mode, then unconstrained. Forms this server
        refused before are skipped: the driver remembers them for its lifetime.

        Raises:
            ConfigError: when a mode is asked for that the server is not known to have.
        """
        if options.json_schema is not None:
            if not self.supports_json_schema:
                raise ConfigError(
                    f"{self._where()} is not known to support a native JSON Schema mode; "
                    "drop the json_schema option (repair still validates the reply), or pass "
                    "supports_json_schema=True if the server does support it"
                )
            forms: list[StructuredForm | None] = ["json_schema", "json_object_schema"]
            if self._schema_form() == "json_object":
                forms.reverse()
            forms.append("json_object")
        elif options.json_mode:
            if not self.supports_json_mode:
                raise ConfigError(
                    f"{self._where()} is not known to support JSON mode; drop json_mode, "
                    "or pass supports_json_mode=True if the server does support it"
                )
            forms = ["json_object"]
        else:
            return [None]
        return [*forms, None]

    def _schema_form(self) -> str:
        # llama-cpp-python's server takes a schema only inside {"type": "json_object"};
        # the preset table says which servers need that form.
        return self.preset.schema_form if self.preset is not None else "json_schema"

    def _model_name(self) -> str:
        if not self.model:
            self._discover()
        if not self.model:
            raise ConfigError(f"{self._where()} lists no model; pass model=")
        return self.model

    def _discover(self) -> None:
        """Read ``/v1/models``: the model to use when none was given, and the context length."""
        try:
            with self._errors():
                listing = self._client.get(
                    "/models", cast_to=object, options={"timeout": self._time_left(10.0)}
                )
        except BackendStatusError as exc:
            if self.model:  # a server without the endpoint is fine when the model is known
                self._discovered = True
                return
            if exc.transient:
                raise
            raise ConfigError(
                f"{self._where()} does not list its models (HTTP {exc.status}); pass model="
            ) from exc
        entries = listing.get("data") if isinstance(listing, dict) else None
        models = [e for e in entries or [] if isinstance(e, dict) and isinstance(e.get("id"), str)]
        if not self.model and models:
            self.model = models[0]["id"]
        chosen = next((e for e in models if e["id"] == self.model), None)
        if chosen is not None and self.context_length is None:
            self.context_length = _context_from(chosen)
        self._discovered = True

    def _read(self, response: Any) -> tuple[str, str | None, Usage | None]:
        """Text, finish reason and usage of a whole reply, checking its shape on the way."""
        choices = getattr(response, "choices", None)
        if not isinstance(choices, list) or not choices:
            raise BadResponse(
                f"{self._where()} answered without choices: {_describe(response, self._secrets)}",
                self.name,
            )
        message = getattr(choices[0], "message", None)
        text = getattr(message, "content", None)
        if message is None or not isinstance(text, str | None):
            raise BadResponse(
                f"{self._where()} answered a choice without a text message: "
                f"{_describe(choices[0], self._secrets)}",
                self.name,
            )
        finish = getattr(choices[0], "finish_reason", None)
        usage = _usage(getattr(response, "usage", None))
        return text or "", finish if isinstance(finish, str) else None, usage

    def _tool_calls(self, response: Any) -> tuple[ToolCall, ...]:
        """The function calls of a whole reply (its first choice), arguments as text.

        Servers send ``arguments`` as a JSON string; one that sends an object has it
        serialized, so the caller always gets text to repair.

        Raises:
            BadResponse: a tool call without a function name.
        """
        message = getattr(response.choices[0], "message", None)
        calls = getattr(message, "tool_calls", None) or []
        out: list[ToolCall] = []
        for call in calls if isinstance(calls, list) else []:
            function = getattr(call, "function", None)
            name = getattr(function, "name", None)
            if not isinstance(name, str) or not name:
                raise BadResponse(
                    f"{self._where()} answered a tool call without a function name: "
                    f"{_describe(call, self._secrets)}",
                    self.name,
                )
            arguments = getattr(function, "arguments", None)
            if not isinstance(arguments, str):
                arguments = "" if arguments is None else json.dumps(arguments)
            call_id = getattr(call, "id", None)
            out.append(ToolCall(name, arguments, call_id if isinstance(call_id, str) else None))
        return tuple(out)

    def _count_usage(self, messages: list[Message], text: str) -> Usage:
        # The server did not report usage: count it, so attempts still add up.
        return Usage(self.count_tokens(messages), self.count_tokens(text) if text else 0)

    def _server_count(self, text: str) -> int | None:
        """llama-cpp-python's token count, or ``None`` when it cannot be had now."""
        root = self.base_url.removesuffix("/v1")
        try:
            with self._errors():
                answer = self._client.post(
                    root + "/extras/tokenize/count",
                    cast_to=object,
                    body={"input": text},
                    options={"timeout": self._time_left(10.0)},
                )
        except BackendError as exc:
            if not exc.transient:  # not llama-cpp-python (404 ...): estimate from now on
                self._tokenizer = False
            return None  # unreachable, slow or overloaded now: try again next time
        count = answer.get("count") if isinstance(answer, dict) else None
        if not isinstance(count, int):
            self._tokenizer = False
            return None
        self._tokenizer = True
        return count

    def _async_client(self) -> openai.AsyncOpenAI:
        # A fresh client per call: an async client belongs to the event loop that
        # opened its connections, and callers run each call under its own
        # asyncio.run() as often as not. A loopback or keep-alive handshake is
        # cheap next to a generation, and the SSL context is made once and shared.
        client: openai.AsyncOpenAI = self._sdk.AsyncOpenAI(
            api_key=self._api_key,
            base_url=self.base_url,
            timeout=self.timeout,
            max_retries=self.max_retries,
            **_http_client(self._sdk, "DefaultAsyncHttpxClient"),
        )
        return client

    @contextmanager
    def _errors(self, clock: Deadline | StreamDeadlines | None = None) -> Iterator[None]:
        """The driver's one translation place, around everything that can fail.

        Whatever the SDK or httpx raises becomes ours (a timeout naming the deadline
        of ``clock``, else of the running call), the context length is learnt from a
        "context exceeded" answer, and every repairllm error leaving the block has
        the key taken out of its message, attributes and cause chain.
        """
        try:
            try:
                yield
            except RepairLLMError:
                raise
            except (self._sdk.OpenAIError, ValueError, TimeoutError, *_transport_errors()) as exc:
                deadline = clock.now if isinstance(clock, StreamDeadlines) else clock
                error = translate_error(
                    exc,
                    backend=self.name,
                    secret=self._secret,
                    deadline=deadline or current_deadline(),
                    where=self.base_url,
                )
                if isinstance(error, ContextTooLong) and self.context_length is None:
                    self.context_length = error.limit
                raise error from exc
        except RepairLLMError as error:
            # Also the errors raised here directly (BadResponse quotes the reply), and
            # the cause chain: redact_error swaps it for redacted stand-ins.
            redact_error(error, self._secrets)
            raise

    def _where(self) -> str:
        preset = f" ({self.preset.name})" if self.preset else ""
        return f"the server at {self.base_url}{preset}"


# -- entry points -------------------------------------------------------------------------


def _preset_factory(name: str) -> Callable[..., OpenAIBackend]:
    """A driver factory for one preset, for the entry point that names it."""

    def build(**fields: Any) -> OpenAIBackend:
        return OpenAIBackend(preset=name, **fields)

    build.__name__ = f"{name}_preset"
    build.__doc__ = f"Build the openai driver with the {name!r} preset."
    return build


# The entry points of the presets, one per record in PRESETS (pyproject.toml:
# `vllm = "repairllm_backends.openai:vllm_preset"` and so on). `_preset` because
# `openai` is the SDK's name here.
openai_preset = _preset_factory("openai")
vllm_preset = _preset_factory("vllm")
llamacpp_preset = _preset_factory("llamacpp")
fastchat_preset = _preset_factory("fastchat")
llamafactory_preset = _preset_factory("llamafactory")
lmstudio_preset = _preset_factory("lmstudio")
dashscope_preset = _preset_factory("dashscope")
zhipu_preset = _preset_factory("zhipu")
deepseek_preset = _preset_factory("deepseek")

StructuredForm = Literal["json_schema", "json_object_schema", "json_object"]
_FORM_NAMES: dict[StructuredForm | None, str] = {
    "json_schema": 'response_format {"type": "json_schema"}',
    "json_object_schema": 'response_format {"type": "json_object", "schema": ...}',
    "json_object": 'response_format {"type": "json_object"} (JSON mode)',
    None: "no response_format (repair and validation only)",
}


def _response_format(options: ChatOptions, form: StructuredForm | None) -> dict[str, Any] | None:
    schema = options.json_schema
    if form is None:
        return None
    if form == "json_object" or schema is None:
        return {"type": "json_object"}
    if form == "json_object_schema":
        return {"type": "json_object", "schema": schema}
    title = schema.get("title") if isinstance(schema.get("title"), str) else ""
    name = _SCHEMA_NAME.sub("_", str(title)).strip("_")[:64] or "response"
    return {"type": "json_schema", "json_schema": {"name": name, "schema": schema, "strict": True}}


class _Forms:
    """The structured forms one request goes through, and what the server said of each.

    ``form`` is the one to send now. ``refused(exc)`` either moves to the next form,
    remembering on the backend that this one was refused, or re-raises ``exc`` when
    it was not a refusal of the form (or no form is left).
    """

    def __init__(self, backend: OpenAIBackend, options: ChatOptions) -> None:
        self.backend = backend
        wanted = backend.structured_forms(options)
        self.forms = [f for f in wanted if f is None or f not in backend._refused_forms]
        self.skipped = [f for f in wanted if f not in self.forms]
        self.said: list[str] = []

    @property
    def form(self) -> StructuredForm | None:
        return self.forms[0]

    def refused(self, exc: BackendError) -> None:
        form = self.forms[0]
        if form is None or len(self.forms) == 1 or not refuses_structured(exc):
            raise exc
        self.backend._refused_forms.add(form)
        self.forms.pop(0)
        status = getattr(exc, "status", None)
        how = f"HTTP {status}" if status else "the connection dropped"
        self.said.append(
            f"the server refused {_FORM_NAMES[form]} ({how}); sent {_FORM_NAMES[self.form]}"
        )

    def notes(self) -> tuple[str, ...]:
        earlier = [
            f"the server refused {_FORM_NAMES[f]} earlier; sent {_FORM_NAMES[self.form]}"
            for f in self.skipped[:1]
        ]
        return (*earlier, *self.said)


class _StreamState:
    """What a stream has said so far: its text, its finish reason, its usage."""

    def __init__(self, backend: str, secrets: tuple[str, ...] = ()) -> None:
        self.backend = backend
        self.secrets = secrets  # kept out of what a malformed chunk's error quotes
        self.parts: list[str] = []
        self.finish: str | None = None
        self.usage: Usage | None = None

    @property
    def text(self) -> str:
        return "".join(self.parts)

    def feed(self, event: Any) -> str:
        """Take one chunk event; return its new text.

        Raises:
            BadResponse: when the event is not a chat completion chunk.
        """
        usage = _usage(getattr(event, "usage", None))
        if usage is not None:
            self.usage = usage
        choices = getattr(event, "choices", None)
        if choices is None and usage is not None:
            return ""  # the usage-only chunk some servers send with choices omitted
        if not isinstance(choices, list):
            raise BadResponse(
                f"a streamed chunk has no choices: {_describe(event, self.secrets)}",
                self.backend,
            )
        if not choices:
            return ""
        delta = getattr(choices[0], "delta", None)
        text = getattr(delta, "content", None) or ""
        if not isinstance(text, str):
            raise BadResponse(
                f"a streamed chunk has non-text content: {_describe(event, self.secrets)}",
                self.backend,
            )
        finish = getattr(choices[0], "finish_reason", None)
        if isinstance(finish, str):
            self.finish = finish
        if text:
            self.parts.append(text)
        return text

    def end(self) -> tuple[str, Usage | None]:
        """The finish reason and usage, once the stream is over.

        Raises:
            BadResponse: (transient) when the stream ended without a finish reason.
        """
        if self.finish is None:
            error = BadResponse(
                f"the stream ended after {len(self.text)} characters without a finish_reason; "
                "the server stopped mid-reply (llama-cpp-python's server does so when "
                "another request arrives), so retrying may succeed",
                self.backend,
            )
            error.transient = True
            raise error
        return self.finish, self.usage


def translate_error(
    exc: BaseException,
    *,
    backend: str = "openai",
    secret: str | None = None,
    deadline: Deadline | None = None,
    where: str = "",
) -> BackendError:
    """Turn an ``openai`` SDK exception (or a decoding error) into a repairllm error.

    This is the driver's one place for that mapping: timeouts, refused
    connections and streams cut off, HTTP statuses (with "context exceeded" read
    into :class:`~repairllm.errors.ContextTooLong` when the numbers are there), and
    malformed bodies.

    Args:
        exc: what the SDK raised (or httpx, or ``TimeoutError`` from an async deadline).
        backend: the driver's name, for the message prefix.
        secret: the API key, scrubbed from every message and body (the driver also
            redacts the cause chain: see :func:`repairllm.backend.redact_error`).
        deadline: the deadline the call was under, named by a timeout's message.
        where: the server's URL, for errors that carry no request.

    Returns:
        the error to raise (``raise translate_error(exc) from exc``).
    """
    import openai

    def clean(text: str) -> str:
        return text.replace(secret, "***") if secret else text

    url = _request_url(exc) or where or "the server"
    if isinstance(exc, openai.APITimeoutError | TimeoutError) or _is_transport_timeout(exc):
        if deadline is not None:
            return BackendTimeout(
                clean(
                    f"no complete answer from {url} within {deadline.describe()}; "
                    f"raise {deadline.option}= (on the driver or per call), or ask for "
                    "fewer tokens"
                ),
                backend,
            )
        limit = _request_timeout(exc)
        within = f" within {limit:g}s" if limit is not None else ""
        return BackendTimeout(
            clean(
                f"no answer from {url}{within}; raise timeout= (or the call's timeout option) "
                "or ask for fewer tokens"
            ),
            backend,
        )
    if isinstance(exc, openai.APIConnectionError) or _is_transport_error(exc):
        cause = _cause(exc)
        dropped = not cause.startswith("Connect")  # httpx's ConnectError: nothing listens
        if not dropped:
            what = (
                f"could not connect to {url} ({cause}); "
                "check that the server is running and that base_url is right"
            )
        else:
            what = (
                f"lost the connection to {url} mid-request ({cause}); "
                "the server may have stopped, so retrying may succeed"
            )
        unreachable = BackendUnreachable(clean(what), backend)
        unreachable.dropped = dropped
        return unreachable
    if isinstance(exc, openai.APIStatusError):
        status = exc.status_code
        body = clean(_body_text(exc))
        context = _context_numbers(body, exc.body)
        if context is not None:
            return ContextTooLong(context[0], context[1], backend)
        return BackendStatusError(
            clean(
                f"{url} answered HTTP {status}: {_error_message(exc, body, clean)}"
                f"{_status_hint(status)}"
            ),
            backend,
            status=status,
            body=body,
        )
    if isinstance(exc, openai.APIResponseValidationError | ValueError):
        return BadResponse(
            clean(f"{url} answered something that is not the API's JSON: {exc}"),
            backend,
        )
    if isinstance(exc, openai.APIError):
        # An error event inside a 200 stream ({"error": {...}}, as vLLM and llama.cpp
        # send when generation fails midway): a status error, with the status the
        # event gives (0 when it gives none).
        body = clean(json.dumps(exc.body, default=str))
        context = _context_numbers(body, exc.body)
        if context is not None:
            return ContextTooLong(context[0], context[1], backend)
        code = exc.body.get("code") if isinstance(exc.body, Mapping) else None
        status = code if isinstance(code, int) else 0
        return BackendStatusError(
            clean(f"{url} reported an error mid-stream: {exc.message}{_status_hint(status)}"),
            backend,
            status=status,
            body=body,
        )
    return BackendError(clean(f"the openai SDK failed: {type(exc).__name__}: {exc}"), backend)


# -- helpers ------------------------------------------------------------------------------


_END: Any = object()


def _http_client(sdk: Any, name: str) -> dict[str, Any]:
    """``{"http_client": ...}``: the SDK's own default client (``name``), sharing one SSL
    context; ``{}`` (the SDK builds its own) where the SDK has no such class."""
    cls = getattr(sdk, name, None)
    if not isinstance(cls, type):
        return {}
    context = shared_ssl_context(cls)
    return {"http_client": cls(verify=context) if context is not None else cls()}


def _transport_errors() -> tuple[type[Exception], ...]:
    # Older SDKs let httpx's errors out of a stream's iteration untranslated.
    return tuple(
        m.HTTPError for m in (sys.modules.get("httpx"), sys.modules.get("httpx2")) if m is not None
    )


def _is_transport_error(exc: BaseException) -> bool:
    return isinstance(exc, _transport_errors())


def _is_transport_timeout(exc: BaseException) -> bool:
    return _is_transport_error(exc) and "Timeout" in type(exc).__name__


def _find_preset(name: str | None) -> Preset | None:
    if name is None:
        return None
    preset = PRESETS.get(name.lower())
    if preset is None:
        raise ConfigError(f"no preset named {name!r}; known: {', '.join(sorted(PRESETS))}")
    return preset


def _same_origin(a: str, b: str) -> bool:
    pa, pb = urlsplit(a), urlsplit(b)
    return (pa.scheme, pa.hostname, pa.port) == (pb.scheme, pb.hostname, pb.port)


def _render_chatml(messages: Messages) -> str:
    from repairllm.backend import as_messages

    parts = []
    for m in as_messages(messages):
        content = m.get("content")
        text = content if isinstance(content, str) else json.dumps(content or "")
        parts.append(f"<|im_start|>{m['role']}\n{text}<|im_end|>\n")
    parts.append("<|im_start|>assistant\n")
    return "".join(parts)


def _usage(raw: Any) -> Usage | None:
    prompt = getattr(raw, "prompt_tokens", None)
    completion = getattr(raw, "completion_tokens", None)
    if isinstance(prompt, int) and isinstance(completion, int):
        return Usage(prompt, completion)
    return None


def _context_from(entry: Mapping[str, Any]) -> int | None:
    for source in (entry, entry.get("meta")):
        if isinstance(source, Mapping):
            for key in _CONTEXT_KEYS:
                value = source.get(key)
                if isinstance(value, int) and value > 0:
                    return value
    return None


def _describe(value: Any, secrets: tuple[str, ...] = (), limit: int = 200) -> str:
    # Redacted before it is cut: a key cut in two would keep its first half.
    text = redact_text(repr(value), secrets)
    return text if len(text) <= limit else text[:limit] + "…"


def _request_url(exc: BaseException) -> str:
    request = getattr(exc, "request", None)
    url = getattr(request, "url", None)
    return str(url) if url is not None else ""


def _request_timeout(exc: BaseException) -> float | None:
    request = getattr(exc, "request", None)
    timeouts = getattr(request, "extensions", {}).get("timeout")
    value = timeouts.get("read") if isinstance(timeouts, dict) else None
    return float(value) if isinstance(value, int | float) else None


def _cause(exc: BaseException) -> str:
    # The SDK's own message is just "Connection error."; the cause says what happened.
    cause = exc.__cause__ or exc.__context__
    while cause is not None and cause.__cause__ is not None and not str(cause):
        cause = cause.__cause__
    if cause is None:
        return str(exc)
    return f"{type(cause).__name__}: {cause}" if str(cause) else type(cause).__name__


def _body_text(exc: openai.APIStatusError) -> str:
    try:
        return exc.response.text  # type: ignore[no-any-return, unused-ignore]
    except Exception:  # a streamed response not read: fall back to the parsed body
        return exc.body if isinstance(exc.body, str) else json.dumps(exc.body, default=str)


def _error_message(exc: openai.APIStatusError, body: str, clean: Callable[[str], str]) -> str:
    # OpenAI-style bodies are {"error": {"message": ...}}; the SDK already unwrapped
    # "error" into exc.body where it could.
    message = exc.body.get("message") if isinstance(exc.body, dict) else None
    if isinstance(message, str) and message:
        text = clean(message)  # before it is cut: a key cut in two keeps its first half
    else:
        text = body.strip() or "(empty body)"
    return text if len(text) <= 300 else text[:300] + "…"


def _status_hint(status: int) -> str:
    if status in (401, 403):
        return "; check the API key"
    if status == 404:
        return "; check base_url (it usually ends in /v1) and the model name"
    if status in (400, 422):
        return "; the server refused the request's fields"
    if status == 429:
        return "; rate limited, retry later"
    if status >= 500:
        return "; the server failed, retrying may succeed"
    return ""


def _context_numbers(body: str, parsed: object) -> tuple[int, int] | None:
    """``(tokens requested, context length)`` when the body says the context is exceeded."""
    head = body[:_CONTEXT_SCAN]
    for pattern in _CONTEXT_PATTERNS:
        match = pattern.search(head)
        if match:
            return int(match["n"]), int(match["limit"])
    # llama.cpp's own server: {"type": "exceed_context_size_error", "n_prompt_tokens", "n_ctx"}.
    if isinstance(parsed, Mapping):
        n, limit = parsed.get("n_prompt_tokens"), parsed.get("n_ctx")
        if isinstance(n, int) and isinstance(limit, int):
            return n, limit
    return None
