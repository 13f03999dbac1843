"""The ledger: every change made on the way from raw text to a value, and what is still wrong.

A :class:`Fix` is one change, made by one rule of one stage, at one JSON pointer. A
:class:`Ledger` is the ordered list of them; its total cost is what the pipeline
minimises when it chooses between candidates. An :class:`Issue` is one validation
failure that remains.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = ["Fix", "Issue", "Ledger", "escape_pointer", "pointer"]


def escape_pointer(token: str | int) -> str:
    """Escape one reference token of a JSON pointer (RFC 6901)."""
    return str(token).replace("~", "~0").replace("/", "~1")


def pointer(parts: Iterable[str | int]) -> str:
    """Join keys and indices into a JSON pointer: ``("a", 0, "b/c")`` → ``"/a/0/b~1c"``."""
    return "".join("/" + escape_pointer(p) for p in parts)


@dataclass(frozen=True, slots=True)
class Fix:
    """One change made to the reply.

    Attributes:
        stage: ``"extract"``, ``"lexical"`` or ``"align"``.
        rule: the rule that made it, e.g. ``"trailing_comma"`` or ``"key_case"``.
        path: JSON pointer of the value it concerns (``""`` is the whole document).
        before: what was there (text or value), ``None`` when something was added.
        after: what is there now, ``None`` when something was removed.
        cost: how much this change lowers confidence in the result.
    """

    stage: str
    rule: str
    path: str
    before: Any
    after: Any
    cost: float

    def __str__(self) -> str:
        where = self.path or "/"
        return f"{self.stage}:{self.rule} at {where}: {self.before!r} -> {self.after!r}"


@dataclass(frozen=True, slots=True)
class Issue:
    """One thing still wrong with a value after repair.

    Attributes:
        path: JSON pointer of the offending value.
        message: what is wrong, in words.
        expected: what the schema wants there (a type, a constraint), when known.
        got: the value found there (``None`` when it is missing).
    """

    path: str
    message: str
    expected: Any = None
    got: Any = None

    def __str__(self) -> str:
        return f"{self.path or '/'}: {self.message}"


class Ledger(list[Fix]):
    """An ordered list of :class:`Fix` with a few questions one asks of it."""

    @property
    def cost(self) -> float:
        """The sum of the fixes' costs."""
        return sum(fix.cost for fix in self)

    def rules(self) -> list[str]:
        """The rules applied, in order (a rule applied twice appears twice)."""
        return [fix.rule for fix in self]

    def counts(self) -> Counter[str]:
        """How often each rule was applied."""
        return Counter(self.rules())

    def stage(self, name: str) -> Ledger:
        """The fixes made by one stage."""
        return Ledger(fix for fix in self if fix.stage == name)

    def describe(self) -> str:
        """One line per fix, for logs and the command line."""
        return "\n".join(str(fix) for fix in self) or "(no changes)"

    @classmethod
    def of(cls, *parts: Sequence[Fix]) -> Ledger:
        """Concatenate several lists of fixes into one ledger."""
        out = cls()
        for part in parts:
            out.extend(part)
        return out
