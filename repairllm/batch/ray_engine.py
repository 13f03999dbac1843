"""The Ray engine: ``read → map_batches(RepairWorker) → write`` on Ray Data.

Ray schedules, retries and moves the data; this module only says what to read, what
each worker does and how many workers there are:

- :class:`FileRows` reads a JSONL, CSV or Parquet file into blocks that carry each
  record's input position (``__row``) and its raw text, so that a line that is not JSON
  is a row with its error, as in the local engine, and output order can be checked.
- :class:`RepairWorker` is the ``map_batches`` class: it builds one
  :class:`~repairllm.batch.records.Repairer` (the schemas compiled once) per actor.
- :func:`plan_pool` sizes the actor pool to leave CPU for the reads and writes: with
  ``ray.init(num_cpus=2)`` and two one-CPU actors, read tasks cannot be scheduled and
  the pipeline stalls (measured here: 6.5 minutes before anything moved).

Ray retries a batch whose actor died (``max_restarts``/``max_task_retries``); the
writer on the driver checks the ``row`` positions it gets, drops a row delivered twice
and fails loudly on one that is missing, so every input row is written exactly once.
"""

from __future__ import annotations

import functools
import logging
import math
import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import ConfigError, RepairLLMError
from .files import (
    Layout,
    csv_records,
    detect_format,
    jsonl_records,
    open_writer,
    pyarrow_modules,
    rows_to_table,
)
from .records import COLUMNS, Repairer, RepairSpec
from .summary import Summary

try:
    import pyarrow as pa
    import ray
    import ray.data
    from ray.data.block import BlockMetadata
    from ray.data.datasource import Datasource, ReadTask
except ImportError as exc:  # pragma: no cover - the message is the point
    raise ConfigError(
        f"the Ray engine needs Ray Data: pip install 'repairllm[ray]' ({exc})"
    ) from exc

__all__ = [
    "FileRows",
    "GenerateWorker",
    "PoolPlan",
    "RepairWorker",
    "generate_dataset",
    "plan_pool",
    "read_dataset",
    "repair_dataset",
    "repair_file_ray",
    "write_ordered",
]

ROW = "__row"  # the input position of a record
LINE = "__line"  # a JSONL record's raw line


@dataclass(frozen=True)
class PoolPlan:
    """How many repair actors, with how much CPU each, and what the reads get.

    Attributes:
        workers: actors in the pool.
        worker_cpus: logical CPUs each actor holds.
        io_cpus: logical CPUs each read or write task asks for.
        cluster_cpus: the CPUs the plan was made for.
    """

    workers: int
    worker_cpus: float
    io_cpus: float
    cluster_cpus: float


def plan_pool(
    cluster_cpus: float, workers: int | None = None, worker_cpus: float | None = None
) -> PoolPlan:
    """Size the actor pool so that reads and writes always find a CPU.

    A share of the cluster (half a CPU on a small machine, a sixteenth of a large
    cluster, at most two CPUs) is kept for I/O tasks, which ask for a quarter CPU
    each. By default each actor holds one CPU and the pool takes what is left; asked
    for more workers than fit, each gets a fraction of a CPU instead (they then share
    cores, which is what one asked for).

    Raises:
        ConfigError: ``workers`` × ``worker_cpus`` leaves no CPU for reading.
    """
    if cluster_cpus <= 0:
        raise ConfigError("the Ray cluster has no CPUs")
    reserve = min(2.0, max(0.5, cluster_cpus / 16))
    room = cluster_cpus - reserve
    if room <= 0:
        raise ConfigError(f"a Ray cluster of {cluster_cpus:g} CPUs leaves none for repair")
    if workers is None:
        each = worker_cpus or 1.0
        workers = max(1, math.floor(room / each + 1e-9))
        each = min(each, room / workers)
    else:
        if workers < 1:
            raise ConfigError("--workers must be at least 1")
        each = worker_cpus if worker_cpus is not None else min(1.0, room / workers)
        if workers * each > room + 1e-9:
            raise ConfigError(
                f"{workers} workers of {each:g} CPUs leave less than {reserve:g} of the "
                f"cluster's {cluster_cpus:g} CPUs for reading and writing, and the run "
                "would stall; ask for fewer workers or fewer CPUs each"
            )
    return PoolPlan(workers, round(each, 4), min(0.25, reserve / 2), cluster_cpus)


