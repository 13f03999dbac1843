"""Every adversarial shape of :mod:`repairllm.bench.adversarial` grows linearly.

Each shape runs at a small size and at eight times that, and the time may grow at most
12 times (a quadratic stage grows 64 times). Eight, a power of two, because some
stages redo work at doubling sizes: the stream's fallback repairs the buffer each time
it has doubled, so its cost is between two and three passes over the text depending on
where the size falls between two powers of two. Ten times the text moves that place,
and a linear shape measured x16.5 on CI; sizes a power of two apart fall at the same
place, so the ratio is the work's, not the schedule's. The small size is the first of
1, 2, 4 ... KB that takes a few milliseconds, so that the ratio is not one of timer
noise, and the whole file stays under 20 seconds. The timing thread's CPU time with the
collector paused, the best of three after a warm-up, keeps other work on a loaded
machine, threads that earlier tests left behind, and the size of the suite's heap from
moving it much; a ratio over the bound is measured again (a super-linear shape fails
again, a disturbed run does not).
"""

from __future__ import annotations

import pytest

from repairllm.bench.adversarial import SHAPES, Shape, best_time, run_shape

#: How many times the small size the large one is (see the module's docstring) ...
FACTOR = 8
#: ... and the most the time may grow between them.
MAX_GROWTH = 12.0
# The small size is grown until a run takes this long (CPU seconds) ...
_MEASURABLE = 0.003
# ... up to this size; and a large run under this long passes whatever the ratio.
_SMALL_MAX = 32_000
_NEGLIGIBLE = 0.02


def _time(shape: Shape, size: int) -> float:
    text = shape.build(size)
    return best_time(lambda: run_shape(shape, text))


@pytest.mark.parametrize("shape", SHAPES, ids=[s.name for s in SHAPES])
def test_time_grows_linearly(shape: Shape) -> None:
    if shape.kind == "openai":
        pytest.importorskip("openai")
    size = 1_000
    small = _time(shape, size)
    while small < _MEASURABLE and size < _SMALL_MAX:
        size *= 2
        small = _time(shape, size)
    large = _time(shape, FACTOR * size)
    if large < _NEGLIGIBLE:
        return
    growth = large / max(small, 1e-6)
    for _ in range(3):  # a busy machine's hiccup is not growth: measure again, keep the best
        if growth <= MAX_GROWTH:
            break
        small = min(small, _time(shape, size))
        large = min(large, _time(shape, FACTOR * size))
        growth = large / max(small, 1e-6)
    assert growth <= MAX_GROWTH, (
        f"{shape.name}: {size:,} chars {small * 1e3:.1f} ms, {FACTOR * size:,} chars "
        f"{large * 1e3:.1f} ms: x{growth:.1f} for x{FACTOR} the text "
        f"({shape.note or 'super-linear'})"
    )


def test_shapes_have_unique_names() -> None:
    names = [s.name for s in SHAPES]
    assert len(names) == len(set(names))


@pytest.mark.parametrize("shape", SHAPES, ids=[s.name for s in SHAPES])
def test_shapes_build_about_their_size(shape: Shape) -> None:
    assert 0.9 * 10_000 <= len(shape.build(10_000)) <= 1.1 * 10_000
