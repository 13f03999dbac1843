"""Stage 1: find the text that may hold the JSON value in a model's reply.

:func:`candidates` yields :class:`Candidate` spans of the reply, best first: the reply
itself (after any ``<think>`` block), fenced code blocks (closed, unclosed, any
language tag), ``[CONTENT]…[/CONTENT]``-style and ``<json>…</json>``-style tag pairs,
every top-level balanced ``{…}``/``[…]`` span (several values in one reply give several
candidates), a span from the first opener to the last closer (for replies whose inner
quotes confuse a balanced scan), and an unclosed span that runs to the end (a reply cut
off by the token limit). Values written inside a ``<think>`` block come last.

The generator is lazy: the pipeline stops pulling candidates once it has one that no
later candidate can beat.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import regex

__all__ = ["Candidate", "candidates", "split_think"]


@dataclass(frozen=True, slots=True)
class Candidate:
    """A piece of the reply that may hold the JSON value.

    Attributes:
        text: the candidate text.
        rule: how it was found (``"whole"``, ``"fenced_block"``, ``"json_span"`` …).
        start: offset of ``text`` in the reply (``-1`` when not a plain slice).
        rank: position in the order candidates were found; lower is preferred on ties.
        note: what the extraction dropped, for the ledger.
    """

    text: str
    rule: str
    start: int
    rank: int = 0
    note: str = ""


_THINK_OPEN = regex.compile(r"<(think|thinking|thought|reasoning)>", regex.IGNORECASE)
_THINK_CLOSED = regex.compile(
    r"<(think|thinking|thought|reasoning)>.*?</\1>\s*", regex.IGNORECASE | regex.DOTALL
)
_THINK_CLOSE_ONLY = regex.compile(r"</(think|thinking|thought|reasoning)>", regex.IGNORECASE)
_FENCE = regex.compile(
    r"(?P<fence>```|~~~)[ \t]*(?P<lang>[\w.+-]*)[^\n]*\n(?P<body>.*?)(?:(?P=fence)|\Z)",
    regex.DOTALL,
)
_TAG = regex.compile(
    r"\[(?P<name>[A-Z][A-Z_]*)\](?P<body>.*?)(?:\[/(?P=name)\]|\Z)"
    r"|<(?P<xname>json|output|answer|result|response|data|content|final)>(?P<xbody>.*?)"
    r"(?:</(?P=xname)>|\Z)",
    regex.DOTALL | regex.IGNORECASE,
)
# Strings are consumed whole so brackets inside them do not count; an unterminated
# string runs to the end of the text.
_STRUCTURE = regex.compile(r'"(?:[^"\\]|\\.)*(?:"|\Z)|[{}\[\]]', regex.DOTALL)
_OPENERS = {"{": "}", "[": "]"}


def split_think(text: str) -> tuple[str, list[str]]:
    """Separate the answer from reasoning blocks.

    Returns:
        The text with every closed ``<think>…</think>`` block removed (or, when a closing
        tag appears without its opener, as chat templates that open the block themselves
        produce, everything after the last closing tag), and the reasoning texts.
    """
    thoughts: list[str] = []
    if _THINK_OPEN.search(text) is None and _THINK_CLOSE_ONLY.search(text) is None:
        return text, thoughts

    def keep(match: regex.Match[str]) -> str:
        thoughts.append(match.group(0))
        return ""

    body = _THINK_CLOSED.sub(keep, text)
    closers = list(_THINK_CLOSE_ONLY.finditer(body))
    if closers:
        thoughts.append(body[: closers[-1].start()])
        body = body[closers[-1].end() :]
    opened = _THINK_OPEN.search(body)
    if opened is not None:
        # Unclosed: the reply was cut off while reasoning, or the model never closed it.
        # What follows the tag is all there is; keep it, minus the tag.
        thoughts.append(body[opened.start() :])
        body = body[: opened.start()] + body[opened.end() :]
    return body, thoughts


def spans(text: str, *, limit: int = 64) -> Iterator[tuple[int, int, bool]]:
    """Top-level bracketed spans of ``text`` as ``(start, end, closed)``.

    A closer of the wrong kind ends the span it closes (``[1, 2}`` is one span), since
    a model that writes the wrong bracket still meant to end the value there.
    """
    depth = 0
    start = -1
    found = 0
    for match in _STRUCTURE.finditer(text):
        token = match.group()
        if token[0] == '"':
            continue
        if token in _OPENERS:
            if depth == 0:
                start = match.start()
            depth += 1
        elif depth > 0:
            depth -= 1
            if depth == 0:
                yield start, match.end(), True
                found += 1
                if found >= limit:
                    return
    if depth > 0:
        yield start, len(text), False


def candidates(
    text: str, *, limit: int = 16, worth: Callable[[str], bool] | None = None
) -> Iterator[Candidate]:
    """Candidate JSON texts in ``text``, best first, without duplicates.

    Args:
        text: the model's reply.
        limit: the most candidates to yield.
        worth: asked with a rule name (``"fenced_block"``, ``"json_span"``,
            ``"inside_think"``) before that group of candidates is searched for; when it
            answers False the search stops, so a caller that already holds a result no
            later candidate can beat pays for no more scanning.
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

    body, thoughts = split_think(text)
    whole_rule = "think_block" if thoughts else "whole"
    first = Candidate(body.strip(), whole_rule, -1 if thoughts else 0, 0)
    if fresh(first):
        yield first

    rank = 1
    if not go_on("fenced_block"):
        return
    blocks: list[Candidate] = []
    for match in _FENCE.finditer(body):
        blocks.append(Candidate(match.group("body"), "fenced_block", match.start("body"), rank))
        rank += 1
    if "[" in body or "<" in body:
        for match in _TAG.finditer(body):
            group = "body" if match.group("body") is not None else "xbody"
            blocks.append(Candidate(match.group(group), "tagged_block", match.start(group), rank))
            rank += 1
    for cand in blocks:
        if fresh(cand):
            yield cand

    if not go_on("json_span"):
        return
    for cand in _span_candidates(body, rank, "json_span", "unclosed_span"):
        if fresh(cand):
            yield cand
        rank += 1

    if thoughts and not go_on("inside_think"):
        return
    for thought in thoughts:
        for cand in _span_candidates(thought, rank, "inside_think", "inside_think"):
            if fresh(cand):
                yield cand
            rank += 1


def _span_candidates(text: str, rank: int, closed_rule: str, open_rule: str) -> Iterator[Candidate]:
    first_open = -1
    last_close = -1
    n_spans = 0
    all_closed = True
    for start, end, closed in spans(text):
        if first_open < 0:
            first_open = start
        n_spans += 1
        all_closed = all_closed and closed
        yield Candidate(text[start:end], closed_rule if closed else open_rule, start, rank)
        rank += 1
    if first_open < 0:
        return
    last_close = max(text.rfind("}"), text.rfind("]"))
    # From the first opener to the last closer: for several values that are really one
    # (a stray quote split them) and for a span an unescaped quote left open.
    # Not when a value opens after the last closer: that is a reply cut off mid-value,
    # and stopping at the closer would silently drop what follows it.
    tail_opens = "{" in text[last_close + 1 :] or "[" in text[last_close + 1 :]
    if last_close > first_open and (n_spans > 1 or not (all_closed or tail_opens)):
        rule = "greedy_span" if closed_rule == "json_span" else closed_rule
        yield Candidate(text[first_open : last_close + 1], rule, first_open, rank)
