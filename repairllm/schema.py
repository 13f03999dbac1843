"""One view of whatever the caller calls a schema: a pydantic model, a type, or a JSON Schema.

:func:`compile_schema` turns any of them into a :class:`Schema` (cached), which knows
its JSON Schema form, validates values, and answers the questions the repair stages
ask while they walk a value: what types may stand here, which keys does this object
know, what schema applies to this key or that item.
"""

from __future__ import annotations

import json
import re
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

import jsonschema
import orjson
import pydantic
import referencing.exceptions
from jsonschema.validators import validator_for

from . import fast_validator
from .errors import SchemaError
from .fast_validator import FastValidator
from .keywords import ONE_SCHEMA, SCHEMA_LIST, SCHEMA_MAP
from .ledger import Issue, escape_pointer

__all__ = ["ANY", "JSON_TYPES", "NodeInfo", "Schema", "compile_schema", "without_keywords"]

JSON_TYPES = frozenset({"object", "array", "string", "number", "integer", "boolean", "null"})
#: "Any type": a node that constrains nothing.
ANY: frozenset[str] = JSON_TYPES

_MAX_REF_HOPS = 64


def checked_validator(root: Any) -> Any:
    """A ``jsonschema`` validator for ``root``, with format checking on.

    The dialect comes from ``$schema`` (draft 2020-12 when absent).

    Raises:
        jsonschema.SchemaError: ``root`` is not valid under its metaschema.
    """
    cls = validator_for(root, default=jsonschema.Draft202012Validator)
    cls.check_schema(root)
    return cls(root, format_checker=cls.FORMAT_CHECKER)


# -- references: the one reading of $ref, for the library and its benchmark ------------


def document_address(root: Any) -> str:
    """The address a schema document gives itself (``$id``, or draft 4's ``id``), unfragmented."""
    if not isinstance(root, dict):
        return ""
    base = root.get("$id") or root.get("id")
    return base.split("#", 1)[0] if isinstance(base, str) else ""


def lookup_ref(root: Any, ref: str, base: str = "") -> Any:
    """The node that ``ref`` names inside the document ``root`` (whose address is ``base``).

    Same-document references only: a JSON pointer fragment (``#/$defs/item``, with
    ``~0``/``~1`` and percent escapes) or a plain-name fragment (``#item``: an
    ``$anchor``, or an ``$id``/``id`` of ``#item``), optionally after the document's
    own address.

    Raises:
        LookupError: the reference points into another document or at nothing (why).
    """
    address, _, fragment = ref.partition("#")
    if address and address != base:
        raise LookupError(f"cannot resolve $ref {ref!r}: only refs into the same document")
    if fragment and not fragment.startswith("/"):
        found = _anchor(root, fragment)
        if found is None:
            raise LookupError(f"cannot resolve $ref {ref!r}: no such anchor")
        return found
    node: Any = root
    for raw in fragment.split("/")[1:]:
        part = unquote(raw.replace("~1", "/").replace("~0", "~"))
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            raise LookupError(f"cannot resolve $ref {ref!r}")
    return node


def _anchor(root: Any, name: str) -> Any:
    """The first node, depth first, named ``name`` by ``$anchor`` or a fragment ``$id``."""
    todo = [root]
    while todo:
        node = todo.pop()
        if isinstance(node, dict):
            # `id` is draft 4's spelling of `$id`.
            ids = (node.get("$id"), node.get("id"))
            if node.get("$anchor") == name or any(i in (name, "#" + name) for i in ids):
                return node
            todo.extend(reversed(list(node.values())))
        elif isinstance(node, list):
            todo.extend(reversed(node))
    return None


def follow_refs(root: Any, node: Any, base: str = "") -> Any:
    """``node`` with its ``$ref`` chain followed to a node without one.

    Keywords beside a ``$ref`` (allowed from draft 2019-09 on) apply together with the
    target's, so they are combined as ``allOf`` would combine them
    (:func:`merge_nodes`).

    Raises:
        LookupError: a reference in the chain cannot be resolved (why).
        SchemaError: the chain is longer than any real schema needs (a cycle).
    """
    hops = 0
    while isinstance(node, dict) and isinstance(node.get("$ref"), str):
        target = lookup_ref(root, node["$ref"], base)
        if len(node) > 1 and isinstance(target, dict):
            target = merge_nodes(target, {k: v for k, v in node.items() if k != "$ref"})
        node = target
        hops += 1
        if hops > _MAX_REF_HOPS:
            raise SchemaError(f"$ref chain longer than {_MAX_REF_HOPS}: a cycle?", node)
    return node


