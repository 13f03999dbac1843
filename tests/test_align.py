"""The align stage: keys, shape, scalars, enums, defaults, extras, unions, refs, pydantic.

Every case states the exact aligned value and the exact ledger (rule and JSON pointer of
each fix). Most cases run twice: through :func:`repairllm.align.align` on a Python value
(the unit itself), and end to end through :func:`repairllm.repair` on the value's JSON
text, which must reach the same value with the same ledger.
"""

from __future__ import annotations

import copy
import json
from typing import Any, Literal

import pydantic
import pytest

import repairllm
from repairllm import DEFAULT, LENIENT, STRICT, Policy, compile_schema
from repairllm.align import align, normalise_key

# -- helpers ---------------------------------------------------------------------------


def obj(required: list[str] | None = None, closed: bool = False, **props: Any) -> dict[str, Any]:
    """A JSON Schema object node."""
    node: dict[str, Any] = {"type": "object", "properties": props}
    if required:
        node["required"] = required
    if closed:
        node["additionalProperties"] = False
    return node


STR = {"type": "string"}
INT = {"type": "integer"}
NUM = {"type": "number"}
BOOL = {"type": "boolean"}


def check_fix_invariants(fixes: list[repairllm.Fix]) -> None:
    for fix in fixes:
        assert fix.stage in ("align", "lexical"), fix
        if fix.stage == "lexical":
            # only the inside of a decoded JSON string is re-parsed by the lexical stage
            continue
        if fix.rule == "fill_default":
            assert fix.cost == 0.0, fix
        else:
            assert fix.cost > 0, fix
        assert fix.cost == DEFAULT.cost(fix.rule), fix
        assert fix.path == "" or fix.path.startswith("/"), fix


def run_align(value: Any, schema: Any, policy: Policy = DEFAULT) -> tuple[Any, list[Any]]:
    """Align ``value`` directly; check the input is untouched and the fixes well formed."""
    snapshot = copy.deepcopy(value)
    compiled = compile_schema(schema)
    out, fixes = align(value, compiled, policy)
    assert value == snapshot, "align mutated its input"
    check_fix_invariants(fixes)
    return out, [(f.rule, f.path) for f in fixes]


def run_repair(text: str, schema: Any, policy: Any = None) -> repairllm.Outcome:
    outcome = repairllm.repair(text, schema, policy=policy, outcome=True)
    assert outcome.valid
    assert outcome.issues == []
    check_fix_invariants(list(outcome.ledger.stage("align")))
    return outcome


def fixes_of(outcome: repairllm.Outcome) -> list[tuple[str, str]]:
    return [(f.rule, f.path) for f in outcome.ledger]


def case(
    value: Any,
    schema: Any,
    expected: Any,
    fixes: list[tuple[str, str]],
    *,
    id: str,
    policy: Policy = DEFAULT,
    e2e: list[tuple[str, str]] | None = None,
) -> Any:
    """One table row; ``e2e`` is the end-to-end ledger when it differs from align's own."""
    return pytest.param(value, schema, expected, fixes, policy, e2e, id=id)


def check_case(
    value: Any,
    schema: Any,
    expected: Any,
    fixes: list[tuple[str, str]],
    policy: Policy,
    e2e: list[tuple[str, str]] | None,
) -> None:
    compiled = compile_schema(schema)
    # the pipeline only aligns what is invalid; every case here starts invalid
    assert not compiled.is_valid(value)
    out, got_fixes = run_align(value, schema, policy)
    assert out == expected
    assert got_fixes == fixes
    assert compiled.is_valid(out)
    # end to end: the same value and the same ledger
    outcome = run_repair(json.dumps(value), schema, policy)
    assert outcome.value == expected
    assert fixes_of(outcome) == (fixes if e2e is None else e2e)


CASE_ARGS = ("value", "schema", "expected", "fixes", "policy", "e2e")


# -- 1. key case and separators ---------------------------------------------------------

PERSON = obj(["first_name"], first_name=STR, age=INT)
CAMEL = obj(["userId"], userId=INT, displayName=STR)

KEY_CASE = [
    case(
        {"firstName": "Ann"},
        PERSON,
        {"first_name": "Ann"},
        [("key_case", "/first_name")],
        id="camel-to-snake",
    ),
    case(
        {"FirstName": "Ann"},
        PERSON,
        {"first_name": "Ann"},
        [("key_case", "/first_name")],
        id="pascal-to-snake",
    ),
    case(
        {"first-name": "Ann"},
        PERSON,
        {"first_name": "Ann"},
        [("key_case", "/first_name")],
        id="kebab-to-snake",
    ),
    case(
        {"First Name": "Ann"},
        PERSON,
        {"first_name": "Ann"},
        [("key_case", "/first_name")],
        id="title-case-to-snake",
    ),
    case(
        {"FIRST_NAME": "Ann"},
        PERSON,
        {"first_name": "Ann"},
        [("key_case", "/first_name")],
        id="upper-to-snake",
    ),
    case({"user_id": 7}, CAMEL, {"userId": 7}, [("key_case", "/userId")], id="snake-to-camel"),
    case(
        {"USER-ID": 7, "Display Name": "x"},
        CAMEL,
        {"userId": 7, "displayName": "x"},
        [("key_case", "/userId"), ("key_case", "/displayName")],
        id="two-keys-to-camel",
    ),
    case(
        {"Person": {"firstName": "Ann", "AGE": 3}},
        obj(["person"], person=PERSON),
        {"person": {"first_name": "Ann", "age": 3}},
        [("key_case", "/person"), ("key_case", "/person/first_name"), ("key_case", "/person/age")],
        id="nested-keys",
    ),
    case(
        {"items": [{"Name": "a"}, {"NAME": "b"}]},
        obj(["items"], items={"type": "array", "items": obj(["name"], name=STR)}),
        {"items": [{"name": "a"}, {"name": "b"}]},
        [("key_case", "/items/0/name"), ("key_case", "/items/1/name")],
        id="keys-inside-array-items",
    ),
    case(
        {"a/b": 1},
        obj(["A/B"], **{"A/B": INT}),
        {"A/B": 1},
        [("key_case", "/A~1B")],
        id="pointer-escaped-path",
    ),
]


@pytest.mark.parametrize(CASE_ARGS, KEY_CASE)
def test_key_case(
    value: Any, schema: Any, expected: Any, fixes: Any, policy: Policy, e2e: Any
) -> None:
    check_case(value, schema, expected, fixes, policy, e2e)


