"""The lexical stage's token vocabulary: patterns and small readers of JSON-like text.

The guided tier (:mod:`.guided`), the tolerant parser (:mod:`.tolerant`) and the
extraction stage read literals, quotes, brackets, numbers and keys with these.
"""

from __future__ import annotations

import json
import re
from typing import Any

import orjson

from ..rules import Rule

#: What a parser frame expects next (the tolerant and the incremental parser share
#: these): a key, the colon after it, a value, or what follows a member (a comma or
#: the closer).
KEY, COLON, VALUE, AFTER = range(4)

IDENT_KEY = re.compile(r"[A-Za-z_$][\w$.-]*(?=[ \t]*:)")
WORD = re.compile(r"[A-Za-z_$][\w$]*")
LITERALS: dict[str, tuple[str, str]] = {
    "true": ("true", ""),
    "false": ("false", ""),
    "null": ("null", ""),
    "True": ("true", Rule.PYTHON_LITERAL),
    "False": ("false", Rule.PYTHON_LITERAL),
    "None": ("null", Rule.PYTHON_LITERAL),
    "TRUE": ("true", Rule.PYTHON_LITERAL),
    "FALSE": ("false", Rule.PYTHON_LITERAL),
    "NULL": ("null", Rule.PYTHON_LITERAL),
    "Null": ("null", Rule.PYTHON_LITERAL),
    "NaN": ("null", Rule.JS_LITERAL),
    "nan": ("null", Rule.JS_LITERAL),
    "Infinity": ("null", Rule.JS_LITERAL),
    "undefined": ("null", Rule.JS_LITERAL),
}
#: A double-quoted string with its escapes, written unrolled (no alternation inside the
#: loop): the standard library's engine runs it about twice as fast as the plain form.
DQ_STRING = r'"[^"\\]*(?:\\.[^"\\]*)*"'
CONTROL = re.compile(r"[\x00-\x1f]")
BAD_ESCAPE = re.compile(r'\\(?:u(?![0-9a-fA-F]{4})|[^"\\/bfnrtu])|\\$')
STRING_REST = re.compile(r'[^"\\]*(?:\\.[^"\\]*)*', re.DOTALL)
# Brackets outside double-quoted strings: findall gives "" for a string and the bracket
# otherwise, so joining the results leaves the brackets alone, in order. The string is
# unrolled and on the standard library's engine, which skips what cannot start a match.
BRACKETS = re.compile(DQ_STRING + r"|([{}\[\]])", re.DOTALL)
CLOSER = {"{": "}", "[": "]"}
# Backticks are not here: a reply that starts with one is a Markdown fence, not a string.
QUOTES = {"'": "'", "\u2018": "\u2019", "\u201c": "\u201d", "\u2019": "\u2019"}
QUOTE_RULE: dict[str, str] = {"'": Rule.SINGLE_QUOTES}
CONTAINER_RULES = frozenset(
    {
        Rule.TRAILING_COMMA,
        Rule.WRONG_CLOSER,
        Rule.MISSING_CLOSER,
        Rule.EXTRA_CLOSER,
        Rule.EXTRA_COMMA,
    }
)

# What may follow a whole element: a delimiter, a line break, a comment, the end.
_ENDS_ELEMENT = r"(?=[ \t]*(?:[\r\n,\]}]|//|/\*|\\[nrt]|\Z))"
#: An element a model copied from the prompt's example instead of writing the rest:
#: ``[1, 2, ...]``, ``{"a": 1, …}``, ``["x", <etc>]``. Bare only: a quoted ``"..."`` is a
#: real string unless the schema says no string belongs there (:data:`QUOTED_PLACEHOLDER`).
PLACEHOLDER = re.compile(
    r"(?:\.{3,}|\u2026+|<[ \t]*(?:\.{3,}|\u2026|etc\.?|and so on|more(?: [a-z]+){0,3})[ \t]*>"
    r"|etc\.(?:\.\.)?)" + _ENDS_ELEMENT
)
QUOTED_PLACEHOLDER = re.compile(r'"(?:\.{3,}|\u2026+)"' + _ENDS_ELEMENT)
#: Whitespace written as its escape outside any string (``{\n  "a": 1\n}``): the reply
#: was escaped once too often, or a model wrote the layout it saw in an escaped example.
LAYOUT_ESCAPES = {"\\n": "\n", "\\r": "\r", "\\t": "\t"}

