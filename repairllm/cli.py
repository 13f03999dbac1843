"""The ``repairllm`` command line.

Reads stdin or a file, writes JSON to stdout and errors to stderr (exit code 1). The
library itself never prints; this module is where output happens.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO

from .errors import ConfigError, InvalidInput, RepairLLMError, SchemaError
from .ledger import Ledger
from .lexical.strict import exceeds_int_digits, infinite_number, may_overflow, strict_loads
from .pipeline import run

__all__ = ["main"]


def _load_schema(spec: str | None) -> Any:
    if spec is None:
        return None
    text = spec
    if not spec.lstrip().startswith(("{", "[", "true", "false")):
        try:
            data = Path(spec).read_bytes()
        except OSError as exc:
            raise SchemaError(f"cannot read the schema file {spec!r}: {exc.strerror}") from exc
        text = _decode(data, f"the schema file {spec!r}", SchemaError)
    try:
        return _strict_json(text)
    except json.JSONDecodeError as exc:
        raise SchemaError(
            f"the schema {_short(spec)!r} is not JSON "
            f"(line {exc.lineno}, column {exc.colno}: {exc.msg})"
        ) from exc
    except (ValueError, RecursionError) as exc:
        raise SchemaError(f"the schema {_short(spec)!r} is not usable JSON: {_why(exc)}") from exc


def _short(text: str, limit: int = 60) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _decode(data: bytes, what: str, error: type[RepairLLMError] = InvalidInput) -> str:
    """``data`` as UTF-8 text (a leading BOM kept for the pipeline to record), or ``error``."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise error(f"{what} is not UTF-8 text (a bad byte at offset {exc.start})") from None
    nul = text.find("\x00")
    if nul >= 0:
        raise error(f"{what} looks binary (a NUL character at offset {nul})")
    return text


def _read_input(source: str) -> str:
    if source == "-":
        binary = getattr(sys.stdin, "buffer", None)  # absent where stdin was replaced by text
        data = binary.read() if binary is not None else sys.stdin.read().encode("utf-8", "replace")
        return _decode(data, "the input on stdin")
    try:
        data = Path(source).read_bytes()
    except OSError as exc:
        raise InvalidInput(f"cannot read {source!r}: {exc.strerror}") from exc
    return _decode(data, repr(source))


def _strict_json(text: str) -> Any:
    """JSON as RFC 8259 has it: no NaN or Infinity, no number that overflows a double.

    Raises:
        json.JSONDecodeError: not JSON.
        ValueError: NaN, Infinity, 1e999, or an integer past Python's digit limit.
        RecursionError: nested past the interpreter's limit.
    """
    value = strict_loads(text)
    if may_overflow(text) and infinite_number(value):
        raise ValueError("a number beyond the range of a double (such as 1e999)")
    return value


def _why(exc: BaseException) -> str:
    if isinstance(exc, RecursionError):
        return "it nests too deeply"
    if isinstance(exc, ValueError) and exceeds_int_digits(exc):
        return f"an integer longer than {sys.get_int_max_str_digits()} digits"
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__


def _write_json(value: Any, indent: int | None) -> None:
    """``value`` on stdout as one JSON document; non-ASCII escaped where stdout cannot hold it."""
    text = json.dumps(value, ensure_ascii=False, indent=indent, allow_nan=False)
    try:
        encoded = text.encode(sys.stdout.encoding or "utf-8")
    except UnicodeEncodeError:
        # A lone surrogate (JSON allows "\\ud800"), or a terminal that is not UTF-8.
        encoded = json.dumps(value, ensure_ascii=True, indent=indent, allow_nan=False).encode()
    binary = getattr(sys.stdout, "buffer", None)
    if binary is None:  # stdout replaced by a text stream
        sys.stdout.write(encoded.decode(sys.stdout.encoding or "utf-8") + "\n")
        return
    sys.stdout.flush()
    binary.write(encoded + b"\n")
    binary.flush()


def _print_ledger(ledger: Ledger, out: TextIO) -> None:
    for fix in ledger:
        print(f"  {fix}  (cost {fix.cost:g})", file=out)
    if not ledger:
        print("  (no changes)", file=out)


