"""Structured calls: ask a backend, repair the reply, and re-ask only with what is still wrong.

``generate`` runs the loop the design draws: prompt → backend → repair → validate, and
when repair cannot give a valid value, one more request whose last user turn names
the remaining issues by JSON pointer. That feedback *replaces* the previous failed
exchange, so the context never grows past one failed reply and one feedback turn.

Two kinds of retry are kept apart and counted separately:

- **transient** backend failures (timeouts, connection resets, 429, 5xx) are retried
  with exponential backoff by tenacity; they do not use up format attempts;
- **format** retries, when repair could not give a valid value.

A reply cut off at the token limit is first *continued* (the model is shown where it
stopped and asked for the rest), not restarted.
"""

from __future__ import annotations

import functools
import inspect
import time
import zlib
from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, Literal, ParamSpec, TypeVar, overload

from tenacity import (
    AsyncRetrying,
    RetryCallState,
    Retrying,
    retry_if_exception,
    stop_after_attempt,
    wait_exponential,
    wait_random,
)

from . import observe
from .attempt import Attempt
from .backend import (
    Backend,
    Chunk,
    Completion,
    Message,
    Messages,
    Usage,
    checked_reply,
    refuses_structured,
)
from .errors import (
    BackendError,
    InvalidInput,
    NoJSONFound,
    RepairFailed,
    RepairLLMError,
    RetriesExhausted,
)
from .ledger import Issue, Ledger
from .observe import Hooks
from .options import CallOptions, Mode
from .pipeline import run
from .policy import Policy, resolve_policy
from .prompts import PromptForm, build_messages, feedback_message, native_options, uses_native
from .schema import Schema, compile_schema
from .stream import IncrementalParser
from .toolspec import read_call, takes_tools, tool_name, tool_options

__all__ = ["Attempt", "Generation", "agenerate", "generate", "repairing"]

T = TypeVar("T")
P = ParamSpec("P")

_CONTINUE = (
    "Your reply was cut off. Continue it exactly where it stopped: write only the missing "
    "rest, without repeating anything. It ended with:\n{tail}"
)


@dataclass
class Generation(Generic[T]):
    """What ``generate(..., outcome=True)`` returns: the value and every attempt."""

    value: T
    attempts: list[Attempt]

    @property
    def usage(self) -> Usage:
        total = Usage()
        for attempt in self.attempts:
            total = total + attempt.usage
        return total

    @property
    def seconds(self) -> float:
        return sum(a.seconds for a in self.attempts)

    @property
    def ledger(self) -> Ledger:
        return self.attempts[-1].ledger

    @property
    def data(self) -> Any:
        """The JSON value before validation turned it into a model instance."""
        outcome = self.attempts[-1].outcome
        return outcome.data if outcome is not None else None


@dataclass
class _Plan:
    """A call's options and what they settle to once the backend and schema are known."""

    call: CallOptions
    schema: Schema | None
    policy: Policy
    native: bool
    options: dict[str, Any]
    continues_reply: bool = False
    tools: bool = False
    """Send the schema as a forced function call (until the server refuses it)."""
    notes: list[str] = field(default_factory=list)
    """What every attempt should say about how the schema was sent."""

    @property
    def form(self) -> PromptForm:
        return self.call.prompt_form

    def first_messages(self, prompt: Messages) -> list[Message]:
        return build_messages(prompt, self.schema, self.form)


def _plan(
    backend: Backend | None,
    schema: Any,
    call: CallOptions,
    *,
    options: dict[str, Any] | None = None,
) -> _Plan:
    """Settle a call: compile the schema, resolve the policy, decide on the structured mode.

    Args:
        backend: the driver, or ``None`` for :func:`repairing` (no requests of its own).
        schema: as the public functions take it.
        call: the call's options.
        options: the chat options sent with every request.
    """
    compiled = compile_schema(schema) if schema is not None else None
    use_native = uses_native(backend, compiled, call.wants_native)
    tools, notes = _uses_tools(backend, compiled, call, use_native)
    return _Plan(
        call,
        compiled,
        resolve_policy(call.policy),
        use_native,
        options if options is not None else {},
        backend is not None and backend.continues_reply,
        tools,
        notes,
    )


