"""Item-by-item streaming cost: a list of orders fed in 4-character chunks.

``repairllm.repair_items`` (each element aligned and validated the moment it closes)
against the incremental parser alone (what ``stream`` pays too) and one
``repairllm.repair`` of the whole reply with the array's schema (what a final repair
costs anyway), at two list lengths, for strict JSON and for the same list with single
quotes (the parser's fallback: each element repaired alone). Each is reported in CPU
seconds (best of three) and as a multiple of the whole repair; the ratio between the two
lengths shows the work is linear (ten times the items: about ten times the time).

Run: ``python benchmarks/items_cost.py [--items 100] [--chunk 4] [--out FILE]``
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import repairllm
from repairllm.lexical.incremental import IncrementalParser

ROOT = Path(__file__).resolve().parent.parent


def best_of(runs: int, fn: Callable[[], object]) -> float:
    times = []
    for _ in range(runs):
        start = time.process_time()
        fn()
        times.append(time.process_time() - start)
    return min(times)


def measure(order: dict[str, Any], n: int, chunk: int, quotes: bool) -> dict[str, float]:
    examples = order["examples"]
    rows = [examples[i % len(examples)] for i in range(n)]
    text = json.dumps(rows, indent=2)
    if quotes:
        text = text.replace('"', "'")
    chunks = [text[i : i + chunk] for i in range(0, len(text), chunk)]
    array = {
        "$defs": order["$defs"],
        "type": "array",
        "items": {k: v for k, v in order.items() if k not in ("$defs", "$schema", "examples")},
    }

    def items() -> object:
        got = list(repairllm.repair_items(chunks, order))
        assert [i.data for i in got] == rows
        return got

    def whole() -> object:
        return repairllm.repair(text, array)

    def parse_only() -> object:
        parser = IncrementalParser(members=True)
        for piece in chunks:
            parser.feed(piece)
        return parser

    runs = 3
    item_s, whole_s = best_of(runs, items), best_of(runs, whole)
    return {
        "bytes": len(text),
        "chunks": len(chunks),
        "repair_items_s": item_s,
        "parse_only_s": best_of(runs, parse_only),
        "repair_whole_s": whole_s,
        "ratio": item_s / whole_s,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--items", type=int, default=100)
    ap.add_argument("--chunk", type=int, default=4)
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "items_cost.json")
    args = ap.parse_args()
    order = json.loads((ROOT / "schemas" / "order.json").read_text())
    sizes = (args.items, 10 * args.items)
    rows: dict[str, dict[str, float]] = {}
    for quotes in (False, True):
        for n in sizes:
            rows[f"{'single quotes' if quotes else 'strict JSON'}, {n} items"] = measure(
                order, n, args.chunk, quotes
            )
    print(f"order objects as a pretty-printed list, in chunks of {args.chunk} characters")
    print(f"{'reply':<28} {'bytes':>9} {'items s':>9} {'parse s':>9} {'whole s':>9} {'x whole':>8}")
    for name, row in rows.items():
        print(
            f"{name:<28} {row['bytes']:>9,} {row['repair_items_s']:>9.4f} "
            f"{row['parse_only_s']:>9.4f} {row['repair_whole_s']:>9.4f} {row['ratio']:>8.2f}"
        )
    print("parse s: the incremental parser alone (what stream pays too); whole s: one")
    print("repair of the whole reply with the array's schema")
    growth = {}
    for kind in ("strict JSON", "single quotes"):
        small, large = (rows[f"{kind}, {n} items"]["repair_items_s"] for n in sizes)
        growth[kind] = large / small
        print(f"{kind}: {sizes[1]} items cost {growth[kind]:.1f}x {sizes[0]} items")
    report = {
        "config": {"chunk": args.chunk, "sizes": sizes, "python": platform.python_version()},
        "rows": rows,
        "growth_10x_items": growth,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
