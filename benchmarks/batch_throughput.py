"""Batch repair throughput: the local engine, Ray Data with 1 worker, Ray with 2 workers.

The input is ``--rows`` stored replies (100,000 by default) built from the parser fuzz
corpus: the project's ``schemas/``, their generated instances, written the ways models
write them (pretty, minified, fenced, in prose, after a ``<think>`` block) and damaged
by every corruption operator and their combinations, as ``repairllm bench parser``
builds them. The documents are cycled to the row count in a seeded order, each row
naming its own schema (``--schema-field``). Every engine reads the same JSONL file and
writes one Parquet file in input order, with the full ledger; the outputs are checked
to be identical.

    python benchmarks/batch_throughput.py                  # 100,000 rows, ~10 min on 2 cores
    python benchmarks/batch_throughput.py --rows 20000 --engines local,ray1

Writes ``benchmarks/results/batch_throughput.json``. Ray runs on a local Ray started
with ``ray.init(num_cpus=2)``; its start-up is timed apart from the runs, and each run
includes starting its actors (what a user waits for).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import sys
import tempfile
import threading
import time
import warnings
from pathlib import Path
from typing import Any

from repairllm.batch import RepairSpec, repair_file

ROOT = Path(__file__).resolve().parent.parent
ENGINES = ("local", "local2", "ray1", "ray2")


def build_rows(rows: int, per_operator: int, seed: int, path: Path) -> dict[str, Any]:
    """Write ``rows`` JSONL records ``{"id", "schema", "reply"}``; return the schemas by name."""
    from repairllm.bench.parser import Coverage, _check_schema, _groups, build_docs

    entries = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for group, _folder, files in _groups([], True, None, seed):
            cov = Coverage(str(_folder))
            for file in files:
                try:
                    entry = _check_schema(group, file, cov, 6, seed, False, 10.0)
                except Exception:  # a schema the generator cannot instantiate
                    entry = None
                if entry is not None:
                    entries.append(entry)
        docs, _ = build_docs(entries, per_operator, seed)
    rng = random.Random(seed)
    order = list(range(len(docs)))
    with path.open("w", encoding="utf-8") as file:
        for i in range(rows):
            if i % len(docs) == 0:
                rng.shuffle(order)
            doc = docs[order[i % len(docs)]]
            record = {"id": i, "schema": f"s{doc.entry}", "reply": doc.text}
            file.write(json.dumps(record, ensure_ascii=False) + "\n")
    return {
        "schemas": {f"s{i}": entry.schema for i, entry in enumerate(entries)},
        "documents": len(docs),
        "schema_count": len(entries),
    }


def _tree_ticks() -> dict[int, int]:
    """CPU ticks (user + system) of this process and every living process below it."""
    parents: dict[int, int] = {}
    ticks: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as file:
                stat = file.read()
        except OSError:
            continue
        fields = stat[stat.rindex(b")") + 2 :].split()
        pid = int(entry)
        parents[pid] = int(fields[1])
        ticks[pid] = int(fields[11]) + int(fields[12])
    me = os.getpid()
    mine = {}
    for pid, used in ticks.items():
        walk = pid
        while walk not in (0, 1) and walk != me:
            walk = parents.get(walk, 0)
        if walk == me:
            mine[pid] = used
    return mine


class CpuMeter:
    """CPU seconds used by this process tree (Ray's raylet, GCS and workers included).

    A sampler reads ``/proc`` every half second and keeps each process's last count,
    so a worker that exits mid-run still counts (all but its last half second). On a
    machine shared with other work, wall time says how much CPU the run was given and
    CPU time what it needed: rows per CPU second does not depend on the other work.
    """

    def __init__(self) -> None:
        self.start = _tree_ticks()
        self.last = dict(self.start)
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._sample, daemon=True)
        self.thread.start()

    def _sample(self) -> None:
        while not self.stop.wait(0.5):
            self.last.update(_tree_ticks())

    def seconds(self) -> float:
        self.stop.set()
        self.thread.join()
        self.last.update(_tree_ticks())
        used = sum(t - self.start.get(pid, 0) for pid, t in self.last.items())
        return used / os.sysconf("SC_CLK_TCK")


def _run(engine: str, source: Path, out: Path, spec: RepairSpec) -> dict[str, Any]:
    meter = CpuMeter()
    started = time.perf_counter()
    if engine.startswith("local"):
        summary = repair_file(source, out, spec, jobs=2 if engine == "local2" else 1)
    else:
        from repairllm.batch.ray_engine import repair_file_ray

        summary = repair_file_ray(source, out, spec, workers=int(engine[3:]))
    seconds = time.perf_counter() - started
    cpu = meter.seconds()
    data = summary.as_dict()
    return {
        "engine": engine,
        "rows": data["rows"],
        "ok": data["ok"],
        "seconds": round(seconds, 2),
        "rows_per_second": round(data["rows"] / seconds, 1),
        "mb_per_second": round(data["bytes"] / seconds / 1e6, 3),
        "cpu_seconds": round(cpu, 1),
        "rows_per_cpu_second": round(data["rows"] / cpu, 1) if cpu > 0 else None,
        # How many cores the run kept busy on average (2 at most here).
        "cores_used": round(cpu / seconds, 2),
        "duplicates_dropped": data["duplicates_dropped"],
    }


def main(argv: list[str] | None = None) -> int:
    cli = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    cli.add_argument("--rows", type=int, default=100_000)
    cli.add_argument("--per-operator", type=int, default=40, help="distinct documents per operator")
    cli.add_argument("--seed", type=int, default=0)
    cli.add_argument("--engines", default=",".join(ENGINES), help=f"of {', '.join(ENGINES)}")
    cli.add_argument("--out", type=Path, default=ROOT / "benchmarks/results/batch_throughput.json")
    args = cli.parse_args(argv)
    engines = [e for e in args.engines.split(",") if e]
    unknown = set(engines) - set(ENGINES)
    if unknown:
        cli.error(f"unknown engines: {', '.join(sorted(unknown))}")
    load_at_start = [round(x, 2) for x in os.getloadavg()]
    work = Path(tempfile.mkdtemp(prefix="batch-bench-"))
    source = work / "replies.jsonl"
    clock = time.perf_counter()
    corpus = build_rows(args.rows, args.per_operator, args.seed, source)
    print(
        f"built {args.rows:,} rows from {corpus['documents']:,} documents "
        f"in {time.perf_counter() - clock:.0f} s",
        file=sys.stderr,
    )
    spec = RepairSpec(
        field="reply", id_field="id", schema_field="schema", schemas=corpus["schemas"]
    )
    results: list[dict[str, Any]] = []
    ray_start = None
    outputs: dict[str, Path] = {}
    for engine in engines:
        if engine.startswith("ray") and ray_start is None:
            import ray

            clock = time.perf_counter()
            ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
            ray.data.DataContext.get_current().enable_progress_bars = False
            ray_start = round(time.perf_counter() - clock, 2)
        out = work / f"{engine}.parquet"
        result = _run(engine, source, out, spec)
        outputs[engine] = out
        results.append(result)
        result["load_average"] = [round(x, 2) for x in os.getloadavg()]
        print(json.dumps(result), file=sys.stderr)
    import pyarrow.parquet as pq

    tables = {engine: pq.read_table(path) for engine, path in outputs.items()}
    first = next(iter(tables.values()))
    identical = all(t.equals(first) for t in tables.values())
    by = {r["engine"]: r for r in results}
    ratios: dict[str, float | None] = {}
    if "ray1" in by and "ray2" in by:
        ratios["ray_2_over_1_workers"] = round(
            by["ray2"]["rows_per_second"] / by["ray1"]["rows_per_second"], 3
        )
    if "local" in by and "ray1" in by:
        ratios["ray1_overhead_over_local"] = round(
            by["local"]["rows_per_second"] / by["ray1"]["rows_per_second"] - 1, 3
        )
        # CPU per row, Ray with one worker over the local engine: the cost of Ray itself
        # (the raylet, the object store, moving batches), whatever else the machine ran.
        ratios["ray1_cpu_overhead_over_local"] = round(
            by["local"]["rows_per_cpu_second"] / by["ray1"]["rows_per_cpu_second"] - 1, 3
        )
    if "ray1" in by and "ray2" in by:
        ratios["ray2_cpu_per_row_over_ray1"] = round(
            by["ray1"]["rows_per_cpu_second"] / by["ray2"]["rows_per_cpu_second"], 3
        )
    if "local" in by and "local2" in by:
        ratios["local_2_over_1_processes"] = round(
            by["local2"]["rows_per_second"] / by["local"]["rows_per_second"], 3
        )
    report = {
        "rows": args.rows,
        "input_bytes": source.stat().st_size,
        "documents": corpus["documents"],
        "schemas": corpus["schema_count"],
        "seed": args.seed,
        "results": results,
        "ratios": ratios,
        "ray_init_seconds": ray_start,
        "outputs_identical": identical,
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            # Other work on the machine takes cores from the runs: say how much.
            "load_average_at_start": load_at_start,
            "load_average_at_end": [round(x, 2) for x in os.getloadavg()],
        },
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(json.dumps({"ratios": ratios, "identical": identical}), file=sys.stderr)
    for path in [*outputs.values(), source]:
        path.unlink(missing_ok=True)
    return 0 if identical else 1


if __name__ == "__main__":
    sys.exit(main())
