"""Named, seeded corruption operators that damage JSON the way LLMs do.

Each operator covers one failure class seen in LLM output (prose around the
JSON, Markdown fences, single quotes, trailing commas, truncation, ...). An
operator is a plain function ``(text, rng) -> damaged_text`` that takes a JSON
text, as :func:`json.dumps` writes it (pretty-printed with ``indent=2`` or
minified), and returns the damaged text. It returns the text unchanged only
when its failure class cannot apply to that document (no string to put a
quote in, no ``null`` to turn into ``None``, ...), so callers check
``damaged != text``.

Ground truth stays honest: every operator except ``truncated`` keeps the
original value recoverable in principle, and none of them ever produces text
that strictly parses (:func:`json.loads`) to a different value. The structural
operators always produce text that is not strict JSON; the wrapping operators
(``prose_around``, ``markdown_fence``, ``think_block``) keep the original JSON
text verbatim inside the output. Operators that would change a string's value
(a raw newline, an unescaped quote) only rewrite what is already escaped in the
document, so the decoded value stays the same.

All operators are token-aware: a small regex tokenizer splits the text into
strings, numbers, literals, punctuation and whitespace, so no operator breaks
a string by accident. The single-quoted strings that ``single_quotes`` writes
are tokens too, so an operator applied after it leaves a bracket inside
``'[deleted]'`` alone.

Example:
    >>> import random
    >>> from repairllm.bench.corrupt import apply
    >>> damaged = apply(("trailing_comma", "markdown_fence"), '[1, 2]', random.Random(0))
    >>> damaged.operators
    ('trailing_comma', 'markdown_fence')
"""

from __future__ import annotations

import itertools
import json
import random
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Final, TypeVar

__all__ = [
    "LOSSY",
    "OPERATORS",
    "SCHEMA_LEVEL",
    "SERIALIZATIONS",
    "WRAPPERS",
    "Damaged",
    "Operator",
    "apply",
    "serialize",
]

Operator = Callable[[str, random.Random], str]
"""An operator: ``(json_text, rng) -> damaged_text``."""

_T = TypeVar("_T")

# --------------------------------------------------------------------------- #
# Tokenizer
# --------------------------------------------------------------------------- #

_TOKEN_RE: Final = re.compile(
    r"""
      (?P<string>"(?:[^"\\]|\\.)*")
    | (?P<sqstring>'[^'\\]*')
    | (?P<number>-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?)
    | (?P<literal>(?:true|false|null)(?![A-Za-z0-9_]))
    | (?P<punct>[{}\[\]:,])
    | (?P<ws>\s+)
    | (?P<other>[A-Za-z0-9_]+|.)
    """,
    re.VERBOSE | re.DOTALL,
)
_ESCAPE_RE: Final = re.compile(r"\\(.)", re.DOTALL)
_IDENTIFIER_RE: Final = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_OPENERS: Final = "{["
_CLOSERS: Final = "}]"
_WORDISH: Final = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.+-")


@dataclass(frozen=True, slots=True)
class _Token:
    """One lexical token of a (possibly damaged) JSON text."""

    kind: str
    text: str
    start: int

    @property
    def end(self) -> int:
        """Offset just past the token."""
        return self.start + len(self.text)

    def is_punct(self, chars: str) -> bool:
        """Whether the token is one of the punctuation characters ``chars``."""
        return self.kind == "punct" and self.text in chars


def _tokenize(text: str) -> list[_Token]:
    """Split ``text`` into tokens; concatenating their texts gives ``text`` back."""
    return [_Token(m.lastgroup or "other", m.group(), m.start()) for m in _TOKEN_RE.finditer(text)]


def _significant(text: str) -> list[_Token]:
    """Return the tokens of ``text`` that are not whitespace."""
    return [tok for tok in _tokenize(text) if tok.kind != "ws"]


def _keys(sig: list[_Token]) -> list[_Token]:
    """Return the string tokens that are object keys (followed by a colon)."""
    return [
        tok for tok, nxt in itertools.pairwise(sig) if tok.kind == "string" and nxt.is_punct(":")
    ]


def _last_members(sig: list[_Token]) -> list[_Token]:
    """The last token before the closer of every non-empty container (not a comma)."""
    return [
        sig[index - 1]
        for index, _ in _closer_depths(sig)
        if index > 0 and not sig[index - 1].is_punct(_OPENERS + ",")
    ]


