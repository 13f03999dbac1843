"""The contract every model driver implements, and the records it returns.

A driver is one class deriving from :class:`Backend`. It maps four calls onto one
API (``chat``, ``stream``, ``count_tokens`` and the ``context_length`` attribute),
declares what the server can do in class attributes, translates that API's
exceptions into :mod:`repairllm.errors` in one place, and never repairs anything
itself. Nothing here imports a driver's dependencies: the core stays light.
"""

from __future__ import annotations

import asyncio
import math
import re
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, fields, is_dataclass, replace
from typing import Any, ClassVar, TypeAlias, TypeVar

import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from .errors import (
    BackendError,
    BackendStatusError,
    BackendUnreachable,
    BadResponse,
    ConfigError,
    ContextTooLong,
    InvalidInput,
    RepairLLMError,
)
from .ledger import Fix

__all__ = [
    "Backend",
    "ChatOptions",
    "Chunk",
    "Completion",
    "Message",
    "Messages",
    "RedactedCause",
    "ToolCall",
    "Usage",
    "as_messages",
    "checked_reply",
    "redact_error",
    "redact_own_error",
    "redact_text",
    "refuses_structured",
]

Message: TypeAlias = dict[str, Any]
Messages: TypeAlias = "str | Sequence[Mapping[str, Any]]"


@dataclass(frozen=True)
class Usage:
    """Tokens one call consumed, as the server reports them (or the driver counts them)."""

    prompt_tokens: int = 0
    completion_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            self.prompt_tokens + other.prompt_tokens,
            self.completion_tokens + other.completion_tokens,
        )


@dataclass(frozen=True)
class ToolCall:
    """One function call a server returned (OpenAI's ``tool_calls``, Ollama's too).

    Attributes:
        name: the function called.
        arguments: its arguments as the model wrote them: a JSON text, often broken,
            which structured calls repair like any reply. A server that sends an object
            (Ollama) has it serialized here, so every driver gives text.
        id: the server's id for the call, when it gives one.
    """

    name: str
    arguments: str
    id: str | None = None


@dataclass(frozen=True)
class Completion:
    """One finished reply.

    Attributes:
        text: the reply's text.
        finish_reason: ``"stop"``, ``"length"`` (cut off at the token limit) or what
            the server said.
        usage: prompt and completion tokens.
        raw: the server's response object, for whoever needs more than the text.
        notes: what the driver did about a structured request that the caller should
            know: a form the server refused and the one used instead, what a grammar
            left out, a constraint that could not be applied. Structured calls copy
            them into the attempt.
        tool_calls: the function calls the reply made, in order (empty when it made
            none, and from drivers without tool support).
    """

    text: str
    finish_reason: str | None = "stop"
    usage: Usage = field(default_factory=Usage)
    raw: Any = field(default=None, repr=False, compare=False)
    notes: tuple[str, ...] = ()
    tool_calls: tuple[ToolCall, ...] = ()

    @property
    def truncated(self) -> bool:
        return self.finish_reason == "length"


@dataclass(frozen=True)
class Chunk:
    """A piece of a streamed reply. The last chunk carries ``finish_reason`` and usage.

    ``notes`` (as on :class:`Completion`) come on the first chunk, before any text,
    so that a reader who stops early still has them.
    """

    text: str
    finish_reason: str | None = None
    usage: Usage | None = None
    notes: tuple[str, ...] = ()


