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


@pytest.mark.parametrize(
    ("fields", "named"),
    [
        ({"retries": "2"}, "retries"),
        ({"retries": None}, "retries"),
        ({"retries": True}, "retries"),
        ({"transient_retries": None}, "transient_retries"),
        ({"continuations": 1.5}, "continuations"),
        ({"backoff": -1}, "backoff"),
        ({"backoff": float("nan")}, "backoff"),
        ({"backoff": "1"}, "backoff"),
        ({"prompt_form": "nope"}, "prompt_form"),
    ],
    ids=str,
)
def test_options_of_the_wrong_type_are_refused(fields: dict[str, Any], named: str) -> None:
    # They were TypeErrors (a count compared with 0), a KeyError when the prompt was
    # built (stream_items), or accepted (call_tools' listing fell back to a skeleton).
    with pytest.raises(rl.InvalidInput, match=named):
        CallOptions(**fields)


def test_call_tools_and_stream_items_refuse_an_unknown_prompt_form() -> None:
    with pytest.raises(rl.InvalidInput, match="prompt_form"):
        rl.call_tools(_Never(), "q", {"f": {"type": "object"}}, prompt_form="nope")  # type: ignore[call-overload]
    with pytest.raises(rl.InvalidInput, match="prompt_form"):
        list(rl.stream_items(_Never(), "q", list[int], prompt_form="nope"))  # type: ignore[arg-type]


class _Never(rl.Backend):
    name = "never"
    supports_tools = True

    def _chat(self, messages: Any, options: Any) -> Any:
        raise AssertionError("no request is sent with options that are refused")


def test_options_are_frozen_and_keyword_only() -> None:
    call = CallOptions(retries=1)
    with pytest.raises(dataclasses.FrozenInstanceError):
        call.retries = 3  # type: ignore[misc]
    with pytest.raises(TypeError):
        CallOptions(1)  # type: ignore[misc]