def _closer_depths(sig: list[_Token]) -> list[tuple[int, int]]:
    """Return ``(index, depth)`` for every closing bracket; the outermost has depth 0."""
    depth = 0
    found: list[tuple[int, int]] = []
    for index, tok in enumerate(sig):
        if tok.is_punct(_OPENERS):
            depth += 1
        elif tok.is_punct(_CLOSERS):
            depth -= 1
            found.append((index, depth))
    return found


def _splice(text: str, edits: list[tuple[int, int, str]]) -> str:
    """Replace ``text[start:end]`` by ``new`` for each non-overlapping edit."""
    for start, end, new in sorted(edits, key=lambda edit: (edit[0], edit[1]), reverse=True):
        text = text[:start] + new + text[end:]
    return text


def _strictly_parses(text: str) -> bool:
    """Whether :func:`json.loads` accepts ``text``."""
    try:
        json.loads(text)
    except (ValueError, RecursionError):
        return False
    return True


def _some(
    rng: random.Random, items: Sequence[_T], *, p_all: float, most: int | None = None
) -> list[_T]:
    """Pick a non-empty subset of ``items`` (all of them with probability ``p_all``).

    Args:
        rng: Source of randomness.
        items: Candidates, in document order; must not be empty.
        p_all: Probability of picking every candidate.
        most: Upper bound on the subset size when not picking all.

    Returns:
        The picked items, in their original order.
    """
    if rng.random() < p_all:
        return list(items)
    upper = len(items) if most is None else min(most, len(items))
    count = rng.randint(1, upper)
    picked = sorted(rng.sample(range(len(items)), count))
    return [items[i] for i in picked]


# --------------------------------------------------------------------------- #
# Text pools
# --------------------------------------------------------------------------- #

_PREFIXES: Final = (
    "Sure! Here is the JSON you asked for:",
    "Here's the JSON:",
    "Certainly. Below is the requested data in JSON format:",
    "Of course! Here is the result:",
    "Here you go:",
    "Based on the text, I extracted the following:",
    "Okay, here is the output as requested:",
    "Here is the structured data:",
)
_SUFFIXES: Final = (
    "Let me know if you need anything else.",
    "I hope this helps!",
    "Feel free to ask if you want any changes.",
    "Note: some fields were inferred from context.",
    "This JSON contains all the requested fields.",
    "Let me know if you'd like a different format.",
)
_REASONING: Final = (
    "The user wants the data as JSON.",
    "Let me go through the text and pick out each field.",
    "I need to make sure every required key is present.",
    "The numbers should be numbers, not strings.",
    "Some values are missing in the source, so I'll use null for those.",
    "I should keep the original wording of the quotes.",
    "Okay, that covers everything; now I'll write the final answer.",
)
_BRACED_REASONING: Final = (
    "Maybe the shape is {maybe} or something like {name, age}?",
    "Should the list be [a, b] or a single object {a}? A list, I think.",
    'The answer probably looks like {"key": value} with a few more fields.',
    "Wait, is it {id: 1} or [1]? Let me re-read the request.",
)
_LINE_COMMENTS: Final = (
    "// required field",
    "// the user's name",
    "// TODO: double-check this value",
    "// optional",
    "// taken from the source text",
    "// in seconds",
    "// see above",
)
_BLOCK_COMMENTS: Final = (
    "/* required */",
    "/* optional field */",
    "/* the user's name */",
    "/* inferred */",
    "/* list of items */",
    "/* TODO: verify */",
)
_SEPARATORS: Final = ("\n\n", "\n", " ")


def _reasoning(rng: random.Random, *, braces: bool) -> str:
    """Return one to three sentences of plausible reasoning."""
    sentences = rng.sample(_REASONING, rng.randint(1, 3))
    if braces:
        sentences.insert(rng.randint(0, len(sentences)), rng.choice(_BRACED_REASONING))
    return " ".join(sentences)


# --------------------------------------------------------------------------- #
# Operators
# --------------------------------------------------------------------------- #


def prose_around(text: str, rng: random.Random) -> str:
    """Put a sentence before and/or after the JSON.

    Args:
        text: A JSON text.
        rng: Source of randomness.

    Returns:
        The text with chatty prose around it; the JSON text itself is untouched.
    """
    where = rng.choices(("before", "after", "both"), weights=(4, 2, 4))[0]
    if where in ("before", "both"):
        text = rng.choice(_PREFIXES) + rng.choice(_SEPARATORS) + text
    if where in ("after", "both"):
        text = text + rng.choice(_SEPARATORS) + rng.choice(_SUFFIXES)
    return text


