"""Let the model call one or several of a few tools, each call's arguments repaired and
validated against that tool's own schema.

``generate(..., mode="tools")`` asks for one value through one forced function;
:func:`call_tools` is for when the model chooses: it offers every tool (``tools`` and
``tool_choice`` where the backend takes them, and a listing in the prompt for models
whose chat template shows no tools), reads the calls back from ``tool_calls`` or, when
the model answered in content, from the JSON there, and returns each call as a
:class:`ToolUse`. A call of a tool that was not offered, or arguments that repair
cannot make valid, is sent back to the model with the problems by JSON pointer
(``/1/arguments/city``: the second call's ``city``), like any structured call's retry.
"""

from __future__ import annotations

import re
from collections.abc import Generator, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, overload

from . import observe
from .attempt import Attempt
from .backend import Backend, Completion, Message, Messages, ToolCall, as_messages
from .errors import InvalidInput, NoJSONFound, RepairFailed, RetriesExhausted
from .ledger import Issue, Ledger
from .observe import Hooks
from .options import CallOptions
from .outcome import Outcome
from .pipeline import run
from .policy import Policy
from .prompts import PromptForm, describe_issues, json_text, render_schema
from .retry import Generation, _aconverse, _converse, _Plan, _plan, _Request
from .schema import Schema, compile_schema
from .toolspec import forced, function_tool, takes_tools

__all__ = ["ToolUse", "acall_tools", "call_tools"]

Choice = Literal["auto", "required"] | str

# What OpenAI accepts as a function name; a name outside it is refused by the server.
_NAME = re.compile(r"[a-zA-Z0-9_-]{1,64}")

_LISTING = (
    "You can call these tools. Call the ones the request needs. If you cannot call tools, "
    'answer with a JSON list of calls and nothing else: [{"name": <tool name>, '
    '"arguments": {...}}].'
)


@dataclass(frozen=True)
class ToolUse:
    """One call the model made, its arguments validated against the tool's schema.

    Unpacks as ``(name, arguments)``: ``for name, args in call_tools(...)``.

    Attributes:
        name: the tool called.
        arguments: the validated arguments (a model instance when the tool's schema
            is a pydantic model).
        id: the server's id for the call, when it gave one.
        ledger: every change repair made to the arguments.
    """

    name: str
    arguments: Any
    id: str | None = None
    ledger: Ledger = field(default_factory=Ledger, compare=False)

    def __iter__(self) -> Iterator[Any]:
        yield self.name
        yield self.arguments


@dataclass
class _Tools:
    """The tools offered, compiled once, and how their calls are asked for."""

    schemas: dict[str, Schema]
    specs: list[dict[str, Any]]
    choice: Any
    required: bool

    @property
    def names(self) -> str:
        return ", ".join(self.schemas)


def _tools(tools: Mapping[str, Any], choice: Choice) -> _Tools:
    if tools is not None and not isinstance(tools, Mapping):
        raise InvalidInput(f"tools must be a dict of {{name: schema}}, not {type(tools).__name__}")
    if not tools:
        raise InvalidInput("call_tools() needs at least one tool: {name: schema}")
    for name in tools:
        if not isinstance(name, str) or not _NAME.fullmatch(name):
            raise InvalidInput(
                f"a tool's name must be 1 to 64 letters, digits, '_' or '-' (what servers "
                f"accept as a function name), not {name!r}"
            )
    schemas = {name: compile_schema(schema) for name, schema in tools.items()}
    for name, schema in schemas.items():
        if not takes_tools(schema):
            raise InvalidInput(
                f"tool {name!r} needs an object schema: a call's arguments are an object"
            )
    specs = [function_tool(name, schema) for name, schema in schemas.items()]
    if choice in ("auto", "required"):
        # llama-cpp-python forces only a named function; with one tool, name it.
        wanted: Any = (
            forced(next(iter(schemas))) if choice == "required" and len(specs) == 1 else choice
        )
        return _Tools(schemas, specs, wanted, choice == "required")
    if not isinstance(choice, str) or choice not in schemas:
        raise InvalidInput(
            f"choice must be 'auto', 'required' or a tool's name ({', '.join(schemas)}), "
            f"not {choice!r}"
        )
    return _Tools(schemas, specs, forced(choice), True)


