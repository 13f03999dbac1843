"""The incremental parser's total work is linear in the reply, snapshots included.

Used as documented (feed chunks; take a snapshot whenever ``feed`` says one is due),
the work was quadratic in several ways: the buffer was copied at every chunk, leading
whitespace stripped again at every chunk, a number touching the end matched again from
its start at every chunk, and every snapshot copied the whole open path (a wide list,
a deep nest). These tests bound each, by counting where they can; and check that a
snapshot never changes afterwards.
"""

from __future__ import annotations

import copy
import itertools
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from repairllm.bench.adversarial import growth
from repairllm.lexical import incremental
from repairllm.lexical.errors import LexicalError
from repairllm.lexical.incremental import IncrementalParser


def feed_all(text: str, chunk: int = 4) -> tuple[IncrementalParser, list[Any]]:
    """Feed ``text`` in chunks; the snapshots taken whenever one was due."""
    parser = IncrementalParser()
    snapshots = []
    for i in range(0, len(text), chunk):
        if parser.feed(text[i : i + chunk]):
            snapshots.append(parser.snapshot())
    if parser.close():
        snapshots.append(parser.snapshot())
    return parser, snapshots


# A container costs as much to copy as this many members (a Python step, not a C one).
FRAME = 32


def path_cost(value: Any, depth: int) -> int:
    """What copying the open path of a snapshot costs: the ``depth`` open containers
    along its last members, each as its members plus ``FRAME``."""
    cost = 0
    for _ in range(depth):
        cost += len(value) + FRAME
        if not value:
            break
        value = list(value.values())[-1] if isinstance(value, dict) else value[-1]
    return cost


def feed_counting(text: str, chunk: int = 4) -> tuple[IncrementalParser, int, int]:
    """Feed ``text`` in chunks, a snapshot whenever one is due: the parser, how many
    snapshots were due, and what copying their open paths cost in all."""
    parser = IncrementalParser()
    due = copied = 0
    for i in range(0, len(text), chunk):
        if parser.feed(text[i : i + chunk]):
            due += 1
            copied += path_cost(parser.snapshot(), len(parser._stack))
    return parser, due, copied


DOCS = {
    "wide_list": "[" + "1," * 40_000 + "1]",
    "wide_object": "{" + ",".join(f'"k{i}": [{i}]' for i in range(10_000)) + "}",
    "deep_objects": '{"a":' * 400 + "1" + "}" * 400,
    "deep_members": '{"k":1,"a":' * 400 + "1" + "}" * 400,
    "deep_lists": "[1," * 400 + "1" + "]" * 400,
}


@pytest.mark.parametrize("name", DOCS)
def test_snapshots_cost_linear_time_in_all(name: str) -> None:
    text = DOCS[name]
    parser, due, copied = feed_counting(text)
    assert parser.complete
    # Every completed member was a snapshot before: the whole path copied at each, for
    # a work of order n squared (a 40,000-element list: 800 million members copied).
    # Now one is due only while the value is small (256) or at most twice the text read
    # since the last.
    assert copied <= 2 * len(text) + 300 * due
    assert due < len(text) / 20


@pytest.mark.parametrize("name", DOCS)
def test_the_last_snapshot_is_the_value(name: str) -> None:
    import json

    _, snapshots = feed_all(DOCS[name], chunk=7)
    assert snapshots[-1] == json.loads(DOCS[name])


@pytest.mark.parametrize(
    "text",
    [
        pytest.param(
            '{"a": [1, {"b": "x"}, [2, 3]], "c": {"d": [true, null]}, "e": 5}', id="mixed"
        ),
        pytest.param(
            "[" + ",".join(f'{{"i": {i}, "v": [{i}]}}' for i in range(300)) + "]", id="wide"
        ),
        pytest.param('{"a":' * 200 + "[1, 2]" + "}" * 200, id="deep"),
    ],
)
def test_a_snapshot_never_changes_afterwards(text: str) -> None:
    parser = IncrementalParser()
    taken = []
    for i in range(0, len(text), 3):
        if parser.feed(text[i : i + 3]):
            snapshot = parser.snapshot()
            taken.append((snapshot, copy.deepcopy(snapshot)))
    parser.close()
    assert len(taken) > 2
    for snapshot, then in taken:
        assert snapshot == then


def test_nothing_completed_gives_the_same_snapshot() -> None:
    parser = IncrementalParser()
    assert parser.feed('{"a": [1, 2')
    assert parser.snapshot() == {"a": [1]}  # 2 may still grow
    assert parser.feed(" ")
    first = parser.snapshot()
    assert first == {"a": [1, 2]}
    assert not parser.feed("  ")
    assert parser.snapshot() is first
    assert not parser.feed("]")  # a closer shows nothing new
    assert parser.snapshot() is first
    assert parser.feed(', "b": 3}')
    assert parser.snapshot() == {"a": [1, 2], "b": 3} != first


def test_small_values_get_a_snapshot_per_member() -> None:
    parser = IncrementalParser()
    due = [parser.feed(part) for part in ['{"a": 1', ", ", '"b": [tr', "ue", "]", ", ", '"c": 3}']]
    assert due == [False, True, True, False, True, False, True]
    assert parser.complete


