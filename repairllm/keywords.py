"""Where JSON Schema keeps sub-schemas, for the code that walks a schema.

A keyword's value is one schema (:data:`ONE_SCHEMA`), a list of schemas
(:data:`SCHEMA_LIST`), or an object whose values are schemas (:data:`SCHEMA_MAP`).
Every other keyword's value is data (``enum``, ``const``, ``default``, ``examples``,
``required`` ...) and is never rewritten. ``items`` is in both of the first two: a
schema in draft 2020-12, a list of them in earlier drafts.
"""

from __future__ import annotations

__all__ = ["ONE_SCHEMA", "SCHEMA_LIST", "SCHEMA_MAP"]

ONE_SCHEMA = frozenset(
    {
        "additionalItems",
        "additionalProperties",
        "contains",
        "else",
        "if",
        "items",
        "not",
        "propertyNames",
        "then",
        "unevaluatedItems",
        "unevaluatedProperties",
        "contentSchema",
    }
)
SCHEMA_LIST = frozenset({"allOf", "anyOf", "oneOf", "prefixItems", "items"})
SCHEMA_MAP = frozenset(
    {"properties", "patternProperties", "$defs", "definitions", "dependentSchemas"}
)
