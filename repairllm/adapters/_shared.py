"""What the adapters share: one repair of a reply, and the feedback a failed one earns.

Framework-free, so both adapters say the same thing to the model and to the caller as
:func:`repairllm.generate` does when it retries.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..errors import ConfigError, NoJSONFound, RepairFailed, RepairLLMError
from ..ledger import Issue
from ..outcome import Outcome
from ..pipeline import run
from ..policy import Policy, resolve_policy
from ..prompts import PROMPT_FORMS, PromptForm, feedback_message, instruction
from ..schema import Schema, compile_schema

__all__ = ["Repairer"]


@dataclass(frozen=True)
class Repairer:
    """A schema, a policy and a prompt form, compiled once and used for every reply.

    Built from what a user hands an adapter: a pydantic model, a type such as
    ``list[int]``, a JSON Schema dict, or ``None`` for any JSON value.
    """

    schema: Schema | None
    policy: Policy
    form: PromptForm

    @classmethod
    def of(cls, target: Any, policy: Policy | str | None, form: PromptForm) -> Repairer:
        """Compile ``target`` and resolve ``policy`` now, so a bad one fails at construction.

        Raises:
            SchemaError: the schema is unusable.
            ConfigError: the policy or the prompt form is unknown.
        """
        if not isinstance(form, str) or form not in PROMPT_FORMS:
            raise ConfigError(f"prompt_form must be one of {', '.join(PROMPT_FORMS)}, not {form!r}")
        schema = compile_schema(target) if target is not None else None
        return cls(schema, resolve_policy(policy), form)

    def run(self, text: str) -> Outcome:
        """Repair one reply (no model call).

        Raises:
            NoJSONFound, RepairFailed: the reply could not be made valid.
        """
        return run(text, self.schema, self.policy)

    def instructions(self) -> str:
        """What to tell the model: the schema in this prompt form, as a structured call does."""
        return instruction(self.schema, self.form)

    def issues(self, error: RepairLLMError) -> list[Issue]:
        """What is still wrong after a failed repair, one issue per JSON pointer at least."""
        if isinstance(error, NoJSONFound):
            return [Issue("", "the reply held no JSON")]
        if isinstance(error, RepairFailed):
            return list(error.issues) or [Issue("", "; ".join(error.reasons) or str(error))]
        return [Issue("", str(error))]

    def feedback(self, error: RepairLLMError) -> str:
        """The message that asks the model to fix its reply: what is wrong, where, and the shape."""
        best = error.best.data if isinstance(error, RepairFailed) and error.best else None
        return feedback_message(
            self.issues(error),
            best,
            self.schema,
            self.form,
            no_json=isinstance(error, NoJSONFound),
        )