_MIN_KEYS = frozenset({"minimum", "exclusiveMinimum", "minLength", "minItems", "minProperties"})
_MAX_KEYS = frozenset({"maximum", "exclusiveMaximum", "maxLength", "maxItems", "maxProperties"})


def merge_nodes(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    """Two schema nodes combined about as ``allOf`` combines them.

    Properties present in both become an ``allOf`` of the two, ``required`` lists are
    joined, types and enums intersected, bounds tightened; any other keyword of ``b``
    is added where ``a`` lacks it.
    """
    out = dict(a)
    for key, value in b.items():
        if key not in out:
            out[key] = value
        elif key == "properties" and isinstance(value, dict) and isinstance(out[key], dict):
            props = dict(out[key])
            for name, sub in value.items():
                props[name] = {"allOf": [props[name], sub]} if name in props else sub
            out[key] = props
        elif key == "required" and isinstance(value, list) and isinstance(out[key], list):
            out[key] = list(dict.fromkeys([*out[key], *value]))
        elif key == "type":
            mine = {out[key]} if isinstance(out[key], str) else set(out[key])
            theirs = {value} if isinstance(value, str) else set(value)
            if "number" in mine and "integer" in theirs:
                mine.add("integer")
            if "number" in theirs and "integer" in mine:
                theirs.add("integer")
            out[key] = sorted(mine & theirs) or value
        elif key == "enum" and isinstance(value, list) and isinstance(out[key], list):
            both = [v for v in out[key] if v in value]
            out[key] = both or value
        elif key in _MIN_KEYS and _is_number(value) and _is_number(out[key]):
            out[key] = max(out[key], value)
        elif key in _MAX_KEYS and _is_number(value) and _is_number(out[key]):
            out[key] = min(out[key], value)
        elif key == "allOf" and isinstance(value, list) and isinstance(out[key], list):
            out[key] = [*out[key], *value]
    return out


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def json_type(value: Any) -> str:
    """The JSON type name of a Python value (``bool`` before ``int``, as JSON sees it)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


def type_matches(value: Any, types: frozenset[str]) -> bool:
    """Whether ``value`` is one of the JSON ``types`` (an integer is also a number)."""
    kind = json_type(value)
    if kind in types:
        return True
    if kind == "integer" and "number" in types:
        return True
    return kind == "number" and "integer" in types and float(value).is_integer()


@dataclass(frozen=True, slots=True)
class NodeInfo:
    """What the repair stages need to know about one schema node.

    Attributes:
        types: the JSON types allowed here (all of them when unconstrained).
        properties: declared properties of an object, merged across ``allOf``/``anyOf``/``oneOf``.
        additional: whether undeclared properties are allowed.
        enum: the allowed values when the node is an ``enum`` or ``const``, else ``None``.
    """

    types: frozenset[str]
    properties: Mapping[str, Any]
    additional: bool
    enum: tuple[Any, ...] | None


class Schema:
    """A compiled schema: JSON Schema form, validator, and navigation.

    Build one with :func:`compile_schema`; it is cached, so passing the same model or the
    same dict object again costs nothing.
    """

    def __init__(self, root: Any, adapter: pydantic.TypeAdapter[Any] | None = None) -> None:
        if not isinstance(root, (dict, bool)):
            raise SchemaError(
                f"a JSON Schema must be a dict or a bool, not {type(root).__name__}", root
            )
        self.root: Any = root
        self.adapter = adapter
        try:
            self.validator = checked_validator(root)
        except jsonschema.SchemaError as exc:
            where = "/" + "/".join(escape_pointer(p) for p in exc.absolute_path)
            raise SchemaError(f"invalid JSON Schema at {where}: {exc.message}", root) from exc
        except RecursionError as exc:
            raise SchemaError(
                "the schema nests too deeply to be checked against its metaschema", root
            ) from exc
        except (OverflowError, ValueError) as exc:
            # e.g. a `pattern` whose repetition count Python's engine cannot hold
            raise SchemaError(
                f"invalid JSON Schema: {type(exc).__name__}: {_first_line(exc)}", root
            ) from exc
        self._base = document_address(root)
        self._info: dict[int, tuple[Any, NodeInfo]] = {}
        self._sub: dict[int, tuple[Any, Any]] = {}
        self._resolved: dict[int, tuple[Any, Any]] = {}
        self._branches: dict[int, tuple[Any, list[Any]]] = {}
        # jsonschema-rs answers "is it valid?"; python-jsonschema writes the issues and
        # answers where jsonschema-rs cannot (see repairllm.fast_validator).
        self._fast = fast_validator.build(root, self.validator)
        # What the fast path of `repair` calls on valid JSON: jsonschema-rs alone, where
        # its verdict stands (FastValidator.bare), and pydantic does not build the value.
        self.bare_check = self._fast.bare if self._fast is not None and adapter is None else None
        self._fast_sub: dict[int, tuple[Any, FastValidator | None]] = {}

    # -- navigation --------------------------------------------------------------------

    def resolve(self, node: Any) -> Any:
        """Follow ``$ref`` (see :func:`follow_refs`) until a plain node is reached.

        An unresolvable reference yields ``{}`` (anything) here; validation reports it.
        The answer for a node is computed once, so the same node resolves to the same
        object (and its compiled validator is reused).
        """
        if not isinstance(node, dict) or "$ref" not in node:
            return node
        key = id(node)
        hit = self._resolved.get(key)
        if hit is not None and hit[0] is node:
            return hit[1]
        try:
            result = follow_refs(self.root, node, self._base)
        except LookupError:
            result = {}
        self._resolved[key] = (node, result)
        return result

    def branches(self, node: Any) -> list[Any]:
        """The alternatives of an ``anyOf``/``oneOf`` node (resolved), or ``[]``.

        Computed once per node: the same branch objects come back each time.
        """
        node = self.resolve(node)
        if not isinstance(node, dict):
            return []
        key = id(node)
        hit = self._branches.get(key)
        if hit is not None and hit[0] is node:
            return list(hit[1])
        out = self._compute_branches(node)
        self._branches[key] = (node, out)
        return list(out)

    def _compute_branches(self, node: dict[str, Any]) -> list[Any]:
        out: list[Any] = []
        for key in ("anyOf", "oneOf"):
            for branch in node.get(key, ()):
                resolved = self.resolve(branch)
                if isinstance(node, dict) and len(node) > 1:
                    # Keywords beside anyOf apply to every branch (e.g. a shared "type").
                    base = {k: v for k, v in node.items() if k not in ("anyOf", "oneOf")}
                    if isinstance(resolved, dict):
                        resolved = {**base, **resolved}
                out.append(resolved)
        return out

    def info(self, node: Any) -> NodeInfo:
        """What may stand at ``node``: types, properties, enum (cached per node)."""
        key = id(node)
        hit = self._info.get(key)
        if hit is not None and hit[0] is node:
            return hit[1]
        result = self._compute_info(node, depth=0)
        self._info[key] = (node, result)
        return result

    def _compute_info(self, node: Any, depth: int) -> NodeInfo:
        node = self.resolve(node)
        if node is True or node == {} or depth > 16:
            return NodeInfo(ANY, {}, True, None)
        if node is False or not isinstance(node, dict):
            return NodeInfo(frozenset(), {}, False, None)
        types: set[str] = set()
        props: dict[str, Any] = dict(node.get("properties") or {})
        additional = node.get("additionalProperties", True) is not False
        if node.get("unevaluatedProperties") is False and "additionalProperties" not in node:
            additional = False
        enum: tuple[Any, ...] | None = None
        if "const" in node:
            enum = (node["const"],)
        elif isinstance(node.get("enum"), list):
            enum = tuple(node["enum"])
        declared = node.get("type")
        if isinstance(declared, str):
            types.add(declared)
        elif isinstance(declared, list):
            types.update(t for t in declared if isinstance(t, str))
        if node.get("nullable") is True:  # OpenAPI 3.0 style, common in the wild
            types.add("null")
        if enum is not None and not types:
            types.update(json_type(v) for v in enum)
        subs = [self.resolve(b) for b in node.get("allOf", ())]
        alts = self.branches(node)
        for sub in [*subs, *alts]:
            sub_info = self._compute_info(sub, depth + 1)
            for name, prop in sub_info.properties.items():
                props.setdefault(name, prop)
            if sub in alts or not declared:
                types.update(sub_info.types)
            if sub_info.enum is not None and enum is None and sub in alts:
                enum = sub_info.enum
            if sub in alts:
                additional = additional or sub_info.additional
        if not types:
            if props or "additionalProperties" in node or "required" in node:
                types.add("object")
            elif "items" in node or "prefixItems" in node:
                types.add("array")
            else:
                types.update(ANY)
        if "number" in types:
            types.add("integer")
        return NodeInfo(frozenset(types), props, additional, enum)

    def child(self, node: Any, key: str) -> Any:
        """The schema of property ``key`` of an object at ``node``."""
        node = self.resolve(node)
        if not isinstance(node, dict):
            return node if node is False else {}
        info = self.info(node)
        if key in info.properties:
            return info.properties[key]
        for pattern, sub in (node.get("patternProperties") or {}).items():
            try:
                if re.search(pattern, key):
                    return sub
            except re.error:
                continue
        extra = node.get("additionalProperties")
        if isinstance(extra, dict):
            return extra
        for alt in self.branches(node):
            found = self.child(alt, key) if isinstance(alt, dict) and alt is not node else {}
            if found != {}:
                return found
        return {}

    def item(self, node: Any, index: int) -> Any:
        """The schema of element ``index`` of an array at ``node``."""
        node = self.resolve(node)
        if not isinstance(node, dict):
            return node if node is False else {}
        prefix = node.get("prefixItems")
        items = node.get("items")
        if isinstance(prefix, list):
            if index < len(prefix):
                return prefix[index]
            return items if isinstance(items, (dict, bool)) else {}
        if isinstance(items, list):  # draft 4-7 tuple form
            if index < len(items):
                return items[index]
            extra = node.get("additionalItems")
            return extra if isinstance(extra, (dict, bool)) else {}
        if isinstance(items, (dict, bool)):
            return items
        for alt in self.branches(node):
            found = self.item(alt, index) if alt is not node else {}
            if found != {}:
                return found
        return {}

    # -- validation --------------------------------------------------------------------

    def subvalidator(self, node: Any) -> Any:
        """A validator for a node of this schema (``$ref`` still resolved against the root)."""
        key = id(node)
        hit = self._sub.get(key)
        if hit is not None and hit[0] is node:
            return hit[1]
        sub = self.validator.evolve(schema=node)
        self._sub[key] = (node, sub)
        return sub

    def _fast_validator(self, node: Any) -> FastValidator | None:
        """jsonschema-rs for ``node`` (the root when ``None``), or ``None`` where it cannot say."""
        if not fast_validator.is_enabled():
            return None
        fast = self._fast
        if fast is None or node is None:
            return fast
        key = id(node)
        hit = self._fast_sub.get(key)
        if hit is not None and hit[0] is node:
            return hit[1]
        sub = fast.for_node(node)
        self._fast_sub[key] = (node, sub)
        return sub

    def is_valid(self, value: Any, node: Any = None, *, read_from: str | None = None) -> bool:
        """Whether ``value`` satisfies the schema (or the sub-schema ``node``).

        jsonschema-rs answers where it gives python-jsonschema's verdict (everywhere on
        JSON values, proven by tests/test_fast_validator.py); python-jsonschema answers
        the rest. ``value`` must be JSON: no NaN or infinity. ``read_from``: the text
        ``orjson.loads`` read ``value`` from, if it did (see :meth:`FastValidator.is_valid`).
        """
        fast = self._fast_validator(node)
        if fast is not None:
            verdict = fast.is_valid(value, read_from)
            if verdict is not None:
                return verdict
        validator = self.validator if node is None else self.subvalidator(node)
        with _validation_errors():
            return bool(validator.is_valid(value))

    def issues(self, value: Any, node: Any = None) -> list[Issue]:
        """Everything wrong with ``value`` against the JSON Schema (or its node ``node``),
        by JSON pointer from ``value``.

        Written by python-jsonschema (its wording is what users and models read), and
        only asked of it when the fast check finds something wrong.
        """
        fast = self._fast_validator(node)
        if fast is not None and fast.is_valid(value) is True:
            return []
        validator = self.validator if node is None else self.subvalidator(node)
        with _validation_errors():
            errors = sorted(
                validator.iter_errors(value), key=lambda e: (list(e.absolute_path), e.message)
            )
        return [_issue_from_jsonschema(e) for e in errors]

    def validate(self, value: Any) -> tuple[Any, list[Issue]]:
        """Validate ``value``; return the final value (a model instance for pydantic) and issues.

        With a pydantic model or type, the value is checked by pydantic in strict JSON mode
        (so ``"30"`` is *not* silently turned into 30: that is the align stage's job, and it
        writes a ledger entry); with a JSON Schema, by jsonschema with format checking.
        """
        if self.adapter is not None:
            try:
                data = _json_bytes(value)
            except (TypeError, ValueError, RecursionError) as exc:
                return value, [Issue("", f"not serialisable as JSON: {exc}", got=value)]
            try:
                return self.adapter.validate_json(data, strict=True), []
            except pydantic.ValidationError as exc:
                return value, [_issue_from_pydantic(e) for e in exc.errors()]
            except Exception as exc:
                # Pydantic turns ValueError/AssertionError in a validator into a
                # ValidationError; anything else a validator raises comes out unchanged.
                raise SchemaError(
                    f"a validator of the pydantic schema raised {type(exc).__name__}: "
                    f"{_first_line(exc)}"
                ) from exc
        issues = self.issues(value)
        return value, issues


@contextmanager
def _validation_errors() -> Iterator[None]:
    """Turn jsonschema's failures on an unusable schema into our SchemaError."""
    try:
        yield
    except referencing.exceptions.Unresolvable as exc:
        # The exception's text embeds the whole schema; name only the reference.
        ref = getattr(exc, "ref", None) or str(exc).split(" does not exist", 1)[0][:200]
        raise SchemaError(f"the schema has a $ref that cannot be resolved: {ref}") from exc
    except RecursionError as exc:
        raise SchemaError("the value or schema nests too deeply to validate") from exc
    except (OverflowError, ValueError) as exc:
        # A number past what a float holds (``multipleOf`` divides; ``1e999999``), or a
        # ``pattern``/``format: regex`` Python's engine refuses (``a{99999999999}``).
        raise SchemaError(
            f"the validator cannot check this value: {type(exc).__name__}: {_first_line(exc)}"
        ) from exc


