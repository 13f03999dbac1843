"""The local engine: a file in, a file out, a chunk at a time, on this machine.

Memory stays constant whatever the file's size: one chunk per worker is in flight, and
each is written as soon as it and every chunk before it are done, so the output is in
input order. ``jobs > 1`` repairs chunks in that many processes.

Ctrl-C stops after the chunk being written: the output then holds every row before the
resume point, as a valid file, and ``resume=True`` carries on from there. (A second
Ctrl-C stops at once; the output is still valid, the resume point still right.)
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import Future, ProcessPoolExecutor
from pathlib import Path
from typing import Any

from ..errors import ConfigError, InvalidInput
from .files import (
    Chunk,
    ResumePoint,
    detect_format,
    open_writer,
    read_chunks,
    written_rows,
)
from .records import Repairer, RepairSpec
from .summary import Summary

__all__ = ["BatchInterrupted", "repair_file", "repair_iter"]


class BatchInterrupted(KeyboardInterrupt):
    """Ctrl-C stopped a batch; the output is valid and holds ``rows`` rows.

    Attributes:
        rows: input rows done and written (the resume point).
        summary: the counts so far.
        output: the output file.
    """

    def __init__(self, rows: int, summary: Summary, output: Path) -> None:
        super().__init__(f"interrupted after {rows} rows; the output holds them")
        self.rows = rows
        self.summary = summary
        self.output = output


def repair_iter(
    records: Iterable[str | bytes | Mapping[str, Any]],
    schema: Any = None,
    *,
    field: str = "text",
    id_field: str | None = None,
    schema_field: str | None = None,
    schemas: Mapping[str, Any] | None = None,
    policy: Any = "default",
) -> Iterator[dict[str, Any]]:
    """Repair an iterable of replies lazily, one output row per item, in order.

    Args:
        records: reply texts (``str``), JSONL lines (``bytes``), or mappings holding the
            reply under ``field``.
        schema: one schema for every row (JSON Schema dict, pydantic model or type).
        field: the key of the reply in a mapping.
        id_field: a key copied into each row's ``id``.
        schema_field: a key naming the row's schema in ``schemas``.
        schemas: schemas by name.
        policy: a :class:`~repairllm.Policy` or a preset name.

    Yields:
        Output rows (see :mod:`repairllm.batch.records` for the columns); a row that
        fails carries its error instead of raising.

    Raises:
        SchemaError: ``schema`` itself is unusable.
    """
    spec = RepairSpec(
        field=field,
        id_field=id_field,
        schema=schema,
        schema_field=schema_field,
        schemas=dict(schemas or {}),
        policy=policy,
    )
    repairer = Repairer(spec)
    for position, item in enumerate(records):
        record: bytes | Mapping[str, Any] = {field: item} if isinstance(item, str) else item
        yield repairer.row(position, record)


# A worker process's Repairer, built once by the pool's initializer.
_worker: Repairer | None = None


def _init_worker(spec: RepairSpec) -> None:
    global _worker
    # Ctrl-C is the parent's to handle: it finishes the chunk in hand and stops.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _worker = Repairer(spec)


def _repair_chunk(chunk: Chunk) -> list[dict[str, Any]]:
    assert _worker is not None
    return [_worker.row(position, record) for position, record in chunk]


class _Stop:
    """The first Ctrl-C asks the loop to stop after the current chunk; the second stops it."""

    def __init__(self) -> None:
        self.requested = False
        self._previous: Any = None

    def __enter__(self) -> _Stop:
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGINT, self._handle)
        return self

    def _handle(self, signum: int, frame: Any) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True

    def __exit__(self, *exc: object) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)


def repair_file(
    input: str | Path,
    output: str | Path,
    spec: RepairSpec,
    *,
    input_format: str | None = None,
    output_format: str | None = None,
    chunk_rows: int = 4096,
    jobs: int = 1,
    resume: bool = False,
    overwrite: bool = False,
    on_progress: Callable[[int, int], None] | None = None,
) -> Summary:
    """Repair every row of ``input`` into ``output`` (JSONL or Parquet), in input order.

    Args:
        input: a JSONL, CSV or Parquet file.
        output: the output file (``.jsonl`` or ``.parquet``).
        spec: which columns to read, the schema(s), the policy.
        input_format: the input's format when its suffix does not say.
        output_format: the output's format when its suffix does not say.
        chunk_rows: rows per chunk (and per Parquet row group).
        jobs: processes repairing chunks (1: in this process).
        resume: carry on from the resume point an interrupted run left.
        overwrite: start again although an interrupted run left a resume point.
        on_progress: called after each chunk with (rows done, bytes or Parquet rows read).

    Returns:
        The summary of every row in the output (a resumed run's earlier rows included).

    Raises:
        BatchInterrupted: Ctrl-C; the output is valid and the resume point saved.
        ConfigError: a resume point left by another run, or none to resume from.
        InvalidInput: the input cannot be read.
        SchemaError: the run's schema is unusable.
    """
    source, target = Path(input), Path(output)
    fmt_in = detect_format(source, input_format)
    fmt_out = detect_format(target, output_format)
    if fmt_out == "csv":
        raise ConfigError("the output is jsonl or parquet, not csv")
    if not source.is_file():
        raise InvalidInput(f"cannot read {str(source)!r}: no such file")
    repairer = Repairer(spec)  # fails here, before any file is touched, on a bad schema
    point = start_point(source, target, spec.fingerprint(), fmt_out, resume, overwrite)
    summary = Summary()
    if point.rows:
        summary.add_all(written_rows(target, fmt_out))
        if summary.rows != point.rows:
            point.offset = None  # the output is the truth; the offset is for another count
            point.rows = summary.rows
        summary.mark_resumed()
    columns = [c for c in (spec.field, spec.id_field, spec.schema_field) if c]
    chunks = read_chunks(
        source,
        fmt_in,
        columns=columns,
        chunk_rows=chunk_rows,
        skip_rows=point.rows,
        skip_offset=point.offset if fmt_in == "jsonl" else None,
    )
    writer = open_writer(target, fmt_out, id_text=spec.id_field is not None, append=point.rows > 0)
    point.save(target)
    try:
        with _Stop() as stop, contextlib.closing(writer):
            for rows, progress in _repaired(chunks, repairer, spec, jobs):
                writer.write(rows)
                summary.add_all(rows)
                point.rows += len(rows)
                point.offset = progress if fmt_in == "jsonl" else None
                point.save(target)
                if on_progress is not None:
                    on_progress(point.rows, progress)
                if stop.requested:
                    raise BatchInterrupted(point.rows, summary, target)
    except KeyboardInterrupt as exc:
        summary.stop()
        if isinstance(exc, BatchInterrupted):
            raise
        raise BatchInterrupted(point.rows, summary, target) from None
    summary.stop()
    ResumePoint.clear(target)
    return summary


def start_point(
    source: Path, target: Path, fingerprint: str, fmt_out: str, resume: bool, overwrite: bool
) -> ResumePoint:
    """Where a run starts: the resume point an interrupted run left, or the beginning.

    Raises:
        ConfigError: a resume point is there but not asked for, or is another run's.
    """
    fresh = ResumePoint(str(source.resolve()), fingerprint, fmt_out)
    found = ResumePoint.load(target)
    if overwrite or (found is None and not resume):
        return fresh
    if found is None:
        if target.exists():
            raise ConfigError(
                f"{str(target)!r} has no resume point (it is complete, or was not written "
                "by repairllm batch); pass --overwrite to write it again"
            )
        return fresh
    if not resume:
        raise ConfigError(
            f"an interrupted run left {str(target)!r} after {found.rows} rows; pass "
            "--resume to carry on from there, or --overwrite to start again"
        )
    if (found.input, found.fingerprint, found.output_format) != (
        fresh.input,
        fresh.fingerprint,
        fresh.output_format,
    ):
        raise ConfigError(
            f"the resume point of {str(target)!r} is for another run (input "
            f"{found.input!r}, other options); use the same input and options, or --overwrite"
        )
    if not target.exists() and not target.with_name(target.name + ".prev").exists():
        return fresh
    return found


def _repaired(
    chunks: Iterator[tuple[Chunk, int]], repairer: Repairer, spec: RepairSpec, jobs: int
) -> Iterator[tuple[list[dict[str, Any]], int]]:
    """Each chunk's output rows with its progress mark, in input order."""
    if jobs <= 1:
        for chunk, progress in chunks:
            yield [repairer.row(position, record) for position, record in chunk], progress
        return
    with ProcessPoolExecutor(jobs, initializer=_init_worker, initargs=(spec,)) as pool:
        pending: deque[tuple[Future[list[dict[str, Any]]], int]] = deque()
        try:
            for chunk, progress in chunks:
                pending.append((pool.submit(_repair_chunk, chunk), progress))
                # Two chunks per process in flight: busy workers, bounded memory.
                if len(pending) >= 2 * jobs:
                    future, mark = pending.popleft()
                    yield future.result(), mark
            while pending:
                future, mark = pending.popleft()
                yield future.result(), mark
        finally:
            for future, _ in pending:
                future.cancel()
