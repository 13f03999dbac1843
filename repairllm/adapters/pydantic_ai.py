"""pydantic-ai: a text output that repairs the reply, and re-asks by JSON pointer when it must.

pydantic-ai's ``PromptedOutput`` parses the model's text itself, and one fence, single
quote or ``"30"`` for an integer costs a round trip to the model with a pydantic error
dump. :func:`repaired` takes its place::

    agent = Agent(model, output_type=repaired(Person), instructions=instructions(Person))
    person = agent.run_sync("Alice Smith is 31.").output

The model's text goes through repairllm's pipeline (extract, lexical, align, validate);
what repair fixes costs no model call. When repair is not enough, the output function
raises ``ModelRetry`` with the feedback :func:`repairllm.generate` would send: what is
still wrong by JSON pointer, the reply as repaired so far, and the shape again. pydantic-ai
then asks the model again, within the agent's output retries.

:func:`repairing_function` is the bare output function, for ``TextOutput`` wrappers or
a union of outputs of one's own; :func:`instructions` is what to tell the model (our
prompt forms: small models copy a skeleton of the answer better than a JSON Schema).

Importing this module imports pydantic-ai (``pip install 'repairllm[pydantic-ai]'``);
``import repairllm`` and ``import repairllm.adapters`` do not.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal, TypeVar, overload

from ..errors import ConfigError, NoJSONFound, RepairFailed
from ..outcome import Outcome
from ..policy import Policy
from ..prompts import PromptForm
from ._shared import Repairer

try:
    from pydantic_ai import ModelRetry, TextOutput
except ImportError as exc:  # pragma: no cover - the message is the point
    raise ConfigError(
        f"the pydantic-ai adapter needs pydantic-ai: pip install 'repairllm[pydantic-ai]' ({exc})"
    ) from exc

__all__ = ["instructions", "repaired", "repairing_function"]

T = TypeVar("T")


@overload
def repairing_function(
    schema: Any = ...,
    *,
    policy: Policy | str | None = ...,
    prompt_form: PromptForm = ...,
    outcome: Literal[True],
) -> Callable[[str], Outcome]: ...
@overload
def repairing_function(
    schema: type[T],
    *,
    policy: Policy | str | None = ...,
    prompt_form: PromptForm = ...,
    outcome: Literal[False] = ...,
) -> Callable[[str], T]: ...
@overload
def repairing_function(
    schema: Any = ...,
    *,
    policy: Policy | str | None = ...,
    prompt_form: PromptForm = ...,
    outcome: bool = ...,
) -> Callable[[str], Any]: ...


def repairing_function(
    schema: Any = None,
    *,
    policy: Policy | str | None = None,
    prompt_form: PromptForm = "skeleton",
    outcome: bool = False,
) -> Callable[[str], Any]:
    """A pydantic-ai output function: the model's text in, the validated value out.

    Args:
        schema: a pydantic model, a type such as ``list[int]``, a JSON Schema dict, or
            ``None`` for any JSON value.
        policy: a :class:`~repairllm.Policy` or a preset name: which repairs are allowed.
        prompt_form: how the retry feedback shows the schema again (see
            :mod:`repairllm.prompts`).
        outcome: return repairllm's :class:`~repairllm.Outcome` (value and ledger)
            instead of the value alone.

    Returns:
        A function of one ``str`` argument, for ``TextOutput(...)``; it raises
        ``ModelRetry`` with our pointer-level feedback when repair cannot make the reply
        valid, and that ``ModelRetry`` is chained from repairllm's error.

    Raises:
        SchemaError: the schema is unusable (now, not at the first reply).
        ConfigError: the policy or the prompt form is unknown.
    """
    repairer = Repairer.of(schema, policy, prompt_form)

    def repair_reply(text: str) -> Any:
        """Repair the model's text into the validated value, or ask the model again."""
        try:
            result = repairer.run(text)
        except (NoJSONFound, RepairFailed) as exc:
            raise ModelRetry(repairer.feedback(exc)) from exc
        return result if outcome else result.value

    # pydantic-ai shows an output function's name in its traces and retry records.
    name = getattr(schema, "__name__", None)
    if isinstance(name, str) and name.isidentifier():
        repair_reply.__name__ = repair_reply.__qualname__ = f"repair_{name}"
    return repair_reply


@overload
def repaired(
    schema: Any = ...,
    *,
    policy: Policy | str | None = ...,
    prompt_form: PromptForm = ...,
    outcome: Literal[True],
) -> TextOutput[Outcome]: ...
@overload
def repaired(
    schema: type[T],
    *,
    policy: Policy | str | None = ...,
    prompt_form: PromptForm = ...,
    outcome: Literal[False] = ...,
) -> TextOutput[T]: ...
@overload
def repaired(
    schema: Any = ...,
    *,
    policy: Policy | str | None = ...,
    prompt_form: PromptForm = ...,
    outcome: bool = ...,
) -> TextOutput[Any]: ...


def repaired(
    schema: Any = None,
    *,
    policy: Policy | str | None = None,
    prompt_form: PromptForm = "skeleton",
    outcome: bool = False,
) -> TextOutput[Any]:
    """An ``output_type`` for an agent: the reply's text, repaired into a validated value.

    Takes the arguments of :func:`repairing_function` and wraps it in pydantic-ai's
    ``TextOutput``, so the model answers in plain text (no output tool, no native
    structured mode: what small open models and many local servers can do) and
    repair does the rest. Pair it with ``instructions=instructions(schema)``, which
    tells the model the shape, as ``PromptedOutput`` would.

    Example:
        >>> agent = Agent(model, output_type=repaired(Person),  # doctest: +SKIP
        ...               instructions=instructions(Person))
    """
    return TextOutput(
        repairing_function(schema, policy=policy, prompt_form=prompt_form, outcome=outcome)
    )


def instructions(schema: Any, prompt_form: PromptForm = "skeleton") -> str:
    """What to tell the model about the answer's shape, from repairllm's prompt forms.

    The same instruction :func:`repairllm.generate` sends, for ``Agent(instructions=...)``.
    """
    return Repairer.of(schema, None, prompt_form).instructions()
