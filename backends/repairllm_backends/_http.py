"""What the HTTP drivers share: one deadline per call, and no key in the transport's logs.

httpx's timeouts bound each operation (connecting, one write, one read), not the
request: a server that sends a byte a second never trips a two-second read timeout.
So a call runs under a :class:`Deadline`, held in a context variable while the
driver does I/O, and two things enforce it:

- every socket operation of a sync client: :func:`bound_transports` wraps the
  connection pool's network backend so that each connect, read and write waits at
  most until the deadline, and fails at once past it (httpcore's own timeout
  errors, which httpx and the openai SDK translate as they translate any timeout);
- every await of an async call: :func:`async_deadline` cancels it at the deadline
  (``asyncio.timeout``; ``anyio.fail_after`` before Python 3.11), since an async
  client's work all happens in the awaiting task.

The context variable is set around each step that does I/O, never across a
``yield``, so a generator that streams a reply does not leak it into its consumer.
Worker threads started with :func:`asyncio.to_thread` inherit it.

Keys: :class:`SecretsFilter` is put on the loggers of httpx, httpcore (and their
``*2`` forks) and the openai SDK, whose DEBUG records repeat response headers, and
replaces every registered secret in a record before any handler sees it.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import re
import sys
import threading
import time
import urllib.parse
from collections.abc import AsyncIterator, Iterable, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import Any

from repairllm.backend import redact_text
from repairllm.errors import ConfigError

__all__ = [
    "SECRETS",
    "Deadline",
    "SecretsFilter",
    "StreamDeadlines",
    "async_deadline",
    "bound_transports",
    "checked_url",
    "current_deadline",
    "protect_logs",
    "shared_ssl_context",
    "url_secrets",
    "within",
]

_CURRENT: contextvars.ContextVar[Deadline | None] = contextvars.ContextVar(
    "repairllm_deadline", default=None
)


class Deadline:
    """The moment a call (or one wait within it) must end by.

    Attributes:
        seconds: the option's value, for messages.
        option: the option that set it (``"timeout"``, ``"stream_timeout"``), for messages.
        scope: what it bounds, in words (``"the whole call"``).
    """

    __slots__ = ("at", "option", "scope", "seconds")

    def __init__(
        self,
        seconds: float,
        option: str = "timeout",
        scope: str = "the whole call",
        *,
        left: float | None = None,
    ) -> None:
        self.seconds = float(seconds)
        self.at = time.monotonic() + (self.seconds if left is None else left)
        self.option = option
        self.scope = scope

    def remaining(self) -> float:
        return self.at - time.monotonic()

    def sooner(self, other: Deadline | None) -> Deadline:
        """Whichever of the two ends first."""
        return other if other is not None and other.at < self.at else self

    def describe(self) -> str:
        """``"timeout=2s, which bounds the whole call"``: for error messages."""
        return f"{self.option}={self.seconds:g}s, which bounds {self.scope}"

    def __repr__(self) -> str:
        return f"<Deadline {self.describe()}; {self.remaining():.3f}s left>"


def current_deadline() -> Deadline | None:
    """The deadline the running call is under, if any."""
    return _CURRENT.get()


@contextmanager
def within(deadline: Deadline | None) -> Iterator[Deadline | None]:
    """Run the block under ``deadline`` (``None``: under none). Never hold it across a yield."""
    token = _CURRENT.set(deadline)
    try:
        yield deadline
    finally:
        _CURRENT.reset(token)


class StreamDeadlines:
    """The deadlines of one streamed reply.

    ``timeout`` bounds the wait for each chunk: the first (connecting, sending the
    request and any discovery it needs included) and every one after it, counted
    from when the consumer asks for it. ``stream_timeout``, when given, bounds the
    whole stream as well. Time spent preparing the call counts; time the consumer
    holds the stream before iterating it does not.
    """

    def __init__(self, timeout: float, stream_timeout: float | None) -> None:
        self.timeout = timeout
        self.stream_timeout = stream_timeout
        self._total_left = stream_timeout
        self._first_left = timeout
        self.total: Deadline | None = None
        self.now = self._first()

    def _first(self) -> Deadline:
        if self.stream_timeout is not None:
            self.total = Deadline(
                self.stream_timeout, "stream_timeout", "the whole stream", left=self._total_left
            )
        first = Deadline(
            self.timeout, "timeout", "the wait for the first chunk", left=self._first_left
        )
        return first.sooner(self.total)

    def pause(self) -> None:
        """Stop the clock after preparing: the stream starts when it is first iterated."""
        self._first_left = self.now.remaining()
        if self.total is not None:
            self._total_left = self.total.remaining()

    def resume(self) -> Deadline:
        """Start the clock again, with what preparing left."""
        self.now = self._first()
        return self.now

    def next_chunk(self) -> Deadline:
        """The deadline for the next chunk, from now."""
        self.now = Deadline(self.timeout, "timeout", "the wait between chunks").sooner(self.total)
        return self.now


# -- sync: every socket operation waits at most until the deadline ----------------------


def _clamp(timeout: float | None, error: type[Exception]) -> float | None:
    deadline = _CURRENT.get()
    if deadline is None:
        return timeout
    left = deadline.remaining()
    if left <= 0:
        raise error(f"{deadline.describe()}, and it has passed")
    return left if timeout is None else min(timeout, left)


class _BoundStream:
    """A network stream of httpcore (or httpcore2) whose every wait ends by the deadline."""

    def __init__(self, stream: Any, core: Any) -> None:
        self._stream = stream
        self._core = core

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        data: bytes = self._stream.read(max_bytes, _clamp(timeout, self._core.ReadTimeout))
        return data

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._stream.write(buffer, _clamp(timeout, self._core.WriteTimeout))

    def close(self) -> None:
        self._stream.close()

    def start_tls(
        self, ssl_context: Any, server_hostname: str | None = None, timeout: float | None = None
    ) -> _BoundStream:
        tls = self._stream.start_tls(
            ssl_context, server_hostname, _clamp(timeout, self._core.ConnectTimeout)
        )
        return _BoundStream(tls, self._core)

    def get_extra_info(self, info: str) -> Any:
        return self._stream.get_extra_info(info)

    def __getattr__(self, name: str) -> Any:  # anything a later httpcore adds
        return getattr(self._stream, name)


class _BoundBackend:
    """A sync network backend whose connections are :class:`_BoundStream`."""

    def __init__(self, backend: Any, core: Any) -> None:
        self._backend = backend
        self._core = core

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> _BoundStream:
        stream = self._backend.connect_tcp(
            host, port, _clamp(timeout, self._core.ConnectTimeout), local_address, socket_options
        )
        return _BoundStream(stream, self._core)

    def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Iterable[Any] | None = None
    ) -> _BoundStream:
        stream = self._backend.connect_unix_socket(
            path, _clamp(timeout, self._core.ConnectTimeout), socket_options
        )
        return _BoundStream(stream, self._core)

    def sleep(self, seconds: float) -> None:
        self._backend.sleep(seconds)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._backend, name)


def bound_transports(client: Any) -> bool:
    """Make a sync httpx (or httpx2) client's connections honour :func:`within`.

    httpx has no public hook for its network backend, so this wraps the one its
    connection pools hold (``transport._pool._network_backend``, the same in httpx
    0.24 to 0.28 and httpx2), for the client's own transport and every mounted one
    (proxies from the environment). Where that shape is not found nothing changes and
    the driver still passes the time left as each request's timeout, so a call then
    ends within twice its timeout instead of once.

    Returns:
        whether every transport found was bound.
    """
    transports = [getattr(client, "_transport", None)]
    transports += list((getattr(client, "_mounts", None) or {}).values())
    bound = True
    for transport in transports:
        if transport is None:
            continue
        pool = getattr(transport, "_pool", None)
        backend = getattr(pool, "_network_backend", None)
        core = sys.modules.get(type(pool).__module__.partition(".")[0])
        if isinstance(backend, _BoundBackend):
            continue
        if backend is None or core is None or not hasattr(core, "ReadTimeout"):
            bound = False
            continue
        pool._network_backend = _BoundBackend(backend, core)  # type: ignore[union-attr]
    return bound


_SSL_CONTEXTS: dict[str, Any] = {}
_SSL_LOCK = threading.Lock()


def shared_ssl_context(client_class: type) -> Any | None:
    """One default SSL context per httpx flavour (httpx, httpx2), made on first use.

    httpx builds a new one for every client, loading the CA bundle each time (half a
    second on a slow machine), and the async drivers make a client per call.

    Args:
        client_class: the client class to be built (``httpx.AsyncClient``, or the
            openai SDK's default client), which says which httpx it is.

    Returns:
        the context, for ``verify=``; ``None`` when the flavour has no
        ``create_ssl_context`` (the client then makes its own).
    """
    root = next(
        (
            c.__module__.partition(".")[0]
            for c in client_class.__mro__
            if c.__module__.partition(".")[0] in ("httpx", "httpx2")
        ),
        None,
    )
    make = getattr(sys.modules.get(root or ""), "create_ssl_context", None)
    if root is None or make is None:
        return None
    with _SSL_LOCK:
        if root not in _SSL_CONTEXTS:
            _SSL_CONTEXTS[root] = make()
        return _SSL_CONTEXTS[root]


# -- async: every await is cancelled at the deadline ------------------------------------


@asynccontextmanager
async def async_deadline(deadline: Deadline) -> AsyncIterator[None]:
    """Cancel the block at ``deadline``: ``async with async_deadline(d): ...``.

    It raises ``TimeoutError`` when it fires; the drivers turn that into
    :class:`~repairllm.errors.BackendTimeout`. Never hold it across a ``yield`` of an
    async generator.
    """
    left = max(deadline.remaining(), 0.0)
    if sys.version_info >= (3, 11):
        async with asyncio.timeout(left):
            yield
    else:  # pragma: no cover - Python 3.10
        import anyio  # httpx depends on it

        with anyio.fail_after(left):
            yield


# -- keys out of the transport's logs --------------------------------------------------

# Loggers whose DEBUG records can carry what a server echoed (httpcore logs response
# headers; the SDK logs requests and responses): these and every logger below them.
_TRANSPORT_LOGGERS = ("httpx", "httpx2", "httpcore", "httpcore2", "openai", "repairllm")
# The ones made when a module is first used rather than imported.
_LAZY_LOGGERS = tuple(
    f"{package}.{part}"
    for package in ("httpcore", "httpcore2")
    for part in ("connection", "connection_pool", "http11", "http2", "proxy", "socks")
)


class SecretsFilter(logging.Filter):
    """Replaces every registered secret in a log record (message, arguments, traceback).

    A logger's filters see only the records made on that logger, not those that
    propagate from below, so :func:`protect_logs` puts the one instance on every
    transport logger by name. Secrets are counted: each driver adds its own and
    takes them away when it closes.
    """

    def __init__(self) -> None:
        super().__init__("repairllm.secrets")
        self._lock = threading.Lock()
        self._counts: dict[str, int] = {}
        self._secrets: tuple[str, ...] = ()

    def add(self, secrets: Iterable[str]) -> None:
        with self._lock:
            for secret in secrets:
                self._counts[secret] = self._counts.get(secret, 0) + 1
            self._secrets = tuple(self._counts)

    def discard(self, secrets: Iterable[str]) -> None:
        with self._lock:
            for secret in secrets:
                left = self._counts.get(secret, 0) - 1
                if left > 0:
                    self._counts[secret] = left
                else:
                    self._counts.pop(secret, None)
            self._secrets = tuple(self._counts)

    def filter(self, record: logging.LogRecord) -> bool:
        secrets = self._secrets
        if not secrets:
            return True
        try:
            message = record.getMessage()
        except Exception:  # a record that cannot be formatted: leave it to the handler
            return True
        clean = redact_text(message, secrets)
        if clean != message:
            record.msg, record.args = clean, None
        if record.exc_info:
            text = logging.Formatter().formatException(record.exc_info)
            if redact_text(text, secrets) != text:
                record.exc_text, record.exc_info = redact_text(text, secrets), None
        elif record.exc_text:
            record.exc_text = redact_text(record.exc_text, secrets)
        if record.stack_info:
            record.stack_info = redact_text(record.stack_info, secrets)
        # Fields given with extra= (repairllm.observe's error, notes and, when asked,
        # the reply text) are read by log processors without the message.
        for name, value in list(vars(record).items()):
            if name not in _RECORD_FIELDS:
                clean_value = _redact_field(value, secrets)
                if clean_value is not value:
                    setattr(record, name, clean_value)
        return True


_RECORD_FIELDS = frozenset(vars(logging.makeLogRecord({}))) | {"message", "asctime"}


def _redact_field(value: Any, secrets: tuple[str, ...], depth: int = 0) -> Any:
    """``value`` with the secrets out of its strings, or ``value`` itself when it held none."""
    if isinstance(value, str):
        clean = redact_text(value, secrets)
        return value if clean == value else clean
    if depth > 8 or not isinstance(value, list | tuple | dict):
        return value
    if isinstance(value, dict):
        items = {k: _redact_field(v, secrets, depth + 1) for k, v in value.items()}
        changed = any(items[k] is not v for k, v in value.items())
        return items if changed else value
    parts = [_redact_field(v, secrets, depth + 1) for v in value]
    changed = any(p is not v for p, v in zip(parts, value, strict=True))
    return type(value)(parts) if changed else value


SECRETS = SecretsFilter()
"""The one filter every driver registers its secrets with."""


def checked_url(url: str, what: str = "base_url", *, host_required: bool = True) -> str:
    """``url`` when it is an http(s) server address; else a ConfigError saying why.

    Checked when a driver is made: a bad port or an unclosed IPv6 bracket was a
    ValueError from the URL parser, and another scheme (or none) a "lost the
    connection" at the first request.
    """
    try:
        split = urllib.parse.urlsplit(url)
        split.port  # noqa: B018 - reading it checks the port
    except ValueError as exc:
        problem = str(exc)
    else:
        if split.scheme.lower() not in ("http", "https"):
            problem = "it must start with http:// or https://"
        elif host_required and not split.hostname:
            problem = "it names no host"
        else:
            return url
    # A password in the address stays out of the message.
    shown = re.sub(r"//[^/@]*@", "//***@", url)
    raise ConfigError(f"{what} {shown!r} is not a server address: {problem}")


def url_secrets(url: str) -> list[str]:
    """The credentials in a URL's userinfo (``http://user:password@host``), to redact."""
    split = urllib.parse.urlsplit(url)
    found = [split.password, urllib.parse.unquote(split.password or "")]
    if split.username and not split.password:  # a bare token as the user: https://TOKEN@host
        found += [split.username, urllib.parse.unquote(split.username)]
    return [s for s in dict.fromkeys(found) if s]


def protect_logs() -> None:
    """Put :data:`SECRETS` on every transport logger that exists now (idempotent).

    Libraries make their loggers when their modules are imported, and the openai
    SDK imports some lazily, so the drivers call this before each call as well.
    httpcore imports its HTTP/1.1 module (whose logger repeats response headers) only
    at the first connection, after that check: its loggers are made here first.
    """
    manager = logging.Logger.manager
    for name in (*_TRANSPORT_LOGGERS, *_LAZY_LOGGERS):
        logging.getLogger(name)
    for name, logger in list(manager.loggerDict.items()):
        if not isinstance(logger, logging.Logger):
            continue
        if name.partition(".")[0] in _TRANSPORT_LOGGERS and SECRETS not in logger.filters:
            logger.addFilter(SECRETS)