def markdown_fence(text: str, rng: random.Random) -> str:
    """Wrap the JSON in a Markdown code fence.

    Usually a ```` ```json ```` fence, sometimes a bare ```` ``` ```` fence, and
    sometimes a fence that is never closed.

    Args:
        text: A JSON text.
        rng: Source of randomness.

    Returns:
        The fenced text; the JSON text itself is untouched.
    """
    opener, closer = rng.choices(
        (("```json\n", "\n```"), ("```\n", "\n```"), ("```json\n", "\n"), ("```JSON\n", "\n```\n")),
        weights=(6, 2, 1, 1),
    )[0]
    return opener + text + closer


def think_block(text: str, rng: random.Random) -> str:
    """Prepend a ``<think>...</think>`` block of reasoning.

    The reasoning sometimes contains braces (``{maybe}``) so that finding the
    first ``{`` is not enough to locate the JSON.

    Args:
        text: A JSON text.
        rng: Source of randomness.

    Returns:
        The text preceded by a reasoning block; the JSON text itself is untouched.
    """
    reasoning = _reasoning(rng, braces=rng.random() < 0.4)
    return f"<think>\n{reasoning}\n</think>" + rng.choice(_SEPARATORS) + text


def single_quotes(text: str, rng: random.Random) -> str:
    """Quote some or all keys and string values with single quotes.

    Only strings without a single quote or a backslash are eligible, so the
    intended value stays unambiguous.

    Args:
        text: A JSON text.
        rng: Source of randomness.

    Returns:
        The damaged text, or ``text`` when no string is eligible.
    """
    sig = _significant(text)
    eligible = [
        tok for tok in sig if tok.kind == "string" and "'" not in tok.text and "\\" not in tok.text
    ]
    if not eligible:
        return text
    key_starts = {tok.start for tok in _keys(sig)}
    mode = rng.choices(("all", "keys", "values", "some"), weights=(4, 2, 1, 3))[0]
    if mode == "keys":
        chosen = [tok for tok in eligible if tok.start in key_starts]
    elif mode == "values":
        chosen = [tok for tok in eligible if tok.start not in key_starts]
    elif mode == "all":
        chosen = eligible
    else:
        chosen = _some(rng, eligible, p_all=0.0)
    if not chosen:
        chosen = _some(rng, eligible, p_all=0.0)
    return _splice(text, [(tok.start, tok.end, f"'{tok.text[1:-1]}'") for tok in chosen])


def trailing_comma(text: str, rng: random.Random) -> str:
    """Add a comma after the last member of one or more non-empty containers.

    Args:
        text: A JSON text.
        rng: Source of randomness.

    Returns:
        The damaged text, or ``text`` when every container is empty.
    """
    sig = _significant(text)
    candidates = _last_members(sig)
    if not candidates:
        return text
    chosen = _some(rng, candidates, p_all=0.25) if rng.random() < 0.5 else [rng.choice(candidates)]
    return _splice(text, [(tok.end, tok.end, ",") for tok in chosen])


def unquoted_keys(text: str, rng: random.Random) -> str:
    """Remove the quotes around some or all keys that are identifiers.

    Args:
        text: A JSON text.
        rng: Source of randomness.

    Returns:
        The damaged text, or ``text`` when no key is an identifier.
    """
    candidates = [
        tok for tok in _keys(_significant(text)) if _IDENTIFIER_RE.fullmatch(tok.text[1:-1])
    ]
    if not candidates:
        return text
    chosen = _some(rng, candidates, p_all=0.6)
    return _splice(text, [(tok.start, tok.end, tok.text[1:-1]) for tok in chosen])


_PYTHON_LITERALS: Final = {"true": "True", "false": "False", "null": "None"}


def python_literals(text: str, rng: random.Random) -> str:
    """Write ``true``/``false``/``null`` as Python's ``True``/``False``/``None``.

    Args:
        text: A JSON text.
        rng: Source of randomness.

    Returns:
        The damaged text, or ``text`` when it has no such literal outside strings.
    """
    candidates = [tok for tok in _significant(text) if tok.kind == "literal"]
    if not candidates:
        return text
    chosen = _some(rng, candidates, p_all=0.6)
    return _splice(text, [(tok.start, tok.end, _PYTHON_LITERALS[tok.text]) for tok in chosen])


