"""The last resort of the lexical stage: json-repair, at a high cost in the ledger.

json-repair reads nearly anything, and is known to return wrong values without a word,
so what it reports having changed is costed dearly and the pipeline prefers any other
candidate. It can be super-linear, so it only sees candidates up to a size.
"""

from __future__ import annotations

from ..ledger import Fix
from ..policy import Policy
from ..rules import Rule
from .errors import number_out_of_range, too_deep
from .result import STAGE, Parsed
from .strict import infinite_number, may_overflow

#: json-repair is slow and can be super-linear; it only sees candidates up to this size.
JSON_REPAIR_MAX = 256 * 1024


def via_json_repair(text: str, policy: Policy) -> Parsed | None:
    """json-repair's reading of ``text`` (its changes go in the ledger, dearly), or ``None``."""
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
