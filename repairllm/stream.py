"""Streaming: parse a reply as it arrives, with total work linear in its length.

:class:`IncrementalParser` (the lexical stage's :mod:`~repairllm.lexical.incremental`
parser, its fallback repairing with the whole pipeline) keeps its state between chunks
so each character is scanned once. The final value always goes through the full
pipeline, so streaming never lowers the bar.

``stream``/``astream`` drive a backend's stream through the parser and yield
:class:`Partial` records: partial values aligned to the schema as fields complete,
and last the validated value (``done=True``).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any

from . import observe
from .align import align
from .backend import Backend, Message, Messages, Usage
from .errors import RepairLLMError
from .lexical import incremental
from .observe import Hooks
from .options import CallOptions
from .outcome import Outcome
from .pipeline import run
from .policy import Policy, resolve_policy
from .prompts import PromptForm, build_messages, native_options, uses_native
from .schema import Schema, compile_schema

__all__ = ["IncrementalParser", "Partial", "astream", "parse_chunks", "stream"]


class IncrementalParser(incremental.IncrementalParser):
    """:class:`repairllm.lexical.incremental.IncrementalParser` (see there for use), whose
    fallback reads text that is not strict JSON with the whole pipeline (prose, fences
    and ``<think>`` blocks around it included), lenient and accepting truncation."""

    def _repair(self, text: str) -> Any:
        return run(text, None, _PARTIAL_POLICY).data


_PARTIAL_POLICY = resolve_policy("lenient").replace(name="partial", accept_truncated=True)


@dataclass
class Partial:
    """One step of a stream.

    Attributes:
        value: the value so far, aligned to the schema; on the last step (``done``),
            the validated value (a model instance for a pydantic schema).
        done: whether this is the final, validated value.
        text: the reply's text so far.
        outcome: the pipeline's outcome, on the last step.
        usage: tokens, on the last step when the backend reports them.
    """

    value: Any
    done: bool = False
    text: str = ""
    outcome: Outcome | None = None
    usage: Usage | None = field(default=None, repr=False)


class _Streamer:
    """The shared logic of ``stream`` and ``astream``: chunks in, partials out."""

    def __init__(self, schema: Any, policy: Policy | str | None) -> None:
        self.schema: Schema | None = compile_schema(schema) if schema is not None else None
        self.policy = resolve_policy(policy)
        self.partial_policy = self.policy.replace(fill_defaults=False)
        self.parser = IncrementalParser()
        self.last: Any = None
        self.usage: Usage | None = None

    def push(self, text: str) -> Partial | None:
        if not self.parser.feed(text):
            return None
        return self._partial()

    def _partial(self) -> Partial | None:
        value = self.parser.snapshot()
        if value is None:
            return None
        if self.schema is not None and self.policy.align:
            with contextlib.suppress(RepairLLMError, RecursionError):
                value = align(value, self.schema, self.partial_policy)[0]
        try:
            same = value == self.last
        except RecursionError:  # deeper than C's comparison goes: say it changed
            same = False
        if same:
            return None
        self.last = value
        return Partial(value, text=self.parser.text)

    def finish(self) -> Iterator[Partial]:
        if self.parser.close():
            partial = self._partial()
            if partial is not None:
                yield partial
        # The value the partials showed: text after its end (a second value, prose)
        # cannot replace it at the last step.
        text, end = self.parser.text, self.parser.end
        outcome = run(text if end is None else text[:end], self.schema, self.policy)
        yield Partial(outcome.value, True, text, outcome, self.usage)


def _request(
    backend: Backend, prompt: Messages, schema: Schema | None, call: CallOptions
) -> tuple[list[Message], dict[str, Any]]:
    """The messages and structured-mode options of a streamed request for ``schema``.

    :func:`repairllm.stream_items` asks through this too: its request is the one
    :func:`stream` makes for the list's schema.
    """
    messages = build_messages(prompt, schema, call.prompt_form)
    native = uses_native(backend, schema, call.native)
    return messages, native_options(schema) if native else {}


def _start(
    backend: Backend, prompt: Messages, schema: Any, call: CallOptions
) -> tuple[_Streamer, list[Message], dict[str, Any]]:
    """The streamer of a streamed call, its messages and its structured-mode options."""
    streamer = _Streamer(schema, call.policy)
    messages, extra = _request(backend, prompt, streamer.schema, call)
    return streamer, messages, extra


def stream(
    backend: Backend,
    prompt: Messages,
    schema: Any = None,
    *,
    policy: Policy | str | None = CallOptions.policy,
    prompt_form: PromptForm = CallOptions.prompt_form,
    native: bool | None = CallOptions.native,
    hooks: Hooks | None = None,
    **options: Any,
) -> Iterator[Partial]:
    """Stream a structured reply: partial values as fields complete, then the validated one.

    Args:
        backend: a driver; its ``stream`` is used.
        prompt: a string or OpenAI-style messages.
        schema: a pydantic model, a type or a JSON Schema dict; ``None`` for any JSON.
        policy: the repair policy for the final value.
        prompt_form: how the schema is shown (see :mod:`repairllm.prompts`).
        native: use the server's structured mode where declared (``None``), or not.
        hooks: callbacks on the request, the repair and the attempt (see
            :class:`repairllm.observe.Hooks`).
        **options: chat options (``max_tokens``, ``temperature`` ...).

    Yields:
        :class:`Partial` records; the last has ``done=True`` and the validated value.

    Raises:
        NoJSONFound, RepairFailed: the finished reply could not be made valid (streaming
            does not retry; use :func:`repairllm.generate` for that).
        BackendError: from the backend.
    """
    call = CallOptions(policy=policy, prompt_form=prompt_form, native=native)
    streamer, messages, extra = _start(backend, prompt, schema, call)
    with observe.call("stream", backend, hooks) as obs:
        for chunk in obs.chunks(backend.stream, messages, {**options, **extra}):
            if chunk.usage is not None:
                streamer.usage = chunk.usage
            partial = streamer.push(chunk.text)
            if partial is not None:
                yield partial
        yield from obs.partials(streamer.finish())


async def astream(
    backend: Backend,
    prompt: Messages,
    schema: Any = None,
    *,
    policy: Policy | str | None = CallOptions.policy,
    prompt_form: PromptForm = CallOptions.prompt_form,
    native: bool | None = CallOptions.native,
    hooks: Hooks | None = None,
    **options: Any,
) -> AsyncIterator[Partial]:
    """Async :func:`stream`, through the backend's ``astream``."""
    call = CallOptions(policy=policy, prompt_form=prompt_form, native=native)
    streamer, messages, extra = _start(backend, prompt, schema, call)
    with observe.call("astream", backend, hooks) as obs:
        async for chunk in obs.achunks(backend.astream, messages, {**options, **extra}):
            if chunk.usage is not None:
                streamer.usage = chunk.usage
            partial = streamer.push(chunk.text)
            if partial is not None:
                yield partial
        for partial in obs.partials(streamer.finish()):
            yield partial


def parse_chunks(chunks: Iterator[str] | list[str], schema: Any = None) -> list[Partial]:
    """Run text chunks through the streamer without a backend (tests, benchmarks)."""
    streamer = _Streamer(schema, None)
    out = [p for p in (streamer.push(c) for c in chunks) if p is not None]
    out.extend(streamer.finish())
    return out