class FileRows(Datasource):  # type: ignore[misc, unused-ignore]  # Any without Ray's types
    """One JSONL, CSV or Parquet file as blocks of records with their positions.

    JSONL and CSV are read by one task (a file is read front to back to know each
    record's position); Parquet is split by row groups, their positions known from
    the footer. Blocks hold at most ``block_rows`` records.
    """

    def __init__(
        self, path: str | Path, fmt: str, columns: Sequence[str], block_rows: int = 4096
    ) -> None:
        super().__init__()  # type: ignore[no-untyped-call, unused-ignore]
        self.path = str(path)
        self.fmt = fmt
        self.columns = list(columns)
        self.block_rows = block_rows

    def estimate_inmemory_data_size(self) -> int | None:
        try:
            return os.path.getsize(self.path)
        except OSError:
            return None

    def get_read_tasks(
        self,
        parallelism: int,
        per_task_row_limit: int | None = None,
        data_context: Any = None,
    ) -> list[ReadTask]:
        size = self.estimate_inmemory_data_size()
        if self.fmt != "parquet":
            meta = BlockMetadata(
                num_rows=None, size_bytes=size, input_files=(self.path,), exec_stats=None
            )
            reader = _read_jsonl if self.fmt == "jsonl" else _read_csv
            path, columns, block = self.path, self.columns, self.block_rows
            return [ReadTask(lambda: reader(path, columns, block), meta)]
        _, pq = pyarrow_modules()
        file = pq.ParquetFile(self.path)
        counts = [file.metadata.row_group(i).num_rows for i in range(file.metadata.num_row_groups)]
        file.close()
        tasks = []
        per_task = max(1, math.ceil(len(counts) / max(1, parallelism)))
        start = 0
        for first in range(0, len(counts), per_task):
            groups = list(range(first, min(len(counts), first + per_task)))
            n = sum(counts[i] for i in groups)
            meta = BlockMetadata(
                num_rows=n,
                size_bytes=(size or 0) * n // max(1, sum(counts)),
                input_files=(self.path,),
                exec_stats=None,
            )
            tasks.append(ReadTask(functools.partial(self._parquet, groups, start), meta))
            start += n
        return tasks

    def _parquet(self, groups: list[int], start: int) -> Iterator[Any]:
        return _read_parquet(self.path, self.columns, self.block_rows, groups, start)


def _lines_block(rows: list[int], lines: list[bytes]) -> Any:
    return pa.table({ROW: pa.array(rows, pa.int64()), LINE: pa.array(lines, pa.binary())})


def _read_jsonl(path: str, columns: Sequence[str], block_rows: int) -> Iterator[Any]:
    rows: list[int] = []
    lines: list[bytes] = []
    with open(path, "rb") as file:
        for position, line, _ in jsonl_records(file):
            rows.append(position)
            lines.append(line)
            if len(rows) >= block_rows:
                yield pa.table(
                    {ROW: pa.array(rows, pa.int64()), LINE: pa.array(lines, pa.binary())}
                )
                rows, lines = [], []
    if rows:
        yield pa.table({ROW: pa.array(rows, pa.int64()), LINE: pa.array(lines, pa.binary())})


def _read_csv(path: str, columns: Sequence[str], block_rows: int) -> Iterator[Any]:
    def block(rows: list[int], records: list[dict[str, Any]]) -> Any:
        data = {ROW: pa.array(rows, pa.int64())}
        for name in columns:
            data[name] = pa.array([r.get(name) for r in records], pa.binary())
        # A column the header lacks: every record says so (MissingField), as locally.
        present = {name for r in records for name in r}
        return pa.table({k: v for k, v in data.items() if k == ROW or k in present})

    rows: list[int] = []
    records: list[dict[str, Any]] = []
    with open(path, encoding="utf-8", errors="surrogateescape", newline="") as text:
        for position, record in enumerate(csv_records(text, columns)):
            rows.append(position)
            records.append(record)
            if len(rows) >= block_rows:
                yield block(rows, records)
                rows, records = [], []
    if rows:
        yield block(rows, records)


def _read_parquet(
    path: str, columns: Sequence[str], block_rows: int, groups: list[int], start: int
) -> Iterator[Any]:
    _, pq = pyarrow_modules()
    file = pq.ParquetFile(path)
    present = [name for name in columns if name in file.schema_arrow.names]
    position = start
    for batch in file.iter_batches(
        batch_size=block_rows, row_groups=groups, columns=present, use_threads=False
    ):
        n = batch.num_rows
        table = pa.Table.from_batches([batch])
        yield table.add_column(0, ROW, pa.array(range(position, position + n), pa.int64()))
        position += n
    file.close()


