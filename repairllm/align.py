"""Stage 3: bring a parsed value into line with the schema.

Only what is wrong as it stands is changed, and every change is a ledger entry:

* keys: exact, then case- and separator-insensitive (``firstName`` ~ ``first_name`` ~
  ``First Name``), then aliases (``x-aliases`` and property titles), then a bounded fuzzy
  match that refuses ties;
* shape: unwrap a one-key wrapper object or a one-element list, wrap a lone value into a
  list, decode a JSON string that holds the expected object or array;
* scalars: ``"30"`` → 30, ``"1,234.5"`` → 1234.5, ``"yes"`` → True, 30.0 → 30, 7 → ``"7"``;
* enums: by case and punctuation (``"In Progress"`` → ``"in_progress"``), then by a
  unique prefix;
* defaults for missing properties, and removal of properties the schema forbids.

``anyOf``/``oneOf`` are tried branch by branch; the branch that becomes valid at the
lowest cost wins.
"""

from __future__ import annotations

import copy
import difflib
import functools
import math
from collections.abc import Mapping, Sequence
from typing import Any

import regex

from .errors import RepairFailed
from .ledger import Fix, pointer
from .policy import Policy
from .rules import Rule
from .schema import Schema, json_type, type_matches

__all__ = ["align", "normalise_key"]

_STAGE = "align"
_SEPARATORS = regex.compile(r"[\W_]+")
_INT = regex.compile(r"[-+]?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.0*)?")
_FLOAT = regex.compile(r"[-+]?(?:\d{1,3}(?:,\d{3})+|\d+)?(?:\.\d+)?(?:[eE][-+]?\d+)?")
_LEADING_NUMBER = regex.compile(r"\s*[-+]?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?(?=\D|$)")
_TRUE = frozenset({"true", "yes", "y", "on", "1", "t"})
_FALSE = frozenset({"false", "no", "n", "off", "0", "f"})
_NULL = frozenset({"null", "none", "nil", ""})
_MAX_FUZZY_PROPS = 200


@functools.lru_cache(maxsize=4096)
def normalise_key(key: str) -> str:
    """Fold case and drop separators: ``"First-Name"``, ``"firstName"`` → ``"firstname"``.

    Cached: the same schema's property names and the same replies' keys come back on
    every object walked, and a cache hit costs a tenth of the regex substitution.
    """
    return _SEPARATORS.sub("", key).casefold()


def align(
    value: Any,
    schema: Schema,
    policy: Policy,
    *,
    node: Any = None,
    path: Sequence[str | int] = (),
) -> tuple[Any, list[Fix]]:
    """Align ``value`` to ``schema`` under ``policy``.

    Args:
        value: the parsed value.
        schema: the compiled schema.
        policy: what may be changed.
        node: align to this node of ``schema`` (``$ref`` still resolved against its
            root) instead of the root: one element of an array read on its own.
        path: where ``value`` sits in the whole reply, so the fixes' pointers are the
            whole reply's (``[3]`` for element 3).

    Returns:
        The aligned value (new containers where anything changed; the input is never
        mutated) and the fixes made.
    """
    aligner = _Aligner(schema, policy)
    result = aligner.walk(value, schema.root if node is None else node, list(path))
    return result, aligner.fixes


