"""jsonschema-rs answering "is this valid?" with python-jsonschema's verdicts.

:class:`repairllm.schema.Schema` asks :class:`FastValidator` first and python-jsonschema
only when the fast one cannot answer (``None``) or, for the issues users and models
read, when it says invalid. The two must agree on every value, so jsonschema-rs is set
up to check what python-jsonschema checks and nothing else:

- formats: each format python-jsonschema's ``FORMAT_CHECKER`` checks (those whose
  checker library is installed) is checked by that very checker, called back from
  Rust; every other format jsonschema-rs knows is switched off, unknown ones ignored.
  The common ones (``date``, ``date-time``, ``time``, ``email``, ``uuid``, ``uri``)
  first meet a Rust precheck, a regex only strings the checker accepts can match, so
  that a valid value costs no call into Python (:data:`_PRECHECKS`).
- ``pattern`` is Python's ``re.search`` (Rust's regex dialect differs: ``$`` before a
  final newline, ``\\d`` on non-ASCII digits, ``{,3}`` it cannot read);
  ``multipleOf`` is python-jsonschema's own keyword (jsonschema-rs rounds
  ``0.07 / 0.01``); where the schema has ``patternProperties``, that keyword and
  ``additionalProperties`` are python-jsonschema's too (both read keys with Python's
  regexes), and jsonschema-rs keeps the rest of the schema.
- ``contentMediaType``/``contentEncoding``/``contentSchema`` are annotations for
  python-jsonschema in every draft and are left out (jsonschema-rs asserts them in
  drafts 6 and 7).
- The dialect is python-jsonschema's choice (draft 2020-12 without ``$schema`` or with
  one it does not know). Draft 3, ``unevaluatedProperties`` beside
  ``patternProperties``, and any schema jsonschema-rs refuses to compile (a ``$ref``
  into another document, which it would not fetch) get no fast validator:
  :func:`build` returns ``None``, remembered with the schema by the caller.
- A value jsonschema-rs might read differently is never given to it: whatever
  ``orjson`` cannot write (integers past 64 bits, non-string keys, lone surrogates,
  nesting past 254 levels, where jsonschema-rs would also overflow the stack on very
  deep values) is answered by python-jsonschema. So is any value during whose check a
  Python keyword or format checker raised: python-jsonschema then raises the same.

NaN and infinity are not JSON and no parser of this library returns them; they are
the one value class where the two differ and nothing checks for them here.

``tests/test_fast_validator.py`` proves the agreement over the schema corpora with
generated valid and damaged values. Setting ``REPAIRLLM_FAST_VALIDATION=0`` in the
environment, or :func:`fast_validation` ``(False)`` in code, turns the fast path off
(the parser benchmark uses it to report its speed with and without jsonschema-rs).
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import jsonschema
import jsonschema_rs
import orjson

from .keywords import ONE_SCHEMA, SCHEMA_LIST, SCHEMA_MAP

__all__ = ["SHALLOW_TEXT", "FastValidator", "build", "fast_validation", "fits", "is_enabled"]

_enabled = os.environ.get("REPAIRLLM_FAST_VALIDATION", "1").strip().lower() not in (
    "0",
    "false",
    "no",
    "off",
)


def is_enabled() -> bool:
    """Whether the fast path is on (``REPAIRLLM_FAST_VALIDATION``, :func:`fast_validation`)."""
    return _enabled


@contextmanager
def fast_validation(enabled: bool) -> Iterator[None]:
    """Turn the jsonschema-rs fast path on or off inside the block (process-wide).

    For benchmarks and tests that compare the two validators; the verdicts are the
    same either way, only the speed differs.
    """
    global _enabled
    previous, _enabled = _enabled, enabled
    try:
        yield
    finally:
        _enabled = previous


_RS_CLASSES: dict[type[Any], type[jsonschema_rs.Validator]] = {
    jsonschema.Draft4Validator: jsonschema_rs.Draft4Validator,
    jsonschema.Draft6Validator: jsonschema_rs.Draft6Validator,
    jsonschema.Draft7Validator: jsonschema_rs.Draft7Validator,
    jsonschema.Draft201909Validator: jsonschema_rs.Draft201909Validator,
    jsonschema.Draft202012Validator: jsonschema_rs.Draft202012Validator,
}
_RS_DRAFTS: dict[type[Any], int] = {
    jsonschema.Draft4Validator: jsonschema_rs.Draft4,
    jsonschema.Draft6Validator: jsonschema_rs.Draft6,
    jsonschema.Draft7Validator: jsonschema_rs.Draft7,
    jsonschema.Draft201909Validator: jsonschema_rs.Draft201909,
    jsonschema.Draft202012Validator: jsonschema_rs.Draft202012,
}

#: Every format jsonschema-rs checks by itself; those python-jsonschema does not
#: check (no checker library, or not in that draft) are switched off.
_RS_FORMATS = frozenset(
    {
        "date",
        "date-time",
        "duration",
        "email",
        "hostname",
        "idn-email",
        "idn-hostname",
        "ipv4",
        "ipv6",
        "iri",
        "iri-reference",
        "json-pointer",
        "regex",
        "relative-json-pointer",
        "time",
        "uri",
        "uri-reference",
        "uri-template",
        "uuid",
    }
)
_CONTENT = frozenset({"contentMediaType", "contentEncoding", "contentSchema"})
_PATTERN_PROPERTIES = frozenset({"patternProperties"})
_UNEVALUATED = frozenset({"unevaluatedProperties"})
#: The deepest nesting handed to jsonschema-rs: the most ``orjson.dumps`` writes.
MAX_DEPTH = 254
SHALLOW_TEXT = 2 * MAX_DEPTH
"""Text no longer than this cannot hold JSON nested past MAX_DEPTH (see :func:`fits`)."""
_NODE_KEY = "x-repairllm-node"
_NODE_URI = "urn:repairllm:node"

# Set by a Python keyword or format checker that raised during a jsonschema-rs call
# (jsonschema-rs turns a raising keyword into a plain failure): the verdict is void.
_raised = threading.local()


class _Failed(ValueError):
    """What a Python keyword raises to tell jsonschema-rs "invalid"."""


def _void(exc: BaseException) -> _Failed:
    _raised.error = exc
    return _Failed("python-jsonschema raised; the fast verdict is void")


def _always(instance: str) -> bool:
    return True


def _constant(verdict: bool) -> Callable[[Any], bool]:
    def check(value: Any) -> bool:
        return verdict

    return check


def fits(text: str) -> bool:
    """Whether the value ``orjson.loads`` reads from ``text`` can go to jsonschema-rs as it
    is: such a value holds only string keys, no lone surrogate and integers of 64 bits at
    most (orjson refuses the rest), so only its depth is in doubt, and valid JSON nested
    ``d`` deep has at least ``d`` opening brackets in ``2 * d`` characters."""
    return len(text) <= SHALLOW_TEXT or text.count("{") + text.count("[") <= MAX_DEPTH


class FastValidator:
    """One compiled jsonschema-rs validator with python-jsonschema's semantics.

    Build with :func:`build`; :meth:`is_valid` answers ``True``/``False``, or ``None``
    when python-jsonschema must answer instead.
    """

    __slots__ = ("_check", "_context", "_voids", "bare")

    def __init__(self, check: Callable[[Any], bool], context: _Context, voids: bool) -> None:
        self._check = check
        self._context = context
        # Whether a keyword of python-jsonschema's runs inside the check and may raise,
        # voiding the verdict; without one, what jsonschema-rs says stands as it is.
        self._voids = voids
        # jsonschema-rs's own check, where nothing can void its verdict, for the caller
        # that has done what `is_valid` does first: the value is fit for jsonschema-rs
        # (see `fits`), and an exception (a format checker may raise) means "ask
        # python-jsonschema". None where a keyword of python-jsonschema's runs inside.
        self.bare: Callable[[Any], bool] | None = None if voids else check

    def is_valid(self, value: Any, read_from: str | None = None) -> bool | None:
        """The verdict on ``value``, or ``None`` where python-jsonschema must give it.

        ``read_from``: the text ``orjson.loads`` read ``value`` from, when it did; if it
        :func:`fits`, the check that the value is fit for jsonschema-rs (a
        serialization, a third of the whole on a short reply) is left out.
        """
        if read_from is None or not fits(read_from):
            try:
                orjson.dumps(value)
            except (TypeError, orjson.JSONEncodeError):
                return None
        voids = self._voids
        if voids:
            _raised.error = None
        try:
            verdict = self._check(value)
        except Exception:
            # A format checker raised (python-jsonschema raises the same), or a value
            # jsonschema-rs refuses.
            return None
        if voids and _raised.error is not None:
            _raised.error = None
            return None
        return verdict

    def for_node(self, node: Any) -> FastValidator | None:
        """A validator for ``node``, a sub-schema whose ``$ref`` resolve against the root.

        ``None`` when jsonschema-rs cannot compile it.
        """
        return self._context.compile_node(node)


class _Context:
    """What the validators of one root schema share: dialect, formats, keywords."""

    def __init__(self, root: Any, py_validator: Any) -> None:
        cls = type(py_validator)
        self.py_class = cls
        self.rs_class = _RS_CLASSES[cls]
        self.draft = _RS_DRAFTS[cls]
        checker: jsonschema.FormatChecker = cls.FORMAT_CHECKER
        formats: dict[str, Callable[..., bool]] = dict.fromkeys(_RS_FORMATS, _always)
        for name in checker.checkers:
            formats[name] = _format_callback(checker, name)
        self.formats = formats
        # Where python-jsonschema's patternProperties and additionalProperties run, they
        # read the schema as it stands; elsewhere the document is rewritten for speed.
        self.rewrite = not (isinstance(root, dict) and _has_keywords(root, _PATTERN_PROPERTIES))
        self.prechecks = {
            name: regex for name, regex in _PRECHECKS.items() if name in checker.checkers
        }
        pattern = _PATTERN_KEY if self.rewrite else "pattern"
        self.keywords: dict[str, type[Any]] = {
            pattern: _Pattern,
            "multipleOf": _python_keyword(cls, "multipleOf", py_validator),
        }
        if not self.rewrite:
            for name in ("patternProperties", "additionalProperties"):
                self.keywords[name] = _python_keyword(cls, name, py_validator)
        self.python_keywords = frozenset(self.keywords) - {_PATTERN_KEY, "pattern"}
        self.drop = _CONTENT | _foreign(cls)
        self.root = self.document(root)
        if isinstance(self.root, dict) and "$schema" in self.root:
            # python-jsonschema falls back to 2020-12 for a $schema it does not know;
            # jsonschema-rs would refuse it.
            self.root["$schema"] = cls.META_SCHEMA["$schema"]
        self.voids = self.runs_python(root)

    def runs_python(self, node: Any) -> bool:
        """Whether one of python-jsonschema's keywords (which may raise) may run where
        ``node`` is checked: its name anywhere in the document, reached by ``$ref`` or
        not, counts (a property of that name too, at the cost of some speed)."""
        try:
            text = orjson.dumps(node)
        except (TypeError, orjson.JSONEncodeError):
            return True
        return any(b'"%s"' % name.encode() in text for name in self.python_keywords)

    def document(self, node: Any) -> Any:
        """``node`` as jsonschema-rs is to read it (a copy; see :func:`_rewritten`)."""
        if not isinstance(node, dict):
            return node
        return _rewritten(node, self.drop, self.prechecks if self.rewrite else None)

    def compile(self, schema: Any, registry: jsonschema_rs.Registry | None = None) -> Any:
        return self.rs_class(
            schema,
            formats=self.formats,
            validate_formats=True,
            ignore_unknown_formats=True,
            keywords=self.keywords,
            registry=registry,
            offline=True,
        )

    def compile_node(self, node: Any) -> FastValidator | None:
        if isinstance(node, bool):
            return FastValidator(_constant(node), self, False)
        if not isinstance(node, dict) or not isinstance(self.root, dict):
            return None
        if self.rewrite and _has_keywords(node, _PATTERN_PROPERTIES):
            return None  # a node the root does not hold, with Rust's regexes
        if _switches_dialect({"x": node}, self.py_class):
            return None
        # The node goes into a copy of the root document, so that its "#/..." references
        # reach the root's definitions, as python-jsonschema's evolve(schema=node) does.
        document = {**self.root, _NODE_KEY: self.document(node)}
        try:
            registry = jsonschema_rs.Registry([(_NODE_URI, document)], draft=self.draft)
            rs = self.compile({"$ref": f"{_NODE_URI}#/{_NODE_KEY}"}, registry)
        except Exception:
            return None
        return FastValidator(rs.is_valid, self, self.voids or self.runs_python(node))


def build(root: Any, py_validator: Any) -> FastValidator | None:
    """The fast validator for ``root`` (checked by ``py_validator``), or ``None`` where
    jsonschema-rs cannot give python-jsonschema's verdicts on it."""
    if type(py_validator) not in _RS_CLASSES or not isinstance(root, (dict, bool)):
        return None
    if (
        isinstance(root, dict)
        and _has_keywords(root, _PATTERN_PROPERTIES)
        and _has_keywords(root, _UNEVALUATED)
    ):
        # unevaluatedProperties would not see what the Python patternProperties matched.
        return None
    if isinstance(root, dict) and _switches_dialect(root, type(py_validator)):
        return None
    try:
        context = _Context(root, py_validator)
        rs = context.compile(context.root)
    except Exception:
        # A custom metaschema, a $ref into another document ...
        return None
    return FastValidator(rs.is_valid, context, context.voids)


