"""Validation: dialects, references, caching, schema errors, issues, formats, the corpus."""

from __future__ import annotations

import datetime
import json
from pathlib import Path
from typing import Any

import pydantic
import pytest

import repairllm
from repairllm import Issue, SchemaError, compile_schema

DRAFTS = {
    "draft-04": "http://json-schema.org/draft-04/schema#",
    "draft-06": "http://json-schema.org/draft-06/schema#",
    "draft-07": "http://json-schema.org/draft-07/schema#",
    "2019-09": "https://json-schema.org/draft/2019-09/schema",
    "2020-12": "https://json-schema.org/draft/2020-12/schema",
}
VALIDATORS = {
    "draft-04": "Draft4Validator",
    "draft-06": "Draft6Validator",
    "draft-07": "Draft7Validator",
    "2019-09": "Draft201909Validator",
    "2020-12": "Draft202012Validator",
}


# -- dialects -----------------------------------------------------------------------------


def counted(draft: str) -> dict[str, Any]:
    return {
        "$schema": DRAFTS[draft],
        "type": "object",
        "properties": {"n": {"type": "integer", "minimum": 1}, "name": {"type": "string"}},
        "required": ["n", "name"],
    }


@pytest.mark.parametrize("draft", [pytest.param(d, id=d) for d in DRAFTS])
def test_dialect_validates_and_reports(draft: str) -> None:
    schema = compile_schema(counted(draft))
    assert type(schema.validator).__name__ == VALIDATORS[draft]
    assert schema.validate({"n": 2, "name": "a"}) == ({"n": 2, "name": "a"}, [])
    value, issues = schema.validate({"n": 0, "name": 5})
    assert value == {"n": 0, "name": 5}
    assert issues == [
        Issue("/n", "0 is less than the minimum of 1", expected=1, got=0),
        Issue("/name", "5 is not of type 'string'", expected="string", got=5),
    ]
    _, missing = schema.validate({"n": 1})
    assert missing == [
        Issue("", "'name' is a required property", expected=["n", "name"], got={"n": 1})
    ]


@pytest.mark.parametrize(
    ("schema", "valid", "invalid", "issue"),
    [
        pytest.param(
            {
                "$schema": DRAFTS["draft-04"],
                "type": "number",
                "maximum": 10,
                "exclusiveMaximum": True,
            },
            9,
            10,
            Issue("", "10 is greater than or equal to the maximum of 10", expected=10, got=10),
            id="draft-04-boolean-exclusiveMaximum",
        ),
        pytest.param(
            {"$schema": DRAFTS["draft-06"], "type": "number", "exclusiveMaximum": 10},
            9,
            10,
            Issue("", "10 is greater than or equal to the maximum of 10", expected=10, got=10),
            id="draft-06-numeric-exclusiveMaximum",
        ),
        pytest.param(
            {
                "$schema": DRAFTS["draft-07"],
                "if": {"properties": {"k": {"const": "a"}}},
                "then": {"required": ["x"]},
            },
            {"k": "a", "x": 1},
            {"k": "a"},
            Issue("", "'x' is a required property", expected=["x"], got={"k": "a"}),
            id="draft-07-if-then",
        ),
        pytest.param(
            {
                "$schema": DRAFTS["2019-09"],
                "type": "array",
                "items": [{"type": "string"}],
                "additionalItems": False,
            },
            ["a"],
            ["a", 1],
            Issue(
                "",
                "Additional items are not allowed (1 was unexpected)",
                expected=False,
                got=["a", 1],
            ),
            id="2019-09-tuple-items",
        ),
        pytest.param(
            {
                "$schema": DRAFTS["2019-09"],
                "type": "object",
                "dependentRequired": {"card": ["cvv"]},
            },
            {"card": "4242", "cvv": "123"},
            {"card": "4242"},
            Issue(
                "",
                "'cvv' is a dependency of 'card'",
                expected={"card": ["cvv"]},
                got={"card": "4242"},
            ),
            id="2019-09-dependentRequired",
        ),
        pytest.param(
            {
                "$schema": DRAFTS["2020-12"],
                "type": "array",
                "prefixItems": [{"type": "string"}, {"type": "integer"}],
            },
            ["a", 1],
            ["a", "b"],
            Issue("/1", "'b' is not of type 'integer'", expected="integer", got="b"),
            id="2020-12-prefixItems",
        ),
    ],
)
def test_dialect_specific_keywords(schema: Any, valid: Any, invalid: Any, issue: Issue) -> None:
    compiled = compile_schema(schema)
    assert compiled.validate(valid) == (valid, [])
    assert compiled.is_valid(valid)
    assert not compiled.is_valid(invalid)
    assert compiled.validate(invalid) == (invalid, [issue])