def _cmd_repair(args: argparse.Namespace) -> int:
    text = _read_input(args.input)
    outcome = run(text, _load_schema(args.schema), args.policy)
    _write_json(outcome.data, args.indent)
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
            best = getattr(result, "best", None)
            if best is not None and best.truncated:
                print("  best: " + json.dumps(best.data, ensure_ascii=False), file=out)
                print(
                    "  (cut off inside a value, which is not completed by default: the reply "
                    "is refused, and the error's .best holds what could be read)",
                    file=out,
                )
            continue
        repaired += 1
        print("  value: " + json.dumps(result.data, ensure_ascii=False), file=out)
        if result.truncated:
            print("  (completed from a reply that was cut off)", file=out)
        _print_ledger(result.ledger, out)
    print(f"\n{repaired} of {len(results)} replies became valid values.", file=out)
    return 0


def _cmd_validate(args: argparse.Namespace) -> int:
    from .schema import compile_schema

    text = _read_input(args.input)
    schema = compile_schema(_load_schema(args.schema))
    try:
        value = _strict_json(text)
    except json.JSONDecodeError as exc:
        print(f"not JSON: line {exc.lineno}, column {exc.colno}: {exc.msg}", file=sys.stderr)
        return 1
    except (ValueError, RecursionError) as exc:
        print(f"not JSON a program can read: {_why(exc)}", file=sys.stderr)
        return 1
    issues = schema.validate(value)[1]
    for issue in issues:
        print(f"{issue.path or '/'}: {issue.message}", file=sys.stderr)
    print(json.dumps({"valid": not issues, "issues": len(issues)}))
    return 1 if issues else 0


def set_fields(args: argparse.Namespace) -> dict[str, Any]:
    """The driver fields of ``--set KEY=VALUE`` (values read as JSON where they are).

    Shared with the subcommands that connect to several servers themselves
    (``batch generate``, ``bench model``), where each server adds its own ``base_url``.
    A value JSON cannot read (or an integer longer than Python converts) stays text.
    """
    fields: dict[str, Any] = {}
    for item in args.set or ():
        key, sep, value = item.partition("=")
        if not sep:
            raise ConfigError(f"--set takes KEY=VALUE, got {item!r}")
        try:
            fields[key] = json.loads(value)
        except ValueError:
            fields[key] = value
    return fields


def _backend_fields(args: argparse.Namespace) -> dict[str, Any]:
    fields = set_fields(args)
    if args.base_url:
        fields["base_url"] = args.base_url
    return fields


def connect_from_args(args: argparse.Namespace, default: str | None = None) -> Any:
    """The backend that ``--backend/--model/--base-url/--config/--set`` describe.

    Args:
        args: parsed arguments from a parser given :func:`_backend_arguments`.
        default: the driver to use when neither ``--backend`` nor ``--config`` names one.
    """
    from .registry import connect

    server = args.backend if args.backend is not None or args.config is not None else default
    return connect(server, model=args.model, config=args.config, **_backend_fields(args))


def _cmd_generate(args: argparse.Namespace) -> int:
    from .retry import generate

    prompt = args.prompt if args.prompt != "-" else _read_input("-")
    with connect_from_args(args) as llm:
        result = generate(
            llm,
            prompt,
            _load_schema(args.schema),
            retries=args.retries,
            policy=args.policy,
            outcome=True,
            native=False if args.no_native else None,
            max_tokens=args.max_tokens,
            temperature=args.temperature,
        )
    value = result.value
    if hasattr(value, "model_dump"):
        value = value.model_dump(mode="json")
    _write_json(value, args.indent)
    if args.ledger:
        for i, attempt in enumerate(result.attempts, 1):
            print(
                f"attempt {i}: {len(attempt.raw)} chars, {attempt.usage.completion_tokens} "
                f"tokens, {attempt.seconds:.2f} s",
                file=sys.stderr,
            )
            _print_ledger(attempt.ledger, sys.stderr)
    return 0


def _cmd_backends(args: argparse.Namespace) -> int:
    from importlib.metadata import entry_points

    from .registry import ENTRY_POINT_GROUP, available

    targets = {ep.name: ep.value for ep in entry_points(group=ENTRY_POINT_GROUP)}
    for name in available():
        print(f"{name:<14} {targets.get(name, '(registered at run time)')}")
    return 0


