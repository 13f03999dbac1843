"""Stage 1: find the text that may hold the JSON value in a model's reply.

:func:`candidates` yields :class:`Candidate` spans of the reply, best first: the reply
itself (after any ``<think>`` block), fenced code blocks (closed, unclosed, any
language tag), ``[CONTENT]…[/CONTENT]``-style and ``<json>…</json>``-style tag pairs,
every top-level balanced ``{…}``/``[…]`` span (several values in one reply give several
candidates), a span from the first opener to the last closer (for replies whose inner
quotes confuse a balanced scan), an unclosed span that runs to the end (a reply cut
off by the token limit), and a lone scalar on the last line (``Here you go:\n"morning"``).
Values written inside a ``<think>`` block come last.

The generator is lazy: the pipeline stops pulling candidates once it has one that no
later candidate can beat.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from operator import itemgetter

from .lexical.strict import SCAN_VALUE
from .lexical.tokens import open_stack
from .outcome import Candidate
from .rules import Rule

__all__ = ["Candidate", "candidates", "split_think"]


# The lookahead on the first letter is what the alternatives need anyway; it lets the
# engine turn away every other ``<`` at once (a case-insensitive alternation tried at
# each of a million ``<`` costs half a second).
_THINK_OPEN = re.compile(r"<(?=[tr])(think|thinking|thought|reasoning)>", re.IGNORECASE)
_THINK_CLOSE_ONLY = re.compile(r"</(?=[tr])(think|thinking|thought|reasoning)>", re.IGNORECASE)
# The last closing tag, found by backtracking from the end (not by listing them all).
_LAST_THINK_CLOSE = re.compile(
    r"(?s:.*)(?P<tag></(?=[tr])(?:think|thinking|thought|reasoning)>)", re.IGNORECASE
)
_SPACE = re.compile(r"\s*")
# The patterns here are on the standard library's engine, which is faster than `regex`
# on simple patterns and has less overhead per call. A fence's body is written as a loop that
# stops at the closing fence (one pattern per fence kind) rather than as a lazy ``.*?``
# checked against a backreference at every character: four times faster. The opening
# line is searched for only up to the text's last newline: past it no fence can open,
# and a search that reached the end of the text from every backtick there would be
# quadratic (a run of backticks).
_FENCE_OPEN = re.compile(r"```[^\n]*\n|~~~[^\n]*\n")
_FENCE_BODY = {
    "`": re.compile(r"[^`]*(?:`(?!``)[^`]*)*"),
    "~": re.compile(r"[^~]*(?:~(?!~~)[^~]*)*"),
}


def _fences(text: str) -> Iterator[tuple[int, str]]:
    """The start and body of each fenced block, closed or running to the end."""
    stop = text.rfind("\n") + 1
    pos = 0
    while True:
        opened = _FENCE_OPEN.search(text, pos, stop)
        if opened is None:
            return
        body = _FENCE_BODY[text[opened.start()]].match(text, opened.end())
        assert body is not None  # both patterns match the empty string
        yield body.start(), body.group()
        pos = body.end() + 3  # the closing fence, or past the end


# Tag pairs, closed or not: ``[CONTENT]…[/CONTENT]`` and ``<json>…</json>``. Two
# patterns, each starting with its own literal, which the engine finds at memchr speed;
# one pattern with both as alternatives tried every position (eight times slower).
_TAG_BRACKET = re.compile(
    r"\[(?P<name>[A-Z][A-Z_]*)\](?P<body>.*?)(?:\[/(?P=name)\]|\Z)", re.DOTALL | re.IGNORECASE
)
_TAG_ANGLE = re.compile(
    r"<(?=[joardcf])(?P<name>json|output|answer|result|response|data|content|final)>(?P<body>.*?)"
    r"(?:</(?P=name)>|\Z)",
    re.DOTALL | re.IGNORECASE,
)


def _tags(text: str) -> Iterator[re.Match[str]]:
    """Tag pairs in order of their start; one inside another's body is part of that body."""
    # Each pattern's next match is kept until the scan passes its start: searching both
    # again after every pair would rescan the text up to a far one each time (many
    # ``[A]x[/A]`` and one ``<json>`` at the end: quadratic).
    pos = 0
    bracket = _TAG_BRACKET.search(text)
    angle = _TAG_ANGLE.search(text)
    while bracket is not None or angle is not None:
        if bracket is not None and (angle is None or bracket.start() <= angle.start()):
            found = bracket
        else:
            assert angle is not None
            found = angle
        yield found
        pos = found.end()
        if bracket is not None and bracket.start() < pos:
            bracket = _TAG_BRACKET.search(text, pos)
        if angle is not None and angle.start() < pos:
            angle = _TAG_ANGLE.search(text, pos)


