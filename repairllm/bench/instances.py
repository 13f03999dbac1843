"""Seeded valid instances of a JSON Schema, for the parser benchmark.

:func:`make_instances` prefers the schema's own ``examples`` (those that validate), then
fills up with a small generator that walks the schema: types, ``enum``/``const``,
``required`` and optional properties, ``$ref`` into the same document (``$defs``,
``definitions``), ``allOf`` (merged), ``anyOf``/``oneOf`` (one branch), the formats
models are asked for (``date``, ``date-time``, ``email``, ``uri``, ``uuid``, ...),
``pattern`` (a string built from the parsed regular expression), and the numeric,
length, item and property bounds. Every generated value is checked with ``jsonschema``
(format checking on), so whatever comes out is valid; a schema the generator cannot
satisfy raises :class:`GenerationError` with the reason.

hypothesis-jsonschema can be asked for as a second source (``hypothesis=True``) for
schemas the generator fails on. It is seeded, but slow and unpredictable in time, so
it is off by default and always runs under the time limit.

Strings are realistic text: names, sentences, quoted speech (``He said "hi"``) and
multi-line notes, so the corruption operators that damage escapes (``raw_newline``,
``unescaped_quote``) find something to damage.
"""

from __future__ import annotations

import contextlib
import copy
import datetime as dt
import importlib
import json
import math
import random
import signal
import threading
import uuid
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Final, TypeGuard

from ..errors import SchemaError
from ..schema import checked_validator, document_address, follow_refs, merge_nodes

__all__ = [
    "GenerationError",
    "Instances",
    "TimeLimitExceeded",
    "fill_defaults",
    "generate",
    "is_valid",
    "make_instances",
    "regex_example",
    "time_limit",
    "validator",
]

MAX_NODES: Final = 2_000
"""Most JSON values one generated instance may hold; keeps recursive schemas finite."""
SOFT_DEPTH: Final = 5
"""From this depth on, optional properties and items are left out."""
HARD_DEPTH: Final = 40
"""Past this depth the schema cannot be satisfied without recursing forever."""
ATTEMPTS: Final = 12
"""Fresh tries of the generator per instance before giving up."""


class GenerationError(Exception):
    """No valid instance could be made for a schema; the message says why."""


class TimeLimitExceeded(BaseException):
    """The time limit of :func:`time_limit` ran out.

    A ``BaseException`` so that the ``except Exception`` inside the code under the
    limit (a tool, the validator) cannot swallow it.
    """


@contextlib.contextmanager
def time_limit(seconds: float | None) -> Iterator[None]:
    """Raise :class:`TimeLimitExceeded` in the block after ``seconds`` of wall time.

    Uses ``SIGALRM``, so it works only in the main thread on POSIX; elsewhere (and for
    ``None`` or a non-positive limit) the block simply runs unguarded. Work inside one
    long C call (a regular expression backtracking) is interrupted only when it returns.
    """
    usable = (
        seconds is not None
        and seconds > 0
        and hasattr(signal, "setitimer")
        and threading.current_thread() is threading.main_thread()
    )
    if not usable:
        yield
        return

    def expire(signum: int, frame: object) -> None:
        raise TimeLimitExceeded(f"over the time limit of {seconds:g} s")

    assert seconds is not None
    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


# --------------------------------------------------------------------------- #
# Validation
# --------------------------------------------------------------------------- #


def validator(schema: Any) -> Any:
    """The library's own validator for ``schema`` (:func:`repairllm.schema.checked_validator`).

    Raises:
        jsonschema.SchemaError: the schema is not valid under its metaschema.
    """
    return checked_validator(schema)


def is_valid(check: Any, value: Any) -> bool:
    """Whether ``value`` validates; a schema that breaks the validator counts as invalid."""
    try:
        return bool(check.is_valid(value))
    except (Exception, RecursionError):
        # An unresolvable $ref, a pattern Python cannot compile, nesting too deep.
        return False


