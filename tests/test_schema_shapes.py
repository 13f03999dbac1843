"""Shapes real models produce that only the schema can settle (issue 11, section 7).

Each row: a reply as models write it, the schema asked for, and what must come back,
with the rule that records the change. Each shape also has a corruption operator in
the parser fuzz; the last tests check that repair undoes each operator's damage.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from typing import Any

import pytest
from pydantic import BaseModel

import repairllm as rl
from repairllm.bench.corrupt import SCHEMA_LEVEL, apply

PERSON = {
    "type": "object",
    "properties": {"name": {"type": "string"}, "age": {"type": "integer"}},
    "required": ["name", "age"],
}
PEOPLE = {"type": "array", "items": PERSON}
PRICES = {
    "type": "object",
    "properties": {
        "price": {"type": "number"},
        "share": {"type": "number"},
        "n": {"type": "integer"},
    },
}
SENTIMENT = {"type": "string", "enum": ["positive", "negative", "neutral"]}
ANN = {"name": "Ann", "age": 31}

P = pytest.param

SHAPES = [
    # -- the object inside a function-call envelope, or as JSON text in a member
    P(
        '{"name": "get_person", "arguments": "{\\"name\\": \\"Ann\\", \\"age\\": 31}"}',
        PERSON,
        ANN,
        ["unwrap_call", "decode_string"],
        id="call-arguments-as-text",
    ),
    P(
        '{"name": "get_person", "arguments": {"name": "Ann", "age": 31}}',
        PERSON,
        ANN,
        ["unwrap_call"],
        id="call-arguments-as-object",
    ),
    P(
        '{"type": "function", "function": {"name": "f", "arguments": {"name": "Ann", "age": 31}}}',
        PERSON,
        ANN,
        ["unwrap_call"],
        id="openai-function",
    ),
    P(
        '{"tool_calls": [{"id": "c1", "type": "function", '
        '"function": {"name": "f", "arguments": "{\\"name\\": \\"Ann\\", \\"age\\": 31}"}}]}',
        PERSON,
        ANN,
        ["unwrap_call", "decode_string"],
        id="tool-calls",
    ),
    P(
        '{"result": "{\\"name\\": \\"Ann\\", \\"age\\": 31}"}',
        PERSON,
        ANN,
        ["unwrap_object", "decode_string"],
        id="encoded-in-member",
    ),
    P('{"name": "Ann", "age": 31}', PERSON, ANN, [], id="name-is-a-real-key"),
    # -- numbers written for people
    P(
        '{"price": "$1,299.99", "share": "45%", "n": "12 EUR"}',
        PRICES,
        {"price": 1299.99, "share": 45, "n": 12},
        ["number_symbols"] * 3,
        id="currency-percent-code",
    ),
    P('{"price": "-€3.5"}', PRICES, {"price": -3.5}, ["number_symbols"], id="negative-euro"),
    # -- several values where the schema wants an array
    P(
        '{"name": "Ann", "age": 31}\n{"name": "Bo", "age": 4}',
        PEOPLE,
        [ANN, {"name": "Bo", "age": 4}],
        ["joined_values"],
        id="json-lines",
    ),
    P(
        'First: {"name": "Ann", "age": 31}, and then {"name": "Bo", "age": 4}.',
        PEOPLE,
        [ANN, {"name": "Bo", "age": 4}],
        ["joined_values"],
        id="between-prose",
    ),
    P('[{"name": "Ann", "age": 31}]', PEOPLE, [ANN], [], id="one-array-stays"),
    # -- answers in prose, no JSON at all
    P("The sentiment is **positive**.", SENTIMENT, "positive", ["prose_answer"], id="enum-word"),
    P("Yes, it is.", {"type": "boolean"}, True, ["prose_answer"], id="boolean"),
    P("The answer is 42.", {"type": "integer"}, 42, ["prose_answer"], id="number"),
    P("Name: Ann\nAge: 31", PERSON, ANN, ["prose_answer", "coerce"], id="label-lines"),
]


@pytest.mark.parametrize(("text", "schema", "expected", "rules"), SHAPES)
def test_shape(text: str, schema: Any, expected: Any, rules: list[str]) -> None:
    out = rl.repair(text, schema, outcome=True)
    assert out.value == expected
    assert out.ledger.rules() == rules


def test_joined_values_that_are_valid_spare_the_objects_their_align_walk(
    first_args: Callable[[Any, str], list[Any]],
) -> None:
    # Each object of a JSON Lines reply is a candidate too, but one where the schema
    # wants an array costs its extraction plus a wrap at least, more than the joined
    # array: it is parsed and not aligned.
    import repairllm.pipeline as pipeline

    aligned = first_args(pipeline, "align")
    lines = '{"name": "Ann", "age": 31}\n{"name": "Bo", "age": 4}'
    out = rl.repair(lines, PEOPLE, outcome=True)
    assert out.value == [ANN, {"name": "Bo", "age": 4}]
    assert aligned == []
    # One object alone is still wrapped: nothing cheaper was found before it.
    assert rl.repair('{"name": "Ann", "age": 31}', PEOPLE) == [ANN]
    assert aligned == [ANN]
    # Where an object wrapped costs what the joined array does, and ties fail the
    # policy, the objects are still aligned, and the tie is seen.
    tied = rl.Policy(on_ambiguity="fail", costs={"joined_values": 0.6})
    with pytest.raises(rl.AmbiguousRepair):
        rl.repair(lines, PEOPLE, policy=tied)


REFUSED = [
    P('{"price": "1,5"}', PRICES, id="decimal-comma-is-ambiguous"),
    P("Positive or negative? Hard to say.", SENTIMENT, id="two-enum-words"),
    P("No. Well, yes.", {"type": "boolean"}, id="both-yes-and-no"),
    P("In 2023 it was 42.", {"type": "integer"}, id="two-numbers"),
    P("Hello there", PERSON, id="no-labels"),
]


@pytest.mark.parametrize(("text", "schema"), REFUSED)
def test_an_uncertain_reading_is_not_made(text: str, schema: Any) -> None:
    with pytest.raises(rl.RepairLLMError):
        rl.repair(text, schema)


@pytest.mark.parametrize(
    ("written", "readings"),
    [("1,5", ("1.5", "15")), ("-12,25", ("-12.25", "-1225")), ("1.234,5", ("1234.5",))],
)
@pytest.mark.parametrize("pydantic_model", [False, True])
def test_an_ambiguous_number_is_refused_saying_why(
    written: str, readings: tuple[str, ...], pydantic_model: bool
) -> None:
    class Price(BaseModel):
        price: float

    schema: Any = Price if pydantic_model else PRICES
    with pytest.raises(rl.RepairFailed) as caught:
        rl.repair(json.dumps({"price": written}), schema)
    (issue,) = caught.value.issues
    assert issue.path == "/price"
    assert "not converted" in issue.message
    for reading in readings:
        assert reading in issue.message


def test_a_plain_type_error_says_nothing_of_numbers() -> None:
    with pytest.raises(rl.RepairFailed) as caught:
        rl.repair('{"price": "cheap"}', PRICES)
    assert "not converted" not in caught.value.issues[0].message


def test_strict_reads_no_prose_and_unwraps_nothing() -> None:
    with pytest.raises(rl.NoJSONFound):
        rl.repair("The sentiment is **positive**.", SENTIMENT, policy="strict")
    with pytest.raises(rl.RepairFailed):
        rl.repair('{"name": "f", "arguments": {"name": "Ann", "age": 31}}', PERSON, policy="strict")


def test_prose_answers_can_be_turned_off() -> None:
    with pytest.raises(rl.NoJSONFound):
        rl.repair("Yes.", {"type": "boolean"}, policy=rl.Policy(prose_answers=False))


def test_json_in_the_reply_beats_a_prose_reading() -> None:
    assert rl.repair('It is positive, I think: "negative"', SENTIMENT) == "negative"


# -- the fuzz operators: each damages, and repair with the schema undoes it ---------------

DOCS = {
    "several_values": ([ANN, {"name": "Bo", "age": 4}], PEOPLE),
    "number_symbols": ({"price": 1299.5, "share": 12, "n": 4}, PRICES),
    "encoded_member": (ANN, PERSON),
    "call_envelope": (ANN, PERSON),
    "prose_lines": (ANN, PERSON),
}


@pytest.mark.parametrize("operator", sorted(SCHEMA_LEVEL))
@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("indent", [None, 2])
def test_repair_undoes_each_schema_level_operator(
    operator: str, seed: int, indent: int | None
) -> None:
    value, schema = DOCS[operator]
    text = json.dumps(value, indent=indent)
    damaged = apply(operator, text, random.Random(seed))
    assert damaged.operators == (operator,)
    assert damaged.text != text
    assert rl.repair(damaged.text, schema) == value


@pytest.mark.parametrize("operator", sorted(SCHEMA_LEVEL))
def test_schema_level_operators_leave_what_they_cannot_damage(operator: str) -> None:
    for text in ('"x"', "[]", "{}", "null"):
        assert apply(operator, text, random.Random(0)).text == text