@pytest.mark.parametrize(
    ("key", "normal"),
    [
        pytest.param("firstName", "firstname", id="camel"),
        pytest.param("First-Name", "firstname", id="kebab-title"),
        pytest.param("FIRST_NAME", "firstname", id="upper"),
        pytest.param("first name", "firstname", id="spaces"),
        pytest.param("Straße", "strasse", id="casefold"),
    ],
)
def test_normalise_key(key: str, normal: str) -> None:
    assert normalise_key(key) == normal


def test_exact_key_already_present_is_not_overwritten() -> None:
    # "first_name" is present; "firstName" must not be renamed onto it
    out, fixes = run_align(
        {"first_name": "A", "firstName": "B"}, obj(["age"], first_name=STR, age=INT)
    )
    assert out == {"first_name": "A", "firstName": "B"}
    assert fixes == []


# -- 2. aliases ---------------------------------------------------------------------------

ALIASED = obj(["email"], email={"type": "string", "x-aliases": ["mail", "e-mail address"]})
TITLED = obj(["dob"], dob={"type": "string", "title": "Date of Birth"})
SHARED_ALIAS = obj(
    ["a", "b"], a={"type": "string", "x-aliases": ["x"]}, b={"type": "string", "x-aliases": ["x"]}
)

ALIASES = [
    case(
        {"mail": "m@x.io"}, ALIASED, {"email": "m@x.io"}, [("key_alias", "/email")], id="x-aliases"
    ),
    case(
        {"E-Mail Address": "m@x.io"},
        ALIASED,
        {"email": "m@x.io"},
        [("key_alias", "/email")],
        id="x-aliases-case-insensitive",
    ),
    case(
        {"Date of Birth": "1990-01-01"},
        TITLED,
        {"dob": "1990-01-01"},
        [("key_alias", "/dob")],
        id="title",
    ),
    case(
        {"date_of_birth": "1990-01-01"},
        TITLED,
        {"dob": "1990-01-01"},
        [("key_alias", "/dob")],
        id="title-snake",
    ),
    case(
        {"dateOfBirth": "1990-01-01"},
        TITLED,
        {"dob": "1990-01-01"},
        [("key_alias", "/dob")],
        id="title-camel",
    ),
    case(
        {"x": "1", "b": "2"},
        SHARED_ALIAS,
        {"a": "1", "b": "2"},
        [("key_alias", "/a")],
        id="shared-alias-other-target-taken",
    ),
    case(
        {"Mail": "m@x.io"},
        {
            "$defs": {"e": {"type": "string", "x-aliases": ["mail"]}},
            **obj(["email"], email={"$ref": "#/$defs/e"}),
        },
        {"email": "m@x.io"},
        [("key_alias", "/email")],
        id="alias-behind-ref",
    ),
]


@pytest.mark.parametrize(CASE_ARGS, ALIASES)
def test_aliases(
    value: Any, schema: Any, expected: Any, fixes: Any, policy: Policy, e2e: Any
) -> None:
    check_case(value, schema, expected, fixes, policy, e2e)


def test_shared_alias_with_both_targets_free_is_refused() -> None:
    out, fixes = run_align({"x": "1"}, SHARED_ALIAS)
    assert out == {"x": "1"}
    assert fixes == []
    with pytest.raises(repairllm.RepairFailed) as info:
        repairllm.repair('{"x": "1"}', SHARED_ALIAS)
    assert [i.path for i in info.value.issues] == ["", ""]
    assert info.value.ledger == []


# -- 3. bounded fuzzy key match ------------------------------------------------------------

ADDRESS = obj(["address"], address=STR)
COLOR = obj(["color"], color=STR)

FUZZY = [
    case(
        {"adress": "x"}, ADDRESS, {"address": "x"}, [("key_fuzzy", "/address")], id="missing-letter"
    ),
    case(
        {"addresss": "x"}, ADDRESS, {"address": "x"}, [("key_fuzzy", "/address")], id="extra-letter"
    ),
    case(
        {"colour": "red"}, COLOR, {"color": "red"}, [("key_fuzzy", "/color")], id="british-spelling"
    ),
    case(
        {"Adress": "x"}, ADDRESS, {"address": "x"}, [("key_fuzzy", "/address")], id="typo-and-case"
    ),
    case(
        {"colr": "red"},
        COLOR,
        {"color": "red"},
        [("key_fuzzy", "/color")],
        policy=LENIENT,
        id="lenient-threshold",
    ),
    case(
        {"adress": "x", "zz": 1},
        obj(["address"], closed=True, address=STR),
        {"address": "x"},
        [("key_fuzzy", "/address"), ("drop_extra", "/zz")],
        id="typo-plus-dropped-extra",
    ),
]


@pytest.mark.parametrize(CASE_ARGS, FUZZY)
def test_fuzzy_keys(
    value: Any, schema: Any, expected: Any, fixes: Any, policy: Policy, e2e: Any
) -> None:
    check_case(value, schema, expected, fixes, policy, e2e)


@pytest.mark.parametrize(
    ("value", "schema", "policy"),
    [
        pytest.param({"addr": "x"}, ADDRESS, DEFAULT, id="below-threshold"),
        pytest.param({"zzz": "x"}, ADDRESS, DEFAULT, id="unrelated"),
        pytest.param({"colorx": "x"}, obj(["colors"], colors=STR, colorz=STR), DEFAULT, id="tie"),
        pytest.param({"adress": "x"}, ADDRESS, Policy(fuzzy_keys=None), id="disabled"),
        pytest.param({"colour": "x"}, COLOR, Policy(fuzzy_keys=0.95), id="raised-threshold"),
        pytest.param({"adress": "x"}, ADDRESS, STRICT.replace(align=True), id="strict-fuzzy-off"),
    ],
)
def test_fuzzy_keys_refused(value: Any, schema: Any, policy: Policy) -> None:
    out, fixes = run_align(value, schema, policy)
    assert out == value
    assert fixes == []
    with pytest.raises(repairllm.RepairFailed) as info:
        repairllm.repair(json.dumps(value), schema, policy=policy)
    assert info.value.issues[0].path == ""
    assert "required property" in info.value.issues[0].message
    assert info.value.ledger == []