def _why_invalid(check: Any, value: Any) -> str:
    try:
        error = next(iter(check.iter_errors(value)), None)
    except (Exception, RecursionError) as exc:
        return f"the validator failed: {type(exc).__name__}: {str(exc)[:200]}"
    if error is None:
        return "valid"
    where = "/" + "/".join(str(p) for p in error.absolute_path)
    return f"{where}: {error.message[:200]}"


# --------------------------------------------------------------------------- #
# Text
# --------------------------------------------------------------------------- #

_FIRST: Final = ("Ada", "José", "Zoë", "Liam", "Mei", "Omar", "Priya", "Sven", "Chloé", "Kenji")
_LAST: Final = ("Lovelace", "García", "Müller", "Okafor", "Nakamura", "Smith", "Dubois")
_WORDS: Final = (
    "alpha",
    "report",
    "blue",
    "order",
    "refund",
    "summary",
    "draft",
    "north",
    "priority",
    "weekly",
    "sensor",
    "invoice",
    "café",
    "review",
)
_PHRASES: Final = (
    "hi",
    "we ship on Friday",
    "that's not what I ordered",
    "it works on my machine",
    "see you at 10:30",
)
_SENTENCES: Final = (
    "The customer reported the issue twice before escalating.",
    "All items were delivered, but one box was damaged.",
    "She led the migration to the new billing system.",
    "Follow-up is needed by the end of the week.",
    "Prices include VAT (19%) unless stated otherwise.",
    "Budget: approx. 12,500 EUR for Q3.",
    "Résumé attached — see page 2 for references.",
)
_LONG_TEXT_KEYS: Final = (
    "description",
    "text",
    "body",
    "content",
    "summary",
    "comment",
    "message",
    "note",
    "notes",
    "reason",
    "details",
    "answer",
    "quote",
    "bio",
)


def _sentence_text(rng: random.Random) -> str:
    """One to three sentences; sometimes quoted speech or several lines."""
    roll = rng.random()
    if roll < 0.25:
        first = rng.choice(_FIRST)
        return f'{first} said "{rng.choice(_PHRASES)}" and left.'
    if roll < 0.45:
        return "\n".join(rng.sample(_SENTENCES, rng.randint(2, 3)))
    return " ".join(rng.sample(_SENTENCES, rng.randint(1, 2)))


def _text_for(key: str | None, rng: random.Random) -> str:
    """A plausible string for a property called ``key``."""
    name = (key or "").lower()
    if "email" in name:
        return _FORMATS["email"](rng)
    if any(part in name for part in ("url", "uri", "link", "href", "website")):
        return _FORMATS["uri"](rng)
    if name.endswith("name") or name in ("author", "owner", "assignee", "user"):
        return f"{rng.choice(_FIRST)} {rng.choice(_LAST)}"
    if name in ("id", "uuid") or name.endswith(("_id", "Id")):
        return f"{rng.choice(_WORDS)[:3]}-{rng.randint(100, 99_999)}"
    if any(part in name for part in _LONG_TEXT_KEYS):
        return _sentence_text(rng)
    if rng.random() < 0.15:
        return _sentence_text(rng)
    return " ".join(rng.choice(_WORDS) for _ in range(rng.randint(1, 3)))


def _date(rng: random.Random) -> dt.date:
    return dt.date(2020, 1, 1) + dt.timedelta(days=rng.randint(0, 2_000))


def _date_time(rng: random.Random) -> str:
    moment = dt.datetime.combine(_date(rng), dt.time(rng.randint(0, 23), rng.choice((0, 15, 30))))
    return moment.strftime("%Y-%m-%dT%H:%M:00") + rng.choice(("Z", "+02:00", "-05:00"))