def _uses_tools(
    backend: Backend | None, schema: Schema | None, call: CallOptions, native: bool
) -> tuple[bool, list[str]]:
    """Whether the call sends the schema as a function, and if it cannot, why not.

    Like ``native=True``, ``mode="tools"`` cannot turn on what the backend lacks: the
    call goes the next way (the JSON mode, else the prompt) and every attempt says so.
    """
    if call.mode != "tools" or backend is None:
        return False, []
    instead = "its JSON mode" if native else "the schema in the prompt only"
    if not backend.supports_tools:
        return False, [f"{backend.name} is not known to take tool calls; sent {instead}"]
    if not takes_tools(schema):
        return False, [
            "tool-call mode needs an object schema (a function's arguments are an "
            f"object); sent {instead}"
        ]
    return True, []


def _native_options(plan: _Plan) -> dict[str, Any]:
    if plan.tools:
        return tool_options(plan.schema)
    return native_options(plan.schema) if plan.native else {}


def _reply_text(reply: Completion, attempt: Attempt, plan: _Plan) -> str:
    """What an attempt repairs: the reply's text, or in tool-call mode its call's arguments."""
    if not attempt.tools:
        return reply.text
    text, notes = read_call(reply, tool_name(plan.schema))
    attempt.notes.extend(notes)
    return text


def _is_transient(exc: BaseException) -> bool:
    return isinstance(exc, BackendError) and exc.transient


def _overlap(head: str, tail: str, limit: int = 200) -> int:
    """Length of the longest suffix of ``head`` that ``tail`` starts with (models repeat)."""
    for size in range(min(len(head), len(tail), limit), 0, -1):
        if head.endswith(tail[:size]):
            return size
    return 0


_LOOP_WINDOW = 600


def _looping(text: str, window: int = _LOOP_WINDOW) -> bool:
    """Whether a reply ends in a loop (the same phrase over and over).

    Small models decoding greedily fall into such loops until the token limit; asking
    them to continue only buys more of it, so the attempt ends and the retry's feedback
    takes over. A looping tail compresses to a small fraction of its length.
    """
    tail = text[-window:].encode("utf-8", "replace")
    if len(tail) < window // 2:
        return False
    # Real replies in the schema corpus compress to 0.37 or more; loops seen from
    # SmolLM2 to 0.13-0.26.
    return len(zlib.compress(tail, 6)) < len(tail) * 0.3


def _value_cut_off(text: str, plan: _Plan) -> bool:
    """Whether a reply stopped by the token limit lacks part of its value.

    A small model often closes the JSON and then rambles until the limit; continuing
    that would only buy more rambling.
    """
    try:
        outcome = run(text, plan.schema, plan.policy)
    except RepairLLMError:
        return True
    return outcome.truncated or bool(outcome.issues)


def _judge(attempt: Attempt, plan: _Plan) -> None:
    """Repair the attempt's reply and record what is still wrong."""
    try:
        outcome = run(attempt.raw, plan.schema, plan.policy)
    except NoJSONFound:
        attempt.issues = [Issue("", "the reply held no JSON")]
        return
    except RepairFailed as exc:
        attempt.outcome = exc.best
        attempt.issues = list(exc.issues) or [Issue("", "; ".join(exc.reasons) or str(exc))]
        return
    attempt.outcome = outcome
    attempt.issues = list(outcome.issues)


def _next_messages(first: list[Message], failed: Attempt, plan: _Plan) -> list[Message]:
    """The first request plus one failed exchange: the reply and what is wrong with it.

    Only the latest failure is shown, whatever the attempt number, so the context
    stays bounded.
    """
    best = failed.outcome.data if failed.outcome is not None else None
    feedback = feedback_message(
        failed.issues, best, plan.schema, plan.form, no_json=failed.outcome is None
    )
    reply = failed.raw if len(failed.raw) <= 4000 else failed.raw[:4000]
    return [*first, {"role": "assistant", "content": reply}, {"role": "user", "content": feedback}]


def _best(attempts: Sequence[Attempt]) -> Attempt | None:
    scored = [a for a in attempts if a.outcome is not None]
    if not scored:
        return None
    return min(scored, key=lambda a: (len(a.issues), a.ledger.cost))


@dataclass
class _Request:
    messages: list[Message]
    options: dict[str, Any]
    attempt: Attempt