def test_fuzzy_tie_with_closed_object_drops_instead() -> None:
    schema = obj(["colors"], closed=True, colors=STR, colorz=STR)
    out, fixes = run_align({"colorx": "x"}, schema)
    assert out == {}
    assert fixes == [("drop_extra", "/colorx")]


def test_case_match_beats_earlier_fuzzy_match() -> None:
    out, fixes = run_align({"nme": "a", "Name": "b"}, obj(["name"], name=STR))
    assert out == {"nme": "a", "name": "b"}
    assert fixes == [("key_case", "/name")]


def test_case_match_beats_earlier_alias_match() -> None:
    out, fixes = run_align({"mail": "a", "Email": "b"}, ALIASED)
    assert out == {"mail": "a", "email": "b"}
    assert fixes == [("key_case", "/email")]


# -- 4-7. shape: unwrap object, unwrap list, wrap list, decode string ------------------------

PAIR = obj(["name", "age"], name=STR, age=INT)
INTS = {"type": "array", "items": INT}
PAIRS = {"type": "array", "items": PAIR}
TAGS = obj(["tags"], tags={"type": "array", "items": STR})

UNWRAP_OBJECT = [
    case(
        {"person": {"name": "A", "age": 3}},
        PAIR,
        {"name": "A", "age": 3},
        [("unwrap_object", "")],
        id="object-wrapper",
    ),
    case(
        {"data": {"Name": "A", "age": 3}},
        PAIR,
        {"name": "A", "age": 3},
        [("unwrap_object", ""), ("key_case", "/name")],
        id="wrapper-then-key-case",
    ),
    case({"items": [1, 2]}, INTS, [1, 2], [("unwrap_object", "")], id="array-wrapper"),
    case(
        {"results": [{"name": "A", "age": 1}]},
        PAIRS,
        [{"name": "A", "age": 1}],
        [("unwrap_object", "")],
        id="array-of-objects-wrapper",
    ),
    case(
        {"p": {"result": {"name": "A", "age": 3}}},
        obj(["p"], p=PAIR),
        {"p": {"name": "A", "age": 3}},
        [("unwrap_object", "/p")],
        id="nested-wrapper",
    ),
]

UNWRAP_LIST = [
    case(
        [{"name": "A", "age": 3}], PAIR, {"name": "A", "age": 3}, [("unwrap_list", "")], id="root"
    ),
    case(
        {"p": [{"name": "A", "age": 3}]},
        obj(["p"], p=PAIR),
        {"p": {"name": "A", "age": 3}},
        [("unwrap_list", "/p")],
        id="property",
    ),
    case(
        [{"Name": "A", "age": 3}],
        PAIR,
        {"name": "A", "age": 3},
        [("unwrap_list", ""), ("key_case", "/name")],
        id="then-key-case",
    ),
    case(
        [{"name": "A", "age": "3"}],
        PAIR,
        {"name": "A", "age": 3},
        [("unwrap_list", ""), ("coerce", "/age")],
        id="then-coerce",
    ),
    case(
        {"q": [[{"name": "A", "age": 3}]]},
        obj(["q"], q=PAIRS),
        {"q": [{"name": "A", "age": 3}]},
        [("unwrap_list", "/q/0")],
        id="item-of-array",
    ),
]

WRAP_LIST = [
    case(5, INTS, [5], [("wrap_list", "")], id="int"),
    case("a", {"type": "array", "items": STR}, ["a"], [("wrap_list", "")], id="string"),
    case(
        {"name": "A", "age": 3}, PAIRS, [{"name": "A", "age": 3}], [("wrap_list", "")], id="object"
    ),
    case({"tags": "x"}, TAGS, {"tags": ["x"]}, [("wrap_list", "/tags")], id="property"),
    case(
        {"tags": True},
        obj(["tags"], tags={"type": "array", "items": BOOL}),
        {"tags": [True]},
        [("wrap_list", "/tags")],
        id="bool",
    ),
    case(
        {"tags": "5"},
        obj(["tags"], tags=INTS),
        {"tags": [5]},
        [("wrap_list", "/tags"), ("coerce", "/tags/0")],
        id="then-coerce-item",
    ),
]

DECODE_STRING = [
    case(
        {"p": '{"name": "A", "age": 3}'},
        obj(["p"], p=PAIR),
        {"p": {"name": "A", "age": 3}},
        [("decode_string", "/p")],
        id="object-in-property",
    ),
    case(
        '{"name": "A", "age": 3}', PAIR, {"name": "A", "age": 3}, [("decode_string", "")], id="root"
    ),
    case("[1, 2, 3]", INTS, [1, 2, 3], [("decode_string", "")], id="array"),
    case(
        {"p": '{"name": "A", "age": "3"}'},
        obj(["p"], p=PAIR),
        {"p": {"name": "A", "age": 3}},
        [("decode_string", "/p"), ("coerce", "/p/age")],
        id="then-coerce",
    ),
    case(
        {"tags": "['a', 'b']"},
        TAGS,
        {"tags": ["a", "b"]},
        [("decode_string", "/tags"), ("single_quotes", "/tags/0"), ("single_quotes", "/tags/1")],
        id="with-lexical-fixes-inside",
    ),
    case(
        {"p": ' {"name": "A", "age": 3,} '},
        obj(["p"], p=PAIR),
        {"p": {"name": "A", "age": 3}},
        [("decode_string", "/p"), ("trailing_comma", "/p")],
        id="padded-with-trailing-comma",
    ),
]


@pytest.mark.parametrize(CASE_ARGS, UNWRAP_OBJECT)
def test_unwrap_object(
    value: Any, schema: Any, expected: Any, fixes: Any, policy: Policy, e2e: Any
) -> None:
    check_case(value, schema, expected, fixes, policy, e2e)


@pytest.mark.parametrize(CASE_ARGS, UNWRAP_LIST)
def test_unwrap_list(
    value: Any, schema: Any, expected: Any, fixes: Any, policy: Policy, e2e: Any
) -> None:
    check_case(value, schema, expected, fixes, policy, e2e)


@pytest.mark.parametrize(CASE_ARGS, WRAP_LIST)
def test_wrap_list(
    value: Any, schema: Any, expected: Any, fixes: Any, policy: Policy, e2e: Any
) -> None:
    check_case(value, schema, expected, fixes, policy, e2e)


@pytest.mark.parametrize(CASE_ARGS, DECODE_STRING)
def test_decode_string(
    value: Any, schema: Any, expected: Any, fixes: Any, policy: Policy, e2e: Any
) -> None:
    check_case(value, schema, expected, fixes, policy, e2e)


