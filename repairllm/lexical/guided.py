"""Tier 2 of the lexical stage: fixes guided by the strict parser's error position.

Parse with ``json``; where it fails, look at the failure position and apply one
unambiguous local fix (a trailing comma, a missing comma, a Python literal, a
single-quoted string, an unquoted key, a comment, a raw control character, an unescaped
quote, a wrong closer), then parse again. A document with a few faults costs a few C
parses, not a character-by-character walk. What the local rules cannot settle goes to
the tolerant tier.
"""

from __future__ import annotations

import json
import re
from bisect import bisect_left
from collections.abc import Callable
from functools import partial
from typing import Any

import orjson

from ..ledger import DeferredPaths, Fix, pointer
from ..policy import Policy
from ..rules import Rule
from .errors import TrailingText, integer_too_long, too_deep
from .result import STAGE, Parsed
from .strict import decode_strict, exceeds_int_digits, may_hold_big_int, space_end
from .tokens import (
    CLOSER,
    CONTAINER_RULES,
    DQ_STRING,
    IDENT_KEY,
    LAYOUT_ESCAPES,
    LITERALS,
    QUOTE_RULE,
    QUOTES,
    STRING_REST,
    WORD,
    Edit,
    closes_outer,
    comment_end,
    escape_controls,
    is_comment,
    json_string,
    open_stack,
    prev_nonspace,
    quoted_span,
)

__all__ = ["guided"]

#: after this many guided fixes the tolerant parser is cheaper than more re-parses.
_MAX_GUIDED = 12


def _diagnose(text: str, msg: str, pos: int) -> Edit | None:
    """One local fix for the strict parser's complaint ``msg`` at ``pos``, or ``None``."""
    n = len(text)
    ch = text[pos] if pos < n else ""
    if ch == "\\" and text[pos : pos + 2] in LAYOUT_ESCAPES and not msg.startswith("Invalid"):
        # ``{\n  "a": 1}``: outside a string the escape can only be the layout it names.
        return pos, pos + 2, LAYOUT_ESCAPES[text[pos : pos + 2]], Rule.LITERAL_NEWLINE
    prev = prev_nonspace(text, pos)
    if msg.startswith(("Expecting value", "Expecting property name")):
        if ch in "}]" and ch and prev >= 0 and text[prev] == ",":
            return prev, prev + 1, "", Rule.TRAILING_COMMA
        if ch and is_comment(text, pos):
            return pos, comment_end(text, pos), "", Rule.COMMENT
        if ch in QUOTES and ch:
            found = quoted_span(text, pos)
            if found is None:
                return None
            rule = QUOTE_RULE.get(ch, Rule.SMART_QUOTES)
            return pos, found[0], found[1], rule
        if msg.startswith("Expecting property name"):
            key = IDENT_KEY.match(text, pos)
            if key is not None:
                return pos, key.end(), json.dumps(key.group()), Rule.UNQUOTED_KEY
            return None
        word = WORD.match(text, pos)
        if word is not None and word.group() in LITERALS:
            literal, rule = LITERALS[word.group()]
            if rule:
                return pos, word.end(), literal, rule
        if ch == "," and prev >= 0 and text[prev] in ",[":
            return pos, pos + 1, "", Rule.EXTRA_COMMA
        return None
    if msg.startswith("Expecting ',' delimiter"):
        if not ch:
            # The text ends after a complete value: only closers are missing. One at a
            # time, so the ledger has an entry per container, as the tolerant tier writes.
            stack = open_stack(text, n)
            if not stack:
                return None
            return n, n, CLOSER[stack[-1]], Rule.MISSING_CLOSER
        if ch in "}]":
            stack = open_stack(text, pos)
            if not stack:
                return None
            depth = closes_outer(stack, ch, text, pos + 1)
            if depth is not None:
                missing = "".join(CLOSER[o] for o in reversed(stack[depth + 1 :]))
                return pos, pos, missing, Rule.MISSING_CLOSER
            return pos, pos + 1, CLOSER[stack[-1]], Rule.WRONG_CLOSER
        if is_comment(text, pos):
            return pos, comment_end(text, pos), "", Rule.COMMENT
        word = WORD.match(text, pos)
        is_literal = word is not None and word.group() in ("true", "false", "null")
        if (
            prev >= 0
            and text[prev] == '"'
            and (_number_element(text, pos) or IDENT_KEY.match(text, pos) is not None)
        ):
            # ``["Q1 2024"12.4, 0.08]``, ``{"name": "Ada"website: ...}``: a missing comma
            # before an element or an unquoted key, or a quote inside the text; the
            # tolerant tier knows the container it is in and the keys the schema has.
            return None
        if (
            prev >= 0
            and text[prev] == '"'
            and (ch.isalnum() or ch in "_'(")
            and not is_literal
            and not _next_member_on_new_line(text, prev + 1, pos)
        ):
            # A word right after a closed string: the "closing" quote was inside the text.
            return prev, prev + 1, '\\"', Rule.UNESCAPED_QUOTE
        after_quote = space_end(text, pos + 1) if ch == '"' else -1
        if after_quote >= 0 and text[after_quote : after_quote + 1] in ("]", "}"):
            return None  # a stray quote before a closer (``["a" "]``), or a string: tier 3
        if ch in '"{[-' or ch.isdigit() or word is not None:
            glued = prev + 1 == pos and ch in '"{[' and text[prev] in '"}]'
            return prev + 1, prev + 1, ",", Rule.GLUED_MEMBERS if glued else Rule.MISSING_COMMA
        return None
    if msg.startswith("Expecting ':' delimiter"):
        if ch == "=":
            return pos, pos + 1, ":", Rule.MISSING_COLON
        return None
    if msg.startswith("Invalid control character"):
        rest = STRING_REST.match(text, pos)
        end = rest.end() if rest is not None else n
        return pos, end, escape_controls(text[pos:end]), Rule.RAW_CONTROL_CHAR
    if msg.startswith(("Invalid \\escape", "Invalid \\uXXXX")):
        slash = text.rfind("\\", 0, pos + 1)
        return slash, slash + 1, "\\\\", Rule.INVALID_ESCAPE
    if msg.startswith("Extra data"):
        if text[pos:].strip(" \t\r\n}]") == "":
            return pos, n, "", Rule.EXTRA_CLOSER
        if is_comment(text, pos):
            return pos, comment_end(text, pos), "", Rule.COMMENT
        raise TrailingText(f"text after the value at offset {pos}")
    return None


