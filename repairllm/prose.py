"""The last reading of a reply that holds no JSON: an answer given in prose.

Small models asked for ``{"sentiment": ...}`` often answer "The sentiment is
**positive**." This module reads such replies, and only for schemas where a prose
answer can be read without guessing: a string enum (one of its values named, and no
other), a boolean (one yes-or-no word, and not both kinds), a number (one number in the
text), or a flat object (``Label: value`` lines whose labels are the schema's keys).
Anything less certain is no reading at all. The pipeline records the reading as the
rule ``prose_answer``, dear enough that any JSON in the reply wins, and only where the
policy allows it (``Policy.prose_answers``).
"""

from __future__ import annotations

from typing import Any

import regex

from .align import normalise_key
from .schema import ANY, Schema

__all__ = ["read_prose"]

_NUMBER = regex.compile(r"(?<![\w.])-?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?(?![\w.]*\d)")
_YES = frozenset({"yes", "true", "correct", "y"})
_NO = frozenset({"no", "false", "incorrect", "n"})
_WORD = regex.compile(r"[\p{L}\p{N}_'-]+")
_LABEL_LINE = regex.compile(
    r"^[ \t>*_#-]*\**(?P<label>[\p{L}][\p{L}\p{N} _-]{0,40}?)\**"
    r"[ \t]*[:=][ \t]*(?P<value>.+?)[ \t]*$",
    regex.MULTILINE,
)
#: Longest reply read as prose; a longer one is an essay, not an answer.
_MAX_PROSE = 4000


def read_prose(text: str, schema: Schema) -> tuple[Any, str] | None:
    """The value ``text`` states in prose for ``schema``, and the phrase it was read from.

    ``None`` when the schema is not one a prose answer can fill, or the text does not
    say one thing for certain.
    """
    if len(text) > _MAX_PROSE:
        return None
    node = schema.root
    info = schema.info(node)
    types = info.types
    if info.enum is not None:
        return _enum(text, info.enum)
    if types == ANY:
        return None
    if types == frozenset({"boolean"}):
        return _boolean(text)
    if types <= frozenset({"number", "integer"}):
        return _number(text, integer="number" not in types)
    if types == frozenset({"object"}) and info.properties:
        return _flat_object(text, info.properties, schema)
    return None


def _enum(text: str, options: tuple[Any, ...]) -> tuple[Any, str] | None:
    words = {w.casefold() for w in _WORD.findall(text)}
    named = [
        option
        for option in options
        if isinstance(option, str) and option and _named(option, text, words)
    ]
    if len(named) != 1:
        return None
    return named[0], named[0]


def _named(option: str, text: str, words: set[str]) -> bool:
    if " " in option or not _WORD.fullmatch(option):
        return regex.search(rf"(?<!\w){regex.escape(option)}(?!\w)", text, regex.I) is not None
    return option.casefold() in words


def _boolean(text: str) -> tuple[Any, str] | None:
    words = [w.casefold() for w in _WORD.findall(text)]
    yes = [w for w in words if w in _YES]
    no = [w for w in words if w in _NO]
    if yes and not no:
        return True, yes[0]
    if no and not yes:
        return False, no[0]
    return None


def _number(text: str, *, integer: bool) -> tuple[Any, str] | None:
    found = _NUMBER.findall(text)
    if len(found) != 1:
        return None
    raw = found[0]
    digits = raw.replace(",", "")
    if "." in digits:
        if integer:
            return None
        return float(digits), raw
    return int(digits), raw


def _flat_object(text: str, properties: Any, schema: Schema) -> tuple[dict[str, Any], str] | None:
    # Labels match property names as align matches keys (and share its cache).
    by_key = {normalise_key(name): name for name in properties}
    out: dict[str, Any] = {}
    for match in _LABEL_LINE.finditer(text):
        name = by_key.get(normalise_key(match["label"]))
        if name is None or name in out:
            continue
        sub = schema.info(schema.child(schema.root, name))
        if not sub.types <= frozenset({"string", "number", "integer", "boolean", "null"}):
            return None  # a nested value cannot be read from one line
        out[name] = match["value"].strip().strip("*_`\"'").strip()
    if len(out) < max(1, min(2, len(properties))):
        return None
    return out, ", ".join(f"{k}: {v}" for k, v in out.items())