@pytest.mark.parametrize(
    ("value", "schema"),
    [
        pytest.param(
            [{"name": "A", "age": 3}, {"name": "B", "age": 4}], PAIR, id="two-element-list"
        ),
        pytest.param([], PAIR, id="empty-list"),
        pytest.param({"result": {"x": 1}}, PAIR, id="wrapper-of-unknown-keys"),
        pytest.param({"a": {"b": {"name": "A", "age": 3}}}, PAIR, id="two-level-wrapper"),
        pytest.param({"p": "not json"}, obj(["p"], p=PAIR), id="string-not-json"),
        pytest.param({"p": "[1, 2]"}, obj(["p"], p=PAIR), id="json-of-wrong-type"),
    ],
)
def test_shape_changes_refused(value: Any, schema: Any) -> None:
    out, fixes = run_align(value, schema)
    assert out == value
    assert fixes == []


# -- 8. scalar coercion ---------------------------------------------------------------------


def scalar(value: Any, node: Any, expected: Any, *, id: str, policy: Policy = DEFAULT) -> Any:
    return case(
        {"v": value}, obj(["v"], v=node), {"v": expected}, [("coerce", "/v")], id=id, policy=policy
    )


NULLABLE_INT = {"type": ["integer", "null"]}

COERCE = [
    scalar("30", INT, 30, id="str-to-int"),
    scalar(" -5 ", INT, -5, id="padded-negative-int"),
    scalar("1,234", INT, 1234, id="thousands-int"),
    scalar("30.0", INT, 30, id="str-float-to-int"),
    scalar("1,234.5", NUM, 1234.5, id="thousands-float"),
    scalar("3.14", NUM, 3.14, id="str-to-float"),
    scalar(".5", NUM, 0.5, id="leading-dot"),
    scalar("yes", BOOL, True, id="yes"),
    scalar("false", BOOL, False, id="false"),
    scalar("NO", BOOL, False, id="NO"),
    scalar("True", BOOL, True, id="True"),
    scalar(1, BOOL, True, id="one-to-bool"),
    scalar(True, STR, "true", id="bool-to-str"),
    scalar("null", NULLABLE_INT, None, id="null-string"),
    scalar("None", NULLABLE_INT, None, id="None-string"),
    scalar("", NULLABLE_INT, None, id="empty-string-to-null"),
    scalar("30 years", INT, 30, id="loose-number-lenient", policy=LENIENT),
    case(
        {"n": "1", "flag": "off", "ratio": "0.5", "name": "A"},
        obj(["n"], n=INT, flag=BOOL, ratio=NUM, name=STR),
        {"n": 1, "flag": False, "ratio": 0.5, "name": "A"},
        [("coerce", "/n"), ("coerce", "/flag"), ("coerce", "/ratio")],
        id="several",
    ),
]


@pytest.mark.parametrize(CASE_ARGS, COERCE)
def test_coerce(
    value: Any, schema: Any, expected: Any, fixes: Any, policy: Policy, e2e: Any
) -> None:
    check_case(value, schema, expected, fixes, policy, e2e)


@pytest.mark.parametrize(
    ("value", "node", "expected"),
    [
        pytest.param(7, STR, "7", id="int-to-str"),
        pytest.param(7.5, STR, "7.5", id="float-to-str"),
        pytest.param(7.0, STR, "7", id="integral-float-to-str"),
    ],
)
def test_coerce_number_to_string(value: Any, node: Any, expected: Any) -> None:
    # End to end, the lexical stage re-reads such a number as a string under the schema
    # (rule number_as_string, keeping the text as written); the align rule is checked here.
    out, fixes = run_align({"v": value}, obj(["v"], v=node))
    assert out == {"v": expected}
    assert fixes == [("coerce", "/v")]


def test_integral_float_becomes_int_for_integer() -> None:
    # 31.0 is an integer to JSON Schema, so it only changes when the value is aligned anyway
    out, fixes = run_align({"age": 31.0, "name": 5}, obj(["age", "name"], age=INT, name=STR))
    assert out == {"age": 31, "name": "5"}
    assert type(out["age"]) is int
    assert fixes == [("coerce", "/age"), ("coerce", "/name")]


@pytest.mark.parametrize(
    ("value", "node", "policy"),
    [
        pytest.param("30.5", INT, DEFAULT, id="fractional-for-int"),
        pytest.param("abc", INT, DEFAULT, id="word-for-int"),
        pytest.param("30 years", INT, DEFAULT, id="loose-number-default"),
        pytest.param("12,34", NUM, DEFAULT, id="bad-grouping"),
        pytest.param("NaN", NUM, DEFAULT, id="nan"),
        pytest.param("maybe", BOOL, DEFAULT, id="maybe-for-bool"),
        pytest.param(2, BOOL, DEFAULT, id="two-for-bool"),
        pytest.param(31.5, INT, DEFAULT, id="fractional-float-for-int"),
        pytest.param("nothing", NULLABLE_INT, DEFAULT, id="word-for-nullable"),
        pytest.param("30", INT, Policy(coerce=False), id="coerce-off"),
    ],
)
def test_coerce_refused(value: Any, node: Any, policy: Policy) -> None:
    out, fixes = run_align({"v": value}, obj(["v"], v=node), policy)
    assert out == {"v": value}
    assert fixes == []


# -- 9. enums -----------------------------------------------------------------------------

STATUS = {"type": "string", "enum": ["in_progress", "done", "not_started", "blocked"]}


def enum_case(
    value: Any, node: Any, expected: Any, *, id: str, rule: str = "enum_case", e2e: Any = None
) -> Any:
    return case({"v": value}, obj(["v"], v=node), {"v": expected}, [(rule, "/v")], id=id, e2e=e2e)


