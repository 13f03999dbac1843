"""jsonschema-rs answers "is it valid?" exactly as python-jsonschema would.

The property: over the project's schemas and a seeded sample of the shared corpora,
for valid instances and damaged copies of them (and on the sub-schemas the align stage
checks on their own), the fast verdict is python-jsonschema's, or the fast validator
declines and python-jsonschema answers. The tables pin each place where the two
engines differ by themselves and the set-up that makes them agree.
"""

from __future__ import annotations

import functools
import json
import random
import warnings
from pathlib import Path
from typing import Any

import orjson
import pydantic
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import repairllm as rl
from repairllm.bench.agreement import disagreements, edge_values, mutate, reread
from repairllm.bench.instances import GenerationError, make_instances
from repairllm.fast_validator import _PRECHECKS, fast_validation, fits
from repairllm.schema import Schema, compile_schema

ROOT = Path(__file__).resolve().parent.parent
OWN = sorted((ROOT / "schemas").glob("*.json"))
CORPORA = ROOT.parent / "shared" / "corpora"
CORPUS_SAMPLE = 25


def _corpus_sample() -> list[Path]:
    files = sorted(CORPORA.rglob("*.json")) if CORPORA.is_dir() else []
    return random.Random("fast-validator").sample(files, min(CORPUS_SAMPLE, len(files)))


SAMPLE = _corpus_sample()


