"""Logs, traces and hooks: what each structured call, attempt and backend request did.

Three outlets, each close to free until something listens:

- **logging** (stdlib): one INFO record per attempt on ``repairllm.generate``,
  ``repairllm.stream``, ``repairllm.choose`` or ``repairllm.tools`` (backend, model,
  tokens, seconds, finish reason, continuations, transient errors, rules applied, issues
  left, native or not), with every field also on the record (``extra=``) for log
  processors, and DEBUG records per request and per attempt's fixes. The library adds a
  ``NullHandler`` only. Reply text (the reply, the issue messages that quote it, a fix's
  before and after) is logged only after :func:`log_text` or with
  ``REPAIRLLM_LOG_TEXT=1``. The drivers put their secrets filter on these loggers, so a
  key never shows.
- **OpenTelemetry** (``pip install 'repairllm[otel]'``, the API only; see
  :mod:`repairllm.spans`): a span per call (``repairllm.generate`` ...), a child per
  attempt (``repairllm.attempt``) and under it one per backend request
  (``chat {model}``, continuations included), with the GenAI semantic conventions'
  attributes and repairllm's own. The API is imported at the first call and only when installed;
  without it nothing is done.
- **hooks**: :class:`Hooks`, callbacks passed as ``hooks=``.

The call loops open a :func:`call` (one context manager per call) and wrap each backend
request in :meth:`Call.request`; an attempt opens with its first request and closes
when the next attempt opens or the call ends, so the loops keep no bookkeeping.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import (
    AsyncGenerator,
    AsyncIterable,
    AsyncIterator,
    Callable,
    Generator,
    Iterable,
    Iterator,
    Mapping,
    Sequence,
)
from contextlib import contextmanager
from dataclasses import dataclass, fields
from typing import Any, TypeVar

from . import spans
from .attempt import Attempt
from .backend import Backend, Chunk, Completion, Message, Usage, redact_own_error
from .errors import (
    BackendError,
    HookError,
    InvalidInput,
    NoJSONFound,
    RepairFailed,
    RepairLLMError,
)
from .ledger import Issue
from .spans import use_tracer_provider

__all__ = [
    "Call",
    "Hooks",
    "RequestRecord",
    "call",
    "log_text",
    "use_tracer_provider",
]

T = TypeVar("T")

# The library's loggers: made here, at import, so that a driver's secrets filter
# (put on every ``repairllm*`` logger that exists when it starts) covers them.
logging.getLogger("repairllm").addHandler(logging.NullHandler())
_FAMILIES = ("generate", "stream", "choose", "tools")
_LOGGERS = {family: logging.getLogger(f"repairllm.{family}") for family in _FAMILIES}
_FAMILY = {
    "generate": "generate",
    "agenerate": "generate",
    "stream": "stream",
    "astream": "stream",
    "stream_items": "stream",
    "astream_items": "stream",
    "choose": "choose",
    "call_tools": "tools",
    "acall_tools": "tools",
}
_CANCELLED = (GeneratorExit,)
_OK_ENDS = (type(None), GeneratorExit)  # a request that ended so failed nothing


# -- switches ---------------------------------------------------------------------------

_TEXT: bool | None = None


def log_text(enabled: bool | None = True) -> None:
    """Log reply text (at DEBUG), or stop; ``None`` leaves it to ``REPAIRLLM_LOG_TEXT``.

    Off by default: replies carry what users typed and what models made of it. With it
    on, each attempt adds a DEBUG record holding the reply (``text``), the issue
    messages and the ledger's fixes with their before and after, and errors that quote
    the reply keep their message in spans. Keys stay out either way.
    """
    global _TEXT
    _TEXT = enabled


def _text_on() -> bool:
    if _TEXT is not None:
        return _TEXT
    return os.environ.get("REPAIRLLM_LOG_TEXT", "").strip().lower() in ("1", "true", "yes", "on")


# -- hooks ------------------------------------------------------------------------------


@dataclass(frozen=True)
class RequestRecord:
    """One backend request, as :attr:`Hooks.on_request` sees it once it has ended.

    Attributes:
        operation: the call: ``"generate"``, ``"agenerate"``, ``"stream"``,
            ``"astream"`` or ``"choose"``.
        backend: the driver's name, or the preset of an OpenAI-compatible one.
        model: the model asked.
        attempt: the attempt it belongs to, from 1.
        continuation: whether it asked for the rest of a reply cut off at the token limit.
        messages: the messages sent.
        options: the chat options sent (a structured mode's ``json_schema`` included).
        seconds: how long it took, transient retries and their backoff included.
        reply: the reply, or ``None`` when the request failed.
        error: the error it failed with, or ``None``.
    """

    operation: str
    backend: str
    model: str
    attempt: int
    continuation: bool
    messages: Sequence[Message]
    options: Mapping[str, Any]
    seconds: float
    reply: Completion | None = None
    error: BaseException | None = None


@dataclass(frozen=True)
class Hooks:
    """Callbacks on a structured call, for whoever wants neither logs nor traces.

    Passed as ``hooks=`` to ``generate``, ``agenerate``, ``stream``, ``astream``,
    ``stream_items``, ``astream_items``, ``choose``, ``call_tools`` and ``acall_tools``.
    Each is called in the call's thread (or task), in this order:
    ``on_request`` after each backend request (a continuation is a request too);
    then, when the attempt is judged, ``on_repair`` if its reply needed repairs and
    ``on_attempt``; and ``on_retry`` with the failed attempt just before the next
    attempt's request is sent.

    A hook that raises stops the call: it raises :class:`~repairllm.errors.HookError`
    with the hook's exception as ``__cause__`` (raise from ``on_retry`` to stop before
    another request is paid). Spans and logs are closed as for any error. While the call
    is failing anyway (a backend error, retries exhausted), the call's own error is kept
    and the hook's failure is logged at WARNING.

    Attributes:
        on_request: gets a :class:`RequestRecord`.
        on_repair: gets the :class:`~repairllm.Attempt` whose reply was repaired
            (``attempt.ledger`` holds the fixes).
        on_attempt: gets each :class:`~repairllm.Attempt` once judged, valid or not.
        on_retry: gets the :class:`~repairllm.Attempt` that failed, before the retry.
    """

    on_request: Callable[[RequestRecord], object] | None = None
    on_repair: Callable[[Attempt], object] | None = None
    on_attempt: Callable[[Attempt], object] | None = None
    on_retry: Callable[[Attempt], object] | None = None


# -- one call ---------------------------------------------------------------------------


@dataclass
class Sent:
    """What :meth:`Call.request` learns of its request: the reply, and how long it took."""

    reply: Completion | None = None
    seconds: float = 0.0

    def done(self, reply: Completion) -> Completion:
        """Record the reply and hand it on."""
        self.reply = reply
        return reply


def call(operation: str, backend: Backend, hooks: Hooks | None = None) -> Call:
    """Observe one call: ``with observe.call("generate", backend, hooks) as obs:``.

    Args:
        operation: the public function's name (its logger and span name follow).
        backend: the driver.
        hooks: the caller's callbacks.
    """
    return Call(operation, backend, hooks)


@dataclass
class _Open:
    attempt: Attempt
    span: Any
    requests: int = 0


class Call:
    """The observation of one call: its span, its attempts, and the hooks to call."""

    def __init__(self, operation: str, backend: Backend, hooks: Hooks | None) -> None:
        _check_hooks(operation, hooks)
        self.operation = operation
        self.logger = _LOGGERS[_FAMILY[operation]]
        self.backend = backend
        self.hooks = hooks
        self.attempts: list[Attempt] = []
        self._open: _Open | None = None
        self._ended = False
        self._tracer = spans.tracer()
        self._span: Any = None
        self._token: Any = None
        # The driver, or the preset of an OpenAI-compatible one ("llamacpp", "vllm").
        self._provider = spans.provider_name(backend)

    # -- the call ----------------------------------------------------------------------

    def __enter__(self) -> Call:
        if self._tracer is not None:
            span = spans.start(
                self._tracer,
                f"repairllm.{self.operation}",
                None,
                {
                    "repairllm.backend": self._provider,
                    "repairllm.model": self.backend.model,
                },
            )
            if span.is_recording():
                self._span = span
                if self._family != "stream":
                    # Current for the whole call, so that spans a hook (or a driver)
                    # makes nest under it; a stream yields to its caller, so not there.
                    self._token = spans.attach(span)
            else:
                # No SDK set up, or the call sampled out: nothing would keep the
                # attempts' and requests' spans either, so none is made.
                span.end()
                self._tracer = None
        return self

    def __exit__(self, kind: object, exc: BaseException | None, tb: object) -> None:
        self._ended = True
        if isinstance(exc, RepairLLMError) and not isinstance(exc, BackendError):
            # The drivers redact their own errors; ours quote the reply and hold it,
            # and a server may have echoed the key into it. Before the span records it.
            redact_own_error(exc, self.backend._secrets)
        try:
            try:
                self._close(exc)
            except HookError as hook_error:
                self._end(hook_error)
                raise
            self._end(exc)
        finally:
            if self._token is not None:
                spans.detach(self._token)
                self._token = None

    def _close(self, exc: BaseException | None) -> None:
        """Close the open attempt, judging it from ``exc`` where the call did not."""
        if self._open is None:
            return
        attempt = self._open.attempt
        if exc is not None and not attempt.issues and attempt.outcome is None:
            if isinstance(exc, RepairFailed):
                attempt.outcome = exc.best
                attempt.issues = list(exc.issues) or [Issue("", "the reply could not be repaired")]
            elif isinstance(exc, NoJSONFound):
                attempt.issues = [Issue("", "the reply held no JSON")]
            elif attempt.error is None and not isinstance(exc, _CANCELLED):
                attempt.error = f"{type(exc).__name__}: {exc}"
        self._close_attempt(exc)

    def _end(self, exc: BaseException | None) -> None:
        span = self._span
        if span is None:
            return
        self._span = None
        attempts = self.attempts
        last = attempts[-1] if attempts else None
        usage = sum((a.usage for a in attempts), Usage())
        attributes: dict[str, Any] = {
            "repairllm.model": self.backend.model,
            "repairllm.attempts": len(attempts),
            "repairllm.retries": max(len(attempts) - 1, 0),
            "repairllm.continuations": sum(a.continuations for a in attempts),
            "repairllm.transient_errors": sum(a.transient_errors for a in attempts),
            "repairllm.usage.input_tokens": usage.prompt_tokens,
            "repairllm.usage.output_tokens": usage.completion_tokens,
            "repairllm.ok": exc is None and last is not None and _ok(last),
        }
        if last is not None:
            attributes.update(_judgement(last))
        span.set_attributes(attributes)
        spans.fail(span, exc, text=_text_on())
        span.end()

    # -- attempts ----------------------------------------------------------------------

    def _begin(self, attempt: Attempt) -> _Open:
        """The open attempt for a request of ``attempt``: itself, or a new one."""
        current = self._open
        if current is not None and current.attempt is attempt:
            return current
        if current is not None:
            self._close_attempt(None)
            if not _ok(current.attempt):
                self._hook("on_retry", current.attempt, failing=False)
        self.attempts.append(attempt)
        span = None
        if self._tracer is not None:
            span = spans.start(
                self._tracer,
                "repairllm.attempt",
                self._span,
                {"repairllm.attempt": len(self.attempts)},
            )
        self._open = _Open(attempt, span)
        return self._open

    def _close_attempt(self, exc: BaseException | None) -> None:
        open_ = self._open
        if open_ is None:
            return
        self._open = None
        attempt = open_.attempt
        number = len(self.attempts)
        cancelled = isinstance(exc, _CANCELLED)
        if open_.span is not None:
            span = open_.span
            span.set_attributes(
                {
                    **_judgement(attempt),
                    "repairllm.ok": _ok(attempt),
                    "repairllm.continuations": attempt.continuations,
                    "repairllm.transient_errors": attempt.transient_errors,
                    "repairllm.usage.input_tokens": attempt.usage.prompt_tokens,
                    "repairllm.usage.output_tokens": attempt.usage.completion_tokens,
                }
            )
            if attempt.notes:
                span.set_attribute("repairllm.notes", list(attempt.notes))
            if attempt.error is not None and not cancelled:
                spans.set_error(span, attempt.error)
            elif cancelled:
                span.set_attribute("repairllm.closed_early", True)
            span.end()
        if cancelled:
            self.logger.debug(
                "%s attempt %d stopped: the caller closed the stream",
                self.operation,
                number,
                extra={"operation": self.operation, "attempt": number},
            )
            return
        self._log_attempt(attempt, number)
        if isinstance(exc, HookError):
            return  # the hooks are what failed: none is called again
        failing = exc is not None
        if attempt.outcome is not None and attempt.ledger:
            self._hook("on_repair", attempt, failing=failing)
        self._hook("on_attempt", attempt, failing=failing)

    # -- requests ----------------------------------------------------------------------

    @contextmanager
    def request(
        self,
        attempt: Attempt,
        messages: Sequence[Message],
        options: Mapping[str, Any],
        *,
        attach: bool = True,
        own: bool = False,
    ) -> Iterator[Sent]:
        """Observe one backend request of ``attempt`` (a new attempt opens with it).

        Args:
            attempt: the attempt the request belongs to.
            messages: the messages sent.
            options: the chat options sent.
            attach: make the request's span current while the block runs, so that
                spans of the HTTP client below nest under it; a generator that yields
                inside the block must not.
            own: fill the attempt in from the reply (calls whose loop does not:
                ``stream``, ``choose``).

        Yields:
            a :class:`Sent`; the block gives it the reply with :meth:`Sent.done`.
        """
        open_ = self._begin(attempt)
        continuation = open_.requests > 0
        open_.requests += 1
        number = len(self.attempts)
        sent = Sent()
        asked = self.backend.model
        span = self._start_request(open_, options, continuation)
        started = time.perf_counter()
        error: BaseException | None = None
        try:
            if span is not None and attach:
                with spans.current(span):
                    yield sent
            else:
                yield sent
        except BaseException as exc:
            error = exc
            raise
        finally:
            sent.seconds = time.perf_counter() - started
            if own:
                _fill(attempt, sent, error)
            if span is not None:
                spans.end_request(span, self.backend, asked, sent.reply, error, text=_text_on())
            if not self._ended:  # else a stream finalised after its call: the span was all
                self._requested(number, continuation, messages, options, sent, error)

    def _requested(
        self,
        number: int,
        continuation: bool,
        messages: Sequence[Message],
        options: Mapping[str, Any],
        sent: Sent,
        error: BaseException | None,
    ) -> None:
        """Log a request that ended and tell the ``on_request`` hook."""
        self._log_request(number, continuation, sent, error)
        if self.hooks is None or self.hooks.on_request is None:
            return
        # Closed early with a reply (the reader had what it needed): a request like
        # any; closed before any text: nothing to report.
        if isinstance(error, _CANCELLED) and sent.reply is None:
            return
        record = RequestRecord(
            self.operation,
            self._provider,
            self.backend.model,
            number,
            continuation,
            messages,
            options,
            sent.seconds,
            sent.reply,
            error,
        )
        self._hook("on_request", record, failing=not isinstance(error, _OK_ENDS))

    def chat(
        self, send: Callable[..., Completion], messages: list[Message], options: dict[str, Any]
    ) -> tuple[Attempt, Completion]:
        """One request as a whole attempt: ``send(messages, **options)``, observed."""
        attempt = Attempt(native=_native(options))
        with self.request(attempt, messages, options, own=True) as sent:
            reply = sent.done(send(messages, **options))
        return attempt, reply

    def chunks(
        self,
        start: Callable[..., Iterator[Chunk]],
        messages: list[Message],
        options: dict[str, Any],
    ) -> Generator[Chunk, None, None]:
        """A streamed request as a whole attempt: the chunks of ``start(messages, **options)``."""
        attempt = Attempt(native=_native(options))
        with self.request(attempt, messages, options, attach=False, own=True) as sent:
            tally = _Tally()
            try:
                for chunk in start(messages, **options):
                    tally.add(chunk)
                    yield chunk
            except GeneratorExit:
                sent.done(tally.completion())  # what came before the reader stopped
                raise
            sent.done(tally.completion())

    async def achunks(
        self,
        start: Callable[..., AsyncIterator[Chunk]],
        messages: list[Message],
        options: dict[str, Any],
    ) -> AsyncGenerator[Chunk, None]:
        """Async :meth:`chunks`."""
        attempt = Attempt(native=_native(options))
        with self.request(attempt, messages, options, attach=False, own=True) as sent:
            tally = _Tally()
            try:
                async for chunk in start(messages, **options):
                    tally.add(chunk)
                    yield chunk
            except GeneratorExit:
                sent.done(tally.completion())  # what came before the reader stopped
                raise
            sent.done(tally.completion())

    def partials(self, partials: Iterable[T]) -> Iterator[T]:
        """Pass a stream's partials on, judging the open attempt by the final one."""
        for partial in partials:
            outcome = getattr(partial, "outcome", None)
            if outcome is not None and self._open is not None:
                self._open.attempt.outcome = outcome
                self._open.attempt.issues = list(outcome.issues)
            yield partial

    def items(self, items: Iterable[T]) -> Iterator[T]:
        """Pass a list's item records on, counting an invalid item's issues on the attempt."""
        for item in items:
            if getattr(item, "ok", True) is False and self._open is not None:
                self._open.attempt.issues.extend(getattr(item, "issues", ()))
            yield item

    async def aitems(self, items: AsyncIterable[T]) -> AsyncIterator[T]:
        """Async :meth:`items`."""
        async for item in items:
            if getattr(item, "ok", True) is False and self._open is not None:
                self._open.attempt.issues.extend(getattr(item, "issues", ()))
            yield item

    def _start_request(self, open_: _Open, options: Mapping[str, Any], continuation: bool) -> Any:
        if self._tracer is None:
            return None
        native = _native({**self.backend.defaults, **options})
        return spans.start_request(
            self._tracer,
            open_.span,
            self.backend,
            self._provider,
            options,
            attempt=len(self.attempts),
            continuation=continuation,
            native=native,
            # choose asks for a letter, unless the server's mode holds it to the labels
            output="json" if self._family != "choose" or native else "text",
        )

    @property
    def _family(self) -> str:
        return _FAMILY[self.operation]

    # -- logs and hooks ----------------------------------------------------------------

    def _log_attempt(self, attempt: Attempt, number: int) -> None:
        logger = self.logger
        if not logger.isEnabledFor(logging.INFO):
            return
        rules = _rules(attempt)
        fields = {
            "operation": self.operation,
            "backend": self._provider,
            "model": self.backend.model,
            "attempt": number,
            "input_tokens": attempt.usage.prompt_tokens,
            "output_tokens": attempt.usage.completion_tokens,
            "seconds": round(attempt.seconds, 6),
            "finish_reason": attempt.finish_reason,
            "continuations": attempt.continuations,
            "transient_errors": attempt.transient_errors,
            "rules": rules,
            "cost": attempt.ledger.cost,
            "issues": len(attempt.issues),
            "native": attempt.native,
            "tools": attempt.tools,
            "ok": _ok(attempt),
            "error": attempt.error,
            "notes": list(attempt.notes),
        }
        verdict = "ok" if _ok(attempt) else ("error" if attempt.error else "invalid")
        logger.info(
            "%s attempt %d %s: %s %s, %d+%d tokens, %.2f s, finish %s, %d continuation(s), "
            "%d transient error(s), rules [%s], %d issue(s) left, %s",
            self.operation,
            number,
            verdict,
            self._provider,
            self.backend.model or "?",
            attempt.usage.prompt_tokens,
            attempt.usage.completion_tokens,
            attempt.seconds,
            attempt.finish_reason,
            attempt.continuations,
            attempt.transient_errors,
            ", ".join(rules),
            len(attempt.issues),
            _mode(attempt),
            extra=fields,
        )
        if not logger.isEnabledFor(logging.DEBUG):
            return
        fixes = [f"{fix.stage}:{fix.rule} at {fix.path or '/'}" for fix in attempt.ledger]
        logger.debug(
            "%s attempt %d fixes: %s; issues at: %s; notes: %s",
            self.operation,
            number,
            "; ".join(fixes) or "none",
            ", ".join(issue.path or "/" for issue in attempt.issues) or "none",
            " | ".join(attempt.notes) or "none",
            extra={
                "operation": self.operation,
                "attempt": number,
                "fixes": fixes,
                "issue_paths": [issue.path for issue in attempt.issues],
                "notes": list(attempt.notes),
            },
        )
        if _text_on():
            logger.debug(
                "%s attempt %d reply: %r; issues: %s; fixes: %s",
                self.operation,
                number,
                attempt.raw,
                "; ".join(str(issue) for issue in attempt.issues) or "none",
                "; ".join(str(fix) for fix in attempt.ledger) or "none",
                extra={
                    "operation": self.operation,
                    "attempt": number,
                    "text": attempt.raw,
                    "issue_messages": [str(issue) for issue in attempt.issues],
                    "fixes": [str(fix) for fix in attempt.ledger],
                },
            )

    def _log_request(
        self, number: int, continuation: bool, sent: Sent, error: BaseException | None
    ) -> None:
        logger = self.logger
        if not logger.isEnabledFor(logging.DEBUG):
            return
        reply = sent.reply
        usage = reply.usage if reply is not None else Usage()
        finish = reply.finish_reason if reply is not None else None
        logger.debug(
            "%s attempt %d %s to %s %s: %d+%d tokens, %.2f s, finish %s%s",
            self.operation,
            number,
            "continuation" if continuation else "request",
            self._provider,
            self.backend.model or "?",
            usage.prompt_tokens,
            usage.completion_tokens,
            sent.seconds,
            finish,
            f", failed: {type(error).__name__}" if error is not None else "",
            extra={
                "operation": self.operation,
                "backend": self._provider,
                "model": self.backend.model,
                "attempt": number,
                "continuation": continuation,
                "input_tokens": usage.prompt_tokens,
                "output_tokens": usage.completion_tokens,
                "seconds": round(sent.seconds, 6),
                "finish_reason": finish,
                "error": type(error).__name__ if error is not None else None,
            },
        )

    def _hook(self, name: str, argument: Any, *, failing: bool) -> None:
        hook = getattr(self.hooks, name, None) if self.hooks is not None else None
        if hook is None:
            return
        try:
            hook(argument)
        except Exception as exc:
            if not failing:
                raise HookError(name, exc, self.attempts) from exc
            self.logger.warning(
                "the %s hook raised %s while the %s call was failing; the call's error is kept",
                name,
                type(exc).__name__,
                self.operation,
                exc_info=True,
                extra={"operation": self.operation, "hook": name},
            )


