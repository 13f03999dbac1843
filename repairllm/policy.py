"""What repairs are allowed, and what each one costs.

A :class:`Policy` is plain data, so a benchmark can run the same replies under several
policies and compare them. Three presets: ``STRICT`` (lexical fixes only: nothing is
coerced, renamed, dropped or completed), ``DEFAULT`` and ``LENIENT``.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Literal

from .errors import ConfigError
from .rules import Rule

__all__ = ["DEFAULT", "LENIENT", "PRESETS", "RULE_COSTS", "STRICT", "Policy", "resolve_policy"]

#: The cost of each rule by name (each :class:`~repairllm.rules.Rule` carries its own).
#: Lexical fixes that cannot change meaning are cheap; guesses (a fuzzy key, a completed
#: truncation, json-repair's long tail) are dear, so that a candidate needing fewer or
#: safer guesses wins.
_COSTS: dict[str, float] = {rule.value: rule.cost for rule in Rule}
RULE_COSTS: Mapping[str, float] = MappingProxyType(_COSTS)

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
        max_fixes: the most repairs our own parser makes in one candidate before it gives
            up on it (``None``: no limit). A reply that needs tens of thousands of fixes
            is not one a model got slightly wrong, and reading it costs time in
            proportion: at 10,000 such a text is refused in about a tenth of a second.
        max_candidates: how many extracted candidates to try at most.
        costs: per-rule cost overrides on top of :data:`RULE_COSTS`.

    Raises:
        ConfigError: a field is out of range, or ``forbid`` or ``costs`` names a rule
            that is not a :class:`~repairllm.rules.Rule`.
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
    max_fixes: int | None = 10_000
    max_candidates: int = 16
    costs: Mapping[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._check_types()
        if self.on_ambiguity not in ("first", "fail"):
            raise ConfigError(f"on_ambiguity must be 'first' or 'fail', not {self.on_ambiguity!r}")
        if self.fuzzy_keys is not None and not 0.0 < self.fuzzy_keys <= 1.0:
            raise ConfigError(f"fuzzy_keys must be in (0, 1] or None, not {self.fuzzy_keys!r}")
        if self.max_depth < 1 or self.max_candidates < 1:
            raise ConfigError("max_depth and max_candidates must be at least 1")
        if self.max_fixes is not None and self.max_fixes < 1:
            raise ConfigError(f"max_fixes must be at least 1 or None, not {self.max_fixes!r}")
        for name, given in (("forbid", self.forbid), ("costs", self.costs)):
            unknown = set(given) - set(RULE_COSTS)
            if unknown:
                raise ConfigError(
                    f"unknown rule(s) in {name}: {sorted(unknown)}; "
                    f"known rules: {sorted(RULE_COSTS)}"
                )

    def _check_types(self) -> None:
        """Refuse a field of the wrong type here, not as a TypeError mid-repair."""
        for name in ("align", "coerce", "drop_extra", "fill_defaults", "loose_numbers"):
            _expect(name, getattr(self, name), bool)
        for name in ("accept_truncated", "complete_cut_values", "json_repair", "prose_answers"):
            _expect(name, getattr(self, name), bool)
        _expect("max_depth", self.max_depth, int)
        _expect("max_candidates", self.max_candidates, int)
        _expect("max_fixes", self.max_fixes, int, optional=True)
        _expect("fuzzy_keys", self.fuzzy_keys, float, optional=True)
        _expect("max_cost", self.max_cost, float, optional=True)
        if isinstance(self.forbid, str) or not isinstance(self.forbid, Collection):
            raise ConfigError(
                f"forbid must be a set of rule names, not {type(self.forbid).__name__}"
            )
        if not isinstance(self.costs, Mapping):
            raise ConfigError(
                f"costs must be a mapping of rule name to cost, not {type(self.costs).__name__}"
            )
        for rule, cost in self.costs.items():
            if isinstance(cost, bool) or not isinstance(cost, int | float) or cost != cost:
                raise ConfigError(f"the cost of {rule!r} must be a number, not {cost!r}")

    def cost(self, rule: str) -> float:
        """The cost of one application of ``rule`` (a :class:`~repairllm.rules.Rule` or
        its name) under this policy.

        Raises:
            ConfigError: ``rule`` is not a rule.
        """
        found = self.costs.get(rule)
        if found is not None:
            return found
        cost = _COSTS.get(rule)
        if cost is None:
            raise ConfigError(f"unknown repair rule {rule!r}; known rules: {sorted(RULE_COSTS)}")
        return cost

    def replace(self, **changes: object) -> Policy:
        """A copy with some fields changed."""
        return dataclasses.replace(self, **changes)  # type: ignore[arg-type]

    @functools.cached_property
    def without_json_repair(self) -> Policy:
        """This policy with ``json_repair`` off (itself when it is off already), made once.

        Align reads JSON text found inside a value under it, once per such text; making a
        Policy checks every field, which cost three quarters of decoding a short member.
        (Not a field: equality, ``repr`` and :meth:`replace` never see it.)
        """
        return self.replace(json_repair=False) if self.json_repair else self


def _expect(name: str, value: object, kind: type, *, optional: bool = False) -> None:
    """``value`` is a ``kind`` (a float field takes an int; no number field takes a bool
    or NaN), or ``None`` where ``optional``."""
    if value is None and optional:
        return
    if kind is bool:
        ok = isinstance(value, bool)
    elif kind is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
    else:
        ok = isinstance(value, int | float) and not isinstance(value, bool) and value == value
    if not ok:
        allowed = f"{kind.__name__} or None" if optional else kind.__name__
        raise ConfigError(f"Policy.{name} must be {allowed}, not {value!r}")


STRICT = Policy(
    name="strict",
    align=False,
    # The lexical stage's guesses: a placeholder dropped (the list was likely cut short
    # by the model), an unquoted value read past its commas to the next key.
    forbid=frozenset({Rule.PLACEHOLDER, Rule.UNQUOTED_COMMAS}),
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
