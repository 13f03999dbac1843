"""The ledger: every change made on the way from raw text to a value, and what is still wrong.

A :class:`Fix` is one change, made by one rule of one stage, at one JSON pointer. A
:class:`Ledger` is the ordered list of them; its total cost is what the pipeline
minimises when it chooses between candidates. An :class:`Issue` is one validation
failure that remains.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from operator import attrgetter
from typing import TYPE_CHECKING, Any

from .rules import Rule, rule_named

__all__ = ["DeferredPaths", "Fix", "Issue", "Ledger", "escape_pointer", "pointer"]


def escape_pointer(token: str | int) -> str:
    """Escape one reference token of a JSON pointer (RFC 6901)."""
    return str(token).replace("~", "~0").replace("/", "~1")


def pointer(parts: Iterable[str | int]) -> str:
    """Join keys and indices into a JSON pointer: ``("a", 0, "b/c")`` → ``"/a/0/b~1c"``."""
    return "".join("/" + escape_pointer(p) for p in parts)


class DeferredPaths:
    """JSON pointers for a batch of fixes, worked out the first time one is read.

    Placing a fix found by position in the text means walking the text's tokens up to
    it, which can cost more than the repair itself; most callers take the value and never
    read the ledger's paths, so the walk waits until one is asked for.
    """

    __slots__ = ("_compute", "_paths")

    def __init__(self, compute: Callable[[], list[str]]) -> None:
        self._compute: Callable[[], list[str]] | None = compute
        self._paths: list[str] = []

    def __getitem__(self, index: int) -> str:
        if self._compute is not None:
            self._paths = self._compute()
            self._compute = None  # drop the text the computation holds on to
        return self._paths[index]


_FIELDS = ("stage", "rule", "path", "before", "after", "cost")


def _refuse(fix: object, name: str) -> None:
    raise AttributeError(f"Fix is immutable: cannot set or delete {name!r}")


def _read_only(name: str) -> property:
    slot = attrgetter("_" + name)

    def refuse(fix: object, value: object = None) -> None:
        _refuse(fix, name)

    return property(slot, refuse, refuse)


class Fix:
    """One change made to the reply (immutable).

    Attributes:
        stage: ``"extract"``, ``"lexical"`` or ``"align"``.
        rule: the :class:`~repairllm.rules.Rule` that made it, e.g. ``"trailing_comma"``
            or ``"key_case"`` (given by member or by name; a name that is no rule is a
            ``ValueError``).
        path: JSON pointer of the value it concerns (``""`` is the whole document).
        before: what was there (text or value), ``None`` when something was added.
        after: what is there now, ``None`` when something was removed.
        cost: how much this change lowers confidence in the result.
    """

    # The fields live in private slots behind read-only properties: a plain slot write in
    # __init__ is a quarter of the cost of object.__setattr__ past a __setattr__ guard,
    # and a repair makes a Fix for every change.
    __slots__ = ("_after", "_before", "_cost", "_index", "_rule", "_stage", "_where")
    __match_args__ = ("stage", "rule", "path", "before", "after", "cost")

    _where: str | DeferredPaths
    _index: int
    if TYPE_CHECKING:
        stage: str
        rule: Rule
        before: Any
        after: Any
        cost: float
    else:
        stage = _read_only("stage")
        rule = _read_only("rule")
        before = _read_only("before")
        after = _read_only("after")
        cost = _read_only("cost")

    def __init__(
        self,
        stage: str,
        rule: str,
        path: str,
        before: Any,
        after: Any,
        cost: float,
    ) -> None:
        self._stage = stage
        self._rule = rule_named(rule)
        self._where = path
        self._before = before
        self._after = after
        self._cost = cost

    @classmethod
    def deferred(
        cls,
        stage: str,
        rule: str,
        paths: DeferredPaths,
        index: int,
        before: Any,
        after: Any,
        cost: float,
    ) -> Fix:
        """A fix whose path is ``paths[index]``, worked out when first read."""
        fix = cls(stage, rule, "", before, after, cost)
        fix._where = paths
        fix._index = index
        return fix

    @property
    def path(self) -> str:
        """JSON pointer of the value the fix concerns."""
        where = self._where
        if isinstance(where, str):
            return where
        resolved = where[self._index]
        self._where = resolved
        return resolved

    @path.setter
    def path(self, value: str) -> None:
        _refuse(self, "path")

    def _astuple(self) -> tuple[Any, ...]:
        return (self.stage, self.rule, self.path, self.before, self.after, self.cost)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Fix):
            return NotImplemented
        return self._astuple() == other._astuple()

    def __hash__(self) -> int:
        return hash(self._astuple())

    def __reduce__(self) -> tuple[Any, ...]:
        return (Fix, self._astuple())

    def __repr__(self) -> str:
        values = zip(_FIELDS, self._astuple(), strict=True)
        inner = ", ".join(f"{name}={value!r}" for name, value in values)
        return f"Fix({inner})"

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