def read_dataset(
    path: str | Path,
    *,
    columns: Sequence[str],
    fmt: str | None = None,
    block_rows: int = 4096,
    read_cpus: float = 0.25,
) -> ray.data.Dataset:
    """A file's records as a Ray Dataset with their input positions (``__row``).

    JSONL records are their raw lines (``__line``), decoded by the workers.
    """
    source = FileRows(path, detect_format(path, fmt), columns, block_rows)
    ds: ray.data.Dataset = ray.data.read_datasource(source, num_cpus=read_cpus)
    return ds


class RepairWorker:
    """The ``map_batches`` class: one :class:`Repairer` per actor, schemas compiled once.

    Args:
        spec: what to read and how to repair it.
        keep: input columns copied into the output unchanged.
    """

    def __init__(self, spec: RepairSpec, keep: Sequence[str] = ()) -> None:
        self.repairer = Repairer(spec)
        self.id_text = spec.id_field is not None
        self.keep = list(keep)

    def __call__(self, batch: Any) -> Any:
        names = batch.column_names
        n = batch.num_rows
        positions = batch.column(ROW).to_pylist() if ROW in names else [None] * n
        if LINE in names:
            records: list[Any] = batch.column(LINE).to_pylist()
        else:
            records = batch.drop_columns([c for c in (ROW,) if c in names]).to_pylist()
        rows = [self.repairer.row(p, r) for p, r in zip(positions, records, strict=True)]
        table = rows_to_table(rows, self.id_text)
        for name in self.keep:
            if name in names and name not in COLUMNS:
                table = table.append_column(name, batch.column(name))
        return table


def repair_dataset(
    ds: ray.data.Dataset,
    schema: Any = None,
    *,
    field: str = "text",
    id_field: str | None = None,
    schema_field: str | None = None,
    schemas: Mapping[str, Any] | None = None,
    policy: Any = "default",
    keep: Sequence[str] = (),
    workers: int | None = None,
    worker_cpus: float | None = None,
    batch_rows: int = 1024,
    worker: type[RepairWorker] = RepairWorker,
) -> ray.data.Dataset:
    """Repair a Ray Dataset of replies: a lazy Dataset of output rows, one per input row.

    Args:
        ds: rows holding the reply under ``field`` (str or bytes); a ``__row`` column,
            as :func:`read_dataset` makes, becomes the output's ``row``.
        schema: one schema for every row (JSON Schema dict, pydantic model or type).
        field: the reply's column.
        id_field: a column copied into ``id`` (as text).
        schema_field: a column naming each row's schema in ``schemas``.
        schemas: schemas by name.
        policy: a :class:`~repairllm.Policy` or a preset name.
        keep: input columns to carry into the output.
        workers: repair actors (default: as many as :func:`plan_pool` fits).
        worker_cpus: logical CPUs per actor.
        batch_rows: rows per ``map_batches`` call.
        worker: the actor class (a subclass of :class:`RepairWorker`, to instrument it).

    Returns:
        The Dataset of output rows (columns of :mod:`repairllm.batch.records`, then
        ``keep``). Order follows the input when the DataContext preserves order.

    Raises:
        SchemaError: ``schema`` is unusable (checked here, before any task runs).
    """
    spec = RepairSpec(
        field=field,
        id_field=id_field,
        schema=schema,
        schema_field=schema_field,
        schemas=dict(schemas or {}),
        policy=policy,
    )
    Repairer(spec)  # a bad schema or policy fails now, not in every actor
    plan = plan_pool(_cluster_cpus(), workers, worker_cpus)
    return _map(ds, spec, plan, keep, batch_rows, worker)


def _map(
    ds: ray.data.Dataset,
    spec: RepairSpec,
    plan: PoolPlan,
    keep: Sequence[str],
    batch_rows: int,
    worker: type[RepairWorker],
) -> ray.data.Dataset:
    mapped: ray.data.Dataset = ds.map_batches(
        worker,
        fn_constructor_kwargs={"spec": spec, "keep": tuple(keep)},
        batch_format="pyarrow",
        batch_size=batch_rows,
        compute=ray.data.ActorPoolStrategy(size=plan.workers),
        num_cpus=plan.worker_cpus,
    )
    return mapped


def _cpus() -> float:
    resources: dict[str, float] = ray.cluster_resources()  # type: ignore[no-untyped-call, unused-ignore]
    return float(resources.get("CPU", 0))


def _cluster_cpus() -> float:
    if not ray.is_initialized():
        ray.init()
    return _cpus()


