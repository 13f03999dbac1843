"""What a structured call says to the model: the schema in a form it follows, and feedback.

Small models copy what they see. Pasting a JSON Schema makes SmolLM2-class models
echo the schema back; a *skeleton* (the shape of the answer with a type where each
value goes) is what they imitate best, so it is the default form. The forms are
data so that a benchmark can compare them:

- ``"skeleton"``: ``{"name": <string>, "age": <integer>}``, enums as ``"a" | "b"``.
- ``"keys"``: one line per field, ``name (string, required)``.
- ``"schema"``: the JSON Schema itself.
- ``"none"``: only the instruction to answer in JSON.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any, Literal

import orjson

from .backend import Backend, Message, Messages, as_messages
from .ledger import Issue
from .schema import Schema, without_keywords

__all__ = [
    "PROMPT_FORMS",
    "PromptForm",
    "build_messages",
    "feedback_message",
    "grammar_safe",
    "instruction",
    "native_options",
    "render_schema",
    "uses_native",
]

PromptForm = Literal["skeleton", "keys", "schema", "none"]
PROMPT_FORMS: tuple[PromptForm, ...] = ("skeleton", "keys", "schema", "none")

_MAX_DEPTH = 6
_MAX_PROPS = 60


def render_schema(schema: Schema, form: PromptForm = "skeleton") -> str:
    """Describe the schema to a model in the given form."""
    if form == "schema":
        return orjson.dumps(schema.root, option=orjson.OPT_INDENT_2).decode()
    if form == "keys":
        lines: list[str] = []
        _keys(schema, schema.root, "", lines, 0)
        return "\n".join(lines) if lines else _skeleton(schema, schema.root, 0, "")
    if form == "none":
        return ""
    return _skeleton(schema, schema.root, 0, "")


def _type_words(schema: Schema, node: Any) -> str:
    node = schema.resolve(node)
    if not isinstance(node, dict):
        return "any"
    if "const" in node:
        return orjson.dumps(node["const"]).decode()
    if "enum" in node:
        return " | ".join(orjson.dumps(v).decode() for v in node["enum"][:20])
    branches = schema.branches(node)
    if branches:
        return " | ".join(dict.fromkeys(_type_words(schema, b) for b in branches))
    kind = node.get("type", "any")
    if isinstance(kind, list):
        kind = " | ".join(str(k) for k in kind)
    fmt = node.get("format")
    if fmt:
        kind = f"{kind} ({fmt})"
    return str(kind)


def _skeleton(schema: Schema, node: Any, depth: int, indent: str) -> str:
    node = schema.resolve(node)
    if not isinstance(node, dict) or depth > _MAX_DEPTH:
        return "<any>"
    branches = schema.branches(node)
    if branches and not node.get("properties"):
        shapes = dict.fromkeys(_skeleton(schema, b, depth + 1, indent) for b in branches)
        return " | ".join(shapes)
    props = node.get("properties")
    kinds = node.get("type")
    if isinstance(props, dict) and props:
        required = set(node.get("required", ()))
        inner = indent + "  "
        fields = list(props.items())[:_MAX_PROPS]
        rows = []
        for i, (key, sub) in enumerate(fields):
            value = _skeleton(schema, sub, depth + 1, inner)
            comma = "," if i < len(fields) - 1 else ""
            mark = "" if key in required else "  // optional"
            rows.append(f"{inner}{orjson.dumps(key).decode()}: {value}{comma}{mark}")
        return "{\n" + "\n".join(rows) + "\n" + indent + "}"
    if kinds == "array" or (isinstance(kinds, list) and "array" in kinds):
        items = node.get("items", node.get("prefixItems", {}))
        if isinstance(items, list):
            inner_items = ", ".join(_skeleton(schema, i, depth + 1, indent) for i in items)
            return f"[{inner_items}]"
        return f"[{_skeleton(schema, items, depth + 1, indent)}, ...]"
    if "enum" in node or "const" in node:
        return _type_words(schema, node)
    return f"<{_type_words(schema, node)}>"


def _keys(schema: Schema, node: Any, prefix: str, lines: list[str], depth: int) -> None:
    node = schema.resolve(node)
    if not isinstance(node, dict) or depth > _MAX_DEPTH:
        return
    props = node.get("properties")
    if not isinstance(props, dict):
        items = node.get("items")
        if isinstance(items, dict) and prefix:
            _keys(schema, items, prefix + "[]", lines, depth + 1)
        return
    required = set(node.get("required", ()))
    for key, sub in list(props.items())[:_MAX_PROPS]:
        name = f"{prefix}.{key}" if prefix else key
        need = "required" if key in required else "optional"
        lines.append(f"- {name} ({_type_words(schema, sub)}, {need})")
        _keys(schema, sub, name, lines, depth + 1)


def _instruction(schema: Schema | None, form: PromptForm) -> str:
    if schema is None or form == "none":
        return "Answer with JSON only, no other text."
    shape = render_schema(schema, form)
    lead = {
        "skeleton": "Answer with one JSON value of this shape, filled in, and nothing else:",
        "keys": "Answer with one JSON object with these fields, and nothing else:",
        "schema": "Answer with one JSON value valid against this JSON Schema, and nothing else:",
    }[form]
    return f"{lead}\n{shape}"


def instruction(schema: Schema | None, form: PromptForm = "skeleton") -> str:
    """The instruction a structured call gives the model: answer with JSON of this shape.

    Public for callers that build their own prompts (the framework adapters' format
    instructions), so that they say to the model exactly what a structured call says.
    """
    return _instruction(schema, form)


def build_messages(
    prompt: Messages, schema: Schema | None, form: PromptForm = "skeleton"
) -> list[Message]:
    """The first request of a structured call: the instruction, then the caller's messages.

    The instruction joins an existing system message (small models' chat templates often
    allow only one) or becomes the system message.
    """
    messages = as_messages(prompt)
    instruction = _instruction(schema, form)
    if messages[0].get("role") == "system" and isinstance(messages[0].get("content"), str):
        first = dict(messages[0])
        first["content"] = f"{first['content']}\n\n{instruction}"
        return [first, *messages[1:]]
    return [{"role": "system", "content": instruction}, *messages]


def json_text(value: Any) -> str:
    """What a model wrote, as JSON text to show it (in feedback, in a record).

    A value may hold a lone surrogate (the model wrote ``"\\ud800"``), which orjson
    refuses to encode; :mod:`json` writes it back as the escape it came from.
    """
    try:
        return orjson.dumps(value, default=str).decode()
    except TypeError:
        return json.dumps(value, default=str)


def describe_issues(issues: Sequence[Issue], limit: int = 8) -> list[str]:
    """One line per issue: its JSON pointer, what is wrong, and what was found."""
    lines = []
    for issue in issues[:limit]:
        where = issue.path or "/"
        got = ""
        if issue.got is not None:
            shown = json_text(issue.got)
            got = f" (found {shown[:60]})"
        lines.append(f"- at {where}: {issue.message}{got}")
    if len(issues) > limit:
        lines.append(f"- and {len(issues) - limit} more")
    return lines


def feedback_message(
    issues: Sequence[Issue],
    best: Any,
    schema: Schema | None,
    form: PromptForm = "skeleton",
    *,
    no_json: bool = False,
) -> str:
    """The user turn that replaces a failed reply: what is still wrong, by JSON pointer.

    When part of the reply could be repaired, the repaired value is shown so the model
    corrects only the named fields instead of starting over.
    """
    parts: list[str] = []
    if no_json:
        parts.append("Your reply held no JSON.")
    else:
        parts.append("Your reply is not valid yet. Fix these problems:")
        parts.extend(describe_issues(issues))
    if best is not None and not no_json:
        text = json_text(best)
        if len(text) <= 2000:
            parts.append(f"Your reply, as JSON:\n{text}")
    if schema is not None and form != "none":
        parts.append(_instruction(schema, form))
    else:
        parts.append("Answer with the corrected JSON only.")
    return "\n".join(parts)


def uses_native(backend: Backend | None, schema: Schema | None, native: bool | None) -> bool:
    """Whether a call uses the server's structured mode.

    ``native=None`` uses it where the backend declares one for this kind of request (a
    JSON Schema, or any JSON without a schema); ``False`` turns it off; ``True`` cannot
    turn on what the backend lacks.
    """
    if backend is None or native is False:
        return False
    return backend.supports_json_schema if schema is not None else backend.supports_json_mode


def native_options(schema: Schema | None) -> dict[str, Any]:
    """The chat options that ask for the server's structured mode."""
    if schema is not None and isinstance(schema.root, dict):
        return {"json_schema": grammar_safe(schema.root)}
    return {"json_mode": True}


def grammar_safe(schema: Any) -> Any:
    """The schema without the ``pattern`` keyword, for servers that compile schemas into grammars.

    Regular-expression dialects differ between servers, and llama-cpp-python's server
    (0.3.36) could not parse ``\\d`` in a pattern and then died mid-request. Patterns
    are still checked by validation after the reply, with repair and retry behind it.
    Only the keyword goes: a property *named* ``pattern`` stays.
    """
    return without_keywords(schema, frozenset({"pattern"}))