def _dialogue(prompt: Messages, plan: _Plan) -> Generator[_Request, Completion, list[Attempt]]:
    """The whole conversation as a generator: it yields requests and is sent replies.

    Kept free of I/O so that the sync and async drivers below share every decision.
    """
    first = plan.first_messages(prompt)
    messages = first
    attempts: list[Attempt] = []
    for _ in range(plan.call.retries + 1):
        attempt = Attempt(
            native=plan.native and not plan.tools, tools=plan.tools, notes=list(plan.notes)
        )
        attempts.append(attempt)
        reply = yield _Request(messages, {**plan.options, **_native_options(plan)}, attempt)
        attempt.raw, attempt.usage = _reply_text(reply, attempt, plan), reply.usage
        attempt.finish_reason = reply.finish_reason
        attempt.note(reply)
        while (
            reply.truncated
            and attempt.continuations < plan.call.continuations
            and _value_cut_off(attempt.raw, plan)
            and not _looping(attempt.raw)
        ):
            if plan.continues_reply:
                # The model writes on from the reply's last character, under the same
                # constraint: the driver feeds the reply so far to its grammar.
                more = [*messages, {"role": "assistant", "content": attempt.raw}]
                reply = yield _Request(more, {**plan.options, **_native_options(plan)}, attempt)
                attempt.raw += reply.text
            else:
                more = [
                    *messages,
                    {"role": "assistant", "content": attempt.raw},
                    {"role": "user", "content": _CONTINUE.format(tail=attempt.raw[-200:])},
                ]
                # A server's grammar would start a fresh value here: ask plainly.
                reply = yield _Request(more, dict(plan.options), attempt)
                attempt.raw += reply.text[_overlap(attempt.raw, reply.text) :]
            attempt.note(reply)
            attempt.usage = attempt.usage + reply.usage
            attempt.finish_reason = reply.finish_reason
            attempt.continuations += 1
        _judge(attempt, plan)
        if attempt.ok:
            break
        messages = _next_messages(first, attempt, plan)
    return attempts


def _count_transient(attempt: Attempt) -> Callable[[RetryCallState], None]:
    def count(_: RetryCallState) -> None:
        attempt.transient_errors += 1

    return count


def _retry_args(plan: _Plan, attempt: Attempt) -> dict[str, Any]:
    def transient(exc: BaseException) -> bool:
        # A refusal of the structured form (a 500 about the schema, say) is not
        # retried as it is: the caller resends without the form.
        structured = plan.native or plan.tools
        if structured and isinstance(exc, BackendError) and refuses_structured(exc):
            return False
        return _is_transient(exc)

    return {
        "retry": retry_if_exception(transient),
        "stop": stop_after_attempt(plan.call.transient_retries + 1),
        "wait": wait_exponential(multiplier=plan.call.backoff, max=8.0)
        + wait_random(0, plan.call.backoff),
        "before_sleep": _count_transient(attempt),
        "reraise": True,
    }


def _without_native(request: _Request, exc: BackendError, plan: _Plan) -> bool:
    """Whether to resend without the server's structured mode.

    A server that refuses the structured request (see
    :func:`~repairllm.backend.refuses_structured`) and whose driver has no weaker
    form left to try gets the call again with plain prompting; repair stays the
    safety net, and the attempt says so. A refused tool call goes first to the JSON
    mode (where the call may use it), then to plain prompting.
    """
    if "tools" in request.options and refuses_structured(exc):
        plan.tools = False
        request.options.pop("tools")
        request.options.pop("tool_choice", None)
        request.options.update(_native_options(plan))
        request.attempt.tools = False
        request.attempt.native = plan.native
        instead = "its JSON mode" if plan.native else "the schema in the prompt only"
        request.attempt.notes.append(
            f"the backend refused tool calls ({exc}); asked again with {instead}"
        )
        return True
    native = "json_schema" in request.options or "json_mode" in request.options
    if native and refuses_structured(exc):
        plan.native = False
        request.options.pop("json_schema", None)
        request.options.pop("json_mode", None)
        request.attempt.native = False
        request.attempt.notes.append(
            f"the backend refused its structured mode ({exc}); asked again without it"
        )
        return True
    return False