_FORMATS: Final[dict[str, Callable[[random.Random], str]]] = {
    "date": lambda rng: _date(rng).isoformat(),
    "date-time": _date_time,
    "time": lambda rng: f"{rng.randint(0, 23):02d}:{rng.choice((0, 15, 30, 45)):02d}:00Z",
    "email": lambda rng: f"{rng.choice(_WORDS)}.{rng.randint(1, 99)}@example.com",
    "idn-email": lambda rng: f"{rng.choice(_WORDS)}@example.org",
    "uri": lambda rng: f"https://example.com/{rng.choice(_WORDS)}/{rng.randint(1, 999)}",
    "iri": lambda rng: f"https://example.com/{rng.choice(_WORDS)}",
    "uri-reference": lambda rng: f"/{rng.choice(_WORDS)}/{rng.randint(1, 999)}",
    "iri-reference": lambda rng: f"/{rng.choice(_WORDS)}",
    "uri-template": lambda rng: f"https://example.com/{rng.choice(_WORDS)}/{{id}}",
    "url": lambda rng: f"https://example.com/{rng.choice(_WORDS)}",
    "uuid": lambda rng: str(uuid.UUID(int=rng.getrandbits(128), version=4)),
    "hostname": lambda rng: f"{rng.choice(_WORDS).replace('é', 'e')}.example.com",
    "idn-hostname": lambda rng: "example.com",
    "ipv4": lambda rng: ".".join(str(rng.randint(1, 254)) for _ in range(4)),
    "ipv6": lambda rng: f"2001:db8::{rng.randint(1, 0xFFFF):x}",
    "duration": lambda rng: f"P{rng.randint(1, 30)}D",
    "regex": lambda rng: "^[a-z]+$",
    "json-pointer": lambda rng: f"/{rng.choice(_WORDS)}/0",
    "relative-json-pointer": lambda rng: "0/a",
    "color": lambda rng: rng.choice(("red", "blue", "#00ff00")),
    "phone": lambda rng: f"+1-555-{rng.randint(100, 999)}-{rng.randint(1000, 9999)}",
}


# --------------------------------------------------------------------------- #
# Regular expressions
# --------------------------------------------------------------------------- #


def _sre() -> tuple[Any, Any]:
    """The regex parser and its constants (``re._parser`` from 3.11, ``sre_parse`` before)."""
    try:
        return importlib.import_module("re._parser"), importlib.import_module("re._constants")
    except ImportError:  # Python 3.10
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            return importlib.import_module("sre_parse"), importlib.import_module("sre_constants")


_PLAIN: Final = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
_CATEGORY_CHARS: Final = {
    "CATEGORY_DIGIT": "0123456789",
    "CATEGORY_NOT_DIGIT": "abcxyzABC_-",
    "CATEGORY_WORD": "abcdefxyzABC0123_",
    "CATEGORY_NOT_WORD": " -.:/",
    "CATEGORY_SPACE": " ",
    "CATEGORY_NOT_SPACE": "abcxyz0123-_",
}


def regex_example(pattern: str, rng: random.Random, *, max_extra: int = 3) -> str:
    """A string that matches ``pattern`` (Python syntax), built from its parse tree.

    Anchors and look-arounds are ignored (a caller validates the result); an unbounded
    repetition repeats at most ``max_extra`` times more than its minimum.

    Raises:
        re.error: ``pattern`` is not a Python regular expression.
    """
    parser, constants = _sre()
    tree = parser.parse(pattern)
    groups: dict[int, str] = {}
    out: list[str] = []
    _emit(list(tree), rng, groups, out, constants.MAXREPEAT, max_extra)
    return "".join(out)