# -- the parts of the set-up ---------------------------------------------------------

# Regexes (ASCII, in the syntax both engines read alike) that only strings
# python-jsonschema's checker accepts can match: a string that matches is valid without
# a call into Python; any other is handed to the checker. Soundness (match => valid) is
# what tests/test_fast_validator.py proves, on strings drawn from each regex.
_YEAR = "(?:[0-9]{3}[1-9]|[0-9]{2}[1-9][0-9]|[0-9][1-9][0-9]{2}|[1-9][0-9]{3})"  # not 0000
_MONTH_DAY = (
    "(?:(?:0[13578]|1[02])-(?:0[1-9]|[12][0-9]|3[01])"
    "|(?:0[469]|11)-(?:0[1-9]|[12][0-9]|30)"
    "|02-(?:0[1-9]|1[0-9]|2[0-8]))"
)
_LEAP_YEAR = "(?:[0-9]{2}(?:0[48]|[2468][048]|[13579][26])|(?:0[48]|[2468][048]|[13579][26])00)"
_DATE = f"(?:{_YEAR}-{_MONTH_DAY}|{_LEAP_YEAR}-02-29)"
_TIME = (
    "(?:[01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](?:[.][0-9]+)?"
    "(?:[Zz]|[+-](?:[01][0-9]|2[0-3]):[0-5][0-9])"
)
_URI_CHAR = "(?:[a-zA-Z0-9_.~!$&'()*+,;=-]|%[0-9A-Fa-f]{2})"
_PATH_CHAR = "(?:[a-zA-Z0-9_.~!$&'()*+,;=:@-]|%[0-9A-Fa-f]{2})"
_QUERY_CHAR = "(?:[a-zA-Z0-9_.~!$&'()*+,;=:@/?-]|%[0-9A-Fa-f]{2})"
_HEX = "[0-9a-fA-F]"
_PRECHECKS: dict[str, str] = {
    "date": f"^{_DATE}$",
    "date-time": f"^{_DATE}[Tt]{_TIME}$",
    "time": f"^{_TIME}$",
    "email": "@",
    "idn-email": "@",
    "uuid": f"^{_HEX}{{8}}-{_HEX}{{4}}-{_HEX}{{4}}-{_HEX}{{4}}-{_HEX}{{12}}$",
    "uri": (
        f"^[a-zA-Z][a-zA-Z0-9+.-]*://{_URI_CHAR}*(?::[0-9]*)?(?:/{_PATH_CHAR}*)*"
        f"(?:[?]{_QUERY_CHAR}*)?(?:#{_QUERY_CHAR}*)?$"
    ),
}
_PATTERN_KEY = "x-repairllm-pattern"