def _json_bytes(value: Any) -> bytes:
    """``value`` as JSON for pydantic: orjson, or the standard library past 64-bit integers."""
    try:
        return orjson.dumps(value)
    except orjson.JSONEncodeError:
        # orjson refuses integers beyond 64 bits, which JSON (and pydantic) allow.
        return json.dumps(value, ensure_ascii=False, allow_nan=False).encode("utf-8")


def _first_line(exc: BaseException, limit: int = 200) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:limit] if text else ""


def _issue_from_jsonschema(error: jsonschema.ValidationError) -> Issue:
    path = "".join("/" + escape_pointer(p) for p in error.absolute_path)
    expected: Any = error.validator_value if error.validator != "$ref" else None
    if error.validator in ("properties", "items", "allOf"):
        expected = None
    message = error.message
    if error.validator == "type" and _wants_number(error.validator_value):
        message += _number_doubt(error.instance)
    return Issue(path, message, expected=_short(expected), got=_short(error.instance))


def _issue_from_pydantic(error: Any) -> Issue:
    loc = error.get("loc", ())
    path = "".join("/" + escape_pointer(p) for p in loc)
    got = error.get("input")
    kind = error.get("type")
    if kind == "missing":
        got = None
    message = error.get("msg", "invalid")
    if isinstance(kind, str) and kind.startswith(("int_", "float_", "decimal_")):
        message += _number_doubt(got)
    return Issue(path, message, expected=kind, got=_short(got))