class _Aligner:
    def __init__(self, schema: Schema, policy: Policy) -> None:
        self.schema = schema
        self.policy = policy
        self.fixes: list[Fix] = []

    def fix(self, rule: str, path: list[str | int], before: Any, after: Any) -> None:
        self.fixes.append(Fix(_STAGE, rule, pointer(path), before, after, self.policy.cost(rule)))

    def walk(self, value: Any, node: Any, path: list[str | int]) -> Any:
        schema = self.schema
        node = schema.resolve(node)
        if not isinstance(node, dict) or not node:
            return value
        for sub in node.get("allOf", ()):
            value = self.walk(value, sub, path)
        # (Only anyOf/oneOf make branches: the lookup saved on every other node.)
        if ("anyOf" in node or "oneOf" in node) and schema.branches(node):
            chosen = self.choose_branch(value, node, path)
            if chosen is not None:
                return chosen[0]
        info = schema.info(node)
        if info.enum is not None and not _in_enum(value, info.enum):
            matched = self.match_enum(value, info.enum, path)
            if matched is not None:
                return matched
        if not type_matches(value, info.types):
            value = self.convert(value, node, info.types, path)
        elif (
            isinstance(value, float)
            and "number" not in info.types
            and "integer" in info.types
            and self.policy.coerce
        ):
            # 31.0 is an integer to JSON Schema but not to pydantic: write it as one.
            self.fix(Rule.COERCE, path, value, int(value))
            value = int(value)
        if isinstance(value, dict) and "object" in info.types:
            return self.walk_object(value, node, path)
        if isinstance(value, list) and "array" in info.types:
            return [
                self.walk(item, schema.item(node, i), [*path, i]) for i, item in enumerate(value)
            ]
        return value

    # -- unions

    def choose_branch(
        self, value: Any, node: dict[str, Any], path: list[str | int]
    ) -> tuple[Any] | None:
        schema = self.schema
        if schema.is_valid(value, node):
            return (value,)
        best: tuple[float, int, Any, list[Fix]] | None = None
        for order, branch in enumerate(schema.branches(node)):
            trial = _Aligner(schema, self.policy)
            result = trial.walk(value, branch, path)
            if not schema.is_valid(result, branch):
                continue
            cost = sum(f.cost for f in trial.fixes)
            if best is None or cost < best[0]:
                best = (cost, order, result, trial.fixes)
        if best is None:
            return None
        self.fixes.extend(best[3])
        return (best[2],)

    # -- enums

    def match_enum(self, value: Any, options: tuple[Any, ...], path: list[str | int]) -> Any:
        if not self.policy.coerce:
            return None
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            for option in options:
                if isinstance(option, str) and option == _number_text(value):
                    self.fix(Rule.COERCE, path, value, option)
                    return option
        if not isinstance(value, str):
            return None
        wanted = normalise_key(value)
        exact = [o for o in options if isinstance(o, str) and normalise_key(o) == wanted]
        if len(exact) == 1:
            self.fix(Rule.ENUM_CASE, path, value, exact[0])
            return exact[0]
        for option in options:
            if (
                isinstance(option, (int, float))
                and not isinstance(option, bool)
                and _number_text(option) == value.strip()
            ):
                self.fix(Rule.COERCE, path, value, option)
                return option
        if len(wanted) >= 3:
            prefixed = [
                o for o in options if isinstance(o, str) and normalise_key(o).startswith(wanted)
            ]
            if len(prefixed) == 1:
                self.fix(Rule.ENUM_CASE, path, value, prefixed[0])
                return prefixed[0]
        return None

    # -- type conversion

    def convert(
        self, value: Any, node: dict[str, Any], types: frozenset[str], path: list[str | int]
    ) -> Any:
        policy = self.policy
        if isinstance(value, str) and types & {"object", "array"} and policy.coerce:
            decoded = self.decode(value, types, path)
            if decoded is not _MISSING:
                return decoded
        if value is None and "default" in node and self.policy.fill_defaults:
            # Copies: neither the caller's value nor the ledger may share the schema's object.
            self.fix(Rule.FILL_DEFAULT, path, None, copy.deepcopy(node["default"]))
            return copy.deepcopy(node["default"])
        if "array" in types and not isinstance(value, list):
            if isinstance(value, dict) and len(value) == 1:
                ((inner_key, inner),) = value.items()
                item_info = self.schema.info(self.schema.item(node, 0))
                if isinstance(inner, list) and inner_key not in item_info.properties:
                    self.fix(Rule.UNWRAP_OBJECT, path, {inner_key: "…"}, "…")
                    return inner
            if value is not None:  # null is missing data, not a one-element list
                self.fix(Rule.WRAP_LIST, path, value, [value])
                return [value]
        if (
            "object" in types
            and isinstance(value, list)
            and len(value) == 1
            and (isinstance(value[0], dict))
        ):
            self.fix(Rule.UNWRAP_LIST, path, "[…]", "…")
            return value[0]
        if not policy.coerce:
            return value
        if isinstance(value, str) and types & {"number", "integer"}:
            number = _symbol_number(value, types)
            if number is not _MISSING:
                self.fix(Rule.NUMBER_SYMBOLS, path, value, number)
                return number
        converted = _coerce_scalar(value, types, policy.loose_numbers)
        if converted is not _MISSING:
            self.fix(Rule.COERCE, path, value, converted)
            return converted
        return value

    def decode(self, text: str, types: frozenset[str], path: list[str | int]) -> Any:
        from .lexical import LexicalError, parse

        stripped = text.strip()
        if not stripped or stripped[0] not in "{[":
            return _MISSING
        try:
            parsed = parse(stripped, None, self.policy.without_json_repair)
        except (LexicalError, RepairFailed):  # not JSON, or nested beyond the limit
            return _MISSING
        if json_type(parsed.value) not in types:
            return _MISSING
        self.fix(Rule.DECODE_STRING, path, text, parsed.value)
        prefix = pointer(path)
        for inner in parsed.fixes:
            self.fixes.append(
                Fix(
                    inner.stage,
                    inner.rule,
                    prefix + inner.path,
                    inner.before,
                    inner.after,
                    inner.cost,
                )
            )
        return parsed.value

    # -- objects

    def walk_object(
        self, value: dict[str, Any], node: dict[str, Any], path: list[str | int]
    ) -> dict[str, Any]:
        schema = self.schema
        info = schema.info(node)
        props = info.properties
        if props and self.policy.coerce:
            value = self.unwrap_call(value, props, path)
            value = self.unwrap_wrapper(value, node, props, path)
        if props:
            value = self.map_keys(value, node, props, path)
        out: dict[str, Any] = {}
        forbid_extra = not info.additional and self.policy.drop_extra
        patterns = node.get("patternProperties") or {}
        for key, item in value.items():
            if forbid_extra and key not in props and not _matches_any(key, patterns):
                self.fix(Rule.DROP_EXTRA, [*path, key], item, None)
                continue
            out[key] = self.walk(item, schema.child(node, key), [*path, key])
        if self.policy.fill_defaults:
            for name, sub in props.items():
                if name in out:
                    continue
                resolved = schema.resolve(sub)
                if isinstance(resolved, dict) and "default" in resolved:
                    # Copies: the caller may change the value or the ledger, never the schema.
                    out[name] = copy.deepcopy(resolved["default"])
                    self.fix(
                        Rule.FILL_DEFAULT, [*path, name], None, copy.deepcopy(resolved["default"])
                    )
        return out

    def unwrap_call(
        self, value: dict[str, Any], props: Mapping[str, Any], path: list[str | int]
    ) -> dict[str, Any]:
        """A function-call envelope around the wanted object: its arguments.

        ``{"name": "f", "arguments": "{...}"}`` (the arguments as an object or as JSON
        text), ``{"type": "function", "function": {...}}``, ``{"tool_calls": [{...}]}``
        and ``{"function_call": {...}}``, when the arguments hold keys the schema knows
        and the envelope's own keys are not what the schema asks for.
        """
        current = value
        for _ in range(3):  # tool_calls -> function -> arguments, at most
            if not isinstance(current, dict):
                return value
            keys = set(current)
            if len(current) == 1 and keys <= {"tool_calls", "function_call", "function"}:
                (inner,) = current.values()
                if isinstance(inner, list) and len(inner) == 1:
                    inner = inner[0]
                current = inner
                continue
            if keys - _ENVELOPE_KEYS:
                return value
            if "function" in keys and isinstance(current["function"], dict):
                current = current["function"]
                continue
            args_key = next((k for k in _ARGUMENT_KEYS if k in current), None)
            if args_key is None:
                return value
            known = {normalise_key(p) for p in props}  # only for what looks like a call
            if normalise_key(args_key) in known:
                return value
            args = current[args_key]
            decoded_from: str | None = None
            if isinstance(args, str):
                decoded_from = args
                args = _json_object(args, self.policy)
            if not isinstance(args, dict) or not any(normalise_key(k) in known for k in args):
                return value
            self.fix(Rule.UNWRAP_CALL, path, dict.fromkeys(current, "…"), "…")
            if decoded_from is not None:
                self.fix(Rule.DECODE_STRING, path, decoded_from, args)
            return args
        return value

    def unwrap_wrapper(
        self,
        value: dict[str, Any],
        node: dict[str, Any],
        props: Mapping[str, Any],
        path: list[str | int],
    ) -> dict[str, Any]:
        """``{"person": {"name": …}}`` where the schema wants ``{"name": …}`` directly."""
        if len(value) != 1:
            return value
        ((key, inner),) = value.items()
        if key in props:
            return value
        decoded_from: str | None = None
        if isinstance(inner, str):
            # The wanted object encoded as JSON text inside the wrapper's one member.
            decoded_from = inner
            inner = _json_object(inner, self.policy)
        if not isinstance(inner, dict):
            return value
        known = {normalise_key(p) for p in props}
        if normalise_key(key) in known:
            return value
        if not any(normalise_key(k) in known for k in inner):
            return value
        self.fix(Rule.UNWRAP_OBJECT, path, {key: "…"}, "…")
        if decoded_from is not None:
            self.fix(Rule.DECODE_STRING, [*path, key], decoded_from, inner)
        return inner

    def map_keys(
        self,
        value: dict[str, Any],
        node: dict[str, Any],
        props: Mapping[str, Any],
        path: list[str | int],
    ) -> dict[str, Any]:
        unknown = [k for k in value if k not in props]
        if not unknown:
            return value
        index = self.key_index(node, props)
        taken = {k for k in value if k in props}
        renames: dict[str, str] = {}
        # Certain matches (case, alias) first, for every key; only then fuzzy guesses, so
        # a guess never takes a property that another key names exactly.
        for how in ("case", "alias", "fuzzy"):
            for key in unknown:
                if key in renames:
                    continue
                target, rule = self.match_key(key, index, props, taken, how)
                if target is not None:
                    renames[key] = target
                    taken.add(target)
                    self.fix(rule, [*path, target], key, target)
        if not renames:
            return value
        return {renames.get(k, k): v for k, v in value.items()}

    def match_key(
        self,
        key: str,
        index: tuple[dict[str, list[str]], dict[str, list[str]]],
        props: Mapping[str, Any],
        taken: set[str],
        how: str,
    ) -> tuple[str | None, str]:
        by_norm, by_alias = index
        norm = normalise_key(key)
        if how == "case":
            found = [p for p in by_norm.get(norm, ()) if p not in taken]
            return (found[0], Rule.KEY_CASE) if len(found) == 1 else (None, "")
        if how == "alias":
            found = [p for p in by_alias.get(norm, ()) if p not in taken]
            return (found[0], Rule.KEY_ALIAS) if len(set(found)) == 1 else (None, "")
        threshold = self.policy.fuzzy_keys
        if threshold is None or not norm or len(props) > _MAX_FUZZY_PROPS or len(norm) > 100:
            return None, ""
        scored = sorted(
            (
                (difflib.SequenceMatcher(None, norm, normalise_key(p)).ratio(), p)
                for p in props
                if p not in taken
            ),
            reverse=True,
        )
        if not scored or scored[0][0] < threshold:
            return None, ""
        if len(scored) > 1 and scored[1][0] == scored[0][0]:
            return None, ""  # a tie: refuse to guess
        return scored[0][1], Rule.KEY_FUZZY

    def key_index(
        self, node: dict[str, Any], props: Mapping[str, Any]
    ) -> tuple[dict[str, list[str]], dict[str, list[str]]]:
        by_norm: dict[str, list[str]] = {}
        by_alias: dict[str, list[str]] = {}
        for name, sub in props.items():
            by_norm.setdefault(normalise_key(name), []).append(name)
            resolved = self.schema.resolve(sub)
            if not isinstance(resolved, dict):
                continue
            aliases = list(resolved.get("x-aliases") or ())
            if isinstance(resolved.get("title"), str):
                aliases.append(resolved["title"])
            for alias in aliases:
                if isinstance(alias, str):
                    by_alias.setdefault(normalise_key(alias), []).append(name)
        return by_norm, by_alias