# A number that ends where a value ends: ``12.4`` in ``12.4,`` but not ``3`` in ``3 apples``.
_NUMBER_VALUE = re.compile(r"-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?(?=[ \t]*(?:[,\]}\r\n]|\Z))")


_NUMBER_THEN = re.compile(r"\d+(?:\.\d+)?(?:[eE][-+]?\d+)?\s*[,\]]")


def _number_element(text: str, pos: int) -> bool:
    """Whether a number followed by a comma or ``]`` starts at ``pos``."""
    return text[pos : pos + 1].isdigit() and _NUMBER_THEN.match(text, pos) is not None


def _next_member_on_new_line(text: str, after: int, pos: int) -> bool:
    """Whether ``text[pos:]``, on a new line after a string ending at ``after``, is a member.

    Models put one member per line and forget the comma far more often than they write a
    raw newline and a quote inside a string, so ``"Paris"\n  unit: "c"`` is two members
    (a comma is missing), not one string with an unescaped quote.
    """
    if "\n" not in text[after:pos]:
        return False
    return IDENT_KEY.match(text, pos) is not None or _NUMBER_VALUE.match(text, pos) is not None


# Strings written unrolled (no alternation inside the loop) for the standard library's
# engine, which runs these passes about twice as fast as `regex`.
_SKIP_DQ = DQ_STRING
_SKIP_SQ = r"'[^'\\\n]*(?:\\.[^'\\\n]*)*'"
# Faults that recur through a document once they appear: after the strict parser shows
# one, a single pass fixes the rest of that kind. What a pass gets wrong, the strict
# parser reports next, and the tolerant tier starts over from the original text. Each
# fault as a pattern of its own; group "fault" is the text to replace.
_FAULTS: dict[str, str] = {
    Rule.SINGLE_QUOTES: r"(?P<fault>" + _SKIP_SQ + r")(?=[ \t\r\n]*[,:}\]])",
    # The key's opener or comma is matched too (the engine has no variable lookbehind).
    Rule.UNQUOTED_KEY: r"[{,][ \t\r\n]*(?P<fault>[A-Za-z_$][\w$-]*)(?=[ \t]*:)",
    Rule.PYTHON_LITERAL: r"(?<![\w$])(?P<fault>True|False|None)(?![\w$])",
    Rule.COMMENT: r"(?P<fault>//[^\n]*|/\*.*?\*/)",
    # A comma right before a closer can only be a trailing one.
    Rule.TRAILING_COMMA: r"(?P<fault>,)(?=[ \t\r\n]*[}\]])",
    Rule.LITERAL_NEWLINE: r"(?P<fault>\\[nrt])",
    # One member per line with the commas left out: the end of a value (a string, a
    # number, a literal, a closer), a line break, then the start of the next member.
    Rule.MISSING_COMMA: r"(?<=[\"\d}\]el])(?P<fault>)(?=[ \t\r]*\n[ \t\r\n]*"
    r"(?:[\"{\[\d-]|(?:true|false|null)\b|[A-Za-z_$][\w$-]*[ \t]*:))",
}
# The pass: strings are matched whole, so nothing inside them is touched. It costs a
# Python step per string, so it runs only when the fault's own pattern, blind to strings,
# finds one somewhere after the first fix (C speed; most replies have no second).
_BULK = {
    # (a single-quoted string is skipped too, but for the rule that fixes those)
    rule: re.compile(
        _SKIP_DQ + "|" + ("" if rule == Rule.SINGLE_QUOTES else _SKIP_SQ + "|") + fault, re.DOTALL
    )
    for rule, fault in _FAULTS.items()
}
_BULK_HINT = {rule: re.compile(fault, re.DOTALL) for rule, fault in _FAULTS.items()}
# (a lookbehind first costs a try at every position; the bare words are found by prefix)
_BULK_HINT[Rule.PYTHON_LITERAL] = re.compile("True|False|None")