def _wants_number(types: Any) -> bool:
    wanted = {types} if isinstance(types, str) else set(types) if isinstance(types, list) else set()
    return bool(wanted & {"number", "integer"})


# Numbers that people write two ways: "1,5" is 1.5 with a decimal comma, or 15 (or
# 1 and 5) to someone else; "1.234,5" is 1234.5 in most of Europe. Alignment converts
# only readings that are certain, so these stay text, and the issue says why.
_DECIMAL_COMMA = re.compile(r"[-+]?\d+,\d{1,2}|[-+]?\d+,\d{4,}")
_EUROPEAN = re.compile(r"[-+]?\d{1,3}(?:\.\d{3})+,\d+")


def _number_doubt(got: Any) -> str:
    """Why a string that looks like a number was not read as one ("" when it was not)."""
    if not isinstance(got, str) or len(got) > 40:
        return ""
    text = got.strip()
    if _EUROPEAN.fullmatch(text):
        return (
            "; not converted: it reads as a decimal comma with dots between thousands"
            f" ({text.replace('.', '').replace(',', '.')}), which is not certain"
        )
    if _DECIMAL_COMMA.fullmatch(text):
        whole, _, part = text.partition(",")
        return (
            f"; not converted: it is ambiguous (a decimal comma, {whole}.{part},"
            f" or a misplaced thousands separator, {whole}{part})"
        )
    return ""


