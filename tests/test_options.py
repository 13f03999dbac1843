"""The options every structured call shares: one record, one set of defaults."""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Callable
from typing import Any

import pytest

import repairllm as rl
from repairllm.options import CallOptions

FIELDS = {f.name: f.default for f in dataclasses.fields(CallOptions)}


@pytest.mark.parametrize(
    "fn",
    [rl.generate, rl.agenerate, rl.stream, rl.astream, rl.repairing],
    ids=lambda fn: fn.__name__,
)
def test_public_keywords_take_their_defaults_from_the_options(fn: Callable[..., Any]) -> None:
    params = inspect.signature(fn).parameters
    shared = {n: p for n, p in params.items() if n in FIELDS}
    assert shared, fn.__name__
    for name, param in shared.items():
        assert param.kind is inspect.Parameter.KEYWORD_ONLY, name
        assert param.default == FIELDS[name], name


def test_generate_takes_every_option() -> None:
    assert set(FIELDS) <= set(inspect.signature(rl.generate).parameters)
    assert inspect.signature(rl.generate).parameters == inspect.signature(rl.agenerate).parameters


@pytest.mark.parametrize("field", ["retries", "continuations", "transient_retries"])
def test_negative_counts_are_refused(field: str) -> None:
    with pytest.raises(rl.InvalidInput, match=">= 0"):
        CallOptions(**{field: -1})
    if field == "retries":
        with pytest.raises(rl.InvalidInput, match=">= 0"):
            rl.repairing(None, retries=-1)


def test_options_are_frozen_and_keyword_only() -> None:
    call = CallOptions(retries=1)
    with pytest.raises(dataclasses.FrozenInstanceError):
        call.retries = 3  # type: ignore[misc]
    with pytest.raises(TypeError):
        CallOptions(1)  # type: ignore[misc]
