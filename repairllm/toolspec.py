"""The tool-call form of a structured request: a schema sent as one function to call.

Function calling is how instructor and the agent frameworks ask open models for
arguments, and the ``arguments`` string a local server returns is as often broken as
any reply. Here a schema becomes an OpenAI-style function (``tools`` with a
``tool_choice`` that forces it), and a reply becomes the text to repair: the
arguments of the call, or, when the model answered in content instead, the content,
with a note that says so. Nothing here sends anything; :mod:`repairllm.retry` and
:mod:`repairllm.tools` do.
"""

from __future__ import annotations

import re
from typing import Any

from .backend import Completion
from .prompts import grammar_safe
from .schema import Schema

__all__ = ["DEFAULT_TOOL", "forced", "function_tool", "read_call", "takes_tools", "tool_options"]

#: The function's name when the schema has no usable ``title``.
DEFAULT_TOOL = "respond"
# What OpenAI accepts as a function name (and what every server here takes).
_NAME_CHARS = re.compile(r"[^a-zA-Z0-9_-]+")


def tool_name(schema: Schema | None) -> str:
    """The function's name for a schema: its ``title`` (a pydantic model's class name)
    in the characters servers accept, else :data:`DEFAULT_TOOL`."""
    root = schema.root if schema is not None else None
    title = root.get("title") if isinstance(root, dict) else None
    if not isinstance(title, str):
        return DEFAULT_TOOL
    return _NAME_CHARS.sub("_", title).strip("_")[:64] or DEFAULT_TOOL


def takes_tools(schema: Schema | None) -> bool:
    """Whether a schema can be a function's ``parameters``: servers take only objects.

    A schema whose root is not an object (a list, a number, a union of shapes) is
    sent another way: its value could not be the arguments of a call.
    """
    if schema is None:
        return True
    root = schema.root
    if not isinstance(root, dict):
        return False
    kind = root.get("type")
    return kind == "object" or (kind is None and isinstance(root.get("properties"), dict))


def function_tool(
    name: str, schema: Schema | None, description: str | None = None
) -> dict[str, Any]:
    """One OpenAI-style tool: ``{"type": "function", "function": {...}}``.

    ``parameters`` leaves out ``pattern`` (see :func:`~repairllm.prompts.grammar_safe`):
    llama-cpp-python compiles them into the grammar that constrains the arguments, and
    validation checks patterns after the reply anyway.
    """
    root = schema.root if schema is not None else {"type": "object"}
    if description is None and isinstance(root, dict) and isinstance(root.get("description"), str):
        description = root["description"]
    function: dict[str, Any] = {
        "name": name,
        "description": description or f"Give the answer as the arguments of {name}.",
        "parameters": grammar_safe(root),
    }
    return {"type": "function", "function": function}


def forced(name: str) -> dict[str, Any]:
    """The ``tool_choice`` that makes the model call ``name``."""
    return {"type": "function", "function": {"name": name}}


def tool_options(schema: Schema | None) -> dict[str, Any]:
    """The chat options that send the schema as one function the model must call."""
    name = tool_name(schema)
    return {"tools": [function_tool(name, schema)], "tool_choice": forced(name)}


def read_call(reply: Completion, name: str) -> tuple[str, list[str]]:
    """The text to repair from a reply to a forced call of ``name``, and notes about it.

    The call's ``arguments`` when the model made it; the content when it answered
    there instead (small models and servers without a tool parser often do), which
    is repaired like any reply.
    """
    calls = reply.tool_calls
    if not calls:
        shown = "empty content" if not reply.text.strip() else "content"
        return reply.text, [
            f"the model answered in {shown} instead of calling {name}; the content was repaired"
        ]
    chosen = next((c for c in calls if c.name == name), None)
    notes: list[str] = []
    if chosen is None:
        chosen = calls[0]
        notes.append(
            f"the model called {chosen.name!r} instead of {name!r}; its arguments were read"
        )
    if len(calls) > 1:
        notes.append(f"the reply made {len(calls)} tool calls; the first of {chosen.name} was read")
    return chosen.arguments, notes