def test_schema_without_dialect_is_2020_12() -> None:
    assert type(compile_schema({"type": "integer"}).validator).__name__ == "Draft202012Validator"


@pytest.mark.parametrize(
    ("schema", "value", "issues"),
    [
        pytest.param(True, 5, [], id="true"),
        pytest.param(False, 5, [Issue("", "False schema does not allow 5", got=5)], id="false"),
        pytest.param({}, [1, {"a": None}], [], id="empty"),
    ],
)
def test_boolean_and_empty_schemas(schema: Any, value: Any, issues: list[Issue]) -> None:
    assert compile_schema(schema).validate(value) == (value, issues)


# -- references ---------------------------------------------------------------------------

DEFS = {
    "$defs": {
        "item": {
            "type": "object",
            "properties": {"price": {"type": "number"}},
            "required": ["price"],
        }
    },
    "type": "object",
    "properties": {"items": {"type": "array", "items": {"$ref": "#/$defs/item"}}},
}
DEFINITIONS = {
    "$schema": DRAFTS["draft-07"],
    "definitions": {
        "item": {
            "type": "object",
            "properties": {"price": {"type": "number"}},
            "required": ["price"],
        }
    },
    "type": "object",
    "properties": {"items": {"type": "array", "items": {"$ref": "#/definitions/item"}}},
}
TREE = {
    "$defs": {
        "node": {
            "type": "object",
            "properties": {
                "name": {"type": "string"},
                "children": {"type": "array", "items": {"$ref": "#/$defs/node"}},
            },
            "required": ["name"],
        }
    },
    "$ref": "#/$defs/node",
}
DEEP_TREE = {"name": "a", "children": [{"name": "b", "children": [{"name": 1}, {"children": []}]}]}


@pytest.mark.parametrize(
    ("schema", "value", "issues"),
    [
        pytest.param(
            DEFS,
            {"items": [{"price": 1}, {"price": 2.5}, {"price": "x"}]},
            [Issue("/items/2/price", "'x' is not of type 'number'", expected="number", got="x")],
            id="defs",
        ),
        pytest.param(
            DEFINITIONS,
            {"items": [{"price": 1}, {}, {"price": "x"}]},
            [
                Issue("/items/1", "'price' is a required property", expected=["price"], got={}),
                Issue("/items/2/price", "'x' is not of type 'number'", expected="number", got="x"),
            ],
            id="definitions",
        ),
        pytest.param(
            TREE,
            DEEP_TREE,
            [
                Issue(
                    "/children/0/children/0/name",
                    "1 is not of type 'string'",
                    expected="string",
                    got=1,
                ),
                Issue(
                    "/children/0/children/1",
                    "'name' is a required property",
                    expected=["name"],
                    got={"children": []},
                ),
            ],
            id="recursive",
        ),
        pytest.param(TREE, {"name": "a", "children": [{"name": "b"}]}, [], id="recursive-valid"),
    ],
)
def test_refs(schema: Any, value: Any, issues: list[Issue]) -> None:
    assert compile_schema(schema).validate(value) == (value, issues)


@pytest.mark.parametrize(
    ("text", "schema", "expected", "rules"),
    [
        pytest.param(
            '{"items": [{"price": "1,234.5"}]}',
            DEFS,
            {"items": [{"price": 1234.5}]},
            ["coerce"],
            id="defs",
        ),
        pytest.param(
            "{'items': [{'Price': 2}]}",
            DEFINITIONS,
            {"items": [{"price": 2}]},
            ["single_quotes", "single_quotes", "key_case"],
            id="definitions",
        ),
        pytest.param(
            '{"name": "a", "children": [{"Name": "b", "children": [{"name": "c",}]}]}',
            TREE,
            {"name": "a", "children": [{"name": "b", "children": [{"name": "c"}]}]},
            ["trailing_comma", "key_case"],
            id="recursive",
        ),
    ],
)
def test_refs_end_to_end(text: str, schema: Any, expected: Any, rules: list[str]) -> None:
    outcome = repairllm.repair(text, schema, outcome=True)
    assert outcome.value == expected
    assert outcome.ledger.rules() == rules