def comments(text: str, rng: random.Random) -> str:
    """Insert JavaScript-style comments.

    Pretty-printed text mostly gets ``// ...`` comments at line ends; minified
    text (and sometimes pretty text) gets ``/* ... */`` comments between members.

    Args:
        text: A JSON text.
        rng: Source of randomness.

    Returns:
        The damaged text (always changed, since a comment fits anywhere).
    """
    tokens = _tokenize(text)
    line_ends = [tok.start for tok in tokens if tok.kind == "ws" and "\n" in tok.text]
    if line_ends and rng.random() < 0.75:
        positions = sorted({*line_ends, len(text.rstrip())})
        chosen = _some(rng, positions, p_all=0.0, most=3)
        return _splice(text, [(pos, pos, " " + rng.choice(_LINE_COMMENTS)) for pos in chosen])
    positions = [tok.end for tok in tokens if tok.is_punct(_OPENERS + ",")]
    if not positions:
        positions = [0, len(text)]
    chosen = _some(rng, positions, p_all=0.0, most=3)
    spacer = " " if line_ends else ""
    return _splice(text, [(pos, pos, spacer + rng.choice(_BLOCK_COMMENTS)) for pos in chosen])


def missing_comma(text: str, rng: random.Random) -> str:
    """Delete one or more commas between members or elements.

    When deleting a comma would glue two numbers or literals together (and so
    change the value, ``[1,2]`` -> ``[12]``), it is replaced by a space instead.

    Args:
        text: A JSON text.
        rng: Source of randomness.

    Returns:
        The damaged text, or ``text`` when it has no comma outside strings.
    """
    commas = [tok for tok in _significant(text) if tok.is_punct(",")]
    if not commas:
        return text
    chosen = _some(rng, commas, p_all=0.0, most=3)
    edits: list[tuple[int, int, str]] = []
    for tok in chosen:
        before = text[tok.start - 1] if tok.start > 0 else ""
        after = text[tok.end] if tok.end < len(text) else ""
        glue = before in _WORDISH and after in _WORDISH
        edits.append((tok.start, tok.end, " " if glue else ""))
    return _splice(text, edits)


def _unescape_some(inner: str, wanted: dict[str, str]) -> str:
    """Replace the escape sequences of ``inner`` listed in ``wanted`` by raw characters."""
    return _ESCAPE_RE.sub(lambda m: wanted.get(m.group(1), m.group(0)), inner)


def raw_newline(text: str, rng: random.Random) -> str:
    """Turn escaped ``\\n``/``\\t`` inside strings into raw newline/tab characters.

    Only existing escape sequences are converted, so the decoded value is the
    same; the text just is not strict JSON any more.

    Args:
        text: A JSON text.
        rng: Source of randomness.

    Returns:
        The damaged text, or ``text`` when no string holds an escaped newline or tab.
    """
    wanted = {"n": "\n", "t": "\t"}
    candidates: list[tuple[_Token, str]] = []
    for tok in _significant(text):
        if tok.kind == "string":
            raw = _unescape_some(tok.text[1:-1], wanted)
            if raw != tok.text[1:-1]:
                candidates.append((tok, raw))
    if not candidates:
        return text
    chosen = _some(rng, candidates, p_all=0.5)
    return _splice(text, [(tok.start, tok.end, f'"{raw}"') for tok, raw in chosen])


def unescaped_quote(text: str, rng: random.Random) -> str:
    """Drop the backslash of escaped ``\\"`` quotes inside one or more strings.

    ``"He said \\"hi\\""`` becomes ``"He said "hi""``. A choice that would make the
    text strictly parse (``["a\\",\\"b"]`` -> ``["a","b"]``) is never returned.

    Args:
        text: A JSON text.
        rng: Source of randomness.

    Returns:
        The damaged text, or ``text`` when no string holds an escaped quote.
    """
    wanted = {'"': '"'}
    candidates: list[tuple[_Token, str]] = []
    for tok in _significant(text):
        if tok.kind == "string":
            raw = _unescape_some(tok.text[1:-1], wanted)
            if raw != tok.text[1:-1]:
                candidates.append((tok, raw))
    for _attempt in range(8):
        if not candidates:
            break
        chosen = _some(rng, candidates, p_all=0.2, most=2)
        damaged = _splice(text, [(tok.start, tok.end, f'"{raw}"') for tok, raw in chosen])
        if not _strictly_parses(damaged):
            return damaged
        if len(chosen) == 1:
            candidates.remove(chosen[0])
    return text


