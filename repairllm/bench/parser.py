"""The parser fuzz benchmark (no model): ``repairllm bench parser``.

Seeded from end to end: JSON Schemas (``schemas/`` and any folders given) → valid
instances (:mod:`repairllm.bench.instances`) → serialized the ways models write
(pretty, minified, fenced, with prose, after a ``<think>`` block) → damaged by the
named operators of :mod:`repairllm.bench.corrupt`, one at a time and in combinations of two
or three (``trailing_comma+single_quotes``) → handed to every tool. Per tool, overall
and per operator: exact recovery, schema-valid, silently wrong, wrong, error, MB/s.

Over a folder of real-world schemas it also reports *coverage*: for how many schemas
an instance could be generated, and for how many repairllm repaired and validated the
undamaged and a damaged instance. A schema nobody can handle is counted and named.

The report (``report.json``) is shaped for scripts::

    {"tools": {NAME: {"exact", "valid", "silently_wrong", "wrong", "error", "n",
                      "mb_per_s", "operators": {OPERATOR: {...same...}}, ...}},
     "skipped": {NAME: why}, "coverage": {GROUP: {...}}, "ratios": {...},
     "config": {...}}

Rates are fractions (0-1); ``config["definitions"]`` says exactly what each means.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import gc
import importlib
import importlib.metadata
import json
import platform
import random
import sys
import time
import warnings
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Final

from ..errors import RepairLLMError
from ..fast_validator import fast_validation
from ..pipeline import repair
from ..schema import compile_schema
from .corrupt import LOSSY, OPERATORS, SCHEMA_LEVEL, SERIALIZATIONS, WRAPPERS, apply, serialize
from .instances import (
    GenerationError,
    TimeLimitExceeded,
    fill_defaults,
    is_valid,
    make_instances,
    time_limit,
    validator,
)
from .parser_report import CLEAN, markdown, plot, print_report

__all__ = [
    "COMBINATIONS",
    "TOOLS",
    "add_arguments",
    "main",
    "run_parser_bench",
    "same_value",
]

CLEAN_CALLS: Final = 20
"""Timing calls, back to back, of every tool on each clean document (after the first)."""

COMBINATIONS: Final[tuple[tuple[str, ...], ...]] = (
    ("trailing_comma", "single_quotes"),
    ("python_literals", "single_quotes"),
    ("trailing_comma", "comments"),
    ("unquoted_keys", "missing_comma"),
    ("raw_newline", "unescaped_quote"),
    ("single_quotes", "prose_around"),
    ("unescaped_quote", "markdown_fence"),
    ("missing_closer", "markdown_fence"),
    ("truncated", "think_block"),
    ("unquoted_keys", "trailing_comma", "single_quotes"),
    ("python_literals", "comments", "markdown_fence"),
    ("missing_comma", "wrong_closer", "prose_around"),
    ("raw_newline", "trailing_comma", "think_block"),
)
"""Damage that co-occurs in real replies, in the order applied: structural operators
first, wrappers last. (``single_quotes`` comes last among the structural ones; since
corrupt's tokenizer learnt single-quoted strings the order no longer matters for
correctness, but keeping it keeps the seeded documents of earlier reports.)"""

_DEFINITIONS: Final = {
    "n": "documents given to the tool",
    "exact": "the tool returned without raising and the value equals the original "
    "instance (JSON equality: True is not 1, key order ignored), or equals it with the "
    "schema's declared defaults filled in for absent properties",
    "valid": "the tool returned a value that validates against the schema (format "
    "checking on); for tools that never see the schema, whether their output happens "
    "to validate",
    "silently_wrong": "the tool returned a schema-valid value that is not the original "
    "and did not say the reply was cut off: the worst outcome, since a caller who "
    "validates cannot tell",
    "flagged": "the tool returned a value that is not the original and said the reply was "
    "cut off (repairllm: Outcome.truncated), so a caller can tell; part of wrong, not of "
    "silently_wrong",
    "wrong": "the tool returned any value that is not the original (valid or not); "
    "exact + wrong + error = 1",
    "error": "the tool raised (or ran past the time limit)",
    "mb_per_s": "input bytes (UTF-8, 10^6 per MB) / seconds inside the tool calls, "
    "each document's best of its timing calls (the first one, that scores it, then "
    f"repeat - 1 more back to back, {CLEAN_CALLS} for a clean document), garbage collector "
    "off; document by document, the tools take turns, so all are timed in the same moments",
    "mb_per_s_first_call": "the same from each document's first call alone, the one "
    "that scores it, in one pass over all documents: caches as the documents before "
    "left them",
    "mb_per_s_without_jsonschema_rs": "repairllm's MB/s (overall, clean_json, clean) from a "
    "second measurement in the same run with the jsonschema-rs fast path off "
    "(repairllm.fast_validator.fast_validation(False); REPAIRLLM_FAST_VALIDATION=0 turns "
    "it off for a whole process), and whether every outcome was the same",
    "overall": "the top-level rates of a tool cover damaged documents only: the clean "
    f"'{CLEAN}' documents and every operator combination with a lossy operator "
    f"({', '.join(sorted(LOSSY))}) are left out; they are in 'clean' and 'lossy'",
}

_REPAIRLLM_TOOLS: Final = {
    "repairllm": ("default", True),
    "repairllm:strict": ("strict", True),
    "repairllm:lenient": ("lenient", True),
    "repairllm:plain": ("default", False),
}
TOOLS: Final[dict[str, str]] = {
    "repairllm": "repairllm.repair(text, schema), default policy",
    "repairllm:strict": "repairllm.repair(text, schema, policy='strict')",
    "repairllm:lenient": "repairllm.repair(text, schema, policy='lenient')",
    "repairllm:plain": "repairllm.repair(text), default policy, no schema",
    "json": "json.loads(text)",
    "orjson": "orjson.loads(text)",
    "json_repair": "json_repair.loads(text)",
    "json_repair:schema": "json_repair.loads(text, schema=schema)",
    "partial_json_parser": "partial_json_parser.loads(text)",
    "dirtyjson": "dirtyjson.loads(text)",
    "langchain": "langchain_core.utils.json.parse_partial_json(text); None counts as an error",
}
"""Every tool the benchmark knows, by report name, in report order."""

_INSTALL: Final = {
    "json_repair": "json-repair",
    "partial_json_parser": "partial-json-parser",
    "dirtyjson": "dirtyjson",
    "langchain_core": "langchain-core",
    "orjson": "orjson",
}


@dataclass(frozen=True)
class Size:
    """How much work a run does."""

    docs_per_operator: int
    instances_per_schema: int
    repeat: int  # timing passes; each document's best time counts


DEFAULT_SIZE: Final = Size(docs_per_operator=200, instances_per_schema=6, repeat=3)
QUICK_SIZE: Final = Size(docs_per_operator=16, instances_per_schema=3, repeat=2)


# --------------------------------------------------------------------------- #
# Tools
# --------------------------------------------------------------------------- #


@dataclass
class Tool:
    """A parser or repairer under test: ``call(text, entry) -> value``.

    ``truncated(text, entry)``, for a tool that can say so, whether it flags its value
    as read from a reply that was cut off; asked only of wrong values, outside the clock.
    """

    name: str
    call: Callable[[str, Entry], Any]
    version: str
    expected: tuple[type[BaseException], ...]
    truncated: Callable[[str, Entry], bool] | None = None
    unexpected: list[dict[str, Any]] = field(default_factory=list)
    wrong_examples: list[dict[str, Any]] = field(default_factory=list)


def _version(dist: str) -> str:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def _load_tool(name: str) -> Tool:
    """Import one tool; raises ImportError (with the install hint) when it is missing."""
    if name in _REPAIRLLM_TOOLS:
        from .. import __version__

        policy, with_schema = _REPAIRLLM_TOOLS[name]

        # The default policy as a caller gets it: by passing none (TOOLS says so).
        chosen = None if policy == "default" else policy

        def call_repairllm(text: str, entry: Entry) -> Any:
            # The compiled schema, as a caller who reuses a schema would pass it.
            return repair(text, entry.compiled if with_schema else None, policy=chosen)

        def truncated(text: str, entry: Entry) -> bool:
            schema = entry.compiled if with_schema else None
            return repair(text, schema, policy=policy, outcome=True).truncated

        return Tool(name, call_repairllm, __version__, (RepairLLMError,), truncated)
    if name == "json":
        return Tool(
            name, lambda text, entry: json.loads(text), platform.python_version(), (ValueError,)
        )
    module_name = {"json_repair:schema": "json_repair", "langchain": "langchain_core"}.get(
        name, name
    )
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        hint = _INSTALL.get(module_name, module_name)
        raise ImportError(f"not installed (pip install {hint})") from exc
    version = _version(_INSTALL.get(module_name, module_name))
    if name == "json_repair:schema":
        return Tool(
            name,
            lambda text, entry: module.loads(text, schema=entry.schema),
            version,
            (ValueError,),
        )
    if name == "langchain":
        from langchain_core.utils.json import parse_partial_json

        def call_langchain(text: str, entry: Entry) -> Any:
            value = parse_partial_json(text)
            if value is None and text.strip() != "null":
                raise ValueError("parse_partial_json returned None: it could not parse the text")
            return value

        return Tool(name, call_langchain, version, (ValueError,))
    return Tool(name, lambda text, entry: module.loads(text), version, (ValueError,))


def load_tools(names: Sequence[str] | None) -> tuple[list[Tool], dict[str, str]]:
    """The tools to run and, by name, those skipped with the reason.

    Args:
        names: tool names from :data:`TOOLS`; ``None`` for all of them.
    """
    wanted = list(TOOLS) if names is None else list(dict.fromkeys(names))
    tools: list[Tool] = []
    skipped: dict[str, str] = {}
    for name in wanted:
        if name not in TOOLS:
            skipped[name] = f"unknown tool; known: {', '.join(TOOLS)}"
            continue
        try:
            tools.append(_load_tool(name))
        except ImportError as exc:
            skipped[name] = str(exc)
    return tools, skipped


# --------------------------------------------------------------------------- #
# Values
# --------------------------------------------------------------------------- #


def same_value(a: Any, b: Any) -> bool:
    """JSON equality: like ``==`` but ``True`` is not ``1``, and containers compare deeply."""
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return a == b
    if isinstance(a, list):
        return isinstance(b, list) and len(a) == len(b) and all(map(same_value, a, b))
    if isinstance(a, dict):
        # No keys() comparison: some parsers' dict subclasses return a list from keys().
        return (
            isinstance(b, dict)
            and len(a) == len(b)
            and all(key in b and same_value(a[key], b[key]) for key in a)
        )
    if a is None:
        return b is None
    return type(a) is type(b) and bool(a == b)


def _short(value: Any, limit: int = 300) -> str:
    try:
        text = json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= limit else text[:limit] + "…"


def _difference(expected: Any, got: Any, path: str = "") -> dict[str, str]:
    """Where two JSON values first differ: ``{"at": pointer, "expected": ..., "returned": ...}``."""
    if isinstance(expected, dict) and isinstance(got, dict):
        for key in expected:
            if key not in got:
                return {
                    "at": f"{path}/{key}",
                    "expected": _short(expected[key]),
                    "returned": "(missing)",
                }
            if not same_value(expected[key], got[key]):
                return _difference(expected[key], got[key], f"{path}/{key}")
        extra = next((k for k in got if k not in expected), None)
        if extra is not None:
            return {"at": f"{path}/{extra}", "expected": "(absent)", "returned": _short(got[extra])}
    if isinstance(expected, list) and isinstance(got, list) and len(expected) == len(got):
        for index, (a, b) in enumerate(zip(expected, got, strict=True)):
            if not same_value(a, b):
                return _difference(a, b, f"{path}/{index}")
    return {"at": path or "/", "expected": _short(expected), "returned": _short(got)}


def _first_line(exc: BaseException, limit: int = 200) -> str:
    lines = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {lines[0][:limit] if lines else ''}"


# --------------------------------------------------------------------------- #
# Schemas and coverage
# --------------------------------------------------------------------------- #


def builtin_schemas() -> Path | None:
    """The project's ``schemas/`` folder (beside the package in a checkout, or in the cwd)."""
    for candidate in (Path(__file__).resolve().parents[2] / "schemas", Path.cwd() / "schemas"):
        if candidate.is_dir() and any(candidate.glob("*.json")):
            return candidate
    return None