def _single_quoted(token: str) -> str:
    return json_string(token[1:-1].replace("\\'", "'"))


def _quoted_key(token: str) -> str:
    return '"' + token + '"'  # the pattern admits no character JSON must escape


def _python_literal(token: str) -> str:
    return LITERALS[token][0]


def _comma(token: str) -> str:
    return ","


def _nothing(token: str) -> str:
    return ""


def _layout(token: str) -> str:
    return LAYOUT_ESCAPES[token]


_BULK_FIX: dict[str, Callable[[str], str]] = {
    Rule.SINGLE_QUOTES: _single_quoted,
    Rule.UNQUOTED_KEY: _quoted_key,
    Rule.PYTHON_LITERAL: _python_literal,
    Rule.MISSING_COMMA: _comma,
    Rule.COMMENT: _nothing,
    Rule.TRAILING_COMMA: _nothing,
    Rule.LITERAL_NEWLINE: _layout,
}


class _Edits:
    """The guided tier's changes so far: where each is in the current text, and what.

    Positions are kept apart from the (immutable) records so that moving them after a
    change touches only integers; a megabyte of single quotes makes 130,000 edits, and
    a mutable record each gave the garbage collector that many more objects to walk.
    """

    __slots__ = ("positions", "records")

    def __init__(self) -> None:
        self.positions: list[int] = []
        self.records: list[tuple[str, str, str]] = []  # rule, before, after

    def add(self, at: int, rule: str, before: str, after: str) -> None:
        self.positions.append(at)
        self.records.append((rule, before, after))


def _bulk(current: str, start: int, rule: str, edits: _Edits, limit: int | None = None) -> str:
    """Apply ``rule`` everywhere in ``current[start:]``, recording each change in ``edits``.

    With ``limit``, stop once ``edits`` holds more than that many changes: the caller
    gives up on the text then, and the rest of it is not worth a pass.
    """
    if _BULK_HINT[rule].search(current, start) is None:
        return current
    pieces: list[str] = []
    last = start
    delta = 0
    at_list: list[int] = []  # where each change was made, in the text before this pass
    total: list[int] = []  # the length change of all changes up to and including it
    new_positions: list[int] = []
    new_records: list[tuple[str, str, str]] = []
    fix = _BULK_FIX[rule]
    # One change past the limit is enough for the caller to see it was passed.
    most = limit + 1 - len(edits.records) if limit is not None else None
    for match in _BULK[rule].finditer(current, start):
        if most is not None and len(new_records) >= most:
            break
        token = match.group("fault")
        if token is None:
            continue
        replacement = fix(token)
        at = match.start("fault")
        pieces.append(current[last:at])
        pieces.append(replacement)
        new_positions.append(at + delta)
        new_records.append((rule, token, replacement))
        delta += len(replacement) - len(token)
        at_list.append(at)
        total.append(delta)
        last = match.end("fault")
    if not new_records:
        return current
    positions = edits.positions
    for i, earlier in enumerate(positions):
        # Earlier edits after a change move by the changes before them.
        before = bisect_left(at_list, earlier)
        if before:
            positions[i] = earlier + total[before - 1]
    positions.extend(new_positions)
    edits.records.extend(new_records)
    return current[:start] + "".join(pieces) + current[last:]


# orjson's complaints that name the same fault at the same offset as the standard
# library's (checked on the parser fuzz corpus); any other falls back to the stdlib parse.
_FROM_ORJSON = {
    "unexpected character, expected a string key": "Expecting property name enclosed in "
    "double quotes",
    "unexpected character, expected a JSON value": "Expecting value",
    "unexpected character, expected ',' or '}'": "Expecting ',' delimiter",
    "unexpected character, expected ',' or ']'": "Expecting ',' delimiter",
    "unexpected character, expected ':' after key": "Expecting ':' delimiter",
    "unexpected control character in string": "Invalid control character at",
    "unexpected content after document": "Extra data",
}
_TRAILING_COMMA = "trailing comma is not allowed"


