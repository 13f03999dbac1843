"""Every adversarial shape of :mod:`repairllm.bench.adversarial` grows linearly.

Each shape runs at a small size and at eight times that, and the time may grow at most
12 times (a quadratic stage grows 64 times). Eight, a power of two, because some
stages redo work at doubling sizes: the stream's fallback repairs the buffer each time
it has doubled, so its cost is between two and three passes over the text depending on
where the size falls between two powers of two. Ten times the text moves that place,
and a linear shape measured x16.5 on CI; sizes a power of two apart fall at the same
place, so the ratio is the work's, not the schedule's. The small size is the first of
1, 2, 4 ... KB that takes a few milliseconds, so that the ratio is not one of timer
noise, and the whole file stays under half a minute.

:func:`~repairllm.bench.adversarial.growth` does the timing: the thread's own CPU time
with the collector paused, the small size in windows of eight calls so that both sizes
are timed over windows of the same length, and a ratio over the bound measured again
(a super-linear shape fails again, a disturbed run does not).
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from repairllm.bench.adversarial import SHAPES, Shape, best_time, growth, run_shape

#: How many times the small size the large one is (see the module's docstring) ...
FACTOR = 8
#: ... and the most the time may grow between them.
MAX_GROWTH = 12.0
# The small size is grown until a run takes this long (CPU seconds) ...
_MEASURABLE = 0.003
# ... up to this size; and a large run under this long passes whatever the ratio.
_SMALL_MAX = 32_000
_NEGLIGIBLE = 0.02


def _call(shape: Shape, size: int) -> Callable[[], None]:
    text = shape.build(size)
    return lambda: run_shape(shape, text)


@pytest.mark.parametrize("shape", SHAPES, ids=[s.name for s in SHAPES])
def test_time_grows_linearly(shape: Shape) -> None:
    if shape.kind == "openai":
        pytest.importorskip("openai")
    size = 1_000
    small = _call(shape, size)
    while best_time(small) < _MEASURABLE and size < _SMALL_MAX:
        size *= 2
        small = _call(shape, size)
    measured = growth(small, _call(shape, FACTOR * size), FACTOR, MAX_GROWTH)
    if measured.large < _NEGLIGIBLE:
        return
    assert measured.ratio <= MAX_GROWTH, (
        f"{shape.name}: {size:,} chars {measured.small * 1e3:.1f} ms, {FACTOR * size:,} "
        f"chars {measured.large * 1e3:.1f} ms: x{measured.ratio:.1f} for x{FACTOR} the "
        f"text ({shape.note or 'super-linear'})"
    )


def test_shapes_have_unique_names() -> None:
    names = [s.name for s in SHAPES]
    assert len(names) == len(set(names))


@pytest.mark.parametrize("shape", SHAPES, ids=[s.name for s in SHAPES])
def test_shapes_build_about_their_size(shape: Shape) -> None:
    assert 0.9 * 10_000 <= len(shape.build(10_000)) <= 1.1 * 10_000


def _quadratic(n: int) -> Callable[[], None]:
    # Rebuilding a list at every step: the shape of the bugs this file is here to catch.
    def run() -> None:
        items: list[int] = []
        for i in range(n):
            items = [*items, i]

    return run


def _linear(n: int) -> Callable[[], None]:
    return lambda: sum(i * i for i in range(n))


def test_growth_catches_a_quadratic_stage() -> None:
    measured = growth(_quadratic(250), _quadratic(FACTOR * 250), FACTOR, MAX_GROWTH)
    assert measured.ratio > 2 * MAX_GROWTH, measured


def test_growth_passes_a_linear_stage() -> None:
    measured = growth(_linear(20_000), _linear(FACTOR * 20_000), FACTOR, MAX_GROWTH)
    assert measured.ratio <= MAX_GROWTH, measured


def test_growth_stops_at_the_first_pair_within_the_bound() -> None:
    calls = {"small": 0, "large": 0}

    def counted(name: str) -> Callable[[], None]:
        def call() -> None:
            calls[name] += 1

        return call

    growth(counted("small"), counted("large"), 4, bound=1e9, pairs=5)
    assert calls == {"small": 1 + 4, "large": 1 + 1}  # a warm-up call each, then one pair
    calls.update(small=0, large=0)
    growth(counted("small"), counted("large"), 4, bound=0.0, pairs=5)
    assert calls == {"small": 1 + 5 * 4, "large": 1 + 5}