# -- helpers ----------------------------------------------------------------------------


def _check_hooks(operation: str, hooks: object) -> None:
    """Refuse hooks that could not be called, before the call sends anything."""
    if hooks is None:
        return
    if not isinstance(hooks, Hooks):
        raise InvalidInput(
            f"{operation}(hooks=...) takes a repairllm.Hooks (Hooks(on_request=...)), "
            f"not {type(hooks).__name__}"
        )
    for field in fields(Hooks):
        hook = getattr(hooks, field.name)
        if hook is not None and not callable(hook):
            raise InvalidInput(
                f"Hooks.{field.name} must be callable or None, not {type(hook).__name__}"
            )


def _native(options: Mapping[str, Any]) -> bool:
    return bool(options.get("json_schema") or options.get("json_mode"))


def _mode(attempt: Attempt) -> str:
    """How the schema was sent: as a function to call, in the server's mode, or prompted."""
    return "tools" if attempt.tools else "native" if attempt.native else "prompted"


def _ok(attempt: Attempt) -> bool:
    """Whether the attempt gave what was asked: judged, nothing left wrong, no error.

    Not :attr:`Attempt.ok`, which also wants one repaired value: a ``call_tools``
    attempt repairs each call on its own and keeps no outcome.
    """
    return attempt.error is None and not attempt.issues


