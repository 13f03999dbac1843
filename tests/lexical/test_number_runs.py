"""Runs of plain numbers in an array are taken in one step by the tolerant tier.

The values, the ledger and its paths must be what the element-by-element path gives:
an index counted past the run, a trailing comma still dropped, a cut after a comma, and
a schema that wants strings or a tuple taking each element on its own.
"""

from __future__ import annotations

import itertools
import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import repairllm as rl
from repairllm.lexical.incremental import IncrementalParser
from repairllm.lexical.tokens import number_run
from repairllm.lexical.tolerant import Tolerant

P = pytest.param

CASES = [
    # (text, schema, value, [(rule, path)])
    P("[1, 2, 3, 'x']", None, [1, 2, 3, "x"], [("single_quotes", "/3")], id="fix-after-run"),
    P("[1,2,3,]", None, [1, 2, 3], [("trailing_comma", "")], id="trailing-comma"),
    P("[1, -2.5e3, 0, 7", None, [1, -2500.0, 0, 7], [("missing_closer", "")], id="cut-last"),
    P(
        "[1, 2, 3,",
        None,
        [1, 2, 3],
        [("trailing_comma", ""), ("missing_closer", "")],
        id="cut-comma",
    ),
    P(
        "[[1, 2, 3], [4, 5, 'six']]",
        None,
        [[1, 2, 3], [4, 5, "six"]],
        [("single_quotes", "/1/2")],
        id="nested",
    ),
    P(
        "[1, 2, 3, True]",
        {"type": "array", "items": {"type": "string"}},
        ["1", "2", "3", True],
        None,
        id="strings-wanted",
    ),
    P(
        "[1, 2, 3, 'x']",
        {"type": "array", "prefixItems": [{"type": "integer"}, {"type": "string"}]},
        None,
        None,
        id="tuple",
    ),
]


@pytest.mark.parametrize(("text", "schema", "value", "fixes"), CASES)
def test_a_number_run_reads_as_element_by_element(
    text: str, schema: Any, value: Any, fixes: list[tuple[str, str]] | None
) -> None:
    compiled = rl.compile_schema(schema) if schema is not None else None
    fast = Tolerant(text, compiled, rl.DEFAULT).run()
    slow_parser = Tolerant(text, compiled, rl.DEFAULT)
    slow_parser.numbers_as_written = lambda frame: False  # type: ignore[method-assign]
    slow = slow_parser.run()
    assert fast.value == slow.value
    assert [(f.rule, f.path, f.before, f.after) for f in fast.fixes] == [
        (f.rule, f.path, f.before, f.after) for f in slow.fixes
    ]
    if value is not None:
        assert fast.value == value
    if fixes is not None:
        assert [(f.rule.value, f.path) for f in fast.fixes] == fixes


def test_a_long_run_is_one_output_piece() -> None:
    parser = Tolerant("[" + "1," * 1000 + "2", None, rl.DEFAULT)
    assert parser.run().value == [1] * 1000 + [2]
    assert len(parser.out) < 10


# -- the incremental parser takes the same runs in one step --------------------------------

numbers = st.one_of(
    st.integers(-(10**6), 10**6),
    st.integers(2**63, 10**30),  # past 64 bits: the token path keeps them exact
    st.floats(allow_nan=False, allow_infinity=False, width=32),
)


def _steps(text: str, cuts: list[int], bulk: bool) -> list[Any]:
    parser = IncrementalParser()
    if not bulk:
        parser._take_numbers = lambda *args: False  # type: ignore[method-assign]
    points = sorted({c % (len(text) + 1) for c in cuts} | {0, len(text)})
    steps: list[Any] = []
    for a, b in itertools.pairwise(points):
        if parser.feed(text[a:b]):
            steps.append(json.dumps(parser.snapshot()))
    if parser.close():
        steps.append(json.dumps(parser.snapshot()))
    steps.append((parser.complete, parser.fallback))
    return steps


@settings(max_examples=150, deadline=None)
@given(
    st.lists(st.lists(numbers, max_size=8) | numbers, min_size=1, max_size=12),
    st.lists(st.integers(0, 10_000), max_size=12),
    st.sampled_from([",", ", ", ",\n  "]),
)
def test_streamed_number_runs_give_the_same_snapshots(
    value: list[Any], cuts: list[int], separator: str
) -> None:
    text = json.dumps(value, separators=(separator, ": "))
    assert _steps(text, cuts, bulk=True) == _steps(text, cuts, bulk=False)


# -- looking for a run ------------------------------------------------------------------------


def test_a_run_ends_at_its_last_comma() -> None:
    end, again, values = number_run("1, 2, 3, 4]", 0)
    assert (end, values) == (len("1, 2, 3,"), [1, 2, 3])
    assert again >= end


def test_one_number_is_no_run() -> None:
    assert number_run("1, x", 0)[2] is None
    assert number_run('"a", 1', 0)[2] is None


def test_a_long_run_with_a_bad_number_is_taken_up_to_it() -> None:
    text = "1," * 100 + "2.,3,4,"
    end, again, values = number_run(text, 0)
    assert values == [1] * 100
    assert end == 200  # the bad "2." is read element by element ...
    assert again == 203  # ... and the next look starts after it


def test_a_short_run_before_a_bad_number_is_left_to_the_elements() -> None:
    text = "1,2,3.," + "4," * 100
    end, again, values = number_run(text, 0)
    assert (end, values) == (0, None)
    assert again == len(text)  # none of this window is looked at again
