"""Only our errors, whatever the input or the schema; valid JSON exactly, nothing that is not JSON.

Each table row is a case an adversarial pass found escaping (a ValueError, an
OverflowError, a RecursionError, a user's KeyError) or changing a value without a word
(an integer turned into a string or a float, 1e999 turned into infinity). The
properties at the end cover the classes those cases belong to.
"""

from __future__ import annotations

import contextlib
import json
import math
import sys
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, model_validator

import repairllm as rl
from repairllm.stream import IncrementalParser, parse_chunks

INTEGER_FIELD = {"type": "object", "properties": {"a": {"type": "integer"}}}
NUMBER_FIELD = {"type": "object", "properties": {"a": {"type": "number"}}}


def _deep_schema(levels: int) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "integer"}
    for _ in range(levels):
        schema = {"type": "object", "properties": {"a": schema}}
    return schema


class _Crashes(BaseModel):
    a: int

    @model_validator(mode="before")
    @classmethod
    def _boom(cls, data: Any) -> Any:
        raise KeyError("boom")


ESCAPES = {
    "5000-digit integer in an object": ('{"a":' + "1" * 5000 + "}", INTEGER_FIELD),
    "5000-digit integer at the top": ("1" * 5000, None),
    "5000-digit integer in damaged text": ("{'a': " + "1" * 5000 + ",}", INTEGER_FIELD),
    "5000-digit string coerced to an integer": ('{"a": "' + "1" * 5000 + '"}', INTEGER_FIELD),
    "10**400 against multipleOf 0.1": (str(10**400), {"type": "integer", "multipleOf": 0.1}),
    "1e999999 against multipleOf 0.01": ("1e999999", {"type": "number", "multipleOf": 0.01}),
    "a format-regex value Python cannot compile": (
        '"a{99999999999}"',
        {"type": "string", "format": "regex"},
    ),
    "a pattern Python cannot compile": ('"a"', {"type": "string", "pattern": "a{99999999999}"}),
    "a schema nested 100 levels": ("{}", _deep_schema(100)),
    "a pydantic validator raising KeyError": ('{"a": 1}', _Crashes),
    # Found by benchmarks/escapes.py: a quote that fits only because the text ends there,
    # in a schema with keys (the inner-name check looked past the end).
    "a single-quoted string ending in a stray quote": (
        "'\u00f3''",
        {"type": "object", "properties": {"a": {"type": "string"}}},
    ),
    "a quote inside single quotes at the end": (
        "'\u00bc='\u00c9~\x18l'",
        {"type": "object", "properties": {"a": {"type": "string"}}},
    ),
}


@pytest.mark.parametrize(("text", "schema"), ESCAPES.values(), ids=ESCAPES.keys())
@pytest.mark.parametrize("policy", ["strict", "default", "lenient"])
def test_only_our_errors_come_out(text: str, schema: Any, policy: str) -> None:
    with contextlib.suppress(rl.RepairLLMError):
        value = rl.repair(text, schema, policy=policy)
        json.dumps(
            value if not isinstance(value, BaseModel) else value.model_dump(), allow_nan=False
        )


def test_a_crashing_validator_keeps_its_exception_as_the_cause() -> None:
    with pytest.raises(rl.SchemaError, match="KeyError") as info:
        rl.repair('{"a": 1}', _Crashes)
    assert isinstance(info.value.__cause__, KeyError)


def test_an_integer_past_pythons_limit_is_refused_the_same_way_everywhere() -> None:
    limit = sys.get_int_max_str_digits()
    for text in ("1" * (limit + 1), '{"a": ' + "1" * (limit + 1) + "}", "[1, " + "2" * 9999 + "]"):
        with pytest.raises(rl.RepairFailed, match=f"more than {limit} digits"):
            rl.repair(text, None)


@pytest.mark.parametrize("text", ["1e999999", "[1e400]", '{"a": -1E+999}', "[" + "9" * 400 + ".5]"])
@pytest.mark.parametrize("policy", ["strict", "default", "lenient"])
def test_a_number_past_a_double_is_refused_not_made_infinite(text: str, policy: str) -> None:
    with pytest.raises(rl.RepairFailed, match="beyond the range of a double"):
        rl.repair(text, policy=policy)


def test_numbers_inside_a_double_still_pass() -> None:
    assert rl.repair("[1e99, 1.5e-300, 1.7e308]") == [1e99, 1.5e-300, 1.7e308]


def test_pydantic_schemas_take_integers_past_64_bits() -> None:
    class Big(BaseModel):
        a: int

    assert rl.repair(f'{{"a": {2**64}}}', Big) == Big(a=2**64)
    assert rl.repair(f'{{"a": {-(10**30)}}}', Big).a == -(10**30)


def test_a_numeric_string_becomes_its_exact_number() -> None:
    assert rl.repair('{"a": "12345678901234567890"}', NUMBER_FIELD) == {"a": 12345678901234567890}
    with pytest.raises(rl.RepairFailed):
        rl.repair('{"a": "1e999"}', NUMBER_FIELD)  # no infinity from a string either


def test_stream_partials_keep_big_integers_exact() -> None:
    values = [p.value for p in parse_chunks(["[18446744073709551616, ", "2]"])]
    assert values[0] == [18446744073709551616]
    assert isinstance(values[0][0], int)
    parser = IncrementalParser()
    parser.feed("[-123456789012345678901234567890]")
    assert parser.snapshot() == [-123456789012345678901234567890]