def test_completion_is_always_due() -> None:
    text = "[" + "1," * 20_000 + "1]"
    parser = IncrementalParser()
    results = [parser.feed(text[i : i + 4]) for i in range(0, len(text), 4)]
    assert results[-1] is True  # what a caller stopping there reads
    assert parser.complete
    assert sum(results) < len(results) / 10  # paced: not one per element


class _CountingMatch:
    def __init__(self, pattern: Any) -> None:
        self.pattern = pattern
        self.starts: list[int] = []

    def match(self, text: str, pos: int = 0) -> Any:
        self.starts.append(pos)
        return self.pattern.match(text, pos)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.pattern, name)


def test_a_growing_number_is_matched_again_only_when_it_ends(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    token = _CountingMatch(incremental._TOKEN)
    monkeypatch.setattr(incremental, "_TOKEN", token)
    parser = IncrementalParser()
    parser.feed("[")
    for _ in range(800):
        parser.feed("12345")
    parser.feed("]")
    assert parser.snapshot() == [int("12345" * 800)]
    # Before it began, when it first reached the end, when it ended: not once a chunk.
    assert token.starts.count(1) <= 3


def test_a_growing_decimal_tail_is_not_sliced_again(monkeypatch: pytest.MonkeyPatch) -> None:
    token = _CountingMatch(incremental._TOKEN)
    monkeypatch.setattr(incremental, "_TOKEN", token)
    parser = IncrementalParser()
    parser.feed("[.")  # not JSON yet, but may become a number
    for _ in range(2_000):
        parser.feed("5")
    assert token.starts.count(1) <= 1


@pytest.mark.parametrize(
    "build",
    [
        pytest.param(lambda n: '{"a": "' + "x" * n + '"}', id="long-string"),
        pytest.param(lambda n: " " * n + "[1]", id="leading-spaces"),
    ],
)
def test_feeding_grows_linearly(build: Any) -> None:
    # Copying the buffer (or stripping it) at each 4-character chunk was quadratic:
    # for 100,000 characters a hundred times the cost of 10,000.
    def go(n: int) -> Any:
        text = build(n)
        return lambda: feed_all(text)

    measured = growth(go(10_000), go(100_000), 10, 15)
    assert measured.ratio <= 15, measured


def test_nesting_past_the_lexical_limit_leaves_strict_reading() -> None:
    # 500 levels are read as JSON; the 501st opener hands over to the fallback, which
    # only follows brackets, instead of building a structure no repair will accept.
    limit = incremental._PARTIAL_POLICY.max_depth
    within = IncrementalParser()
    within.feed("[" * limit)
    assert not within.fallback
    past = IncrementalParser()
    past.feed("[" * (limit + 1))
    assert past.fallback
    past.feed("]" * (limit + 1))
    assert past.close()
    assert past.end == 2 * (limit + 1)


class _Counting(IncrementalParser):
    """Counts the fallback's repairs, which succeed or fail as told."""

    def __init__(self, fail: bool) -> None:
        super().__init__()
        self.fail = fail
        self.repairs: list[int] = []

    def _repair(self, text: str) -> Any:
        self.repairs.append(len(text))
        if self.fail:
            raise LexicalError("no")
        return super()._repair(text)


@pytest.mark.parametrize("fail", [False, True])
def test_failed_fallback_repairs_wait_for_ever_more_text(fail: bool) -> None:
    parser = _Counting(fail)
    text = "[" + "{a: 1}, " * 20_000
    for i in range(0, len(text), 64):
        if parser.feed(text[i : i + 64]):
            parser.snapshot()
    assert parser.fallback
    lengths = parser.repairs
    growth = [b / a for a, b in itertools.pairwise(lengths)]
    assert len(lengths) >= 3
    if not fail:
        assert min(growth) >= 2
    else:  # four times, then eight, then sixteen
        assert all(g >= w for g, w in zip(growth, (4, 8, 16, 16), strict=False))


def _brackets_one_by_one(text: str) -> int | None:
    """Where the fallback's bracket count ends the value, a character at a time."""
    depth, quote, escape = 0, "", False
    for i, ch in enumerate(text):
        if quote:
            if escape:
                escape = False
            elif ch == "\\":
                escape = True
            elif ch == quote or (ch == "\n" and quote == "'"):
                quote = ""
        elif ch in "\"'":
            quote = ch
        elif ch in "{[":
            depth += 1
        elif ch in "}]":
            depth -= 1
            if depth <= 0:
                return i + 1
    return None


@settings(max_examples=300, deadline=None)
@given(
    st.text(alphabet="{}[]\"'\\\nab :,", max_size=60),
    st.lists(st.integers(0, 100), max_size=8),
)
def test_the_fallback_finds_the_end_where_a_character_at_a_time_does(
    body: str, cuts: list[int]
) -> None:
    text = "{a: " + body  # not strict JSON: the parser is in its fallback at once
    parser = IncrementalParser()
    points = sorted({c % (len(text) + 1) for c in cuts} | {0, len(text)})
    for a, b in itertools.pairwise(points):
        parser.feed(text[a:b])
    assert parser.fallback
    assert parser.end == _brackets_one_by_one(text)
