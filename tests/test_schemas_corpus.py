"""Checks on the project's own JSON Schema corpus in ``schemas/``.

Every schema must be a valid schema for its own dialect, carry a title, a
description and at least three distinct ``examples``, and every example must
validate against the schema with format checking switched on.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from jsonschema.exceptions import ValidationError
from jsonschema.validators import validator_for

SCHEMAS_DIR = Path(__file__).resolve().parent.parent / "schemas"
SCHEMA_FILES = sorted(SCHEMAS_DIR.glob("*.json"))
MIN_SCHEMAS = 30
MIN_EXAMPLES = 3


def _load(path: Path) -> dict[str, Any]:
    with path.open(encoding="utf-8") as fh:
        data = json.load(fh)
    assert isinstance(data, dict), f"{path.name}: top level must be a JSON object"
    return data


def _canonical(instance: Any) -> str:
    return json.dumps(instance, sort_keys=True, ensure_ascii=False)


def _describe(error: ValidationError) -> str:
    location = "/".join(str(part) for part in error.absolute_path) or "<root>"
    return f"{location}: {error.message}"


def test_corpus_size() -> None:
    assert len(SCHEMA_FILES) >= MIN_SCHEMAS, (
        f"expected at least {MIN_SCHEMAS} schemas in {SCHEMAS_DIR}, found {len(SCHEMA_FILES)}"
    )


def test_file_names_are_snake_case() -> None:
    for path in SCHEMA_FILES:
        stem = path.stem
        assert stem == stem.lower(), path.name
        assert all(c.isalnum() or c == "_" for c in stem), path.name


@pytest.mark.parametrize("path", SCHEMA_FILES, ids=[p.stem for p in SCHEMA_FILES])
def test_schema_is_valid_for_its_dialect(path: Path) -> None:
    schema = _load(path)
    assert "$schema" in schema, f"{path.name}: missing $schema"
    cls = validator_for(schema, default=None)
    assert cls is not None, f"{path.name}: unknown dialect {schema['$schema']!r}"
    cls.check_schema(schema)


@pytest.mark.parametrize("path", SCHEMA_FILES, ids=[p.stem for p in SCHEMA_FILES])
def test_schema_metadata(path: Path) -> None:
    schema = _load(path)
    title = schema.get("title")
    description = schema.get("description")
    assert isinstance(title, str), f"{path.name}: title must be a string"
    assert title.strip(), f"{path.name}: empty title"
    assert isinstance(description, str), f"{path.name}: description must be a string"
    assert description.strip(), f"{path.name}: empty description"
    assert "\n" not in description, f"{path.name}: description must be one line"
    examples = schema.get("examples")
    assert isinstance(examples, list), f"{path.name}: examples must be an array"
    assert len(examples) >= MIN_EXAMPLES, f"{path.name}: needs at least {MIN_EXAMPLES} examples"


@pytest.mark.parametrize("path", SCHEMA_FILES, ids=[p.stem for p in SCHEMA_FILES])
def test_examples_validate_with_format_checking(path: Path) -> None:
    schema = _load(path)
    cls = validator_for(schema)
    validator = cls(schema, format_checker=cls.FORMAT_CHECKER)
    for index, example in enumerate(schema["examples"]):
        messages = [_describe(error) for error in validator.iter_errors(example)]
        assert not messages, f"{path.name}: example {index} is invalid: {messages}"


@pytest.mark.parametrize("path", SCHEMA_FILES, ids=[p.stem for p in SCHEMA_FILES])
def test_examples_are_pairwise_distinct(path: Path) -> None:
    examples = _load(path)["examples"]
    seen: dict[str, int] = {}
    for index, example in enumerate(examples):
        key = _canonical(example)
        assert key not in seen, f"{path.name}: example {index} duplicates example {seen[key]}"
        seen[key] = index