class ChatOptions(BaseModel):
    """Options every driver understands. A driver may subclass it to add its own.

    Unknown keys are refused, so a misspelt option fails at once instead of being
    silently ignored by the server.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    max_tokens: int | None = Field(default=None, gt=0)
    temperature: float | None = Field(default=None, ge=0)
    top_p: float | None = Field(default=None, gt=0, le=1)
    stop: list[str] | None = None
    seed: int | None = None
    json_schema: dict[str, Any] | None = None
    """Ask the server to constrain the reply to this JSON Schema (native structured mode)."""
    json_mode: bool = False
    """Ask the server for any JSON object (weaker than ``json_schema``)."""
    tools: list[dict[str, Any]] | None = None
    """Functions the model may call, in OpenAI's form
    (``{"type": "function", "function": {"name", "description", "parameters"}}``). Only
    drivers with :attr:`Backend.supports_tools` take them; the calls come back in
    :attr:`Completion.tool_calls` from ``chat`` (a stream carries text only)."""
    tool_choice: str | dict[str, Any] | None = None
    """``"auto"``, ``"none"``, ``"required"``, or
    ``{"type": "function", "function": {"name": ...}}`` to force one function."""
    timeout: float | None = Field(default=None, gt=0)
    """Seconds the call may take, over the driver's own ``timeout``. In the HTTP drivers
    (openai, ollama) it bounds the whole of a ``chat`` (connecting, sending, every read,
    and any discovery request the call makes first), and for ``stream`` the wait for each
    chunk, the first included."""
    stream_timeout: float | None = Field(default=None, gt=0)
    """Seconds a whole ``stream`` may take, however steadily its chunks come (by default
    only ``timeout`` between chunks bounds it). The HTTP drivers honour it."""


# What a server's error says when it is about the structured-output request itself.
_ABOUT_STRUCTURE = re.compile(
    r"response_format|json_schema|json_object|grammar|schema|format|[Tt]ool"
)


def refuses_structured(exc: BackendError) -> bool:
    """Whether a failed request with a structured-output form was refused *for* that form.

    Servers refuse a form they do not know in several ways: 400 or 422 (vLLM, OpenAI,
    and Ollama's "model does not support tools"), a 500 whose body names the field
    (llama-cpp-python's server validates ``response_format`` or ``tool_choice`` into an
    internal error), or dropping the connection mid-request (a server whose grammar
    compiler crashed). Each means: try the next, weaker form.
    """
    if isinstance(exc, BackendStatusError):
        if exc.status in (400, 422):
            return True
        return exc.status >= 500 and bool(_ABOUT_STRUCTURE.search(exc.body or str(exc)))
    return isinstance(exc, BackendUnreachable) and exc.dropped


# -- keeping secrets out of errors --------------------------------------------------------

_E = TypeVar("_E", bound=RepairLLMError)
_MASK = "***"


class RedactedCause(Exception):
    """Stands in for a dependency's exception in the cause chain of an error whose
    driver holds a secret (an API key, a credential header).

    The original (an SDK or httpx error) holds the request, its headers and whatever
    the server echoed; this keeps only its class name and its message, with every
    secret replaced by ``***``, chained in the same order through ``__cause__``.

    Attributes:
        type_name: the original's module and class (``"openai.APIStatusError"``).
    """

    def __init__(self, type_name: str, message: str = "") -> None:
        self.type_name = type_name
        super().__init__(f"{type_name}: {message}" if message else type_name)


def redact_text(text: str, secrets: Sequence[str]) -> str:
    """``text`` with every secret replaced by ``***`` (the longest first)."""
    for secret in sorted(secrets, key=len, reverse=True):
        if secret and secret in text:
            text = text.replace(secret, _MASK)
    return text


#: How deep the redaction follows containers; below that, a value is checked by its
#: repr (and replaced by the masked repr if a secret is in it).
_REDACT_DEPTH = 64


def _redact_value(value: Any, secrets: Sequence[str], depth: int = 0) -> Any:
    """``value`` with every secret masked: ``value`` itself when none is in it.

    Strings, bytes, mappings, lists and tuples (their subclasses kept where their
    constructor takes the items: a :class:`~repairllm.ledger.Ledger` stays one),
    dataclasses (copied with ``dataclasses.replace``), pydantic models (``model_copy``
    with the changed fields) and ledger fixes are rebuilt with their types. Anything
    else, or anything deeper than :data:`_REDACT_DEPTH`, that shows a secret in its repr
    is replaced by the masked repr: a string where an object was, but no secret.
    """
    if isinstance(value, str):
        return redact_text(value, secrets)
    if isinstance(value, bytes):
        if not any(s.encode() in value for s in secrets):
            return value
        return redact_text(value.decode("utf-8", "replace"), secrets).encode()
    if value is None or isinstance(value, bool | int | float):
        return value
    if depth <= _REDACT_DEPTH:
        rebuilt = _redact_parts(value, secrets, depth + 1)
        if rebuilt is not _NOT_BUILT:
            return rebuilt
    shown = repr(value)
    masked = redact_text(shown, secrets)
    return masked if masked != shown else value


_NOT_BUILT = object()


def _redact_parts(value: Any, secrets: Sequence[str], depth: int) -> Any:
    """``value`` rebuilt from its redacted parts, ``value`` itself when no part changed,
    or ``_NOT_BUILT`` when it is not a kind whose parts are known."""
    if isinstance(value, Mapping):
        keys, values = list(value), list(value.values())
        new_keys = _masked_all(keys, secrets, depth)
        new_values = _masked_all(values, secrets, depth)
        if new_keys is None and new_values is None:
            return value
        pairs = dict(zip(new_keys or keys, new_values or values, strict=True))
        return _rebuilt(value, pairs, pairs)
    if isinstance(value, list | tuple):
        items = _masked_all(value, secrets, depth)
        if items is None:
            return value
        return _rebuilt(value, items, items if isinstance(value, list) else tuple(items))
    if isinstance(value, Fix):
        parts = _masked_all(value._astuple(), secrets, depth)
        return value if parts is None else Fix(*parts)
    if isinstance(value, BaseModel):
        update = _masked_fields(value, type(value).model_fields, secrets, depth)
        return value.model_copy(update=update) if update else value
    if is_dataclass(value) and not isinstance(value, type):
        names = [part.name for part in fields(value) if part.init]
        changes = _masked_fields(value, names, secrets, depth)
        return replace(value, **changes) if changes else value
    return _NOT_BUILT


def _masked_all(items: Sequence[Any], secrets: Sequence[str], depth: int) -> list[Any] | None:
    """``items`` masked, or ``None`` when none of them held a secret."""
    masked = [_redact_value(v, secrets, depth) for v in items]
    return None if all(m is v for m, v in zip(masked, items, strict=True)) else masked


def _masked_fields(
    value: Any, names: Iterable[str], secrets: Sequence[str], depth: int
) -> dict[str, Any]:
    """The attributes ``names`` of ``value`` that held a secret, masked, by name."""
    changed = {}
    for name in names:
        old = getattr(value, name, None)
        new = _redact_value(old, secrets, depth)
        if new is not old:
            changed[name] = new
    return changed


def _rebuilt(original: Any, items: Any, plain: Any) -> Any:
    """``items`` as ``original``'s type when its constructor takes them, else ``plain``."""
    if type(original) in (dict, list, tuple):
        return plain
    try:
        return type(original)(items)
    except Exception:  # a subclass with its own constructor: the plain container then
        return plain


def _redact_in_place(error: BaseException, secrets: Sequence[str]) -> None:
    """Mask every secret in ``error``'s arguments, attributes and notes, in place.

    The data our own errors hold (the reply's text, the best outcome and its ledger,
    every attempt) goes through :func:`_redact_value`, so it keeps its types. The
    callers have dropped empty secrets and return before this when none is left.
    """
    args = tuple(_redact_value(a, secrets) for a in error.args)
    if any(a is not a0 for a, a0 in zip(args, error.args, strict=True)):
        error.args = args
    for name, value in list(vars(error).items()):
        masked = _redact_value(value, secrets)
        if masked is not value:
            setattr(error, name, masked)
    notes = getattr(error, "__notes__", None)
    if isinstance(notes, list):
        error.__notes__ = [redact_text(str(n), secrets) for n in notes]


def redact_own_error(error: RepairLLMError, secrets: Sequence[str]) -> None:
    """Mask every secret in one of repairllm's own errors and in its cause chain, in place.

    A structured call's errors hold the reply (``raw``, ``best``, ``attempts``), and a
    server may have echoed the key into it. Each of repairllm's errors in the chain is
    masked in place with its types kept (:func:`_redact_in_place`); a driver's error is
    already masked (:func:`redact_error`); any other link that shows a secret is
    replaced by a :class:`RedactedCause`, and one that shows none (a hook's own error)
    stays as it is.
    """
    secrets = [s for s in secrets if s]
    if not secrets:
        return
    before: BaseException | None = None
    for link in _chain(error):
        if isinstance(link, RepairLLMError):
            if not isinstance(link, BackendError):
                _redact_in_place(link, secrets)
        elif before is not None and _shows(link, secrets):
            kind = type(link)
            stand_in = RedactedCause(
                f"{kind.__module__}.{kind.__qualname__}", redact_text(str(link), secrets)
            )
            stand_in.__cause__ = _next_link(link)
            stand_in.__suppress_context__ = True
            before.__cause__ = stand_in
            before.__context__ = None
            before.__suppress_context__ = True
            link = stand_in
        before = link


def _shows(error: BaseException, secrets: Sequence[str]) -> bool:
    """Whether a secret is in ``error``'s message, repr, arguments or attributes."""
    texts = [str(error), repr(error), *map(repr, error.args), *map(repr, vars(error).values())]
    return any(secret in text for text in texts for secret in secrets)


def redact_error(error: _E, secrets: Sequence[str]) -> _E:
    """Take every secret out of ``error``, in place, and return it.

    Its message and arguments, every attribute (``body`` ...), its notes, and its
    cause chain: each ``__cause__``/``__context__`` below it is replaced by a
    :class:`RedactedCause` holding that link's class and redacted message (the
    originals hold requests and headers), and ``__context__`` is cleared. With no
    secrets nothing changes, so the dependency's own exception stays the cause.

    Drivers call this in their one translation place, for every error they raise.
    """
    secrets = [s for s in secrets if s]
    if not secrets:
        return error
    _redact_in_place(error, secrets)
    links = _chain(error)[1:]
    stand_in: BaseException | None = None
    for link in reversed(links):
        if not isinstance(link, RedactedCause):
            kind = type(link)
            link = RedactedCause(
                f"{kind.__module__}.{kind.__qualname__}", redact_text(str(link), secrets)
            )
        link.__context__ = None
        link.__cause__ = stand_in
        link.__traceback__ = None
        stand_in = link
    error.__cause__ = stand_in
    error.__context__ = None
    error.__suppress_context__ = True
    return error


def _chain(error: BaseException) -> list[BaseException]:
    """``error`` and the links below it, in order: at most 16, each once."""
    links: list[BaseException] = []
    link: BaseException | None = error
    while link is not None and len(links) < 16 and all(link is not seen for seen in links):
        links.append(link)
        link = _next_link(link)
    return links


def _next_link(exc: BaseException) -> BaseException | None:
    if exc.__cause__ is not None:
        return exc.__cause__
    return None if exc.__suppress_context__ else exc.__context__


def as_messages(messages: Messages) -> list[Message]:
    """Normalise a prompt: a plain string is one user message.

    Raises:
        InvalidInput: when a message is not a mapping with a string ``role``.
    """
    if isinstance(messages, str):
        return [{"role": "user", "content": messages}]
    if not isinstance(messages, Sequence):
        raise InvalidInput(
            f"messages must be a string or a list of dicts, not {type(messages).__name__}"
        )
    out: list[Message] = []
    for i, message in enumerate(messages):
        if not isinstance(message, Mapping) or not isinstance(message.get("role"), str):
            raise InvalidInput(f"message {i} must be a dict with a 'role' string, got {message!r}")
        content = message.get("content")
        if content is not None and not isinstance(content, str | list):
            raise InvalidInput(f"message {i} has content of type {type(content).__name__}")
        out.append(dict(message))
    if not out:
        raise InvalidInput("messages is empty")
    return out


class Backend(ABC):
    """Base class of every driver.

    Class attributes say what the server can do; ``generate`` reads them to choose
    a native structured mode. Instances hold ``model`` and ``context_length``
    (``None`` when unknown, which turns the context check off).
    """

    name: ClassVar[str] = "backend"
    # Plain attributes, not ClassVar: a driver for many servers sets them per instance.
    supports_json_schema: bool = False
    supports_json_mode: bool = False
    supports_tools: bool = False
    """Whether ``chat`` takes ``tools`` and returns :attr:`Completion.tool_calls`."""
    supports_streaming: ClassVar[bool] = True
    continues_reply: ClassVar[bool] = False
    """Whether a trailing assistant message is continued in place (the model writes on
    from its last character) rather than answered as a finished turn."""
    options_cls: ClassVar[type[ChatOptions]] = ChatOptions

    model: str = ""
    context_length: int | None = None
    defaults: Mapping[str, Any] = {}
    """Option values used when a call does not give them (from ``connect`` or a config)."""
    _secrets: tuple[str, ...] = ()
    # The key and other secrets the driver sends (HTTP drivers set them): a structured
    # call takes them out of the message of its own errors, which may quote a reply
    # that a careless server filled with the request's Authorization header.

    # -- the contract -------------------------------------------------------------------

    @abstractmethod
    def _chat(self, messages: list[Message], options: ChatOptions) -> Completion:
        """Send one request and return the whole reply."""

    def _stream(self, messages: list[Message], options: ChatOptions) -> Iterator[Chunk]:
        """Yield the reply in pieces. The default sends one request and yields it whole."""
        completion = self._chat(messages, options)
        yield Chunk(completion.text, completion.finish_reason, completion.usage, completion.notes)

    def count_tokens(self, text: Messages) -> int:
        """Tokens the text or messages take. Drivers with a tokenizer override this.

        The default is an estimate (one token per three characters, plus a few per
        message for the chat template), on the safe side for English and JSON.
        """
        if isinstance(text, str):
            return math.ceil(len(text) / 3)
        return sum(
            4 + math.ceil(len(_content_text(m.get("content"))) / 3) for m in as_messages(text)
        )

    # -- what callers use ---------------------------------------------------------------

    def chat(self, messages: Messages, **options: Any) -> Completion:
        """Send the messages and return the reply.

        Args:
            messages: a string (one user message) or OpenAI-style message dicts.
            **options: fields of :attr:`options_cls` (``max_tokens``, ``temperature``,
                ``json_schema`` ...).

        Raises:
            ContextTooLong: before any request, when the prompt cannot fit.
            BackendError: its kinds, for whatever the server or connection did.
        """
        msgs, opts = self._prepare(messages, options)
        return checked_reply(self._chat(msgs, opts), self.name)

    def stream(self, messages: Messages, **options: Any) -> Iterator[Chunk]:
        """Like :meth:`chat`, yielding the reply as it is produced."""
        msgs, opts = self._prepare(messages, options)
        return _checked_chunks(self._stream(msgs, opts), self.name)

    async def achat(self, messages: Messages, **options: Any) -> Completion:
        """Async :meth:`chat`. HTTP drivers override it; others run in a worker thread."""
        return await asyncio.to_thread(self.chat, messages, **options)

    async def astream(self, messages: Messages, **options: Any) -> AsyncIterator[Chunk]:
        """Async :meth:`stream`. The default pulls the sync stream in a worker thread."""
        iterator = self.stream(messages, **options)
        done = object()
        while True:
            chunk = await asyncio.to_thread(next, iterator, done)
            if chunk is done:
                return
            assert isinstance(chunk, Chunk)
            yield chunk

    def close(self) -> None:  # noqa: B027 - drivers without resources keep the no-op
        """Release connections or memory. Safe to call twice."""

    def __enter__(self) -> Backend:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name} model={self.model!r}>"

    # -- shared plumbing ----------------------------------------------------------------

    def options(self, **options: Any) -> ChatOptions:
        """Validate option keywords into :attr:`options_cls`.

        Raises:
            ConfigError: naming the unknown or ill-typed option.
        """
        try:
            return self.options_cls(**{**self.defaults, **options})
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors()
            )
            known = ", ".join(sorted(self.options_cls.model_fields))
            raise ConfigError(f"bad option for {self.name}: {problems} (known: {known})") from None

    def check_fits(self, messages: Messages, max_tokens: int | None = None) -> int:
        """Count the prompt's tokens and fail when it cannot fit the context.

        Returns:
            the prompt's token count.

        Raises:
            ContextTooLong: with both numbers, when prompt plus ``max_tokens`` exceed
                :attr:`context_length`.
        """
        n = self.count_tokens(messages)
        if self.context_length is not None:
            needed = n + (max_tokens or 0)
            if n >= self.context_length or needed > self.context_length:
                raise ContextTooLong(needed, self.context_length, self.name)
        return n

    def _prepare(
        self, messages: Messages, options: Mapping[str, Any]
    ) -> tuple[list[Message], ChatOptions]:
        msgs = as_messages(messages)
        opts = self.options(**options)
        if opts.tools and not self.supports_tools:
            raise ConfigError(
                f"{self.name} is not known to take tool calls; drop the tools option "
                "(generate(..., mode='tools') falls back by itself), or use a driver "
                "or preset that has them"
            )
        self.check_fits(msgs, opts.max_tokens)
        return msgs, opts


