"""The last resort of the lexical stage: json-repair, at a high cost in the ledger.

json-repair reads nearly anything, and is known to return wrong values without a word,
so what it reports having changed is costed dearly and the pipeline prefers any other
candidate.

It is pure Python (microseconds a character) and its work grows with nesting: an
object it cannot fill is scanned again from its opener, so a text ``d`` levels deep
costs about ``d`` times its length (250 KB of ``{`` took 26 s). What it may read is
therefore bounded before it starts, in characters, so that a reply gets the same answer
on any machine however loaded: a candidate of at most :data:`JSON_REPAIR_MAX`
characters, and for a whole reply at most :data:`JSON_REPAIR_WORK` characters of
estimated work (see :func:`json_repair_work`). Past either, json-repair is not tried,
and the error says so.
"""

from __future__ import annotations

import re

from ..ledger import Fix
from ..policy import Policy
from ..rules import Rule
from .errors import number_out_of_range, too_deep
from .result import STAGE, Parsed
from .strict import infinite_number, may_overflow

#: The longest candidate json-repair may read.
JSON_REPAIR_MAX = 16 * 1024
#: The estimated work json-repair may do for one reply, all its candidates together:
#: well under a second at its speed, for what is already the last resort.
JSON_REPAIR_WORK = 64 * 1024

# Double-quoted strings whole (brackets inside them do not nest), and brackets.
_BRACKETS = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*(?:"|\Z)|[{}\[\]]', re.DOTALL)


def json_repair_work(text: str) -> int:
    """The characters json-repair is expected to read for ``text``: its length, plus for
    every bracket the characters from it to its closer (or to the end, if unclosed)."""
    opened: list[int] = []
    work = len(text)
    for match in _BRACKETS.finditer(text):
        at = match.start()
        ch = text[at]
        if ch in "{[":
            opened.append(at)
        elif ch != '"' and opened:
            work += at - opened.pop()
    end = len(text)
    return work + sum(end - at for at in opened)


class JsonRepairBudget:
    """What json-repair may still read for one reply, and why candidates were refused.

    Attributes:
        left: the estimated work (characters, see :func:`json_repair_work`) still allowed.
        refusals: one sentence per candidate json-repair was not given.
    """

    def __init__(self, work: int = JSON_REPAIR_WORK) -> None:
        self.left = work
        self.refusals: list[str] = []

    def take(self, text: str) -> str | None:
        """Take ``text``'s work from what is left; or say why json-repair may not read it."""
        why = refusal(text, self.left)
        if why is None:
            self.left -= json_repair_work(text)
        else:
            self.refusals.append(why)
        return why


def refusal(text: str, work_left: int = JSON_REPAIR_WORK) -> str | None:
    """Why json-repair may not read ``text`` with ``work_left`` of a reply's budget, or
    ``None`` when it may."""
    if len(text) > JSON_REPAIR_MAX:
        return (
            f"json-repair not tried: the candidate is {len(text):,} characters, "
            f"more than the {JSON_REPAIR_MAX:,} it may read"
        )
    work = json_repair_work(text)
    if work > work_left:
        spent = JSON_REPAIR_WORK - work_left
        return (
            f"json-repair not tried: with its nesting it would read about {work:,} "
            f"characters, more than the {JSON_REPAIR_WORK:,} it may for a reply"
            + (f" ({spent:,} spent on other candidates)" if spent > 0 else "")
        )
    return None


def via_json_repair(
    text: str, policy: Policy, budget: JsonRepairBudget | None = None
) -> Parsed | None:
    """json-repair's reading of ``text`` (its changes go in the ledger, dearly), or ``None``.

    Also ``None`` when the bounds above refuse ``text``: against ``budget`` (the reply's,
    which keeps the reason) when given, else against a budget of its own.
    """
    if (budget.take(text) if budget is not None else refusal(text)) is not None:
        return None
    import json_repair

    try:
        result = json_repair.loads(text, logging=True)
    except RecursionError:
        raise too_deep(text, policy) from None
    except Exception:  # a dependency's failure is a parse failure here
        return None
    value, log = result if isinstance(result, tuple) else (result, [])
    if may_overflow(text) and infinite_number(value):
        raise number_out_of_range(text)
    if value == "" and text.strip() not in ('""', "''"):
        return None
    entries = list(log) or [{"text": "repaired", "context": text[:80]}]
    share = policy.cost(Rule.JSON_REPAIR) / len(entries)
    fixes = [
        Fix(STAGE, Rule.JSON_REPAIR, "", entry.get("context"), entry.get("text"), share)
        for entry in entries
    ]
    return Parsed(value, fixes, truncated=False)
