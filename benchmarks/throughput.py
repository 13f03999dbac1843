"""Throughput and recovery of JSON parsers/repairers on valid and LLM-damaged JSON.

Usage::

    python benchmarks/throughput.py [--docs N] [--seed S] [--out DIR] [--repeat R]

On one seeded corpus, for every tool (``orjson.loads``, ``json.loads``,
``json_repair.loads``, ``repairllm.repair``) it measures:

* throughput in MB/s (input bytes / seconds spent inside the tool calls) on
  valid documents (best of ``--repeat`` passes) and on damaged documents;
* recovery on damaged documents: *exact* (returned the original value),
  *silently wrong* (returned a value, raised nothing, but not the original) and
  *error* (raised).

Damaged documents get exactly one operator from :data:`repairllm.corrupt.OPERATORS`
each, round-robin, with equal counts per operator. Lossy operators (``truncated``)
are reported separately and left out of the headline recovery numbers.

Results go to stdout (tables) and to ``<out>/throughput.json``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import gc
import importlib
import importlib.metadata
import importlib.util
import json
import math
import platform
import random
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUT = ROOT / "benchmarks" / "results"
MIN_BYTES = 200
MAX_BYTES = 5_000
VALID_TARGET = 0.7  # repairllm valid MB/s / orjson valid MB/s
DAMAGED_TARGET = 3.0  # repairllm damaged MB/s / json_repair damaged MB/s
STRICT = (ValueError,)  # expected_errors of the strict parsers


# --------------------------------------------------------------------------- #
# Loading the library under test
# --------------------------------------------------------------------------- #


def _load_corrupt() -> ModuleType:
    """Import ``repairllm.corrupt``, from its file if the package itself is broken."""
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    try:
        return importlib.import_module("repairllm.corrupt")
    except Exception:  # the package __init__ may be mid-edit
        spec = importlib.util.spec_from_file_location(
            "_repairllm_corrupt", ROOT / "repairllm" / "corrupt.py"
        )
        if spec is None or spec.loader is None:
            raise
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module
        spec.loader.exec_module(module)
        return module


def _version(dist: str, module: ModuleType | None = None) -> str:
    """Return the installed version of ``dist`` (or the module's ``__version__``)."""
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        found = getattr(module, "__version__", None)
        return str(found) if found else "unknown (not installed)"


# --------------------------------------------------------------------------- #
# Corpus
# --------------------------------------------------------------------------- #

_FIRST = ("Ada", "José", "Zoë", "Liam", "Mei", "Omar", "Priya", "Sven", "Chloé", "Kenji", "Amara")
_LAST = ("Lovelace", "García", "Müller", "Okafor", "Nakamura", "Smith", "Kowalski", "Dubois")
_COMPANIES = ("Acme Corp", "Globex", "Initech", "Umbrella GmbH", "Stark & Sons", "Nordwind AB")
_TITLES = ("Engineer", "Product Manager", "Data Scientist", "Designer", "Support Lead")
_SKILLS = ("python", "sql", "rust", "negotiation", "kubernetes", "design", "statistics", "go")
_PHRASES = (
    "hi",
    "we ship on Friday",
    "that's not what I ordered",
    "it works on my machine",
    "please refund me",
    "the build is green",
    "see you at 10:30",
)
_SENTENCES = (
    "The customer reported the issue twice before escalating.",
    "All items were delivered, but one box was damaged.",
    "She has led the migration to the new billing system.",
    "Follow-up is needed by the end of the week.",
    "Prices include VAT (19%) unless stated otherwise.",
    "The meeting started late; two attendees joined remotely.",
    "He prefers email over phone calls.",
    "Budget: approx. 12,500 EUR for Q3.",
    "Path on disk: C:\\data\\exports\\2024.",
    "Résumé attached — see page 2 for references.",
)


def _name(rng: random.Random) -> str:
    return f"{rng.choice(_FIRST)} {rng.choice(_LAST)}"


def _speech(rng: random.Random) -> str:
    phrase = rng.choice(_PHRASES)
    return rng.choice(
        (
            f'{rng.choice(_FIRST)} said "{phrase}" to me',
            f'The note read: "{phrase}".',
            f'Quote: "{phrase}" (from the call transcript)',
        )
    )


def _multiline(rng: random.Random) -> str:
    lines = rng.sample(_SENTENCES, rng.randint(2, 4))
    if rng.random() < 0.3:
        lines = [f"- {line}" for line in lines]
    if rng.random() < 0.3:
        lines.append("\tindented detail")
    return "\n".join(lines)


def _person(rng: random.Random) -> tuple[dict[str, Any], str, Callable[[], Any]]:
    value: dict[str, Any] = {
        "name": _name(rng),
        "age": rng.randint(19, 77),
        "email": f"user{rng.randint(1, 999)}@example.com",
        "is_active": rng.random() < 0.7,
        "manager": None,
        "bio": _multiline(rng),
        "favorite_quote": _speech(rng),
        "skills": rng.sample(_SKILLS, rng.randint(1, 4)),
        "employment": [],
    }

    def job() -> dict[str, Any]:
        return {
            "company": rng.choice(_COMPANIES),
            "title": rng.choice(_TITLES),
            "start_year": rng.randint(1995, 2023),
            "end_year": rng.choice((None, rng.randint(2000, 2024))),
            "remote": rng.random() < 0.5,
            "highlights": [rng.choice(_SENTENCES) for _ in range(rng.randint(1, 3))],
        }

    return value, "employment", job


def _ticket(rng: random.Random) -> tuple[dict[str, Any], str, Callable[[], Any]]:
    value: dict[str, Any] = {
        "ticket_id": f"T-{rng.randint(10000, 99999)}",
        "customer": {"name": _name(rng), "tier": rng.choice(("free", "pro")), "verified": True},
        "subject": _speech(rng),
        "summary": _multiline(rng),
        "priority": rng.choice((None, 1, 2, 3)),
        "tags": rng.sample(("billing", "shipping", "bug", "urgent", "refund"), rng.randint(0, 3)),
        "messages": [],
        "escalated": False,
    }

    def message() -> dict[str, Any]:
        return {
            "author": _name(rng),
            "text": _speech(rng) if rng.random() < 0.5 else _multiline(rng),
            "sentiment": round(rng.uniform(-1, 1), 3),
            "resolved": rng.random() < 0.3,
            "attachments": [f"file{i}.png" for i in range(rng.randint(0, 2))],
        }

    return value, "messages", message


def _products(rng: random.Random) -> tuple[dict[str, Any], str, Callable[[], Any]]:
    value: dict[str, Any] = {
        "source": f"https://shop.example.com/catalog?page={rng.randint(1, 40)}",
        "currency": rng.choice(("EUR", "USD", "JPY")),
        "note": _multiline(rng),
        "headline_review": _speech(rng),
        "discontinued": None,
        "products": [],
    }

    def product() -> dict[str, Any]:
        return {
            "sku": f"{rng.choice('ABCDEFG')}-{rng.randint(100, 999)}",
            "name": f"{rng.choice(('Steel', 'Bamboo', 'Smart', 'Mini'))} "
            f"{rng.choice(('Kettle', 'Lamp', 'Desk', 'Backpack'))}",
            "price": round(rng.uniform(1, 500), 2),
            "in_stock": rng.random() < 0.8,
            "weight_kg": rng.choice((None, round(rng.uniform(0.1, 20), 1))),
            "dimensions": {
                "w": rng.randint(1, 99),
                "h": rng.randint(1, 99),
                "d": rng.randint(1, 99),
            },
            "reviews": [
                {"rating": rng.randint(1, 5), "comment": _speech(rng)}
                for _ in range(rng.randint(0, 2))
            ],
        }

    return value, "products", product


def _meeting(rng: random.Random) -> tuple[dict[str, Any], str, Callable[[], Any]]:
    value: dict[str, Any] = {
        "title": f"Weekly sync #{rng.randint(1, 60)}",
        "summary": _multiline(rng),
        "recorded": rng.random() < 0.5,
        "location": None,
        "key_quote": _speech(rng),
        "attendees": [{"name": _name(rng), "role": rng.choice(_TITLES)} for _ in range(2)],
        "action_items": [],
    }

    def item() -> dict[str, Any]:
        return {
            "owner": _name(rng),
            "task": rng.choice(_SENTENCES),
            "due": rng.choice((None, f"2024-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}")),
            "done": rng.random() < 0.4,
            "depends_on": [rng.randint(1, 9) for _ in range(rng.randint(0, 2))],
        }

    return value, "action_items", item


_KINDS = (_person, _ticket, _products, _meeting)


def _dumps(value: Any, style: str) -> str:
    if style == "pretty":
        return json.dumps(value, ensure_ascii=False, indent=2)
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def generate_document(rng: random.Random) -> str:
    """Return one LLM-output-like JSON text of roughly 200 B to 5 KB.

    Every document has quoted speech (escaped quotes), multi-line text (escaped
    newlines), booleans, nulls and a list of nested objects, so every corruption
    operator has something to damage.
    """
    style = rng.choice(("pretty", "minified"))
    target = int(math.exp(rng.uniform(math.log(MIN_BYTES), math.log(MAX_BYTES))))
    value, list_key, make_item = rng.choice(_KINDS)(rng)
    items: list[Any] = value[list_key]
    items.append(make_item())
    text = _dumps(value, style)
    while len(text.encode()) < target:
        items.append(make_item())
        candidate = _dumps(value, style)
        if len(candidate.encode()) > MAX_BYTES:
            items.pop()
            break
        text = candidate
    while len(text.encode()) > MAX_BYTES and len(items) > 1:
        items.pop()
        text = _dumps(value, style)
    return text


def schema_examples(folder: Path) -> list[str]:
    """Return the ``examples`` instances of ``folder/*.json`` schemas as JSON texts.

    Missing folders, unreadable or half-written files are skipped silently.
    """
    texts: list[str] = []
    if not folder.is_dir():
        return texts
    for path in sorted(folder.glob("*.json")):
        try:
            schema = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        examples = schema.get("examples") if isinstance(schema, dict) else None
        if isinstance(examples, list):
            for index, example in enumerate(examples):
                style = "pretty" if index % 2 == 0 else "minified"
                texts.append(_dumps(example, style))
    return texts


@dataclass(frozen=True)
class Doc:
    """One benchmark input: the text given to the tools and the value expected back."""

    text: str
    expected: Any
    operator: str | None  # None for valid documents
    size: int


def build_corpus(
    docs: int, seed: int, operators: dict[str, Callable[[str, random.Random], str]]
) -> tuple[list[Doc], list[Doc], int]:
    """Build the valid and damaged document lists.

    Args:
        docs: Requested number of damaged documents (rounded down to a multiple
            of the operator count, at least one per operator); the same number
            of valid documents is built.
        seed: Seed of everything.
        operators: The corruption operators, by name.

    Returns:
        ``(valid, damaged, schema_example_count)``.
    """
    names = list(operators)
    per_operator = max(1, docs // len(names))
    total = per_operator * len(names)

    examples = schema_examples(ROOT / "schemas")[: total // 2]
    sources = list(examples)
    for index in range(total - len(sources)):
        sources.append(generate_document(random.Random(f"valid:{seed}:{index}")))
    valid = [Doc(text, json.loads(text), None, len(text.encode())) for text in sources]

    damaged: list[Doc] = []
    for index in range(total):
        name = names[index % len(names)]
        source = valid[index % len(valid)]
        text = operators[name](source.text, random.Random(f"damage:{seed}:{index}"))
        attempt = 0
        while text == source.text:  # operator cannot apply: take a fresh document
            if attempt == 100:
                raise RuntimeError(f"operator {name} applies to no generated document")
            fresh = generate_document(random.Random(f"fallback:{seed}:{index}:{attempt}"))
            source = Doc(fresh, json.loads(fresh), None, len(fresh.encode()))
            text = operators[name](source.text, random.Random(f"damage:{seed}:{index}:{attempt}"))
            attempt += 1
        damaged.append(Doc(text, source.expected, name, len(text.encode())))
    return valid, damaged, len(examples)


# --------------------------------------------------------------------------- #
# Measuring
# --------------------------------------------------------------------------- #


def same_value(a: Any, b: Any) -> bool:
    """JSON equality: like ``==`` but ``True != 1`` and containers compared deeply."""
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, int | float) and isinstance(b, int | float):
        return a == b
    if isinstance(a, list):
        return isinstance(b, list) and len(a) == len(b) and all(map(same_value, a, b))
    if isinstance(a, dict):
        return (
            isinstance(b, dict)
            and a.keys() == b.keys()
            and all(same_value(a[key], b[key]) for key in a)
        )
    if a is None:
        return b is None
    return type(a) is type(b) and bool(a == b)


@dataclass
class Tally:
    """Counts and timings for one tool on a set of documents."""

    n: int = 0
    bytes: int = 0
    seconds: float = 0.0
    exact: int = 0
    wrong: int = 0
    error: int = 0

    def add(self, other: Tally) -> None:
        """Accumulate ``other`` into this tally."""
        self.n += other.n
        self.bytes += other.bytes
        self.seconds += other.seconds
        self.exact += other.exact
        self.wrong += other.wrong
        self.error += other.error

    def mb_s(self) -> float | None:
        """Throughput in MB/s (10^6 bytes per second)."""
        return self.bytes / self.seconds / 1e6 if self.seconds > 0 else None

    def pct(self, count: int) -> float | None:
        """``count`` as a percentage of the documents."""
        return 100.0 * count / self.n if self.n else None

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready summary."""
        return {
            "n": self.n,
            "bytes": self.bytes,
            "seconds": self.seconds,
            "mb_s": self.mb_s(),
            "exact": self.exact,
            "silently_wrong": self.wrong,
            "error": self.error,
            "exact_pct": self.pct(self.exact),
            "silently_wrong_pct": self.pct(self.wrong),
            "error_pct": self.pct(self.error),
            "returned_pct": self.pct(self.exact + self.wrong),
        }


@dataclass
class Tool:
    """A parser or repairer under test."""

    name: str
    call: Callable[[str], Any] | None
    version: str
    expected_errors: tuple[type[BaseException], ...] = ()
    reason: str | None = None  # why it is unavailable
    unexpected: list[dict[str, Any]] = field(default_factory=list)
    wrong_examples: list[dict[str, Any]] = field(default_factory=list)


def load_tools() -> list[Tool]:
    """Return the tools, with repairllm marked unavailable when it cannot run yet."""
    import json_repair
    import orjson

    tools = [
        Tool("orjson.loads", orjson.loads, _version("orjson", orjson), STRICT),
        Tool("json.loads", json.loads, platform.python_version(), STRICT),
        Tool("json_repair.loads", json_repair.loads, _version("json_repair", json_repair)),
    ]
    try:
        repairllm = importlib.import_module("repairllm")
        repair = repairllm.repair
        base_error = repairllm.RepairLLMError
    except Exception as exc:
        tools.append(
            Tool("repairllm.repair", None, "n/a", reason=f"import: {type(exc).__name__}: {exc}")
        )
        return tools
    version = _version("repairllm", repairllm)
    if version.startswith("unknown"):
        version = "source tree"
    reason = None
    try:
        repair('{"probe": [1, true, null]}')
    except NotImplementedError as exc:
        reason = f"repair() raises NotImplementedError: {exc}"
    except Exception:  # it runs; failures are measured below
        pass
    errors = (base_error,) if isinstance(base_error, type) else ()
    tools.append(Tool("repairllm.repair", None if reason else repair, version, errors, reason))
    return tools


def run_pass(tool: Tool, docs: Sequence[Doc], *, record: bool, lossy: frozenset[str]) -> Tally:
    """Call the tool on every document, timing only the calls (garbage collector off).

    Args:
        tool: The tool; must be available.
        docs: The documents.
        record: Whether to keep examples of unexpected exceptions and wrong results.
        lossy: Operators whose wrong results are expected (not kept as examples).

    Returns:
        The tally of this pass.
    """
    call = tool.call
    assert call is not None
    tally = Tally()
    perf_counter = time.perf_counter
    gc.collect()
    gc.disable()
    try:
        for doc in docs:
            tally.n += 1
            tally.bytes += doc.size
            start = perf_counter()
            try:
                value = call(doc.text)
            except Exception as exc:
                tally.seconds += perf_counter() - start
                tally.error += 1
                expected = isinstance(exc, tool.expected_errors)
                if record and not expected and len(tool.unexpected) < 20:
                    tool.unexpected.append(
                        {
                            "operator": doc.operator,
                            "exception": f"{type(exc).__name__}: {exc}"[:300],
                            "input": doc.text[:300],
                        }
                    )
                continue
            tally.seconds += perf_counter() - start
            if same_value(doc.expected, value):
                tally.exact += 1
            else:
                tally.wrong += 1
                if record and doc.operator not in lossy and _room(tool.wrong_examples, doc):
                    tool.wrong_examples.append(
                        {
                            "operator": doc.operator,
                            "input": doc.text[:300],
                            "returned": repr(value)[:300],
                        }
                    )
    finally:
        gc.enable()
    return tally


def _room(examples: list[dict[str, Any]], doc: Doc, per_operator: int = 3) -> bool:
    """Whether fewer than ``per_operator`` examples are kept for the document's operator."""
    return sum(example["operator"] == doc.operator for example in examples) < per_operator


@dataclass
class Result:
    """Everything measured for one tool."""

    valid: Tally
    per_operator: dict[str, Tally]
    damaged: Tally = field(default_factory=Tally)  # every damaged document
    headline: Tally = field(default_factory=Tally)  # damaged by a non-lossy operator
    lossy: Tally = field(default_factory=Tally)  # damaged by a lossy operator


def measure(
    tool: Tool, valid: Sequence[Doc], damaged: Sequence[Doc], repeat: int, lossy: frozenset[str]
) -> Result:
    """Measure one tool on the valid documents (best of ``repeat``) and the damaged ones."""
    valid_tally = run_pass(tool, valid, record=True, lossy=lossy)
    for _ in range(repeat - 1):
        again = run_pass(tool, valid, record=False, lossy=lossy)
        valid_tally.seconds = min(valid_tally.seconds, again.seconds)

    by_operator: dict[str, list[Doc]] = {}
    for doc in damaged:
        by_operator.setdefault(doc.operator or "", []).append(doc)
    result = Result(
        valid_tally,
        {
            name: run_pass(tool, docs, record=True, lossy=lossy)
            for name, docs in by_operator.items()
        },
    )
    for name, tally in result.per_operator.items():
        (result.lossy if name in lossy else result.headline).add(tally)
        result.damaged.add(tally)
    return result


# --------------------------------------------------------------------------- #
# Reporting
# --------------------------------------------------------------------------- #


def _fmt(number: float | None, digits: int = 1) -> str:
    return "n/a" if number is None else f"{number:.{digits}f}"


def _ratio(top: float | None, bottom: float | None) -> float | None:
    return top / bottom if top is not None and bottom else None


def render_table(title: str, headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """Render a table with ``rich`` when it is installed, else as aligned plain text."""
    try:
        from rich.console import Console
        from rich.table import Table
    except ImportError:
        widths = [
            max(len(str(cell)) for cell in column) for column in zip(headers, *rows, strict=True)
        ]
        lines = [title, "  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True))]
        lines.append("  ".join("-" * w for w in widths))
        for row in rows:
            cells = [row[0].ljust(widths[0])]
            cells += [cell.rjust(w) for cell, w in zip(row[1:], widths[1:], strict=True)]
            lines.append("  ".join(cells))
        return "\n".join(lines)
    table = Table(title=title, title_justify="left")
    for index, header in enumerate(headers):
        table.add_column(header, justify="left" if index == 0 else "right")
    for row in rows:
        table.add_row(*row)
    console = Console(width=200)
    with console.capture() as capture:
        console.print(table)
    return str(capture.get()).rstrip()


def _pct_diff(a: Tally | None, b: Tally | None, attr: str) -> float | None:
    """Percentage-point difference of ``attr`` between two tallies."""
    if a is None or b is None or not a.n or not b.n:
        return None
    return 100.0 * float(getattr(a, attr)) / a.n - 100.0 * float(getattr(b, attr)) / b.n


def report(
    tools: Sequence[Tool],
    results: dict[str, Result],
    operators: Sequence[str],
    lossy: frozenset[str],
) -> tuple[str, dict[str, Any]]:
    """Return the text report and the ratios."""
    rows = []
    for tool in tools:
        if tool.name not in results:
            rows.append([f"{tool.name} (unavailable)", *["n/a"] * 7])
            continue
        r = results[tool.name]
        head, lost = r.headline, r.lossy
        rows.append(
            [
                tool.name,
                _fmt(r.valid.mb_s()),
                _fmt(r.valid.pct(r.valid.exact)),
                _fmt(r.damaged.mb_s()),
                _fmt(head.pct(head.exact)),
                _fmt(head.pct(head.wrong)),
                _fmt(head.pct(head.error)),
                _fmt(lost.pct(lost.exact + lost.wrong)),
            ]
        )
    main_table = render_table(
        "Throughput and recovery (exact/wrong/error: damaged documents, lossy operators "
        f"({', '.join(sorted(lossy)) or 'none'}) excluded)",
        [
            "tool",
            "valid MB/s",
            "valid exact %",
            "damaged MB/s",
            "exact %",
            "silently wrong %",
            "error %",
            "lossy: returned %",
        ],
        rows,
    )

    repairers = [t for t in tools if t.name in results and t.expected_errors != STRICT]
    headers = ["operator", "n"]
    for tool in repairers:
        headers += [f"{tool.name} exact %", "wrong %", "error %"]
    op_rows = []
    for name in operators:
        tallies = [results[t.name].per_operator[name] for t in repairers]
        row = [name + (" (lossy)" if name in lossy else ""), str(tallies[0].n) if tallies else ""]
        for tally in tallies:
            row += [
                _fmt(tally.pct(tally.exact)),
                _fmt(tally.pct(tally.wrong)),
                _fmt(tally.pct(tally.error)),
            ]
        op_rows.append(row)
    per_op_table = render_table("Recovery per operator (repairing tools)", headers, op_rows)

    rl, orj, jr = (
        results.get(name) for name in ("repairllm.repair", "orjson.loads", "json_repair.loads")
    )
    ratios: dict[str, Any] = {
        "valid_mb_s_repairllm_over_orjson": _ratio(
            rl.valid.mb_s() if rl else None, orj.valid.mb_s() if orj else None
        ),
        "valid_target": VALID_TARGET,
        "damaged_mb_s_repairllm_over_json_repair": _ratio(
            rl.damaged.mb_s() if rl else None, jr.damaged.mb_s() if jr else None
        ),
        "damaged_target": DAMAGED_TARGET,
        "exact_pct_points_repairllm_minus_json_repair": _pct_diff(
            rl.headline if rl else None, jr.headline if jr else None, "exact"
        ),
        "silently_wrong_pct_points_repairllm_minus_json_repair": _pct_diff(
            rl.headline if rl else None, jr.headline if jr else None, "wrong"
        ),
    }

    def verdict(value: float | None, target: float) -> str:
        if value is None:
            return "n/a (repairllm unavailable)"
        return f"{value:.3f} (target >= {target:g}: {'met' if value >= target else 'NOT met'})"

    def points(value: float | None) -> str:
        return "n/a" if value is None else f"{value:+.1f} percentage points"

    lines = [
        main_table,
        "",
        per_op_table,
        "",
        "Ratios",
        "  repairllm valid MB/s / orjson valid MB/s:           "
        + verdict(ratios["valid_mb_s_repairllm_over_orjson"], VALID_TARGET),
        "  repairllm damaged MB/s / json_repair damaged MB/s:  "
        + verdict(ratios["damaged_mb_s_repairllm_over_json_repair"], DAMAGED_TARGET),
        "  exact recovery, repairllm - json_repair:            "
        + points(ratios["exact_pct_points_repairllm_minus_json_repair"]),
        "  silently wrong, repairllm - json_repair:            "
        + points(ratios["silently_wrong_pct_points_repairllm_minus_json_repair"]),
    ]
    for tool in tools:
        if tool.reason:
            lines.append(f"\n{tool.name} unavailable: {tool.reason}")
        if tool.unexpected:
            count = "20+" if len(tool.unexpected) >= 20 else str(len(tool.unexpected))
            lines.append(
                f"\n{tool.name}: {count} exceptions outside its documented error type; "
                f"first: {tool.unexpected[0]['exception']}"
            )
    return "\n".join(lines), ratios


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark; return the exit status."""
    parser = argparse.ArgumentParser(
        description="Throughput and recovery of JSON parsers/repairers on valid and "
        "LLM-damaged JSON."
    )
    parser.add_argument(
        "--docs",
        type=int,
        default=2600,
        help="number of damaged documents, rounded down to a multiple of the operator count; "
        "as many valid ones are used (default: 2600)",
    )
    parser.add_argument("--seed", type=int, default=0, help="corpus seed (default: 0)")
    parser.add_argument(
        "--out", type=Path, default=DEFAULT_OUT, help="output folder (default: benchmarks/results)"
    )
    parser.add_argument(
        "--repeat", type=int, default=3, help="timing passes over valid documents, best kept"
    )
    args = parser.parse_args(argv)

    corrupt = _load_corrupt()
    operators: dict[str, Callable[[str, random.Random], str]] = dict(corrupt.OPERATORS)
    lossy = frozenset(corrupt.LOSSY)
    repeat = max(1, args.repeat)

    def log(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    log(f"building corpus (seed {args.seed}) ...")
    valid, damaged, n_examples = build_corpus(args.docs, args.seed, operators)
    tools = load_tools()

    results: dict[str, Result] = {}
    for tool in tools:
        if tool.call is None:
            log(f"skipping {tool.name}: {tool.reason}")
            continue
        log(f"measuring {tool.name} ...")
        results[tool.name] = measure(tool, valid, damaged, repeat, lossy)

    text, ratios = report(tools, results, list(operators), lossy)
    print(text)

    sizes = [doc.size for doc in valid]
    tools_json: dict[str, Any] = {}
    for tool in tools:
        entry: dict[str, Any] = {"available": tool.name in results, "reason": tool.reason}
        result = results.get(tool.name)
        if result is not None:
            entry |= {
                "valid": result.valid.as_dict(),
                "damaged_all": result.damaged.as_dict(),
                "damaged_headline": result.headline.as_dict(),
                "damaged_lossy": result.lossy.as_dict(),
                "per_operator": {
                    name: tally.as_dict() for name, tally in result.per_operator.items()
                },
                "unexpected_exceptions": tool.unexpected,
                "silently_wrong_examples": tool.wrong_examples,
            }
        tools_json[tool.name] = entry
    payload = {
        "config": {
            "seed": args.seed,
            "docs_requested": args.docs,
            "valid_docs": len(valid),
            "damaged_docs": len(damaged),
            "per_operator": len(damaged) // len(operators),
            "operators": list(operators),
            "lossy_operators": sorted(lossy),
            "schema_examples": n_examples,
            "repeat_valid": repeat,
            "valid_bytes": {
                "total": sum(sizes),
                "min": min(sizes),
                "max": max(sizes),
                "mean": sum(sizes) / len(sizes),
            },
            "damaged_bytes_total": sum(doc.size for doc in damaged),
            "mb": "10^6 bytes of UTF-8 input",
            "versions": {
                "python": platform.python_version(),
                **{tool.name: tool.version for tool in tools},
            },
            "platform": platform.platform(),
            "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        },
        "tools": tools_json,
        "ratios": ratios,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    out_file = args.out / "throughput.json"
    out_file.write_text(json.dumps(payload, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    log(f"wrote {out_file}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