def _read(text: str) -> tuple[Any, tuple[str, int] | None]:
    """Parse ``text`` strictly: ``(value, None)``, or ``(None, (message, offset))`` in the
    standard library decoder's words, for :func:`_diagnose`.

    orjson reads the text first, four times faster than the stdlib decoder, which the
    guided tier would otherwise run once per fix; the stdlib one runs when orjson's
    complaint has no exact counterpart, and for what orjson cannot read exactly
    (integers past 64 bits, lone surrogates).

    Raises:
        ValueError: NaN or Infinity (not JSON; the tolerant tier places them).
        RecursionError: nesting past the interpreter's limit.
    """
    try:
        if not may_hold_big_int(text):
            return orjson.loads(text), None
    except orjson.JSONDecodeError as exc:
        if exc.msg == _TRAILING_COMMA:
            # The stdlib decoder complains at the closer after the comma.
            return None, ("Expecting value", space_end(text, exc.pos + 1))
        msg = _FROM_ORJSON.get(exc.msg)
        if msg is not None:
            return None, (msg, exc.pos)
    try:
        return decode_strict(text), None
    except json.JSONDecodeError as exc:
        return None, (exc.msg, exc.pos)


def guided(text: str, policy: Policy) -> Parsed | None:
    current = text
    edits = _Edits()
    truncated = False
    for _ in range(_MAX_GUIDED):
        try:
            value, fault = _read(current)
        except ValueError as exc:
            if exceeds_int_digits(exc):
                raise integer_too_long(text) from None
            return None  # NaN/Infinity: the tolerant parser knows where they stand
        except RecursionError:
            raise too_deep(text, policy) from None
        if fault is not None:
            edit = _diagnose(current, *fault)
            if edit is None:
                return None
            start, end, replacement, rule = edit
            delta = len(replacement) - (end - start)
            positions = edits.positions
            for i, earlier in enumerate(positions):
                if earlier > start:
                    positions[i] = earlier + delta
            edits.add(start, rule, current[start:end], replacement)
            truncated = truncated or (rule == Rule.MISSING_CLOSER and start == len(current))
            current = current[:start] + replacement + current[end:]
            if rule in _BULK:
                current = _bulk(current, start + len(replacement), rule, edits, policy.max_fixes)
            if policy.max_fixes is not None and len(edits.records) > policy.max_fixes:
                return None  # the tolerant tier refuses it, once its own count is past
            continue
        paths = DeferredPaths(partial(_fix_paths, current, edits))
        deferred = Fix.deferred
        costs: dict[str, float] = {}
        fixes = []
        for i, (rule, before, after) in enumerate(edits.records):
            cost = costs.get(rule)
            if cost is None:
                cost = costs[rule] = policy.cost(rule)
            fixes.append(deferred(STAGE, rule, paths, i, before, after, cost))
        return Parsed(value, fixes, truncated)
    return None


def _fix_paths(text: str, edits: _Edits) -> list[str]:
    """The pointer of each guided edit: a container rule concerns the container itself."""
    paths = _paths_at(text, edits.positions)
    for i, (rule, _before, _after) in enumerate(edits.records):
        path = paths[i]
        if rule in CONTAINER_RULES and path:
            paths[i] = path[: path.rfind("/")]
    return paths


# The standard library's engine: a quarter faster than `regex` on this simple pattern,
# which walks every token of a repaired document to place the ledger's paths.
_PATH_TOKENS = re.compile(r'"((?:[^"\\]|\\.)*)"[ \t\r\n]*(:)?|[{}\[\],]', re.DOTALL)


def _paths_at(text: str, positions: list[int]) -> list[str]:
    """The JSON pointer in force at each position of the valid JSON ``text``."""
    if not positions:
        return []
    order = sorted(range(len(positions)), key=positions.__getitem__)
    result = [""] * len(positions)
    stack: list[list[Any]] = []
    it = iter(order)
    current = next(it, None)

    def here() -> str:
        return pointer(frame[1] for frame in stack if frame[1] is not None)

    for match in _PATH_TOKENS.finditer(text):
        tok = match.group()
        is_key = match.group(2) is not None
        if is_key and stack:
            # A fix at a key concerns that key's member, so the key is set first;
            # a fix at a closer concerns the container, so closers are applied after.
            raw = match.group(1)
            stack[-1][1] = json.loads(f'"{raw}"') if "\\" in raw else raw
        while current is not None and positions[current] <= match.start():
            result[current] = here()
            current = next(it, None)
        if current is None:
            break
        if tok == "{":
            stack.append(["{", None])
        elif tok == "[":
            stack.append(["[", 0])
        elif tok in "}]":
            if stack:
                stack.pop()
        elif tok == "," and stack and stack[-1][0] == "[":
            stack[-1][1] += 1
    while current is not None:
        result[current] = here()
        current = next(it, None)
    return result