def repair_file_ray(
    input: str | Path,
    output: str | Path,
    spec: RepairSpec,
    *,
    input_format: str | None = None,
    output_format: str | None = None,
    address: str | None = None,
    workers: int | None = None,
    worker_cpus: float | None = None,
    batch_rows: int = 1024,
    block_rows: int = 4096,
    on_progress: Callable[[int, int], None] | None = None,
    worker: type[RepairWorker] = RepairWorker,
) -> Summary:
    """Repair a file on Ray Data; the output is one file, or a folder of Ray's files.

    Args:
        input: a JSONL, CSV or Parquet file (on a cluster: a path every node can read).
        output: a ``.jsonl`` or ``.parquet`` file, written on this machine in input
            order; or a folder (no suffix), written by Ray's workers (``write_parquet``
            or ``write_json`` by ``output_format``, Parquet by default).
        spec: which columns to read, the schema(s), the policy.
        input_format: the input's format when its suffix does not say.
        output_format: the output's format when its suffix does not say.
        address: a Ray cluster's address (``ray://...`` or ``auto``); ``None`` starts a
            local Ray, or joins the one this process already started.
        workers: repair actors (default: :func:`plan_pool`'s).
        worker_cpus: logical CPUs per actor.
        batch_rows: rows per ``map_batches`` call.
        block_rows: rows per block read.
        on_progress: called per output batch with (rows done, rows done).
        worker: the actor class.

    Returns:
        The summary of every row.

    Raises:
        RepairLLMError: a row went missing (never seen in tests; it would be a Ray bug).
        ConfigError: Ray is missing, or the pool leaves no CPU for reading.
    """
    started_here = False
    if not ray.is_initialized():
        # A Ray we start is ours to keep quiet: its INFO lines would bury the progress bar.
        ray.init(
            address=address,
            include_dashboard=False,
            log_to_driver=False,
            logging_level=logging.WARNING,
        )
        started_here = True
    try:
        Repairer(spec)
        plan = plan_pool(_cpus(), workers, worker_cpus)
        context = ray.data.DataContext.get_current()
        context.execution_options.preserve_order = True
        columns = [c for c in (spec.field, spec.id_field, spec.schema_field) if c]
        ds = read_dataset(
            input, columns=columns, fmt=input_format, block_rows=block_rows, read_cpus=plan.io_cpus
        )
        out = _map(ds, spec, plan, (), batch_rows, worker)
        target = Path(output)
        if target.suffix == "" or target.is_dir():
            return _write_folder(out, target, output_format or "parquet", plan)
        fmt = detect_format(target, output_format)
        return write_ordered(out, target, fmt, spec.id_field is not None, on_progress)
    finally:
        if started_here:
            ray.shutdown()


def write_ordered(
    out: ray.data.Dataset,
    target: Path,
    fmt: str,
    id_text: bool,
    on_progress: Callable[[int, int], None] | None = None,
    layout: Layout | None = None,
) -> Summary:
    """Write a Dataset of output rows to one file on this machine, each row exactly once.

    Rows come in input order (the DataContext preserves it); a row delivered twice (a
    retried task) is dropped, and a gap is an error rather than a silent loss.
    """
    summary = Summary()
    expected = 0
    with open_writer(target, fmt, id_text=id_text, layout=layout) as writer:
        batch: Any
        for batch in out.iter_batches(batch_format="pyarrow", batch_size=None):
            positions = batch.column("row").to_pylist()
            if not positions:
                continue
            if positions[0] < expected:
                # A retried task delivered rows already written: keep only the new ones.
                fresh = sum(1 for p in positions if p >= expected)
                summary.duplicates_dropped += len(positions) - fresh
                batch = batch.slice(len(positions) - fresh)
                positions = positions[len(positions) - fresh :]
                if not positions:
                    continue
            if positions != list(range(expected, expected + len(positions))):
                raise RepairLLMError(
                    f"the Ray engine delivered rows out of order (expected row {expected}, "
                    f"got {positions[0]}..{positions[-1]}); the output {str(target)!r} "
                    f"holds rows 0..{expected - 1}"
                )
            writer.write_table(batch)
            summary.add_all(
                batch.select(["ok", "error", "truncated", "rules", "bytes"]).to_pylist()
            )
            expected += len(positions)
            if on_progress is not None:
                on_progress(expected, expected)
    summary.stop()
    return summary