@pytest.mark.parametrize(
    "chunks",
    [["[" * 10000, "]" * 10000], ['[{"a":' * 1000, "1"], ["[" * 3000, "]" * 3000, " "]],
    ids=["10000-closed", "1000-open", "3000-in-pieces"],
)
def test_deep_streams_end_in_our_error(chunks: list[str]) -> None:
    with pytest.raises(rl.RepairLLMError):
        parse_chunks(chunks)


# -- properties --------------------------------------------------------------------------

# Numbers at the edges: past 64 bits, past a double, past Python's digit limit.
edge_numbers = st.one_of(
    st.integers(min_value=2**63 - 2, max_value=2**70),
    st.integers(min_value=-(10**40), max_value=10**40),
    st.builds(lambda m, e: f"{m}e{e}", st.integers(1, 99), st.integers(250, 10**6)),
    st.builds(lambda d: "9" * d, st.integers(300, 5000)),
    st.floats(allow_nan=False, allow_infinity=False),
).map(str)

tricky_schemas = st.sampled_from(
    [
        None,
        {"type": "integer"},
        {"type": "number", "multipleOf": 0.01},
        {"type": "integer", "multipleOf": 0.1},
        {"type": "array", "items": {"type": "number"}},
        INTEGER_FIELD,
        NUMBER_FIELD,
        {"type": "string", "format": "regex"},
        {"type": "object", "properties": {"a": {"type": "string", "pattern": "^[a-z]+$"}}},
    ]
)
shapes = st.sampled_from(["{}", "[{}]", '{{"a": {}}}', "{{'a': {},}}", "[{}, {}", '"{}"'])


@given(shapes, edge_numbers, tricky_schemas, st.sampled_from(["strict", "default", "lenient"]))
@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow], deadline=None)
def test_edge_numbers_give_our_error_or_real_json(
    shape: str, number: str, schema: Any, policy: str
) -> None:
    text = shape.replace("{}", number, 2) if shape != "{}" else number
    try:
        value = rl.repair(text, schema, policy=policy)
    except rl.RepairLLMError:
        return
    json.dumps(value, allow_nan=False)  # no infinity, no NaN


@given(edge_numbers)
@settings(max_examples=300, deadline=None)
def test_valid_json_numbers_come_through_exactly_or_not_at_all(number: str) -> None:
    try:
        expected = json.loads(number)
    except ValueError:
        expected = None  # past Python's digit limit: must be refused
    try:
        got = rl.repair(f"[{number}]")
    except rl.RepairFailed:
        assert expected is None or (isinstance(expected, float) and math.isinf(expected))
        return
    assert got == [expected]
    assert type(got[0]) is type(expected)


def test_a_byte_order_mark_is_dropped_with_a_ledger_entry() -> None:
    out = rl.repair('\ufeff{"a": 1}', outcome=True)
    assert out.value == {"a": 1}
    assert out.ledger.rules() == ["byte_order_mark"]
    assert out.raw.startswith("\ufeff")
    damaged = rl.repair("\ufeff{'a': 1,}", outcome=True)
    assert damaged.ledger.rules() == ["byte_order_mark", "single_quotes", "trailing_comma"]


@pytest.mark.parametrize(
    "chunks",
    [
        ["[=]", "[", "]"],
        ["{'a': 1}", ' {"b": 2}'],
        ['Sure: {"a": 1}', " and also {'b': 2}"],
        ["<think>hm</think>", '{"a": [1', ", 2]}", " bye [3]"],
    ],
)
def test_the_final_value_is_the_one_the_partials_showed(chunks: list[str]) -> None:
    # Text after a complete value (a second value, prose) cannot replace it at the end.
    steps = parse_chunks(chunks)
    assert steps[-1].done
    assert steps[-1].value == steps[-2].value
    assert steps[-1].text == "".join(chunks)


@given(
    st.lists(
        st.sampled_from(["{'a': ", "1", ", 'b': [", "2, ", "3]", "}", " ok", " [9]"]), max_size=8
    )
)
@settings(max_examples=150, deadline=None)
def test_stream_steps_never_raise_and_end_in_one_final_value(pieces: list[str]) -> None:
    try:
        steps = parse_chunks(pieces)
    except rl.RepairLLMError:
        return
    assert [s.done for s in steps].count(True) == 1
    assert steps[-1].done


# -- valid JSON the schema reads: a number where a string is wanted keeps its text ----

TEXT_NUMBER = {
    "type": "object",
    "properties": {"version": {"type": "string"}, "n": {"type": "integer"}},
}


@pytest.mark.parametrize(
    ("text", "schema", "expected"),
    [
        ('{"version": 1.10, "n": "3"}', TEXT_NUMBER, {"version": "1.10", "n": 3}),
        ('{"version": 1.5e3}', TEXT_NUMBER, {"version": "1.5e3"}),
        ('{"v": 1.10}', {"properties": {"v": {"enum": ["1.10", "2.0"]}}}, {"v": "1.10"}),
    ],
)
def test_a_number_where_text_is_wanted_keeps_the_digits_it_was_written_with(
    text: str, schema: Any, expected: Any
) -> None:
    # Strictly valid JSON, so the cheap tiers read 1.10 as 1.1; the schema's reading
    # of the text is asked for whenever alignment turned a number into text.
    assert rl.repair(text, schema) == expected