def _short(value: Any, limit: int = 200) -> Any:
    """Keep issues small: long containers and strings are abbreviated in reports."""
    if isinstance(value, str) and len(value) > limit:
        return value[:limit] + "…"
    if isinstance(value, (dict, list)):
        try:
            text = orjson.dumps(value).decode()
        except (TypeError, orjson.JSONEncodeError):
            return repr(value)[:limit]
        return value if len(text) <= limit else text[:limit] + "…"
    return value


# -- rewriting ------------------------------------------------------------------------


def without_keywords(
    schema: Any,
    keywords: frozenset[str] | set[str],
    keep: Callable[[str, Any], bool] | None = None,
) -> Any:
    """A copy of ``schema`` without the given keywords, wherever they stand as keywords.

    A property that happens to be *named* like a keyword (``{"properties":
    {"pattern": ...}}``) is a name, not a keyword, and stays; so do enum values,
    defaults and examples. Used to leave out of a grammar what the grammar engine
    cannot enforce (validation still checks it after the reply).

    ``keep(keyword, value)``, when given, spares the occurrences it returns true for.
    The walk is iterative, so a deeply nested schema cannot exhaust the stack.
    """
    if not isinstance(schema, dict):
        return schema
    out: dict[str, Any] = {}
    stack: list[tuple[dict[str, Any], dict[str, Any]]] = [(schema, out)]
    while stack:
        source, target = stack.pop()
        for key, value in source.items():
            if key in keywords and not (keep is not None and keep(key, value)):
                continue
            if key in SCHEMA_MAP and isinstance(value, dict):
                copied: dict[str, Any] = {}
                for name, sub in value.items():
                    copied[name] = _copy_schema(sub, stack)
                target[key] = copied
            elif key in SCHEMA_LIST and isinstance(value, list):
                target[key] = [_copy_schema(sub, stack) for sub in value]
            elif key in ONE_SCHEMA or (key == "dependencies" and isinstance(value, dict)):
                if key == "dependencies":
                    # draft 4-7: a property's dependency is a schema or a list of names.
                    target[key] = {name: _copy_schema(sub, stack) for name, sub in value.items()}
                else:
                    target[key] = _copy_schema(value, stack)
            else:
                target[key] = value
    return out


