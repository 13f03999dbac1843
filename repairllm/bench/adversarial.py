"""Adversarial inputs: shapes that made a stage super-linear, timed at two sizes.

Each :class:`Shape` builds a text of about ``size`` characters and runs one entry
point on it: :func:`repairllm.repair` (most), the incremental parser fed in chunks with a
snapshot whenever :meth:`~repairllm.lexical.incremental.IncrementalParser.feed` says one
is due (``stream_*``), or the openai driver's reading of a server's error body
(``openai_*``). A linear stage costs about ten times as much for ten times the text;
a quadratic one a hundred.

Times are CPU seconds of the calling thread (``time.thread_time``), the best of a few
runs after a warm-up, with the cyclic garbage collector paused as :mod:`timeit` does.
Other work on the machine moves CPU time less than wall time; the thread's own time
leaves out the process's other threads (a server or a pool that a test left running
bills its bursts to the process, and a long run catches more of them than a short
one); and a full collection costs in proportion to everything the process holds, not
to the text.

:func:`growth` times two sizes side by side, in windows of the same length, for the
tests' growth checks (see there for why).

``benchmarks/adversarial.py`` runs every shape at 125 KB and 1 MB and checks the
targets (1 MB in under a second, at most 12 times the 125 KB time);
``tests/bench/test_adversarial.py`` checks the growth at smaller sizes.
"""

from __future__ import annotations

import contextlib
import gc
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

__all__ = ["SHAPES", "Growth", "Shape", "best_time", "growth", "run_shape"]