def _write_folder(out: ray.data.Dataset, target: Path, fmt: str, plan: PoolPlan) -> Summary:
    import pyarrow.dataset as pads

    remote = {"num_cpus": plan.io_cpus}
    if fmt == "parquet":
        out.write_parquet(str(target), ray_remote_args=remote)
    elif fmt == "jsonl":
        out.write_json(str(target), ray_remote_args=remote)
    else:
        raise ConfigError(f"cannot write {fmt!r}; the output is jsonl or parquet")
    # The summary reads back the few columns it counts (pyarrow, on this machine: a
    # second Ray job for it costs more than the reading).
    written = pads.dataset(str(target), format="parquet" if fmt == "parquet" else "json")
    summary = Summary()
    seen: set[int] = set()
    columns = ["row", "ok", "error", "truncated", "rules", "bytes"]
    for batch in written.to_batches(columns=columns):
        rows = batch.to_pylist()
        seen.update(r["row"] for r in rows)
        summary.add_all(rows)
    summary.duplicates_dropped = summary.rows - len(seen)  # reported, not dropped
    summary.stop()
    return summary


# --------------------------------------------------------------------------- #
# Generation on Ray: one actor per backend
# --------------------------------------------------------------------------- #


@ray.remote(num_cpus=0)
class _Assigner:
    """Hands each generation actor the index of the backend it will serve."""

    def __init__(self, count: int) -> None:
        self.count = count
        self.next = 0

    def claim(self) -> int:
        index = self.next % self.count
        self.next += 1
        return index


class GenerateWorker:
    """The ``map_batches`` class of :func:`generate_dataset`: one backend per actor.

    Each actor claims one of the backends and sends its prompts there first, within
    that backend's concurrency; the other backends stand by (one request each at a
    time) for the prompts its own backend fails.

    Args:
        spec: the prompt column, schema(s), retries and request options.
        backends: one factory per backend, each returning an
            :class:`~repairllm.batch.generate.Endpoint` (made in the actor, since a
            live client cannot be shipped).
        assigner: the actor that hands out backend indices.
    """

    def __init__(self, spec: Any, backends: Sequence[Callable[[], Any]], assigner: Any) -> None:
        from .generate import Endpoint

        index = int(ray.get(assigner.claim.remote()))
        made = [factory() for factory in backends]
        own = made[index]
        others = [
            Endpoint(e.backend, 1, name=e.name, cooldown=e.cooldown)
            for i, e in enumerate(made)
            if i != index
        ]
        self.endpoints = [own, *others]
        self.spec = spec
        self.id_text = spec.id_field is not None

    def __call__(self, batch: Any) -> Any:
        import asyncio

        from .generate import GENERATE_LAYOUT, agenerate_rows

        names = batch.column_names
        n = batch.num_rows
        positions = batch.column(ROW).to_pylist() if ROW in names else [None] * n
        if LINE in names:
            records: list[Any] = batch.column(LINE).to_pylist()
        else:
            records = batch.drop_columns([c for c in (ROW,) if c in names]).to_pylist()
        pairs = list(zip(positions, records, strict=True))

        async def collect() -> list[dict[str, Any]]:
            return [row async for row in agenerate_rows(pairs, self.endpoints, self.spec)]

        return rows_to_table(asyncio.run(collect()), self.id_text, GENERATE_LAYOUT)


def generate_dataset(
    ds: ray.data.Dataset,
    spec: Any,
    backends: Sequence[Callable[[], Any]],
    *,
    batch_rows: int = 64,
) -> ray.data.Dataset:
    """Generate a value for each prompt of a Ray Dataset: one actor per backend.

    Args:
        ds: rows holding the prompt under ``spec.field`` (with ``__row`` positions, as
            :func:`read_dataset` makes them, or without).
        spec: a :class:`~repairllm.batch.generate.GenerateSpec`.
        backends: one factory per backend returning an
            :class:`~repairllm.batch.generate.Endpoint`, for example
            ``lambda: Endpoint(connect("llamacpp", base_url=url), 4)``.
        batch_rows: prompts per ``map_batches`` call.

    Returns:
        A lazy Dataset of output rows (:data:`~repairllm.batch.generate.GENERATE_LAYOUT`).
    """
    if not backends:
        raise ConfigError("generate_dataset needs at least one backend")
    assigner = _Assigner.remote(len(backends))  # type: ignore[attr-defined, unused-ignore]
    mapped: ray.data.Dataset = ds.map_batches(
        GenerateWorker,
        fn_constructor_kwargs={"spec": spec, "backends": list(backends), "assigner": assigner},
        batch_format="pyarrow",
        batch_size=batch_rows,
        # Waiting on servers takes no CPU: the actors ask for little, so that the reads
        # and the writes always find some.
        compute=ray.data.ActorPoolStrategy(size=len(backends)),
        num_cpus=0.1,
    )
    return mapped