def checked_reply(reply: Any, backend: str = "") -> Completion:
    """A driver's reply, checked against the contract before anything reads it.

    A third-party driver (or a test's fake) that returns something else would
    otherwise fail deep inside a structured call with an AttributeError or TypeError;
    here it is a :class:`~repairllm.errors.BadResponse` that names the field. A list
    of tool calls is taken as the tuple it stands for.

    Raises:
        BadResponse: a reply that is not a :class:`Completion` of text, usage and
            :class:`ToolCall` records with text fields.
    """
    if not isinstance(reply, Completion):
        raise BadResponse(
            f"the driver returned {type(reply).__name__} where a Completion was due", backend
        )
    if not isinstance(reply.text, str):
        raise BadResponse(
            f"the driver's Completion.text is {type(reply.text).__name__}, not str", backend
        )
    if reply.finish_reason is not None and not isinstance(reply.finish_reason, str):
        raise BadResponse(
            f"the driver's Completion.finish_reason is {type(reply.finish_reason).__name__}, "
            "not str or None",
            backend,
        )
    if not isinstance(reply.usage, Usage):
        raise BadResponse(
            f"the driver's Completion.usage is {type(reply.usage).__name__}, not Usage", backend
        )
    calls = reply.tool_calls
    if not isinstance(calls, tuple | list):
        raise BadResponse(
            f"the driver's Completion.tool_calls is {type(calls).__name__}, not a tuple of "
            "ToolCall",
            backend,
        )
    for i, call in enumerate(calls):
        if not isinstance(call, ToolCall):
            raise BadResponse(
                f"tool call {i} from the driver is {type(call).__name__}, not a ToolCall", backend
            )
        for name, value, may_be_none in (
            ("name", call.name, False),
            ("arguments", call.arguments, False),
            ("id", call.id, True),
        ):
            if not isinstance(value, str) and not (may_be_none and value is None):
                hint = (
                    " (a driver serializes arguments to JSON text)" if name == "arguments" else ""
                )
                raise BadResponse(
                    f"tool call {i} from the driver has {name} of type "
                    f"{type(value).__name__}, not str{hint}",
                    backend,
                )
    if isinstance(calls, list):
        return replace(reply, tool_calls=tuple(calls))
    return reply


def _checked_chunks(chunks: Iterator[Any], backend: str) -> Iterator[Chunk]:
    """A driver's stream, each piece checked as :func:`checked_reply` checks a reply."""
    for chunk in chunks:
        if not isinstance(chunk, Chunk):
            raise BadResponse(
                f"the driver's stream gave {type(chunk).__name__} where a Chunk was due", backend
            )
        if not isinstance(chunk.text, str):
            raise BadResponse(
                f"the driver's Chunk.text is {type(chunk.text).__name__}, not str", backend
            )
        if chunk.usage is not None and not isinstance(chunk.usage, Usage):
            raise BadResponse(
                f"the driver's Chunk.usage is {type(chunk.usage).__name__}, not Usage", backend
            )
        yield chunk


def _content_text(content: Any) -> str:
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    # OpenAI's list-of-parts form: count the text parts, and the rest as JSON.
    return orjson.dumps(content).decode()
