"""The ``repairllm`` command line.

Reads stdin or a file, writes JSON to stdout and errors to stderr (exit code 1). The
library itself never prints; this module is where output happens.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO

from .errors import RepairLLMError, SchemaError
from .ledger import Ledger
from .pipeline import run

__all__ = ["main"]


def _load_schema(spec: str | None) -> Any:
    if spec is None:
        return None
    text = spec
    if not spec.lstrip().startswith(("{", "[", "true", "false")):
        path = Path(spec)
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise SchemaError(f"cannot read the schema file {spec!r}: {exc.strerror}") from exc
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise SchemaError(
            f"the schema {spec!r} is not JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})"
        ) from exc


def _read_input(source: str) -> str:
    if source == "-":
        return sys.stdin.read()
    try:
        return Path(source).read_text(encoding="utf-8")
    except OSError as exc:
        raise RepairLLMError(f"cannot read {source!r}: {exc.strerror}") from exc


def _print_ledger(ledger: Ledger, out: TextIO) -> None:
    for fix in ledger:
        print(f"  {fix}  (cost {fix.cost:g})", file=out)
    if not ledger:
        print("  (no changes)", file=out)


def _cmd_repair(args: argparse.Namespace) -> int:
    text = _read_input(args.input)
    outcome = run(text, _load_schema(args.schema), args.policy)
    value = outcome.data
    json.dump(value, sys.stdout, ensure_ascii=False, indent=args.indent)
    sys.stdout.write("\n")
    if args.ledger:
        print("ledger:", file=sys.stderr)
        _print_ledger(outcome.ledger, sys.stderr)
    return 0


def _cmd_demo(args: argparse.Namespace) -> int:
    from .demo import run_demo

    out = sys.stdout
    repaired = 0
    results = run_demo()
    for number, (case, result) in enumerate(results, 1):
        print(f"\n[{number}] {case.title}", file=out)
        print("  reply: " + _one_line(case.reply), file=out)
        if isinstance(result, Exception):
            print(f"  -> {type(result).__name__}: {result}", file=out)
            continue
        repaired += 1
        print("  value: " + json.dumps(result.data, ensure_ascii=False), file=out)
        if result.truncated:
            print("  (completed from a reply that was cut off)", file=out)
        _print_ledger(result.ledger, out)
    print(f"\n{repaired} of {len(results)} replies became valid values.", file=out)
    return 0


def _one_line(text: str, limit: int = 110) -> str:
    flat = text.replace("\n", "\\n")
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="repairllm", description="Reliable structured output from any LLM."
    )
    sub = parser.add_subparsers(dest="command", required=True)

    rep = sub.add_parser("repair", help="repair a model's reply into JSON")
    rep.add_argument("input", nargs="?", default="-", help="a file, or - for stdin (default)")
    rep.add_argument("--schema", help="a JSON Schema file, or the schema itself as JSON")
    rep.add_argument("--policy", default="default", help="strict, default or lenient")
    rep.add_argument("--ledger", action="store_true", help="print the ledger on stderr")
    rep.add_argument("--indent", type=int, default=None, help="indent the JSON output")
    rep.set_defaults(func=_cmd_repair)

    demo = sub.add_parser("demo", help="repair a set of real-looking broken replies")
    demo.set_defaults(func=_cmd_demo)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit code."""
    args = _parser().parse_args(argv)
    try:
        code: int = args.func(args)
    except RepairLLMError as exc:
        print(f"repairllm: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    return code


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
