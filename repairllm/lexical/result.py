"""What every tier of the lexical stage returns: the value and the changes made."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..ledger import Fix

#: The stage named in the ledger for every change a lexical tier makes.
STAGE = "lexical"


@dataclass(slots=True)
class Parsed:
    """The result of the lexical stage for one candidate.

    Attributes:
        value: the JSON value.
        fixes: the changes made, in order.
        truncated: the text ended inside a value or container, which was completed.
        completed: a string, number or literal cut off by the end was completed (text
            was invented, not only closers), which only a lenient policy accepts.
    """

    value: Any
    fixes: list[Fix]
    truncated: bool = False
    completed: bool = False
