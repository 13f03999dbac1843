"""The ``repairllm batch`` command (a plug-in of the ``repairllm.commands`` group).

``batch repair`` repairs stored replies, locally or on Ray; ``batch generate`` asks
backends for structured values, prompt by prompt. Both print a summary on stderr and
write it as JSON beside the output.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ..cli import set_fields
from ..errors import ConfigError, SchemaError
from .files import FORMATS, detect_format, input_size
from .local import BatchInterrupted, repair_file
from .records import RepairSpec
from .summary import Summary

__all__ = ["command"]


def command(parser: argparse.ArgumentParser) -> None:
    """repair stored replies or generate values in bulk (local or on Ray)"""
    sub = parser.add_subparsers(dest="batch_command", required=True)
    rep = sub.add_parser(
        "repair",
        help="repair a JSONL/CSV/Parquet file of replies into JSONL/Parquet rows",
        description=(
            "Repair every reply of a file: one output row per input row, in input order, "
            "with its value, error kind, issues, ledger, cost and rules."
        ),
    )
    rep.add_argument("input", help="a .jsonl, .csv or .parquet file")
    rep.add_argument("-o", "--output", required=True, help="a .jsonl or .parquet file")
    spec_arguments(rep)
    rep.add_argument(
        "--engine", choices=("local", "ray"), default="local", help="where to run (default local)"
    )
    rep.add_argument("--jobs", type=int, default=1, help="local: processes (default 1)")
    rep.add_argument("--chunk-rows", type=int, default=4096, help="local: rows per chunk")
    rep.add_argument("--resume", action="store_true", help="local: carry on an interrupted run")
    rep.add_argument("--overwrite", action="store_true", help="local: start again regardless")
    rep.add_argument("--address", help="ray: the cluster's address (default: a local Ray)")
    rep.add_argument("--workers", type=int, help="ray: repair actors (default: what fits)")
    rep.add_argument("--worker-cpus", type=float, help="ray: CPUs per actor (default 1)")
    rep.add_argument("--batch-rows", type=int, default=1024, help="ray: rows per batch")
    rep.set_defaults(func=_cmd_repair)

    gen = sub.add_parser(
        "generate",
        help="ask backends for structured values, one per prompt (asyncio)",
        description=(
            "Send every prompt of a file to one or several backends, with a concurrency "
            "limit each; one output row per prompt, in input order, with the value, "
            "attempts and usage."
        ),
    )
    add_generate_arguments(gen)


def spec_arguments(parser: argparse.ArgumentParser, field: str = "text") -> None:
    """The arguments that say what to read and how to repair it."""
    parser.add_argument("--field", default=field, help=f"the text's column (default {field})")
    parser.add_argument("--id", dest="id_field", help="a column copied into the output's id")
    parser.add_argument("--schema", help="a JSON Schema file (or the schema as JSON) for all rows")
    parser.add_argument("--schema-field", help="a column naming each row's schema")
    parser.add_argument(
        "--schemas",
        action="append",
        metavar="PATH",
        help="a folder of NAME.json schemas, or one schema file (repeatable)",
    )
    parser.add_argument("--policy", default="default", help="strict, default or lenient")
    parser.add_argument("--input-format", choices=FORMATS, help="when the suffix does not say")
    parser.add_argument("--output-format", choices=("jsonl", "parquet"))
    parser.add_argument("--summary", help="where to write the summary JSON (default: beside)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar or table")


def load_schema(spec: str) -> Any:
    """A schema from a file path, or given inline as JSON text."""
    text = spec
    if not spec.lstrip().startswith(("{", "true", "false")):
        try:
            text = Path(spec).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise SchemaError(f"cannot read the schema file {spec!r}: {exc}") from exc
    try:
        return json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise SchemaError(f"the schema {spec[:60]!r} is not JSON: {exc}") from exc


def load_schemas(paths: list[str] | None) -> dict[str, Any]:
    """Schemas by name (the file's stem) from folders of ``*.json`` and single files."""
    found: dict[str, Any] = {}
    for item in paths or ():
        path = Path(item)
        files = sorted(path.glob("*.json")) if path.is_dir() else [path]
        if path.is_dir() and not files:
            raise SchemaError(f"the folder {item!r} holds no *.json schema")
        for file in files:
            found[file.stem] = load_schema(str(file))
    return found


def spec_from_args(args: argparse.Namespace) -> RepairSpec:
    """The :class:`RepairSpec` that the common arguments describe."""
    if args.schema_field and not args.schemas:
        raise ConfigError("--schema-field names schemas: give them with --schemas DIR")
    return RepairSpec(
        field=args.field,
        id_field=args.id_field,
        schema=load_schema(args.schema) if args.schema else None,
        schema_field=args.schema_field,
        schemas=load_schemas(args.schemas),
        policy=args.policy,
    )


def summary_path(output: str, given: str | None) -> Path:
    if given:
        return Path(given)
    target = Path(output)
    return target.with_name(target.name + ".summary.json")


@contextmanager
def progress_bar(quiet: bool, total: int | None, unit: str) -> Iterator[Callable[[int, int], None]]:
    """A rich progress bar on stderr, fed ``(rows, progress)``; nothing without rich."""
    try:
        if quiet:
            raise ImportError
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )
    except ImportError:
        yield lambda rows, progress: None
        return
    console = Console(stderr=True)
    columns: list[Any] = [TextColumn("{task.description}"), BarColumn()]
    if unit == "rows":
        columns.append(MofNCompleteColumn())
    else:
        columns.append(TextColumn("{task.percentage:>3.0f}%"))
    columns += [TimeElapsedColumn(), TimeRemainingColumn()]
    with Progress(*columns, console=console, transient=False) as bar:
        task = bar.add_task("0 rows", total=total)

        def update(rows: int, progress: int) -> None:
            bar.update(task, completed=progress, description=f"{rows:,} rows")

        yield update
        if total is not None:
            bar.update(task, completed=total)  # the last blank line is no row, but read