def _fill(unit: str, size: int, head: str = "", tail: str = "") -> str:
    """``head`` + ``unit`` repeated to about ``size`` characters in all + ``tail``."""
    return head + unit * max(1, (size - len(head) - len(tail)) // len(unit)) + tail


@dataclass(frozen=True)
class Shape:
    """One adversarial input.

    Attributes:
        name: a short id.
        build: the text of about the given size.
        kind: what runs it: ``"repair"``, ``"repair_schema"`` (with a small object schema),
            ``"stream"`` or ``"openai"``.
        note: what it attacks (where it was quadratic, when it was).
    """

    name: str
    build: Callable[[int], str]
    kind: str = "repair"
    note: str = ""


SHAPES: tuple[Shape, ...] = (
    # Reasoning blocks.
    Shape(
        "think_unclosed", lambda n: _fill("<think>", n), note="split_think: lazy match per opener"
    ),
    Shape(
        "think_closed_many",
        lambda n: _fill("<think>x</think>", n, tail='{"a": 1}'),
        note="split_think: body rebuilt per block",
    ),
    Shape("think_close_only", lambda n: _fill("</think>", n, tail='{"a": 1}')),
    Shape("think_opened_text", lambda n: _fill("<think>a", n, head="<think>")),
    Shape("lt_run", lambda n: "<" * n, note="case-insensitive tag patterns at every '<'"),
    # Tag pairs and fences.
    Shape(
        "tags_far_json",
        lambda n: _fill("[A]x[/A]", n, tail='<json>{"a": 1}</json>'),
        note="_tags: the far pattern searched again after every pair",
    ),
    Shape("tags_unclosed", lambda n: _fill("[A]x", n)),
    Shape("angle_unclosed", lambda n: _fill("<json>x", n)),
    Shape("backticks", lambda n: "`" * n, note="fence opener retried to the end per backtick"),
    Shape("tildes", lambda n: "~" * n),
    Shape("fences_unclosed", lambda n: _fill("```\n", n)),
    Shape("fences_json_open", lambda n: _fill("```json\n{", n)),
    # Brackets, for the lexical tiers and json-repair.
    Shape("open_braces", lambda n: "{" * n, note="json-repair: rescans per unfilled object"),
    Shape("braces_prose", lambda n: _fill("{ word ", n)),
    Shape("open_brackets", lambda n: "[" * n),
    Shape("close_braces", lambda n: "}" * n),
    Shape("list_of_ones", lambda n: _fill("1,", n, head="["), note="1 MB of [1, (cut)"),
    Shape("nested_ones", lambda n: _fill("[1,", n)),
    Shape("ones_dense_bad", lambda n: _fill("1,1.,", n, head="["), note="a failed run per element"),
    Shape(
        "ones_bad_tail",
        lambda n: _fill("1,", n, head="[", tail="1.,]"),
        note="a number run that is not strict at its end, looked for again per element",
    ),
    Shape("commas", lambda n: _fill(",", n, head="[")),
    Shape("many_objects", lambda n: _fill('{"a":1} ', n)),
    Shape("many_bad_objects", lambda n: _fill("{a:1} ", n)),
    # Strings and escapes.
    Shape("quotes", lambda n: '"' * n),
    Shape("quotes_in_object", lambda n: _fill('"', n, head='{"a": ', tail="}")),
    Shape("single_quotes", lambda n: "'" * n),
    Shape("backslashes", lambda n: _fill("\\", n, head='"')),
    Shape("backslashes_in_object", lambda n: _fill("\\", n, head='{"a": "')),
    Shape("unicode_escapes", lambda n: _fill("\\u", n, head='"')),
    Shape("digits_in_object", lambda n: _fill("1", n, head='{"a":')),
    Shape("python_words", lambda n: _fill("True ", n, head="[")),
    Shape("unquoted_keys", lambda n: _fill("a:1 ", n, head="{")),
    Shape("scalar_lines", lambda n: _fill('"a"\n', n)),
    Shape("prose", lambda n: _fill("lorem ipsum ", n)),
    # With a schema: quoted names inside a string value, which the tolerant tier may
    # scan past (within a budget of the text's length).
    Shape(
        "inner_names_unended",
        lambda n: _fill('"n": x ', n, head='{"a": "'),
        "repair_schema",
        "a string scanned past every quoted name to the end",
    ),
    Shape(
        "inner_names_members",
        lambda n: _fill('"a": "b "n": c", ', n, head="{"),
        "repair_schema",
    ),
    # The incremental parser, fed in chunks, a snapshot whenever one is due.
    Shape(
        "stream_wide_list",
        lambda n: _fill("1,", n, head="[", tail="1]"),
        "stream",
        "a snapshot copied the whole open list",
    ),
    Shape(
        "stream_deep_objects",
        lambda n: '{"a":' * (n // 6) + "1" + "}" * (n // 6),
        "stream",
        "a snapshot copied every level",
    ),
    Shape(
        "stream_deep_members", lambda n: '{"k":1,"a":' * (n // 12) + "1" + "}" * (n // 12), "stream"
    ),
    Shape(
        "stream_long_string",
        lambda n: _fill("x", n, head='{"a": "', tail='"}'),
        "stream",
        "the buffer copied at every chunk",
    ),
    Shape(
        "stream_ones_bad_tail",
        lambda n: _fill("1,", n, head="[", tail="1.,1]"),
        "stream",
        "a number run that is not strict at its end, looked for again per element",
    ),
    Shape("stream_spaces", lambda n: _fill(" ", n, tail="[1]"), "stream", "lstrip per chunk"),
    Shape(
        "stream_long_number",
        lambda n: _fill("1", n, head="[", tail="]"),
        "stream",
        "a number at the end matched again per chunk",
    ),
    Shape(
        "stream_think", lambda n: _fill("x", n, head="<think>", tail='</think>{"a": 1}'), "stream"
    ),
    Shape("stream_not_json", lambda n: _fill("{a: 1}, ", n, head="["), "stream"),
    # The openai driver's reading of an error body.
    Shape(
        "openai_context_digits",
        lambda n: _fill("1", n, head="This model's maximum context length is "),
        "openai",
        "\\d+.*? retried per digit",
    ),
    Shape(
        "openai_context_repeated",
        lambda n: _fill("maximum context length is 5 tokens; ", n),
        "openai",
    ),
)

#: Characters per chunk for the ``stream`` shapes (a few tokens, as servers send them).
CHUNK = 16


def _run_repair(text: str) -> None:
    import repairllm
    from repairllm.errors import RepairLLMError

    with contextlib.suppress(RepairLLMError):  # refusing is an answer too
        repairllm.repair(text)


_SCHEMA = {"type": "object", "properties": {"a": {"type": "string"}}}


def _run_repair_schema(text: str) -> None:
    import repairllm
    from repairllm.errors import RepairLLMError

    with contextlib.suppress(RepairLLMError):
        repairllm.repair(text, _SCHEMA)


def _run_stream(text: str) -> None:
    from repairllm.stream import IncrementalParser

    parser = IncrementalParser()
    for i in range(0, len(text), CHUNK):
        if parser.feed(text[i : i + CHUNK]):
            parser.snapshot()
    if parser.close():
        parser.snapshot()


def _run_openai(text: str) -> None:
    from repairllm_backends.openai import _context_numbers

    _context_numbers(text, None)


_RUNNERS: dict[str, Callable[[str], None]] = {
    "repair": _run_repair,
    "repair_schema": _run_repair_schema,
    "stream": _run_stream,
    "openai": _run_openai,
}


def run_shape(shape: Shape, text: str) -> None:
    """Run ``shape``'s entry point on ``text``."""
    _RUNNERS[shape.kind](text)


@contextlib.contextmanager
def _collector_paused() -> Iterator[None]:
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _window(fn: Callable[[], Any], calls: int) -> float:
    """CPU seconds of this thread for ``calls`` calls of ``fn`` in a row, per call."""
    start = time.thread_time()
    for _ in range(calls):
        fn()
    return (time.thread_time() - start) / calls


def best_time(fn: Callable[[], Any], runs: int = 3, calls: int = 1) -> float:
    """The least CPU time of this thread for one call of ``fn``: the best of ``runs``
    windows of ``calls`` calls each (after one untimed call), with the garbage collector
    paused while they run."""
    fn()
    with _collector_paused():
        return min(_window(fn, calls) for _ in range(runs))


@dataclass(frozen=True)
class Growth:
    """What :func:`growth` measured: one call at each size, timed side by side."""

    small: float
    large: float

    @property
    def ratio(self) -> float:
        return self.large / max(self.small, 1e-6)


def growth(
    small: Callable[[], Any],
    large: Callable[[], Any],
    factor: int,
    bound: float,
    pairs: int = 8,
) -> Growth:
    """How much more one call of ``large`` costs than one of ``small``, where ``large``
    does ``factor`` times the work: the least ratio of up to ``pairs`` pairs of
    measurements, stopping at the first within ``bound``.

    Each pair times ``factor`` calls of ``small`` and then one of ``large``, so the two
    are windows of about the same length, next to each other in time. On a shared
    machine the speed of one call moves by more than the bound's margin over a linear
    ratio, and it moves in phases a few seconds long (measured here: 4.0 to 7.8 ms for
    one text, 27 to 48 ms for eight times that, with no time stolen by the host). Taking
    each size's best apart compares a quiet moment of one with a busy moment of the
    other: a short call finds a quiet moment far more often than a long one does, and a
    linear stage read x12.6 on CI. A pair sees one moment; a super-linear stage is over
    the bound in every pair (a quadratic one by five times), a busy moment in few.
    """
    small()
    large()
    with _collector_paused():
        best = Growth(_window(small, factor), _window(large, 1))
        for _ in range(pairs - 1):
            if best.ratio <= bound:
                break
            pair = Growth(_window(small, factor), _window(large, 1))
            best = min(best, pair, key=lambda g: g.ratio)
    return best