def _first_messages(prompt: Messages, tools: _Tools, form: PromptForm) -> list[Message]:
    """The caller's messages with the tools listed in the system message.

    Servers that take ``tools`` show them through the chat template, but many small
    models' templates show none (SmolLM2's among them): the listing is what those
    models see, and what they answer when the server gives back content.
    """
    rows = [_LISTING]
    for name, schema in tools.schemas.items():
        description = schema.root.get("description") if isinstance(schema.root, dict) else None
        head = f"- {name}: {description}" if isinstance(description, str) else f"- {name}"
        shape = render_schema(schema, form) if form != "none" else ""
        rows.append(f"{head}\n  arguments: {shape}" if shape else head)
    listing = "\n".join(rows)
    messages = as_messages(prompt)
    if messages[0].get("role") == "system" and isinstance(messages[0].get("content"), str):
        first = dict(messages[0])
        first["content"] = f"{first['content']}\n\n{listing}"
        return [first, *messages[1:]]
    return [{"role": "system", "content": listing}, *messages]


# -- reading the calls ------------------------------------------------------------------


def _calls_in_content(value: Any, tools: _Tools) -> list[ToolCall]:
    """The calls a model wrote as JSON in its content, in the shapes models use.

    A list of calls; ``{"tool_calls": [...]}``; ``{"function": {...}}``;
    ``{"name": ..., "arguments" | "parameters": ...}``; ``{"<tool name>": {...}}``;
    and, when a single tool is offered, a bare object read as its arguments.
    """
    if isinstance(value, list):
        return [c for item in value for c in _calls_in_content(item, tools)]
    if not isinstance(value, dict):
        return []
    if isinstance(value.get("tool_calls"), list):
        return _calls_in_content(value["tool_calls"], tools)
    if isinstance(value.get("function"), dict):
        return _calls_in_content(value["function"], tools)
    name = value.get("name")
    args = value.get("arguments", value.get("parameters"))
    if isinstance(name, str) and ("arguments" in value or "parameters" in value):
        text = args if isinstance(args, str) else json_text(args)
        return [ToolCall(name, text)]
    if len(value) == 1:
        ((key, inner),) = value.items()
        if key in tools.schemas and isinstance(inner, dict):
            return [ToolCall(key, json_text(inner))]
    if len(tools.schemas) == 1:
        return [ToolCall(next(iter(tools.schemas)), json_text(value))]
    return []


def _read(reply: Completion, attempt: Attempt, tools: _Tools, plan: _Plan) -> list[ToolCall]:
    if reply.tool_calls:
        attempt.raw = json_text(
            [{"name": c.name, "arguments": c.arguments} for c in reply.tool_calls]
        )
        return list(reply.tool_calls)
    attempt.raw = reply.text
    if not reply.text.strip():
        return []
    try:
        outcome = run(reply.text, None, plan.policy)
    except (NoJSONFound, RepairFailed):
        return []
    # The content's own repairs (quotes, commas ...) are this attempt's ledger; each
    # call's arguments then get the schema's.
    attempt.outcome = outcome
    calls = _calls_in_content(outcome.value, tools)
    if calls:
        attempt.notes.append(
            f"the model wrote {len(calls)} tool call(s) in its content instead of calling "
            "the tools; they were read from the content"
        )
    return calls


def _judge(
    calls: list[ToolCall], attempt: Attempt, tools: _Tools, plan: _Plan
) -> tuple[list[ToolUse], list[Any]]:
    """Repair and validate each call; record what is still wrong on the attempt.

    Returns:
        the valid calls, and every call as JSON (its best repair) for the feedback.
    """
    uses: list[ToolUse] = []
    shown: list[Any] = []
    issues: list[Issue] = []
    for i, call in enumerate(calls):
        schema = tools.schemas.get(call.name)
        if schema is None:
            issues.append(
                Issue(
                    f"/{i}/name",
                    f"the model called {call.name!r}, which is not one of the tools offered "
                    f"({tools.names})",
                    expected=list(tools.schemas),
                    got=call.name,
                )
            )
            shown.append({"name": call.name, "arguments": call.arguments})
            continue
        outcome, problems = _repair(call.arguments, schema, plan)
        issues.extend(
            Issue(f"/{i}/arguments{p.path}", p.message, p.expected, p.got) for p in problems
        )
        data = outcome.data if outcome is not None else call.arguments
        shown.append({"name": call.name, "arguments": data})
        if outcome is not None and not problems:
            uses.append(ToolUse(call.name, outcome.value, call.id, outcome.ledger))
    if not calls and tools.required:
        issues.append(Issue("", f"the reply called no tool; call one of: {tools.names}"))
    attempt.issues = issues
    return uses, shown