def print_summary(summary: dict[str, Any], quiet: bool) -> None:
    """The summary as a table on stderr (rich), or as lines."""
    if quiet:
        return
    lines = [
        ("rows", f"{summary['rows']:,}"),
        ("ok", f"{summary['ok']:,} ({100 * (summary['ok_rate'] or 0):.2f}%)"),
        ("failed", f"{summary['failed']:,}"),
        ("truncated", f"{summary['truncated']:,}"),
        ("rows/s", f"{summary['rows_per_second'] or 0:,.0f}"),
        ("MB/s", f"{summary['mb_per_second'] or 0:.2f}"),
    ]
    errors = list(summary["by_error"].items())
    rules = list(summary["by_rule"].items())[:12]
    try:
        from rich.console import Console
        from rich.table import Table
    except ImportError:
        for key, value in lines:
            print(f"{key:>10}: {value}", file=sys.stderr)
        for kind, n in errors:
            print(f"  error {kind}: {n:,}", file=sys.stderr)
        for rule, n in rules:
            print(f"  rule {rule}: {n:,} rows", file=sys.stderr)
        return
    console = Console(stderr=True)
    table = Table(title="repairllm batch", show_header=False)
    table.add_column("measure")
    table.add_column("value", justify="right")
    for key, value in lines:
        table.add_row(key, value)
    for kind, n in errors:
        table.add_row(f"error: {kind}", f"{n:,}")
    for rule, n in rules:
        table.add_row(f"rule: {rule}", f"{n:,} rows")
    console.print(table)


