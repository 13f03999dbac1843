"""Report cards: one per model run (Markdown + JSON + PNG), and side-by-side comparison."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..errors import ConfigError

__all__ = [
    "RATES",
    "card_markdown",
    "card_name",
    "card_stem",
    "compare_markdown",
    "load_card",
    "write_card",
    "write_compare",
]

RATES = (
    ("raw_parse", "raw parse"),
    ("raw_valid", "raw valid"),
    ("valid_after_repair", "valid after repair"),
    ("valid_after_retries", "valid after retries"),
    ("field_accuracy", "field accuracy"),
)


def _pct(value: Any) -> str:
    return f"{100 * value:.1f}%" if isinstance(value, int | float) else "n/a"


def _num(value: Any, digits: int = 1) -> str:
    return f"{value:.{digits}f}" if isinstance(value, int | float) else "n/a"


def slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-") or "model"


def _mode(card: dict[str, Any]) -> str:
    """``"-no-native"`` for a run told not to use the backend's structured mode."""
    return "-no-native" if card.get("config", {}).get("native") is False else ""


def card_name(card: dict[str, Any]) -> str:
    """What a card is called: the label a run gave it, else its model's name (else, for
    a run whose server never said which model it serves, the driver's)."""
    return str(card.get("label") or Path(card["model"]).name or card["backend"])


def _servers(card: dict[str, Any]) -> list[str]:
    """Lines on the servers that shared the tasks, and why the run stopped early."""
    lines = []
    servers: dict[str, int] = card.get("servers") or {}
    if len(servers) > 1 or card.get("moved"):
        each = ", ".join(f"{name} ({n} tasks)" for name, n in servers.items())
        lines += [
            "",
            f"Served by {len(servers)} server(s): {each}; {card.get('moved', 0)} task(s) "
            "moved from a failing server to another.",
        ]
    if card.get("error"):
        lines += ["", f"Stopped early: {card['error']}"]
    return lines


def card_markdown(card: dict[str, Any]) -> str:
    """The report card as Markdown."""
    s = card["summary"]
    c = card["config"]
    lines = [
        f"# Report card: {card_name(card)} ({card['backend']})",
        "",
        f"{s.get('tasks', 0)} tasks, seed {c['seed']}, {c['retries']} retries, prompt form "
        f"`{c['prompt_form']}`, native mode {c['native']}, temperature {c['temperature']}, "
        f"max_tokens {c['max_tokens']}" + (" (interrupted)" if card.get("interrupted") else ""),
        *_servers(card),
        "",
        "| measure | value |",
        "|---|---|",
    ]
    lines += [f"| {label} | {_pct(s.get(key))} |" for key, label in RATES]
    lines += [
        f"| field accuracy of valid objects | {_pct(s.get('field_accuracy_of_valid'))} |",
        f"| attempts per task | {_num(s.get('attempts_per_task'), 2)} |",
        f"| generated tokens per valid object | {_num(s.get('tokens_per_valid'))} |",
        f"| seconds per valid object | {_num(s.get('seconds_per_valid'), 2)} |",
        f"| backend errors | {s.get('errors', 0)} |",
        f"| first replies constrained (grammar, JSON mode) | {_pct(s.get('native'))} |",
        f"| wall time of the run (s) | {_num(c.get('wall_seconds'))} |",
        "",
        "Failure classes repaired (replies, over all attempts, that needed each rule):",
        "",
    ]
    classes = s.get("failure_classes") or {}
    lines += [f"- `{rule}`: {count}" for rule, count in classes.items()] or ["- none"]
    lines += ["", "| task | style | raw valid | after repair | after retries | accuracy |"]
    lines += ["|---|---|---|---|---|---|"]
    for r in card.get("results", []):
        marks = ["yes" if r[k] else "no" for k in ("raw_valid", "repaired_valid", "final_valid")]
        lines.append(f"| {r['id']} | {r['style']} | {' | '.join(marks)} | {_pct(r['accuracy'])} |")
    return "\n".join(lines) + "\n"