ENUMS = [
    enum_case("In Progress", STATUS, "in_progress", id="title-case-spaces"),
    enum_case("IN-PROGRESS", STATUS, "in_progress", id="upper-kebab"),
    enum_case("inProgress", STATUS, "in_progress", id="camel"),
    enum_case("DONE", STATUS, "done", id="upper"),
    enum_case("done!", STATUS, "done", id="punctuation"),
    enum_case("blo", STATUS, "blocked", id="unique-prefix"),
    enum_case("not", STATUS, "not_started", id="unique-prefix-word"),
    enum_case("Card", {"const": "card"}, "card", id="const"),
    enum_case("2", {"enum": [1, 2, 3]}, 2, id="numeric-enum-from-string", rule="coerce"),
    enum_case(
        1,
        {"enum": ["1", "2"]},
        "1",
        id="string-enum-from-number",
        rule="coerce",
        # end to end the schema-guided lexical re-read keeps the number's text as a string
        e2e=[("number_as_string", "/v")],
    ),
    case(
        {"levels": ["HIGH", "Low"]},
        obj(["levels"], levels={"type": "array", "items": {"enum": ["high", "low"]}}),
        {"levels": ["high", "low"]},
        [("enum_case", "/levels/0"), ("enum_case", "/levels/1")],
        id="enum-items",
    ),
]


@pytest.mark.parametrize(CASE_ARGS, ENUMS)
def test_enums(
    value: Any, schema: Any, expected: Any, fixes: Any, policy: Policy, e2e: Any
) -> None:
    check_case(value, schema, expected, fixes, policy, e2e)


@pytest.mark.parametrize(
    ("value", "node", "policy"),
    [
        pytest.param("hig", {"enum": ["high", "higher", "low"]}, DEFAULT, id="ambiguous-prefix"),
        pytest.param("red", {"enum": ["Red", "RED", "blue"]}, DEFAULT, id="ambiguous-case"),
        pytest.param("A B", {"enum": ["a-b", "a_b"]}, DEFAULT, id="ambiguous-punctuation"),
        pytest.param("bl", STATUS, DEFAULT, id="prefix-too-short"),
        pytest.param("xyz", STATUS, DEFAULT, id="no-match"),
        pytest.param("two", {"enum": [1, 2, 3]}, DEFAULT, id="word-for-number"),
        pytest.param("DONE", STATUS, Policy(coerce=False), id="coerce-off"),
    ],
)
def test_enum_refused(value: Any, node: Any, policy: Policy) -> None:
    out, fixes = run_align({"v": value}, obj(["v"], v=node), policy)
    assert out == {"v": value}
    assert fixes == []
    with pytest.raises(repairllm.RepairFailed) as info:
        repairllm.repair(json.dumps({"v": value}), obj(["v"], v=node), policy=policy)
    assert [i.path for i in info.value.issues] == ["/v"]
    assert info.value.issues[0].got == value


@pytest.mark.parametrize(
    ("value", "options"),
    [
        pytest.param("yesterday", ["yes", "no"], id="yesterday-is-not-yes"),
        pytest.param("none", ["yes", "no"], id="none-is-not-no"),
        pytest.param("not sure", ["yes", "no"], id="not-sure-is-not-no"),
    ],
)
def test_enum_value_extending_an_option_is_refused(value: str, options: list[str]) -> None:
    out, fixes = run_align({"v": value}, obj(["v"], v={"enum": options}))
    assert out == {"v": value}
    assert fixes == []


# -- 10. defaults --------------------------------------------------------------------------

TICKET = obj(
    ["title", "status"],
    title=STR,
    status={"type": "string", "default": "open"},
    priority={"type": "integer", "default": 3},
    labels={"type": "array", "items": STR, "default": []},
)

DEFAULTS = [
    case(
        {"title": "t"},
        TICKET,
        {"title": "t", "status": "open", "priority": 3, "labels": []},
        [("fill_default", "/status"), ("fill_default", "/priority"), ("fill_default", "/labels")],
        id="missing-required-with-default",
    ),
    case(
        {"title": "t", "status": None},
        TICKET,
        {"title": "t", "status": "open", "priority": 3, "labels": []},
        [("fill_default", "/status"), ("fill_default", "/priority"), ("fill_default", "/labels")],
        id="null-replaced-by-default",
    ),
    case(
        {"title": "t", "status": "closed", "priority": "1"},
        TICKET,
        {"title": "t", "status": "closed", "priority": 1, "labels": []},
        [("coerce", "/priority"), ("fill_default", "/labels")],
        id="only-missing-filled",
    ),
    case(
        {"name": "a"},
        {
            "$defs": {"cfg": {"type": "object", "properties": {"x": INT}, "default": {"x": 1}}},
            **obj(["name", "cfg"], name=STR, cfg={"$ref": "#/$defs/cfg"}),
        },
        {"name": "a", "cfg": {"x": 1}},
        [("fill_default", "/cfg")],
        id="default-behind-ref",
    ),
    case(
        {"rows": [{"id": 1}, {"id": 2, "ok": False}]},
        obj(
            ["rows"],
            rows={
                "type": "array",
                "items": obj(["id", "ok"], id=INT, ok={"type": "boolean", "default": True}),
            },
        ),
        {"rows": [{"id": 1, "ok": True}, {"id": 2, "ok": False}]},
        [("fill_default", "/rows/0/ok")],
        id="defaults-in-array-items",
    ),
]


@pytest.mark.parametrize(CASE_ARGS, DEFAULTS)
def test_defaults(
    value: Any, schema: Any, expected: Any, fixes: Any, policy: Policy, e2e: Any
) -> None:
    check_case(value, schema, expected, fixes, policy, e2e)


def test_defaults_off() -> None:
    out, fixes = run_align({"title": "t"}, TICKET, Policy(fill_defaults=False))
    assert out == {"title": "t"}
    assert fixes == []


def test_filled_default_is_a_copy() -> None:
    schema = copy.deepcopy(TICKET)
    first = repairllm.repair('{"title": "a"}', schema)
    first["labels"].append("oops")
    assert schema["properties"]["labels"]["default"] == []
    assert repairllm.repair('{"title": "b"}', schema)["labels"] == []


@pytest.mark.parametrize(
    "text",
    [
        pytest.param('{"title": "a"}', id="missing"),
        pytest.param('{"title": "a", "labels": null}', id="null"),
    ],
)
def test_filled_default_in_the_ledger_is_a_copy(text: str) -> None:
    schema = copy.deepcopy(TICKET)
    out = repairllm.repair(text, schema, outcome=True)
    (fix,) = [f for f in out.ledger if f.path == "/labels"]
    assert fix.rule == "fill_default"
    fix.after.append("oops")
    out.value["labels"].append("also")
    assert schema["properties"]["labels"]["default"] == []
    assert out.value["labels"] == ["also"]


def test_null_array_takes_its_default() -> None:
    schema = obj(["tags"], tags={"type": "array", "items": STR, "default": []})
    out, fixes = run_align({"tags": None}, schema)
    assert out == {"tags": []}
    assert fixes == [("fill_default", "/tags")]