def _until_value(backend: Backend, messages: list[Message], **options: Any) -> Completion:
    """Stream the reply and stop reading once a complete JSON value has arrived.

    Small models often close the JSON and go on talking until the token limit; the
    driver stops generating when its stream is closed, so those tokens are never paid.
    """
    parser = IncrementalParser()
    reader = _Reader()
    stream = backend.stream(messages, **options)
    try:
        for chunk in stream:
            reader.add(chunk)
            if parser.feed(chunk.text) and parser.complete:
                reader.stopped = True
                break
            if reader.looping():
                break
    finally:
        close = getattr(stream, "close", None)
        if close is not None:
            close()
    return reader.completion(backend, messages)


async def _auntil_value(backend: Backend, messages: list[Message], **options: Any) -> Completion:
    """Async :func:`_until_value`."""
    parser = IncrementalParser()
    reader = _Reader()
    stream = backend.astream(messages, **options)
    try:
        async for chunk in stream:
            reader.add(chunk)
            if parser.feed(chunk.text) and parser.complete:
                reader.stopped = True
                break
            if reader.looping():
                break
    finally:
        aclose = getattr(stream, "aclose", None)
        if aclose is not None:
            await aclose()
    return reader.completion(backend, messages)


class _Reader:
    def __init__(self) -> None:
        self.parts: list[str] = []
        self.finish: str | None = None
        self.usage: Usage | None = None
        self.stopped = False
        self.size = 0
        self.checked = 0
        self.notes: list[str] = []

    def looping(self) -> bool:
        """Whether the reply has fallen into a loop (checked every 300 characters)."""
        if self.size - self.checked < 300:
            return False
        self.checked = self.size
        # Only the tail is judged: join just enough of the last pieces to cover it.
        tail: list[str] = []
        length = 0
        for part in reversed(self.parts):
            tail.append(part)
            length += len(part)
            if length >= _LOOP_WINDOW:
                break
        if _looping("".join(reversed(tail))):
            self.finish = "loop"
            return True
        return False

    def add(self, chunk: Chunk) -> None:
        self.notes.extend(chunk.notes)
        self.size += len(chunk.text)
        self.parts.append(chunk.text)
        if chunk.usage is not None:
            self.usage = chunk.usage
        if chunk.finish_reason is not None:
            self.finish = chunk.finish_reason

    def completion(self, backend: Backend, messages: list[Message]) -> Completion:
        text = "".join(self.parts)
        usage = self.usage
        if usage is None:
            # Stopped before the driver's last chunk: count what was generated.
            usage = Usage(backend.count_tokens(messages), backend.count_tokens(text))
        # "loop": stopped because the reply repeats itself; it is not continued.
        finish = "stop" if self.stopped else (self.finish or "stop")
        return Completion(text, finish, usage, notes=tuple(self.notes))


def _caller(backend: Backend, plan: _Plan) -> Callable[..., Completion]:
    # Tool calls come back whole from chat (streams carry text only).
    if plan.call.stop_at_value and backend.supports_streaming and not plan.tools:
        return functools.partial(_until_value, backend)
    return backend.chat


def _acaller(backend: Backend, plan: _Plan) -> Callable[..., Any]:
    if plan.call.stop_at_value and backend.supports_streaming and not plan.tools:
        return functools.partial(_auntil_value, backend)
    return backend.achat


def _send(backend: Backend, request: _Request, plan: _Plan) -> Completion:
    started = time.perf_counter()
    try:
        for _ in range(3):  # the form asked for, and up to two fallbacks (tools, JSON mode)
            try:
                return Retrying(**_retry_args(plan, request.attempt))(
                    _caller(backend, plan), request.messages, **request.options
                )
            except BackendError as exc:
                if not _without_native(request, exc, plan):
                    raise
        raise AssertionError("unreachable")  # pragma: no cover
    except BackendError as exc:
        request.attempt.error = str(exc)
        raise
    finally:
        request.attempt.seconds += time.perf_counter() - started