@pytest.mark.parametrize(
    ("schema", "fragment"),
    [
        pytest.param(
            {"type": "object", "properties": {"a": {"$ref": "#/$defs/missing"}}},
            "/$defs/missing",
            id="missing-local",
        ),
        pytest.param(
            {"type": "object", "properties": {"a": {"$ref": "http://example.invalid/x.json"}}},
            "http://example.invalid/x.json",
            id="remote",
        ),
    ],
)
def test_unresolvable_ref_is_a_schema_error(schema: Any, fragment: str) -> None:
    compiled = compile_schema(schema)
    with pytest.raises(SchemaError, match="cannot be resolved") as info:
        compiled.validate({"a": 1})
    assert fragment in str(info.value)
    with pytest.raises(SchemaError):
        repairllm.repair('{"a": 1', schema)


# -- compile_schema: caching and errors -----------------------------------------------------


class Price(pydantic.BaseModel):
    amount: float
    currency: str = "EUR"


def test_cache_same_dict_object() -> None:
    schema = {"type": "object", "properties": {"a": {"type": "integer"}}}
    first = compile_schema(schema)
    assert compile_schema(schema) is first
    assert compile_schema(first) is first
    assert compile_schema(dict(schema)) is not first  # an equal but different dict


@pytest.mark.parametrize(
    "model",
    [
        pytest.param(Price, id="model"),
        pytest.param(list[int], id="list-int"),
        pytest.param(dict[str, Price], id="dict-of-models"),
        pytest.param(int, id="int"),
    ],
)
def test_cache_same_type(model: Any) -> None:
    first = compile_schema(model)
    assert first.adapter is not None
    assert compile_schema(model) is first


def test_pydantic_schema_root_is_its_json_schema() -> None:
    schema = compile_schema(Price)
    assert schema.root == Price.model_json_schema()
    assert schema.is_valid({"amount": 1.5})
    assert not schema.is_valid({"amount": "x"})


@pytest.mark.parametrize(
    ("schema", "where"),
    [
        pytest.param({"type": 12}, "/type", id="type-number"),
        pytest.param(
            {"properties": {"a": {"type": "strng"}}}, "/properties/a/type", id="type-typo"
        ),
        pytest.param({"type": "object", "required": "a"}, "/required", id="required-string"),
        pytest.param(
            {"$schema": DRAFTS["draft-07"], "properties": {"a": {"minimum": "x"}}},
            "/properties/a/minimum",
            id="minimum-string",
        ),
        pytest.param({"items": {"enum": "abc"}}, "/items/enum", id="enum-not-array"),
    ],
)
def test_invalid_schema(schema: Any, where: str) -> None:
    with pytest.raises(SchemaError) as info:
        compile_schema(schema)
    assert f"invalid JSON Schema at {where}:" in str(info.value)
    assert info.value.schema is schema
    assert isinstance(info.value, ValueError)
    assert isinstance(info.value, repairllm.RepairLLMError)
    with pytest.raises(SchemaError):
        repairllm.repair('{"a": 1}', schema)


@pytest.mark.parametrize(
    "schema",
    [
        pytest.param(object(), id="object"),
        pytest.param(5, id="int"),
        pytest.param([{"type": "string"}], id="list"),
        pytest.param("string", id="str"),
        pytest.param({1, 2}, id="set"),
    ],
)
def test_not_a_schema(schema: Any) -> None:
    with pytest.raises(SchemaError) as info:
        compile_schema(schema)
    assert "schema" in str(info.value)
    with pytest.raises(SchemaError):
        repairllm.repair("{}", schema)


# -- issues: pointers, expected, got ----------------------------------------------------------