def wrong_closer(text: str, rng: random.Random) -> str:
    """Replace one inner closing ``]`` by ``}`` or ``}`` by ``]``.

    The outermost closer is never touched.

    Args:
        text: A JSON text.
        rng: Source of randomness.

    Returns:
        The damaged text, or ``text`` when no container is nested in another.
    """
    sig = _significant(text)
    candidates = [sig[index] for index, depth in _closer_depths(sig) if depth >= 1]
    if not candidates:
        return text
    tok = rng.choice(candidates)
    return _splice(text, [(tok.start, tok.end, "}" if tok.text == "]" else "]")])


def missing_closer(text: str, rng: random.Random) -> str:
    """Delete one or more closing brackets at the end of the document.

    Args:
        text: A JSON text.
        rng: Source of randomness.

    Returns:
        The damaged text (a prefix of ``text``), or ``text`` when it does not end
        with a closing bracket.
    """
    sig = _significant(text)
    trailing = 0
    while trailing < len(sig) and sig[-1 - trailing].is_punct(_CLOSERS):
        trailing += 1
    if trailing == 0:
        return text
    count = 1 if rng.random() < 0.6 else rng.randint(1, min(3, trailing))
    return text[: sig[-count].start].rstrip()


# -- shapes real models write: placeholders, stray quotes, glued members, escaped layout,
# -- unquoted text with commas (each leaves the original value recoverable) -------------

_PLACEHOLDERS: Final = ("...", "...", "\u2026", "<etc>", "etc.", "<...>", "<more items>")


def _containers(sig: list[_Token]) -> list[tuple[int, int, list[int]]]:
    """``(opener, closer, commas)`` indices in ``sig`` of every container, commas at its level."""
    open_: list[tuple[int, list[int]]] = []
    found: list[tuple[int, int, list[int]]] = []
    for index, tok in enumerate(sig):
        if tok.is_punct(_OPENERS):
            open_.append((index, []))
        elif tok.is_punct(_CLOSERS) and open_:
            opener, commas = open_.pop()
            found.append((opener, index, commas))
        elif tok.is_punct(",") and open_:
            open_[-1][1].append(index)
    return sorted(found)


def placeholder_elements(text: str, rng: random.Random) -> str:
    """Put a placeholder copied from a prompt's example (``...``, ``…``, ``<etc>``) into
    one or two containers: mostly last (``[1, 2, ...]``, ``{"a": 1, …}``), sometimes first
    or between two members. Only bare ones: a quoted ``"..."`` may be a real string.

    Args:
        text: A JSON text.
        rng: Source of randomness.

    Returns:
        The damaged text, or ``text`` when it holds no container.
    """
    sig = _significant(text)
    containers = _containers(sig)
    if not containers:
        return text
    edits: list[tuple[int, int, str]] = []
    for opener, closer, commas in _some(rng, containers, p_all=0.0, most=2):
        mark = rng.choice(_PLACEHOLDERS)
        if closer == opener + 1:
            edits.append((sig[opener].end, sig[opener].end, mark))
            continue
        where = rng.choices(("last", "first", "between"), weights=(6, 1, 2 if commas else 0))[0]
        if where == "last":
            comma = "" if sig[closer - 1].is_punct(",") else ","  # after a trailing comma
            edits.append((sig[closer - 1].end, sig[closer - 1].end, comma + " " + mark))
        elif where == "first":
            edits.append((sig[opener].end, sig[opener].end, mark + ", "))
        else:
            at = sig[rng.choice(commas)].end
            edits.append((at, at, " " + mark + ","))
    return _splice(text, edits)


def stray_quote(text: str, rng: random.Random) -> str:
    """Put a stray quote before the closer of a non-empty container: doubled after the
    last element (``["a", "b""]``, ``{"a": 1"}``) or after a comma of its own
    (``["a", "b", "]``). One only: two (``[true"]"}``) can read as a string.

    Args:
        text: A JSON text.
        rng: Source of randomness.

    Returns:
        The damaged text, or ``text`` when every container is empty.
    """
    sig = _significant(text)
    last = _last_members(sig)
    if not last:
        return text
    tok = rng.choice(last)
    return _splice(text, [(tok.end, tok.end, '"' if rng.random() < 0.75 else ', "')])