# -- 11. forbidden properties ----------------------------------------------------------------

CLOSED = obj(["a"], closed=True, a=STR)

DROP_EXTRA = [
    case({"a": "x", "b": 1}, CLOSED, {"a": "x"}, [("drop_extra", "/b")], id="one"),
    case(
        {"a": "x", "b": 1, "c": [1]},
        CLOSED,
        {"a": "x"},
        [("drop_extra", "/b"), ("drop_extra", "/c")],
        id="two",
    ),
    case({"a": "x", "b/c": 1}, CLOSED, {"a": "x"}, [("drop_extra", "/b~1c")], id="escaped-pointer"),
    case(
        {"a": "x", "b": {"c": 1, "d": 2}},
        obj(["a"], a=STR, b=obj(None, closed=True, c=INT)),
        {"a": "x", "b": {"c": 1}},
        [("drop_extra", "/b/d")],
        id="nested",
    ),
    case(
        {"a": "x", "x-foo": 1, "y": 2},
        {**CLOSED, "patternProperties": {"^x-": {}}},
        {"a": "x", "x-foo": 1},
        [("drop_extra", "/y")],
        id="pattern-properties-kept",
    ),
    case(
        {"a": "x", "zzz": 1},
        {**obj(["a"], a=STR), "unevaluatedProperties": False},
        {"a": "x"},
        [("drop_extra", "/zzz")],
        id="unevaluated-properties",
    ),
    case(
        {"user_name": "x", "extra": 1},
        obj(["userName"], closed=True, userName=STR),
        {"userName": "x"},
        [("key_case", "/userName"), ("drop_extra", "/extra")],
        id="rename-before-drop",
    ),
]


@pytest.mark.parametrize(CASE_ARGS, DROP_EXTRA)
def test_drop_extra(
    value: Any, schema: Any, expected: Any, fixes: Any, policy: Policy, e2e: Any
) -> None:
    check_case(value, schema, expected, fixes, policy, e2e)


def test_drop_extra_off() -> None:
    out, fixes = run_align({"a": "x", "b": 1}, CLOSED, Policy(drop_extra=False))
    assert out == {"a": "x", "b": 1}
    assert fixes == []


def test_open_object_keeps_unknown_keys() -> None:
    out, fixes = run_align({"a": 1, "b": 1}, obj(["a"], a=STR))
    assert out == {"a": "1", "b": 1}
    assert fixes == [("coerce", "/a")]


# -- 12. anyOf / oneOf ---------------------------------------------------------------------

SHAPE = {
    "oneOf": [
        obj(["kind", "radius"], kind={"const": "circle"}, radius=NUM),
        obj(["kind", "side"], kind={"const": "square"}, side=NUM),
    ]
}

UNIONS = [
    case(
        {"kind": "square", "side": "2"},
        SHAPE,
        {"kind": "square", "side": 2},
        [("coerce", "/side")],
        id="discriminated-coerce",
    ),
    case(
        {"kind": "Circle", "radius": 1},
        SHAPE,
        {"kind": "circle", "radius": 1},
        [("enum_case", "/kind")],
        id="discriminator-case",
    ),
    case(
        {"kind": "circle", "Radius": "1.5"},
        SHAPE,
        {"kind": "circle", "radius": 1.5},
        [("key_case", "/radius"), ("coerce", "/radius")],
        id="discriminated-key-and-coerce",
    ),
    case(
        {"v": "5"},
        obj(["v"], v={"anyOf": [INT, {"type": "null"}]}),
        {"v": 5},
        [("coerce", "/v")],
        id="optional-int",
    ),
    case(
        {"v": "null"},
        obj(["v"], v={"anyOf": [INT, {"type": "null"}]}),
        {"v": None},
        [("coerce", "/v")],
        id="optional-null",
    ),
    case(
        {"v": "5"},
        obj(["v"], v={"anyOf": [{"type": "array", "items": INT}, INT]}),
        {"v": 5},
        [("coerce", "/v")],
        id="cheapest-branch-wins",
    ),
    case(
        [{"A": "1"}, {"B": 2}],
        {"type": "array", "items": {"anyOf": [obj(["a"], a=INT), obj(["b"], b=STR)]}},
        [{"a": 1}, {"b": "2"}],
        [("key_case", "/0/a"), ("coerce", "/0/a"), ("key_case", "/1/b"), ("coerce", "/1/b")],
        id="branch-per-item",
    ),
]


@pytest.mark.parametrize(CASE_ARGS, UNIONS)
def test_unions(
    value: Any, schema: Any, expected: Any, fixes: Any, policy: Policy, e2e: Any
) -> None:
    check_case(value, schema, expected, fixes, policy, e2e)


def test_union_with_no_matching_branch() -> None:
    value = {"kind": "triangle", "side": 1}
    out, fixes = run_align(value, SHAPE)
    assert out == value
    assert fixes == []
    with pytest.raises(repairllm.RepairFailed) as info:
        repairllm.repair(json.dumps(value), SHAPE)
    assert [i.path for i in info.value.issues] == [""]
    assert info.value.issues[0].got == value


# -- 13. $ref / $defs ----------------------------------------------------------------------

REFS = {
    "$defs": {
        "address": obj(["city", "zip"], city=STR, zip=STR),
        "person": obj(["name", "home"], name=STR, home={"$ref": "#/$defs/address"}),
    },
    **obj(
        ["owner", "staff"],
        owner={"$ref": "#/$defs/person"},
        staff={"type": "array", "items": {"$ref": "#/$defs/person"}},
    ),
}
DEFINITIONS = {
    "$schema": "http://json-schema.org/draft-07/schema#",
    "definitions": {"item": obj(["price"], price=NUM)},
    **obj(["items"], items={"type": "array", "items": {"$ref": "#/definitions/item"}}),
}
TREE = {
    "$defs": {
        "node": obj(
            ["name"], name=STR, children={"type": "array", "items": {"$ref": "#/$defs/node"}}
        )
    },
    "$ref": "#/$defs/node",
}

