"""What json-repair, the last resort, may read: bounded by size and by estimated work.

json-repair is pure Python and scans an object it cannot fill again from its opener, so
250 KB of ``{`` took 26 s. A candidate reaches it only when it is short enough and its
nesting keeps the estimated work (its length, plus for every bracket the characters to
its closer or the end) within what a reply may spend; otherwise the error says why.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

import repairllm
from repairllm.lexical import fallback
from repairllm.lexical.fallback import (
    JSON_REPAIR_MAX,
    JSON_REPAIR_WORK,
    JsonRepairBudget,
    json_repair_work,
    refusal,
)


@pytest.fixture
def json_repair_calls(first_args: Callable[[Any, str], list[Any]]) -> list[str]:
    """The texts json-repair is asked to read."""
    import json_repair

    return first_args(json_repair, "loads")


@pytest.mark.parametrize(
    ("text", "work"),
    [
        pytest.param("", 0, id="empty"),
        pytest.param("[1]", 3 + 2, id="one-pair"),
        pytest.param("{{{", 3 + 3 + 2 + 1, id="unclosed-run-to-the-end"),
        pytest.param('["[[["]', 7 + 6, id="brackets-in-a-string-do-not-nest"),
        pytest.param('{"a": [1, 2]}', 13 + 12 + 5, id="nested"),
        pytest.param("}]", 2, id="closers-alone"),
    ],
)
def test_work(text: str, work: int) -> None:
    assert json_repair_work(text) == work


def test_deep_nesting_is_not_given_to_json_repair(json_repair_calls: list[str]) -> None:
    text = "{" * 5_000  # 12.5 million characters of estimated work
    with pytest.raises(repairllm.RepairFailed) as caught:
        repairllm.repair(text)
    assert json_repair_calls == []
    assert "json-repair not tried: with its nesting it would read about 12,507,500" in str(
        caught.value
    )


def test_a_long_candidate_is_not_given_to_json_repair(json_repair_calls: list[str]) -> None:
    text = '{"a": 1 : "' + "x" * JSON_REPAIR_MAX + '"}'  # a stray colon: a last resort
    with pytest.raises(repairllm.RepairFailed) as caught:
        repairllm.repair(text)
    assert json_repair_calls == []
    assert f"more than the {JSON_REPAIR_MAX:,} it may read" in str(caught.value)


def test_an_ordinary_last_resort_still_reaches_json_repair(json_repair_calls: list[str]) -> None:
    text = '{"a": 1 : 2}'  # our own tiers give up on the stray colon
    assert refusal(text) is None
    repairllm.repair(text, policy="lenient")
    assert json_repair_calls == [text]


def test_a_reply_shares_one_budget() -> None:
    piece = '{"a": "' + "x" * 15_000 + '" : 2}'  # about 30,000 characters of work
    budget = JsonRepairBudget()
    assert budget.take(piece) is None
    assert budget.take(piece) is None
    why = budget.take(piece)
    assert why is not None
    assert "spent on other candidates" in why
    assert budget.refusals == [why]
    assert budget.left == JSON_REPAIR_WORK - 2 * json_repair_work(piece)


def test_via_json_repair_refuses_past_the_bounds(json_repair_calls: list[str]) -> None:
    assert fallback.via_json_repair("[" * 1_000, repairllm.DEFAULT) is None
    assert json_repair_calls == []
