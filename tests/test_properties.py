"""Properties that must hold for any input, checked with hypothesis."""

from __future__ import annotations

import contextlib
import json
import time
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import repairllm as rl

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=8), children, max_size=5)
    ),
    max_leaves=30,
)

# Text built from the characters that matter to a JSON parser reaches deep into the
# repair code far more often than arbitrary unicode does.
jsonish = st.text(
    alphabet=st.sampled_from(list("{}[]\",:'\n\t\\ /*#-+.0123456789eEtrufalsnNTFx<>`")),
    max_size=80,
)


@given(json_values, st.sampled_from([None, 2]), st.booleans())
@settings(max_examples=300)
def test_valid_json_is_identity_with_empty_ledger(
    value: Any, indent: int | None, ascii_: bool
) -> None:
    text = json.dumps(value, indent=indent, ensure_ascii=ascii_)
    out = rl.repair(text, outcome=True)
    assert out.value == value
    assert out.ledger.rules() == []


@given(st.one_of(jsonish, st.text(max_size=60)))
@settings(max_examples=800, suppress_health_check=[HealthCheck.too_slow])
def test_only_our_errors_escape(text: str) -> None:
    with contextlib.suppress(rl.RepairLLMError):
        rl.repair(text)


@given(st.one_of(jsonish, json_values.map(lambda v: json.dumps(v)[:-1] + ",}")))
@settings(max_examples=500, suppress_health_check=[HealthCheck.too_slow])
def test_repair_is_idempotent(text: str) -> None:
    try:
        first = rl.repair(text)
    except rl.RepairLLMError:
        return
    again = rl.repair(json.dumps(first), outcome=True)
    assert again.value == first
    assert again.ledger.rules() == []


@given(json_values, st.integers(min_value=0, max_value=10**6))
@settings(max_examples=200)
def test_any_json_with_trailing_comma_recovers(value: Any, seed: int) -> None:
    if not isinstance(value, (list, dict)) or not value:
        return
    text = json.dumps(value)
    damaged = text[:-1] + "," + text[-1]
    assert rl.repair(damaged) == value


def _big_inputs(size: int) -> dict[str, str]:
    unit = '{"name": "Ann", "tags": ["a", "b"], "n": 1.5},'
    reps = size // len(unit)
    return {
        "valid": "[" + unit * reps + "1]",
        "single_quotes": "[" + unit.replace('"', "'") * reps + "1]",
        "trailing_commas": "[" + unit.replace("]", ",]") * reps + "]",
        "truncated": "[" + unit * reps,
        "unterminated_string": '{"a": "' + "x" * size,
        "inner_quotes": '{"a": "' + 'say "hi" ' * (size // 9) + '"}',
        "many_spans": "{}" * (size // 2),
        "prose": "word " * (size // 5),
        "openers": "{[" * (size // 2),
        "quotes": '"' * size,
    }


@pytest.mark.slow
@pytest.mark.parametrize("kind", list(_big_inputs(10)))
def test_megabyte_inputs_finish_and_scale_linearly(kind: str) -> None:
    def cost(size: int) -> float:
        text = _big_inputs(size)[kind]
        start = time.perf_counter()
        with contextlib.suppress(rl.RepairLLMError):
            rl.repair(text)
        return time.perf_counter() - start

    small = min(cost(100_000) for _ in range(2))
    large = min(cost(1_000_000) for _ in range(2))
    # Ten times the input: linear work is about 10x; quadratic would be about 100x.
    # The best of two runs and a 1 s floor keep a busy CI machine from failing it
    # (one run there took 0.51 s against a usual 10-40 ms); quadratic work on 1 MB
    # takes minutes.
    assert large < max(40 * small, 1.0), (kind, small, large)


def test_ten_thousand_levels_is_a_clear_error() -> None:
    with pytest.raises(rl.RepairFailed, match="nests deeper"):
        rl.repair("[" * 10_000 + "]" * 10_000)
    with pytest.raises(rl.RepairFailed, match="nests deeper"):
        rl.repair('{"a": ' * 10_000)
