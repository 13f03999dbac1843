"""The records of one repair: the :class:`Candidate` a value was read from, and the
:class:`Outcome` that holds the value, its ledger and what is still wrong.

Plain data, below every stage: the extractor makes candidates, the pipeline makes
outcomes, and the error tree carries an outcome (``RepairFailed.best``), so this module
imports nothing from the stages.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .ledger import Issue, Ledger

__all__ = ["Candidate", "Outcome"]


@dataclass(frozen=True, slots=True)
class Candidate:
    """A piece of the reply that may hold the JSON value.

    Attributes:
        text: the candidate text.
        rule: how it was found (``"whole"``, ``"fenced_block"``, ``"json_span"`` …).
        start: offset of ``text`` in the reply (``-1`` when not a plain slice).
        rank: position in the order candidates were found; lower is preferred on ties.
        note: what the extraction dropped, for the ledger (the reasoning, for a
            ``think_block`` candidate).
    """

    text: str
    rule: str
    start: int
    rank: int = 0
    note: str = ""


@dataclass
class Outcome:
    """Everything known about one repair.

    Attributes:
        value: the result: a JSON value, or a model instance when the schema is a
            pydantic model or type.
        ledger: every change made, in order.
        candidate: the piece of the reply the value came from.
        issues: what is still wrong (empty when the value is valid).
        raw: the reply as given.
        data: the JSON value before it was turned into a model instance.
        truncated: the value was completed from a reply that was cut off.
    """

    value: Any
    ledger: Ledger
    candidate: Candidate | None
    issues: list[Issue]
    raw: str
    data: Any = None
    truncated: bool = False
    _rank: int = field(default=0, repr=False, compare=False)

    @property
    def valid(self) -> bool:
        """Whether the value satisfies the schema (and the policy)."""
        return not self.issues

    @property
    def cost(self) -> float:
        """The total cost of the ledger."""
        return self.ledger.cost
