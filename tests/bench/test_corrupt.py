"""Tests for the seeded corruption operators in :mod:`repairllm.bench.corrupt`."""

from __future__ import annotations

import json
import random
import re
from typing import Any

import pytest

from repairllm.bench.corrupt import (
    LOSSY,
    OPERATORS,
    SCHEMA_LEVEL,
    SERIALIZATIONS,
    WRAPPERS,
    Damaged,
    apply,
    serialize,
)

# The parser-level operators; those only a schema can undo (SCHEMA_LEVEL: the damaged
# text may be valid JSON of another value) are tested in tests/test_schema_shapes.py.
NAMES = [name for name in OPERATORS if name not in SCHEMA_LEVEL]
NON_LOSSY = [name for name in NAMES if name not in LOSSY]
# Shapes real models write, read back by repairllm itself (see the end of this file).
MODEL_SHAPES = [
    "placeholder_elements",
    "stray_quote",
    "glued_members",
    "literal_newlines",
    "unquoted_commas",
]
# Operators whose damage the small reference repair below can undo exactly.
UNDOABLE = [
    name
    for name in NON_LOSSY
    if name not in WRAPPERS and name != "unescaped_quote" and name not in MODEL_SHAPES
]


# --------------------------------------------------------------------------- #
# A small seeded corpus: rich LLM-like records plus a few awkward edge cases.
# --------------------------------------------------------------------------- #

_FIRST = ("Ada", "José", "Zoë", "Liam", "Mei", "Omar", "Priya", "Sven")
_WORDS = ("alpha", "beta", "gamma", "delta", "order", "refund", "late", "blue", "it's fine")
_EDGE_VALUES: list[Any] = [[], {}, "just a string", 42, [1, 2, 3]]


def _record(rng: random.Random) -> dict[str, Any]:
    name = rng.choice(_FIRST)
    record: dict[str, Any] = {
        "id": rng.randint(1, 10_000),
        "name": name,
        "quote": f'{name} said "{rng.choice(_WORDS)}" to me',
        "notes": "line one\nline two" + ("\tindented" if rng.random() < 0.5 else ""),
        "active": rng.random() < 0.5,
        "manager": None,
        "score": round(rng.uniform(0, 100), 2),
        "tags": rng.sample(_WORDS, rng.randint(0, 3)),
        "first-seen": "2024-05-01",
        "items": [
            {
                "sku": f"A-{rng.randint(100, 999)}",
                "qty": rng.randint(1, 5),
                "opts": [rng.random() < 0.5],
            }
            for _ in range(rng.randint(1, 3))
        ],
    }
    if rng.random() < 0.3:
        record["address"] = {"city": "Zürich", "zip": "8001", "extra": {}}
    return record


def _documents(count: int = 50) -> list[tuple[Any, str]]:
    """Return ``(value, json_text)`` pairs, alternating pretty and minified text."""
    docs: list[tuple[Any, str]] = []
    for seed in range(count - len(_EDGE_VALUES)):
        rng = random.Random(seed)
        value: Any = _record(rng) if seed % 3 else [_record(rng) for _ in range(rng.randint(1, 3))]
        docs.append((value, serialize(value, "pretty" if seed % 2 else "minified", rng)))
    docs.extend((value, json.dumps(value)) for value in _EDGE_VALUES)
    return docs


DOCS = _documents()


def _damage(name: str, text: str, seed: int) -> str:
    return OPERATORS[name](text, random.Random(f"{name}:{seed}"))


# --------------------------------------------------------------------------- #
# A tiny reference repair: enough to show the damage of most operators is undoable.
# --------------------------------------------------------------------------- #

_LOOSE_TOKEN = re.compile(
    r"""
      (?P<dq>"(?:[^"\\]|\\.)*")
    | (?P<sq>'[^']*')
    | (?P<comment>//[^\n]*|/\*.*?\*/)
    | (?P<number>-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?)
    | (?P<word>[A-Za-z_][A-Za-z0-9_]*)
    | (?P<punct>[{}\[\]:,])
    | (?P<ws>\s+)
    """,
    re.VERBOSE | re.DOTALL,
)
_WORDS_TO_JSON = {"True": "true", "False": "false", "None": "null"}
_MATCHING = {"{": "}", "[": "]"}