@dataclass
class Entry:
    """One usable schema with its instances."""

    group: str
    name: str
    schema: Any
    compiled: Any  # repairllm's Schema
    check: Any  # a jsonschema validator
    values: list[Any]


@dataclass
class Coverage:
    """What happened to the schemas of one group (folder)."""

    folder: str
    schemas: int = 0
    loaded: int = 0
    compiled: int = 0
    generated: int = 0
    clean_exact: int = 0
    damaged_valid: int = 0
    damaged_exact: int = 0
    sources: Counter[str] = field(default_factory=Counter)
    failures: dict[str, list[dict[str, str]]] = field(
        default_factory=lambda: {
            k: []
            for k in ("not_json", "schema_error", "no_instance", "clean", "damaged", "bench_error")
        }
    )
    seconds: float = 0.0

    def fail(self, stage: str, name: str, reason: str) -> None:
        """Name one schema that failed at ``stage``."""
        self.failures[stage].append({"schema": name, "reason": reason})

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready counts, named failures and the most common reasons."""
        reasons = {
            stage: dict(Counter(_reason_kind(f["reason"]) for f in found).most_common(8))
            for stage, found in self.failures.items()
            if found
        }
        return {
            "folder": self.folder,
            "schemas": self.schemas,
            "loaded": self.loaded,
            "compiled": self.compiled,
            "generated": self.generated,
            "clean_exact": self.clean_exact,
            "damaged_valid": self.damaged_valid,
            "damaged_exact": self.damaged_exact,
            "instance_sources": dict(sorted(self.sources.items())),
            "failures": self.failures,
            "top_reasons": reasons,
            "seconds": round(self.seconds, 2),
        }


def _reason_kind(reason: str) -> str:
    """A reason without its specifics, to count alike failures together."""
    parts = reason.split(": ")
    keep = 2 if parts[0] in OPERATORS or parts[0].startswith("invalid schema") else 1
    return ": ".join(parts[:keep])[:80]


def _groups(
    dirs: Sequence[Path], builtin: bool, limit: int | None, seed: int
) -> list[tuple[str, Path, list[Path]]]:
    """``(group, folder, files)`` for every folder holding ``*.json`` files."""
    found: list[tuple[str, Path, list[Path]]] = []
    folders: list[tuple[str, Path]] = []
    if builtin:
        own = builtin_schemas()
        if own is not None:
            folders.append(("schemas", own))
    for root in dirs:
        if not root.is_dir():
            raise FileNotFoundError(f"--schemas {root}: not a folder")
        if any(root.glob("*.json")):
            folders.append((root.name, root))
        subs = sorted(p for p in root.iterdir() if p.is_dir() and any(p.glob("*.json")))
        if not subs and not any(root.glob("*.json")):
            raise ValueError(f"--schemas {root}: no *.json files in it or its subfolders")
        folders += [(f"{root.name}/{sub.name}", sub) for sub in subs]
    seen: set[str] = set()
    for name, folder in folders:
        group = name
        suffix = 2
        while group in seen:
            group, suffix = f"{name}~{suffix}", suffix + 1
        seen.add(group)
        files = sorted(folder.glob("*.json"))
        if limit is not None and len(files) > limit:
            files = sorted(random.Random(f"limit:{seed}:{name}").sample(files, limit))
        found.append((group, folder, files))
    return found


def _applicable(text: str, names: Sequence[str], rng: random.Random) -> str | None:
    """The text damaged by ``names`` in order, or ``None`` when one of them cannot apply."""
    damaged = apply(names, text, rng)
    return damaged.text if damaged.operators == tuple(names) else None


def _check_schema(
    group: str, path: Path, cov: Coverage, count: int, seed: int, hypothesis: bool, seconds: float
) -> Entry | None:
    """Load, compile, instantiate and repair one schema, counting each stage in ``cov``."""
    name = path.name
    cov.schemas += 1
    try:
        schema = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        cov.fail("not_json", name, _first_line(exc))
        return None
    cov.loaded += 1
    try:
        with time_limit(seconds):
            compiled = compile_schema(schema)
    except (Exception, RecursionError, TimeLimitExceeded) as exc:
        cov.fail("schema_error", name, _first_line(exc))
        return None
    cov.compiled += 1
    try:
        made = make_instances(
            schema, count=count, seed=f"{seed}:{name}", hypothesis=hypothesis, seconds=seconds
        )
    except GenerationError as exc:
        cov.fail("no_instance", name, str(exc)[:300])
        return None
    cov.generated += 1
    cov.sources[made.source] += 1
    check = validator(schema)
    original = made.values[0]
    text = serialize(original, "pretty", random.Random(0))
    try:
        with time_limit(seconds):
            value = repair(text, compiled)
        if _same_or_filled(original, value, schema):
            cov.clean_exact += 1
        else:
            cov.fail("clean", name, f"returned a different value: {_short(value, 120)}")
    except (Exception, RecursionError, TimeLimitExceeded) as exc:
        kind = "" if isinstance(exc, RepairLLMError) else "unexpected "
        cov.fail("clean", name, kind + _first_line(exc))
    rng = random.Random(f"coverage:{seed}:{name}")
    singles = [op for op in OPERATORS if op not in LOSSY]
    start = rng.randrange(len(singles))
    for offset in range(len(singles)):
        operator = singles[(start + offset) % len(singles)]
        damaged = _applicable(text, (operator,), rng)
        if damaged is not None:
            break
    assert damaged is not None  # the wrapping operators always apply
    try:
        with time_limit(seconds):
            value = repair(damaged, compiled)
        if is_valid(check, value):
            cov.damaged_valid += 1
            cov.damaged_exact += _same_or_filled(original, value, schema)
        else:
            cov.fail("damaged", name, f"{operator}: returned an invalid value")
    except (Exception, RecursionError, TimeLimitExceeded) as exc:
        kind = "" if isinstance(exc, RepairLLMError) else "unexpected "
        cov.fail("damaged", name, f"{operator}: {kind}{_first_line(exc)}")
    return Entry(group, name, schema, compiled, check, made.values)


def _same_or_filled(original: Any, value: Any, schema: Any) -> bool:
    """Exact recovery: the original, or the original with the schema's defaults filled in."""
    return same_value(original, value) or same_value(fill_defaults(schema, original), value)