def _rules(attempt: Attempt) -> list[str]:
    """The rules the attempt's repair applied, each once, in the order first applied."""
    return list(dict.fromkeys(attempt.ledger.rules()))


def _judgement(attempt: Attempt) -> dict[str, Any]:
    return {
        "repairllm.rules": _rules(attempt),
        "repairllm.cost": float(attempt.ledger.cost),
        "repairllm.issues": len(attempt.issues),
        "repairllm.native": attempt.native,
        "repairllm.tools": attempt.tools,
    }


def _fill(attempt: Attempt, sent: Sent, error: BaseException | None) -> None:
    """An attempt of one request, from that request."""
    attempt.seconds += sent.seconds
    reply = sent.reply
    if reply is not None:
        attempt.raw = reply.text
        attempt.usage = reply.usage
        attempt.finish_reason = reply.finish_reason
        attempt.note(reply)
    if error is not None and not isinstance(error, _CANCELLED):
        attempt.error = f"{type(error).__name__}: {error}"


class _Tally:
    """A streamed reply as one completion: its text, last finish reason, usage, notes."""

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.finish: str | None = None
        self.usage = Usage()
        self.notes: list[str] = []

    def add(self, chunk: Chunk) -> None:
        self.parts.append(chunk.text)
        self.notes.extend(chunk.notes)
        if chunk.finish_reason is not None:
            self.finish = chunk.finish_reason
        if chunk.usage is not None:
            self.usage = chunk.usage

    def completion(self) -> Completion:
        return Completion("".join(self.parts), self.finish, self.usage, notes=tuple(self.notes))
