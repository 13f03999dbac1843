"""Throughput and recovery of JSON parsers/repairers: now ``repairllm bench parser``.

This script was folded into the parser fuzz benchmark (:mod:`repairllm.bench.parser`),
which measures the same things (MB/s on clean and damaged JSON, exact / silently
wrong / error per operator, the speed ratios the project targets) on schema-generated
documents, against more tools. It stays as a thin wrapper for the old command line::

    python benchmarks/throughput.py [--docs N] [--seed S] [--out DIR] [--quick] ...

It runs the speed-focused tools (orjson, json, json_repair, repairllm without and with
a schema) and writes ``report.json``, ``report.md`` and ``plot.png`` to
``benchmarks/results/parser/`` by default. ``benchmarks/results/throughput.json`` is
the last run of the old script, kept for comparison.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from repairllm.bench.parser import add_arguments, main

ROOT = Path(__file__).resolve().parent.parent

if __name__ == "__main__":
    cli = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    add_arguments(cli)
    cli.set_defaults(
        tools="orjson,json,json_repair,repairllm:plain,repairllm",
        out=ROOT / "benchmarks" / "results" / "parser",
    )
    sys.exit(main(cli.parse_args()))
