"""Do jsonschema-rs and python-jsonschema give the same verdicts on the schema corpora?

The library answers "is this valid?" with jsonschema-rs (:mod:`repairllm.fast_validator`)
and must answer exactly as python-jsonschema would. This module makes the values to
compare on: a schema's valid instances (:func:`repairllm.bench.instances.make_instances`),
damaged copies of them (:func:`mutate`: a changed leaf, a dropped or added key, an
edge-case number or string, a wrong type, several at once), and what
``repairllm.repair`` reads back from text damaged by :mod:`repairllm.bench.corrupt`.
:func:`disagreements` compares the two validators on them, on the root and on the
``anyOf``/``oneOf`` branches and properties the align stage checks on their own.

``tests/test_fast_validator.py`` runs it, as a hypothesis property, over the project's
schemas and a sample of the shared corpora; ``python -m repairllm.bench.agreement``
runs it over whole folders::

    python -m repairllm.bench.agreement --schemas /path/to/corpora --mutations 40
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from ..errors import RepairLLMError
from ..pipeline import repair
from ..schema import Schema, compile_schema
from .corrupt import OPERATORS, apply
from .instances import GenerationError, TimeLimitExceeded, make_instances, time_limit

__all__ = ["Disagreement", "disagreements", "edge_values", "main", "mutate", "nodes_to_check"]

_NUMBERS: Final[tuple[Any, ...]] = (
    0,
    -1,
    1,
    2,
    1.5,
    0.07,
    0.3,
    1e-300,
    1e308,
    -1e308,
    2**31,
    2**53 + 1,
    2**63 - 1,
    2**63,
    2**64 - 1,
    2**64,
    2**70,
    -(2**63) - 1,
    -(2**70),
    10**30,
    1.0,
    100.0,
)
_STRINGS: Final[tuple[str, ...]] = (
    "",
    " ",
    "a",
    "a\n",
    "\n",
    "\r\n",
    "x\u2028",
    "\u0663",
    "A\u00e9",
    "\u00e9",
    "abc",
    "ABC",
    "2024-01-31",
    "2024-13-01",
    "2024-01-31T12:00:00Z",
    "2024-01-31t12:00:00z",
    "2024-01-31T12:00:00",
    "2024-01-31 12:00:00Z",
    "12:00:00Z",
    "12:00:00",
    "P1D",
    "PT1H",
    "P",
    "a@b",
    "a@",
    "@",
    "a@b.c",
    "http://example.com/x",
    "example.com",
    "not a uri",
    "//x",
    "#frag",
    "::1",
    "1.2.3.4",
    "256.1.1.1",
    "01.2.3.4",
    "a.b-c",
    "-a.b",
    "123e4567-e89b-12d3-a456-426614174000",
    "123e4567e89b12d3a456426614174000",
    "^(",
    "[a-z]+",
    "/a/b",
    "a/b",
    "0#",
    "1/a",
    "{x}",
    "{",
    "x" * 300,
)
_KEYS: Final[tuple[str, ...]] = ("extra", "x-ext", "a\n", "\u0663", "ID", "", "$ref", "1")


def edge_values() -> list[Any]:
    """Values at the edges where two validators could read differently."""
    return [None, True, False, *_NUMBERS, *_STRINGS, [], {}, [1, 1.0], [True, 1], {"a": 1}]


def _literals(schema: Any) -> list[Any]:
    """The values a schema names (``enum``, ``const``, ``default``, ``examples``)."""
    found: list[Any] = []
    todo = [schema]
    while todo and len(found) < 200:
        node = todo.pop()
        if isinstance(node, dict):
            for key, value in node.items():
                if key == "enum" and isinstance(value, list):
                    found.extend(value[:20])
                elif key in ("const", "default"):
                    found.append(value)
                elif key == "examples" and isinstance(value, list):
                    found.extend(v for v in value[:5] if not isinstance(v, (dict, list)))
                else:
                    todo.append(value)
        elif isinstance(node, list):
            todo.extend(node)
    return found


def _paths(value: Any) -> list[list[Any]]:
    """Every place in ``value`` (the root too), as lists of keys and indexes."""
    out: list[list[Any]] = []
    todo: list[tuple[Any, list[Any]]] = [(value, [])]
    while todo and len(out) < 500:
        node, path = todo.pop()
        out.append(path)
        if isinstance(node, dict):
            todo.extend((v, [*path, k]) for k, v in node.items())
        elif isinstance(node, list):
            todo.extend((v, [*path, i]) for i, v in enumerate(node))
    return out


def _get(value: Any, path: list[Any]) -> Any:
    for part in path:
        value = value[part]
    return value


def _put(value: Any, path: list[Any], new: Any) -> Any:
    if not path:
        return new
    parent = _get(value, path[:-1])
    parent[path[-1]] = new
    return value


def _draw(pool: list[Any], rng: random.Random) -> Any:
    """A copy of one of ``pool``: values taken from the schema must never be edited in place."""
    return json.loads(json.dumps(rng.choice(pool)))


def _changed_leaf(old: Any, rng: random.Random, pool: list[Any]) -> Any:
    if isinstance(old, bool) or old is None:
        return rng.choice([not old, 0, 1, "true", None, False])
    if isinstance(old, (int, float)):
        return rng.choice(
            [
                old + 1,
                old - 1,
                -old,
                old * 10,
                old + 0.5,
                old / 3,
                float(old),
                int(old) if abs(old) < 1e300 else 0,
                old + 2**64,
                str(old),
                rng.choice(_NUMBERS),
            ]
        )
    if isinstance(old, str):
        digits = "".join("\u0663" if c.isdigit() else c for c in old)
        return rng.choice(
            [
                old + "\n",
                "\n" + old,
                old + " ",
                old.upper(),
                old.lower(),
                old[:-1],
                old + "x",
                old * 3,
                digits,
                old.replace("-", ""),
                old.replace(":", ""),
                old + "\u00e9",
                rng.choice(_STRINGS),
            ]
        )
    return _draw(pool, rng)


def mutate(value: Any, schema: Any, rng: random.Random, edits: int = 0) -> Any:
    """A damaged copy of ``value``: one to three edits (or ``edits``) at random places."""
    value = json.loads(json.dumps(value))
    pool = [*edge_values(), *_literals(schema)]
    for _ in range(edits or rng.randint(1, 3)):
        path = rng.choice(_paths(value))
        old = _get(value, path)
        kind = rng.random()
        if isinstance(old, dict) and kind < 0.6:
            keys = list(old)
            choice = rng.random()
            if keys and choice < 0.4:
                del old[rng.choice(keys)]
            elif keys and choice < 0.6:
                key = rng.choice(keys)
                old[rng.choice([key + "\n", key.upper(), key + "_", "\u0663" + key])] = old.pop(key)
            else:
                old[rng.choice([*_KEYS, *keys])] = _draw(pool, rng)
        elif isinstance(old, list) and kind < 0.6:
            choice = rng.random()
            if old and choice < 0.3:
                del old[rng.randrange(len(old))]
            elif old and choice < 0.55:
                old.append(json.loads(json.dumps(rng.choice(old))))
            elif choice < 0.8:
                old.append(_draw(pool, rng))
            else:
                old.clear()
        elif kind < 0.75:
            value = _put(value, path, _changed_leaf(old, rng, pool))
        elif kind < 0.9:
            value = _put(value, path, _draw(pool, rng))
        else:
            value = _put(value, path, rng.choice([[old], {"value": old}, None]))
    return value


def reread(value: Any, rng: random.Random) -> Any:
    """What ``repair`` (no schema) reads back from ``value`` written and damaged; or ``value``."""
    operator = rng.choice([op for op in OPERATORS if op != "truncated"])
    try:
        text = apply(operator, json.dumps(value, ensure_ascii=False), rng).text
        return repair(text)
    except (RepairLLMError, ValueError, RecursionError):
        return value


def nodes_to_check(schema: Schema, value: Any) -> Iterator[tuple[Any, Any]]:
    """``(node, part of value)`` pairs the align stage validates on their own.

    The ``anyOf``/``oneOf`` branches of the root and of each property's schema, and the
    properties' and items' schemas themselves.
    """
    root = schema.root
    for branch in schema.branches(root):
        yield branch, value
    if isinstance(value, dict):
        for key, part in list(value.items())[:8]:
            node = schema.resolve(schema.child(root, key))
            yield node, part
            for branch in schema.branches(node):
                yield branch, part
    elif isinstance(value, list):
        for index, part in enumerate(value[:4]):
            node = schema.resolve(schema.item(root, index))
            yield node, part
            for branch in schema.branches(node):
                yield branch, part


@dataclass
class Disagreement:
    """A value the two validators judged differently."""

    where: str  # "root" or the node, as JSON
    value: Any
    fast: bool | None
    python: bool | str  # the verdict, or the exception's name

    def __str__(self) -> str:
        value = json.dumps(self.value, ensure_ascii=False)[:300]
        return f"{self.where}: {value}: jsonschema-rs {self.fast}, python-jsonschema {self.python}"


def _python_verdict(validator: Any, value: Any) -> bool | str:
    try:
        return bool(validator.is_valid(value))
    except Exception as exc:
        return type(exc).__name__


def _agree(fast: bool | None, python: bool | str) -> bool:
    if fast is None:
        return True  # python-jsonschema answers
    if isinstance(python, str):
        # python-jsonschema ran out of stack where jsonschema-rs did not: the library
        # now answers where it used to raise SchemaError.
        return python == "RecursionError"
    return fast == python


def disagreements(schema: Schema, values: list[Any], *, nodes: bool = True) -> list[Disagreement]:
    """Every value (and, with ``nodes``, sub-schema check) where the two verdicts differ.

    ``schema`` must have a fast validator (``schema._fast``); a verdict of ``None``
    (python-jsonschema answers instead) always agrees.
    """
    fast = schema._fast
    if fast is None:
        return []
    found: list[Disagreement] = []
    for value in values:
        verdict = fast.is_valid(value)
        python = _python_verdict(schema.validator, value)
        if not _agree(verdict, python):
            found.append(Disagreement("root", value, verdict, python))
        if not nodes:
            continue
        for node, part in nodes_to_check(schema, value):
            sub = fast.for_node(node)
            if sub is None:
                continue
            verdict = sub.is_valid(part)
            python = _python_verdict(schema.subvalidator(node), part)
            if not _agree(verdict, python):
                where = json.dumps(node, ensure_ascii=False)[:200]
                found.append(Disagreement(where, part, verdict, python))
    return found


def values_for(schema: Any, seed: int, instances: int, mutations: int) -> list[Any]:
    """Valid instances of ``schema``, and damaged and re-read copies of them."""
    made = make_instances(schema, count=instances, seed=seed, seconds=5.0).values
    rng = random.Random(f"agreement:{seed}")
    out = list(made)
    for number in range(mutations):
        base = made[number % len(made)]
        out.append(reread(base, rng) if number % 5 == 4 else mutate(base, schema, rng))
    out.extend(edge_values())
    return out


def main(argv: list[str] | None = None) -> int:
    """Compare the validators over folders of schemas; print the disagreements."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--schemas", type=Path, action="append", required=True, metavar="DIR")
    parser.add_argument("--instances", type=int, default=4)
    parser.add_argument("--mutations", type=int, default=40)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    files = sorted(
        p for where in args.schemas for p in ([where] if where.is_file() else where.rglob("*.json"))
    )
    counts = {"schemas": 0, "fast": 0, "no_fast": 0, "no_instance": 0, "values": 0}
    found: list[tuple[Path, Disagreement]] = []
    warnings.simplefilter("ignore")
    for path in files:
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
            schema = compile_schema(raw)
        except (ValueError, RepairLLMError, RecursionError):
            continue
        counts["schemas"] += 1
        if schema._fast is None:
            counts["no_fast"] += 1
            continue
        counts["fast"] += 1
        try:
            values = values_for(raw, args.seed, args.instances, args.mutations)
        except (GenerationError, RecursionError, ValueError):
            counts["no_instance"] += 1
            values = edge_values()
        counts["values"] += len(values)
        try:
            with time_limit(30.0):
                new = disagreements(schema, values)
        except TimeLimitExceeded:
            print(f"{path}: over 30 s", file=sys.stderr)
            continue
        for disagreement in new[:5]:
            print(f"{path}: {disagreement}", flush=True)
        found.extend((path, d) for d in new)
    print(f"{len(found)} disagreements; {counts}")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
