"""The repair rules are a closed set: an enum with its costs; an unknown rule is an error."""

from __future__ import annotations

import json
import pickle
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

import repairllm as rl
from repairllm.ledger import Fix
from repairllm.rules import Rule, rule_named

SCHEMAS = sorted((Path(__file__).resolve().parent.parent / "schemas").glob("*.json"))


def test_rule_costs_are_the_enums_costs_by_plain_name() -> None:
    assert list(rl.RULE_COSTS) == [rule.value for rule in Rule]
    assert all(type(name) is str for name in rl.RULE_COSTS)
    assert dict(rl.RULE_COSTS) == {r.value: r.cost for r in Rule}
    assert rl.RULE_COSTS["trailing_comma"] == Rule.TRAILING_COMMA.cost == 0.05
    assert rl.RULE_COSTS["json_repair"] == 3.0


def test_a_rule_reads_writes_and_hashes_as_its_name() -> None:
    rule = Rule.TRAILING_COMMA
    assert rule == "trailing_comma"
    assert hash(rule) == hash("trailing_comma")
    assert (str(rule), f"{rule}", f"{rule:>16}", repr(rule)) == (
        "trailing_comma",
        "trailing_comma",
        "  trailing_comma",
        "'trailing_comma'",
    )
    assert json.dumps({rule: [rule]}) == '{"trailing_comma": ["trailing_comma"]}'
    assert Rule("trailing_comma") is rule
    assert rule_named("trailing_comma") is rule
    assert rule_named(rule) is rule
    assert pickle.loads(pickle.dumps(rule)) is rule


def test_a_fix_holds_the_member_and_compares_as_before() -> None:
    by_name = Fix("lexical", "trailing_comma", "", ",", None, 0.05)
    by_member = Fix("lexical", Rule.TRAILING_COMMA, "", ",", None, 0.05)
    assert by_name.rule is Rule.TRAILING_COMMA
    assert by_name == by_member
    assert hash(by_name) == hash(by_member)
    assert repr(by_member) == (
        "Fix(stage='lexical', rule='trailing_comma', path='', before=',', after=None, cost=0.05)"
    )
    assert str(by_member) == "lexical:trailing_comma at /: ',' -> None"
    assert pickle.loads(pickle.dumps(by_member)) == by_member


@pytest.mark.parametrize("name", ["trailing_commas", "Trailing_Comma", "", "whole"])
def test_a_fix_with_an_unknown_rule_is_refused(name: str) -> None:
    with pytest.raises(ValueError, match=rf"unknown repair rule {name!r}"):
        Fix("lexical", name, "", None, None, 0.0)


@pytest.mark.parametrize(
    "fields",
    [
        {"costs": {"trailing_commas": 0.0}},
        {"costs": {"trailing_comma": 0.0, "coerse": 0.1}},
        {"forbid": frozenset({"key_fuzy"})},
    ],
    ids=["costs", "costs-one-of-two", "forbid"],
)
def test_a_policy_naming_an_unknown_rule_is_refused(fields: dict[str, Any]) -> None:
    field = next(iter(fields))
    with pytest.raises(rl.ConfigError, match=rf"unknown rule\(s\) in {field}: .*known rules: "):
        rl.Policy(**fields)


@pytest.mark.parametrize(
    ("fields", "named"),
    [
        ({"max_depth": "5"}, "max_depth"),
        ({"max_depth": None}, "max_depth"),
        ({"max_candidates": 2.5}, "max_candidates"),
        ({"max_cost": "x"}, "max_cost"),
        ({"fuzzy_keys": "0.5"}, "fuzzy_keys"),
        ({"align": "no"}, "align"),
        ({"forbid": "trailing_comma"}, "forbid"),
        ({"forbid": None}, "forbid"),
        ({"costs": None}, "costs"),
        ({"costs": {"trailing_comma": "x"}}, "trailing_comma"),
    ],
    ids=lambda v: "-".join(f"{k}={v[k]!r}" for k in v) if isinstance(v, dict) else None,
)
def test_a_policy_field_of_the_wrong_type_is_refused(fields: dict[str, Any], named: str) -> None:
    # Each was a TypeError in the middle of a repair, or (forbid as one string) an
    # error naming its letters as unknown rules.
    with pytest.raises(rl.ConfigError, match=named):
        rl.Policy(**fields)


def test_a_policy_prices_rules_by_name_or_member() -> None:
    policy = rl.Policy(costs={"trailing_comma": 0.5, Rule.COERCE: 0.0})
    assert policy.cost(Rule.TRAILING_COMMA) == policy.cost("trailing_comma") == 0.5
    assert policy.cost("coerce") == 0.0
    assert policy.cost(Rule.KEY_FUZZY) == 1.0
    out = rl.repair("[1, 2,]", outcome=True, policy=policy)
    assert out.ledger.cost == 0.5


def test_a_policy_asked_for_an_unknown_rule_refuses() -> None:
    with pytest.raises(rl.ConfigError, match="unknown repair rule 'no_such_rule'"):
        rl.DEFAULT.cost("no_such_rule")


# --------------------------------------------------------------------------- #
# Every rule the stages emit, over the parser fuzz corpus
# --------------------------------------------------------------------------- #


PER_OPERATOR = 4


def _corpus() -> list[tuple[str, Any]]:
    """The damaged documents of the parser fuzz, quick size, with each one's schema."""
    bench = pytest.importorskip("repairllm.bench.parser")
    from jsonschema.validators import validator_for

    from repairllm.bench.instances import make_instances

    entries = []
    for path in SCHEMAS:
        schema = json.loads(path.read_text(encoding="utf-8"))
        cls = validator_for(schema)
        check = cls(schema, format_checker=cls.FORMAT_CHECKER)
        made = make_instances(schema, count=3, seed=0)
        compiled = rl.compile_schema(schema)
        entries.append(bench.Entry("schemas", path.name, schema, compiled, check, made.values))
    docs, _ = bench.build_docs(entries, PER_OPERATOR, seed=0)
    return [(doc.text, entries[doc.entry].compiled) for doc in docs]


def _ledgers(text: str, schema: Any) -> list[rl.Ledger]:
    found = []
    for given in (schema, None):
        for policy in ("strict", "default", "lenient"):
            try:
                found.append(rl.repair(text, given, policy=policy, outcome=True).ledger)
            except rl.RepairFailed as exc:
                found.append(rl.Ledger(exc.ledger))
            except rl.NoJSONFound:
                pass
    return found


@pytest.mark.slow
def test_every_rule_the_fuzz_corpus_brings_out_is_a_rule_member() -> None:
    seen: Counter[str] = Counter()
    rules: set[Rule] = set()
    corpus = _corpus()
    assert len(corpus) >= 20 * PER_OPERATOR
    for text, schema in corpus:
        for cand in rl.candidates(text):
            assert cand.rule == "whole" or type(cand.rule) is Rule, cand
        for ledger in _ledgers(text, schema):
            for fix in ledger:
                assert type(fix.rule) is Rule, fix
                seen[fix.stage] += 1
                rules.add(fix.rule)
    # The corpus reaches every stage that writes to a ledger, and many of the rules.
    assert {"extract", "lexical", "align"} <= set(seen), seen
    assert len(rules) >= 15, sorted(rules)