@functools.cache
def _entry(path: Path) -> tuple[Schema, list[Any]] | None:
    """The compiled schema and its valid instances; ``None`` when either is missing."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
            schema = compile_schema(raw)
            values = make_instances(raw, count=3, seed=0, seconds=1.0).values
        except (ValueError, rl.RepairLLMError, GenerationError, RecursionError):
            return None
    return schema, values


def _check(path: Path, rng: random.Random) -> None:
    entry = _entry(path)
    if entry is None:
        return
    schema, instances = entry
    base = rng.choice(instances)
    values = [base, *(mutate(base, schema.root, rng) for _ in range(4)), reread(base, rng)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        found = disagreements(schema, values)
    assert not found, f"{path.name}: " + "; ".join(map(str, found[:3]))


@settings(max_examples=80, deadline=None, suppress_health_check=list(HealthCheck))
@given(path=st.sampled_from(OWN), rng=st.randoms(use_true_random=False))
def test_fast_verdicts_are_python_jsonschemas_on_the_projects_schemas(
    path: Path, rng: random.Random
) -> None:
    _check(path, rng)


@pytest.mark.skipif(not SAMPLE, reason=f"no shared corpora at {CORPORA}")
@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.data(), rng=st.randoms(use_true_random=False))
def test_fast_verdicts_are_python_jsonschemas_on_the_shared_corpora(
    data: st.DataObject, rng: random.Random
) -> None:
    _check(data.draw(st.sampled_from(SAMPLE)), rng)


def test_every_own_schema_gets_a_fast_validator() -> None:
    missing = [p.name for p in OWN if compile_schema(json.loads(p.read_text()))._fast is None]
    assert not missing


# -- where the engines differ by themselves ------------------------------------------

DRAFT7 = "http://json-schema.org/draft-07/schema#"
AGREE = {
    # Python's `$` matches before a final newline; Rust's does not.
    "pattern $ before a newline": ({"pattern": "^a$"}, "a\n", True),
    # Python's \d is Unicode; jsonschema-rs reads ECMA's ASCII \d.
    "pattern \\d on an Arabic-Indic digit": ({"pattern": "^\\d$"}, "\u0663", True),
    "pattern on a non-string": ({"pattern": "^a$"}, 5, True),
    # Rust cannot read {,3}; Python reads it as {0,3}.
    "pattern only Python reads, matched": ({"pattern": "^a{,3}$"}, "aa", True),
    "pattern only Python reads, not matched": ({"pattern": "^a{,3}$"}, "aaaa", False),
    "patternProperties key with a newline": (
        {"patternProperties": {"^a$": {"type": "integer"}}, "additionalProperties": False},
        {"a\n": 1},
        True,
    ),
    "patternProperties value checked": (
        {"patternProperties": {"^a$": {"type": "integer"}}},
        {"a\n": "x"},
        False,
    ),
    # jsonschema-rs rounds the quotient; python-jsonschema does not.
    "multipleOf 0.01 on 0.07": ({"multipleOf": 0.01}, 0.07, False),
    "multipleOf 0.1 on 0.3": ({"multipleOf": 0.1}, 0.3, False),
    "multipleOf 2 on 4.0": ({"multipleOf": 2}, 4.0, True),
    # python-jsonschema's email check is only "has an @".
    "email a@": ({"format": "email"}, "a@", True),
    "email without @": ({"format": "email"}, "ab", False),
    "date-time lower-case t and z": (
        {"format": "date-time"},
        "2024-01-31t12:00:00z",
        True,
    ),
    "date-time without an offset": ({"format": "date-time"}, "2024-01-31T12:00:00", False),
    # rfc3339-validator's `$` takes a final newline; the Rust precheck does not, so
    # python-jsonschema's checker answers.
    "date-time with a final newline": ({"format": "date-time"}, "2024-01-31T12:00:00Z\n", True),
    "date-time on 29 February of a leap year": (
        {"format": "date-time"},
        "2024-02-29T00:00:00Z",
        True,
    ),
    "date-time on 29 February of 1900": ({"format": "date-time"}, "1900-02-29T00:00:00Z", False),
    "date on 29 February of 2000": ({"format": "date"}, "2000-02-29", True),
    "date in year 0": ({"format": "date"}, "0000-01-01", False),
    "date with a final newline": ({"format": "date"}, "2024-01-31\n", False),
    "uuid in capitals": ({"format": "uuid"}, "123E4567-E89B-12D3-A456-426614174000", True),
    # Python's UUID() takes hyphens anywhere; the checker wants them at 8, 13, 18, 23.
    "uuid with one hyphen more": (
        {"format": "uuid"},
        "12345678-1234-1234-1234-123456789-abc",
        True,
    ),
    "uuid without hyphens": ({"format": "uuid"}, "123e4567e89b12d3a456426614174000", False),
    "uri with a space": ({"format": "uri"}, "http://a b", False),
    "uri with a percent escape": ({"format": "uri"}, "http://a/%7e", True),
    "uri with a broken percent escape": ({"format": "uri"}, "http://a/%7", False),
    "uri without a scheme": ({"format": "uri"}, "//a", False),
    "time with an offset": ({"format": "time"}, "23:59:60+01:00", False),
    # No rfc3987-syntax installed: python-jsonschema leaves iri unchecked.
    "iri unchecked": ({"format": "iri"}, "not an iri", True),
    "unknown format ignored": ({"format": "chickenbutt"}, "x", True),
    # Draft 4 has no date format; python-jsonschema does not check it there.
    "draft 4 date unchecked": (
        {"$schema": "http://json-schema.org/draft-04/schema#", "format": "date"},
        "x",
        True,
    ),
    # jsonschema-rs asserts content in drafts 6 and 7; python-jsonschema never does.
    "draft 7 contentMediaType": (
        {"$schema": DRAFT7, "contentMediaType": "application/json"},
        "{not json",
        True,
    ),
    # Past 64 bits orjson cannot write the value and python-jsonschema answers (below).
    "unsigned 64-bit integer against maximum": ({"maximum": 2**63}, 2**64 - 1, False),
    "unsigned 64-bit integer against const": ({"const": 2**64 - 1}, 2**64 - 1, True),
    "integer 1.0 in draft 7": ({"$schema": DRAFT7, "type": "integer"}, 1.0, True),
    "integer 1.0 in draft 4": (
        {"$schema": "http://json-schema.org/draft-04/schema#", "type": "integer"},
        1.0,
        False,
    ),
    "true is not 1": ({"enum": [1]}, True, False),
    "1.0 is 1": ({"const": 1}, 1.0, True),
    # A $ref may point under a keyword of the schema's own ("#/message/topic"); what it
    # finds there is read with Python's regexes too.
    "a $ref under an unknown keyword": (
        {
            "message": {"topic": {"pattern": "^a$"}},
            "properties": {"t": {"$ref": "#/message/topic"}},
        },
        {"t": "a\n"},
        True,
    ),
    "content under an unknown keyword, draft 7": (
        {
            "$schema": DRAFT7,
            "x": {"c": {"contentMediaType": "application/json"}},
            "properties": {"t": {"$ref": "#/x/c"}},
        },
        {"t": "{not json"},
        True,
    ),
    # Keywords of other dialects: python-jsonschema ignores them, jsonschema-rs need not.
    "dependencies in 2020-12": ({"dependencies": {"a": ["b"]}}, {"a": 1}, True),
    "const in draft 4": (
        {"$schema": "http://json-schema.org/draft-04/schema#", "const": 1},
        2,
        True,
    ),
    "exclusiveMaximum modifies maximum in draft 4": (
        {
            "$schema": "http://json-schema.org/draft-04/schema#",
            "maximum": 1,
            "exclusiveMaximum": True,
        },
        1,
        False,
    ),
    "unknown $schema is 2020-12": (
        {"$schema": "http://example.com/custom", "prefixItems": [{"type": "integer"}]},
        ["x"],
        False,
    ),
}


@pytest.mark.parametrize(("schema", "value", "valid"), AGREE.values(), ids=AGREE.keys())
def test_the_fast_verdict_is_python_jsonschemas(schema: Any, value: Any, valid: bool) -> None:
    compiled = rl.compile_schema(schema)
    assert compiled._fast is not None
    assert compiled._fast.is_valid(value) is valid
    assert compiled.validator.is_valid(value) is valid
    assert compiled.is_valid(value) is valid


@pytest.mark.parametrize(("schema", "value", "valid"), AGREE.values(), ids=AGREE.keys())
def test_a_value_read_by_orjson_gets_the_same_verdict(schema: Any, value: Any, valid: bool) -> None:
    # The path of a reply that is valid JSON: no check that the value fits jsonschema-rs,
    # and the bare Rust check where no Python keyword runs.
    text = orjson.dumps(value).decode()
    compiled = rl.compile_schema(schema)
    assert compiled.is_valid(orjson.loads(text), read_from=text) is valid
    if valid:
        assert rl.repair(text, schema) == orjson.loads(text)


def test_a_reply_nested_past_the_limit_is_checked_by_python_jsonschema() -> None:
    # orjson reads 300 levels; jsonschema-rs is not given them, whatever the path.
    text = "[" * 300 + "]" * 300
    assert not fits(text)
    assert fits("[" * 254 + "]" * 254)
    assert fits("[" * 100 + " " * 2000 + "]" * 100)  # long, but shallow
    assert rl.compile_schema({"type": "array"}).is_valid(orjson.loads(text), read_from=text)
    assert not rl.compile_schema({"maxItems": 0}).is_valid(orjson.loads(text), read_from=text)
    assert rl.repair(text, {"type": "array"}) == orjson.loads(text)


@pytest.mark.parametrize(
    ("schema", "direct"),
    [
        ({"type": "object", "properties": {"a": {"pattern": "^a$"}}}, True),
        ({"type": "object", "properties": {"a": {"format": "date"}}}, True),
        # python-jsonschema's own multipleOf may raise, which voids the verdict
        ({"type": "object", "properties": {"a": {"multipleOf": 0.5}}}, False),
        ({"patternProperties": {"^a": {}}, "additionalProperties": False}, False),
        # anywhere in the document: a $ref may reach it under any name
        ({"x": {"multipleOf": 2}, "properties": {"a": {"$ref": "#/x"}}}, False),
    ],
)
def test_the_bare_rust_check_only_where_no_python_keyword_runs(schema: Any, direct: bool) -> None:
    compiled = rl.compile_schema(schema)
    fast = compiled._fast
    assert fast is not None
    assert fast._voids is not direct
    # repair's fast path calls jsonschema-rs itself only where nothing can void it
    assert (fast.bare is not None) is direct
    assert (compiled.bare_check is not None) is direct


def test_a_pydantic_schema_is_validated_by_pydantic_on_the_fast_path() -> None:
    class Person(pydantic.BaseModel):
        name: str

    compiled = rl.compile_schema(Person)
    assert compiled._fast is not None
    assert compiled._fast.bare is not None
    assert compiled.bare_check is None  # pydantic builds the value, so it must check it
    assert rl.repair('{"name": "Ann"}', Person) == Person(name="Ann")  # built by pydantic
    assert rl.repair('{"name": "Ann"}', Person, outcome=True).value == Person(name="Ann")


DECLINED = {
    "an integer past 64 bits": ({"type": "integer"}, 2**64),
    "a lone surrogate": ({"type": "string"}, "\ud800"),
    "nesting past orjson's limit": ({}, json.loads("[" * 300 + "]" * 300)),
    "multipleOf that overflows in Python": ({"multipleOf": 0.1}, 10**400),
    "a format checker that raises": ({"format": "regex"}, "a{99999999999}"),
}


@pytest.mark.parametrize(("schema", "value"), DECLINED.values(), ids=DECLINED.keys())
def test_python_jsonschema_answers_what_the_fast_one_declines(schema: Any, value: Any) -> None:
    compiled = rl.compile_schema(schema)
    assert compiled._fast is not None
    assert compiled._fast.is_valid(value) is None


def test_a_format_checker_that_raises_on_the_fast_path_is_python_jsonschemas_verdict() -> None:
    # The bare Rust check calls the checker, which raises; python-jsonschema then
    # answers, and raises the same, in the library's own words.
    compiled = rl.compile_schema({"format": "regex"})
    assert compiled.bare_check is not None
    with pytest.raises(rl.SchemaError, match="cannot check this value"):
        rl.repair('"a{99999999999}"', compiled)
    assert rl.repair('"a{9}"', compiled) == "a{9}"
    with pytest.raises(rl.RepairFailed):
        rl.repair('"("', compiled)


NO_FAST = {
    "draft 3": {"$schema": "http://json-schema.org/draft-03/schema#", "type": "string"},
    "a $ref into another document": {"$ref": "https://example.com/other.json"},
    # python-jsonschema switches dialect where a sub-schema names another one.
    "a sub-schema in another dialect": {
        "definitions": {
            "n": {"$schema": "http://json-schema.org/draft-04/schema#", "type": "integer"}
        },
        "properties": {"a": {"$ref": "#/definitions/n"}},
    },
    "unevaluatedProperties beside patternProperties": {
        "patternProperties": {"^a": {}},
        "unevaluatedProperties": False,
    },
}


@pytest.mark.parametrize("schema", NO_FAST.values(), ids=NO_FAST.keys())
def test_schemas_jsonschema_rs_cannot_take_stay_with_python_jsonschema(schema: Any) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        compiled = rl.compile_schema(schema)
    assert compiled._fast is None


def test_issues_keep_python_jsonschemas_wording_and_skip_it_when_valid() -> None:
    schema = rl.compile_schema(
        {"type": "object", "properties": {"age": {"type": "integer", "minimum": 0}}}
    )
    with fast_validation(False):
        slow = schema.issues({"age": -1})
    assert schema.issues({"age": -1}) == slow
    assert [i.message for i in slow] == ["-1 is less than the minimum of 0"]
    assert schema.issues({"age": 3}) == []


def test_sub_schema_checks_resolve_refs_against_the_root() -> None:
    schema = rl.compile_schema(
        {
            "$defs": {"n": {"type": "integer"}},
            "anyOf": [{"$ref": "#/$defs/n"}, {"type": "string", "pattern": "^a$"}],
        }
    )
    first, second = schema.branches(schema.root)
    assert schema.is_valid(1, first)
    assert not schema.is_valid("a\n", first)
    assert schema.is_valid("a\n", second)  # Python's `$`
    assert schema.branches(schema.root) == [first, second]
    assert schema.branches(schema.root)[0] is first  # stable, so compiled once


def test_switching_the_fast_path_off_changes_no_verdict() -> None:
    schema = rl.compile_schema({"type": "array", "items": {"type": "string", "format": "email"}})
    values = [*edge_values(), ["a@b"], ["ab"], [1]]
    fast = [schema.is_valid(v) for v in values]
    with fast_validation(False):
        assert schema._fast_validator(None) is None
        assert [schema.is_valid(v) for v in values] == fast


# -- the Rust prechecks of formats: a match must mean python-jsonschema's checker agrees

CHECKER = __import__("jsonschema").Draft202012Validator.FORMAT_CHECKER


@pytest.mark.parametrize("name", sorted(_PRECHECKS))
@settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_a_string_the_rust_precheck_takes_is_valid_for_python_jsonschema(
    name: str, data: st.DataObject
) -> None:
    regex = _PRECHECKS[name]
    text = data.draw(st.from_regex(regex, fullmatch=name not in ("email", "idn-email")))
    schema = rl.compile_schema({"type": "string", "pattern": regex})
    with fast_validation(False):
        assert CHECKER.conforms(text, name), (name, text)
    # the same regex read by jsonschema-rs (as a pattern, by Python here) matches too
    native = __import__("jsonschema_rs").validator_for({"pattern": regex})
    assert native.is_valid(text), (name, text)
    assert schema.is_valid(text)


def test_the_date_precheck_is_exactly_pythons_calendar() -> None:
    native = __import__("jsonschema_rs").validator_for({"pattern": _PRECHECKS["date"]})
    years = ["0000", "0001", "0004", "0100", "0400", "1900", "2000", "2023", "2024", "9999"]
    for year in years:
        for month in range(14):
            for day in range(33):
                text = f"{year}-{month:02d}-{day:02d}"
                assert native.is_valid(text) == CHECKER.conforms(text, "date"), text