def glued_members(text: str, rng: random.Random) -> str:
    """Drop the comma and the space between members or elements where a quote or a
    bracket ends one and starts the next: ``{"a": "x""b": 2}``, ``["a""b"]``, ``}{``.

    Args:
        text: A JSON text.
        rng: Source of randomness.

    Returns:
        The damaged text, or ``text`` when no comma stands between such tokens.
    """
    sig = _significant(text)
    gaps = [
        (sig[index - 1].end, sig[index + 1].start)
        for index in range(1, len(sig) - 1)
        if sig[index].is_punct(",")
        and sig[index - 1].text[-1] in '"}]'
        and sig[index + 1].text[0] in '"{['
    ]
    if not gaps:
        return text
    return _splice(text, [(start, end, "") for start, end in _some(rng, gaps, p_all=0.2, most=3)])


def literal_newlines(text: str, rng: random.Random) -> str:
    """Write the layout outside strings as escapes: ``{\\n  "a": 1\\n}`` with a backslash
    and an ``n``, as a reply escaped once too often is. Minified text gets an escaped line
    break after its openers and commas.

    Args:
        text: A JSON text.
        rng: Source of randomness.

    Returns:
        The damaged text, or ``text`` when it holds no container.
    """
    tokens = _tokenize(text)
    breaks = [tok for tok in tokens if tok.kind == "ws" and "\n" in tok.text]
    if breaks:
        chosen = breaks if rng.random() < 0.8 else _some(rng, breaks, p_all=0.0)
        return _splice(
            text, [(tok.start, tok.end, tok.text.replace("\n", "\\n")) for tok in chosen]
        )
    spots = [tok.end for tok in tokens if tok.is_punct("{[,")]
    spots += [tok.start for tok in tokens if tok.is_punct(_CLOSERS)]
    if not spots:
        return text
    escape = rng.choice(("\\n", "\\n  ", "\\r\\n", "\\n\\t"))
    return _splice(text, [(at, at, escape) for at in _some(rng, spots, p_all=0.7)])


# Text a parser can read unquoted up to the next member: no quote, bracket, colon,
# comment, escape or line break, a letter first (no number or literal) and no space at
# either end.
_UNQUOTABLE: Final = re.compile(r"[A-Za-z][^\"'\\{}\[\]:=#/\x00-\x1f]*[^\s\"'\\{}\[\]:=#/,]")
_BARE_WORDS: Final = frozenset(
    {"true", "false", "null", "True", "False", "None", "NaN", "Infinity", "undefined"}
)


def unquoted_commas(text: str, rng: random.Random) -> str:
    """Drop the quotes of one or two member values that hold a comma:
    ``{"name": Smith, John, "age": 30}``.

    Args:
        text: A JSON text.
        rng: Source of randomness.

    Returns:
        The damaged text, or ``text`` when no member's value is text with a comma that
        reads back unquoted.
    """
    sig = _significant(text)
    found = []
    for index in range(1, len(sig) - 1):
        tok = sig[index]
        if tok.kind != "string" or not sig[index - 1].is_punct(":"):
            continue
        if not sig[index + 1].is_punct(",}"):
            continue
        body = tok.text[1:-1]
        if "," not in body or not _UNQUOTABLE.fullmatch(body):
            continue
        first = _IDENTIFIER_RE.match(body)
        if first is not None and first.group() in _BARE_WORDS:
            continue
        found.append(tok)
    if not found:
        return text
    chosen = _some(rng, found, p_all=0.0, most=2)
    return _splice(text, [(tok.start, tok.end, tok.text[1:-1]) for tok in chosen])


def truncated(text: str, rng: random.Random) -> str:
    """Cut the text at a random point in its last 40%, as a token limit does.

    At least one character is removed. Cuts that leave strictly valid JSON (a
    truncated top-level number) are avoided when another cut is possible.

    Args:
        text: A JSON text.
        rng: Source of randomness.

    Returns:
        A strict prefix of ``text``, or ``text`` when it is shorter than two characters.
    """
    if len(text) < 2:
        return text
    low = max(1, int(len(text) * 0.6))
    cut = len(text) - 1
    for _attempt in range(8):
        cut = rng.randint(low, len(text) - 1)
        if not _strictly_parses(text[:cut]):
            break
    return text[:cut]