ORDER = {
    "type": "object",
    "properties": {
        "id": {"type": "string"},
        "items": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "sku": {"type": "string"},
                    "price": {"type": "number", "minimum": 0},
                },
                "required": ["sku", "price"],
            },
        },
        "status": {"enum": ["new", "paid"]},
        "a/b": {"type": "integer"},
    },
    "required": ["id"],
}


@pytest.mark.parametrize(
    ("value", "issues"),
    [
        pytest.param(
            {
                "id": "1",
                "items": [
                    {"sku": "a", "price": 1},
                    {"sku": "b", "price": 2},
                    {"sku": "c", "price": "x"},
                ],
            },
            [Issue("/items/2/price", "'x' is not of type 'number'", expected="number", got="x")],
            id="nested-type",
        ),
        pytest.param(
            {"id": "1", "items": [{"sku": "a", "price": -1}]},
            [Issue("/items/0/price", "-1 is less than the minimum of 0", expected=0, got=-1)],
            id="nested-minimum",
        ),
        pytest.param(
            {"id": "1", "items": [{"price": 1}]},
            [
                Issue(
                    "/items/0",
                    "'sku' is a required property",
                    expected=["sku", "price"],
                    got={"price": 1},
                )
            ],
            id="nested-required",
        ),
        pytest.param(
            {"id": "1", "status": "open"},
            [
                Issue(
                    "/status",
                    "'open' is not one of ['new', 'paid']",
                    expected=["new", "paid"],
                    got="open",
                )
            ],
            id="enum",
        ),
        pytest.param(
            {"id": "1", "a/b": "x"},
            [Issue("/a~1b", "'x' is not of type 'integer'", expected="integer", got="x")],
            id="escaped-pointer",
        ),
        pytest.param(
            {"id": 1, "items": "none"},
            [
                Issue("/id", "1 is not of type 'string'", expected="string", got=1),
                Issue("/items", "'none' is not of type 'array'", expected="array", got="none"),
            ],
            id="several-sorted-by-path",
        ),
    ],
)
def test_json_schema_issues(value: Any, issues: list[Issue]) -> None:
    assert compile_schema(ORDER).validate(value) == (value, issues)
    assert compile_schema(ORDER).issues(value) == issues


class Item(pydantic.BaseModel):
    sku: str
    price: float


class Order(pydantic.BaseModel):
    id: str
    items: list[Item]
    placed: datetime.date | None = None


@pytest.mark.parametrize(
    ("value", "issues"),
    [
        pytest.param(
            {
                "id": "1",
                "items": [
                    {"sku": "a", "price": 1},
                    {"sku": "b", "price": 2},
                    {"sku": "c", "price": "x"},
                ],
            },
            [
                Issue(
                    "/items/2/price",
                    "Input should be a valid number",
                    expected="float_type",
                    got="x",
                )
            ],
            id="nested-type",
        ),
        pytest.param(
            {"id": "1", "items": [{"sku": "a"}]},
            [Issue("/items/0/price", "Field required", expected="missing", got=None)],
            id="missing",
        ),
        pytest.param(
            {"id": 1, "items": []},
            [Issue("/id", "Input should be a valid string", expected="string_type", got=1)],
            id="strict-no-int-to-str",
        ),
        pytest.param(
            {"id": "1", "items": [], "placed": "2024-13-01"},
            [
                Issue(
                    "/placed",
                    "Input should be a valid date in the format YYYY-MM-DD, month value is outside "
                    "expected range of 1-12",
                    expected="date_parsing",
                    got="2024-13-01",
                )
            ],
            id="bad-date",
        ),
    ],
)
def test_pydantic_issues(value: Any, issues: list[Issue]) -> None:
    assert compile_schema(Order).validate(value) == (value, issues)


def test_pydantic_valid_value_is_an_instance() -> None:
    final, issues = compile_schema(Order).validate({"id": "1", "items": [], "placed": "2024-02-29"})
    assert issues == []
    assert isinstance(final, Order)
    assert final.placed == datetime.date(2024, 2, 29)


# -- formats ---------------------------------------------------------------------------------


