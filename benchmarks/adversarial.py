"""Adversarial inputs at 125 KB and 1 MB: every stage stays linear, 1 MB under a second.

Times every shape of :mod:`repairllm.bench.adversarial` (reasoning blocks, tag pairs,
fences, brackets for the lexical tiers and json-repair, quotes and backslashes, the
incremental parser's snapshots, the openai driver's error-body reading) at two sizes,
each in a child process with a time limit, so one that is still quadratic is reported
as over the limit instead of hanging the run. Times are CPU seconds (the best of a few
runs), so other work on the machine moves them little; the time of a reference loop,
printed and stored with them, says how fast the machine was.

Run: ``python benchmarks/adversarial.py [--sizes 125000,1000000] [--timeout 60]
[--only NAME,...] [--out FILE] [--before FILE]``. Writes
``benchmarks/results/adversarial.json`` (``--before``: an earlier one, whose times are
printed alongside) and exits 1 when a shape takes 1 s or more at the largest size, or
grows more than 1.5 times the ratio of the sizes (12 times for the default eight).
The sizes are a power of two apart because some stages redo work at doubling sizes
(the stream's fallback repairs the buffer each time it has doubled): sizes at the same
place between two powers of two cost the same number of passes. A shape that takes
under 20 ms at the largest size passes whatever its growth: a ratio of fractions of a
millisecond is the timer's, and such a shape is fifty times under the time target.
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from repairllm.bench.adversarial import SHAPES

ROOT = Path(__file__).resolve().parent.parent
#: The targets: seconds at the largest size, and growth between the two sizes as a
#: multiple of their ratio ...
MAX_SECONDS = 1.0
GROWTH_MARGIN = 1.5
#: ... judged only where the largest size takes at least this long.
NEGLIGIBLE_S = 0.02

_CHILD = """
import sys
from repairllm.bench.adversarial import SHAPES, best_time, run_shape
shape = {s.name: s for s in SHAPES}[sys.argv[1]]
text = shape.build(int(sys.argv[2]))
runs = int(sys.argv[3])
print(best_time(lambda: run_shape(shape, text), runs))
"""


def measure(name: str, size: int, runs: int, timeout: float) -> float | None:
    """CPU seconds of shape ``name`` at ``size`` (best of ``runs``), or None past ``timeout``."""
    try:
        done = subprocess.run(
            [sys.executable, "-c", _CHILD, name, str(size), str(runs)],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=True,
        )
    except subprocess.TimeoutExpired:
        return None
    except subprocess.CalledProcessError as exc:
        raise SystemExit(f"{name} at {size:,}: the child failed:\n{exc.stderr}") from exc
    return float(done.stdout.strip().splitlines()[-1])


def reference_loop() -> float:
    """CPU seconds of ten million additions in a Python loop: the machine's speed."""
    start = time.thread_time()
    total = 0
    for i in range(10_000_000):
        total += i
    return time.thread_time() - start


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--sizes", default="125000,1000000", help="two sizes in characters")
    ap.add_argument("--timeout", type=float, default=60.0, help="seconds per measurement")
    ap.add_argument("--only", default="", help="comma-separated shape names")
    ap.add_argument(
        "--out", type=Path, default=ROOT / "benchmarks" / "results" / "adversarial.json"
    )
    ap.add_argument("--before", type=Path, help="an earlier report, printed alongside")
    args = ap.parse_args()
    small, large = (int(s) for s in args.sizes.split(","))
    max_growth = GROWTH_MARGIN * large / small
    wanted = {n for n in args.only.split(",") if n}
    shapes = [s for s in SHAPES if not wanted or s.name in wanted]

    before: dict[str, Any] = {}
    if args.before is not None:
        before = {r["shape"]: r for r in json.loads(args.before.read_text())["shapes"]}

    def cell(t: float | None) -> str:
        return f"{t:11.4f}" if t is not None else f"{'>' + format(args.timeout, 'g'):>11}"

    reference = reference_loop()
    print(f"reference loop (10M additions): {reference:.2f} s CPU")
    head = f"{'shape':<24} {'kind':<7} {small:>11,} {large:>11,}  {'growth':>7}  ok "
    if before:
        head += f"  {'before ' + format(small, ','):>15} {'before ' + format(large, ','):>15}"
    print(head)
    print("-" * len(head))
    rows: list[dict[str, Any]] = []
    failed = []
    for shape in shapes:
        t_small = measure(shape.name, small, 3, args.timeout)
        t_large = measure(shape.name, large, 2, args.timeout) if t_small is not None else None
        growth = None
        if t_small is not None and t_large is not None:
            growth = t_large / max(t_small, 1e-6)
        ok = t_large is not None and t_large < MAX_SECONDS
        judged = t_large is not None and t_large >= NEGLIGIBLE_S
        ok = ok and growth is not None and (growth <= max_growth or not judged)
        if not ok:
            failed.append(shape.name)
        grown = f"{growth:7.1f}" if growth is not None else f"{'-':>7}"
        line = f"{shape.name:<24} {shape.kind:<7} {cell(t_small)} {cell(t_large)}  {grown}  "
        line += "yes" if ok else "NO "
        if shape.name in before:
            then = before[shape.name]["seconds"]
            # A size the earlier run did not measure shows as "-", not as a timeout.
            shown = [cell(then[str(n)]) if str(n) in then else "-" for n in (small, large)]
            line += f"  {shown[0]:>15} {shown[1]:>15}"
        print(line)
        rows.append(
            {
                "shape": shape.name,
                "kind": shape.kind,
                "note": shape.note,
                "seconds": {str(small): t_small, str(large): t_large},
                "growth": growth,
                "ok": ok,
            }
        )
    report = {
        "config": {
            "sizes": [small, large],
            "timeout_s": args.timeout,
            "clock": (
                "CPU seconds of the timing thread (thread_time, collector paused), "
                "best of 3 at the small size, of 2 at the large, each after a warm-up call"
            ),
            "targets": {
                "max_seconds_at_large": MAX_SECONDS,
                "max_growth": max_growth,
                "growth_judged_from_s": NEGLIGIBLE_S,
            },
            "reference_loop_s": reference,
            "python": platform.python_version(),
            "machine": platform.machine(),
        },
        "shapes": rows,
        "failed": failed,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {args.out}")
    if failed:
        limits = f"{MAX_SECONDS:g} s at {large:,} or growing more than {max_growth:g}x"
        print(f"over {limits}: {', '.join(failed)}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
