"""Reading input rows and writing output rows, in chunks, for both engines.

Readers yield ``(position, record)`` pairs, a chunk at a time, never the whole file:
JSONL lines as raw bytes (decoded by the :class:`~repairllm.batch.records.Repairer`,
so that a line that is not JSON, or not UTF-8, is a row with its error rather than a
failed read), CSV rows as dicts of bytes, Parquet rows as dicts of column values. A
blank JSONL line is not a row. JSONL and CSV need only the standard library; Parquet
needs pyarrow (``pip install 'repairllm[ray]'``).

Writers take output rows (dicts with :data:`~repairllm.batch.records.COLUMNS`) a chunk
at a time and leave a valid file after every chunk: JSONL is flushed whole lines at a
time, and the Parquet writer writes its footer when closed, which the engines do
however the run ends. :class:`ResumePoint` records how far a run got.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
import sys
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, BinaryIO

import orjson

from ..errors import ConfigError, InvalidInput
from .records import COLUMNS, dumps

__all__ = [
    "FORMATS",
    "REPAIR_LAYOUT",
    "JsonlWriter",
    "Layout",
    "ParquetWriter",
    "ResumePoint",
    "Writer",
    "arrow_schema",
    "detect_format",
    "open_writer",
    "read_chunks",
    "rows_to_table",
    "written_rows",
]

FORMATS = ("jsonl", "csv", "parquet")
_SUFFIXES = {
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json": "jsonl",
    ".csv": "csv",
    ".parquet": "parquet",
    ".pq": "parquet",
}
_INSTALL = "pip install 'repairllm[ray]'"


def detect_format(path: str | Path, given: str | None = None) -> str:
    """The format named by ``given``, or by the file's suffix.

    Raises:
        ConfigError: neither says one of :data:`FORMATS`.
    """
    if given is not None:
        if given not in FORMATS:
            raise ConfigError(f"unknown format {given!r}; use one of {', '.join(FORMATS)}")
        return given
    found = _SUFFIXES.get(Path(path).suffix.lower())
    if found is None:
        raise ConfigError(
            f"cannot tell the format of {str(path)!r} from its suffix; "
            f"name it with --format ({', '.join(FORMATS)})"
        )
    return found


def pyarrow_modules() -> tuple[Any, Any]:
    """``pyarrow`` and ``pyarrow.parquet``, or a :class:`ConfigError` naming the extra."""
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError as exc:
        raise ConfigError(f"Parquet needs pyarrow: {_INSTALL}") from exc
    return pa, pq


# --------------------------------------------------------------------------- #
# Reading
# --------------------------------------------------------------------------- #

Record = bytes | Mapping[str, Any]
Chunk = list[tuple[int, Record]]


def read_chunks(
    path: str | Path,
    fmt: str,
    *,
    columns: Sequence[str],
    chunk_rows: int = 4096,
    skip_rows: int = 0,
    skip_offset: int | None = None,
) -> Iterator[tuple[Chunk, int]]:
    """The input's records, ``chunk_rows`` at a time, with how far the reading got.

    Args:
        path: the input file.
        fmt: ``"jsonl"``, ``"csv"`` or ``"parquet"``.
        columns: the columns a record needs (CSV and Parquet read only those).
        chunk_rows: records per chunk.
        skip_rows: records to skip (a resumed run's rows already written).
        skip_offset: the byte offset just past those records (JSONL only), where known,
            so that skipping is a seek.

    Yields:
        ``(chunk, progress)``: the chunk's ``(position, record)`` pairs, and the bytes
        read so far (JSONL, CSV) or the rows read so far (Parquet).

    Raises:
        InvalidInput: the file cannot be opened or read.
    """
    try:
        if fmt == "jsonl":
            yield from _jsonl_chunks(Path(path), chunk_rows, skip_rows, skip_offset)
        elif fmt == "csv":
            yield from _csv_chunks(Path(path), columns, chunk_rows, skip_rows)
        elif fmt == "parquet":
            yield from _parquet_chunks(Path(path), columns, chunk_rows, skip_rows)
        else:
            raise ConfigError(f"unknown format {fmt!r}")
    except OSError as exc:
        raise InvalidInput(f"cannot read {str(path)!r}: {exc.strerror or exc}") from exc


def jsonl_records(
    file: BinaryIO, start: int = 0, stop: int | None = None
) -> Iterator[tuple[int, bytes, int]]:
    """``(position, line, offset after it)`` for each non-blank line of a JSONL file.

    ``start`` and ``stop`` count records, not lines: records ``start`` to ``stop - 1``
    are yielded. The Ray reader uses this too, so that both engines agree on what a
    record is and where it stands.
    """
    position = 0
    offset = file.tell()
    for line in file:
        offset += len(line)
        if not line.strip():
            continue
        if position >= start:
            if stop is not None and position >= stop:
                return
            yield position, line.rstrip(b"\r\n"), offset
        position += 1


def _jsonl_chunks(
    path: Path, chunk_rows: int, skip_rows: int, skip_offset: int | None
) -> Iterator[tuple[Chunk, int]]:
    with path.open("rb") as file:
        base = 0
        if skip_offset is not None:
            file.seek(skip_offset)
            base = skip_rows
            skip_rows = 0
        chunk: Chunk = []
        offset = file.tell()
        for position, line, offset in jsonl_records(file, skip_rows):
            chunk.append((base + position, line))
            if len(chunk) >= chunk_rows:
                yield chunk, offset
                chunk = []
        if chunk:
            yield chunk, offset


class _Counting(io.RawIOBase):
    """A binary file that counts the bytes read through it (CSV progress)."""

    def __init__(self, raw: BinaryIO) -> None:
        self.raw = raw
        self.count = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        n = self.raw.readinto(buffer)  # type: ignore[attr-defined]
        self.count += n or 0
        return int(n or 0)


def csv_records(text: io.TextIOBase, columns: Sequence[str]) -> Iterator[dict[str, Any]]:
    """Each CSV row as ``{column: bytes}`` (the named columns present in the header).

    The text is decoded with ``surrogateescape``, so bytes that are not UTF-8 come back
    as they were, and the row's repair says so, instead of failing the whole file.
    """
    csv.field_size_limit(sys.maxsize)
    reader = csv.reader(text)
    header = next(reader, None)
    if header is None:
        return
    if header and header[0].startswith("\ufeff"):
        header[0] = header[0][1:]
    wanted = [(i, name) for i, name in enumerate(header) if name in columns]
    for fields in reader:
        if not fields:
            continue  # a blank line
        yield {
            name: fields[i].encode("utf-8", "surrogateescape")
            for i, name in wanted
            if i < len(fields)
        }


def _csv_chunks(
    path: Path, columns: Sequence[str], chunk_rows: int, skip_rows: int
) -> Iterator[tuple[Chunk, int]]:
    with path.open("rb") as raw:
        counting = _Counting(raw)
        text = io.TextIOWrapper(
            io.BufferedReader(counting, 1 << 16),
            encoding="utf-8",
            errors="surrogateescape",
            newline="",
        )
        chunk: Chunk = []
        for position, record in enumerate(csv_records(text, columns)):
            if position < skip_rows:
                continue
            chunk.append((position, record))
            if len(chunk) >= chunk_rows:
                yield chunk, counting.count
                chunk = []
        if chunk:
            yield chunk, counting.count


def _parquet_chunks(
    path: Path, columns: Sequence[str], chunk_rows: int, skip_rows: int
) -> Iterator[tuple[Chunk, int]]:
    _, pq = pyarrow_modules()
    try:
        file = pq.ParquetFile(path)
    except Exception as exc:  # pyarrow's ArrowInvalid and friends
        raise InvalidInput(f"cannot read {str(path)!r} as Parquet: {exc}") from exc
    with contextlib.closing(file):
        present = [name for name in columns if name in file.schema_arrow.names]
        groups: list[int] = []
        position = 0  # of the first row group read
        for index in range(file.metadata.num_row_groups):
            n = file.metadata.row_group(index).num_rows
            if groups or position + n > skip_rows:
                groups.append(index)
            else:
                position += n
        if not groups:
            return
        for batch in file.iter_batches(
            batch_size=chunk_rows, row_groups=groups, columns=present, use_threads=False
        ):
            records = batch.to_pylist()
            chunk: Chunk = []
            for record in records:
                if position >= skip_rows:
                    chunk.append((position, record))
                position += 1
            if chunk:
                yield chunk, position


def input_size(path: str | Path, fmt: str) -> int | None:
    """What ``read_chunks`` reports progress against: bytes, or Parquet rows."""
    try:
        if fmt == "parquet":
            _, pq = pyarrow_modules()
            return int(pq.ParquetFile(path).metadata.num_rows)
        return Path(path).stat().st_size
    except Exception:
        return None


# --------------------------------------------------------------------------- #
# Writing
# --------------------------------------------------------------------------- #


def arrow_schema(id_text: bool, layout: Layout | None = None) -> Any:
    """The output's Arrow schema; ``id`` is text when it comes from a column."""
    pa, _ = pyarrow_modules()
    types = {
        "int": pa.int64(),
        "float": pa.float64(),
        "bool": pa.bool_(),
        "str": pa.string(),
        "json": pa.string(),
        "list": pa.list_(pa.string()),
    }
    chosen = layout or REPAIR_LAYOUT
    return pa.schema(
        [
            (name, pa.string() if name == "id" and id_text else types[kind])
            for name, kind in chosen.columns
        ]
    )


@dataclass(frozen=True)
class Layout:
    """The columns of an output and their kinds: ``int``, ``float``, ``bool``, ``str``,
    ``list`` (of text) or ``json`` (JSON text, written into JSONL as JSON, not a string)."""

    columns: tuple[tuple[str, str], ...]

    @property
    def names(self) -> list[str]:
        return [name for name, _ in self.columns]

    @property
    def raw(self) -> frozenset[str]:
        return frozenset(name for name, kind in self.columns if kind == "json")


REPAIR_LAYOUT = Layout(
    (
        ("row", "int"),
        ("id", "int"),
        ("value", "json"),
        ("ok", "bool"),
        ("error", "str"),
        ("message", "str"),
        ("issues", "json"),
        ("ledger", "json"),
        ("cost", "float"),
        ("truncated", "bool"),
        ("rules", "list"),
        ("bytes", "int"),
    )
)
assert tuple(REPAIR_LAYOUT.names) == COLUMNS


def rows_to_table(
    rows: Sequence[Mapping[str, Any]], id_text: bool, layout: Layout | None = None
) -> Any:
    """Output rows as a pyarrow Table with :func:`arrow_schema`.

    Text that holds a lone surrogate (JSON allows ``"\\ud800"``) cannot be Arrow UTF-8;
    there, the text is written with the surrogate replaced by U+FFFD.
    """
    pa, _ = pyarrow_modules()
    chosen = layout or REPAIR_LAYOUT
    schema = arrow_schema(id_text, chosen)
    arrays = []
    for name in chosen.names:
        values = [row[name] for row in rows]
        kind = schema.field(name).type
        try:
            arrays.append(pa.array(values, type=kind))
        except (UnicodeEncodeError, pa.ArrowInvalid):
            arrays.append(pa.array([_clean(v) for v in values], type=kind))
    return pa.Table.from_arrays(arrays, schema=schema)


def _clean(value: Any) -> Any:
    if isinstance(value, str):
        return value.encode("utf-8", "replace").decode("utf-8")
    if isinstance(value, list):
        return [_clean(v) for v in value]
    return value


class Writer:
    """Output rows to one file, a chunk at a time."""

    rows_written = 0

    def write(self, rows: Sequence[Mapping[str, Any]]) -> None:
        raise NotImplementedError

    def write_table(self, table: Any) -> None:
        """Write a pyarrow Table of output rows (the Ray engine's batches)."""
        self.write(table.to_pylist())

    def close(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Writer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def jsonl_line(row: Mapping[str, Any], layout: Layout | None = None) -> bytes:
    """One output row as a JSONL line; ``json`` columns are spliced in as JSON."""
    chosen = layout or REPAIR_LAYOUT
    raw = chosen.raw
    parts = []
    for name in chosen.names:
        value = row[name]
        text = ("null" if value is None else value) if name in raw else dumps(value)
        parts.append(f'"{name}":{text}')
    return ("{" + ",".join(parts) + "}\n").encode("utf-8", "surrogatepass")


class JsonlWriter(Writer):
    """JSONL output; each chunk is written with one call and flushed."""

    def __init__(self, path: Path, append: bool = False, layout: Layout | None = None) -> None:
        self.path = path
        self.layout = layout or REPAIR_LAYOUT
        self.file = path.open("ab" if append else "wb")

    def write(self, rows: Sequence[Mapping[str, Any]]) -> None:
        self.file.write(b"".join(jsonl_line(row, self.layout) for row in rows))
        self.file.flush()
        self.rows_written += len(rows)

    def close(self) -> None:
        if not self.file.closed:
            self.file.close()


class ParquetWriter(Writer):
    """Parquet output, one row group per chunk; the footer is written on close.

    Appending (a resumed run) copies the existing file's row groups into the new file
    first: Parquet cannot grow in place. The old file is kept beside it as
    ``NAME.prev`` until the copy is done.
    """

    def __init__(
        self, path: Path, id_text: bool, append: bool = False, layout: Layout | None = None
    ) -> None:
        _, pq = pyarrow_modules()
        self.path = path
        self.id_text = id_text
        self.layout = layout or REPAIR_LAYOUT
        self.schema = arrow_schema(id_text, self.layout)
        previous = path.with_name(path.name + ".prev")
        if append and path.exists() and not previous.exists():
            os.replace(path, previous)
        self.writer: Any = pq.ParquetWriter(path, self.schema, compression="zstd")
        if append and previous.exists():
            old = pq.ParquetFile(previous)
            for index in range(old.metadata.num_row_groups):
                table = old.read_row_group(index)
                self.writer.write_table(table.cast(self.schema))
                self.rows_written += table.num_rows
            old.close()
            previous.unlink()

    def write(self, rows: Sequence[Mapping[str, Any]]) -> None:
        if rows:
            self.write_table(rows_to_table(rows, self.id_text, self.layout))

    def write_table(self, table: Any) -> None:
        if table.num_rows:
            self.writer.write_table(table.select(self.layout.names).cast(self.schema))
            self.rows_written += table.num_rows

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None


def open_writer(
    path: Path, fmt: str, *, id_text: bool, append: bool = False, layout: Layout | None = None
) -> Writer:
    """A writer for ``fmt`` (``"jsonl"`` or ``"parquet"``)."""
    if fmt == "jsonl":
        return JsonlWriter(path, append, layout)
    if fmt == "parquet":
        return ParquetWriter(path, id_text, append, layout)
    raise ConfigError(f"cannot write {fmt!r}; the output is jsonl or parquet")


def written_rows(
    path: Path, fmt: str, columns: Sequence[str] = ("ok", "error", "truncated", "rules", "bytes")
) -> Iterator[dict[str, Any]]:
    """The rows of an output file (a resumed run recounts them for its summary).

    A JSONL output's last line, if cut off mid-way, is removed from the file first.
    """
    if fmt == "jsonl":
        _drop_partial_line(path)
        with path.open("rb") as file:
            for line in file:
                yield orjson.loads(line)
        return
    _, pq = pyarrow_modules()
    previous = path.with_name(path.name + ".prev")
    source = previous if previous.exists() else path
    try:
        file = pq.ParquetFile(source)
    except Exception as exc:
        raise InvalidInput(
            f"cannot resume: {str(source)!r} is not a readable Parquet file ({exc}); "
            "the run was killed rather than interrupted. Start again with --overwrite"
        ) from exc
    with contextlib.closing(file):
        for batch in file.iter_batches(columns=list(columns)):
            yield from batch.to_pylist()


def _drop_partial_line(path: Path) -> None:
    with path.open("rb+") as file:
        size = file.seek(0, os.SEEK_END)
        if size == 0:
            return
        file.seek(size - 1)
        if file.read(1) == b"\n":
            return
        # Walk back to the last newline and cut there.
        step = 1 << 16
        end = size
        while end > 0:
            start = max(0, end - step)
            file.seek(start)
            block = file.read(end - start)
            cut = block.rfind(b"\n")
            if cut >= 0:
                file.truncate(start + cut + 1)
                return
            end = start
        file.truncate(0)


@dataclass
class ResumePoint:
    """How far an interrupted run got: kept beside the output as ``NAME.resume.json``.

    Attributes:
        input: the input file, absolute.
        fingerprint: the :meth:`~repairllm.batch.RepairSpec.fingerprint` of the run.
        output_format: the output's format.
        rows: input rows done (and written).
        offset: the input byte offset past them (JSONL), for a seek on resume.
    """

    input: str
    fingerprint: str
    output_format: str
    rows: int = 0
    offset: int | None = None

    @staticmethod
    def path_for(output: Path) -> Path:
        return output.with_name(output.name + ".resume.json")

    def save(self, output: Path) -> None:
        target = self.path_for(output)
        tmp = target.with_name(target.name + ".tmp")
        tmp.write_text(json.dumps(asdict(self)), encoding="utf-8")
        os.replace(tmp, target)

    @classmethod
    def load(cls, output: Path) -> ResumePoint | None:
        try:
            data = json.loads(cls.path_for(output).read_text(encoding="utf-8"))
            return cls(**data)
        except (OSError, ValueError, TypeError):
            return None

    @classmethod
    def clear(cls, output: Path) -> None:
        with contextlib.suppress(FileNotFoundError):
            cls.path_for(output).unlink()