def _reference_repair(text: str) -> Any:
    """Parse JSON damaged by the structural operators; tokens must cover all of ``text``."""
    out: list[str] = []
    stack: list[str] = []
    position = 0
    for match in _LOOSE_TOKEN.finditer(text):
        assert match.start() == position, f"untokenizable text at {position}: {text!r}"
        position = match.end()
        kind, tok = match.lastgroup, match.group()
        if kind in ("ws", "comment"):
            continue
        if kind == "dq":
            tok = json.dumps(json.loads(tok, strict=False))
        elif kind == "sq":
            tok = json.dumps(tok[1:-1])
        elif kind == "word":
            tok = _WORDS_TO_JSON.get(
                tok, tok if tok in ("true", "false", "null") else json.dumps(tok)
            )
        if tok in ("}", "]"):
            if out and out[-1] == ",":
                out.pop()
            out.append(_MATCHING[stack.pop()])
            continue
        if tok not in (",", ":") and out and out[-1] not in ("{", "[", ",", ":"):
            out.append(",")
        out.append(tok)
        if tok in _MATCHING:
            stack.append(tok)
    assert position == len(text), f"untokenizable text at {position}: {text!r}"
    out.extend(_MATCHING[opener] for opener in reversed(stack))
    return json.loads("".join(out))


# --------------------------------------------------------------------------- #
# Tests
# --------------------------------------------------------------------------- #


def test_registry_shape() -> None:
    assert NAMES == [
        "prose_around",
        "markdown_fence",
        "think_block",
        "single_quotes",
        "trailing_comma",
        "unquoted_keys",
        "python_literals",
        "comments",
        "missing_comma",
        "raw_newline",
        "unescaped_quote",
        "wrong_closer",
        "missing_closer",
        "placeholder_elements",
        "stray_quote",
        "glued_members",
        "literal_newlines",
        "unquoted_commas",
        "truncated",
    ]
    assert frozenset({"truncated"}) == LOSSY
    assert set(NAMES) >= WRAPPERS


# Only text with a comma in it can be unquoted_commas' damage (see its own test below).
_COMMON = [name for name in NAMES if name != "unquoted_commas"]


@pytest.mark.parametrize("name", _COMMON, ids=_COMMON)
def test_operator_damages_most_documents(name: str) -> None:
    damaged = sum(_damage(name, text, seed) != text for seed, (_, text) in enumerate(DOCS))
    assert damaged >= 0.8 * len(DOCS), f"{name} damaged only {damaged}/{len(DOCS)}"


@pytest.mark.parametrize("name", NON_LOSSY, ids=NON_LOSSY)
def test_damage_is_detectable(name: str) -> None:
    for seed, (_, text) in enumerate(DOCS):
        damaged = _damage(name, text, seed)
        if damaged == text:
            continue
        if name in WRAPPERS:
            assert text in damaged
        # Strict JSON never reads the damaged text, let alone as a different value.
        with pytest.raises(ValueError):
            json.loads(damaged)


@pytest.mark.parametrize("name", UNDOABLE, ids=UNDOABLE)
def test_original_value_is_recoverable(name: str) -> None:
    for seed, (value, text) in enumerate(DOCS):
        damaged = _damage(name, text, seed)
        assert _reference_repair(damaged) == value, damaged


def test_unescaped_quote_only_drops_backslashes() -> None:
    for seed, (_, text) in enumerate(DOCS):
        damaged = _damage("unescaped_quote", text, seed)
        if damaged != text:
            assert '\\"' in text
            assert len(damaged) < len(text)
            assert damaged.replace('\\"', '"') == text.replace('\\"', '"')


def test_unescaped_quote_never_makes_valid_json() -> None:
    text = json.dumps(['a",', '"b'])  # any choice stays invalid
    for seed in range(50):
        damaged = OPERATORS["unescaped_quote"](text, random.Random(seed))
        with pytest.raises(ValueError):
            json.loads(damaged)
    tricky = json.dumps(['a","b'])  # the only choice gives valid ["a","b"]
    for seed in range(50):
        assert OPERATORS["unescaped_quote"](tricky, random.Random(seed)) == tricky


def test_truncated_cuts_the_last_forty_percent() -> None:
    for seed, (_, text) in enumerate(DOCS):
        damaged = _damage("truncated", text, seed)
        assert text.startswith(damaged)
        assert len(text) * 0.6 - 1 <= len(damaged) < len(text)


def test_missing_closer_removes_only_trailing_closers() -> None:
    for seed, (_, text) in enumerate(DOCS):
        damaged = _damage("missing_closer", text, seed)
        assert text.startswith(damaged)
        assert set(text[len(damaged) :]) <= set(" \n}]")