_DATA = frozenset({"enum", "const", "default", "examples"})


def _foreign(cls: type[Any]) -> frozenset[str]:
    """Keywords of other dialects that python-jsonschema ignores in ``cls``'s.

    jsonschema-rs honours some of them anyway (``dependencies`` in 2020-12). Draft 4's
    ``exclusiveMaximum``/``exclusiveMinimum`` stay: they modify ``maximum``/``minimum``.
    """
    dialects: list[Any] = [jsonschema.Draft3Validator, *_RS_CLASSES]
    every: set[str] = set()
    for dialect in dialects:
        every.update(dialect.VALIDATORS)
    return frozenset(every - set(cls.VALIDATORS) - {"exclusiveMaximum", "exclusiveMinimum"})


def _rewritten(
    schema: dict[str, Any], drop: frozenset[str], prechecks: dict[str, str] | None
) -> dict[str, Any]:
    """A copy of ``schema`` for jsonschema-rs, every keyword at the same JSON pointer.

    The keywords in ``drop`` go: content keywords (python-jsonschema never asserts
    them) and those of other dialects (:func:`_foreign`). With ``prechecks``
    (``None``: nothing else changes), a ``pattern`` keyword is renamed to the keyword
    Python checks, which frees ``pattern`` for Rust's own engine, and a ``format``
    with a precheck becomes ``allOf: [..., {"anyOf": [{"pattern": precheck},
    {"format": name}]}]``: Rust's match, else python-jsonschema's checker.

    Every object a ``$ref`` could name as a schema is rewritten (see :func:`_nodes`).
    """
    out: dict[str, Any] = {}
    stack: list[tuple[dict[str, Any], dict[str, Any]]] = [(schema, out)]

    def copy(sub: Any) -> Any:
        if not isinstance(sub, dict):
            return sub
        target: dict[str, Any] = {}
        stack.append((sub, target))
        return target

    while stack:
        source, target = stack.pop()
        for key, value, kind in _children(source):
            if key in drop:
                continue
            if kind == "map":
                target[key] = {name: copy(sub) for name, sub in value.items()}
            elif kind == "list":
                target[key] = [copy(sub) for sub in value]
            elif kind == "one":
                target[key] = copy(value)
            elif prechecks is not None and key == "pattern" and isinstance(value, str):
                target[_PATTERN_KEY] = value
            else:
                target[key] = value
        name = source.get("format")
        if prechecks is not None and isinstance(name, str) and name in prechecks:
            del target["format"]
            check = {"anyOf": [{"pattern": prechecks[name]}, {"format": name}]}
            target["allOf"] = [*target.get("allOf", []), check]
    return out


