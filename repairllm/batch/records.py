"""One input record in, one output row out: the part of a batch that both engines share.

A *record* is what a reader yields for one input row: the raw bytes of a JSONL line,
or a mapping of column values (CSV, Parquet, an iterable of dicts). :class:`Repairer`
turns each record into exactly one output row, whatever is wrong with it: a line that
is not JSON, a missing column, bytes that are not UTF-8, an empty reply, a reply with no
JSON, a value the schema refuses, even a bug of ours. The error is a column of the row,
never an exception out of the batch. The local engine and the Ray workers call the same
:meth:`Repairer.rows`, so the two give identical outputs for identical input.

Output columns, in order (:data:`COLUMNS`):

``row``        the record's 0-based position in the input
``id``         the ``id_field`` column's value as text, or ``row`` when none is named
``value``      the repaired, validated value as JSON text (null when not ok)
``ok``         whether ``value`` holds a valid value
``error``      the error's kind (:data:`ERROR_KINDS`), null when ok
``message``    the error's message, null when ok
``issues``     JSON list of what is still wrong: ``{"path", "message", "expected", "got"}``
``ledger``     JSON list of every change: ``{"stage", "rule", "path", "before", "after", "cost"}``
``cost``       the ledger's total cost
``truncated``  the value was completed from a reply that was cut off
``rules``      the rules applied, in order
``bytes``      the reply's size in UTF-8 bytes
"""

from __future__ import annotations

import dataclasses
import json
import threading
from collections import OrderedDict
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from ..errors import RepairFailed, RepairLLMError, SchemaError
from ..ledger import Issue, Ledger
from ..outcome import Outcome
from ..pipeline import run
from ..policy import Policy, resolve_policy
from ..schema import Schema, compile_schema

__all__ = [
    "COLUMNS",
    "ERROR_KINDS",
    "RepairSpec",
    "Repairer",
    "RowError",
    "dumps",
    "issues_json",
    "ledger_json",
    "record_fields",
]

COLUMNS = (
    "row",
    "id",
    "value",
    "ok",
    "error",
    "message",
    "issues",
    "ledger",
    "cost",
    "truncated",
    "rules",
    "bytes",
)

#: The error kinds a row can carry. The first ones are repairllm's own exceptions; the
#: others are problems of the record itself, found before any repair.
ERROR_KINDS = (
    "NoJSONFound",  # the reply holds nothing that looks like JSON
    "RepairFailed",  # JSON found, but no candidate became a valid value
    "AmbiguousRepair",  # different valid values tie and the policy says fail
    "InvalidInput",  # the reply is not text: bytes that are not UTF-8, a number ...
    "SchemaError",  # the row's schema is unknown or unusable
    "Empty",  # the reply is missing, null, or only whitespace
    "BadRecord",  # the input line is not a JSON object (JSONL)
    "MissingField",  # the record has no such text column
    "InternalError",  # a bug of repairllm's: please report it; the batch goes on
)


def dumps(value: Any) -> str:
    """``value`` as compact JSON text: orjson where it can, the stdlib where it cannot.

    orjson refuses integers past 64 bits and lone surrogates, both of which JSON (and a
    repaired value) may hold; ``json`` writes them, escaping the surrogates.
    """
    try:
        return orjson.dumps(value).decode()
    except (orjson.JSONEncodeError, TypeError):
        return json.dumps(
            value, ensure_ascii=True, allow_nan=False, separators=(",", ":"), default=repr
        )


def _dumps_loose(value: Any) -> str:
    """Like :func:`dumps`, for ledgers and issues: anything not JSON becomes its repr."""
    try:
        return orjson.dumps(value, default=repr).decode()
    except (orjson.JSONEncodeError, TypeError):
        return json.dumps(value, ensure_ascii=True, separators=(",", ":"), default=repr)


def ledger_json(ledger: Ledger | list[Any]) -> str:
    if not ledger:
        return "[]"
    return _dumps_loose(
        [
            {
                "stage": fix.stage,
                "rule": fix.rule,
                "path": fix.path,
                "before": fix.before,
                "after": fix.after,
                "cost": fix.cost,
            }
            for fix in ledger
        ]
    )


def issues_json(issues: list[Issue]) -> str:
    if not issues:
        return "[]"
    return _dumps_loose(
        [
            {"path": i.path, "message": i.message, "expected": i.expected, "got": i.got}
            for i in issues
        ]
    )