class _Missing:
    """Sentinel: a conversion that did not apply."""


_MISSING: Any = _Missing()


#: The keys of a function-call envelope, and those that may hold its arguments.
_ARGUMENT_KEYS = ("arguments", "parameters", "args", "input")
_ENVELOPE_KEYS = frozenset({"name", "type", "id", "function", *_ARGUMENT_KEYS})


def _json_object(text: str, policy: Policy) -> Any:
    """The object JSON text ``text`` holds (lexical fixes allowed), or ``_MISSING``."""
    from .lexical import LexicalError, parse

    stripped = text.strip()
    if not stripped.startswith("{"):
        return _MISSING
    try:
        value = parse(stripped, None, policy.without_json_repair).value
    except (LexicalError, RepairFailed):
        return _MISSING
    return value if isinstance(value, dict) else _MISSING


# A number written for people: a currency symbol or code before or after it, a percent
# sign after it, thousands separated by commas. "1,5" (a decimal comma, or a typo for
# 15?) does not match: a reading that is not certain is not made.
_CURRENCY = r"(?:[$€£¥₹₩₽¢]|(?:USD|EUR|GBP|JPY|CNY|RMB|INR|CHF|CAD|AUD)\b)"
_SYMBOL_NUMBER = regex.compile(
    rf"(?P<sign>[-+])?\s*(?P<pre>{_CURRENCY})?\s*(?P<inner>[-+])?"
    r"(?P<num>(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?|\.\d+)"
    rf"\s*(?P<post>{_CURRENCY}|%)?"
)


