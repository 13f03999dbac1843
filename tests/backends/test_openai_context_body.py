"""The openai driver reads "context exceeded" from an error body in linear time.

The body is whatever the server (or a proxy in front of it) sent; the pattern
``maximum context length is (\\d+).*?requested (\\d+)`` gave back one digit at a time
and scanned to the end again for each, so 224 KB of digits took 5.9 s. Only the
body's start is read now, and no number gives back digits.
"""

from __future__ import annotations

import pytest

pytest.importorskip("openai")

from repairllm.bench.adversarial import growth
from repairllm_backends import openai as driver

OPENAI = (
    "This model's maximum context length is 4097 tokens. However, you requested 4154 "
    "tokens (154 in the messages, 4000 in the completion). Please reduce the length."
)
LLAMA = "Requested tokens (5000) exceed context window of 4096"


@pytest.mark.parametrize(
    ("body", "numbers"),
    [
        pytest.param(OPENAI, (4154, 4097), id="openai-wording"),
        pytest.param(LLAMA, (5000, 4096), id="llama-cpp-wording"),
        pytest.param('{"error": {"message": "' + OPENAI + '"}}', (4154, 4097), id="in-json"),
        pytest.param("maximum context length is 12 tokens", None, id="no-request"),
        pytest.param("maximum context length is " + "9" * 40 + " requested 5", None, id="absurd"),
        pytest.param("x" * driver._CONTEXT_SCAN + OPENAI, None, id="past-the-start"),
    ],
)
def test_context_numbers(body: str, numbers: tuple[int, int] | None) -> None:
    assert driver._context_numbers(body, None) == numbers


@pytest.mark.parametrize(
    "unit",
    [
        pytest.param("1", id="digits"),
        pytest.param("maximum context length is 5 tokens; ", id="repeated-phrase"),
    ],
)
def test_a_hostile_body_costs_linear_time(unit: str) -> None:
    head = "This model's maximum context length is "
    small, large = (head + unit * (n // len(unit)) for n in (22_400, 224_000))
    assert driver._context_numbers(large, None) is None
    # Quadratic before: 224 KB took 5.9 s, about a hundred times 22.4 KB.
    measured = growth(
        lambda: driver._context_numbers(small, None),
        lambda: driver._context_numbers(large, None),
        10,
        15,
    )
    assert measured.ratio <= 15, measured