def write_summary(path: Path, summary: dict[str, Any]) -> None:
    path.write_text(json.dumps(summary, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def _cmd_repair(args: argparse.Namespace) -> int:
    spec = spec_from_args(args)
    fmt_in = detect_format(args.input, args.input_format)
    extra = {"input": args.input, "output": args.output, "engine": args.engine}
    if args.engine == "ray":
        if args.resume or args.jobs != 1:
            raise ConfigError("--resume and --jobs are the local engine's; Ray retries by itself")
        import logging

        from .ray_engine import repair_file_ray

        # Ray Data logs each dataset's plan and progress at INFO: the bar says enough.
        for name in ("ray", "ray.data"):
            logging.getLogger(name).setLevel(logging.WARNING)

        with progress_bar(args.quiet, None, "rows") as update:
            summary: Summary = repair_file_ray(
                args.input,
                args.output,
                spec,
                input_format=args.input_format,
                output_format=args.output_format,
                address=args.address,
                workers=args.workers,
                worker_cpus=args.worker_cpus,
                batch_rows=args.batch_rows,
                on_progress=update,
            )
    else:
        total = input_size(args.input, fmt_in)
        unit = "rows" if fmt_in == "parquet" else "bytes"
        try:
            with progress_bar(args.quiet, total, unit) as update:
                summary = repair_file(
                    args.input,
                    args.output,
                    spec,
                    input_format=args.input_format,
                    output_format=args.output_format,
                    chunk_rows=args.chunk_rows,
                    jobs=args.jobs,
                    resume=args.resume,
                    overwrite=args.overwrite,
                    on_progress=update,
                )
        except BatchInterrupted as stop:
            data = stop.summary.as_dict(**extra, complete=False)
            write_summary(summary_path(args.output, args.summary), data)
            print(
                f"repairllm: interrupted: {args.output} holds the first {stop.rows:,} rows "
                "(a valid file); run the same command with --resume to carry on",
                file=sys.stderr,
            )
            return 130
    data = summary.as_dict(**extra, complete=True)
    write_summary(summary_path(args.output, args.summary), data)
    print_summary(data, args.quiet)
    return 0


# --------------------------------------------------------------------------- #
# The command
# --------------------------------------------------------------------------- #


def add_generate_arguments(parser: argparse.ArgumentParser) -> None:
    """``batch generate``'s arguments."""
    parser.add_argument("input", help="a .jsonl, .csv or .parquet file of prompts")
    parser.add_argument("-o", "--output", required=True, help="a .jsonl or .parquet file")
    spec_arguments(parser, field="prompt")
    parser.add_argument("--backend", default="openai", help="driver: openai, llamacpp, ollama ...")
    parser.add_argument("--model", help="model name, tag or path")
    parser.add_argument(
        "--base-url",
        action="append",
        help="a server address (repeat for several servers of the same model)",
    )
    parser.add_argument(
        "--concurrency",
        action="append",
        type=int,
        help="requests in flight per server: one value for all, or one per --base-url",
    )
    parser.add_argument("--config", help="a YAML backend config file")
    parser.add_argument(
        "--set", action="append", metavar="KEY=VALUE", help="a driver field (repeatable)"
    )
    parser.add_argument("--retries", type=int, default=2, help="format retries (default 2)")
    parser.add_argument("--tries", type=int, default=3, help="servers a prompt may be tried on")
    parser.add_argument("--max-tokens", type=int, default=512)
    parser.add_argument("--temperature", type=float, default=0.0)
    parser.add_argument("--no-native", action="store_true", help="don't use the server's JSON mode")
    parser.add_argument(
        "--engine",
        choices=("local", "ray"),
        default="local",
        help="local: asyncio here; ray: one Ray actor per server",
    )
    parser.add_argument("--address", help="ray: the cluster's address (default: a local Ray)")
    parser.add_argument("--chunk-rows", type=int, default=64, help="rows per write")
    parser.add_argument("--resume", action="store_true", help="carry on an interrupted run")
    parser.add_argument("--overwrite", action="store_true", help="start again regardless")
    parser.set_defaults(func=_cmd_generate)


def endpoints_from_args(args: argparse.Namespace) -> list[Any]:
    """One endpoint per ``--base-url`` (or one for the driver's default)."""
    from ..registry import connect
    from .generate import Endpoint

    urls: list[str | None] = list(args.base_url or [None])
    limits = list(args.concurrency or [4])
    if len(limits) == 1:
        limits = limits * len(urls)
    if len(limits) != len(urls):
        raise ConfigError(
            f"{len(limits)} --concurrency values for {len(urls)} --base-url values; "
            "give one for all or one per server"
        )
    fields = set_fields(args)
    endpoints = []
    for url, limit in zip(urls, limits, strict=True):
        extra = dict(fields)
        if url is not None:
            extra["base_url"] = url
        backend = connect(args.backend, model=args.model, config=args.config, **extra)
        endpoints.append(Endpoint(backend, limit))
    return endpoints


def _cmd_generate(args: argparse.Namespace) -> int:
    from .generate import GenerateSpec, generate_file

    fmt_in = detect_format(args.input, args.input_format)
    repair = spec_from_args(args)
    options: dict[str, Any] = {"max_tokens": args.max_tokens, "temperature": args.temperature}
    spec = GenerateSpec(
        field=args.field,
        id_field=args.id_field,
        schema=repair.schema,
        schema_field=repair.schema_field,
        schemas=repair.schemas,
        policy=args.policy,
        retries=args.retries,
        tries=args.tries,
        options=options,
        native=False if args.no_native else None,
    )
    if args.engine == "ray":
        return _generate_on_ray(args, spec)
    endpoints = endpoints_from_args(args)
    extra = {
        "input": args.input,
        "output": args.output,
        "engine": "asyncio",
        "backends": [e.name for e in endpoints],
    }
    try:
        with progress_bar(args.quiet, input_size(args.input, fmt_in), "bytes") as update:
            summary = generate_file(
                args.input,
                args.output,
                spec,
                endpoints,
                input_format=args.input_format,
                output_format=args.output_format,
                chunk_rows=args.chunk_rows,
                resume=args.resume,
                overwrite=args.overwrite,
                on_progress=update,
            )
    except BatchInterrupted as stop:
        data = stop.summary.as_dict(**extra, complete=False)
        write_summary(summary_path(args.output, args.summary), data)
        print(
            f"repairllm: interrupted: {args.output} holds the first {stop.rows:,} rows "
            "(a valid file); run the same command with --resume to carry on",
            file=sys.stderr,
        )
        return 130
    finally:
        for endpoint in endpoints:
            endpoint.backend.close()
    data = summary.as_dict(**extra, complete=True)
    data["served"] = {e.name: e.served for e in endpoints}
    write_summary(summary_path(args.output, args.summary), data)
    print_summary(data, args.quiet)
    return 0


def make_endpoint(
    backend: str, model: str | None, config: str | None, fields: dict[str, Any], limit: int
) -> Any:
    """An :class:`~repairllm.batch.generate.Endpoint` (what a Ray actor builds for itself)."""
    from ..registry import connect
    from .generate import Endpoint

    built = connect(backend, model=model, config=config, **fields)
    return Endpoint(built, limit, name=str(fields.get("base_url") or built.name))


def _generate_on_ray(args: argparse.Namespace, spec: Any) -> int:
    import functools
    import logging

    import ray

    from .generate import GENERATE_LAYOUT
    from .ray_engine import generate_dataset, read_dataset, write_ordered

    if args.resume:
        raise ConfigError("--resume is the local engine's; Ray retries by itself")
    for name in ("ray", "ray.data"):
        logging.getLogger(name).setLevel(logging.WARNING)
    urls: list[str | None] = list(args.base_url or [None])
    limits = list(args.concurrency or [4])
    limits = limits * len(urls) if len(limits) == 1 else limits
    if len(limits) != len(urls):
        raise ConfigError("give one --concurrency for all servers, or one per --base-url")
    fields = set_fields(args)
    factories = [
        functools.partial(
            make_endpoint,
            args.backend,
            args.model,
            args.config,
            {**fields, **({"base_url": url} if url else {})},
            limit,
        )
        for url, limit in zip(urls, limits, strict=True)
    ]
    started = not ray.is_initialized()
    if started:
        ray.init(
            address=args.address,
            include_dashboard=False,
            log_to_driver=False,
            logging_level=logging.WARNING,
        )
    try:
        ray.data.DataContext.get_current().execution_options.preserve_order = True
        columns = [c for c in (spec.field, spec.id_field, spec.schema_field) if c]
        ds = read_dataset(args.input, columns=columns, fmt=args.input_format)
        out = generate_dataset(ds, spec, factories)
        fmt = detect_format(args.output, args.output_format)
        with progress_bar(args.quiet, None, "rows") as update:
            summary = write_ordered(
                out, Path(args.output), fmt, spec.id_field is not None, update, GENERATE_LAYOUT
            )
    finally:
        if started:
            ray.shutdown()
    data = summary.as_dict(input=args.input, output=args.output, engine="ray", complete=True)
    write_summary(summary_path(args.output, args.summary), data)
    print_summary(data, args.quiet)
    return 0
