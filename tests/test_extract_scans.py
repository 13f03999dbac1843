"""The extract stage's scans: linear, and finding what the patterns they replace found.

``<think>`` blocks, fences and tag pairs were found with regular expressions that are
quadratic on some inputs (a lazy ``.*?`` retried at each of n unclosed openers, an
opening fence line searched to the end from each of n backticks, the second tag pattern
searched again after every pair of the first). The scans that replaced them are checked
here against those expressions, as the specification, on random texts made of the
pieces that matter; their growth is timed in ``tests/bench/test_adversarial.py``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import repairllm
from repairllm import extract

# -- the specification ----------------------------------------------------------------

SPEC_THINK = re.compile(r"<(think|thinking|thought|reasoning)>.*?</\1>\s*", re.I | re.S)
SPEC_FENCE = re.compile(
    r"```[ \t]*[\w.+-]*[^\n]*\n(?P<body>[^`]*(?:`(?!``)[^`]*)*)(?:```|\Z)"
    r"|~~~[ \t]*[\w.+-]*[^\n]*\n(?P<tbody>[^~]*(?:~(?!~~)[^~]*)*)(?:~~~|\Z)"
)
SPEC_BRACKET = re.compile(
    r"\[(?P<name>[A-Z][A-Z_]*)\](?P<body>.*?)(?:\[/(?P=name)\]|\Z)", re.S | re.I
)
SPEC_ANGLE = re.compile(
    r"<(?P<name>json|output|answer|result|response|data|content|final)>(?P<body>.*?)"
    r"(?:</(?P=name)>|\Z)",
    re.S | re.I,
)


def spec_fences(text: str) -> list[tuple[int, str]]:
    found = []
    for m in SPEC_FENCE.finditer(text):
        group = "body" if m.group("body") is not None else "tbody"
        found.append((m.start(group), m.group(group)))
    return found


def spec_tags(text: str) -> Iterator[tuple[int, str]]:
    pos = 0
    while True:
        bracket = SPEC_BRACKET.search(text, pos)
        angle = SPEC_ANGLE.search(text, pos)
        if bracket is None or (angle is not None and angle.start() < bracket.start()):
            if angle is None:
                return
            bracket = angle
        yield bracket.start("body"), bracket.group("body")
        pos = bracket.end()


PIECES = [
    *("<think>", "</think>", "<THINK>", "</Think>", "<thinking>", "</thinking>"),
    *("<thought>", "</thought>", "<reasoning>", "</REASONING>"),
    # Letters the engine folds to ASCII in a literal but not in a backreference.
    *("<rea\u017foning>", "<thin\u212a>", "</th\u0131nk>", "</TH\u0130NK>"),
    *("```", "```json\n", "~~~", "~~~\n", "`", "``", "~"),
    *("[A]", "[/A]", "[CONTENT]", "[/content]", "<json>", "</JSON>", "<answer>", "[", "<"),
    *(" ", "\n", "\t", "\u2003", "x", "{", "}", "]", '"', "1", ",", ":"),
]
TEXTS = st.lists(st.sampled_from(PIECES), max_size=16).map("".join)


@given(TEXTS)
@settings(max_examples=400, deadline=None)
def test_think_blocks_are_those_of_the_lazy_pattern(text: str) -> None:
    assert list(extract._closed_thinks(text)) == [m.span() for m in SPEC_THINK.finditer(text)]


@given(TEXTS)
@settings(max_examples=400, deadline=None)
def test_fences_are_those_of_the_pattern(text: str) -> None:
    assert list(extract._fences(text)) == spec_fences(text)


@given(TEXTS)
@settings(max_examples=400, deadline=None)
def test_tag_pairs_are_those_of_two_searches_per_pair(text: str) -> None:
    found = [(m.start("body"), m.group("body")) for m in extract._tags(text)]
    assert found == list(spec_tags(text))


@pytest.mark.parametrize(
    ("text", "body", "thoughts"),
    [
        pytest.param("<think>a</think>\n{}", "{}", ["<think>a</think>\n"], id="closed"),
        pytest.param(
            "<think>" * 3 + "x", "<think><think>x", ["<think><think><think>x"], id="unclosed"
        ),
        pytest.param("<think>a</reasoning>b", "b", ["<think>a"], id="other-closer"),
        pytest.param(
            "<reasoning>a</think><reasoning>b</reasoning>c",
            "c",
            ["<reasoning>a</think><reasoning>b</reasoning>"],
            id="first-closer-of-its-name",
        ),
        pytest.param("<thin\u212a>a</think>b", "b", ["<thin\u212a>a</think>"], id="kelvin-sign"),
        pytest.param(
            "<rea\u017foning>a</reasoning>b",
            "b",
            ["<rea\u017foning>a"],
            id="long-s-is-no-s-in-a-backreference",
        ),
    ],
)
def test_split_think(text: str, body: str, thoughts: list[str]) -> None:
    assert extract.split_think(text) == (body, thoughts)


# -- bounds on the work ---------------------------------------------------------------


class _Counting:
    """A compiled pattern that counts its searches."""

    def __init__(self, pattern: re.Pattern[str]) -> None:
        self.pattern = pattern
        self.searches = 0

    def search(self, *args: Any) -> Any:
        self.searches += 1
        return self.pattern.search(*args)


def test_a_far_tag_is_searched_for_once(monkeypatch: pytest.MonkeyPatch) -> None:
    angle = _Counting(extract._TAG_ANGLE)
    monkeypatch.setattr(extract, "_TAG_ANGLE", angle)
    text = "[A]x[/A]" * 2_000 + '<json>{"a": 1}</json>'
    pairs = list(extract._tags(text))
    assert len(pairs) == 2_001
    assert angle.searches <= 2  # one per pair was quadratic: each scanned to the end


def test_unclosed_think_tags_cost_one_opener_search(monkeypatch: pytest.MonkeyPatch) -> None:
    patterns = {k: _Counting(p) for k, p in extract._THINK_OPENERS.items()}
    monkeypatch.setattr(extract, "_THINK_OPENERS", patterns)
    text = "<think>" * 20_000 + "</reasoning>"
    assert list(extract._closed_thinks(text)) == []
    assert sum(p.searches for p in patterns.values()) <= 2


def test_copies_of_one_tag_pair_are_one_candidate() -> None:
    text = "[A]x[/A]" * 5_000 + '<json>{"a": 1}</json>'
    assert repairllm.repair(text) == {"a": 1}
    rules = [c.rule for c in extract.candidates(text)]
    assert rules.count("tagged_block") == 2  # "x" once, then the JSON


def test_a_reply_of_many_think_blocks_is_read() -> None:
    text = "<think>x</think>" * 10_000 + '{"a": 1}'
    body, thoughts = extract.split_think(text)
    assert body == '{"a": 1}'
    assert len(thoughts) == 10_000
    assert repairllm.repair(text) == {"a": 1}