def _repair(text: str, schema: Schema, plan: _Plan) -> tuple[Outcome | None, list[Issue]]:
    try:
        outcome = run(text, schema, plan.policy)
    except NoJSONFound:
        return None, [Issue("", "the arguments held no JSON")]
    except RepairFailed as exc:
        return exc.best, list(exc.issues) or [Issue("", "; ".join(exc.reasons) or str(exc))]
    return outcome, list(outcome.issues)


def _feedback(attempt: Attempt, shown: list[Any]) -> str:
    parts = ["Your tool calls are not valid yet. Fix these problems:"]
    parts.extend(describe_issues(attempt.issues))
    if shown:
        text = json_text(shown)
        if len(text) <= 2000:
            parts.append(f"Your calls, as JSON:\n{text}")
    parts.append(
        'Call the tools again with the corrections (or answer with the JSON list [{"name": '
        '..., "arguments": {...}}]).'
    )
    return "\n".join(parts)


# -- the conversation -------------------------------------------------------------------


def _dialogue(
    prompt: Messages, plan: _Plan, tools: _Tools
) -> Generator[_Request, Completion, tuple[list[ToolUse] | None, list[Attempt]]]:
    """The calls' conversation, free of I/O like :func:`repairllm.retry._dialogue`."""
    first = _first_messages(prompt, tools, plan.form)
    messages = first
    attempts: list[Attempt] = []
    for _ in range(plan.call.retries + 1):
        attempt = Attempt(tools=plan.tools, notes=list(plan.notes))
        attempts.append(attempt)
        offered = {"tools": tools.specs, "tool_choice": tools.choice} if plan.tools else {}
        reply = yield _Request(messages, {**plan.options, **offered}, attempt)
        attempt.usage, attempt.finish_reason = reply.usage, reply.finish_reason
        attempt.note(reply)
        uses, shown = _judge(_read(reply, attempt, tools, plan), attempt, tools, plan)
        if not attempt.issues:
            return uses, attempts
        reply_shown = attempt.raw if len(attempt.raw) <= 4000 else attempt.raw[:4000]
        messages = [
            *first,
            {"role": "assistant", "content": reply_shown},
            {"role": "user", "content": _feedback(attempt, shown)},
        ]
    return None, attempts


def _setup(
    backend: Backend,
    tools: Mapping[str, Any],
    choice: Choice,
    retries: int,
    policy: Policy | str | None,
    prompt_form: PromptForm,
    transient_retries: int,
    backoff: float,
    options: dict[str, Any],
) -> tuple[_Plan, _Tools]:
    offered = _tools(tools, choice)
    call = CallOptions(
        retries=retries,
        policy=policy,
        native=False,
        mode="tools",
        prompt_form=prompt_form,
        continuations=0,
        transient_retries=transient_retries,
        backoff=backoff,
        # Several calls may follow one another: the reply is read whole.
        stop_at_value=False,
    )
    return _plan(backend, None, call, options=options), offered


def _finish(result: list[ToolUse] | None, attempts: list[Attempt], outcome: bool) -> Any:
    if result is not None:
        return Generation(result, attempts) if outcome else result
    shown = "; ".join(str(i) for i in attempts[-1].issues[:3])
    raise RetriesExhausted(
        attempts,
        message=(
            f"no valid tool calls after {len(attempts)} attempt(s); last reply: {shown}. "
            "See .attempts for every reply and issue; raise retries, or loosen the policy"
        ),
    )


