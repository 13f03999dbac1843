"""Batch generation: prompts in, structured values out, across several backends (asyncio).

Each :class:`Endpoint` is a backend (one server) with a concurrency limit; that many
workers per endpoint take prompts from one queue and run :func:`repairllm.agenerate`
(format retries with feedback, continuation of cut-off replies). A prompt whose
backend fails (unreachable, timed out, 5xx, 429) goes back on the queue for another
endpoint, up to ``tries`` backends; an endpoint that fails twice running rests for
``cooldown`` seconds, so a dead server stops taking prompts while the live ones carry
on. A prompt's own faults (a context too long, a 400) are its row's error at once.

Every prompt gives exactly one output row, in input order: rows are written as soon
as every row before them is, at most ``window`` prompts are in flight or waiting to
be written, and Ctrl-C leaves the rows written so far as a valid output with a resume
point (as :func:`repairllm.batch.repair_file` does).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import signal
import threading
import time
from collections import deque
from collections.abc import AsyncGenerator, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..backend import Backend
from ..errors import (
    BackendError,
    BackendStatusError,
    BackendTimeout,
    BackendUnreachable,
    ConfigError,
    InvalidInput,
    RepairLLMError,
    RetriesExhausted,
)
from ..retry import Attempt, agenerate
from .files import Layout, ResumePoint, detect_format, open_writer, read_chunks, written_rows
from .local import BatchInterrupted, start_point
from .records import Repairer, RepairSpec, RowError, dumps, issues_json, ledger_json, record_fields
from .summary import Summary

__all__ = [
    "GENERATE_LAYOUT",
    "Endpoint",
    "Fanout",
    "GenerateSpec",
    "Job",
    "agenerate_rows",
    "generate_file",
]

GENERATE_LAYOUT = Layout(
    (
        ("row", "int"),
        ("id", "int"),
        ("value", "json"),
        ("ok", "bool"),
        ("error", "str"),
        ("message", "str"),
        ("backend", "str"),
        ("tries", "int"),
        ("attempts", "int"),
        ("prompt_tokens", "int"),
        ("completion_tokens", "int"),
        ("seconds", "float"),
        ("issues", "json"),
        ("ledger", "json"),
        ("cost", "float"),
        ("truncated", "bool"),
        ("rules", "list"),
        ("raw", "str"),
        ("attempt_log", "json"),
        ("bytes", "int"),
    )
)


@dataclass(frozen=True)
class GenerateSpec:
    """What to read from each record and how to ask for its value.

    Attributes:
        field: the column holding the prompt (text, or a list of chat messages).
        id_field: a column copied into ``id`` (as text); ``None``: ``id`` is the row.
        schema: one schema for every row, or ``None`` for any JSON value.
        schema_field: a column naming each row's schema in ``schemas``.
        schemas: schemas by name.
        policy: the repair policy.
        retries: format retries per prompt (with the issues as feedback).
        tries: backends a prompt may be tried on when its backend fails.
        options: request options for every call (``max_tokens``, ``temperature`` ...).
        native: use the server's structured mode (``None``: where it declares one).
        transient_retries: retries of a transient failure on the same backend before
            the prompt moves to another one.
    """

    field: str = "prompt"
    id_field: str | None = None
    schema: Any = None
    schema_field: str | None = None
    schemas: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    policy: Any = "default"
    retries: int = 2
    tries: int = 3
    options: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    native: bool | None = None
    transient_retries: int = 1

    def repair_spec(self) -> RepairSpec:
        return RepairSpec(
            field=self.field,
            id_field=self.id_field,
            schema=self.schema,
            schema_field=self.schema_field,
            schemas=dict(self.schemas),
            policy=self.policy,
        )

    def fingerprint(self) -> str:
        import hashlib

        extra = dumps([self.retries, self.tries, dict(self.options), self.native])
        digest = hashlib.sha256(extra.encode()).hexdigest()[:8]
        return f"{self.repair_spec().fingerprint()}:{digest}"


@dataclass
class Endpoint:
    """One backend and how many requests it takes at once.

    Attributes:
        backend: the driver (one server).
        concurrency: requests in flight at most.
        name: how rows name it (default: its base URL, or its driver's name).
        cooldown: seconds it rests after two failures in a row.
    """

    backend: Backend
    concurrency: int = 4
    name: str = ""
    cooldown: float = 5.0
    failures: int = 0
    down_until: float = 0.0
    served: int = 0

    def __post_init__(self) -> None:
        if self.concurrency < 1:
            raise ConfigError("an endpoint's concurrency must be at least 1")
        if not self.name:
            self.name = str(getattr(self.backend, "base_url", "") or self.backend.name)

    def up(self, now: float) -> bool:
        return now >= self.down_until

    def failed(self) -> None:
        self.failures += 1
        if self.failures >= 2:
            self.down_until = time.monotonic() + self.cooldown

    def answered(self) -> None:
        self.failures = 0
        self.down_until = 0.0
        self.served += 1


def _backend_at_fault(exc: BackendError) -> bool:
    """Whether another backend may well succeed where this one failed."""
    if isinstance(exc, (BackendUnreachable, BackendTimeout)):
        return True
    if isinstance(exc, BackendStatusError):
        return exc.transient
    return bool(exc.transient)


@dataclass
class Job:
    """One item of a :class:`Fanout`: where it stands in the input, and where it failed.

    Attributes:
        position: its place in the input (results come back in this order).
        record: what the work is about (a prompt's record, a bench task ...).
        future: set once, with the item's result.
        tries: backends it was sent to so far.
        failed_on: names of the endpoints whose fault it failed on.
        last_error: the last of those failures.
    """

    position: int
    record: Any
    future: asyncio.Future[Any]
    tries: int = 0
    failed_on: set[str] = field(default_factory=set)
    last_error: BackendError | None = None


def _attempt_log(attempts: Sequence[Attempt]) -> str:
    return dumps(
        [
            {
                "ok": a.ok,
                "finish_reason": a.finish_reason,
                "prompt_tokens": a.usage.prompt_tokens,
                "completion_tokens": a.usage.completion_tokens,
                "seconds": round(a.seconds, 4),
                "continuations": a.continuations,
                "transient_errors": a.transient_errors,
                "native": a.native,
                "error": a.error,
                "issues": len(a.issues),
                "notes": list(a.notes),
            }
            for a in attempts
        ]
    )


class Fanout:
    """Items spread over endpoints, each with its concurrency; an item moves on when its
    backend fails.

    ``concurrency`` workers per endpoint take :class:`Job` s from one queue and call
    :meth:`attempt`, which a subclass writes: it counts the try (``job.tries``), does
    the item's work on that endpoint and ends with :meth:`finish` (the item's result,
    after ``endpoint.answered()`` when the backend answered) or, when the backend
    failed, :meth:`moved` (which puts the item back for another endpoint while it has
    tries left). An endpoint that has failed an item, or rests after failing twice running,
    leaves it to another that is up. :meth:`results` feeds the items in and yields
    their results in input order; an exception that escapes :meth:`attempt` is raised
    there, so no item is ever left waiting.

    Args:
        endpoints: the backends, each with its concurrency.
        tries: endpoints an item may be sent to, in all, when its backend fails.
    """

    def __init__(self, endpoints: Sequence[Endpoint], tries: int) -> None:
        if not endpoints:
            raise ConfigError("a fan-out needs at least one backend")
        self.endpoints = list(endpoints)
        self.tries = tries
        self.queue: asyncio.Queue[Job] = asyncio.Queue()

    async def attempt(self, endpoint: Endpoint, job: Job) -> None:
        """Do ``job`` on ``endpoint``; end with :meth:`finish` or :meth:`moved`."""
        raise NotImplementedError

    def finish(self, job: Job, result: Any) -> None:
        """Give ``job`` its result (once: a late second result is dropped)."""
        if not job.future.done():  # each item is set once, whatever retried it
            job.future.set_result(result)

    def moved(self, endpoint: Endpoint, job: Job, exc: BackendError) -> bool:
        """Count ``exc`` against ``endpoint``; whether ``job`` went back for another.

        Only a failure that another backend may not have (unreachable, timed out, 5xx,
        429) moves the item, and only while it has tries left; the caller finishes it
        otherwise.
        """
        if not _backend_at_fault(exc):
            return False
        endpoint.failed()
        job.failed_on.add(endpoint.name)
        job.last_error = exc
        if job.tries < self.tries:
            self.queue.put_nowait(job)
            return True
        return False

    async def worker(self, endpoint: Endpoint) -> None:
        while True:
            job = await self.queue.get()
            try:
                await self._serve(endpoint, job)
            except Exception as exc:  # raised where the results are read, not lost here
                if not job.future.done():
                    job.future.set_exception(exc)
            finally:
                self.queue.task_done()

    def _elsewhere(self, job: Job, endpoint: Endpoint) -> bool:
        """Whether another endpoint that has not failed this job is up."""
        now = time.monotonic()
        return any(
            e is not endpoint and e.name not in job.failed_on and e.up(now) for e in self.endpoints
        )

    async def _serve(self, endpoint: Endpoint, job: Job) -> None:
        now = time.monotonic()
        if (not endpoint.up(now) or endpoint.name in job.failed_on) and self._elsewhere(
            job, endpoint
        ):
            # Leave it to an endpoint that is up and has not failed it yet.
            self.queue.put_nowait(job)
            await asyncio.sleep(0.02)
            return
        if not endpoint.up(now):
            await asyncio.sleep(min(endpoint.down_until - now, endpoint.cooldown))
        await self.attempt(endpoint, job)

    async def results(
        self, items: Iterable[tuple[int, Any]], *, window: int | None = None
    ) -> AsyncGenerator[Any, None]:
        """Run every ``(position, record)``; yield the results in input order.

        Args:
            items: the work, as positions and records.
            window: items in flight or waiting for an earlier one, at most (default:
                four times the total concurrency, at least 16).
        """
        limit = window or max(16, 4 * sum(e.concurrency for e in self.endpoints))
        loop = asyncio.get_running_loop()
        order: deque[asyncio.Future[Any]] = deque()
        workers = [
            asyncio.create_task(self.worker(endpoint))
            for endpoint in self.endpoints
            for _ in range(endpoint.concurrency)
        ]
        try:
            for position, record in items:
                future: asyncio.Future[Any] = loop.create_future()
                order.append(future)
                self.queue.put_nowait(Job(position, record, future))
                while len(order) >= limit or (order and order[0].done()):
                    yield await order.popleft()
            while order:
                yield await order.popleft()
        finally:
            for task in workers:
                task.cancel()
            await asyncio.gather(*workers, return_exceptions=True)


class _Generator(Fanout):
    """Turns prompts' records into output rows on a set of endpoints."""

    def __init__(self, endpoints: Sequence[Endpoint], spec: GenerateSpec) -> None:
        if not endpoints:
            raise ConfigError("batch generate needs at least one backend")
        super().__init__(endpoints, spec.tries)
        self.spec = spec
        self.repairer = Repairer(spec.repair_spec())

    def _prompt(self, fields: Mapping[str, Any]) -> Any:
        value = fields.get(self.spec.field)
        if isinstance(value, list) and value and all(isinstance(m, dict) for m in value):
            return value  # chat messages
        return self.repairer.text(fields)

    def _row(
        self,
        job: Job,
        fields: Mapping[str, Any] | None,
        *,
        endpoint: str | None = None,
        attempts: Sequence[Attempt] = (),
        value: str | None = None,
        kind: str | None = None,
        message: str | None = None,
        seconds: float = 0.0,
        size: int = 0,
    ) -> dict[str, Any]:
        last = attempts[-1] if attempts else None
        outcome = last.outcome if last is not None else None
        ledger = outcome.ledger if outcome is not None else []
        issues = last.issues if last is not None and kind is not None else []
        return {
            "row": job.position,
            "id": self.repairer.id_of(job.position, fields),
            "value": value,
            "ok": kind is None,
            "error": kind,
            "message": message,
            "backend": endpoint,
            "tries": job.tries,
            "attempts": len(attempts),
            "prompt_tokens": sum(a.usage.prompt_tokens for a in attempts),
            "completion_tokens": sum(a.usage.completion_tokens for a in attempts),
            "seconds": round(seconds, 4),
            "issues": issues_json(list(issues)),
            "ledger": ledger_json(ledger),
            "cost": float(sum(f.cost for f in ledger)),
            "truncated": bool(outcome.truncated) if outcome is not None else False,
            "rules": [f.rule for f in ledger],
            "raw": last.raw if last is not None else None,
            "attempt_log": _attempt_log(attempts),
            "bytes": size,
        }

    async def attempt(self, endpoint: Endpoint, job: Job) -> None:
        fields: Mapping[str, Any] | None = None
        try:
            fields = record_fields(job.record)
            prompt = self._prompt(fields)
            schema = self.repairer.schema_for(fields)
        except RowError as bad:
            self.finish(job, self._row(job, fields, kind=bad.kind, message=str(bad)))
            return
        size = len(dumps(prompt).encode()) if not isinstance(prompt, str) else len(prompt.encode())
        job.tries += 1
        started = time.perf_counter()
        try:
            result = await agenerate(
                endpoint.backend,
                prompt,
                schema,
                retries=self.spec.retries,
                policy=self.repairer.policy,
                outcome=True,
                native=self.spec.native,
                transient_retries=self.spec.transient_retries,
                **dict(self.spec.options),
            )
        except RetriesExhausted as exc:
            endpoint.answered()
            self.finish(
                job,
                self._row(
                    job,
                    fields,
                    endpoint=endpoint.name,
                    attempts=exc.attempts,
                    kind="RetriesExhausted",
                    message=str(exc),
                    seconds=time.perf_counter() - started,
                    size=size,
                ),
            )
            return
        except BackendError as exc:
            if self.moved(endpoint, job, exc):
                return
            self.finish(
                job,
                self._row(
                    job,
                    fields,
                    endpoint=endpoint.name,
                    kind=type(exc).__name__,
                    message=str(exc),
                    seconds=time.perf_counter() - started,
                    size=size,
                ),
            )
            return
        except RepairLLMError as exc:
            self.finish(
                job,
                self._row(
                    job,
                    fields,
                    endpoint=endpoint.name,
                    kind=type(exc).__name__,
                    message=str(exc),
                    size=size,
                ),
            )
            return
        except Exception as exc:  # a bug of ours or a driver's: the row says so
            self.finish(
                job,
                self._row(
                    job,
                    fields,
                    endpoint=endpoint.name,
                    kind="InternalError",
                    message=f"{type(exc).__name__}: {exc} (please report it)",
                    size=size,
                ),
            )
            return
        endpoint.answered()
        data = result.data
        value = result.value
        if hasattr(value, "model_dump_json"):
            text = value.model_dump_json()
        else:
            text = dumps(data)
        self.finish(
            job,
            self._row(
                job,
                fields,
                endpoint=endpoint.name,
                attempts=result.attempts,
                value=text,
                seconds=time.perf_counter() - started,
                size=size,
            ),
        )


async def agenerate_rows(
    records: Iterable[tuple[int, bytes | Mapping[str, Any]]],
    endpoints: Sequence[Endpoint],
    spec: GenerateSpec,
    *,
    window: int | None = None,
) -> AsyncGenerator[dict[str, Any], None]:
    """Generate a value for each ``(position, record)``; yield output rows in input order.

    Args:
        records: the prompts' records, as the readers yield them (JSONL lines or
            mappings holding ``spec.field``).
        endpoints: the backends, each with its concurrency.
        spec: the prompt column, schema(s), retries and request options.
        window: prompts in flight or waiting for an earlier one, at most (default:
            four times the total concurrency, at least 16).

    Yields:
        One row per record (columns of :data:`GENERATE_LAYOUT`), in input order.
    """
    rows = _Generator(endpoints, spec).results(records, window=window)
    try:
        async for row in rows:
            yield row
    finally:
        await rows.aclose()


def generate_file(
    input: str | Path,
    output: str | Path,
    spec: GenerateSpec,
    endpoints: Sequence[Endpoint],
    *,
    input_format: str | None = None,
    output_format: str | None = None,
    chunk_rows: int = 64,
    window: int | None = None,
    resume: bool = False,
    overwrite: bool = False,
    on_progress: Callable[[int, int], None] | None = None,
) -> Summary:
    """Generate a value for every prompt of ``input`` into ``output``, in input order.

    Args:
        input: a JSONL, CSV or Parquet file of prompts.
        output: a ``.jsonl`` or ``.parquet`` file.
        spec: the prompt column, schema(s), retries and request options.
        endpoints: the backends, each with its concurrency.
        input_format: when the input's suffix does not say.
        output_format: when the output's suffix does not say.
        chunk_rows: rows per write (and per Parquet row group).
        window: see :func:`agenerate_rows`.
        resume: carry on from an interrupted run's resume point.
        overwrite: start again although an interrupted run left a resume point.
        on_progress: called after each write with (rows done, bytes or rows read).

    Returns:
        The summary (``ok`` counts rows with a valid value).

    Raises:
        BatchInterrupted: Ctrl-C; the output is valid and the resume point saved.
    """
    return asyncio.run(
        _generate_file(
            Path(input),
            Path(output),
            spec,
            endpoints,
            input_format,
            output_format,
            chunk_rows,
            window,
            resume,
            overwrite,
            on_progress,
        )
    )


async def _generate_file(
    source: Path,
    target: Path,
    spec: GenerateSpec,
    endpoints: Sequence[Endpoint],
    input_format: str | None,
    output_format: str | None,
    chunk_rows: int,
    window: int | None,
    resume: bool,
    overwrite: bool,
    on_progress: Callable[[int, int], None] | None,
) -> Summary:
    fmt_in = detect_format(source, input_format)
    fmt_out = detect_format(target, output_format)
    if not source.is_file():
        raise InvalidInput(f"cannot read {str(source)!r}: no such file")
    repair_spec = spec.repair_spec()
    Repairer(repair_spec)
    point = start_point(source, target, spec.fingerprint(), fmt_out, resume, overwrite)
    summary = Summary()
    if point.rows:
        summary.add_all(written_rows(target, fmt_out))
        point.rows = summary.rows
        point.offset = None
        summary.mark_resumed()
    columns = [c for c in (spec.field, spec.id_field, spec.schema_field) if c]
    progress = [0]

    def records() -> Iterable[tuple[int, bytes | Mapping[str, Any]]]:
        for chunk, mark in read_chunks(
            source, fmt_in, columns=columns, chunk_rows=chunk_rows, skip_rows=point.rows
        ):
            progress[0] = mark
            yield from chunk

    writer = open_writer(
        target,
        fmt_out,
        id_text=spec.id_field is not None,
        append=point.rows > 0,
        layout=GENERATE_LAYOUT,
    )
    point.save(target)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    handler = threading.current_thread() is threading.main_thread()
    if handler:
        loop.add_signal_handler(signal.SIGINT, stop.set)
    buffered: list[dict[str, Any]] = []

    def flush() -> None:
        if buffered:
            writer.write(buffered)
            summary.add_all(buffered)
            point.rows += len(buffered)
            point.save(target)
            buffered.clear()
            if on_progress is not None:
                on_progress(point.rows, progress[0])

    try:
        with contextlib.closing(writer):
            rows = agenerate_rows(records(), endpoints, spec, window=window)
            try:
                async for row in rows:
                    buffered.append(row)
                    if len(buffered) >= chunk_rows:
                        flush()
                    if stop.is_set():
                        break
                flush()
            finally:
                await rows.aclose()
    except KeyboardInterrupt:
        summary.stop()
        raise BatchInterrupted(point.rows, summary, target) from None
    finally:
        if handler:
            loop.remove_signal_handler(signal.SIGINT)
    summary.stop()
    if stop.is_set():
        raise BatchInterrupted(point.rows, summary, target)
    ResumePoint.clear(target)
    return summary