@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("python_literals", '{"a": "true", "b": 1}'),
        ("raw_newline", '{"a": "no escapes", "b": "back\\\\nslash"}'),
        ("unescaped_quote", '{"a": "plain"}'),
        ("wrong_closer", '{"a": 1, "b": "[x]"}'),
        ("unquoted_keys", '{"not an identifier": 1, "9lives": 2}'),
        ("single_quotes", '{"it\'s": "a\\"b"}'),
        ("trailing_comma", "[]"),
        ("trailing_comma", "{}"),
        ("missing_comma", '{"a": "x,y"}'),
        ("missing_closer", '"just a string"'),
    ],
)
def test_unchanged_when_class_cannot_apply(name: str, text: str) -> None:
    for seed in range(20):
        assert OPERATORS[name](text, random.Random(seed)) == text


def test_strings_are_never_broken() -> None:
    text = json.dumps({"a": "true, false, null, ] } [ {", "b": "x // y /* z */", "c": [True]})
    for name in UNDOABLE:
        for seed in range(20):
            damaged = OPERATORS[name](text, random.Random(seed))
            assert _reference_repair(damaged) == json.loads(text), (name, damaged)


@pytest.mark.parametrize("name", NAMES, ids=NAMES)
def test_deterministic(name: str) -> None:
    for seed, (_, text) in enumerate(DOCS[:15]):
        first = OPERATORS[name](text, random.Random(seed))
        second = OPERATORS[name](text, random.Random(seed))
        assert first == second


def test_seeds_vary_the_damage() -> None:
    text = DOCS[1][1]
    for name in ("prose_around", "comments", "missing_comma", "truncated"):
        outputs = {OPERATORS[name](text, random.Random(seed)) for seed in range(20)}
        assert len(outputs) > 1, name


def test_apply_combination() -> None:
    for seed, (value, text) in enumerate(DOCS):
        result = apply(("trailing_comma", "python_literals"), text, random.Random(seed))
        assert isinstance(result, Damaged)
        assert set(result.operators) <= {"trailing_comma", "python_literals"}
        if result.operators:
            assert result.text != text
        assert _reference_repair(result.text) == value

    value, text = DOCS[1]
    result = apply(["single_quotes", "markdown_fence"], text, random.Random(7))
    assert result.operators == ("single_quotes", "markdown_fence")
    assert result.text.startswith("```")
    inner = result.text.split("\n", 1)[1].rsplit("```", 1)[0].strip()
    assert _reference_repair(inner) == value


# Brackets, commas and literals inside the strings that single_quotes wrote stay text
# for the operators applied after it.
_AFTER_SINGLE_QUOTES = ["trailing_comma", "missing_comma", "wrong_closer", "python_literals"]


@pytest.mark.parametrize("name", _AFTER_SINGLE_QUOTES, ids=_AFTER_SINGLE_QUOTES)
@pytest.mark.parametrize(
    "value",
    [
        pytest.param({"a": "[deleted]", "b": [1, 2]}, id="brackets"),
        pytest.param({"a": "{x}, [y]", "b": {"c": True}}, id="braces-and-comma"),
        pytest.param(["true", "null", [False]], id="literals"),
    ],
)
def test_operators_after_single_quotes_leave_its_strings_alone(name: str, value: Any) -> None:
    for style in ("pretty", "minified"):
        text = serialize(value, style, random.Random(0))
        for seed in range(20):
            damaged = apply(("single_quotes", name), text, random.Random(seed))
            assert _reference_repair(damaged.text) == value, damaged


def test_apply_single_name_and_unknown_name() -> None:
    text = DOCS[1][1]
    assert apply("trailing_comma", text, random.Random(0)).operators == ("trailing_comma",)
    assert apply("python_literals", "[1]", random.Random(0)) == Damaged("[1]", ())
    with pytest.raises(ValueError, match="no_such_operator"):
        apply(("trailing_comma", "no_such_operator"), text, random.Random(0))


def _find_json(text: str) -> Any:
    """Return the first complete JSON object or array found in ``text``."""
    decoder = json.JSONDecoder()
    for match in re.finditer(r"[{\[]", text):
        try:
            return decoder.raw_decode(text, match.start())[0]
        except ValueError:
            continue
    raise AssertionError(f"no JSON in {text!r}")