# -- shapes a schema settles (the damaged text may be valid JSON of another value) ----


def _value_of(text: str) -> Any:
    try:
        return json.loads(text)
    except (ValueError, RecursionError):
        return _NOT_JSON


_NOT_JSON: Final = object()


def several_values(text: str, rng: random.Random) -> str:
    """Write the elements of a top-level array one per line (JSON Lines), or with prose
    between them, instead of as one array; ``text`` unchanged when it is not an array
    of two or more objects or arrays."""
    value = _value_of(text)
    if not isinstance(value, list) or len(value) < 2:
        return text
    if not all(isinstance(item, (dict, list)) and item for item in value):
        return text
    pretty = "\n" in text
    parts = [json.dumps(item, ensure_ascii=False, indent=2 if pretty else None) for item in value]
    if rng.random() < 0.5:
        return "\n".join(parts)
    return "Here is the first one:\n" + "\n\nAnd the next:\n".join(parts)


_CURRENCIES: Final = ("$", "€", "£", "USD ", "EUR ")


def number_symbols(text: str, rng: random.Random) -> str:
    """Write one number as people do, quoted: ``"$1,299.5"``, ``"45%"``, ``"12 EUR"``."""
    sig = _significant(text)
    keys = {id(tok) for tok in _keys(sig)}
    numbers = [tok for tok in sig if tok.kind == "number" and id(tok) not in keys]
    numbers = [tok for tok in numbers if "e" not in tok.text.lower()]
    if not numbers:
        return text
    tok = rng.choice(numbers)
    body = tok.text
    negative = body.startswith("-")
    digits = body.lstrip("-")
    whole, dot, fraction = digits.partition(".")
    if len(whole) > 3 and rng.random() < 0.7:
        whole = f"{int(whole):,}"
    written = "-" * negative + whole + dot + fraction
    style = rng.randrange(3)
    if style == 0:
        symbol = rng.choice(_CURRENCIES)
        written = ("-" if negative else "") + symbol + written.lstrip("-")
    elif style == 1:
        written += "%"
    else:
        written += " " + rng.choice(("USD", "EUR"))
    return text[: tok.start] + json.dumps(written, ensure_ascii=False) + text[tok.end :]


def encoded_member(text: str, rng: random.Random) -> str:
    """The object as JSON text inside a one-member wrapper: ``{"result": "{\\"a\\": 1}"}``."""
    value = _value_of(text)
    if not isinstance(value, dict) or not value:
        return text
    key = rng.choice(("result", "output", "data", "response"))
    return json.dumps({key: json.dumps(value, ensure_ascii=False)}, ensure_ascii=False)


def call_envelope(text: str, rng: random.Random) -> str:
    """The object as the arguments of a function call, as an object or as JSON text."""
    value = _value_of(text)
    if not isinstance(value, dict) or not value or set(value) & {"arguments", "function"}:
        return text
    args: Any = json.dumps(value, ensure_ascii=False) if rng.random() < 0.6 else value
    call = {"name": rng.choice(("submit", "extract_data", "record")), "arguments": args}
    if rng.random() < 0.3:
        call = {"type": "function", "function": call}
    return json.dumps(call, ensure_ascii=False, indent=2 if "\n" in text else None)


def prose_lines(text: str, rng: random.Random) -> str:
    """A flat object of scalars answered as ``Key: value`` lines, no JSON at all."""
    value = _value_of(text)
    if not isinstance(value, dict) or len(value) < 2:
        return text
    lines = []
    for key, item in value.items():
        if isinstance(item, (dict, list)) or item is None or not key or not key[0].isalpha():
            return text  # a nested value, or null (which prose cannot tell from "null")
        if ":" in key or "\n" in key:
            return text
        shown = item if isinstance(item, str) else json.dumps(item)
        if not shown or "\n" in shown or shown != shown.strip():
            return text
        lines.append(f"{'**' + key + '**' if rng.random() < 0.3 else key}: {shown}")
    return "\n".join(lines)