async def _asend(backend: Backend, request: _Request, plan: _Plan) -> Completion:
    started = time.perf_counter()
    try:
        for _ in range(3):  # the form asked for, and up to two fallbacks (tools, JSON mode)
            try:
                result: object = await AsyncRetrying(**_retry_args(plan, request.attempt))(
                    _acaller(backend, plan), request.messages, **request.options
                )
                # A driver's own achat (HTTP drivers, async fakes) skips chat's check.
                return checked_reply(result, backend.name)
            except BackendError as exc:
                if not _without_native(request, exc, plan):
                    raise
        raise AssertionError("unreachable")  # pragma: no cover
    except BackendError as exc:
        request.attempt.error = str(exc)
        raise
    finally:
        request.attempt.seconds += time.perf_counter() - started


R = TypeVar("R")


def _converse(
    dialogue: Generator[_Request, Completion, R], obs: observe.Call, backend: Backend, plan: _Plan
) -> R:
    """Answer a dialogue's requests until it returns, each request observed.

    Every structured call (``generate``, ``call_tools``) drives its own I/O-free
    dialogue through this one loop, so their requests are sent and observed alike.
    """
    try:
        request = next(dialogue)
        while True:
            with obs.request(request.attempt, request.messages, request.options) as sent:
                reply = sent.done(_send(backend, request, plan))
            request = dialogue.send(reply)
    except StopIteration as stop:
        result: R = stop.value
        return result


async def _aconverse(
    dialogue: Generator[_Request, Completion, R], obs: observe.Call, backend: Backend, plan: _Plan
) -> R:
    """Async :func:`_converse`, through the backend's ``achat``."""
    try:
        request = next(dialogue)
        while True:
            with obs.request(request.attempt, request.messages, request.options) as sent:
                reply = sent.done(await _asend(backend, request, plan))
            request = dialogue.send(reply)
    except StopIteration as stop:
        result: R = stop.value
        return result


def _finish(attempts: list[Attempt], outcome: bool) -> Any:
    last = attempts[-1]
    if last.ok and last.outcome is not None:
        value = last.outcome.value
        return Generation(value, attempts) if outcome else value
    best = _best(attempts)
    shown = "; ".join(str(i) for i in last.issues[:3]) or "no JSON"
    raise RetriesExhausted(
        attempts,
        best=best.outcome.value if best is not None and best.outcome is not None else None,
        message=(
            f"no valid value after {len(attempts)} attempt(s); last reply: {shown}. "
            "See .attempts for every reply, ledger and issue; raise retries, or loosen "
            "the policy"
        ),
    )