def _symbol_number(text: str, types: frozenset[str]) -> Any:
    """``"$1,299.99"`` → 1299.99, ``"45%"`` → 45, ``"12 EUR"`` → 12; else ``_MISSING``."""
    match = _SYMBOL_NUMBER.fullmatch(text.strip())
    if match is None or not (match["pre"] or match["post"]):
        return _MISSING
    if match["sign"] and match["inner"]:
        return _MISSING
    sign = "-" if "-" in (match["sign"] or "", match["inner"] or "") else ""
    digits = match["num"].replace(",", "")
    if "." not in digits and "integer" in types:
        return int(sign + digits)
    if "number" not in types:
        number = float(sign + digits)
        return int(number) if number.is_integer() else _MISSING
    number = float(sign + digits)
    if not math.isfinite(number):
        return _MISSING
    return int(number) if "." not in digits else number


def _in_enum(value: Any, options: tuple[Any, ...]) -> bool:
    # 1 == True in Python but not in JSON: compare with the type.
    return any(value == o and type(value) is type(o) for o in options) or (
        isinstance(value, (int, float))
        and not isinstance(value, bool)
        and any(
            isinstance(o, (int, float)) and not isinstance(o, bool) and o == value for o in options
        )
    )


def _matches_any(key: str, patterns: Mapping[str, Any]) -> bool:
    for pattern in patterns:
        try:
            if regex.search(pattern, key):
                return True
        except regex.error:
            continue
    return False