REF_CASES = [
    case(
        {"Owner": {"name": "A", "home": {"City": "Oslo", "zip": "0150"}}, "staff": []},
        REFS,
        {"owner": {"name": "A", "home": {"city": "Oslo", "zip": "0150"}}, "staff": []},
        [("key_case", "/owner"), ("key_case", "/owner/home/city")],
        id="nested-refs",
    ),
    case(
        {
            "owner": {"name": "A", "home": {"city": "Oslo", "zip": "0150"}},
            "staff": {"name": "B", "home": {"city": "X", "ZIP": "1"}},
        },
        REFS,
        {
            "owner": {"name": "A", "home": {"city": "Oslo", "zip": "0150"}},
            "staff": [{"name": "B", "home": {"city": "X", "zip": "1"}}],
        },
        [("wrap_list", "/staff"), ("key_case", "/staff/0/home/zip")],
        id="ref-array-items",
    ),
    case(
        {"items": [{"price": "1,234.5"}, {"Price": 2}]},
        DEFINITIONS,
        {"items": [{"price": 1234.5}, {"price": 2}]},
        [("coerce", "/items/0/price"), ("key_case", "/items/1/price")],
        id="definitions",
    ),
    case(
        {"Name": "root", "children": [{"name": "a", "children": {"NAME": "b"}}]},
        TREE,
        {"name": "root", "children": [{"name": "a", "children": [{"name": "b"}]}]},
        [
            ("key_case", "/name"),
            ("wrap_list", "/children/0/children"),
            ("key_case", "/children/0/children/0/name"),
        ],
        id="recursive",
    ),
    case(
        {"data": {"NAME": "root"}},
        TREE,
        {"name": "root"},
        [("unwrap_object", ""), ("key_case", "/name")],
        id="root-ref-unwrap",
    ),
]


@pytest.mark.parametrize(CASE_ARGS, REF_CASES)
def test_refs(value: Any, schema: Any, expected: Any, fixes: Any, policy: Policy, e2e: Any) -> None:
    check_case(value, schema, expected, fixes, policy, e2e)


# -- 14. pydantic models ---------------------------------------------------------------------


class Address(pydantic.BaseModel):
    street: str
    zip_code: str


class Person(pydantic.BaseModel):
    first_name: str
    age: int
    active: bool = True
    address: Address | None = None
    role: Literal["admin", "user", "guest"] = "user"
    tags: list[str] = []


PERSON_DEFAULTS = {"active": True, "address": None, "role": "user", "tags": []}
DEFAULT_FILLS = [
    ("fill_default", "/active"),
    ("fill_default", "/address"),
    ("fill_default", "/role"),
    ("fill_default", "/tags"),
]


class Item(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="forbid")
    name: str
    price: float


class Circle(pydantic.BaseModel):
    kind: Literal["circle"]
    radius: float


class Square(pydantic.BaseModel):
    kind: Literal["square"]
    side: float


class Drawing(pydantic.BaseModel):
    shape: Circle | Square = pydantic.Field(discriminator="kind")


class Tree(pydantic.BaseModel):
    name: str
    children: list[Tree] = []


def fills_except(*present: str) -> list[tuple[str, str]]:
    return [f for f in DEFAULT_FILLS if f[1][1:] not in present]


PYDANTIC = [
    pytest.param(
        '{"firstName": "Ann", "age": "31"}',
        Person,
        {"first_name": "Ann", "age": 31, **PERSON_DEFAULTS},
        [("key_case", "/first_name"), ("coerce", "/age"), *DEFAULT_FILLS],
        id="key-case-and-coerce",
    ),
    pytest.param(
        '{"first_name": "Ann", "age": 31.0}',
        Person,
        {"first_name": "Ann", "age": 31, **PERSON_DEFAULTS},
        [("coerce", "/age"), *DEFAULT_FILLS],
        id="integral-float-to-int",
    ),
    pytest.param(
        '{"first_name": "Ann", "age": 31, "role": "Admin"}',
        Person,
        {"first_name": "Ann", "age": 31, **PERSON_DEFAULTS, "role": "admin"},
        [("enum_case", "/role"), *fills_except("role")],
        id="literal-case",
    ),
    pytest.param(
        '{"first_name": "Ann", "age": 31, "role": "gue"}',
        Person,
        {"first_name": "Ann", "age": 31, **PERSON_DEFAULTS, "role": "guest"},
        [("enum_case", "/role"), *fills_except("role")],
        id="literal-prefix",
    ),
    pytest.param(
        '{"first_name": "Ann", "age": 31, "address": {"Street": "Main", "zipCode": "0150"}}',
        Person,
        {
            "first_name": "Ann",
            "age": 31,
            **PERSON_DEFAULTS,
            "address": {"street": "Main", "zip_code": "0150"},
        },
        [
            ("key_case", "/address/street"),
            ("key_case", "/address/zip_code"),
            *fills_except("address"),
        ],
        id="nested-model",
    ),
    pytest.param(
        '{"first_name": "Ann", "age": 31, "tags": "vip"}',
        Person,
        {"first_name": "Ann", "age": 31, **PERSON_DEFAULTS, "tags": ["vip"]},
        [("wrap_list", "/tags"), *fills_except("tags")],
        id="wrap-list-field",
    ),
    pytest.param(
        '{"person": {"first_name": "Ann", "age": 31}}',
        Person,
        {"first_name": "Ann", "age": 31, **PERSON_DEFAULTS},
        [("unwrap_object", ""), *DEFAULT_FILLS],
        id="unwrap-wrapper",
    ),
    pytest.param(
        '[{"first_name": "Ann", "age": 31}]',
        Person,
        {"first_name": "Ann", "age": 31, **PERSON_DEFAULTS},
        [("unwrap_list", ""), *DEFAULT_FILLS],
        id="unwrap-list",
    ),
    pytest.param(
        '{"name": "x", "price": "1,234.5", "color": "red"}',
        Item,
        {"name": "x", "price": 1234.5},
        [("coerce", "/price"), ("drop_extra", "/color")],
        id="extra-forbid",
    ),
    pytest.param(
        '{"shape": {"kind": "Square", "side": "2"}}',
        Drawing,
        {"shape": {"kind": "square", "side": 2.0}},
        [("enum_case", "/shape/kind"), ("coerce", "/shape/side")],
        id="discriminated-union",
    ),
    pytest.param(
        '{"name": "a", "children": [{"Name": "b", "children": {"name": "c"}}]}',
        Tree,
        {"name": "a", "children": [{"name": "b", "children": [{"name": "c", "children": []}]}]},
        [
            ("key_case", "/children/0/name"),
            ("wrap_list", "/children/0/children"),
            ("fill_default", "/children/0/children/0/children"),
        ],
        id="recursive-model",
    ),
]