def formatted(draft: str) -> dict[str, Any]:
    return {
        "$schema": DRAFTS[draft],
        "type": "object",
        "properties": {
            "email": {"type": "string", "format": "email"},
            "day": {"type": "string", "format": "date"},
        },
    }


@pytest.mark.parametrize(
    ("draft", "paths"),
    [
        pytest.param("draft-04", ["/email"], id="draft-04-no-date-format"),
        pytest.param("draft-06", ["/email"], id="draft-06-no-date-format"),
        pytest.param("draft-07", ["/day", "/email"], id="draft-07"),
        pytest.param("2019-09", ["/day", "/email"], id="2019-09"),
        pytest.param("2020-12", ["/day", "/email"], id="2020-12"),
    ],
)
def test_format_checking(draft: str, paths: list[str]) -> None:
    schema = compile_schema(formatted(draft))
    good = {"email": "ann@example.com", "day": "2024-02-29"}
    assert schema.validate(good) == (good, [])
    bad = {"email": "not-an-email", "day": "2024-13-45"}
    _, issues = schema.validate(bad)
    assert [i.path for i in issues] == paths
    by_path = {i.path: i for i in issues}
    assert by_path["/email"] == Issue(
        "/email", "'not-an-email' is not a 'email'", expected="email", got="not-an-email"
    )
    if "/day" in by_path:
        assert by_path["/day"] == Issue(
            "/day", "'2024-13-45' is not a 'date'", expected="date", got="2024-13-45"
        )


def test_format_issue_from_repair() -> None:
    with pytest.raises(repairllm.RepairFailed) as info:
        repairllm.repair("{'email': 'nobody'}", formatted("2020-12"))
    err = info.value
    assert err.issues == [
        Issue("/email", "'nobody' is not a 'email'", expected="email", got="nobody")
    ]
    assert err.best is not None
    assert err.best.data == {"email": "nobody"}
    assert err.ledger.rules() == ["single_quotes", "single_quotes"]


# -- RepairFailed carries the best candidate ------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "schema", "data", "issues", "rules"),
    [
        pytest.param(
            '{"id": "1", "items": [{"sku": "a", "price": "abc"},]}',
            ORDER,
            {"id": "1", "items": [{"sku": "a", "price": "abc"}]},
            [
                Issue(
                    "/items/0/price", "'abc' is not of type 'number'", expected="number", got="abc"
                )
            ],
            ["trailing_comma"],
            id="json-schema",
        ),
        pytest.param(
            "Sure! {'id': '1', 'items': [{'sku': 'a', 'price': 'abc'}]}",
            Order,
            # aligning filled the optional field's default before validation still failed
            {"id": "1", "items": [{"sku": "a", "price": "abc"}], "placed": None},
            [
                Issue(
                    "/items/0/price",
                    "Input should be a valid number",
                    expected="float_type",
                    got="abc",
                )
            ],
            ["json_span"] + ["single_quotes"] * 7 + ["fill_default"],
            id="pydantic",
        ),
        pytest.param(
            '{"Id": "1", "status": "refunded"}',
            ORDER,
            {"id": "1", "status": "refunded"},
            [
                Issue(
                    "/status",
                    "'refunded' is not one of ['new', 'paid']",
                    expected=["new", "paid"],
                    got="refunded",
                )
            ],
            ["key_case"],
            id="partly-aligned",
        ),
        pytest.param(
            "[1, 2, 'x']",
            list[int],
            [1, 2, "x"],
            [Issue("/2", "Input should be a valid integer", expected="int_type", got="x")],
            ["single_quotes"],
            id="list-int",
        ),
        pytest.param(
            '{"id": "1", "items": [{"sku": "a"',
            {**ORDER, "required": ["id", "items"]},
            {"id": "1", "items": [{"sku": "a"}]},
            [
                Issue(
                    "/items/0",
                    "'price' is a required property",
                    expected=["sku", "price"],
                    got={"sku": "a"},
                )
            ],
            ["missing_closer", "missing_closer", "missing_closer"],
            id="truncated",
        ),
    ],
)
def test_repair_failed_carries_best(
    text: str, schema: Any, data: Any, issues: list[Issue], rules: list[str]
) -> None:
    with pytest.raises(repairllm.RepairFailed) as info:
        repairllm.repair(text, schema)
    err = info.value
    assert err.best is not None
    assert err.best.data == data
    assert err.best.valid is False
    assert err.issues == issues
    assert err.issues == err.best.issues
    assert err.ledger is err.best.ledger
    assert err.ledger.rules() == rules
    assert err.raw == text
    assert issues[0].path in str(err)


