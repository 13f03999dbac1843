"""The record of one attempt of a structured call: its reply and what became of it.

Plain data, apart from the call loop that fills it in (:mod:`repairllm.retry`), so that
every part that reports on attempts (``choose``, ``stream``, :mod:`repairllm.observe`)
can make and read them without importing that loop.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .backend import Completion, Usage
from .ledger import Issue, Ledger
from .outcome import Outcome

__all__ = ["Attempt"]


@dataclass
class Attempt:
    """One request of a structured call and what became of its reply.

    Attributes:
        raw: the reply's text (continuations joined in).
        outcome: the repair outcome, when any JSON was found.
        issues: what was still wrong (empty when the attempt succeeded).
        usage: tokens, summed over continuations.
        seconds: wall time of the requests, backoff included.
        finish_reason: the last request's finish reason.
        continuations: how many times a cut-off reply was continued.
        transient_errors: backend failures retried within this attempt.
        native: whether the server's structured mode constrained the reply.
        tools: whether the schema was sent as a function to call (``mode="tools"``),
            so that ``raw`` is the call's arguments, or the content when the model
            answered there (``notes`` says which).
        error: the message of the error that ended the attempt, if any.
        notes: what the driver said about the structured request: a form the server
            refused and the one sent instead, what a grammar left out, a constraint
            that could not be applied.
    """

    raw: str = ""
    outcome: Outcome | None = None
    issues: list[Issue] = field(default_factory=list)
    usage: Usage = field(default_factory=Usage)
    seconds: float = 0.0
    finish_reason: str | None = None
    continuations: int = 0
    transient_errors: int = 0
    native: bool = False
    tools: bool = False
    error: str | None = None
    notes: list[str] = field(default_factory=list)

    def note(self, reply: Completion) -> None:
        """Keep the driver's notes on a reply, each once."""
        self.notes.extend(n for n in reply.notes if n not in self.notes)

    @property
    def ok(self) -> bool:
        return self.outcome is not None and not self.issues and self.error is None

    @property
    def ledger(self) -> Ledger:
        return self.outcome.ledger if self.outcome is not None else Ledger()