@pytest.mark.parametrize(("text", "model", "dumped", "fixes"), PYDANTIC)
def test_pydantic(text: str, model: type[pydantic.BaseModel], dumped: Any, fixes: Any) -> None:
    outcome = run_repair(text, model)
    assert isinstance(outcome.value, model)
    assert outcome.value.model_dump() == dumped
    assert fixes_of(outcome) == fixes


@pytest.mark.parametrize(
    ("text", "schema", "expected", "fixes"),
    [
        pytest.param(
            '["1", "2", 3.0]',
            list[int],
            [1, 2, 3],
            [("coerce", "/0"), ("coerce", "/1"), ("coerce", "/2")],
            id="list-int",
        ),
        pytest.param(
            '"5"', list[int], [5], [("wrap_list", ""), ("coerce", "/0")], id="wrap-into-list-int"
        ),
        pytest.param(
            '{"a": "1", "b": "2"}',
            dict[str, int],
            {"a": 1, "b": 2},
            [("coerce", "/a"), ("coerce", "/b")],
            id="dict-str-int",
        ),
        pytest.param('"yes"', bool, True, [("coerce", "")], id="bool"),
        pytest.param(
            '"ADMIN"', Literal["admin", "user"], "admin", [("enum_case", "")], id="literal"
        ),
    ],
)
def test_python_types(text: str, schema: Any, expected: Any, fixes: Any) -> None:
    outcome = run_repair(text, schema)
    assert outcome.value == expected
    assert type(outcome.value) is type(expected)
    assert fixes_of(outcome) == fixes


def test_pydantic_unfixable_value() -> None:
    with pytest.raises(repairllm.RepairFailed) as info:
        repairllm.repair('{"first_name": "Ann", "age": "old"}', Person)
    assert [(i.path, i.expected, i.got) for i in info.value.issues] == [("/age", "int_type", "old")]


# -- 15. policies, invariants ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "schema", "paths"),
    [
        pytest.param(
            '{"Age": "3", "name": "A"}', obj(["age"], age=INT, name=STR), [""], id="key-case"
        ),
        pytest.param('{"age": "3"}', obj(["age"], age=INT), ["/age"], id="coerce"),
        pytest.param('{"v": "DONE"}', obj(["v"], v=STATUS), ["/v"], id="enum"),
        pytest.param('{"a": "x", "b": 1}', CLOSED, [""], id="drop-extra"),
        pytest.param('[{"name": "A", "age": 3}]', PAIR, [""], id="unwrap-list"),
        pytest.param(
            '{"firstName": "A", "age": "3"}', Person, ["/first_name", "/age"], id="pydantic"
        ),
    ],
)
def test_strict_policy_refuses_to_align(text: str, schema: Any, paths: list[str]) -> None:
    with pytest.raises(repairllm.RepairFailed) as info:
        repairllm.repair(text, schema, policy="strict")
    assert sorted(i.path for i in info.value.issues) == sorted(paths)
    assert info.value.ledger == []
    assert info.value.best is not None
    assert info.value.best.data == json.loads(text)
    # the default policy repairs the same text
    assert repairllm.repair(text, schema, outcome=True).valid


def test_strict_policy_keeps_lexical_fixes_only() -> None:
    outcome = repairllm.repair("{'age': 3,}", obj(["age"], age=INT), policy="strict", outcome=True)
    assert outcome.value == {"age": 3}
    assert outcome.ledger.rules() == ["single_quotes", "trailing_comma"]


@pytest.mark.parametrize(
    ("text", "schema"),
    [
        pytest.param('{"first_name": "Ann", "age": 3}', PERSON, id="object"),
        pytest.param("[1, 2, 3]", INTS, id="array"),
        pytest.param('{"kind": "circle", "radius": 1}', SHAPE, id="union"),
        pytest.param(
            '{"owner": {"name": "A", "home": {"city": "c", "zip": "1"}}, "staff": []}',
            REFS,
            id="refs",
        ),
        pytest.param('{"first_name": "Ann", "age": 3}', Person, id="pydantic"),
        pytest.param(
            '{"title": "t", "status": "open"}', TICKET, id="defaults-not-filled-when-valid"
        ),
    ],
)
def test_valid_value_has_empty_ledger(text: str, schema: Any) -> None:
    outcome = repairllm.repair(text, schema, outcome=True)
    assert outcome.ledger == []
    assert outcome.ledger.cost == 0
    expected = json.loads(text)
    value = (
        outcome.value.model_dump(exclude_unset=True)
        if isinstance(outcome.value, pydantic.BaseModel)
        else outcome.value
    )
    assert value == expected


@pytest.mark.parametrize(
    ("value", "schema"),
    [
        pytest.param(
            {"Person": {"firstName": "A", "AGE": "3"}},
            obj(["person"], person=PERSON),
            id="nested-keys",
        ),
        pytest.param(
            {"p": [{"name": "A", "age": "3"}], "extra": [1]},
            obj(["p"], closed=True, p=PAIR),
            id="unwrap-and-drop",
        ),
        pytest.param({"tags": "x"}, TAGS, id="wrap"),
        pytest.param({"title": "t"}, TICKET, id="defaults"),
        pytest.param(
            [{"A": "1"}, {"B": 2}],
            {"type": "array", "items": {"anyOf": [obj(["a"], a=INT), obj(["b"], b=STR)]}},
            id="union-items",
        ),
    ],
)
def test_input_never_mutated(value: Any, schema: Any) -> None:
    snapshot = copy.deepcopy(value)
    out, fixes = run_align(value, schema)
    assert fixes
    assert value == snapshot
    assert out is not value


def test_a_decoded_member_is_read_without_json_repair_under_a_copy_made_once() -> None:
    policy = Policy(costs={"wrap_list": 0.7}, fuzzy_keys=None)
    derived = policy.without_json_repair
    assert derived is policy.without_json_repair  # made once per policy
    assert derived.json_repair is False
    assert derived.replace(json_repair=True) == policy  # nothing else changed
    assert derived.without_json_repair is derived
    # An equal policy made apart is another object: it gets a copy of its own.
    other = Policy(costs={"wrap_list": 0.7}, fuzzy_keys=None)
    assert other.without_json_repair is not derived
    assert other.without_json_repair == derived
    # The copy is no field: the policy compares and prints as before it was made.
    assert policy == other
    assert repr(policy) == repr(other)