@pytest.mark.parametrize("style", SERIALIZATIONS, ids=SERIALIZATIONS)
def test_serialize_styles(style: str) -> None:
    for seed, (value, _) in enumerate(DOCS[:-5]):
        text = serialize(value, style, random.Random(seed))
        assert _find_json(text) == value
        if style in ("pretty", "minified"):
            assert json.loads(text) == value
        else:
            with pytest.raises(ValueError):
                json.loads(text)
            assert json.dumps(value, ensure_ascii=False, indent=2) in text
    assert serialize({"a": 1}, "minified", random.Random(0)) == '{"a":1}'
    assert serialize({"a": 1}, "pretty", random.Random(0)) == '{\n  "a": 1\n}'
    assert "<think>" in serialize({"a": 1}, "think", random.Random(0))


def test_serialize_unknown_style() -> None:
    with pytest.raises(ValueError, match="yaml"):
        serialize({"a": 1}, "yaml", random.Random(0))


# --------------------------------------------------------------------------- #
# Shapes real models write: placeholders, stray quotes, glued members, escaped
# layout, unquoted text with commas. repairllm reads each back exactly.
# --------------------------------------------------------------------------- #


def _with_commas(count: int = 20) -> list[tuple[Any, str]]:
    docs = []
    for seed in range(count):
        rng = random.Random(seed)
        value = {
            "name": rng.choice(("Smith, John", "Lee, Ann, PhD")),
            "note": "All items were delivered, but one box was damaged.",
            "items": [{"sku": "A-1", "label": "red, large"}],
            "count": rng.randint(1, 9),
        }
        docs.append((value, serialize(value, "pretty" if seed % 2 else "minified", rng)))
    return docs


COMMA_DOCS = _with_commas()


@pytest.mark.parametrize("name", MODEL_SHAPES, ids=MODEL_SHAPES)
def test_model_shape_reads_back_exactly(name: str) -> None:
    from repairllm import repair

    damaged_count = 0
    for seed, (value, text) in enumerate(DOCS + COMMA_DOCS):
        damaged = _damage(name, text, seed)
        if damaged == text:
            continue
        damaged_count += 1
        with pytest.raises(ValueError):
            json.loads(damaged)
        assert repair(damaged) == value, damaged
    assert damaged_count >= len(COMMA_DOCS)


def test_unquoted_commas_damages_text_with_commas() -> None:
    for seed, (_, text) in enumerate(COMMA_DOCS):
        damaged = _damage("unquoted_commas", text, seed)
        assert damaged != text
        assert damaged.count('"') < text.count('"')


@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("placeholder_elements", '"just a string"'),
        ("stray_quote", "[]"),
        ("stray_quote", "{}"),
        ("glued_members", "[1, 2, true]"),
        ("literal_newlines", "42"),
        ("unquoted_commas", '{"a": "no comma"}'),
        ("unquoted_commas", '["a, b"]'),
        ("unquoted_commas", '{"a, b": 1}'),
        ("unquoted_commas", '{"a": "x, y: z"}'),
        ("unquoted_commas", '{"a": "true, false"}'),
        ("unquoted_commas", '{"a": "1, 2"}'),
        ("unquoted_commas", '{"a": "x, \\"y\\""}'),
        ("unquoted_commas", '{"a": "x, y "}'),
    ],
)
def test_model_shape_unchanged_when_class_cannot_apply(name: str, text: str) -> None:
    for seed in range(20):
        assert OPERATORS[name](text, random.Random(seed)) == text


def test_model_shapes_leave_strings_alone() -> None:
    from repairllm import repair

    value = {"a": "x, y ... etc. \\n", "b": ['"]"', "<etc>"], "c": [{"d": "..."}]}
    for style in ("pretty", "minified"):
        text = serialize(value, style, random.Random(0))
        for name in MODEL_SHAPES:
            for seed in range(20):
                damaged = OPERATORS[name](text, random.Random(seed))
                assert repair(damaged) == value, (name, damaged)


@pytest.mark.parametrize(
    ("name", "text", "expected"),
    [
        ("glued_members", '{"a": "x", "b": [1]}', '{"a": "x""b": [1]}'),
        ("stray_quote", '["a"]', '["a""]'),
        ("literal_newlines", '{\n  "a": 1\n}', '{\\n  "a": 1\\n}'),
        ("unquoted_commas", '{"a": "x, y", "b": 1}', '{"a": x, y, "b": 1}'),
    ],
)
def test_model_shape_examples(name: str, text: str, expected: str) -> None:
    outputs = {OPERATORS[name](text, random.Random(seed)) for seed in range(30)}
    assert expected in outputs