JSON_NUMBER = re.compile(r"-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][-+]?\d+)?\Z")
LITERAL_PREFIXES = ("true", "false", "null", "True", "False", "None")
Edit = tuple[int, int, str, str]  # start, end, replacement, rule


def prev_nonspace(text: str, pos: int) -> int:
    i = pos - 1
    while i >= 0 and text[i] in " \t\r\n":
        i -= 1
    return i


def escape_controls(segment: str) -> str:
    return CONTROL.sub(lambda m: json.dumps(m.group())[1:-1], segment)


def comment_end(text: str, pos: int) -> int:
    if text.startswith("/*", pos):
        end = text.find("*/", pos + 2)
        return len(text) if end < 0 else end + 2
    end = text.find("\n", pos)
    return len(text) if end < 0 else end


def is_comment(text: str, pos: int) -> bool:
    return text.startswith(("//", "/*", "#"), pos)


def quoted_span(text: str, pos: int) -> tuple[int, str] | None:
    """A string in single or typographic quotes at ``pos``: its end and its JSON form.

    The closing quote is the first one followed by a delimiter, so apostrophes inside
    (``'it's'``) stay part of the text. ``None`` when no such quote exists.
    """
    close = QUOTES[text[pos]]
    i = pos + 1
    n = len(text)
    while True:
        j = text.find(close, i)
        if j < 0:
            return None
        k = j + 1
        while k < n and text[k] in " \t\r\n":
            k += 1
        if k >= n or text[k] in ",:}]":
            body = text[pos + 1 : j]
            if text[pos] in "\u201c" and "\u201c" in body:
                return None
            return j + 1, json_string(body.replace("\\'", "'"))
        i = j + 1


_NEEDS_ESCAPE = re.compile(r'[\x00-\x1f"\\]')
_HEX4 = re.compile(r"[0-9a-fA-F]{4}")
_ESCAPE = re.compile(r"\\.")


def json_string(body: str) -> str:
    """A JSON string literal holding ``body``, which may carry JSON escapes already."""
    if _NEEDS_ESCAPE.search(body) is None:
        return '"' + body + '"'
    out = []
    i = 0
    n = len(body)
    while i < n:
        ch = body[i]
        if ch == "\\" and i + 1 < n and body[i + 1] in '"\\/bfnrtu':
            if body[i + 1] == "u" and not _HEX4.fullmatch(body, i + 2, i + 6):
                out.append("\\\\")
                i += 1
                continue
            out.append(body[i : i + 2])
            i += 2
            continue
        if ch == "\\":
            out.append("\\\\")
        elif ch == '"':
            out.append('\\"')
        elif ch < " ":
            out.append(json.dumps(ch)[1:-1])
        else:
            out.append(ch)
        i += 1
    return '"' + "".join(out) + '"'


def net_closers(text: str, start: int) -> int:
    """Closers minus openers in ``text[start:]``, strings skipped."""
    brackets = "".join(BRACKETS.findall(text, start))
    return brackets.count("}") + brackets.count("]") - brackets.count("{") - brackets.count("[")


def closes_outer(stack: list[str], closer: str, text: str, after: int) -> int | None:
    """How many open containers a mismatched ``closer`` ends, read from what follows.

    ``{"a": [1, 2}`` can be a wrong bracket (``}`` meant ``]``) or a missing one (``]``
    forgotten before ``}``). The reading that leaves the rest of the text balanced wins:
    returns the depth of the matching outer opener to close down to, or ``None`` for a
    wrong bracket.
    """
    opener = "{" if closer == "}" else "["
    if opener not in stack[:-1]:
        return None
    depth = len(stack) - 1 - stack[::-1].index(opener)
    rest = net_closers(text, after)
    if rest == len(stack) - 1 and rest != depth:
        return None  # replacing the bracket leaves exactly enough closers for the rest
    return depth