@overload
def call_tools(
    backend: Backend,
    prompt: Messages,
    tools: Mapping[str, Any],
    *,
    choice: Choice = ...,
    retries: int = ...,
    policy: Policy | str | None = ...,
    outcome: Literal[False] = ...,
    prompt_form: PromptForm = ...,
    transient_retries: int = ...,
    backoff: float = ...,
    hooks: Hooks | None = ...,
    **options: Any,
) -> list[ToolUse]: ...
@overload
def call_tools(
    backend: Backend,
    prompt: Messages,
    tools: Mapping[str, Any],
    *,
    choice: Choice = ...,
    retries: int = ...,
    policy: Policy | str | None = ...,
    outcome: Literal[True],
    prompt_form: PromptForm = ...,
    transient_retries: int = ...,
    backoff: float = ...,
    hooks: Hooks | None = ...,
    **options: Any,
) -> Generation[list[ToolUse]]: ...
def call_tools(
    backend: Backend,
    prompt: Messages,
    tools: Mapping[str, Any],
    *,
    choice: Choice = "required",
    retries: int = CallOptions.retries,
    policy: Policy | str | None = CallOptions.policy,
    outcome: bool = False,
    prompt_form: PromptForm = CallOptions.prompt_form,
    transient_retries: int = CallOptions.transient_retries,
    backoff: float = CallOptions.backoff,
    hooks: Hooks | None = None,
    **options: Any,
) -> Any:
    """Offer the model some tools and return the calls it makes, each one validated.

    Args:
        backend: a driver from :func:`repairllm.connect`.
        prompt: a string (one user message) or OpenAI-style messages.
        tools: each tool's name and the schema of its arguments (a pydantic model, or
            a JSON Schema dict of an object); a schema's ``description`` (a model's
            docstring) tells the model what the tool is for.
        choice: ``"required"`` (at least one call; with a single tool, that tool is
            forced), ``"auto"`` (the model may call none: the result is then ``[]``),
            or a tool's name to force that tool.
        retries: re-asks, with the problems by JSON pointer, when a call names a tool
            not offered, when its arguments cannot be made valid, or (unless
            ``choice="auto"``) when the reply calls nothing.
        policy: the repair policy for every call's arguments.
        outcome: return a :class:`~repairllm.retry.Generation` with every attempt.
        prompt_form: how each tool's arguments are shown in the prompt's listing.
        transient_retries: retries of timeouts, 429 and 5xx per request, with backoff.
        backoff: the first backoff in seconds.
        hooks: callbacks on each request, attempt and retry (see
            :class:`repairllm.observe.Hooks`; a hook that raises stops the call).
        **options: chat options for every request (``max_tokens``, ``temperature`` ...).

    Returns:
        the calls in the order the model made them, as :class:`ToolUse` records.

    A backend without tool calls, or a server that refuses them (a 400, or Ollama's
    "does not support tools"), is asked through the prompt's listing alone, and the
    calls are read from the JSON of its content; each attempt's ``notes`` say so.
    Tool calls are read from whole replies: there is no streaming form.

    Raises:
        InvalidInput: ``tools`` not a mapping or empty, a tool's name that servers
            refuse (not 1 to 64 letters, digits, ``_`` or ``-``), a tool schema that is
            not an object, or a ``choice`` that names no tool.
        RetriesExhausted: no valid calls within the attempts; ``.attempts`` holds each
            reply and its issues.
        BackendError: as for :func:`~repairllm.retry.generate`.
    """
    plan, offered = _setup(
        backend, tools, choice, retries, policy, prompt_form, transient_retries, backoff, options
    )
    dialogue = _dialogue(prompt, plan, offered)
    with observe.call("call_tools", backend, hooks) as obs:
        result, attempts = _converse(dialogue, obs, backend, plan)
        return _finish(result, attempts, outcome)


@overload
async def acall_tools(
    backend: Backend,
    prompt: Messages,
    tools: Mapping[str, Any],
    *,
    choice: Choice = ...,
    retries: int = ...,
    policy: Policy | str | None = ...,
    outcome: Literal[False] = ...,
    prompt_form: PromptForm = ...,
    transient_retries: int = ...,
    backoff: float = ...,
    hooks: Hooks | None = ...,
    **options: Any,
) -> list[ToolUse]: ...
@overload
async def acall_tools(
    backend: Backend,
    prompt: Messages,
    tools: Mapping[str, Any],
    *,
    choice: Choice = ...,
    retries: int = ...,
    policy: Policy | str | None = ...,
    outcome: Literal[True],
    prompt_form: PromptForm = ...,
    transient_retries: int = ...,
    backoff: float = ...,
    hooks: Hooks | None = ...,
    **options: Any,
) -> Generation[list[ToolUse]]: ...
async def acall_tools(
    backend: Backend,
    prompt: Messages,
    tools: Mapping[str, Any],
    *,
    choice: Choice = "required",
    retries: int = CallOptions.retries,
    policy: Policy | str | None = CallOptions.policy,
    outcome: bool = False,
    prompt_form: PromptForm = CallOptions.prompt_form,
    transient_retries: int = CallOptions.transient_retries,
    backoff: float = CallOptions.backoff,
    hooks: Hooks | None = None,
    **options: Any,
) -> Any:
    """Async :func:`call_tools`, through the backend's ``achat``."""
    plan, offered = _setup(
        backend, tools, choice, retries, policy, prompt_form, transient_retries, backoff, options
    )
    dialogue = _dialogue(prompt, plan, offered)
    with observe.call("acall_tools", backend, hooks) as obs:
        result, attempts = await _aconverse(dialogue, obs, backend, plan)
        return _finish(result, attempts, outcome)
