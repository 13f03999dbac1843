"""The incremental parser and stream(): prefixes, chunking invariance, fallback."""

from __future__ import annotations

import asyncio
import itertools
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import BaseModel

import repairllm as rl
from repairllm.backend import Backend, ChatOptions, Chunk, Completion, Message, Usage
from repairllm.stream import IncrementalParser, parse_chunks

SCHEMAS = Path(__file__).resolve().parent.parent / "schemas"

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(10**12), 10**12) | st.text(max_size=12),
    lambda kids: (
        st.lists(kids, max_size=4) | st.dictionaries(st.text(max_size=6), kids, max_size=4)
    ),
    max_leaves=20,
)
roots = st.dictionaries(st.text(max_size=6), json_values, max_size=5) | st.lists(
    json_values, max_size=5
)


def is_prefix(partial: Any, final: Any) -> bool:
    """Whether ``partial`` could be an earlier state of ``final`` (members only grow)."""
    if isinstance(partial, dict):
        return isinstance(final, dict) and all(
            k in final and is_prefix(v, final[k]) for k, v in partial.items()
        )
    if isinstance(partial, list):
        return (
            isinstance(final, list)
            and len(partial) <= len(final)
            and all(is_prefix(p, f) for p, f in zip(partial, final, strict=False))
        )
    return bool(partial == final)


def chunked(text: str, cuts: list[int]) -> list[str]:
    points = sorted({c % (len(text) + 1) for c in cuts} | {0, len(text)})
    return [text[a:b] for a, b in itertools.pairwise(points)]


@settings(max_examples=150, deadline=None)
@given(value=roots, cuts=st.lists(st.integers(0, 10_000), max_size=30), pretty=st.booleans())
def test_any_chunking_gives_the_same_final_value_and_prefix_partials(
    value: Any, cuts: list[int], pretty: bool
) -> None:
    text = json.dumps(value, indent=2 if pretty else None, ensure_ascii=False)
    steps = parse_chunks(chunked(f"Here you go:\n```json\n{text}\n```", cuts))
    assert steps[-1].done
    assert steps[-1].value == value
    for step in steps[:-1]:
        assert not step.done
        assert is_prefix(step.value, value), (step.value, value)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('{"a": 1}', {"a": 1}),
        ("[1, 2.5, -3e2, true, false, null]", [1, 2.5, -300.0, True, False, None]),
        ('{"s": "q\\"uote \\\\ \\u00e9", "n": {"m": []}}', {"s": 'q"uote \\ é', "n": {"m": []}}),
        ('<think>maybe {"no": 1}</think>{"yes": 2}', {"yes": 2}),
        ('Sure:\n```json\n{"k": "v"}\n```\nDone.', {"k": "v"}),
    ],
    ids=["object", "scalars", "escapes", "think", "fence"],
)
def test_one_char_chunks(text: str, expected: Any) -> None:
    parser = IncrementalParser()
    for ch in text:
        parser.feed(ch)
    parser.close()
    assert parser.complete
    assert not parser.fallback
    assert parser.snapshot() == expected


def test_numbers_and_words_wait_for_their_end() -> None:
    parser = IncrementalParser()
    parser.feed('{"n": 12')
    assert parser.snapshot() == {}
    parser.feed("34, ")
    assert parser.snapshot() == {"n": 1234}
    parser.feed('"b": fa')
    assert parser.snapshot() == {"n": 1234}
    parser.feed("lse}")
    assert parser.snapshot() == {"n": 1234, "b": False}


def test_snapshots_are_independent_of_later_feeding() -> None:
    parser = IncrementalParser()
    parser.feed('{"xs": [1, 2')
    first = parser.snapshot()
    parser.feed(", 3]}")
    assert first == {"xs": [1]}
    assert parser.snapshot() == {"xs": [1, 2, 3]}


def test_non_strict_text_falls_back_to_repair() -> None:
    steps = parse_chunks(["{'a': 1, 'b': [1,", " 2], c: True,", " 'd': 'x'}"])
    assert steps[-1].value == {"a": 1, "b": [1, 2], "c": True, "d": "x"}
    assert any(not s.done for s in steps)


def test_trailing_comma_is_a_syntax_error_then_repaired() -> None:
    parser = IncrementalParser()
    parser.feed("[1, 2,]")
    assert parser.fallback
    parser.close()
    assert parser.snapshot() == [1, 2]