def _emit(
    items: list[Any],
    rng: random.Random,
    groups: dict[int, str],
    out: list[str],
    maxrepeat: int,
    max_extra: int,
) -> None:
    for op, arg in items:
        name = str(op)
        if name == "LITERAL":
            out.append(chr(arg))
        elif name == "NOT_LITERAL":
            out.append(rng.choice([c for c in _PLAIN if ord(c) != arg]))
        elif name == "ANY":
            out.append(rng.choice(_PLAIN))
        elif name == "IN":
            out.append(_pick_in(list(arg), rng))
        elif name == "BRANCH":
            _emit(list(rng.choice(arg[1])), rng, groups, out, maxrepeat, max_extra)
        elif name == "SUBPATTERN":
            start = len(out)
            _emit(list(arg[-1]), rng, groups, out, maxrepeat, max_extra)
            if arg[0] is not None:
                groups[arg[0]] = "".join(out[start:])
        elif name == "ATOMIC_GROUP":
            _emit(list(arg), rng, groups, out, maxrepeat, max_extra)
        elif name in ("MAX_REPEAT", "MIN_REPEAT", "POSSESSIVE_REPEAT"):
            low, high, sub = arg
            top = low + max_extra if high == maxrepeat else min(high, low + max_extra)
            for _ in range(rng.randint(low, max(low, top))):
                _emit(list(sub), rng, groups, out, maxrepeat, max_extra)
        elif name == "GROUPREF":
            out.append(groups.get(arg, ""))
        elif name == "GROUPREF_EXISTS":
            chosen = arg[1] if arg[0] in groups else arg[2]
            if chosen is not None:
                _emit(list(chosen), rng, groups, out, maxrepeat, max_extra)
        elif name == "CATEGORY":
            out.append(rng.choice(_CATEGORY_CHARS.get(str(arg), "a")))
        # AT (anchors), ASSERT and ASSERT_NOT (look-arounds) emit nothing.


def _pick_in(items: list[Any], rng: random.Random) -> str:
    """One character from a character class ``[...]``."""
    negate = any(str(op) == "NEGATE" for op, _ in items)
    members = [(str(op), arg) for op, arg in items if str(op) != "NEGATE"]
    if negate:
        allowed = [c for c in _PLAIN + " -_." if not _in_class(c, members)]
        return rng.choice(allowed or ["~"])
    if not members:
        return "a"
    op, arg = rng.choice(members)
    if op == "LITERAL":
        return chr(arg)
    if op == "RANGE":
        low, high = arg
        # Stay printable: a range like [\x00-\uffff] would otherwise give control characters.
        if low < 0x20 <= high:
            low = 0x20
        return chr(rng.randint(low, min(high, low + 94)))
    if op == "CATEGORY":
        return rng.choice(_CATEGORY_CHARS.get(str(arg), "a"))
    return "a"


def _in_class(char: str, members: list[tuple[str, Any]]) -> bool:
    code = ord(char)
    for op, arg in members:
        if op == "LITERAL" and code == arg:
            return True
        if op == "RANGE" and arg[0] <= code <= arg[1]:
            return True
        if op == "CATEGORY" and char in _CATEGORY_CHARS.get(str(arg), ""):
            return True
    return False


# --------------------------------------------------------------------------- #
# The generator
# --------------------------------------------------------------------------- #


class _TooBig(Exception):
    """The instance grew past the node or depth budget."""


def _is_number(value: Any) -> TypeGuard[int | float]:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


