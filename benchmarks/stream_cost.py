"""Streaming parse cost: a 20 KB reply fed in 4-character chunks.

repairllm's incremental parser (state kept between chunks) against what streaming
code usually does: re-parse the whole buffer at every chunk, with json-repair or
partial-json-parser. Each is reported in total seconds and as a multiple of one
final parse of the whole reply by ``repairllm.repair`` (the cost paid anyway at the
end). Target: the incremental parser at most 3x one final parse.

Run: ``python benchmarks/stream_cost.py [--size 20000] [--chunk 4] [--out FILE]``
"""

from __future__ import annotations

import argparse
import contextlib
import json
import platform
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import repairllm
from repairllm.stream import IncrementalParser, parse_chunks

ROOT = Path(__file__).resolve().parent.parent


def reply_of_size(size: int) -> tuple[str, dict[str, Any]]:
    """A pretty-printed reply near ``size`` bytes, built from the corpus' order examples."""
    schema = json.loads((ROOT / "schemas" / "order.json").read_text())
    examples = schema["examples"]
    orders: list[Any] = []
    while len(json.dumps({"orders": orders}, indent=2)) < size:
        orders.append(examples[len(orders) % len(examples)])
    value = {"orders": orders}
    return json.dumps(value, indent=2), value


def best_of(runs: int, fn: Callable[[], object]) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=20_000)
    ap.add_argument("--chunk", type=int, default=4)
    ap.add_argument(
        "--out", type=Path, default=ROOT / "benchmarks" / "results" / "stream_cost.json"
    )
    args = ap.parse_args()

    text, value = reply_of_size(args.size)
    chunks = [text[i : i + args.chunk] for i in range(0, len(text), args.chunk)]

    def final_parse() -> object:
        return repairllm.repair(text)

    def incremental_parse_only() -> object:
        parser = IncrementalParser()
        for chunk in chunks:
            parser.feed(chunk)
        parser.close()
        assert parser.snapshot() == value
        return parser

    def incremental_with_partials() -> object:
        steps = parse_chunks(chunks)
        assert steps[-1].value == value
        return steps

    schema = json.loads((ROOT / "schemas" / "order.json").read_text())
    defs = schema.pop("$defs", {})
    schema.pop("$schema", None)
    wrapped = {
        "$defs": defs,
        "type": "object",
        "properties": {"orders": {"type": "array", "items": schema}},
    }

    rows: dict[str, float] = {}
    final = best_of(5, final_parse)
    finals = {
        "repairllm.repair(text)": final,
        "repairllm.repair(text, schema)": best_of(5, lambda: repairllm.repair(text, wrapped)),
    }
    rows["repairllm incremental (parse only)"] = best_of(3, incremental_parse_only)
    rows["repairllm incremental (+ a partial value per completed member)"] = best_of(
        3, incremental_with_partials
    )

    def reparse(fn: Callable[[str], object]) -> Callable[[], object]:
        def go() -> object:
            buffer = ""
            for chunk in chunks:
                buffer += chunk
                with contextlib.suppress(Exception):
                    fn(buffer)
            return buffer

        return go

    skipped = []
    try:
        import json_repair

        finals["json_repair.loads(text)"] = best_of(5, lambda: json_repair.loads(text))
        rows["json-repair, whole buffer per chunk"] = best_of(1, reparse(json_repair.loads))
    except ImportError:
        skipped.append("json_repair")
    try:
        import partial_json_parser

        rows["partial-json-parser, whole buffer per chunk"] = best_of(
            1, reparse(partial_json_parser.loads)
        )
    except ImportError:
        skipped.append("partial_json_parser")

    print(f"reply {len(text):,} bytes in {len(chunks):,} chunks of {args.chunk} characters")
    for name, seconds in finals.items():
        print(f"one final parse, {name}: {seconds * 1e3:.3f} ms")
    heads = "".join(f" {'x ' + str(i + 1):>9}" for i in range(len(finals)))
    print(f"{'method (x N: multiple of final parse N above)':<66} {'seconds':>9}{heads}")
    for name, seconds in rows.items():
        ratios = "".join(f" {seconds / f:>9.1f}" for f in finals.values())
        print(f"{name:<66} {seconds:>9.4f}{ratios}")
    if skipped:
        print("not installed, skipped:", ", ".join(skipped))
    report = {
        "config": {
            "bytes": len(text),
            "chunk": args.chunk,
            "chunks": len(chunks),
            "python": platform.python_version(),
            "machine": platform.machine(),
        },
        "final_parse_seconds": finals,
        "methods": {
            name: {"seconds": s, "x_final": {f: s / t for f, t in finals.items()}}
            for name, s in rows.items()
        },
        "skipped": skipped,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