@dataclass(frozen=True)
class RepairSpec:
    """What a batch repair reads from each record and how it repairs it.

    Plain data (picklable), so Ray ships it to every worker, where a :class:`Repairer`
    compiles the schemas once.

    Attributes:
        field: the column (key) holding the reply text.
        id_field: a column to copy into ``id`` (as text); ``None``: ``id`` is the row.
        schema: one schema for every row (a JSON Schema dict, a pydantic model or a type),
            or ``None`` for any JSON value.
        schema_field: a column naming each row's schema, looked up in ``schemas``; a
            value that is itself a JSON Schema (a dict, or text starting with ``{``) is
            used as it is. Overrides ``schema`` where the column is set.
        schemas: schemas by name, for ``schema_field``.
        policy: a :class:`~repairllm.Policy` or a preset name.
    """

    field: str = "text"
    id_field: str | None = None
    schema: Any = None
    schema_field: str | None = None
    schemas: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    policy: Policy | str = "default"

    def fingerprint(self) -> str:
        """A digest of the spec, to tell whether a partial output came from the same one."""
        import hashlib

        policy = self.policy if isinstance(self.policy, str) else repr(self.policy)
        text = _dumps_loose(
            [
                self.field,
                self.id_field,
                _schema_key(self.schema),
                self.schema_field,
                {k: _schema_key(v) for k, v in sorted(self.schemas.items())},
                policy,
            ]
        )
        return hashlib.sha256(text.encode()).hexdigest()[:16]


def _schema_key(schema: Any) -> Any:
    if schema is None or isinstance(schema, (dict, bool)):
        return schema
    return f"{getattr(schema, '__module__', '')}.{getattr(schema, '__qualname__', repr(schema))}"