# --------------------------------------------------------------------------- #
# Documents
# --------------------------------------------------------------------------- #


@dataclass(frozen=True)
class Doc:
    """One input: the damaged text and the value expected back."""

    text: str
    expected: Any
    entry: int  # index into the entries
    operator: str  # CLEAN, one operator, or "a+b(+c)"
    style: str
    lossy: bool
    size: int


def operator_names() -> list[str]:
    """Every operator the benchmark reports, in report order."""
    return [CLEAN, *OPERATORS, *("+".join(combo) for combo in COMBINATIONS)]


def _damage(
    value: Any, names: Sequence[str], style: str, rng: random.Random, check: Any = None
) -> str | None:
    """``value`` written in ``style`` and damaged by ``names``; ``None`` if one cannot apply.

    ``check``: the schema's validator; damage only the schema can undo counts only where
    the schema refuses the damaged text's literal reading (a ``"3%"`` in an untyped
    field is a fine value there, not damage).
    """
    body = json.dumps(
        value,
        ensure_ascii=False,
        separators=(",", ":") if style == "minified" else None,
        indent=None if style == "minified" else 2,
    )
    damaged = _applicable(body, names, rng) if names else body
    if damaged is None:
        return None
    if names:
        try:
            strict = json.loads(damaged)
        except (ValueError, RecursionError):
            pass
        else:
            # Ground truth must stay honest: strict JSON never reads a different value,
            # except where the damage is one only the schema can undo, and it does.
            schema_level = any(name in SCHEMA_LEVEL for name in names)
            if not same_value(strict, value) and not (
                schema_level and check is not None and not is_valid(check, strict)
            ):
                return None
    if style in ("pretty", "minified"):
        return damaged
    wrapped = serialize(value, style, rng)
    return wrapped.replace(body, damaged, 1)