def _one_line(text: str, limit: int = 110) -> str:
    flat = text.replace("\n", "\\n")
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def _parser(load: str | None = None) -> argparse.ArgumentParser:
    """The command line's parser; the plug-in command ``load``, if any, fully built."""
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

    val = sub.add_parser("validate", help="check JSON against a schema (exit 1 when invalid)")
    val.add_argument("input", nargs="?", default="-", help="a file, or - for stdin (default)")
    val.add_argument("--schema", required=True, help="a JSON Schema file, or the schema as JSON")
    val.set_defaults(func=_cmd_validate)

    gen = sub.add_parser("generate", help="ask a backend for a validated JSON value")
    gen.add_argument("prompt", help="the prompt, or - to read it from stdin")
    backend_arguments(gen)
    gen.add_argument("--schema", help="a JSON Schema file, or the schema itself as JSON")
    gen.add_argument("--retries", type=int, default=2, help="format retries (default 2)")
    gen.add_argument("--policy", default="default", help="strict, default or lenient")
    gen.add_argument("--max-tokens", type=int, default=512)
    gen.add_argument("--temperature", type=float, default=0.0)
    gen.add_argument("--no-native", action="store_true", help="don't use the server's JSON mode")
    gen.add_argument("--ledger", action="store_true", help="print attempts and ledgers on stderr")
    gen.add_argument("--indent", type=int, default=None, help="indent the JSON output")
    gen.set_defaults(func=_cmd_generate)

    backends = sub.add_parser("backends", help="list the registered backend drivers")
    backends.set_defaults(func=_cmd_backends)

    for name, entry in _plugin_commands().items():
        if name in sub.choices:
            continue  # a plug-in cannot replace a built-in command
        if name != load:
            sub.add_parser(name, help=f"a plug-in command (repairllm {name} --help)")
            continue
        setup = _load_command(name, entry)
        doc = (setup.__doc__ or "").strip().splitlines()
        title = doc[0] if doc else None
        setup(sub.add_parser(name, help=title, description=title))
    return parser


def backend_arguments(
    parser: argparse.ArgumentParser, default_backend: str | None = "openai"
) -> None:
    """Add ``--backend/--model/--base-url/--config/--set`` (read by :func:`connect_from_args`)."""
    parser.add_argument(
        "--backend", default=default_backend, help="driver name: openai, llamacpp, ollama, hf ..."
    )
    parser.add_argument("--model", help="model name, tag or path")
    parser.add_argument("--base-url", help="server address, for HTTP drivers")
    parser.add_argument("--config", help="a YAML backend config file")
    parser.add_argument(
        "--set", action="append", metavar="KEY=VALUE", help="a driver field (repeatable)"
    )


#: Entry points of this group add subcommands: ``NAME = "module:function"``, where the
#: function takes the subcommand's ``argparse`` parser, adds its arguments and sets
#: ``func`` (a callable taking the parsed arguments and returning the exit code), and
#: the first line of its docstring is the subcommand's help. A plug-in is imported
#: only when its command runs (or the top-level help lists it).
COMMAND_GROUP = "repairllm.commands"


def _plugin_commands() -> dict[str, Any]:
    """The plug-in subcommands by name, not loaded."""
    from importlib.metadata import entry_points

    return {ep.name: ep for ep in entry_points(group=COMMAND_GROUP)}


def _load_command(name: str, entry: Any) -> Any:
    try:
        return entry.load()
    except Exception as exc:
        raise ConfigError(
            f"the plug-in command {name!r} ({entry.value}) cannot be loaded: "
            f"{type(exc).__name__}: {exc}"
        ) from exc


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit code."""
    words = list(sys.argv[1:] if argv is None else argv)
    command = next((w for w in words if not w.startswith("-")), None)
    try:
        parser = _parser(load=command)
    except RepairLLMError as exc:
        print(f"repairllm: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    args = parser.parse_args(words)
    try:
        code: int = args.func(args)
    except RepairLLMError as exc:
        print(f"repairllm: {type(exc).__name__}: {_one_line(str(exc), 2000)}", file=sys.stderr)
        return 1
    except BrokenPipeError:
        # The reader went away (`| head`): nothing more to say, and nowhere to say it.
        with contextlib.suppress(OSError):
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except KeyboardInterrupt:
        print("repairllm: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:
        if os.environ.get("REPAIRLLM_DEBUG"):
            raise
        print(
            f"repairllm: internal error: {type(exc).__name__}: {_one_line(str(exc), 300)} "
            "(set REPAIRLLM_DEBUG=1 for the traceback, and please report it)",
            file=sys.stderr,
        )
        return 1
    return code


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
