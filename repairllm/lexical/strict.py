"""Tier 1 of the lexical stage: strictly valid JSON (RFC 8259), read by C parsers.

orjson first; the standard library's scanner for what orjson refuses but JSON allows
(integers beyond 64 bits, lone surrogate escapes). The other tiers re-parse with these
after each fix, so the functions here are written for speed on short texts.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from json.scanner import make_scanner
from typing import Any, cast

import orjson


def reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


DIGITS_TO_ZERO = bytes.maketrans(b"123456789", b"000000000")
NINETEEN_DIGITS = b"0" * 19


def may_hold_big_int(text: str) -> bool:
    """Whether ``text`` has a run of 19+ digits, which orjson would turn into a float.

    orjson reads integers beyond 64 bits as floats without a word; ``json`` keeps them
    exact. Two C passes over the bytes are far cheaper than a regular expression.
    """
    data = text.encode("utf-8", "surrogatepass")
    return data.translate(DIGITS_TO_ZERO).find(NINETEEN_DIGITS) >= 0  # find: `in` costs 3x


# One decoder for every strict parse: json.loads(..., parse_constant=...) builds a
# new JSONDecoder per call, which cost more than the parse on short texts.
STRICT_DECODER = json.JSONDecoder(parse_constant=reject_constant)


# The C scanner behind STRICT_DECODER, called directly: ``SCAN_VALUE(text, i)`` reads one
# value starting at ``i`` and returns ``(value, end)``; StopIteration when none starts
# there, json.JSONDecodeError (a ValueError) when it is not valid JSON.
SCAN_VALUE = make_scanner(STRICT_DECODER)  # type: ignore[arg-type]  # typeshed: a context
# JSON's whitespace (RFC 8259); the pattern matches everywhere, if only the empty string.
_space_at = cast("Callable[[str, int], re.Match[str]]", re.compile(r"[ \t\r\n]*").match)


def space_end(text: str, pos: int) -> int:
    """The offset of the first character at or after ``pos`` that is not JSON whitespace."""
    return _space_at(text, pos).end()


def decode_strict(text: str) -> Any:
    """``STRICT_DECODER.decode(text)`` without its two Python frames, which cost a fifth
    of the guided tier's time on short replies (it parses once per fix).

    Raises:
        json.JSONDecodeError: not JSON, with the decoder's own message and offset.
        ValueError: NaN or Infinity.
        RecursionError: nesting past the interpreter's limit.
    """
    try:
        value, end = SCAN_VALUE(text, _space_at(text, 0).end())
    except StopIteration as err:
        raise json.JSONDecodeError("Expecting value", text, err.value) from None
    end = _space_at(text, end).end()
    if end != len(text):
        raise json.JSONDecodeError("Extra data", text, end)
    return value


def strict_loads(text: str) -> Any:
    """Parse strictly valid JSON (RFC 8259: no NaN, no Infinity); raise ``ValueError`` if not.

    Raises:
        ValueError: (``json.JSONDecodeError`` included) the text is not valid JSON.
        RecursionError: nesting exceeds the interpreter's limit.
    """
    if not may_hold_big_int(text):
        try:
            return orjson.loads(text)
        except orjson.JSONDecodeError:
            # What orjson refuses, json refuses too, except lone surrogate escapes
            # ("\ud800"), which json reads: only then is the slower parse worth it.
            if "\\u" not in text:
                raise
    return decode_strict(text)


def exceeds_int_digits(exc: ValueError) -> bool:
    """Whether ``exc`` is the interpreter's refusal of an over-long integer literal.

    CPython converts at most ``sys.get_int_max_str_digits()`` digits (4,300 by default)
    from text to ``int``; a JSON integer longer than that cannot be read exactly.
    """
    return "integer string conversion" in str(exc)


# More digits in a row than a double's range has (about 1.8e308).
_DOUBLE_OVERFLOW_DIGITS = NINETEEN_DIGITS * 16


def may_overflow(text: str) -> bool:
    """Whether ``text`` may hold a number beyond a double's range (cheap, C speed)."""
    data = text.encode("utf-8", "surrogatepass").translate(DIGITS_TO_ZERO)
    return big_exponent(text, data) or data.find(_DOUBLE_OVERFLOW_DIGITS) >= 0


def big_exponent(text: str, zeroed: bytes) -> bool:
    """Whether ``text`` (``zeroed``: its bytes through DIGITS_TO_ZERO) has an exponent of
    three digits or more, the way a number too short for the big-integer guard overflows."""
    if "e" not in text and "E" not in text:
        return False
    # Four C searches; a generator over the patterns cost more than all of them.
    return (
        zeroed.find(b"0e000") >= 0
        or zeroed.find(b"0E000") >= 0
        or zeroed.find(b"0e+000") >= 0
        or zeroed.find(b"0E+000") >= 0
    )


def infinite_number(value: Any) -> bool:
    """Whether ``value`` holds a float that overflowed to infinity (walks without recursion)."""
    todo = [value]
    while todo:
        item = todo.pop()
        if item.__class__ is float:
            if item in (_INF, -_INF):
                return True
        elif isinstance(item, dict):
            todo.extend(item.values())
        elif isinstance(item, list):
            todo.extend(item)
    return False


_INF = float("inf")
