"""The ``repairllm bench`` command (a plug-in of the ``repairllm.commands`` group).

``bench parser`` (the parser fuzz), ``bench model`` (the per-model fuzz: a report card)
and ``bench compare`` (cards side by side): arguments, terminal output and files.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from ..cli import backend_arguments, connect_from_args
from ..errors import ConfigError
from .model import TaskResult, make_tasks, run_model_bench
from .parser import add_arguments as add_parser_arguments
from .parser import main as parser_main
from .report import RATES, compare_markdown, load_card, write_card, write_compare

__all__ = ["bench_compare", "bench_model", "command"]


def command(parser: argparse.ArgumentParser) -> None:
    """benchmarks: parser fuzz, per-model fuzz, compare"""
    sub = parser.add_subparsers(dest="bench_command", required=True)
    fuzz = sub.add_parser("parser", help="parser fuzz against other repair tools")
    add_parser_arguments(fuzz)
    fuzz.set_defaults(func=parser_main)

    model = sub.add_parser(
        "model",
        help="per-model fuzz: a report card (default: SmolLM2-135M-Instruct in-process)",
    )
    backend_arguments(model, default_backend=None)
    model.add_argument("-n", "--tasks", type=int, default=10, help="number of tasks (default 10)")
    model.add_argument("--seed", type=int, default=0)
    model.add_argument("--retries", type=int, default=2)
    model.add_argument("--prompt-form", default="skeleton", help="skeleton, keys, schema or none")
    model.add_argument("--no-native", action="store_true", help="don't use the server's JSON mode")
    model.add_argument("--max-tokens", type=int, default=256)
    model.add_argument("--out", default="bench-results", help="folder for the report card")
    model.set_defaults(func=bench_model)

    compare = sub.add_parser("compare", help="put report cards side by side")
    compare.add_argument("cards", nargs="+", help="report card JSON files")
    compare.add_argument("--out", default="bench-results", help="folder for compare.md/.png")
    compare.set_defaults(func=bench_compare)


def _backend(args: argparse.Namespace) -> Any:
    # The embedded default: SmolLM2-135M-Instruct, in-process through transformers.
    # (llama.cpp's repetition penalty of 1.1 was tried here: it breaks the JSON
    # punctuation a schema answer must repeat: of the first two tasks, one was valid
    # without it and none with it.)
    return connect_from_args(args, default="hf")


def bench_model(args: argparse.Namespace) -> int:
    """Run the per-model fuzz and write the report card."""
    try:
        from rich.console import Console
        from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
        from rich.table import Table
    except ImportError as exc:
        raise ConfigError("bench needs rich: pip install 'repairllm[bench]'") from exc
    console = Console(stderr=True)
    tasks = make_tasks(args.tasks, args.seed)
    with console.status("loading the model ..."):
        backend = _backend(args)
    with (
        backend,
        Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            TextColumn("{task.completed}/{task.total}"),
            TimeElapsedColumn(),
            console=console,
        ) as progress,
    ):
        bar = progress.add_task(f"{backend.model}", total=len(tasks))

        def done(result: TaskResult) -> None:
            mark = "valid" if result.final_valid else "invalid"
            line = (
                f"{result.id}: {mark} after {result.attempts} attempt(s), "
                f"{result.completion_tokens} tokens, {result.seconds:.1f} s"
            )
            progress.update(bar, advance=1, description=line)
            if not console.is_terminal:
                # No live bar in a log file: one line per task instead.
                console.print(line)

        card = run_model_bench(
            backend,
            tasks=tasks,
            seed=args.seed,
            retries=args.retries,
            prompt_form=args.prompt_form,
            native=False if args.no_native else None,
            max_tokens=args.max_tokens,
            on_result=done,
        )
    card["config"]["backend_defaults"] = dict(getattr(backend, "defaults", {}) or {})
    written = write_card(card, Path(args.out))
    summary = card["summary"]
    name = Path(card["model"]).name
    table = Table(title=f"{name} ({card['backend']}): {summary.get('tasks', 0)} tasks")
    table.add_column("measure")
    table.add_column("value", justify="right")
    for key, label in RATES:
        value = summary.get(key)
        table.add_row(label, f"{100 * value:.1f}%" if value is not None else "n/a")
    for key, label in (
        ("tokens_per_valid", "tokens per valid"),
        ("seconds_per_valid", "s per valid"),
    ):
        value = summary.get(key)
        table.add_row(label, f"{value:.1f}" if value is not None else "n/a")
    Console().print(table)
    if card["interrupted"]:
        console.print("interrupted: the card holds the tasks that finished")
    for kind, where in written.items():
        console.print(f"{kind}: {where}")
    return 0


def bench_compare(args: argparse.Namespace) -> int:
    """Put report cards side by side."""
    cards = [load_card(Path(p)) for p in args.cards]
    sys.stdout.write(compare_markdown(cards))
    written = write_compare(cards, Path(args.out))
    for kind, where in written.items():
        print(f"{kind}: {where}", file=sys.stderr)
    return 0