@overload
def generate(
    backend: Backend,
    prompt: Messages,
    schema: type[T],
    *,
    retries: int = ...,
    policy: Policy | str | None = ...,
    outcome: Literal[False] = ...,
    native: bool | None = ...,
    mode: Mode = ...,
    prompt_form: PromptForm = ...,
    continuations: int = ...,
    transient_retries: int = ...,
    backoff: float = ...,
    stop_at_value: bool = ...,
    hooks: Hooks | None = ...,
    **options: Any,
) -> T: ...
@overload
def generate(
    backend: Backend,
    prompt: Messages,
    schema: Any = ...,
    *,
    retries: int = ...,
    policy: Policy | str | None = ...,
    outcome: Literal[True],
    native: bool | None = ...,
    mode: Mode = ...,
    prompt_form: PromptForm = ...,
    continuations: int = ...,
    transient_retries: int = ...,
    backoff: float = ...,
    stop_at_value: bool = ...,
    hooks: Hooks | None = ...,
    **options: Any,
) -> Generation[Any]: ...
@overload
def generate(
    backend: Backend,
    prompt: Messages,
    schema: Any = ...,
    *,
    retries: int = ...,
    policy: Policy | str | None = ...,
    outcome: bool = ...,
    native: bool | None = ...,
    mode: Mode = ...,
    prompt_form: PromptForm = ...,
    continuations: int = ...,
    transient_retries: int = ...,
    backoff: float = ...,
    stop_at_value: bool = ...,
    hooks: Hooks | None = ...,
    **options: Any,
) -> Any: ...
def generate(
    backend: Backend,
    prompt: Messages,
    schema: Any = None,
    *,
    retries: int = CallOptions.retries,
    policy: Policy | str | None = CallOptions.policy,
    outcome: bool = False,
    native: bool | None = CallOptions.native,
    mode: Mode = CallOptions.mode,
    prompt_form: PromptForm = CallOptions.prompt_form,
    continuations: int = CallOptions.continuations,
    transient_retries: int = CallOptions.transient_retries,
    backoff: float = CallOptions.backoff,
    stop_at_value: bool = CallOptions.stop_at_value,
    hooks: Hooks | None = None,
    **options: Any,
) -> Any:
    """Ask the backend for a value of ``schema`` and return it validated.

    Args:
        backend: a driver from :func:`repairllm.connect`.
        prompt: a string (one user message) or OpenAI-style messages.
        schema: a pydantic model, a type or a JSON Schema dict; ``None`` for any JSON.
        retries: format retries after the first attempt, each with targeted feedback.
        policy: the repair policy (``"strict"``, ``"default"``, ``"lenient"`` or a Policy).
        outcome: return a :class:`Generation` with every :class:`Attempt`.
        native: use the server's structured mode; ``None`` uses it where the backend
            declares one, ``False`` turns it off (to compare).
        mode: how the schema is sent besides the prompt: ``"auto"`` (as ``native``
            says), ``"json"`` (the server's JSON mode), ``"prompt"`` (the prompt only),
            or ``"tools"``: as one function the model is made to call
            (``tools`` + ``tool_choice``), whose ``arguments`` go through the same
            repair and validation. A model that answers in content instead has its
            content repaired, and the attempt's ``notes`` say so; a backend without
            tool calls, or a server that refuses them, gets the JSON mode (unless
            ``native=False``) or the prompt, recorded in the attempt. Tool calls are
            read whole (``stop_at_value`` does not apply to them).
        prompt_form: how the schema is shown to the model (see :mod:`repairllm.prompts`).
        continuations: how often a reply cut off at the token limit is continued.
        transient_retries: retries of timeouts, 429 and 5xx per request, with backoff.
        backoff: the first backoff in seconds (doubling, with jitter, up to 8 s).
        stop_at_value: stream each reply and stop generation once a complete JSON value
            has arrived (where the backend streams), instead of paying for the prose a
            small model adds after it.
        hooks: callbacks on each request, repair, attempt and retry (see
            :class:`repairllm.observe.Hooks`; a hook that raises stops the call).
        **options: chat options for every request (``max_tokens``, ``temperature`` ...).

    Raises:
        RetriesExhausted: no valid value within the attempts; ``.attempts`` holds each
            reply, ledger and issue list, ``.best`` the closest value.
        BackendError: a non-transient backend failure, or a transient one that outlived
            its retries.
    """
    call = CallOptions(
        retries=retries,
        policy=policy,
        native=native,
        mode=mode,
        prompt_form=prompt_form,
        continuations=continuations,
        transient_retries=transient_retries,
        backoff=backoff,
        stop_at_value=stop_at_value,
    )
    plan = _plan(backend, schema, call, options=options)
    dialogue = _dialogue(prompt, plan)
    with observe.call("generate", backend, hooks) as obs:
        return _finish(_converse(dialogue, obs, backend, plan), outcome)


@overload
async def agenerate(
    backend: Backend,
    prompt: Messages,
    schema: type[T],
    *,
    retries: int = ...,
    policy: Policy | str | None = ...,
    outcome: Literal[False] = ...,
    native: bool | None = ...,
    mode: Mode = ...,
    prompt_form: PromptForm = ...,
    continuations: int = ...,
    transient_retries: int = ...,
    backoff: float = ...,
    stop_at_value: bool = ...,
    hooks: Hooks | None = ...,
    **options: Any,
) -> T: ...
@overload
async def agenerate(
    backend: Backend,
    prompt: Messages,
    schema: Any = ...,
    *,
    retries: int = ...,
    policy: Policy | str | None = ...,
    outcome: Literal[True],
    native: bool | None = ...,
    mode: Mode = ...,
    prompt_form: PromptForm = ...,
    continuations: int = ...,
    transient_retries: int = ...,
    backoff: float = ...,
    stop_at_value: bool = ...,
    hooks: Hooks | None = ...,
    **options: Any,
) -> Generation[Any]: ...
@overload
async def agenerate(
    backend: Backend,
    prompt: Messages,
    schema: Any = ...,
    *,
    retries: int = ...,
    policy: Policy | str | None = ...,
    outcome: bool = ...,
    native: bool | None = ...,
    mode: Mode = ...,
    prompt_form: PromptForm = ...,
    continuations: int = ...,
    transient_retries: int = ...,
    backoff: float = ...,
    stop_at_value: bool = ...,
    hooks: Hooks | None = ...,
    **options: Any,
) -> Any: ...
async def agenerate(
    backend: Backend,
    prompt: Messages,
    schema: Any = None,
    *,
    retries: int = CallOptions.retries,
    policy: Policy | str | None = CallOptions.policy,
    outcome: bool = False,
    native: bool | None = CallOptions.native,
    mode: Mode = CallOptions.mode,
    prompt_form: PromptForm = CallOptions.prompt_form,
    continuations: int = CallOptions.continuations,
    transient_retries: int = CallOptions.transient_retries,
    backoff: float = CallOptions.backoff,
    stop_at_value: bool = CallOptions.stop_at_value,
    hooks: Hooks | None = None,
    **options: Any,
) -> Any:
    """Async :func:`generate`, through the backend's ``achat``."""
    call = CallOptions(
        retries=retries,
        policy=policy,
        native=native,
        mode=mode,
        prompt_form=prompt_form,
        continuations=continuations,
        transient_retries=transient_retries,
        backoff=backoff,
        stop_at_value=stop_at_value,
    )
    plan = _plan(backend, schema, call, options=options)
    dialogue = _dialogue(prompt, plan)
    with observe.call("agenerate", backend, hooks) as obs:
        return _finish(await _aconverse(dialogue, obs, backend, plan), outcome)


