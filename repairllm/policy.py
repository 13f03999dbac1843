"""What repairs are allowed, and what each one costs.

A :class:`Policy` is plain data, so a benchmark can run the same replies under several
policies and compare them. Three presets: ``STRICT`` (lexical fixes only: nothing is
coerced, renamed, dropped or completed), ``DEFAULT`` and ``LENIENT``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Literal

from .errors import ConfigError

__all__ = ["DEFAULT", "LENIENT", "PRESETS", "RULE_COSTS", "STRICT", "Policy", "resolve_policy"]

#: The cost of each rule. Lexical fixes that cannot change meaning are cheap; guesses
#: (a fuzzy key, a completed truncation, json-repair's long tail) are dear, so that a
#: candidate needing fewer or safer guesses wins.
RULE_COSTS: Mapping[str, float] = MappingProxyType(
    {
        # extract
        "think_block": 0.0,
        "byte_order_mark": 0.0,
        "fenced_block": 0.05,
        "tagged_block": 0.05,
        "json_span": 0.1,
        "greedy_span": 0.3,
        "joined_values": 0.4,
        "unclosed_span": 0.3,
        "scalar_line": 0.3,
        "inside_think": 1.0,
        "prose_answer": 1.5,
        # lexical
        "comment": 0.05,
        "trailing_comma": 0.05,
        "extra_comma": 0.1,
        "single_quotes": 0.05,
        "smart_quotes": 0.05,
        "unquoted_key": 0.1,
        "python_literal": 0.1,
        "js_literal": 0.3,
        "raw_control_char": 0.05,
        "invalid_escape": 0.2,
        "number_format": 0.2,
        "number_as_string": 0.2,
        "missing_comma": 0.2,
        "missing_colon": 0.3,
        "unquoted_value": 0.4,
        "unescaped_quote": 0.4,
        "wrong_closer": 0.5,
        "missing_closer": 0.5,
        "extra_closer": 0.3,
        "missing_value": 1.0,
        "truncated_string": 1.0,
        "truncated_literal": 1.0,
        "truncated_member": 1.0,
        "truncated_element": 1.0,
        "truncated_container": 0.5,
        "json_repair": 3.0,
        # align
        "key_case": 0.2,
        "key_alias": 0.2,
        "key_fuzzy": 1.0,
        "unwrap_object": 0.5,
        "unwrap_call": 0.3,
        "unwrap_list": 0.5,
        "wrap_list": 0.5,
        "decode_string": 0.3,
        "coerce": 0.3,
        "number_symbols": 0.4,
        "enum_case": 0.3,
        "fill_default": 0.0,
        "drop_extra": 1.0,
    }
)

Ambiguity = Literal["first", "fail"]


@dataclass(frozen=True)
class Policy:
    """What the pipeline may change.

    Attributes:
        name: a label for reports.
        align: run the align stage (key mapping, wrapping, coercion, enums, defaults).
        coerce: change a scalar's type (``"30"`` → 30, ``"yes"`` → True).
        drop_extra: remove properties the schema forbids.
        fill_defaults: add missing properties that declare a ``default``.
        fuzzy_keys: minimum similarity (0–1) for a fuzzy key match; ``None`` turns it off.
        loose_numbers: read a leading number out of text (``"30 years"`` → 30).
        accept_truncated: accept a value closed from a reply that was cut off (its open
            containers closed, an incomplete trailing element or member dropped).
        complete_cut_values: also complete a string, number or literal the cut went
            through, and accept a value made of nothing but invented closers (a lone
            ``{``). Off by default: such a reply is refused, the completed value kept
            as the error's ``best``.
        json_repair: hand what our own fixers cannot parse to json-repair.
        prose_answers: read a reply with no JSON at all as an answer in prose, for an
            enum, boolean, number or flat-object schema (``repairllm.prose``).
        max_cost: refuse a candidate whose ledger costs more than this.
        on_ambiguity: when candidates tie with different values: take the ``"first"``
            (best ranked) or ``"fail"``.
        forbid: rules that may never be applied; a candidate needing one is refused.
        max_depth: deepest nesting our own parser accepts.
        max_candidates: how many extracted candidates to try at most.
        costs: per-rule cost overrides on top of :data:`RULE_COSTS`.
    """

    name: str = "default"
    align: bool = True
    coerce: bool = True
    drop_extra: bool = True
    fill_defaults: bool = True
    fuzzy_keys: float | None = 0.8
    loose_numbers: bool = False
    accept_truncated: bool = True
    complete_cut_values: bool = False
    json_repair: bool = True
    prose_answers: bool = True
    max_cost: float | None = None
    on_ambiguity: Ambiguity = "first"
    forbid: frozenset[str] = frozenset()
    max_depth: int = 500
    max_candidates: int = 16
    costs: Mapping[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.on_ambiguity not in ("first", "fail"):
            raise ConfigError(f"on_ambiguity must be 'first' or 'fail', not {self.on_ambiguity!r}")
        if self.fuzzy_keys is not None and not 0.0 < self.fuzzy_keys <= 1.0:
            raise ConfigError(f"fuzzy_keys must be in (0, 1] or None, not {self.fuzzy_keys!r}")
        if self.max_depth < 1 or self.max_candidates < 1:
            raise ConfigError("max_depth and max_candidates must be at least 1")
        unknown = set(self.forbid) - set(RULE_COSTS)
        if unknown:
            raise ConfigError(
                f"unknown rule(s) in forbid: {sorted(unknown)}; known rules: {sorted(RULE_COSTS)}"
            )

    def cost(self, rule: str) -> float:
        """The cost of one application of ``rule`` under this policy."""
        found = self.costs.get(rule)
        if found is not None:
            return found
        return RULE_COSTS.get(rule, 1.0)

    def replace(self, **changes: object) -> Policy:
        """A copy with some fields changed."""
        return dataclasses.replace(self, **changes)  # type: ignore[arg-type]


STRICT = Policy(
    name="strict",
    align=False,
    coerce=False,
    drop_extra=False,
    fill_defaults=False,
    fuzzy_keys=None,
    accept_truncated=False,
    json_repair=False,
    prose_answers=False,
)
DEFAULT = Policy()
LENIENT = Policy(name="lenient", fuzzy_keys=0.7, loose_numbers=True, complete_cut_values=True)

#: The presets by name.
PRESETS: Mapping[str, Policy] = MappingProxyType({p.name: p for p in (STRICT, DEFAULT, LENIENT)})


def resolve_policy(policy: Policy | str | None) -> Policy:
    """Turn a preset name (``"strict"``, ``"default"``, ``"lenient"``) or ``None`` into a Policy."""
    if policy is None:
        return DEFAULT
    if isinstance(policy, Policy):
        return policy
    if isinstance(policy, str):
        try:
            return PRESETS[policy]
        except KeyError:
            raise ConfigError(
                f"unknown policy {policy!r}; choose one of {sorted(PRESETS)} or pass a Policy"
            ) from None
    raise ConfigError(f"policy must be a Policy or a preset name, not {type(policy).__name__}")