def _number_text(number: float) -> str:
    if isinstance(number, float) and number.is_integer():
        return str(int(number))
    return str(number)


def _coerce_scalar(value: Any, types: frozenset[str], loose: bool) -> Any:
    """Convert a scalar to one of ``types``, or return ``_MISSING``."""
    if isinstance(value, bool):
        if "string" in types:
            return "true" if value else "false"
        return _MISSING
    if isinstance(value, (int, float)):
        if "integer" in types and isinstance(value, float) and value.is_integer():
            return int(value)
        if "boolean" in types and value in (0, 1):
            return bool(value)
        if "string" in types:
            return _number_text(value)
        return _MISSING
    if isinstance(value, str):
        try:
            return _coerce_text(value.strip(), types, loose)
        except ValueError:  # an integer past Python's digit limit: left as it is
            return _MISSING
    return _MISSING


def _coerce_text(text: str, types: frozenset[str], loose: bool) -> Any:
    """:func:`_coerce_scalar` for a string; numbers are exact or ``_MISSING``, never inf.

    Raises:
        ValueError: the text holds an integer longer than Python converts.
    """
    if "integer" in types and _INT.fullmatch(text):
        return int(text.replace(",", "").split(".")[0])
    if "number" in types and text and _FLOAT.fullmatch(text) and any(c.isdigit() for c in text):
        plain = text.replace(",", "")
        if "." not in text and plain.lstrip("+-").isdigit():
            return int(plain)  # exact, where a float would round past 2**53
        number = float(plain)
        if not math.isfinite(number):
            return _MISSING
        return int(number) if number.is_integer() and "." not in text else number
    if "boolean" in types:
        lowered = text.casefold()
        if lowered in _TRUE:
            return True
        if lowered in _FALSE:
            return False
    if "null" in types and text.casefold() in _NULL:
        return None
    if loose and types & {"integer", "number"}:
        match = _LEADING_NUMBER.match(text)
        if match is not None:
            digits = match.group().strip().replace(",", "")
            number = float(digits)
            if not math.isfinite(number):
                return _MISSING
            if "integer" in types and number.is_integer():
                return int(number)
            if "number" in types:
                return number
    return _MISSING
