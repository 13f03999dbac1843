"""Our own parser stops after ``Policy.max_fixes`` repairs in one candidate.

A text that needs a fix every few characters (``{a:1 a:1 ...}``, ``[True True ...]``) is
not a reply a model got slightly wrong, and reading a megabyte of it cost seconds; past
the limit both the guided and the tolerant tier give up and the error says why.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

import repairllm as rl


def _unquoted(members: int) -> str:
    return "{" + " ".join(f"k{i}:{i}" for i in range(members)) + "}"


def _python_words(words: int) -> str:
    return "[" + " ".join(["True"] * words) + "]"


@pytest.mark.parametrize("build", [_unquoted, _python_words], ids=["unquoted", "python"])
def test_a_text_past_the_limit_is_refused_naming_it(build: Callable[[int], str]) -> None:
    policy = rl.DEFAULT.replace(max_fixes=50, json_repair=False)
    with pytest.raises(rl.RepairFailed, match=r"more than 50 repairs \(Policy\.max_fixes\)"):
        rl.repair(build(60), policy=policy)


@pytest.mark.parametrize("build", [_unquoted, _python_words], ids=["unquoted", "python"])
def test_a_text_within_the_limit_is_read(build: Callable[[int], str]) -> None:
    # _unquoted(n): a fix per key and per missing comma; _python_words(n): per word and comma.
    out = rl.repair(build(25), policy=rl.DEFAULT.replace(max_fixes=50), outcome=True)
    assert len(out.ledger) <= 50
    assert len(out.value) == 25


def test_no_limit_reads_everything() -> None:
    out = rl.repair(_unquoted(6000), policy=rl.DEFAULT.replace(max_fixes=None), outcome=True)
    assert len(out.value) == 6000
    assert len(out.ledger) > 10_000


def test_the_default_limit_refuses_what_it_would_take_seconds_to_read() -> None:
    with pytest.raises(rl.RepairFailed, match=r"Policy\.max_fixes"):
        rl.repair(_unquoted(6000))


@pytest.mark.parametrize("bad", [0, -1, "10", 1.5, True, float("nan")])
def test_a_limit_below_one_or_not_an_integer_is_a_config_error(bad: Any) -> None:
    with pytest.raises(rl.ConfigError, match="max_fixes"):
        rl.DEFAULT.replace(max_fixes=bad)