def _children(node: dict[str, Any]) -> Iterator[tuple[str, Any, str]]:
    """``(keyword, value, kind)`` for each entry of a schema object.

    ``kind`` says where sub-schemas stand: ``"map"`` (an object of them: ``properties``),
    ``"list"``, ``"one"`` (the value is one), or ``""`` (data). An unknown keyword's
    object or list is taken for sub-schemas too: a ``$ref`` may point into it (draft 4
    schemas keep definitions under names of their own), and jsonschema-rs must read
    what it finds there as python-jsonschema does.
    """
    for key, value in node.items():
        if key in _DATA:
            yield key, value, ""
        elif key in SCHEMA_MAP and isinstance(value, dict):
            yield key, value, "map"
        elif key in SCHEMA_LIST and isinstance(value, list):
            yield key, value, "list"
        elif key == "dependencies" and isinstance(value, dict):
            yield key, value, "map"
        elif key in ONE_SCHEMA or isinstance(value, dict):
            yield key, value, "one"
        elif isinstance(value, list) and key not in ("required", "type"):
            yield key, value, "list"
        else:
            yield key, value, ""


def _nodes(schema: Any) -> Iterator[dict[str, Any]]:
    """Every object of ``schema`` jsonschema-rs may read as a schema (see :func:`_children`)."""
    todo = [schema]
    while todo:
        node = todo.pop()
        if not isinstance(node, dict):
            continue
        yield node
        for _key, value, kind in _children(node):
            if kind == "map":
                todo.extend(value.values())
            elif kind == "list":
                todo.extend(value)
            elif kind == "one":
                todo.append(value)


