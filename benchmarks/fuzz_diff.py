"""Compare two parser fuzz reports (``report.json``) outcome for outcome.

Speed (``mb_per_s``, speed ratios) and the run's circumstances (date, duration,
platform, Python) differ between any two runs and are left out; everything else --
every rate of every tool per operator, serialization and group, the counts, the
silently-wrong examples, the unexpected exceptions, coverage -- must be equal.

    python benchmarks/fuzz_diff.py before/report.json after/report.json

Exit code 0 when the two agree, 1 with the differences listed when they do not.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

#: Keys that measure speed or describe the run, not what the tools returned.
IGNORED = frozenset({"mb_per_s", "seconds", "date", "platform", "python", "plot", "folder"})


def _ignored(key: str) -> bool:
    return key in IGNORED or "mb_per_s" in key or key.endswith("_target")


def differences(a: Any, b: Any, path: str = "") -> list[str]:
    """Every place where ``a`` and ``b`` differ, ignored keys aside, as ``path: a != b``."""
    if isinstance(a, dict) and isinstance(b, dict):
        out: list[str] = []
        for key in sorted(set(a) | set(b), key=str):
            if _ignored(str(key)):
                continue
            if key not in a or key not in b:
                out.append(f"{path}/{key}: only in {'after' if key not in a else 'before'}")
                continue
            out.extend(differences(a[key], b[key], f"{path}/{key}"))
        return out
    if isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            return [f"{path}: {len(a)} items before, {len(b)} after"]
        out = []
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            out.extend(differences(x, y, f"{path}/{i}"))
        return out
    return [] if a == b else [f"{path}: {a!r} before, {b!r} after"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("before", type=Path)
    parser.add_argument("after", type=Path)
    args = parser.parse_args(argv)
    before = json.loads(args.before.read_text(encoding="utf-8"))
    after = json.loads(args.after.read_text(encoding="utf-8"))
    found = differences(before, after)
    for line in found[:200]:
        print(line)
    if len(found) > 200:
        print(f"... and {len(found) - 200} more")
    tools = sorted(before.get("tools", {}))
    print(f"{len(found)} differences over {len(tools)} tools ({', '.join(tools)})")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