def _plot(names: Sequence[str], summaries: Sequence[dict[str, Any]], path: Path) -> str | None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return "matplotlib is not installed (pip install 'repairllm[bench]'): no PNG written"
    fig, ax = plt.subplots(figsize=(8, 4))
    width = 0.8 / max(1, len(names))
    for i, (name, summary) in enumerate(zip(names, summaries, strict=True)):
        values = [100 * float(summary.get(key) or 0) for key, _ in RATES]
        xs = [j + i * width for j in range(len(RATES))]
        ax.bar(xs, values, width, label=name)
    ax.set_xticks([j + width * (len(names) - 1) / 2 for j in range(len(RATES))])
    ax.set_xticklabels([label for _, label in RATES], rotation=15)
    ax.set_ylabel("% of tasks")
    ax.set_ylim(0, 100)
    ax.legend(fontsize="small")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return None


def card_stem(card: dict[str, Any]) -> str:
    """The card's file name without suffix: its label, or ``<backend>-<model>``."""
    if card.get("label"):
        return slug(f"{card['label']}{_mode(card)}")
    return slug(f"{card['backend']}{_mode(card)}-{Path(card['model']).name}")


def write_card(card: dict[str, Any], out: Path, stem: str | None = None) -> dict[str, Path | str]:
    """Write ``<stem>.json``, ``.md`` and ``.png`` into ``out``; return what was written.

    Args:
        card: the card's data.
        out: the folder.
        stem: the file name without suffix (default :func:`card_stem`).
    """
    out.mkdir(parents=True, exist_ok=True)
    stem_path = out / (stem or card_stem(card))
    written: dict[str, Path | str] = {}
    json_path = stem_path.with_suffix(".json")
    json_path.write_text(json.dumps(card, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    written["json"] = json_path
    md_path = stem_path.with_suffix(".md")
    md_path.write_text(card_markdown(card), encoding="utf-8")
    written["markdown"] = md_path
    png_path = stem_path.with_suffix(".png")
    problem = _plot([card_name(card)], [card["summary"]], png_path)
    written["png"] = problem or png_path
    return written


def load_card(path: Path) -> dict[str, Any]:
    """Read a report card's JSON, refusing files that are not one."""
    try:
        card = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise ConfigError(f"cannot read the report card {path}: {exc}") from exc
    if not isinstance(card, dict) or "summary" not in card or "model" not in card:
        raise ConfigError(f"{path} is not a report card (no 'model' and 'summary')")
    return card


def compare_markdown(cards: Sequence[dict[str, Any]]) -> str:
    """Several report cards side by side."""
    names = [f"{card_name(c)} ({c['backend']}{_mode(c)})" for c in cards]
    lines = ["# Model comparison", "", "| measure | " + " | ".join(names) + " |"]
    lines.append("|---|" + "---|" * len(cards))
    for key, label in RATES:
        lines.append(
            f"| {label} | " + " | ".join(_pct(c["summary"].get(key)) for c in cards) + " |"
        )
    for key, label, digits in (
        ("tokens_per_valid", "tokens per valid object", 1),
        ("seconds_per_valid", "seconds per valid object", 2),
        ("native", "constrained first replies", 2),
        ("tasks", "tasks", 0),
    ):
        cells = " | ".join(_num(c["summary"].get(key), digits) for c in cards)
        lines.append(f"| {label} | {cells} |")
    return "\n".join(lines) + "\n"


def write_compare(cards: Sequence[dict[str, Any]], out: Path) -> dict[str, Path | str]:
    """Write ``compare.md`` and ``compare.png`` into ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    md = out / "compare.md"
    md.write_text(compare_markdown(cards), encoding="utf-8")
    png = out / "compare.png"
    problem = _plot([card_name(c) for c in cards], [c["summary"] for c in cards], png)
    return {"markdown": md, "png": problem or png}