def _copy_schema(sub: Any, stack: list[tuple[dict[str, Any], dict[str, Any]]]) -> Any:
    if not isinstance(sub, dict):
        return sub
    target: dict[str, Any] = {}
    stack.append((sub, target))
    return target


# -- building and caching --------------------------------------------------------------

_CACHE_SIZE = 256
_dict_cache: OrderedDict[int, tuple[Any, Schema]] = OrderedDict()
_type_cache: dict[Any, Schema] = {}
_lock = threading.Lock()


def compile_schema(schema: Any) -> Schema:
    """Turn a pydantic model, a Python type, a JSON Schema dict (or bool) into a :class:`Schema`.

    Raises:
        SchemaError: the schema is not usable (with where and why).
    """
    if isinstance(schema, Schema):
        return schema
    if isinstance(schema, (dict, bool)):
        key = id(schema)
        with _lock:
            hit = _dict_cache.get(key)
            if hit is not None and hit[0] is schema:
                _dict_cache.move_to_end(key)
                return hit[1]
        built = Schema(schema)
        with _lock:
            _dict_cache[key] = (schema, built)
            while len(_dict_cache) > _CACHE_SIZE:
                _dict_cache.popitem(last=False)
        return built
    try:
        hash(schema)
    except TypeError:
        raise SchemaError(
            f"cannot use a {type(schema).__name__} as a schema; pass a pydantic model, "
            "a type such as list[int], or a JSON Schema dict",
            schema,
        ) from None
    with _lock:
        cached = _type_cache.get(schema)
    if cached is not None:
        return cached
    try:
        adapter: pydantic.TypeAdapter[Any] = pydantic.TypeAdapter(schema)
        root = adapter.json_schema()
    except (pydantic.PydanticSchemaGenerationError, pydantic.PydanticUserError, TypeError) as exc:
        raise SchemaError(
            f"cannot build a schema from {schema!r}: {exc}; pass a pydantic model, "
            "a type such as list[int], or a JSON Schema dict",
            schema,
        ) from exc
    built = Schema(root, adapter)
    with _lock:
        if len(_type_cache) >= _CACHE_SIZE:
            _type_cache.clear()
        _type_cache[schema] = built
    return built