# -- the corpus ------------------------------------------------------------------------------------

SCHEMAS_DIR = Path(__file__).resolve().parent.parent / "schemas"
CORPUS = {
    p.stem: json.loads(p.read_text(encoding="utf-8")) for p in sorted(SCHEMAS_DIR.glob("*.json"))
}
EXAMPLES = [
    pytest.param(name, index, id=f"{name}-{index}")
    for name, schema in CORPUS.items()
    for index in range(len(schema["examples"]))
]


def single_quoted(value: Any) -> str:
    """``value`` as JSON with every string in single quotes (a Python-ish dump)."""
    if isinstance(value, str):
        body = json.dumps(value, ensure_ascii=False)[1:-1]
        return "'" + body.replace('\\"', '"').replace("'", "\\'") + "'"
    if isinstance(value, dict):
        return (
            "{"
            + ", ".join(f"{single_quoted(k)}: {single_quoted(v)}" for k, v in value.items())
            + "}"
        )
    if isinstance(value, list):
        return "[" + ", ".join(single_quoted(v) for v in value) + "]"
    return json.dumps(value)


def count_strings(value: Any) -> int:
    if isinstance(value, str):
        return 1
    if isinstance(value, dict):
        return sum(1 + count_strings(v) for v in value.values())
    if isinstance(value, list):
        return sum(count_strings(v) for v in value)
    return 0


def with_trailing_comma(value: Any) -> str:
    text = json.dumps(value, indent=2, ensure_ascii=False)
    last = len(text) - 1  # the root's closer, "}" or "]"
    return text[:last].rstrip() + ",\n" + text[last:]


def test_corpus_is_there() -> None:
    assert len(CORPUS) >= 30
    assert len(EXAMPLES) >= 90
    assert all(isinstance(s["examples"][0], dict | list) for s in CORPUS.values())


@pytest.mark.parametrize(("name", "index"), EXAMPLES)
def test_corpus_example_unchanged(name: str, index: int) -> None:
    schema = CORPUS[name]
    example = schema["examples"][index]
    for text in (json.dumps(example), json.dumps(example, indent=2, ensure_ascii=False)):
        outcome = repairllm.repair(text, schema, outcome=True)
        assert outcome.value == example
        assert outcome.ledger == []
        assert outcome.issues == []
        assert outcome.truncated is False


@pytest.mark.parametrize(("name", "index"), EXAMPLES)
def test_corpus_example_with_trailing_comma(name: str, index: int) -> None:
    schema = CORPUS[name]
    example = schema["examples"][index]
    outcome = repairllm.repair(with_trailing_comma(example), schema, outcome=True)
    assert outcome.value == example
    assert [(f.stage, f.rule, f.path) for f in outcome.ledger] == [
        ("lexical", "trailing_comma", "")
    ]


@pytest.mark.parametrize(("name", "index"), EXAMPLES)
def test_corpus_example_with_single_quotes(name: str, index: int) -> None:
    schema = CORPUS[name]
    example = schema["examples"][index]
    outcome = repairllm.repair(single_quoted(example), schema, outcome=True)
    assert outcome.value == example
    assert outcome.ledger.rules() == ["single_quotes"] * count_strings(example)


@pytest.mark.parametrize(("name", "index"), EXAMPLES)
def test_corpus_example_fenced_with_both_faults(name: str, index: int) -> None:
    schema = CORPUS[name]
    example = schema["examples"][index]
    damaged = single_quoted(example)
    damaged = damaged[:-1] + "," + damaged[-1]
    text = f"Here is the JSON you asked for:\n```json\n{damaged}\n```\nLet me know!"
    outcome = repairllm.repair(text, schema, outcome=True)
    assert outcome.value == example
    assert outcome.ledger.counts() == {
        "fenced_block": 1,
        "single_quotes": count_strings(example),
        "trailing_comma": 1,
    }