# Strings are consumed whole so brackets inside them do not count; an unterminated
# string runs to the end of the text. The string is written unrolled (no alternation
# inside the loop) and run on the standard library's engine, which skips positions that
# cannot start a match: together 2.3 times faster than the plain form on `regex`.
_STRUCTURE = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*(?:"|\Z)|[{}\[\]]', re.DOTALL)
_OPENERS = {"{": "}", "[": "]"}


@dataclass(frozen=True, slots=True)
class _Mapped:
    """Text cut and spliced from the reply, with the way back to offsets in the reply.

    ``runs`` holds ``(offset in text, offset in reply)`` for each stretch copied whole,
    in order; a stretch ends where the next begins (the last at the end of ``text``).
    """

    text: str
    runs: tuple[tuple[int, int], ...]

    @classmethod
    def of(cls, reply: str, start: int = 0, end: int | None = None) -> _Mapped:
        stop = len(reply) if end is None else end
        return cls(reply[start:stop], ((0, start),) if stop > start else ())

    def slice(self, start: int, end: int) -> _Mapped:
        runs = []
        for i, (at, origin) in enumerate(self.runs):
            run_end = self.runs[i + 1][0] if i + 1 < len(self.runs) else len(self.text)
            lo, hi = max(at, start), min(run_end, end)
            if lo < hi:
                runs.append((lo - start, origin + lo - at))
        return _Mapped(self.text[start:end], tuple(runs))

    def __add__(self, other: _Mapped) -> _Mapped:
        shift = len(self.text)
        return _Mapped(
            self.text + other.text, self.runs + tuple((at + shift, o) for at, o in other.runs)
        )

    def offset(self, start: int, length: int) -> int:
        """Where ``text[start:start + length]`` lies in the reply; -1 if it was spliced."""
        # The run holding ``start``, found by bisection: a reply with many reasoning
        # blocks has as many runs, and every candidate asks.
        i = bisect_right(self.runs, start, key=itemgetter(0)) - 1
        if i < 0:
            return -1
        at, origin = self.runs[i]
        run_end = self.runs[i + 1][0] if i + 1 < len(self.runs) else len(self.text)
        if start >= run_end:
            return -1
        return origin + start - at if start + length <= run_end else -1


def split_think(text: str) -> tuple[str, list[str]]:
    """Separate the answer from reasoning blocks.

    Returns:
        The text with every closed ``<think>…</think>`` block removed (or, when a closing
        tag appears without its opener, as chat templates that open the block themselves
        produce, everything after the last closing tag), and the reasoning texts.
    """
    body, thoughts = _split_think(text)
    return body.text, [t.text for t in thoughts]


def _split_think(text: str) -> tuple[_Mapped, list[_Mapped]]:
    """:func:`split_think`, keeping track of where each piece lies in ``text``."""
    thoughts: list[_Mapped] = []
    if "<" not in text or (
        _THINK_OPEN.search(text) is None and _THINK_CLOSE_ONLY.search(text) is None
    ):
        return _Mapped.of(text), thoughts
    # The text between the blocks, joined once (``+`` in a loop copies it each time).
    pieces: list[str] = []
    runs: list[tuple[int, int]] = []
    size = last = 0
    for start, end in _closed_thinks(text):
        if start > last:
            pieces.append(text[last:start])
            runs.append((size, last))
            size += start - last
        thoughts.append(_Mapped(text[start:end], ((0, start),)))
        last = end
    if last < len(text):
        pieces.append(text[last:])
        runs.append((size, last))
    body = _Mapped("".join(pieces), tuple(runs))
    closer = _LAST_THINK_CLOSE.match(body.text)
    if closer is not None:
        thoughts.append(body.slice(0, closer.start("tag")))
        body = body.slice(closer.end("tag"), len(body.text))
    opened = _THINK_OPEN.search(body.text)
    if opened is not None:
        # Unclosed: the reply was cut off while reasoning, or the model never closed it.
        # What follows the tag is all there is; keep it, minus the tag.
        thoughts.append(body.slice(opened.start(), len(body.text)))
        body = body.slice(0, opened.start()) + body.slice(opened.end(), len(body.text))
    return body, thoughts


def _closed_thinks(text: str) -> Iterator[tuple[int, int]]:
    """``(start, end)`` of each closed reasoning block, trailing whitespace included.

    The blocks ``<(think|…)>.*?</\\1>\\s*`` finds left to right, found in one pass
    (that pattern, retried at each of n unclosed openers, is quadratic): an opener ends
    at the first closer of its name after it; one with no such closer opens no block,
    and the search goes on at the next opener, for the names that still have a closer
    ahead (so a million unclosed openers cost one search, not a million).
    """
    first = _THINK_OPEN.search(text)
    if first is None:
        return
    closers: dict[str, list[tuple[int, int]]] = {}
    for match in _THINK_CLOSE_ONLY.finditer(text, first.end()):
        closers.setdefault(_tag_key(match.group(1)), []).append(match.span())
    seen = dict.fromkeys(closers, 0)  # per name, the closers already passed
    # The four names told apart by length; only those with a closer left are searched.
    openers = _THINK_OPENERS[frozenset(map(len, closers))] if closers else None
    pos = first.start()
    while openers is not None:
        opener = openers.search(text, pos)
        if opener is None:
            return
        pos = opener.end()
        key = _tag_key(opener.group(1))
        ours = closers.get(key)
        if ours is None:
            continue  # spelled unlike every closer left, as the backreference compares
        k = seen[key]
        while k < len(ours) and ours[k][0] < pos:
            k += 1
        seen[key] = k
        if k == len(ours):
            del closers[key]  # no closer of this name after it: unclosed, and so are the rest
            openers = _THINK_OPENERS[frozenset(map(len, closers))] if closers else None
            continue
        space = _SPACE.match(text, ours[k][1])
        assert space is not None  # ``\s*`` matches everywhere
        pos = space.end()
        yield opener.start(), pos


# How the engine compares a backreference under IGNORECASE: character by character,
# each lowered by its simple mapping (so "İ" is "i", but "ı" and "ſ" stay themselves).
_SIMPLE_LOWER = str.maketrans({"\u0130": "i", "\u212a": "k"})


def _tag_key(name: str) -> str:
    return name.lower() if name.isascii() else name.translate(_SIMPLE_LOWER).lower()


def _think_openers() -> dict[frozenset[int], re.Pattern[str]]:
    """An opening-tag pattern for each set of names (by length) still worth looking for."""
    names = {len(n): n for n in ("think", "thinking", "thought", "reasoning")}
    found: dict[frozenset[int], re.Pattern[str]] = {}
    for mask in range(1, 16):
        lengths = frozenset(length for i, length in enumerate(sorted(names)) if mask >> i & 1)
        words = "|".join(names[length] for length in sorted(lengths, key=_THINK_ORDER.index))
        first = "".join(sorted({names[length][0] for length in lengths}))
        found[lengths] = re.compile(rf"<(?=[{first}])({words})>", re.IGNORECASE)
    return found


_THINK_ORDER = (5, 8, 7, 9)  # the alternatives' order in the patterns above
_THINK_OPENERS = _think_openers()


def spans(text: str, *, limit: int = 64) -> Iterator[tuple[int, int, bool]]:
    """Top-level bracketed spans of ``text`` as ``(start, end, closed)``.

    A closer of the wrong kind ends the span it closes (``[1, 2}`` is one span), since
    a model that writes the wrong bracket still meant to end the value there.
    """
    depth = 0
    start = -1
    found = 0
    pos = 0
    while True:
        resume = -1
        for match in _STRUCTURE.finditer(text, pos):
            token = match.group()
            if token[0] == '"':
                continue
            if token in _OPENERS:
                if depth == 0:
                    start = match.start()
                    # Valid JSON from here (the usual value in prose): the C scanner finds
                    # its end at once, where the bracket walk below takes a Python step
                    # per string and bracket. It ends where that walk would.
                    end = _valid_end(text, start)
                    if end > 0:
                        yield start, end, True
                        found += 1
                        if found >= limit:
                            return
                        resume = end
                        break
                depth += 1
            elif depth > 0:
                depth -= 1
                if depth == 0:
                    yield start, match.end(), True
                    found += 1
                    if found >= limit:
                        return
        if resume < 0:
            break
        pos = resume
    if depth > 0:
        # An unclosed value runs to the end, but not into the fence that closes its block.
        end = len(text.rstrip())
        if text.endswith(("```", "~~~"), start, end):
            end = len(text[: end - 3].rstrip())
        yield start, end, False


def _valid_end(text: str, start: int) -> int:
    """Where the valid JSON value starting at ``start`` ends, or -1 if it is not one."""
    try:
        return int(SCAN_VALUE(text, start)[1])
    except (StopIteration, ValueError, RecursionError):
        return -1


def candidates(
    text: str,
    *,
    limit: int = 16,
    worth: Callable[[str], bool] | None = None,
    loose_scalars: bool = False,
    several: bool = False,
) -> Iterator[Candidate]:
    """Candidate JSON texts in ``text``, best first, without duplicates.

    Args:
        text: the model's reply.
        limit: the most candidates to yield.
        worth: asked with a rule name (``"fenced_block"``, ``"json_span"``,
            ``"scalar_line"``, ``"inside_think"``) before that group of candidates is
            searched for; when it answers False the search stops, so a caller that already
            holds a result no later candidate can beat pays for no more scanning.
        loose_scalars: also take a quoted string after a colon at the end of the reply
            (``The word is: "morning"``), for a schema whose root is a string. Without it
            a scalar counts only alone on the last non-empty line, so prose never
            becomes a value.
        several: the schema's root is an array: several complete values one after
            another (one per line, or between prose) are also offered as one array of
            all of them, in order (``joined_values``), before the values one by one.
    """

    def go_on(rule: str) -> bool:
        return worth is None or worth(rule)

    seen: set[str] = set()
    count = 0

    def fresh(cand: Candidate) -> bool:
        nonlocal count
        key = cand.text.strip()
        if not key or key in seen or count >= limit:
            return False
        seen.add(key)
        count += 1
        return True

    mapped, thoughts = _split_think(text)
    body = mapped.text
    whole_rule = Rule.THINK_BLOCK if thoughts else "whole"
    stripped = body.strip()
    lead = len(body) - len(body.lstrip())
    note = " ".join(t.text.strip() for t in thoughts)
    first = Candidate(stripped, whole_rule, mapped.offset(lead, len(stripped)), 0, note)
    if fresh(first):
        yield first

    rank = 1
    if not go_on(Rule.FENCED_BLOCK):
        return
    for at, found, rule in _blocks(body):
        if count >= limit:
            return  # nothing more can be yielded
        if found.strip() not in seen:  # many copies of one block cost a lookup each
            cand = Candidate(found, rule, mapped.offset(at, len(found)), rank)
            if fresh(cand):
                yield cand
        rank += 1

    if not go_on(Rule.JSON_SPAN):
        return
    if several:
        joined = _joined_values(mapped, rank)
        if joined is not None and fresh(joined):
            yield joined
        rank += 1
    for cand in _span_candidates(mapped, rank, Rule.JSON_SPAN, Rule.UNCLOSED_SPAN):
        if fresh(cand):
            yield cand
        rank += 1

    if not go_on(Rule.SCALAR_LINE):
        return
    scalar = _scalar_line(mapped, rank, loose_scalars)
    if scalar is not None and fresh(scalar):
        yield scalar
    rank += 1

    if thoughts and not go_on(Rule.INSIDE_THINK):
        return
    for thought in thoughts:
        if count >= limit:
            return  # nothing more can be yielded; many blocks would each be scanned
        for cand in _span_candidates(thought, rank, Rule.INSIDE_THINK, Rule.INSIDE_THINK):
            if fresh(cand):
                yield cand
            rank += 1


#: Most values joined into one array (a longer reply is more than a list of answers).
_MAX_JOINED = 10_000


def _joined_values(mapped: _Mapped, rank: int) -> Candidate | None:
    """Two or more complete top-level values as one JSON array text, or ``None``."""
    text = mapped.text
    found: list[tuple[int, int]] = []
    for start, end, closed in spans(text):
        if not closed or len(found) >= _MAX_JOINED:
            return None
        found.append((start, end))
    if len(found) < 2:
        return None
    joined = "[" + ", ".join(text[start:end] for start, end in found) + "]"
    first, last = found[0][0], found[-1][1]
    return Candidate(joined, Rule.JOINED_VALUES, mapped.offset(first, last - first), rank)


def _blocks(body: str) -> Iterator[tuple[int, str, str]]:
    """``(start, text, rule)`` of each fenced block, then of each tag pair."""
    for at, found in _fences(body):
        yield at, found, Rule.FENCED_BLOCK
    if "[" in body or "<" in body:
        for match in _tags(body):
            yield match.start("body"), match.group("body"), Rule.TAGGED_BLOCK


def _span_candidates(
    mapped: _Mapped, rank: int, closed_rule: str, open_rule: str
) -> Iterator[Candidate]:
    text = mapped.text
    first_open = -1
    last_close = -1
    n_spans = 0
    all_closed = True
    for start, end, closed in spans(text):
        if first_open < 0:
            first_open = start
        n_spans += 1
        all_closed = all_closed and closed
        rule = closed_rule if closed else open_rule
        yield Candidate(text[start:end], rule, mapped.offset(start, end - start), rank)
        rank += 1
    if first_open < 0:
        return
    last_close = max(text.rfind("}"), text.rfind("]"))
    # From the first opener to the last closer: for several values that are really one
    # (a stray quote split them) and for a span an unescaped quote left open.
    # Not when a value opens after the last closer, or more members follow it: that is a
    # reply cut off mid-value or missing its closer, and stopping at the closer would
    # silently drop what follows it.
    tail = text[last_close + 1 :]
    tail_opens = "{" in tail or "[" in tail
    goes_on = _MORE_MEMBERS.match(tail) is not None
    if last_close > first_open and not goes_on and (n_spans > 1 or not (all_closed or tail_opens)):
        rule = Rule.GREEDY_SPAN if closed_rule == Rule.JSON_SPAN else closed_rule
        end = last_close + 1
        found = text[first_open:end]
        yield Candidate(found, rule, mapped.offset(first_open, end - first_open), rank)


# A comma and the start of another member or element (``, "b": 1``, ``, 3``, ``, b: 1``).
_MORE_MEMBERS = re.compile(
    r"""\s*,\s*(?:["'\d-]|(?:true|false|null)\b|[A-Za-z_$][\w$.-]*[ \t]*:)"""
)
# A JSON string, number or literal that fills a line; or, for a schema that wants a
# string, a JSON string after a colon at the end of a line of prose.
_SCALAR_LINE = re.compile(
    r'[ \t]*(?P<value>"(?:[^"\\\x00-\x1f]|\\.)*"'
    r"|-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][-+]?\d+)?|true|false|null)[ \t]*"
)
_AFTER_COLON = re.compile(r'[^\n]*:[ \t]*(?P<value>"(?:[^"\\\x00-\x1f]|\\.)*")[ \t]*[.!]?[ \t]*')


def _scalar_line(mapped: _Mapped, rank: int, loose: bool) -> Candidate | None:
    """A top-level scalar on the last non-empty line of the reply, or ``None``."""
    text = mapped.text.rstrip()
    line_start = text.rfind("\n") + 1
    found = _SCALAR_LINE.fullmatch(text, line_start)
    if found is None and loose:
        found = _AFTER_COLON.fullmatch(text, line_start)
    if found is None:
        return None
    if line_start and open_stack(text, line_start):
        # The line is inside a container the reply left open (``[\n1,\n2`` cut off):
        # a member of that value, not a value of its own.
        return None
    value = found.group("value")
    start = mapped.offset(found.start("value"), len(value))
    return Candidate(value, Rule.SCALAR_LINE, start, rank)