def _format_callback(checker: jsonschema.FormatChecker, name: str) -> Callable[[str], bool]:
    conforms = checker.conforms

    def check(instance: str) -> bool:
        return conforms(instance, name)

    return check


def _switches_dialect(root: dict[str, Any], cls: type[Any]) -> bool:
    """Whether a sub-schema of ``root`` names a dialect other than ``cls``'s.

    python-jsonschema switches to that dialect where it descends into such a node (its
    ``evolve`` reads ``$schema``); jsonschema-rs keeps the document's.
    """
    from jsonschema.validators import validator_for

    return any(
        node is not root
        and isinstance(node.get("$schema"), str)
        and validator_for({"$schema": node["$schema"]}, default=cls) is not cls
        for node in _nodes(root)
    )


def _has_keywords(schema: Any, names: frozenset[str]) -> bool:
    """Whether any of ``names`` stands as a keyword in ``schema`` (see :func:`_nodes`)."""
    return any(not names.isdisjoint(node) for node in _nodes(schema))


class _Pattern:
    """``pattern`` as python-jsonschema checks it: ``re.search`` on strings."""

    __slots__ = ("_search",)

    def __init__(self, parent_schema: Any, value: Any, schema_path: Any) -> None:
        self._search = re.compile(value).search

    def validate(self, instance: Any) -> None:
        if isinstance(instance, str) and self._search(instance) is None:
            raise _Failed("does not match")


def _python_keyword(cls: type[Any], name: str, py_validator: Any) -> type[Any]:
    """A jsonschema-rs keyword that runs python-jsonschema's own implementation."""
    function = cls.VALIDATORS[name]

    class Keyword:
        __slots__ = ("_parent", "_value")

        def __init__(self, parent_schema: Any, value: Any, schema_path: Any) -> None:
            self._parent = parent_schema
            self._value = value

        def validate(self, instance: Any) -> None:
            try:
                errors = function(py_validator, self._value, instance, self._parent)
                failed = next(iter(errors), None)
            except Exception as exc:
                raise _void(exc) from exc
            if failed is not None:
                raise _Failed(name)

    Keyword.__name__ = Keyword.__qualname__ = f"Python_{name}"
    return Keyword