def build_docs(
    entries: Sequence[Entry], per_operator: int, seed: int
) -> tuple[list[Doc], dict[str, int]]:
    """``per_operator`` documents for every operator, balanced across schema groups.

    Returns:
        The documents and, per operator, how many could not be built because the
        operator applies to none of the instances tried.
    """
    pools: dict[str, list[tuple[int, Any]]] = {}
    for index, entry in enumerate(entries):
        pools.setdefault(entry.group, []).extend((index, v) for v in entry.values)
    groups = sorted(pools)
    docs: list[Doc] = []
    missing: dict[str, int] = {}
    for operator in operator_names():
        names = () if operator == CLEAN else tuple(operator.split("+"))
        lossy = any(name in LOSSY for name in names)
        styles = (
            ("pretty", "minified") if any(name in WRAPPERS for name in names) else SERIALIZATIONS
        )
        order = {
            group: random.Random(f"order:{seed}:{operator}:{group}").sample(
                pools[group], len(pools[group])
            )
            for group in groups
        }
        cursor = dict.fromkeys(groups, 0)
        for number in range(per_operator):
            group = groups[number % len(groups)]
            pool = order[group]
            rng = random.Random(f"doc:{seed}:{operator}:{number}")
            style = styles[number % len(styles)] if operator == CLEAN else rng.choice(styles)
            built = None
            for _attempt in range(min(len(pool), 40)):
                index, value = pool[cursor[group] % len(pool)]
                cursor[group] += 1
                try:
                    text = _damage(value, names, style, rng, entries[index].check)
                except (ValueError, RecursionError):  # a value json cannot write back
                    text = None
                if text is not None:
                    built = Doc(text, value, index, operator, style, lossy, len(text.encode()))
                    break
            if built is None:
                missing[operator] = missing.get(operator, 0) + 1
            else:
                docs.append(built)
    return docs, missing


# --------------------------------------------------------------------------- #
# Measuring
# --------------------------------------------------------------------------- #


