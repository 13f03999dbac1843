"""Stage 2: turn one candidate text into a JSON value, recording every change.

Three tiers, cheapest first:

1. **strict**: ``orjson`` (then ``json`` for what orjson refuses but JSON allows: integers
   beyond 64 bits, lone surrogates). Valid input costs one C parse and yields no fixes.
2. **guided**: parse with ``json``; where it fails, look at the failure position and
   apply one unambiguous local fix (a trailing comma, a missing comma, a Python literal,
   a single-quoted string, an unquoted key, a comment, a raw control character, an
   unescaped quote, a wrong closer), then parse again. A document with a few faults
   costs a few C parses, not a character-by-character walk. Anything the local rules
   cannot settle goes to tier 3.
3. **tolerant**: one pass of our own parser (:class:`.tolerant.Tolerant`) that understands every
   failure class and consults the schema *while* it reads: what kind of token a value
   is (``02134`` where a string is expected stays ``"02134"``), where an unquoted value
   ends (at the next known key), whether ``#`` starts a comment or a value. It writes
   compact, valid JSON text which ``json`` then parses.

When all three fail, json-repair gets the text (if the policy allows), and what it
reports having changed goes into the ledger at a high cost: it is known to return
wrong values without a word, so the pipeline prefers any other candidate.

One tier per module: :mod:`.strict`, :mod:`.guided`, :mod:`.tolerant`, :mod:`.fallback`;
:mod:`.incremental` reads a reply as it streams in. :mod:`.tokens` holds the token
vocabulary they share, :mod:`.errors` the stage's internal exceptions.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import cast

from ..policy import Policy
from ..schema import Schema
from .errors import (
    LastResort,
    LexicalError,
    NotJSON,
    TrailingProse,
    TrailingText,
    integer_too_long,
    number_out_of_range,
    too_deep,
)
from .fallback import JsonRepairBudget, refusal, via_json_repair
from .guided import guided
from .result import Parsed
from .strict import exceeds_int_digits, infinite_number, may_overflow, strict_loads
from .tokens import QUOTES, starts_literal
from .tolerant import Tolerant

__all__ = [
    "JsonRepairBudget",
    "LastResort",
    "LexicalError",
    "NotJSON",
    "Parsed",
    "in_range",
    "parse",
    "parse_with_schema",
    "strict_loads",
    "via_json_repair",
]


def parse(
    text: str,
    schema: Schema | None,
    policy: Policy,
    *,
    last_resort: bool = True,
    strict: bool = True,
) -> Parsed:
    """Turn ``text`` into a JSON value, trying the tiers in order.

    Args:
        text: one candidate.
        schema: settles lexical questions in the tolerant tier.
        policy: the costs, limits and whether json-repair may be used.
        last_resort: call json-repair when our own tiers fail. With ``False`` such a
            failure raises :class:`LastResort` instead, so a caller holding other
            candidates can try them first and call :func:`via_json_repair` only if
            none of them wins.
        strict: try orjson first. A caller who knows it refuses ``text`` passes
            ``False``: the guided tier starts with the standard library's strict parse,
            so nothing is lost but the time.

    Raises:
        LastResort: (only with ``last_resort=False``) json-repair may still try.
        LexicalError: no tier could parse it.
        RepairFailed: it nests deeper than the policy allows (a hard limit, not a parse
            failure, so no other tier is tried).
    """
    _check_start(text)
    if strict:
        try:
            return in_range(Parsed(strict_loads(text), []), text)
        except RecursionError:
            raise too_deep(text, policy) from None
        except ValueError as exc:
            if exceeds_int_digits(exc):
                raise integer_too_long(text) from None
    fixed = guided(text, policy)
    if fixed is not None:
        return in_range(fixed, text)
    try:
        return in_range(Tolerant(text, schema, policy).run(), text)
    except (NotJSON, TrailingText, TrailingProse):
        raise  # the extraction's business: json-repair would read the prose as JSON
    except LexicalError as exc:
        if not policy.json_repair:
            raise
        why = refusal(text)
        if why is not None:
            raise LexicalError(f"{exc}; {why}") from None
        if not last_resort:
            raise LastResort(str(exc)) from None
        fallback = via_json_repair(text, policy)
        if fallback is None:
            raise exc from None
        return fallback


def in_range(parsed: Parsed, text: str) -> Parsed:
    """``parsed``, unless a number in ``text`` overflowed a double.

    Raises:
        RepairFailed: the value holds infinity (JSON has none; the reply said 1e999).
    """
    if may_overflow(text) and infinite_number(parsed.value):
        raise number_out_of_range(text)
    return parsed


# What the tolerant tier skips before the first value (comments aside).
_LEADING_SPACE = cast(
    "Callable[[str, int], re.Match[str]]", re.compile("[ \t\r\n\ufeff\u00a0]*").match
)


def _check_start(text: str) -> None:
    """Raise :class:`NotJSON` for a candidate no tier can read: it starts with prose.

    The same test the tolerant tier makes before reading, made before the two cheaper
    tiers rather than after they fail: most replies that are not bare JSON (prose, a
    fence) are tried whole first, and this turns them away in well under a microsecond.
    """
    at = _LEADING_SPACE(text, 0).end()
    if at == len(text):
        return
    first = text[at]
    if first in '{["-/#' or first in QUOTES or first.isdigit():
        return
    if not starts_literal(text, at):
        raise NotJSON(f"no JSON value at the start (found {first!r})")


def parse_with_schema(text: str, schema: Schema, policy: Policy) -> Parsed | None:
    """Parse with the tolerant tier alone, so the schema settles every lexical question.

    The pipeline calls this when the cheaper tiers gave a value that fails validation:
    valid JSON can still be read wrongly for the schema (``1.10`` where a version string
    is expected is the number 1.1 to a strict parser, and its trailing zero is gone).
    """
    try:
        return in_range(Tolerant(text, schema, policy).run(), text)
    except LexicalError:
        return None