def test_long_string_is_scanned_once() -> None:
    parser = IncrementalParser()
    parser.feed('{"s": "')
    for _ in range(2000):
        parser.feed("ab\\")
        parser.feed('"')
    parser.feed('"}')
    parser.close()
    assert parser.snapshot() == {"s": 'ab"' * 2000}
    assert parser._string_scan > 0  # the resume point moved along the string


class Movie(BaseModel):
    title: str
    year: int
    genres: list[str]


class Streaming(Backend):
    name = "streaming"

    def __init__(self, text: str, size: int = 3) -> None:
        self.text = text
        self.size = size
        self.requests: list[ChatOptions] = []

    def _chat(self, messages: list[Message], options: ChatOptions) -> Completion:
        return Completion(self.text)

    def _stream(self, messages: list[Message], options: ChatOptions) -> Iterator[Chunk]:
        self.requests.append(options)
        for i in range(0, len(self.text), self.size):
            yield Chunk(self.text[i : i + self.size])
        yield Chunk("", "stop", Usage(10, 20))


def test_stream_aligns_partials_and_validates_the_end() -> None:
    reply = 'OK: {"Title": "Heat", "Year": "1995", "genres": ["crime", "drama"]}'
    steps = list(rl.stream(Streaming(reply), "Heat, 1995, crime drama", Movie))
    final = steps[-1]
    assert final.done
    assert final.value == Movie(title="Heat", year=1995, genres=["crime", "drama"])
    assert final.usage == Usage(10, 20)
    partials = [s.value for s in steps[:-1]]
    assert {"title": "Heat"} in partials, "keys are aligned to the schema as they complete"
    assert any(p.get("year") == 1995 for p in partials)
    assert all(is_prefix(p, final.value.model_dump()) for p in partials)


def test_astream_matches_stream() -> None:
    reply = '{"title": "Up", "year": 2009, "genres": ["animation"]}'

    async def collect() -> list[Any]:
        return [s.value async for s in rl.astream(Streaming(reply, 5), "Up", Movie)]

    values = asyncio.run(collect())
    assert values[-1] == Movie(title="Up", year=2009, genres=["animation"])
    assert values[:-1] == [s.value for s in list(rl.stream(Streaming(reply, 5), "Up", Movie))[:-1]]


def test_stream_of_a_reply_with_no_json_raises_our_error() -> None:
    with pytest.raises(rl.NoJSONFound):
        list(rl.stream(Streaming("I do not know."), "x", Movie))


@pytest.mark.parametrize("name", ["order", "prd", "recipe", "org_chart"])
def test_corpus_examples_stream_in_small_chunks(name: str) -> None:
    schema = json.loads((SCHEMAS / f"{name}.json").read_text())
    for example in schema["examples"]:
        text = json.dumps(example, indent=2)
        steps = parse_chunks([text[i : i + 4] for i in range(0, len(text), 4)], schema)
        assert steps[-1].value == example
        assert all(is_prefix(s.value, example) for s in steps[:-1])


@pytest.mark.parametrize(
    ("chunks", "expected"),
    [
        (
            ["{'a': 1, 'b': [1,", " 2], c: 'x'}", " and more prose {"],
            {"a": 1, "b": [1, 2], "c": "x"},
        ),
        (
            ["{name: 'Jo', note: \"don't\", x: [1,", "2]}", "blah"],
            {"name": "Jo", "note": "don't", "x": [1, 2]},
        ),
        (["[1, 2,", " 3,]", " done"], [1, 2, 3]),
        (
            ['{"a": "line one\nline two",', ' "b\tc": 2}', " ok"],
            {"a": "line one\nline two", "b\tc": 2},
        ),
    ],
    ids=["single-quotes", "apostrophe-in-double-quotes", "trailing-comma", "raw-control-chars"],
)
def test_fallback_still_sees_where_the_value_ends(chunks: list[str], expected: Any) -> None:
    parser = IncrementalParser()
    for chunk in chunks[:-1]:
        parser.feed(chunk)
    assert parser.fallback
    assert parser.complete, "the brackets balanced: a caller may stop reading here"
    parser.feed(chunks[-1])
    parser.close()
    assert parser.snapshot() == expected
