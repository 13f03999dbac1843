"""Shapes real models write that the lexical stage reads back (issue 11, section 7).

Placeholders copied from the prompt, a stray quote before a closer, members glued
together, the layout written as ``\\n`` escapes, and unquoted text with commas in it:
each case pins the value and the exact rules in the ledger.
"""

from __future__ import annotations

from typing import Any

import pytest

import repairllm as rl

P = pytest.param
STR = {"type": "string"}
INT = {"type": "integer"}
INTS = {"type": "array", "items": INT}
STRS = {"type": "array", "items": STR}
PERSON = {"type": "object", "properties": {"name": STR, "age": INT}}
LISTS = {"type": "object", "properties": {"x": STRS, "y": INT}}
CHART = {"type": "object", "properties": {"chart": STR, "id": INT}}

# (text, schema, expected value, expected ledger rules in order)
CASES = [
    # -- placeholders copied from the prompt: dropped, with what was written for them
    P("[1, 2, ...]", INTS, [1, 2], ["placeholder"], id="ph-last"),
    P("[1, 2, \u2026]", INTS, [1, 2], ["placeholder"], id="ph-ellipsis-char"),
    P('["a", "b", <etc>]', STRS, ["a", "b"], ["placeholder"], id="ph-etc-tag"),
    P('["a", "b", etc.]', STRS, ["a", "b"], ["placeholder"], id="ph-etc"),
    P("[1, <more items>]", INTS, [1], ["placeholder"], id="ph-more-items"),
    P("[..., 3]", INTS, [3], ["placeholder"], id="ph-first"),
    P("[1, ..., 3]", INTS, [1, 3], ["placeholder"], id="ph-between"),
    P("[1, 2 ...]", INTS, [1, 2], ["placeholder"], id="ph-no-comma"),
    P("[...]", INTS, [], ["placeholder"], id="ph-alone"),
    P("[1, 2, ...]", None, [1, 2], ["placeholder"], id="ph-no-schema"),
    P('{"a": "x", ...}', None, {"a": "x"}, ["placeholder"], id="ph-member"),
    P('{..., "a": "x"}', None, {"a": "x"}, ["placeholder"], id="ph-member-first"),
    P('{"a": "x", "b": ...}', None, {"a": "x"}, ["placeholder"], id="ph-value-drops-member"),
    P('{"b": ..., "a": "x"}', None, {"a": "x"}, ["placeholder"], id="ph-first-value"),
    P(
        '{\n  "items": [\n    {"id": 1},\n    {"id": 2},\n    ...\n  ]\n}',
        None,
        {"items": [{"id": 1}, {"id": 2}]},
        ["placeholder"],
        id="ph-pretty",
    ),
    P("[1, 2, // more items\n]", INTS, [1, 2], ["comment", "trailing_comma"], id="ph-comment"),
    # A quoted "..." is text unless the schema says no string belongs there.
    P('[1, 2, "..."]', INTS, [1, 2], ["placeholder"], id="ph-quoted-not-a-string"),
    P('["a", "..."]', STRS, ["a", "..."], [], id="ph-quoted-string-kept"),
    P('[1, "..."]', None, [1, "..."], [], id="ph-quoted-no-schema-kept"),
    P('[1, "..."]', {"type": "array"}, [1, "..."], [], id="ph-quoted-any-kept"),
    P('{"a": "..."}', {"type": "object"}, {"a": "..."}, [], id="ph-quoted-member-kept"),
    # Text that only starts like one is a value.
    P("[... and more]", None, ["... and more"], ["unquoted_value"], id="ph-not-alone"),
    P('["wait...", "x"]', STRS, ["wait...", "x"], [], id="ph-inside-string"),
    # -- a stray or doubled quote before a closer
    P('["a", "b""]', STRS, ["a", "b"], ["stray_quote"], id="sq-doubled"),
    P('{"a": "x"" }', None, {"a": "x"}, ["stray_quote"], id="sq-doubled-object"),
    P('["a", "b", "]', STRS, ["a", "b"], ["stray_quote", "trailing_comma"], id="sq-after-comma"),
    P('{"a": "x", "}', None, {"a": "x"}, ["stray_quote", "trailing_comma"], id="sq-comma-object"),
    P('[1, 2"]', INTS, [1, 2], ["stray_quote"], id="sq-after-number"),
    P('{"a": [1]"}', None, {"a": [1]}, ["stray_quote"], id="sq-after-closer"),
    # It used to become an extra element made of what follows.
    P('{"x": ["a", "b""], "y": 1}', LISTS, {"x": ["a", "b"], "y": 1}, ["stray_quote"], id="sq-mid"),
    P(
        '{\n  "x": [\n    "a",\n    "b""\n  ],\n  "y": 1\n}',
        LISTS,
        {"x": ["a", "b"], "y": 1},
        ["stray_quote"],
        id="sq-pretty",
    ),
    # A string that ends well is a string; an inner quote still open takes the first quote.
    P('["a" "]"]', STRS, ["a", "]"], ["missing_comma"], id="sq-real-string"),
    P('["He said "hi""]', STRS, ['He said "hi"'], ["unescaped_quote"], id="sq-inner-quote"),
    # -- members glued together where the comma and the space were dropped
    P('{"a": "x""b": 2}', None, {"a": "x", "b": 2}, ["glued_members"], id="glued-object"),
    P('["a""b"]', STRS, ["a", "b"], ["glued_members"], id="glued-array"),
    P('[{"a": 1}{"b": 2}]', None, [{"a": 1}, {"b": 2}], ["glued_members"], id="glued-objects"),
    P('{"a": [1]"b": 2}', None, {"a": [1], "b": 2}, ["glued_members"], id="glued-after-closer"),
    P('{"a": "x" "b": 2}', None, {"a": "x", "b": 2}, ["missing_comma"], id="glued-not-spaced"),
    # The tolerant tier (here for the placeholder) names them the same way.
    P(
        '{"a": "x""b": 2, ...}',
        None,
        {"a": "x", "b": 2},
        ["glued_members", "placeholder"],
        id="glued-tolerant",
    ),
    # -- the layout written as escapes outside strings
    P(
        '{\\n  "a": 1,\\n  "b": [1, 2]\\n}',
        None,
        {"a": 1, "b": [1, 2]},
        ["literal_newline"] * 3,
        id="ln-object",
    ),
    P("[1,\\t2]", None, [1, 2], ["literal_newline"], id="ln-tab"),
    P('{\\r\\n"a": 1}', None, {"a": 1}, ["literal_newline"] * 2, id="ln-crlf"),
    # Inside a string an escape is an escape.
    P('{\\n"a": "line\\none"\\n}', None, {"a": "line\none"}, ["literal_newline"] * 2, id="ln-str"),
    P('{"a": "x\\ny"}', None, {"a": "x\ny"}, [], id="ln-valid-json"),
    P(
        '{\\n  "a": hello\\n}',
        None,
        {"a": "hello"},
        ["literal_newline", "unquoted_value", "literal_newline"],
        id="ln-ends-unquoted-value",
    ),
    P(
        '{\\n  "a": [1, ...]\\n}',
        None,
        {"a": [1]},
        ["literal_newline", "placeholder", "literal_newline"],
        id="ln-tolerant",
    ),
    # -- an unquoted value with commas runs on to the next key
    P(
        "{name: Smith, John, age: 30}",
        PERSON,
        {"name": "Smith, John", "age": 30},
        ["unquoted_key", "unquoted_commas", "unquoted_key"],
        id="uc-schema",
    ),
    P(
        "{name: Smith, John, age: 30}",
        None,
        {"name": "Smith, John", "age": 30},
        ["unquoted_key", "unquoted_commas", "unquoted_key"],
        id="uc-no-schema",
    ),
    P(
        '{"name": Smith, John, "age": 30}',
        PERSON,
        {"name": "Smith, John", "age": 30},
        ["unquoted_commas"],
        id="uc-quoted-keys",
    ),
    P(
        '{"age": 30, "name": Smith, John}',
        PERSON,
        {"age": 30, "name": "Smith, John"},
        ["unquoted_commas"],
        id="uc-last",
    ),
    P(
        "{name: Smith, John age: 30}",
        PERSON,
        {"name": "Smith, John", "age": 30},
        ["unquoted_key", "unquoted_commas", "missing_comma", "unquoted_key"],
        id="uc-known-key-without-comma",
    ),
    P(
        '{\n  "note": All items were delivered, but one box was damaged.,\n  "id": 7\n}',
        None,
        {"note": "All items were delivered, but one box was damaged.", "id": 7},
        ["unquoted_commas"],
        id="uc-sentence-pretty",
    ),
    P(
        '{"note": Budget: approx. 12,500 EUR for Q3., "id": 7}',
        None,
        {"note": "Budget: approx. 12,500 EUR for Q3.", "id": 7},
        ["unquoted_commas"],
        id="uc-colon-and-number",
    ),
    # A key after the comma, with or without a schema, ends the value.
    P(
        "{a: x, first name: Ann}",
        None,
        {"a": "x", "first name": "Ann"},
        ["unquoted_key", "unquoted_value", "unquoted_key", "unquoted_value"],
        id="uc-key-after-comma",
    ),
    P(
        '{"a": hello, "b": 1}',
        None,
        {"a": "hello", "b": 1},
        ["unquoted_value"],
        id="uc-plain-value",
    ),
    # In an array a comma always separates elements.
    P("[Smith, John]", STRS, ["Smith", "John"], ["unquoted_value"] * 2, id="uc-not-in-arrays"),
    # -- a quoted name with a colon inside a string value: the string's own text unless
    # the schema knows the name here
    P(
        '{"chart": "x-axis Reach\\n  "Taskwarrior": [0.4, 0.7]\\n  "Ours": [0.5]", "id": 7}',
        CHART,
        {"chart": 'x-axis Reach\n  "Taskwarrior": [0.4, 0.7]\n  "Ours": [0.5]', "id": 7},
        ["unescaped_quote"],
        id="uq-inner-names",
    ),
    P(
        '{"chart": "see "Taskwarrior": fast", "id": 7}',
        CHART,
        {"chart": 'see "Taskwarrior": fast', "id": 7},
        ["unescaped_quote"],
        id="uq-inner-name-in-prose",
    ),
    # -- a comma lost after a string: before a number in an array, or before an unquoted
    # key the schema knows; a quoted year inside text stays text
    P(
        '[["Q1 2024"12.4, 0.08], ["Q2", 1]]',
        {"type": "array", "items": {"type": "array"}},
        [["Q1 2024", 12.4, 0.08], ["Q2", 1]],
        ["missing_comma"],
        id="mc-string-then-number",
    ),
    P('["the "2024" report"]', STRS, ['the "2024" report'], ["unescaped_quote"] * 2, id="uq-year"),
    P(
        '{"name": "Ada"website: "x"}',
        {"type": "object", "properties": {"name": STR, "website": STR}},
        {"name": "Ada", "website": "x"},
        ["missing_comma", "unquoted_key"],
        id="mc-string-then-unquoted-key",
    ),
]