def open_stack(text: str, end: int) -> list[str]:
    """The containers open at ``end``, outermost first (a closer shuts the innermost)."""
    stack: list[str] = []
    for tok in "".join(BRACKETS.findall(text, 0, end)):
        if tok in CLOSER:
            stack.append(tok)
        elif stack:
            stack.pop()
    return stack


IDENT_TAIL = re.compile(r"[\w$ -]*")


def find_quote(text: str, start: int, closer: str) -> int:
    """The next unescaped ``closer`` at or after ``start`` (-1 if none)."""
    i = start
    while True:
        j = text.find(closer, i)
        if j < 0:
            return -1
        back = j - 1
        while back >= start and text[back] == "\\":
            back -= 1
        if (j - 1 - back) % 2 == 0:
            return j
        i = j + 1


def strip_escapes(body: str) -> str:
    return _ESCAPE.sub("", body)


def starts_literal(text: str, pos: int) -> bool:
    word = WORD.match(text, pos)
    return word is not None and (
        word.group() in LITERALS or any(f.startswith(word.group()) for f in LITERAL_PREFIXES)
    )


def normalise_number(raw: str) -> str | None:
    """Rewrite a number JSON refuses (``+1``, ``.5``, ``5.``, ``007``, ``0x1F``) as JSON."""
    body = raw[1:] if raw[0] in "+-" else raw
    sign = "-" if raw[0] == "-" else ""
    if body[:2].lower() == "0x":
        try:
            return sign + str(int(body, 16))
        except ValueError:
            return None
    if body.startswith("."):
        body = "0" + body
    if body.endswith("."):
        body = body + "0"
    body = body.replace(".e", ".0e").replace(".E", ".0E")
    stripped = body.lstrip("0")
    if not stripped or stripped[0] in ".eE":
        stripped = "0" + stripped
    token = sign + stripped
    return token if JSON_NUMBER.match(token) else None


def next_key(
    text: str, start: int, end: int, keys: frozenset[str], current: str | None
) -> int | None:
    """Where an unquoted value stops because a known key begins (``name: Ann age: 3``)."""
    best: int | None = None
    for key in keys:
        if key == current:
            continue
        for pattern in (f' "{key}"', f" {key}:", f" {key} :", f'\t"{key}"'):
            found = text.find(pattern, start, end + len(pattern))
            if found >= 0 and (best is None or found < best):
                best = found
    return best


# What a run of numbers and commas may hold, as one character class: matching it costs a
# C step per character, where a pattern of repeated groups grew faster than the text.
_NUMBERISH = re.compile(r"[-+0-9.eE, \t\r\n]*")
# How far one look for a run goes: a long run is taken in pieces of about this size.
_RUN_WINDOW = 1 << 16


def number_run(text: str, pos: int) -> tuple[int, int, list[Any] | None]:
    """Two or more strictly valid numbers from ``pos``, each followed by its comma.

    Returns:
        ``(end, again, values)``: ``end`` is just past the run's last comma and
        ``values`` its numbers, or ``end == pos`` and ``values`` None when there is no
        such run; a caller does not look again before ``again``. A look costs at most
        the window it reads, and is either paid for by a run of at least an eighth of
        it, or ``again`` is the end of the window, which the caller reads element by
        element: the looking stays linear in all, whatever the text.
    """
    window = _NUMBERISH.match(text, pos, pos + _RUN_WINDOW)
    scanned = window.end() if window is not None else pos
    last = text.rfind(",", pos, scanned)
    if last < 0 or text.find(",", pos, last) < 0:
        return pos, scanned, None
    try:
        return last + 1, scanned, orjson.loads("[" + text[pos:last] + "]")
    except orjson.JSONDecodeError as exc:
        # ``1, 2, 3., 4,``: the numbers before the one orjson stopped in still make a
        # run, worth taking if it is long; the caller reads the bad one and looks again.
        bad = pos + exc.pos - 1
    last = text.rfind(",", pos, bad)
    if last < 0 or text.find(",", pos, last) < 0 or 8 * (last - pos) < scanned - pos:
        return pos, scanned, None
    after_bad = text.find(",", bad, scanned)
    again = after_bad + 1 if after_bad >= 0 else scanned
    return last + 1, again, orjson.loads("[" + text[pos:last] + "]")
