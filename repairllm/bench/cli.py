"""The ``repairllm bench`` command (a plug-in of the ``repairllm.commands`` group).

``bench parser`` (the parser fuzz), ``bench model`` (the per-model fuzz: a report card
per model, its tasks fanned out over the model's servers, and a comparison when there
are several) and ``bench compare`` (cards side by side): arguments, terminal output and
files.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from ..batch.generate import Endpoint
from ..cli import set_fields
from ..errors import BackendUnreachable, ConfigError
from .model import Task, TaskResult, make_tasks, run_model_bench_on
from .parser import add_arguments as add_parser_arguments
from .parser import main as parser_main
from .report import (
    RATES,
    card_name,
    card_stem,
    compare_markdown,
    load_card,
    write_card,
    write_compare,
)
from .targets import FORM, Target, endpoints_for, parse_target

__all__ = ["bench_compare", "bench_model", "command", "targets_from_args"]


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
    model.add_argument(
        "--backend", help="driver name: openai, llamacpp, ollama, hf ... (default: hf)"
    )
    model.add_argument("--model", help="model name, tag or path")
    model.add_argument(
        "--base-url",
        action="append",
        help="a server address (repeat for several servers of the same model)",
    )
    model.add_argument(
        "--target",
        action="append",
        metavar="SPEC",
        help=f"a model to measure, {FORM} (repeat: one card each, and a comparison)",
    )
    model.add_argument(
        "--concurrency",
        action="append",
        type=int,
        help="tasks in flight per server (default 1): one value for all, or one per --base-url",
    )
    model.add_argument("--config", help="a YAML backend config file (for every server)")
    model.add_argument(
        "--set", action="append", metavar="KEY=VALUE", help="a driver field (repeatable)"
    )
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


def targets_from_args(args: argparse.Namespace) -> list[Target]:
    """The targets of ``--target``, or the one of ``--backend/--model/--base-url``.

    Raises:
        ConfigError: when both forms are given, or a target is written wrong.
    """
    if not args.target:
        return [Target(args.backend, args.model, tuple(args.base_url or ()))]
    mixed = [
        flag
        for flag, given in (
            ("--backend", args.backend),
            ("--model", args.model),
            ("--base-url", args.base_url),
        )
        if given
    ]
    if mixed:
        raise ConfigError(
            f"--target names the backend, model and servers; drop {' and '.join(mixed)} "
            "or the --target"
        )
    if args.concurrency and len(args.concurrency) > 1:
        raise ConfigError("with --target, give one --concurrency: it is for every server")
    targets = [parse_target(text) for text in args.target]
    labels = [t.label for t in targets if t.label]
    if len(set(labels)) != len(labels):
        raise ConfigError(
            f"two targets have the same NAME ({', '.join(labels)}); each names a card"
        )
    return targets


def _unique(stem: str, taken: set[str]) -> str:
    """``stem``, or ``stem-2``, ``stem-3`` ... when another card of the run has it."""
    found, n = stem, 1
    while found in taken:
        n += 1
        found = f"{stem}-{n}"
    taken.add(found)
    return found


def bench_model(args: argparse.Namespace) -> int:
    """Run the per-model fuzz and write a report card per model (and a comparison)."""
    try:
        from rich.console import Console
    except ImportError as exc:
        raise ConfigError("bench needs rich: pip install 'repairllm[bench]'") from exc
    console = Console(stderr=True)
    targets = targets_from_args(args)
    fields = set_fields(args)
    tasks = make_tasks(args.tasks, args.seed)
    out = Path(args.out)
    cards: list[dict[str, Any]] = []
    stems: set[str] = set()
    stopped: list[str] = []
    for target in targets:
        with console.status("loading the model ..."):
            endpoints = endpoints_for(
                target, config=args.config, fields=fields, concurrency=args.concurrency or [1]
            )
        try:
            card = _run_target(console, target, endpoints, tasks, args)
        finally:
            for endpoint in endpoints:
                endpoint.backend.close()
        card["config"]["backend_defaults"] = dict(
            getattr(endpoints[0].backend, "defaults", {}) or {}
        )
        written = write_card(card, out, _unique(card_stem(card), stems))
        _print_card(console, card, written)
        cards.append(card)
        if card.get("error"):
            stopped.append(f"{target.describe()}: {card['error']}")
    if len(targets) > 1 or len(targets[0].urls) > 1:
        # A run over several servers or models ends in the comparison of its cards.
        for kind, where in write_compare(cards, out).items():
            console.print(f"compare {kind}: {where}")
    if stopped:
        raise BackendUnreachable(
            "; ".join(stopped) + f" (the cards in {out} hold the tasks that finished)"
        )
    return 0


def _run_target(
    console: Any,
    target: Target,
    endpoints: list[Endpoint],
    tasks: list[Task],
    args: argparse.Namespace,
) -> dict[str, Any]:
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    several = len(endpoints) > 1
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TimeElapsedColumn(),
        console=console,
    ) as progress:
        bar = progress.add_task(target.label or endpoints[0].backend.model, total=len(tasks))

        def done(result: TaskResult) -> None:
            mark = "valid" if result.final_valid else "invalid"
            where = f" on {result.server}" if several else ""
            line = (
                f"{result.id}{where}: {mark} after {result.attempts} attempt(s), "
                f"{result.completion_tokens} tokens, {result.seconds:.1f} s"
            )
            progress.update(bar, advance=1, description=line)
            if not console.is_terminal:
                # No live bar in a log file: one line per task instead.
                console.print(line)

        return run_model_bench_on(
            endpoints,
            tasks=tasks,
            seed=args.seed,
            retries=args.retries,
            prompt_form=args.prompt_form,
            native=False if args.no_native else None,
            max_tokens=args.max_tokens,
            on_result=done,
            label=target.label,
        )


def _print_card(console: Any, card: dict[str, Any], written: dict[str, Path | str]) -> None:
    from rich.console import Console
    from rich.table import Table

    summary = card["summary"]
    name = card_name(card)
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
    servers = card.get("servers") or {}
    if len(servers) > 1 or card.get("moved"):
        each = ", ".join(f"{where}: {n}" for where, n in servers.items())
        console.print(f"tasks per server: {each}; moved from a failing server: {card['moved']}")
    if card.get("error"):
        console.print(f"stopped early: {card['error']}")
    elif card["interrupted"]:
        console.print("interrupted: the card holds the tasks that finished")
    for kind, where in written.items():
        console.print(f"{kind}: {where}")


def bench_compare(args: argparse.Namespace) -> int:
    """Put report cards side by side."""
    cards = [load_card(Path(p)) for p in args.cards]
    sys.stdout.write(compare_markdown(cards))
    written = write_compare(cards, Path(args.out))
    for kind, where in written.items():
        print(f"{kind}: {where}", file=sys.stderr)
    return 0
