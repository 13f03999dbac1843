"""Masking a secret in the data an error holds: every kind keeps its type, nothing that
shows no secret is copied, and a link of the cause chain that shows one is replaced."""

from __future__ import annotations

from typing import Any, NamedTuple

from pydantic import BaseModel

import repairllm as rl
from repairllm.attempt import Attempt
from repairllm.backend import RedactedCause, _redact_value, redact_own_error
from repairllm.ledger import Fix, Issue, Ledger
from repairllm.outcome import Candidate, Outcome

KEY = "sk-REDACT-1234"
SECRETS = [KEY]


class Person(BaseModel):
    name: str
    tags: list[str] = []


class Pair(NamedTuple):
    left: str
    right: int


class Opaque:
    def __init__(self, text: str) -> None:
        self.text = text

    def __repr__(self) -> str:
        return f"Opaque({self.text!r})"


def outcome_with(text: str) -> Outcome:
    fix = Fix("lexical", "single_quotes", f"/{text}", f"'{text}'", f'"{text}"', 0.1)
    return Outcome(
        value=Person(name=text, tags=["a", text]),
        ledger=Ledger([fix]),
        candidate=Candidate(text, "whole", 0),
        issues=[Issue("/name", f"{text!r} is too long", got=text)],
        raw=text,
        data={"name": text, text: [1, (text, 2)]},
    )


def test_every_kind_keeps_its_type_with_the_secret_masked() -> None:
    masked = _redact_value(outcome_with(KEY), SECRETS)
    assert KEY not in repr(masked)
    assert isinstance(masked, Outcome)
    assert isinstance(masked.value, Person)
    assert masked.value.name == "***"
    assert masked.value.tags == ["a", "***"]
    assert isinstance(masked.ledger, Ledger)
    assert masked.ledger[0] == Fix("lexical", "single_quotes", "/***", "'***'", '"***"', 0.1)
    assert masked.candidate == Candidate("***", "whole", 0)
    assert masked.issues == [Issue("/name", "'***' is too long", got="***")]
    assert masked.data == {"name": "***", "***": [1, ("***", 2)]}
    assert _redact_value(Pair(KEY, 3), SECRETS) == Pair("***", 3)
    assert _redact_value(KEY.encode(), SECRETS) == b"***"


def test_what_shows_no_secret_is_the_same_object() -> None:
    clean = outcome_with("Ada")
    assert _redact_value(clean, SECRETS) is clean
    assert _redact_value(clean.ledger, SECRETS) is clean.ledger
    data = {"a": [1, {"b": "c"}]}
    assert _redact_value(data, SECRETS) is data


def test_an_object_of_no_known_kind_is_replaced_by_its_masked_repr() -> None:
    assert _redact_value(Opaque(KEY), SECRETS) == "Opaque('***')"
    plain = Opaque("fine")
    assert _redact_value(plain, SECRETS) is plain


def test_a_secret_below_the_depth_bound_is_masked_too() -> None:
    deep: Any = KEY
    for _ in range(200):
        deep = [deep]
    assert KEY not in repr(_redact_value(deep, SECRETS))


def test_an_error_and_its_chain_are_masked_in_place() -> None:
    attempt = Attempt(raw=KEY, outcome=outcome_with(KEY), error=f"bad {KEY}")
    foreign = ValueError(f"input was {KEY}")
    hooks = RuntimeError("a hook failed")  # shows no secret: kept as it is
    foreign.__cause__ = hooks
    inner = rl.RepairFailed(KEY, outcome_with(KEY), [f"candidate {KEY}"])
    inner.__cause__ = foreign
    error = rl.RetriesExhausted([attempt], best=KEY)
    error.__cause__ = inner
    redact_own_error(error, SECRETS)
    assert error.attempts[0].raw == "***"
    assert isinstance(error.attempts[0], Attempt)
    assert error.attempts[0].error == "bad ***"
    assert error.best == "***"
    assert error.__cause__ is inner  # ours: masked in place, not replaced
    assert inner.raw == "***"
    assert inner.reasons == ["candidate ***"]
    assert isinstance(inner.best, Outcome)
    assert inner.best.raw == "***"
    assert inner.issues == [Issue("/name", "'***' is too long", got="***")]
    stand_in = inner.__cause__
    assert isinstance(stand_in, RedactedCause)
    assert str(stand_in) == "builtins.ValueError: input was ***"
    assert stand_in.__cause__ is hooks


def test_without_secrets_nothing_changes() -> None:
    error = rl.NoJSONFound(KEY)
    redact_own_error(error, ["", ""])
    assert error.raw == KEY


def test_the_longest_secret_is_masked_first() -> None:
    # A secret inside another (a header value that holds the key) would leave the
    # rest of the longer one showing if it were masked first: "xsk-***-1234".
    assert _redact_value({"k": f"x{KEY}"}, ["REDACT", KEY]) == {"k": "x***"}