def _takes_feedback(fn: Callable[..., Any]) -> bool:
    try:
        params = inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return False
    return "feedback" in params or any(
        p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()
    )


def repairing(
    schema: Any = None,
    *,
    retries: int = CallOptions.retries,
    policy: Policy | str | None = CallOptions.policy,
    prompt_form: PromptForm = CallOptions.prompt_form,
) -> Callable[[Callable[P, Any]], Callable[P, Any]]:
    """Wrap a function that returns model text so that it returns a validated value.

    The function is called again (at most ``retries`` more times) while repair cannot
    give a valid value; if it takes a ``feedback`` argument, the retry passes the
    targeted feedback there. Works on async functions too.

    Example:
        >>> @repairing(Person, retries=2)  # doctest: +SKIP
        ... def ask(prompt: str, feedback: str | None = None) -> str: ...
    """
    # The wrapped function makes its own requests: no structured mode, no continuations,
    # no transient retries here.
    call = CallOptions(
        retries=retries,
        policy=policy,
        prompt_form=prompt_form,
        native=False,
        continuations=0,
        transient_retries=0,
    )
    plan = _plan(None, schema, call)

    def decorate(fn: Callable[P, Any]) -> Callable[P, Any]:
        feedback_ok = _takes_feedback(fn)

        def record(text: Any, started: float, attempts: list[Attempt]) -> Attempt:
            if not isinstance(text, str):
                raise InvalidInput(
                    f"{getattr(fn, '__name__', fn)!r} returned {type(text).__name__}, not text"
                )
            attempt = Attempt(raw=text, seconds=time.perf_counter() - started)
            attempts.append(attempt)
            _judge(attempt, plan)
            return attempt

        def feedback_for(attempt: Attempt) -> str:
            best = attempt.outcome.data if attempt.outcome is not None else None
            return feedback_message(
                attempt.issues, best, plan.schema, plan.form, no_json=attempt.outcome is None
            )

        if inspect.iscoroutinefunction(fn):

            @functools.wraps(fn)
            async def awrapper(*args: P.args, **kwargs: P.kwargs) -> Any:
                attempts: list[Attempt] = []
                for _ in range(plan.call.retries + 1):
                    started = time.perf_counter()
                    attempt = record(await fn(*args, **kwargs), started, attempts)
                    if attempt.ok:
                        break
                    if feedback_ok:
                        kwargs["feedback"] = feedback_for(attempt)
                return _finish(attempts, False)

            return awrapper

        @functools.wraps(fn)
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> Any:
            attempts: list[Attempt] = []
            for _ in range(plan.call.retries + 1):
                started = time.perf_counter()
                attempt = record(fn(*args, **kwargs), started, attempts)
                if attempt.ok:
                    break
                if feedback_ok:
                    kwargs["feedback"] = feedback_for(attempt)
            return _finish(attempts, False)

        return wrapper

    return decorate