class _Generator:
    """One walk over a schema, producing one candidate instance."""

    def __init__(
        self, root: Any, rng: random.Random, max_nodes: int, optional: float = 0.6
    ) -> None:
        self.root = root
        self.rng = rng
        self.max_nodes = max_nodes
        self.optional = optional
        self.nodes = 0
        self.base = document_address(root)

    # -- references -------------------------------------------------------------------

    def resolve(self, node: Any) -> Any:
        try:
            return follow_refs(self.root, node, self.base)
        except (LookupError, SchemaError) as exc:
            raise GenerationError(str(exc)) from None

    # -- values -----------------------------------------------------------------------

    def value(self, node: Any, depth: int, key: str | None = None) -> Any:
        self.nodes += 1
        if self.nodes > self.max_nodes or depth > HARD_DEPTH:
            raise _TooBig
        if node is True or node == {}:
            return _text_for(key, self.rng)
        if node is False:
            raise GenerationError("the schema is `false`: nothing is valid")
        node = self.resolve(node)
        if not isinstance(node, dict):
            return _text_for(key, self.rng)
        if isinstance(node.get("allOf"), list):
            merged = {k: v for k, v in node.items() if k != "allOf"}
            for part in node["allOf"]:
                part = self.resolve(part)
                if isinstance(part, dict):
                    merged = merge_nodes(merged, part)
            return self.value(merged, depth, key)
        if "const" in node:
            return copy.deepcopy(node["const"])
        if isinstance(node.get("enum"), list) and node["enum"]:
            return copy.deepcopy(self.rng.choice(node["enum"]))
        for keyword in ("anyOf", "oneOf"):
            branches = node.get(keyword)
            if isinstance(branches, list) and branches:
                rest = {k: v for k, v in node.items() if k != keyword}
                branch = self.resolve(self.rng.choice(branches))
                if branch is False:
                    raise GenerationError(f"a `false` branch of {keyword}")
                combined = merge_nodes(rest, branch) if isinstance(branch, dict) else rest
                return self.value(combined, depth, key)
        kind = self._type(node)
        if kind == "object":
            return self.object(node, depth)
        if kind == "array":
            return self.array(node, depth)
        if kind == "string":
            return self.string(node, key)
        if kind in ("integer", "number"):
            return self.number(node, integer=kind == "integer")
        if kind == "boolean":
            return self.rng.random() < 0.5
        return None

    def _type(self, node: dict[str, Any]) -> str:
        declared = node.get("type")
        if isinstance(declared, list) and declared:
            real = [t for t in declared if t != "null"]
            if real and self.rng.random() < 0.85:
                return str(self.rng.choice(real))
            return str(self.rng.choice(declared))
        if isinstance(declared, str):
            return declared
        if any(k in node for k in ("properties", "required", "additionalProperties")):
            return "object"
        if any(k in node for k in ("patternProperties", "minProperties")):
            return "object"
        if any(k in node for k in ("items", "prefixItems", "minItems", "maxItems")):
            return "array"
        if any(k in node for k in ("pattern", "format", "minLength", "maxLength")):
            return "string"
        if any(k in node for k in ("minimum", "maximum", "multipleOf")):
            return "number"
        return "string"

    def object(self, node: dict[str, Any], depth: int) -> dict[str, Any]:
        rng = self.rng
        props = node.get("properties") if isinstance(node.get("properties"), dict) else {}
        assert isinstance(props, dict)
        required = [k for k in node.get("required", []) or [] if isinstance(k, str)]
        extra_schema = node.get("additionalProperties", True)
        patterns = node.get("patternProperties")
        patterns = patterns if isinstance(patterns, dict) else {}
        low = int(node.get("minProperties", 0) or 0)
        high = node.get("maxProperties")
        p_optional = self.optional if depth < SOFT_DEPTH else 0.0
        chosen = [k for k in props if k in required or rng.random() < p_optional]
        chosen += [k for k in required if k not in props]
        deps = node.get("dependentRequired") or node.get("dependencies") or {}
        if isinstance(deps, dict):
            for name in list(chosen):
                needed = deps.get(name)
                if isinstance(needed, list):
                    chosen += [k for k in needed if isinstance(k, str) and k not in chosen]
        spare = [k for k in props if k not in chosen]
        while len(chosen) < low and spare:
            chosen.append(spare.pop(0))
        extra = 0
        while len(chosen) < low and (patterns or extra_schema is not False):
            extra += 1
            if patterns:
                pattern = rng.choice(list(patterns))
                try:
                    name = regex_example(pattern, rng)
                except Exception as exc:
                    raise GenerationError(f"patternProperties {pattern!r}: {exc}") from None
            else:
                name = f"extra_{extra}"
            if name not in chosen:
                chosen.append(name)
            if extra > low + 10:
                break
        if isinstance(high, int) and len(chosen) > high:
            keep = [k for k in chosen if k in required]
            chosen = keep + [k for k in chosen if k not in keep][: max(0, high - len(keep))]
        out: dict[str, Any] = {}
        for name in chosen:
            if name in props:
                sub = props[name]
            else:
                sub = next(
                    (s for p, s in patterns.items() if _search(p, name)),
                    extra_schema if isinstance(extra_schema, dict) else True,
                )
            out[name] = self.value(sub, depth + 1, name)
        return out

    def array(self, node: dict[str, Any], depth: int) -> list[Any]:
        rng = self.rng
        items = node.get("items", True)
        prefix = node.get("prefixItems")
        rest: Any = items
        if isinstance(items, list):  # the tuple form of drafts 4 to 2019-09
            prefix, rest = items, node.get("additionalItems", True)
        prefix = prefix if isinstance(prefix, list) else []
        low = int(node.get("minItems", 0) or 0)
        high = node.get("maxItems")
        top = low if depth >= SOFT_DEPTH else max(low, 1) + 2
        if isinstance(high, int):
            top = min(top, high)
        if rest is False:
            top = min(top, len(prefix))
        count = rng.randint(min(max(low, 1), top), max(top, low)) if top > 0 else low
        out: list[Any] = []
        seen: set[str] = set()
        tries = 0
        while len(out) < count:
            index = len(out)
            sub = prefix[index] if index < len(prefix) else rest
            element = self.value(sub, depth + 1)
            if node.get("uniqueItems") is True:
                fingerprint = json.dumps(element, sort_keys=True, default=str)
                tries += 1
                if fingerprint in seen:
                    if tries > 5 * count + 10:
                        break
                    continue
                seen.add(fingerprint)
            out.append(element)
        if "contains" in node and (not isinstance(high, int) or len(out) < high):
            out.append(self.value(node["contains"], depth + 1))
        return out

    def string(self, node: dict[str, Any], key: str | None) -> str:
        rng = self.rng
        fmt = node.get("format")
        pattern = node.get("pattern")
        if isinstance(fmt, str) and fmt in _FORMATS:
            text = _FORMATS[fmt](rng)
        elif isinstance(pattern, str):
            return self._patterned(pattern, node.get("minLength"), node.get("maxLength"))
        else:
            text = _text_for(key, rng)
        low = node.get("minLength")
        high = node.get("maxLength")
        if isinstance(low, int) and len(text) < low:
            filler = " ".join(rng.choice(_WORDS) for _ in range(low // 4 + 2))
            text = (text + " " + filler)[: max(low, len(text))]
            while len(text) < low:
                text += "x"
        if isinstance(high, int) and len(text) > high:
            text = text[:high].rstrip() if high > 0 else ""
            if isinstance(low, int) and len(text) < low:
                text = text.ljust(low, "x")
        return text

    def _patterned(self, pattern: str, low: Any, high: Any) -> str:
        """A string matching ``pattern``, within the length bounds when a few tries allow."""
        low = low if isinstance(low, int) else 0
        high = high if isinstance(high, int) else None
        text = ""
        for attempt in range(8):
            # Longer repetitions on later tries, for patterns under a minLength.
            extra = 3 if attempt < 3 else low + 3 * attempt
            try:
                text = regex_example(pattern, self.rng, max_extra=extra)
            except Exception as exc:
                raise GenerationError(f"pattern {pattern!r}: {exc}") from None
            if len(text) >= low and (high is None or len(text) <= high):
                return text
        return text

    def number(self, node: dict[str, Any], *, integer: bool) -> int | float:
        rng = self.rng
        low, high = _bounds(node, 1 if integer else 0.01)
        if low is None and high is None:
            low, high = 0.0, 1000.0 if integer else 500.0
        elif low is None:
            low = high - 100 if high is not None else 0.0
        elif high is None:
            high = low + 100
        assert low is not None
        assert high is not None
        if high < low:
            raise GenerationError(f"empty numeric range [{low}, {high}]")
        multiple = node.get("multipleOf")
        if _is_number(multiple) and multiple > 0:
            first, last = math.ceil(low / multiple), math.floor(high / multiple)
            if last < first:
                raise GenerationError(f"no multiple of {multiple} in [{low}, {high}]")
            value = rng.randint(first, min(last, first + 1_000)) * multiple
            if isinstance(multiple, float):
                digits = max(0, -math.floor(math.log10(multiple))) + 2
                value = round(value, digits)
            return int(value) if integer else value
        if integer or (rng.random() < 0.3 and math.ceil(low) <= math.floor(high)):
            if math.ceil(low) > math.floor(high):
                raise GenerationError(f"no integer in [{low}, {high}]")
            return rng.randint(math.ceil(low), math.floor(high))
        return round(rng.uniform(low, high), 2) if high - low > 0.02 else float(low)


def _bounds(node: dict[str, Any], step: float) -> tuple[float | None, float | None]:
    """The inclusive range of a number node; ``step`` stands in for "just above" a bound."""
    low = node.get("minimum") if _is_number(node.get("minimum")) else None
    high = node.get("maximum") if _is_number(node.get("maximum")) else None
    ex_low, ex_high = node.get("exclusiveMinimum"), node.get("exclusiveMaximum")
    if ex_low is True and low is not None:  # draft 4: a flag beside minimum
        low = low + step
    elif _is_number(ex_low):
        low = ex_low + step if low is None else max(low, ex_low + step)
    if ex_high is True and high is not None:
        high = high - step
    elif _is_number(ex_high):
        high = ex_high - step if high is None else min(high, ex_high - step)
    return low, high


def _search(pattern: str, text: str) -> bool:
    import re

    try:
        return re.search(pattern, text) is not None
    except re.error:
        return False


def generate(
    schema: Any, rng: random.Random, *, max_nodes: int = MAX_NODES, optional: float = 0.6
) -> Any:
    """One candidate instance of ``schema`` (not yet validated).

    Args:
        schema: a JSON Schema.
        rng: source of randomness.
        max_nodes: most JSON values the instance may hold.
        optional: probability of including each optional property (near the root).

    Raises:
        GenerationError: the generator cannot build a value for this schema.
    """
    try:
        return _Generator(schema, rng, max_nodes, optional).value(schema, 0)
    except _TooBig:
        raise GenerationError(
            f"the instance grew past {max_nodes} values or {HARD_DEPTH} levels "
            "(a schema that requires infinite recursion?)"
        ) from None
    except RecursionError:
        raise GenerationError("the schema nests too deeply to walk") from None


def fill_defaults(schema: Any, value: Any) -> Any:
    """A copy of ``value`` with the declared ``default`` of every absent property filled in.

    Follows ``properties`` (also inside ``allOf`` and through ``$ref``) and ``items``;
    ``anyOf``/``oneOf`` are left alone, since which branch applies is a guess.
    """
    return _fill(_Generator(schema, random.Random(0), MAX_NODES), schema, value, 0)


def _fill(walker: _Generator, node: Any, value: Any, depth: int) -> Any:
    try:
        node = walker.resolve(node)
        parts = [node] + [walker.resolve(p) for p in _list(node, "allOf")]
    except GenerationError:
        return value
    if depth > HARD_DEPTH or not isinstance(node, dict):
        return value
    if isinstance(value, dict):
        out = dict(value)
        for part in parts:
            props = part.get("properties") if isinstance(part, dict) else None
            for key, sub in props.items() if isinstance(props, dict) else ():
                if key in out:
                    out[key] = _fill(walker, sub, out[key], depth + 1)
                    continue
                with contextlib.suppress(GenerationError):
                    sub = walker.resolve(sub)
                    if isinstance(sub, dict) and "default" in sub:
                        out[key] = copy.deepcopy(sub["default"])
        return out
    items = node.get("items")
    if isinstance(value, list) and isinstance(items, dict):
        return [_fill(walker, items, element, depth + 1) for element in value]
    return value


def _list(node: Any, key: str) -> list[Any]:
    found = node.get(key) if isinstance(node, dict) else None
    return found if isinstance(found, list) else []


# --------------------------------------------------------------------------- #
# Instances
# --------------------------------------------------------------------------- #


@dataclass(frozen=True)
class Instances:
    """Valid instances of one schema.

    Attributes:
        values: the instances, each as it reads back from JSON; pairwise distinct.
        sources: where each came from: ``"example"``, ``"generator"`` or ``"hypothesis"``.
    """

    values: list[Any]
    sources: list[str]

    @property
    def source(self) -> str:
        """The sources, joined with ``+`` in order of first use (``"example+generator"``)."""
        return "+".join(dict.fromkeys(self.sources))


def _round_trip(value: Any) -> Any:
    """The value as it reads back from JSON (tuples become lists, keys strings)."""
    return json.loads(json.dumps(value, ensure_ascii=False, allow_nan=False))


def make_instances(
    schema: Any,
    *,
    count: int,
    seed: int | str,
    examples: bool = True,
    hypothesis: bool = False,
    seconds: float | None = 5.0,
) -> Instances:
    """Up to ``count`` distinct valid instances of ``schema``, seeded.

    Args:
        schema: a JSON Schema (dict or bool).
        count: how many instances are wanted.
        seed: seeds the generator (the same seed gives the same instances).
        examples: take the schema's own valid ``examples`` first.
        hypothesis: when the generator finds nothing, ask hypothesis-jsonschema.
        seconds: wall-time limit for the whole schema (``None``: no limit).

    Returns:
        At least one instance.

    Raises:
        GenerationError: no valid instance was found (the message says why), the
            schema is unusable, or the time limit ran out.
    """
    with warnings.catch_warnings():
        # Patterns in real-world schemas make `re` warn (FutureWarning: set difference).
        warnings.simplefilter("ignore")
        return _make_instances(schema, count, seed, examples, hypothesis, seconds)


def _make_instances(
    schema: Any,
    count: int,
    seed: int | str,
    examples: bool,
    hypothesis: bool,
    seconds: float | None,
) -> Instances:
    try:
        check = validator(schema)
    except RecursionError:
        raise GenerationError("the schema nests too deeply to check") from None
    except Exception as exc:
        raise GenerationError(f"invalid schema: {_first_line(exc)}") from None
    values: list[Any] = []
    sources: list[str] = []
    seen: set[str] = set()

    def keep(value: Any, source: str) -> None:
        try:
            value = _round_trip(value)
        except (TypeError, ValueError):
            return
        fingerprint = json.dumps(value, sort_keys=True)
        if fingerprint not in seen and is_valid(check, value):
            seen.add(fingerprint)
            values.append(value)
            sources.append(source)

    reason = "no attempt"
    try:
        with time_limit(seconds):
            given = schema.get("examples") if examples and isinstance(schema, dict) else None
            for example in given if isinstance(given, list) else []:
                if len(values) >= count:
                    break
                keep(example, "example")
            rng = random.Random(f"instances:{seed}")
            failures = 0
            while len(values) < count and failures < ATTEMPTS:
                try:
                    # Fewer optional properties after failures: `oneOf` branches that
                    # differ only in `required` match one at a time only in lean objects.
                    candidate = generate(schema, rng, optional=(0.6, 0.3, 0.0)[failures % 3])
                except GenerationError as exc:
                    reason = str(exc)
                    failures += 1
                    continue
                before = len(values)
                keep(candidate, "generator")
                if len(values) == before:
                    failures += 1
                    if not is_valid(check, candidate):
                        reason = (
                            f"generated values do not validate: {_why_invalid(check, candidate)}"
                        )
                    else:
                        reason = "generated values repeat"
            if not values and hypothesis:
                for value in _hypothesis_values(schema, seed, count):
                    keep(value, "hypothesis")
    except TimeLimitExceeded:
        if not values:
            raise GenerationError(f"no instance within the time limit of {seconds:g} s") from None
    if not values:
        raise GenerationError(reason)
    return Instances(values, sources)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0][:200] if text else ''}"


def _hypothesis_values(schema: Any, seed: int | str, count: int) -> list[Any]:
    """Instances drawn by hypothesis-jsonschema, seeded; ``[]`` when it is missing or fails."""
    try:
        from hypothesis import HealthCheck, Phase, given, settings
        from hypothesis import seed as fix_seed
        from hypothesis_jsonschema import from_schema
    except ImportError:
        return []
    found: list[Any] = []

    @fix_seed(random.Random(f"hypothesis:{seed}").getrandbits(64))
    @settings(
        max_examples=max(count, 1),
        database=None,
        deadline=None,
        derandomize=False,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(from_schema(schema))
    def draw(value: Any) -> None:
        found.append(value)

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            draw()
    except Exception:  # the schema is beyond hypothesis-jsonschema; say "no instance"
        return found
    return found