@dataclass
class Tally:
    """Outcomes and time of one tool on some documents."""

    n: int = 0
    exact: int = 0
    valid: int = 0
    wrong: int = 0
    silently_wrong: int = 0
    flagged: int = 0
    error: int = 0
    bytes: int = 0
    seconds: float = 0.0
    first_seconds: float = 0.0  # of the first call on each document, the scoring one

    def add(self, other: Tally) -> None:
        """Accumulate ``other`` into this tally."""
        for name in ("n", "exact", "valid", "wrong", "silently_wrong", "flagged", "error", "bytes"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.seconds += other.seconds
        self.first_seconds += other.first_seconds

    def rates(self) -> dict[str, Any]:
        """Rates (0-1), the count and MB/s."""
        n = self.n
        out: dict[str, Any] = {
            key: (getattr(self, key) / n if n else None)
            for key in ("exact", "valid", "silently_wrong", "flagged", "wrong", "error")
        }
        out["n"] = n
        out["mb_per_s"] = _mb_per_s(self.bytes, self.seconds)
        out["mb_per_s_first_call"] = _mb_per_s(self.bytes, self.first_seconds)
        return out


def _mb_per_s(size: int, seconds: float) -> float | None:
    return round(size / seconds / 1e6, 3) if seconds > 0 else None


Cells = dict[tuple[str, str, str], Tally]
"""Tallies by (operator, serialization, group)."""


def measure(
    tool: Tool,
    docs: Sequence[Doc],
    entries: Sequence[Entry],
    *,
    timeout: float | None,
    repeat: int,
    advance: Callable[[int], None],
) -> Cells:
    """Run one tool on every document: outcomes once, time best of ``repeat`` per document.

    Only the calls are timed, with the garbage collector off; the minimum over a
    document's calls keeps a busy machine's hiccups out of the MB/s.
    """
    run = score(tool, docs, entries, timeout=timeout, advance=advance)
    time_calls([run], docs, entries, repeat=repeat, advance=advance)
    return run.cells


@dataclass
class ToolRun:
    """One tool's pass over the documents: its outcomes, then its timings."""

    tool: Tool
    cells: Cells
    times: list[float]  # per document: the scoring call's time, then the best of all
    first: list[float]  # per document: the scoring call's time alone
    timed_out: set[int]


def score(
    tool: Tool,
    docs: Sequence[Doc],
    entries: Sequence[Entry],
    *,
    timeout: float | None,
    advance: Callable[[int], None],
) -> ToolRun:
    """One call of ``tool`` on every document, under the time limit: the outcomes, and
    each call's time (the first call, caches as the documents before left them)."""
    cells: Cells = {}
    times = [0.0] * len(docs)
    call = tool.call
    for doc in docs[:16]:
        # Warm up (lazy imports, caches) outside the clock.
        with contextlib.suppress(Exception, TimeLimitExceeded), time_limit(timeout):
            call(doc.text, entries[doc.entry])
    timed_out: set[int] = set()
    cache: dict[int, Any] = {}

    def filled(number: int) -> Any:
        if number not in cache:
            doc = docs[number]
            cache[number] = fill_defaults(entries[doc.entry].schema, doc.expected)
        return cache[number]

    for number, doc in enumerate(docs):
        if number and number % 64 == 0:
            advance(64)
        entry = entries[doc.entry]
        key = (doc.operator, doc.style, entry.group)
        tally = cells.get(key)
        if tally is None:
            tally = cells[key] = Tally()
        tally.n += 1
        tally.bytes += doc.size
        value, failure, times[number] = _timed_call(call, doc.text, entry, timeout)
        if failure is not None:
            tally.error += 1
            if isinstance(failure, TimeLimitExceeded):
                timed_out.add(number)
            if not isinstance(failure, tool.expected) and len(tool.unexpected) < 10:
                tool.unexpected.append(
                    {
                        "operator": doc.operator,
                        "schema": f"{entry.group}/{entry.name}",
                        "exception": _first_line(failure, 300),
                        "input": doc.text[:300],
                    }
                )
            continue
        if same_value(doc.expected, value) or same_value(filled(number), value):
            tally.exact += 1
            tally.valid += 1
            continue
        tally.wrong += 1
        flagged = tool.truncated is not None and tool.truncated(doc.text, entry)
        if flagged:
            tally.flagged += 1
        if is_valid(entry.check, value):
            tally.valid += 1
            if flagged:
                continue
            tally.silently_wrong += 1
            if not doc.lossy and _room(tool.wrong_examples, doc.operator):
                tool.wrong_examples.append(
                    {
                        "operator": doc.operator,
                        "schema": f"{entry.group}/{entry.name}",
                        "input": doc.text[:2000],
                        # Against the defaults-filled value: filled defaults are not the error.
                        **_difference(filled(number), value),
                    }
                )
    if docs:
        advance(len(docs) - (len(docs) - 1) // 64 * 64)
    return ToolRun(tool, cells, times, list(times), timed_out)


def time_calls(
    runs: Sequence[ToolRun],
    docs: Sequence[Doc],
    entries: Sequence[Entry],
    *,
    repeat: int,
    advance: Callable[[int], None],
) -> None:
    """The timing calls of every tool in ``runs``, into their cells' seconds.

    Document by document, the tools take turns: each makes its calls on the document
    back to back, then the next tool makes its own. So every tool is timed on a
    document within the same moment of the run, and a machine whose speed drifts
    (another job, the clock's boost) moves all tools' figures together and their
    ratios little; timed one tool after the other, over minutes, the ratios of one run
    to the next differed by half.

    Back to back, each tool meets a document as it met the one before: in passes over
    all documents, what a tool did on the damaged documents in between (much, for a
    repairer; a quick refusal, for a strict parser) decided how cold the caches were
    for the clean one, and with that a third of a short clean reply's time. A clean
    document, a few microseconds for the fast tools, gets CLEAN_CALLS calls, where a
    timer's hiccup and the first call's cold caches weigh least.
    """
    perf_counter = time.perf_counter
    gc.collect()
    gc.disable()
    try:
        for number, doc in enumerate(docs):
            if number and number % 64 == 0:
                advance(64 * (repeat - 1) * len(runs))
            entry = entries[doc.entry]
            text = doc.text
            calls = CLEAN_CALLS if doc.operator == CLEAN else repeat - 1
            for run in runs:
                if number in run.timed_out:
                    continue
                call = run.tool.call
                best = run.times[number]
                for _ in range(calls):
                    start = perf_counter()
                    # A bare try costs nothing on the happy path; contextlib.suppress
                    # would add its own overhead to the fast parsers' time.
                    try:  # noqa: SIM105
                        call(text, entry)
                    except Exception:
                        pass
                    elapsed = perf_counter() - start
                    if elapsed < best:
                        best = elapsed
                run.times[number] = best
    finally:
        gc.enable()
    if docs:
        advance((len(docs) - (len(docs) - 1) // 64 * 64) * (repeat - 1) * len(runs))
    for run in runs:
        for number, doc in enumerate(docs):
            tally = run.cells[(doc.operator, doc.style, entries[doc.entry].group)]
            tally.seconds += run.times[number]
            tally.first_seconds += run.first[number]


def _timed_call(
    call: Callable[[str, Entry], Any], text: str, entry: Entry, timeout: float | None
) -> tuple[Any, BaseException | None, float]:
    """``(value, exception, seconds)`` of one call, under the time limit."""
    perf_counter = time.perf_counter
    gc.disable()
    start = perf_counter()
    try:
        with time_limit(timeout):
            start = perf_counter()
            value = call(text, entry)
            return value, None, perf_counter() - start
    except (Exception, TimeLimitExceeded) as exc:
        return None, exc, perf_counter() - start
    finally:
        gc.enable()


def _room(examples: list[dict[str, Any]], operator: str) -> bool:
    """Keep at most two silently-wrong examples per operator and 30 per tool."""
    return len(examples) < 30 and sum(e["operator"] == operator for e in examples) < 2


def summarize(tool: Tool, cells: Cells) -> dict[str, Any]:
    """One tool's entry of the report: overall (damaged, not lossy) and broken down."""
    head, clean, clean_json, lossy = Tally(), Tally(), Tally(), Tally()
    by_op: dict[str, Tally] = {}
    by_style: dict[str, Tally] = {}
    by_group: dict[str, Tally] = {}
    for (operator, style, group), tally in cells.items():
        by_op.setdefault(operator, Tally()).add(tally)
        if operator == CLEAN:
            clean.add(tally)
            if style in ("pretty", "minified"):
                clean_json.add(tally)
        elif any(name in LOSSY for name in operator.split("+")):
            lossy.add(tally)
        else:
            head.add(tally)
            by_style.setdefault(style, Tally()).add(tally)
            by_group.setdefault(group, Tally()).add(tally)
    order = operator_names()
    out = head.rates()
    out |= {
        "operators": {op: by_op[op].rates() for op in sorted(by_op, key=order.index)},
        "clean": clean.rates(),
        "clean_json": clean_json.rates(),
        "lossy": lossy.rates(),
        "serializations": {
            style: by_style[style].rates() for style in sorted(by_style, key=SERIALIZATIONS.index)
        },
        "groups": {group: by_group[group].rates() for group in sorted(by_group)},
        "version": tool.version,
        "description": TOOLS[tool.name],
        "unexpected_exceptions": tool.unexpected,
        "silently_wrong_examples": tool.wrong_examples,
    }
    return out


SLOW_VALIDATOR_KEY: Final = "mb_per_s_without_jsonschema_rs"
"""Where a tool's entry keeps its speed with python-jsonschema alone (the fast path off)."""
SLOW_VALIDATOR_TOOLS: Final = frozenset({"repairllm"})
"""The tools timed a second time, in the same run, with the jsonschema-rs fast path off."""


def without_fast_validation(
    tool: Tool,
    docs: Sequence[Doc],
    entries: Sequence[Entry],
    summary: dict[str, Any],
    *,
    timeout: float | None,
    repeat: int,
    advance: Callable[[int], None],
) -> dict[str, Any]:
    """``tool`` measured again with python-jsonschema answering "is it valid?" alone.

    The speed overall (damaged, not lossy), on clean JSON and on all clean documents,
    and whether every outcome came out as with jsonschema-rs (``summary``).
    """
    twin = replace(tool, unexpected=[], wrong_examples=[])
    with fast_validation(False):
        cells = measure(twin, docs, entries, timeout=timeout, repeat=repeat, advance=advance)
    slow = summarize(twin, cells)
    return {
        "overall": slow["mb_per_s"],
        "clean_json": slow["clean_json"]["mb_per_s"],
        "clean": slow["clean"]["mb_per_s"],
        "same_outcomes": _outcomes(slow) == _outcomes(summary),
    }


def _outcomes(node: Any) -> Any:
    """``node`` without its speed figures."""
    if isinstance(node, dict):
        return {k: _outcomes(v) for k, v in node.items() if "mb_per_s" not in str(k)}
    if isinstance(node, list):
        return [_outcomes(v) for v in node]
    return node


def _ratio(top: float | None, bottom: float | None) -> float | None:
    return round(top / bottom, 3) if top is not None and bottom else None


def _diff(a: float | None, b: float | None) -> float | None:
    return round(a - b, 4) if a is not None and b is not None else None


def ratios(tools: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The project's targets (DESIGN: speed on valid and damaged input) and head-to-heads."""

    def get(name: str, *path: str) -> Any:
        node: Any = tools.get(name)
        for key in path:
            node = node.get(key) if isinstance(node, dict) else None
        return node

    return {
        "clean_json_mb_per_s_repairllm_plain_over_orjson": _ratio(
            get("repairllm:plain", "clean_json", "mb_per_s"),
            get("orjson", "clean_json", "mb_per_s"),
        ),
        "clean_json_target": 0.7,
        "damaged_mb_per_s_repairllm_plain_over_json_repair": _ratio(
            get("repairllm:plain", "mb_per_s"), get("json_repair", "mb_per_s")
        ),
        "damaged_target": 3.0,
        "damaged_mb_per_s_repairllm_over_json_repair_schema": _ratio(
            get("repairllm", "mb_per_s"), get("json_repair:schema", "mb_per_s")
        ),
        # With a schema (issue 12: jsonschema-rs answers "is it valid?"), and the same
        # run's figures with python-jsonschema alone (SLOW_VALIDATOR_KEY).
        "clean_json_mb_per_s_repairllm_over_orjson": _ratio(
            get("repairllm", "clean_json", "mb_per_s"),
            get("orjson", "clean_json", "mb_per_s"),
        ),
        "clean_json_schema_target": 0.3,
        "damaged_schema_target": 5.0,
        "clean_json_mb_per_s_repairllm_over_orjson_without_jsonschema_rs": _ratio(
            get("repairllm", SLOW_VALIDATOR_KEY, "clean_json"),
            get("orjson", "clean_json", "mb_per_s"),
        ),
        # The first call on each document (cold caches, after the damaged documents
        # before it), beside the steady figure the targets are read against.
        "clean_json_mb_per_s_repairllm_over_orjson_first_call": _ratio(
            get("repairllm", "clean_json", "mb_per_s_first_call"),
            get("orjson", "clean_json", "mb_per_s_first_call"),
        ),
        "clean_json_mb_per_s_repairllm_plain_over_orjson_first_call": _ratio(
            get("repairllm:plain", "clean_json", "mb_per_s_first_call"),
            get("orjson", "clean_json", "mb_per_s_first_call"),
        ),
        "damaged_mb_per_s_repairllm_over_json_repair_schema_without_jsonschema_rs": _ratio(
            get("repairllm", SLOW_VALIDATOR_KEY, "overall"), get("json_repair:schema", "mb_per_s")
        ),
        "exact_repairllm_minus_json_repair_schema": _diff(
            get("repairllm", "exact"), get("json_repair:schema", "exact")
        ),
        "silently_wrong_repairllm_minus_json_repair_schema": _diff(
            get("repairllm", "silently_wrong"), get("json_repair:schema", "silently_wrong")
        ),
        "exact_repairllm_plain_minus_json_repair": _diff(
            get("repairllm:plain", "exact"), get("json_repair", "exact")
        ),
        "silently_wrong_repairllm_plain_minus_json_repair": _diff(
            get("repairllm:plain", "silently_wrong"), get("json_repair", "silently_wrong")
        ),
    }


# --------------------------------------------------------------------------- #
# Tables and plot
# --------------------------------------------------------------------------- #


class _Progress:
    """A rich progress bar on stderr, or nothing."""

    def __init__(self, enabled: bool) -> None:
        self.bar: Any = None
        if enabled:
            from rich.console import Console
            from rich.progress import Progress

            self.bar = Progress(console=Console(stderr=True), transient=False)
            self.bar.start()

    def task(self, label: str, total: int) -> Callable[[int], None]:
        if self.bar is None:
            return lambda steps: None
        task_id = self.bar.add_task(label, total=total)
        return lambda steps: self.bar.advance(task_id, steps)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.stop()


def run_parser_bench(
    schemas_dirs: list[Path] | None,
    *,
    quick: bool = False,
    seed: int = 0,
    out: Path | None = None,
    tools: list[str] | None = None,
    progress: bool = False,
    builtin: bool = True,
    limit: int | None = None,
    docs_per_operator: int | None = None,
    hypothesis: bool = False,
    timeout: float = 10.0,
) -> dict[str, Any]:
    """Run the parser fuzz benchmark and return the report.

    Args:
        schemas_dirs: folders of ``*.json`` schemas besides ``schemas/``; a folder with
            subfolders counts each subfolder as a group of its own.
        quick: a small run for CI smoke (well under a minute).
        seed: seeds instances, damage and sampling; the same seed gives the same counts.
        out: when given, write ``report.json``, ``report.md`` and ``plot.png`` there.
        tools: names from :data:`TOOLS` (``None``: all); missing ones are skipped and
            listed in ``report["skipped"]``.
        progress: show a progress bar on stderr; otherwise nothing is printed.
        builtin: include the project's own ``schemas/``.
        limit: at most this many schemas per folder (a seeded sample).
        docs_per_operator: documents per operator (overrides the size preset).
        hypothesis: ask hypothesis-jsonschema for schemas the generator fails on.
        timeout: seconds allowed per schema (instances, each repair) and per tool call.

    Returns:
        The report dict (see the module docstring).

    Raises:
        FileNotFoundError: a folder in ``schemas_dirs`` does not exist.
        ValueError: a folder holds no ``*.json`` files, or no schema could be used.
    """
    started = time.perf_counter()
    size = QUICK_SIZE if quick else DEFAULT_SIZE
    per_operator = docs_per_operator if docs_per_operator is not None else size.docs_per_operator
    groups = _groups(schemas_dirs or [], builtin, limit, seed)
    if not groups:
        raise ValueError("no schemas: schemas/ was not found and no --schemas folder was given")
    bar = _Progress(progress)
    try:
        entries: list[Entry] = []
        coverage: dict[str, Coverage] = {}
        advance = bar.task("schemas", sum(len(files) for _, _, files in groups))
        with warnings.catch_warnings():
            # Real-world patterns make `re` warn; that is the schema's business, not ours.
            warnings.simplefilter("ignore")
            for group, folder, files in groups:
                cov = coverage[group] = Coverage(str(folder))
                clock = time.perf_counter()
                for path in files:
                    try:
                        entry = _check_schema(
                            group, path, cov, size.instances_per_schema, seed, hypothesis, timeout
                        )
                    except (Exception, RecursionError, TimeLimitExceeded) as exc:
                        # A bug of the benchmark itself: name the schema and go on.
                        cov.fail("bench_error", path.name, _first_line(exc))
                        entry = None
                    if entry is not None:
                        entries.append(entry)
                    advance(1)
                cov.seconds = time.perf_counter() - clock
        if not entries:
            raise ValueError("no schema yielded an instance; see the coverage counts")
        docs, missing = build_docs(entries, per_operator, seed)
        loaded, skipped = load_tools(tools)
        runs = len(loaded) + sum(tool.name in SLOW_VALIDATOR_TOOLS for tool in loaded)
        advance = bar.task("tools", len(docs) * runs * size.repeat)
        results: dict[str, dict[str, Any]] = {}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            scored = [
                score(tool, docs, entries, timeout=timeout, advance=advance) for tool in loaded
            ]
            time_calls(scored, docs, entries, repeat=size.repeat, advance=advance)
            for run in scored:
                tool = run.tool
                results[tool.name] = summarize(tool, run.cells)
                if tool.name in SLOW_VALIDATOR_TOOLS:
                    results[tool.name][SLOW_VALIDATOR_KEY] = without_fast_validation(
                        tool,
                        docs,
                        entries,
                        results[tool.name],
                        timeout=timeout,
                        repeat=size.repeat,
                        advance=advance,
                    )
    finally:
        bar.close()
    report: dict[str, Any] = {
        "tools": results,
        "skipped": skipped,
        "coverage": {group: cov.as_dict() for group, cov in coverage.items()},
        "ratios": ratios(results),
        "config": _config(
            seed=seed,
            quick=quick,
            per_operator=per_operator,
            size=size,
            groups=groups,
            entries=entries,
            docs=docs,
            missing=missing,
            limit=limit,
            hypothesis=hypothesis,
            timeout=timeout,
            seconds=time.perf_counter() - started,
        ),
    }
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # matplotlib's layout and font notices
            report["plot"] = plot(report, out / "plot.png")
        (out / "report.json").write_text(
            json.dumps(report, indent=2, ensure_ascii=False) + "\n", encoding="utf-8"
        )
        (out / "report.md").write_text(markdown(report), encoding="utf-8")
    return report


def _config(
    *,
    seed: int,
    quick: bool,
    per_operator: int,
    size: Size,
    groups: list[tuple[str, Path, list[Path]]],
    entries: list[Entry],
    docs: list[Doc],
    missing: dict[str, int],
    limit: int | None,
    hypothesis: bool,
    timeout: float,
    seconds: float,
) -> dict[str, Any]:
    in_pool = Counter(entry.group for entry in entries)
    return {
        "seed": seed,
        "quick": quick,
        "docs_per_operator": per_operator,
        "instances_per_schema": size.instances_per_schema,
        "timing_passes": size.repeat,
        "documents": len(docs),
        "documents_not_built": missing,
        "bytes": sum(doc.size for doc in docs),
        "operators": operator_names(),
        "single_operators": list(OPERATORS),
        "combinations": ["+".join(combo) for combo in COMBINATIONS],
        "lossy_operators": sorted(
            op for op in operator_names() if any(n in LOSSY for n in op.split("+"))
        ),
        "clean_operator": CLEAN,
        "serializations": list(SERIALIZATIONS),
        "schema_groups": {
            group: {"folder": str(folder), "schemas": len(files), "usable": in_pool[group]}
            for group, folder, files in groups
        },
        "limit_per_folder": limit,
        "hypothesis": hypothesis,
        "timeout_s": timeout,
        "definitions": dict(_DEFINITIONS),
        "tool_names": dict(TOOLS),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "seconds": round(seconds, 1),
    }


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the options of ``repairllm bench parser`` to ``parser``."""
    parser.add_argument(
        "--schemas",
        type=Path,
        action="append",
        metavar="DIR",
        help="a folder of *.json schemas to add (repeatable); subfolders are reported "
        "one by one, with coverage",
    )
    parser.add_argument(
        "--no-builtin", action="store_true", help="leave out the project's own schemas/"
    )
    parser.add_argument(
        "--limit", type=int, metavar="N", help="at most N schemas per folder (seeded sample)"
    )
    parser.add_argument("--quick", action="store_true", help="a small run for CI (< 1 minute)")
    parser.add_argument("--seed", type=int, default=0, help="seed of everything (default: 0)")
    parser.add_argument(
        "--docs",
        type=int,
        metavar="N",
        help=f"documents per operator (default {DEFAULT_SIZE.docs_per_operator}, "
        f"--quick {QUICK_SIZE.docs_per_operator})",
    )
    parser.add_argument(
        "--tools",
        metavar="A,B",
        help=f"comma-separated tools (default: all installed): {', '.join(TOOLS)}",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=Path("bench-results/parser"),
        metavar="DIR",
        help="where report.json, report.md and plot.png go (default: bench-results/parser)",
    )
    parser.add_argument(
        "--hypothesis",
        action="store_true",
        help="ask hypothesis-jsonschema for schemas our generator fails on (slow)",
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=10.0,
        metavar="S",
        help="seconds per schema and per tool call (default: 10)",
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def main(args: argparse.Namespace) -> int:
    """Run ``repairllm bench parser`` with parsed ``args``; print tables; return the exit code."""
    tools = [t.strip() for t in args.tools.split(",") if t.strip()] if args.tools else None
    try:
        report = run_parser_bench(
            args.schemas,
            quick=args.quick,
            seed=args.seed,
            out=args.out,
            tools=tools,
            progress=not args.no_progress,
            builtin=not args.no_builtin,
            limit=args.limit,
            docs_per_operator=args.docs,
            hypothesis=args.hypothesis,
            timeout=args.timeout,
        )
    except (FileNotFoundError, ValueError) as exc:
        print(f"repairllm bench parser: {exc}", file=sys.stderr)
        return 1
    print_report(report)
    print(
        f"wrote {args.out / 'report.json'} and report.md; plot: {report['plot']}", file=sys.stderr
    )
    return 0 if report["tools"] else 1


def _cli(argv: Iterable[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m repairllm.bench.parser", description=__doc__.split("\n\n")[0]
    )
    add_arguments(parser)
    return main(parser.parse_args(list(argv) if argv is not None else None))


if __name__ == "__main__":
    sys.exit(_cli())
