"""How ``repairllm bench parser`` shows its report: terminal tables, Markdown and a plot.

Kept apart from the measuring code in :mod:`repairllm.bench.parser`; everything here
reads the report dictionary only.
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from typing import Any, Final

from .corrupt import LOSSY

#: The pseudo-operator of undamaged documents (every serialization).
CLEAN: Final = "none"

# A table as (title, header, rows): rendered by rich in the terminal, or as Markdown.
Table = tuple[str, list[str], list[list[str]]]


def _pct(rate: float | None) -> str:
    return "n/a" if rate is None else f"{100 * rate:.1f}"


def _first_call(ratio: float | None) -> str:
    """The first-call figure beside a clean-JSON target (absent from older reports)."""
    return "" if ratio is None else f" ({_num(ratio)} on each document's first call)"


def _num(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}"


def tables(report: dict[str, Any]) -> list[Table]:
    """The report as ``(title, headers, rows)`` tables, for the terminal and Markdown."""
    tools: dict[str, dict[str, Any]] = report["tools"]
    names = list(tools)
    out: list[Table] = []
    rows = [
        [
            name,
            str(r["n"]),
            _pct(r["exact"]),
            _pct(r["valid"]),
            _pct(r["silently_wrong"]),
            _pct(r["wrong"]),
            _pct(r["error"]),
            _num(r["mb_per_s"]),
            _pct(r["clean"]["exact"]),
            _num(r["clean_json"]["mb_per_s"]),
            _pct(r["lossy"]["silently_wrong"]),
            _pct(r["lossy"].get("flagged")),
        ]
        for name, r in tools.items()
    ]
    lossy = ", ".join(sorted(LOSSY))
    out.append(
        (
            f"Parser fuzz: damaged documents (% of n; lossy operators ({lossy}) excluded)",
            [
                "tool",
                "n",
                "exact %",
                "valid %",
                "silently wrong %",
                "wrong %",
                "error %",
                "MB/s",
                "clean exact %",
                "clean JSON MB/s",
                "lossy: silently wrong %",
                "lossy: cut, flagged %",
            ],
            rows,
        )
    )
    lossy_ops = set(report["config"]["lossy_operators"])
    for key, label in (
        ("exact", "exact %"),
        ("silently_wrong", "silently wrong %"),
        ("flagged", "wrong but flagged as cut off %"),
    ):
        op_rows = []
        for operator in report["config"]["operators"]:
            cells = [tools[name]["operators"].get(operator) for name in names]
            n = next((str(c["n"]) for c in cells if c), "0")
            tag = " (lossy)" if operator in lossy_ops else " (clean)" if operator == CLEAN else ""
            op_rows.append([operator + tag, n] + [_pct(c.get(key)) if c else "n/a" for c in cells])
        out.append((f"Per operator: {label}", ["operator", "n", *names], op_rows))
    style_rows = [
        [style]
        + [
            _pct(tools[name]["serializations"].get(style, {}).get("exact"))
            + " / "
            + _pct(tools[name]["serializations"].get(style, {}).get("silently_wrong"))
            for name in names
        ]
        for style in report["config"]["serializations"]
    ]
    out.append(
        ("Per serialization (damaged): exact % / silently wrong %", ["style", *names], style_rows)
    )
    if report["coverage"]:
        cov_rows = []
        for group, c in report["coverage"].items():
            top = [
                f"{stage}: {count}× {reason}"
                for stage, reasons in c["top_reasons"].items()
                for reason, count in list(reasons.items())[:1]
            ]
            cov_rows.append(
                [
                    group,
                    str(c["schemas"]),
                    str(c["loaded"]),
                    str(c["compiled"]),
                    str(c["generated"]),
                    str(c["clean_exact"]),
                    str(c["damaged_valid"]),
                    str(c["damaged_exact"]),
                    "; ".join(top)[:160],
                ]
            )
        out.append(
            (
                "Coverage per folder (schemas counted at each stage)",
                [
                    "folder",
                    "schemas",
                    "loaded",
                    "compiled",
                    "instance",
                    "clean exact",
                    "damaged valid",
                    "damaged exact",
                    "most common failure per stage",
                ],
                cov_rows,
            )
        )
    return out


def _notes(report: dict[str, Any]) -> list[str]:
    lines = []
    r = report["ratios"]

    def target(value: float | None, goal: float) -> str:
        if value is None:
            return "n/a"
        return f"{value:.2f} (target >= {goal:g}: {'met' if value >= goal else 'NOT met'})"

    first = "first_call"
    lines.append(
        "repairllm:plain / orjson, clean JSON MB/s: "
        + target(r["clean_json_mb_per_s_repairllm_plain_over_orjson"], r["clean_json_target"])
        + _first_call(r.get(f"clean_json_mb_per_s_repairllm_plain_over_orjson_{first}"))
    )
    lines.append(
        "repairllm:plain / json_repair, damaged MB/s: "
        + target(r["damaged_mb_per_s_repairllm_plain_over_json_repair"], r["damaged_target"])
    )
    # repairllm with a schema; after ";" the same run with python-jsonschema alone.
    slow = "without_jsonschema_rs"
    clean = "clean_json_mb_per_s_repairllm_over_orjson"
    damaged = "damaged_mb_per_s_repairllm_over_json_repair_schema"
    if r.get(clean) is not None:
        lines.append(
            "repairllm (schema) / orjson, clean JSON MB/s: "
            + target(r[clean], r["clean_json_schema_target"])
            + _first_call(r.get(f"{clean}_{first}"))
            + f"; {_num(r.get(f'{clean}_{slow}'))} with python-jsonschema alone"
        )
    if r.get(damaged) is not None:
        lines.append(
            "repairllm / json_repair:schema, damaged MB/s: "
            + target(r[damaged], r["damaged_schema_target"])
            + f"; {_num(r.get(f'{damaged}_{slow}'))} with python-jsonschema alone"
        )
    for name, reason in report["skipped"].items():
        lines.append(f"skipped {name}: {reason}")
    for name, entry in report["tools"].items():
        if entry["unexpected_exceptions"]:
            first = entry["unexpected_exceptions"][0]
            lines.append(
                f"{name}: exceptions outside its documented errors, e.g. {first['exception']} "
                f"({first['operator']}, {first['schema']})"
            )
    if report.get("plot"):
        lines.append(f"plot: {report['plot']}")
    return lines


def markdown(report: dict[str, Any]) -> str:
    """The report's tables as Markdown."""
    parts = [f"# Parser fuzz benchmark (seed {report['config']['seed']})", ""]
    for title, headers, rows in tables(report):
        parts += [f"## {title}", ""]
        parts.append("| " + " | ".join(headers) + " |")
        parts.append("| " + " | ".join(["---"] + ["---:"] * (len(headers) - 1)) + " |")
        parts += ["| " + " | ".join(c.replace("|", "\\|") for c in row) + " |" for row in rows]
        parts.append("")
    parts += [f"- {line}" for line in _notes(report)]
    parts += ["", "## Definitions", ""]
    parts += [f"- **{k}**: {v}" for k, v in report["config"]["definitions"].items()]
    return "\n".join(parts) + "\n"