class RowError(Exception):
    """A record that cannot even give a reply: its error kind and message."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


def record_fields(record: bytes | Mapping[str, Any]) -> Mapping[str, Any]:
    """A record's columns: a JSONL line decoded, or the mapping itself.

    Raises:
        RowError: the line is not UTF-8 (``InvalidInput``) or not a JSON object
            (``BadRecord``).
    """
    if not isinstance(record, (bytes, bytearray, memoryview)):
        return record
    try:
        data = orjson.loads(record)
    except orjson.JSONDecodeError:
        try:
            data = json.loads(bytes(record).decode("utf-8"))  # big integers, surrogates
        except UnicodeDecodeError as exc:
            raise RowError(
                "InvalidInput", f"the line is not UTF-8 (a bad byte at offset {exc.start})"
            ) from None
        except (ValueError, RecursionError) as exc:
            raise RowError("BadRecord", f"the line is not JSON: {_first_line(exc)}") from None
    if not isinstance(data, dict):
        raise RowError("BadRecord", f"the line holds a JSON {type(data).__name__}, not an object")
    return data


# Inline schemas (a schema column holding the schema itself), compiled once each.
_INLINE_LIMIT = 256


class Repairer:
    """Turns records into output rows; holds the compiled schemas and the policy.

    Build one per process (a Ray worker builds one in its constructor): schemas are
    compiled on first use and kept.

    Args:
        spec: what to read and how to repair it.

    Raises:
        SchemaError: the run's one schema is unusable (per-row schemas fail per row).
        ConfigError: the policy is unknown.
    """

    def __init__(self, spec: RepairSpec) -> None:
        self.spec = spec
        self.policy = resolve_policy(spec.policy)
        self.schema: Schema | None = (
            compile_schema(spec.schema) if spec.schema is not None else None
        )
        self._named: dict[str, Schema | SchemaError] = {}
        self._inline: OrderedDict[str, Schema | SchemaError] = OrderedDict()
        self._lock = threading.Lock()

    # -- schemas -------------------------------------------------------------------------

    def schema_for(self, record: Mapping[str, Any]) -> Schema | None:
        """The schema of one record (its ``schema_field``, else the run's).

        Raises:
            RowError: the record names an unknown or unusable schema.
        """
        name_field = self.spec.schema_field
        if name_field is None:
            return self.schema
        ref = record.get(name_field)
        if ref is None or ref == "" or ref == b"":
            return self.schema
        if isinstance(ref, bytes):
            ref = ref.decode("utf-8", "replace")
        if isinstance(ref, (dict, bool)):
            return self._compile_inline(dumps(ref), ref)
        if not isinstance(ref, str):
            raise RowError("SchemaError", f"the {name_field!r} column holds a {type(ref).__name__}")
        if ref.lstrip().startswith("{"):
            return self._compile_inline(ref, None)
        with self._lock:
            hit = self._named.get(ref)
        if hit is None:
            if ref not in self.spec.schemas:
                known = ", ".join(sorted(self.spec.schemas)[:8]) or "none given"
                hit = SchemaError(f"no schema named {ref!r} (known: {known})")
            else:
                try:
                    hit = compile_schema(self.spec.schemas[ref])
                except SchemaError as exc:
                    hit = exc
            with self._lock:
                self._named[ref] = hit
        if isinstance(hit, SchemaError):
            raise RowError("SchemaError", f"schema {ref!r}: {hit}")
        return hit

    def _compile_inline(self, text: str, value: Any) -> Schema:
        with self._lock:
            hit = self._inline.get(text)
            if hit is not None:
                self._inline.move_to_end(text)
        if hit is None:
            try:
                hit = compile_schema(value if value is not None else json.loads(text))
            except SchemaError as exc:
                hit = exc
            except (ValueError, RecursionError) as exc:
                hit = SchemaError(f"the row's inline schema is not JSON: {exc}")
            with self._lock:
                self._inline[text] = hit
                while len(self._inline) > _INLINE_LIMIT:
                    self._inline.popitem(last=False)
        if isinstance(hit, SchemaError):
            raise RowError("SchemaError", str(hit))
        return hit

    # -- records -------------------------------------------------------------------------

    def _fields(self, record: bytes | Mapping[str, Any]) -> Mapping[str, Any]:
        return record_fields(record)

    def text(self, fields: Mapping[str, Any]) -> str:
        """The reply text of a record's fields.

        Raises:
            RowError: the field is missing, empty, or not text.
        """
        name = self.spec.field
        if name not in fields:
            shown = ", ".join(list(fields)[:8])
            raise RowError("MissingField", f"no {name!r} field (the record has: {shown or 'none'})")
        reply = fields[name]
        if reply is None:
            raise RowError("Empty", f"the {name!r} field is null")
        if isinstance(reply, (bytes, bytearray, memoryview)):
            try:
                reply = bytes(reply).decode("utf-8")
            except UnicodeDecodeError as exc:
                raise RowError(
                    "InvalidInput", f"the reply is not UTF-8 (a bad byte at offset {exc.start})"
                ) from None
        elif isinstance(reply, (dict, list)):
            # Some dumps store a reply that was already parsed: it is its own JSON text.
            reply = dumps(reply)
        elif not isinstance(reply, str):
            raise RowError("InvalidInput", f"the {name!r} field holds a {type(reply).__name__}")
        if not reply.strip():
            raise RowError(
                "Empty", f"the {name!r} field is empty" if not reply else "only whitespace"
            )
        return reply

    def id_of(self, row: int | None, fields: Mapping[str, Any] | None) -> Any:
        name = self.spec.id_field
        if name is None:
            return row
        if fields is None:
            return None
        value = fields.get(name)
        if value is None or isinstance(value, str):
            return value
        if isinstance(value, bytes):
            return value.decode("utf-8", "replace")
        return dumps(value)

    def row(self, position: int | None, record: bytes | Mapping[str, Any]) -> dict[str, Any]:
        """The output row of one record (never raises)."""
        fields: Mapping[str, Any] | None = None
        size = 0
        try:
            fields = self._fields(record)
            text = self.text(fields)
            size = len(text.encode("utf-8", "surrogatepass"))
            schema = self.schema_for(fields)
            outcome = run(text, schema, self.policy)
        except RowError as bad:
            return self._failed(position, fields, bad.kind, str(bad), size)
        except RepairFailed as exc:
            return self._failed(position, fields, type(exc).__name__, str(exc), size, exc.best)
        except RepairLLMError as exc:
            return self._failed(position, fields, type(exc).__name__, str(exc), size)
        except Exception as exc:  # a bug of ours: one row says so, the batch goes on
            message = f"{type(exc).__name__}: {_first_line(exc)} (please report it)"
            return self._failed(position, fields, "InternalError", message, size)
        return self._succeeded(position, fields, outcome, schema, size)

    def rows(
        self, records: Iterable[tuple[int, bytes | Mapping[str, Any]]]
    ) -> Iterator[dict[str, Any]]:
        """The output rows of ``(position, record)`` pairs, in their order."""
        for position, record in records:
            yield self.row(position, record)

    def _value_json(self, outcome: Outcome, schema: Schema | None) -> str:
        adapter = schema.adapter if schema is not None else None
        if adapter is not None and outcome.value is not outcome.data:
            try:
                return adapter.dump_json(outcome.value).decode()
            except Exception:  # a model that cannot write itself back: its JSON data
                pass
        return dumps(outcome.data)

    def _succeeded(
        self,
        position: int | None,
        fields: Mapping[str, Any],
        outcome: Outcome,
        schema: Schema | None,
        size: int,
    ) -> dict[str, Any]:
        ledger = outcome.ledger
        return {
            "row": position,
            "id": self.id_of(position, fields),
            "value": self._value_json(outcome, schema),
            "ok": True,
            "error": None,
            "message": None,
            "issues": "[]",
            "ledger": ledger_json(ledger),
            "cost": float(ledger.cost),
            "truncated": bool(outcome.truncated),
            "rules": ledger.rules(),
            "bytes": size,
        }

    def _failed(
        self,
        position: int | None,
        fields: Mapping[str, Any] | None,
        kind: str,
        message: str,
        size: int,
        best: Outcome | None = None,
    ) -> dict[str, Any]:
        ledger: Ledger = best.ledger if best is not None else Ledger()
        return {
            "row": position,
            "id": self.id_of(position, fields),
            "value": None,
            "ok": False,
            "error": kind,
            "message": message,
            "issues": issues_json(best.issues) if best is not None else "[]",
            "ledger": ledger_json(ledger),
            "cost": float(ledger.cost),
            "truncated": bool(best.truncated) if best is not None else False,
            "rules": ledger.rules(),
            "bytes": size,
        }


def _first_line(exc: BaseException, limit: int = 300) -> str:
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return text if len(text) <= limit else text[: limit - 1] + "…"