OPERATORS: Final[dict[str, Operator]] = {
    "prose_around": prose_around,
    "markdown_fence": markdown_fence,
    "think_block": think_block,
    "single_quotes": single_quotes,
    "trailing_comma": trailing_comma,
    "unquoted_keys": unquoted_keys,
    "python_literals": python_literals,
    "comments": comments,
    "missing_comma": missing_comma,
    "raw_newline": raw_newline,
    "unescaped_quote": unescaped_quote,
    "wrong_closer": wrong_closer,
    "missing_closer": missing_closer,
    "placeholder_elements": placeholder_elements,
    "stray_quote": stray_quote,
    "glued_members": glued_members,
    "literal_newlines": literal_newlines,
    "unquoted_commas": unquoted_commas,
    "truncated": truncated,
    "several_values": several_values,
    "number_symbols": number_symbols,
    "encoded_member": encoded_member,
    "call_envelope": call_envelope,
    "prose_lines": prose_lines,
}
"""Every operator by name, in a fixed order."""

LOSSY: Final = frozenset({"truncated"})
"""Operators after which exact recovery of the original value is not expected."""

WRAPPERS: Final = frozenset({"prose_around", "markdown_fence", "think_block"})
"""Operators that wrap the JSON text without changing it (it stays a substring)."""

SCHEMA_LEVEL: Final = frozenset(
    {"several_values", "number_symbols", "encoded_member", "call_envelope", "prose_lines"}
)
"""Operators whose damage only the schema can undo: the text may be valid JSON of another
value (a number as a string, the object inside a wrapper), so a tool that never sees the
schema cannot be expected to recover the original."""


@dataclass(frozen=True)
class Damaged:
    """The result of :func:`apply`.

    Attributes:
        text: The damaged text.
        operators: The operators that changed the text, in the order applied;
            requested operators that could not apply are left out.
    """

    text: str
    operators: tuple[str, ...]


def apply(names: str | Sequence[str], text: str, rng: random.Random) -> Damaged:
    """Apply one operator, or several in sequence.

    Operators expect JSON text, so put the wrapping operators (``prose_around``,
    ``markdown_fence``, ``think_block``) after the structural ones in a combination:
    the prose they add (``I'll``) would confuse the tokenizer. Among the structural
    operators the order is free; the single-quoted strings ``single_quotes`` writes are
    read as strings by the operators that follow it.

    Args:
        names: An operator name or a sequence of names, applied in order.
        text: A JSON text.
        rng: Source of randomness.

    Returns:
        The damaged text and the operators that actually changed it.

    Raises:
        ValueError: If a name is not in :data:`OPERATORS`.
    """
    sequence = (names,) if isinstance(names, str) else tuple(names)
    unknown = [name for name in sequence if name not in OPERATORS]
    if unknown:
        raise ValueError(f"unknown corruption operator(s) {unknown}; known: {list(OPERATORS)}")
    applied: list[str] = []
    for name in sequence:
        damaged = OPERATORS[name](text, rng)
        if damaged != text:
            applied.append(name)
        text = damaged
    return Damaged(text, tuple(applied))


# --------------------------------------------------------------------------- #
# Serialization
# --------------------------------------------------------------------------- #

SERIALIZATIONS: Final = ("pretty", "minified", "fenced", "prose", "think")
"""The styles :func:`serialize` knows, in a fixed order."""


def serialize(value: object, style: str, rng: random.Random) -> str:
    """Write a JSON value the way a well-behaved LLM might.

    Args:
        value: A JSON-serializable value.
        style: One of :data:`SERIALIZATIONS`: ``"pretty"`` (indent 2),
            ``"minified"``, ``"fenced"`` (pretty JSON in a ```` ```json ```` fence),
            ``"prose"`` (pretty JSON between two short sentences) or ``"think"``
            (a ``<think>...</think>`` block before the pretty JSON).
        rng: Source of randomness (wording of prose and reasoning).

    Returns:
        The text; the JSON inside is always complete and valid.

    Raises:
        ValueError: If ``style`` is unknown.
    """
    if style == "minified":
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    pretty = json.dumps(value, ensure_ascii=False, indent=2)
    if style == "pretty":
        return pretty
    if style == "fenced":
        return f"```json\n{pretty}\n```"
    if style == "prose":
        return f"{rng.choice(_PREFIXES)}\n\n{pretty}\n\n{rng.choice(_SUFFIXES)}"
    if style == "think":
        return f"<think>\n{_reasoning(rng, braces=False)}\n</think>\n\n{pretty}"
    raise ValueError(f"unknown serialization style {style!r}; known: {list(SERIALIZATIONS)}")