@pytest.mark.parametrize(("text", "schema", "expected", "rules"), CASES)
def test_model_shape(text: str, schema: Any, expected: Any, rules: list[str]) -> None:
    out = rl.repair(text, schema, outcome=True)
    assert out.value == expected
    assert out.ledger.rules() == rules
    assert not out.truncated


def test_placeholder_fix_points_at_the_element() -> None:
    out = rl.repair('{"a": [1, ...], "b": {"c": 1, "d": ...}}', outcome=True)
    assert out.value == {"a": [1], "b": {"c": 1}}
    assert [(f.rule, f.path, f.before, f.after) for f in out.ledger] == [
        ("placeholder", "/a/1", "...", None),
        ("placeholder", "/b/d", "...", None),
    ]


# The guesses (a placeholder dropped, where unquoted text ends) are refused by the
# strict policy and cost more than the lexical fixes it allows.
GUESSES = ["placeholder", "unquoted_commas"]
LEXICAL = ["literal_newline", "glued_members", "stray_quote"]


@pytest.mark.parametrize(
    ("text", "schema"),
    [
        P("[1, 2, ...]", INTS, id="placeholder"),
        P('{"name": Smith, John}', PERSON, id="unquoted-commas"),
    ],
)
def test_strict_refuses_the_guesses(text: str, schema: Any) -> None:
    assert rl.repair(text, schema) is not None
    with pytest.raises(rl.RepairFailed, match="forbids"):
        rl.repair(text, schema, policy="strict")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        P('["a", "b""]', ["a", "b"], id="stray-quote"),
        P('{"a": "x""b": 2}', {"a": "x", "b": 2}, id="glued"),
        P('{\\n  "a": 1\\n}', {"a": 1}, id="literal-newline"),
    ],
)
def test_strict_allows_the_lexical_fixes(text: str, expected: Any) -> None:
    assert rl.repair(text, policy="strict") == expected


def test_guesses_cost_more_than_lexical_fixes() -> None:
    assert set(GUESSES) <= rl.STRICT.forbid
    assert not set(LEXICAL) & rl.STRICT.forbid
    assert min(rl.RULE_COSTS[r] for r in GUESSES) > max(rl.RULE_COSTS[r] for r in LEXICAL)
    assert rl.RULE_COSTS["unquoted_commas"] > rl.RULE_COSTS["unquoted_value"]