def print_report(report: dict[str, Any], file: Any = None) -> None:
    """Draw the tables in the terminal with rich."""
    from rich import box
    from rich.console import Console
    from rich.table import Table as RichTable

    target = file or sys.stdout
    # A terminal gets its own width; a file or pipe gets room for every column.
    width = Console(file=target).width if target.isatty() else 200
    console = Console(file=target, width=width)
    for title, headers, rows in tables(report):
        table = RichTable(title=title, title_justify="left", box=box.SIMPLE_HEAD)
        for index, header in enumerate(headers):
            table.add_column(header, justify="left" if index == 0 else "right", no_wrap=index == 0)
        for row in rows:
            table.add_row(*row)
        console.print(table)
    for line in _notes(report):
        console.print(line, highlight=False, markup=False)


def _outcome_share(rates: dict[str, Any], label: str) -> float:
    if not rates["n"]:
        return 0.0
    if label == "exact":
        return float(rates["exact"])
    if label == "silently wrong":
        return float(rates["silently_wrong"])
    if label == "error":
        return float(rates["error"])
    return float(rates["wrong"] - rates["silently_wrong"])


def plot(report: dict[str, Any], path: Path) -> str:
    """Draw ``plot.png``: outcomes per tool, and exact recovery per operator and tool.

    Returns:
        What happened, for the report: the file name, or why there is no plot.
    """
    try:
        matplotlib: Any = importlib.import_module("matplotlib")
    except ImportError:
        return "skipped: matplotlib is not installed (pip install 'repairllm[bench]')"
    matplotlib.use("Agg")
    plt: Any = importlib.import_module("matplotlib.pyplot")

    tools: dict[str, dict[str, Any]] = report["tools"]
    if not tools:
        return "skipped: no tool ran"
    names = list(tools)
    operators = [op for op in report["config"]["operators"] if op in tools[names[0]]["operators"]]
    fig, (bars, heat) = plt.subplots(
        1,
        2,
        figsize=(8 + 0.9 * len(names), max(6.0, 0.32 * len(operators) + 2)),
        gridspec_kw={"width_ratios": [1, 1.3]},
    )
    left = [0.0] * len(names)
    parts = (
        ("exact", "#2e7d32"),
        ("silently wrong", "#c62828"),
        ("wrong, invalid", "#f9a825"),
        ("error", "#9e9e9e"),
    )
    for label, color in parts:
        widths = [_outcome_share(tools[n], label) for n in names]
        bars.barh(names, widths, left=left, color=color, label=label)
        left = [a + b for a, b in zip(left, widths, strict=True)]
    bars.invert_yaxis()
    bars.set_xlim(0, 1)
    bars.set_xlabel("share of damaged documents (lossy excluded)")
    bars.legend(loc="lower right", fontsize=8)
    bars.set_title("Outcome per tool")
    grid = [
        [tools[n]["operators"].get(op, {}).get("exact") or 0.0 for n in names] for op in operators
    ]
    image = heat.imshow(grid, aspect="auto", cmap="RdYlGn", vmin=0, vmax=1)
    heat.set_xticks(range(len(names)), names, rotation=45, ha="right", fontsize=8)
    heat.set_yticks(range(len(operators)), operators, fontsize=7)
    heat.set_title("Exact recovery per operator")
    fig.colorbar(image, ax=heat, fraction=0.04)
    fig.suptitle(f"repairllm parser fuzz (seed {report['config']['seed']})")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path.name


# --------------------------------------------------------------------------- #
# Running
# --------------------------------------------------------------------------- #
