"""A tour of the repair pipeline on replies of the kind small open models really write.

``repairllm demo`` runs it. Each case pairs a broken reply with the schema it was asked
for; the tour shows the value repairllm returns and the ledger of what it changed. The
replies are written to resemble SmolLM2-, Qwen- and Llama-class output seen in practice:
prose around the JSON, fences, ``<think>`` blocks, Python literals, single quotes, keys in
the wrong case, numbers as strings, one object where a list was asked, a reply cut off
by the token limit.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .errors import RepairLLMError
from .outcome import Outcome
from .pipeline import run

__all__ = ["CASES", "DemoCase", "run_demo"]

PERSON = {
    "type": "object",
    "properties": {
        "name": {"type": "string"},
        "age": {"type": "integer", "minimum": 0},
        "email": {"type": ["string", "null"], "format": "email"},
        "is_member": {"type": "boolean", "default": False},
    },
    "required": ["name", "age"],
    "additionalProperties": False,
}
TASKS = {
    "type": "object",
    "properties": {
        "tasks": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "id": {"type": "integer"},
                    "title": {"type": "string"},
                    "status": {"enum": ["todo", "in_progress", "done"]},
                    "depends_on": {"type": "array", "items": {"type": "integer"}},
                },
                "required": ["id", "title", "status"],
            },
        }
    },
    "required": ["tasks"],
}
WEATHER_CALL = {
    "type": "object",
    "properties": {
        "location": {"type": "string"},
        "unit": {"enum": ["celsius", "fahrenheit"], "default": "celsius"},
        "days": {"type": "integer", "minimum": 1, "maximum": 14},
    },
    "required": ["location", "days"],
    "additionalProperties": False,
}
REVIEW = {
    "type": "object",
    "properties": {
        "sentiment": {"enum": ["positive", "negative", "neutral"]},
        "confidence": {"type": "number", "minimum": 0, "maximum": 1},
        "quote": {"type": "string"},
    },
    "required": ["sentiment", "confidence", "quote"],
}


@dataclass(frozen=True)
class DemoCase:
    """One broken reply and the schema it was asked to follow."""

    title: str
    reply: str
    schema: Any


CASES: tuple[DemoCase, ...] = (
    DemoCase(
        "prose, a fence, single quotes and a trailing comma",
        "Sure! Here is the JSON you asked for:\n```json\n"
        "{'name': 'Alice Smith', 'age': 31, 'email': 'alice@example.com',}\n```\n"
        "Let me know if you need anything else!",
        PERSON,
    ),
    DemoCase(
        "keys in the wrong case, a number as a string, a Python literal",
        '{"Name": "Bob Jones", "AGE": "42", "email": None, "isMember": "yes"}',
        PERSON,
    ),
    DemoCase(
        "a <think> block with braces in it, then the answer",
        "<think>The user wants {name, age}. Carol is 27, I think.</think>\n"
        '{"name": "Carol White", "age": 27}',
        PERSON,
    ),
    DemoCase(
        "unescaped quotes inside a string, a missing comma",
        '{"sentiment": "Positive", "confidence": 0.9\n'
        ' "quote": "The battery is "amazing" and lasts all day"}',
        REVIEW,
    ),
    DemoCase(
        "one object where a list was asked, an enum in other words",
        '{"tasks": {"id": "1", "title": "Write the spec", "status": "In Progress"}}',
        TASKS,
    ),
    DemoCase(
        "cut off by the token limit",
        '{"tasks": [{"id": 1, "title": "Draft", "status": "done"}, '
        '{"id": 2, "title": "Review the dra',
        TASKS,
    ),
    DemoCase(
        "a tool call wrapped in an extra object, with an unknown argument",
        '[TOOL_CALL]{"arguments": {"location": "Paris", "days": 3.0, "verbose": true}}[/TOOL_CALL]',
        WEATHER_CALL,
    ),
    DemoCase(
        "no JSON at all",
        "I'm sorry, but I can't help with that request.",
        PERSON,
    ),
)


def run_demo(cases: tuple[DemoCase, ...] = CASES) -> list[tuple[DemoCase, Outcome | Exception]]:
    """Repair every case; return each with its outcome or the error it raised."""
    results: list[tuple[DemoCase, Outcome | Exception]] = []
    for case in cases:
        try:
            results.append((case, run(case.reply, case.schema)))
        except RepairLLMError as exc:
            results.append((case, exc))
    return results
