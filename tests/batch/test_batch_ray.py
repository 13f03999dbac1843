"""The Ray engine on a real local Ray (two CPUs): the local engine's rows, exactly once."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import pytest
from batch_data import SCHEMA, deadline, reply_lines, write_lines

from repairllm.backend import Backend, ChatOptions, Completion, Message, Usage
from repairllm.batch import RepairSpec, repair_file
from repairllm.batch.generate import Endpoint, GenerateSpec
from repairllm.errors import BackendUnreachable, ConfigError

pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")
pytest.importorskip("ray")

from repairllm.batch.ray_engine import (  # noqa: E402 - after the skip
    RepairWorker,
    generate_dataset,
    plan_pool,
    read_dataset,
    repair_dataset,
    repair_file_ray,
)

# Ray warns of its own deprecated settings when it reads its context: not ours to fix.
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning:ray.*")

SPEC = RepairSpec(field="reply", id_field="id", schema=SCHEMA)
N = 10_000


@pytest.fixture(scope="module")
def replies(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_lines(tmp_path_factory.mktemp("ray") / "replies.jsonl", reply_lines(N))


@pytest.fixture(scope="module")
def local_jsonl(replies: Path) -> Path:
    out = replies.with_name("local.jsonl")
    repair_file(replies, out, SPEC)
    return out


@pytest.mark.parametrize(
    ("cpus", "workers", "plan"),
    [
        (2, None, (1, 1.0)),
        (2, 2, (2, 0.75)),
        (16, None, (15, 1.0)),
        (64, None, (62, 1.0)),
        (3, None, (2, 1.0)),
    ],
    ids=["2-cpus", "2-cpus-2-workers", "16-cpus", "64-cpus", "3-cpus"],
)
def test_the_pool_always_leaves_cpu_for_reading(
    cpus: float, workers: int | None, plan: tuple[int, float]
) -> None:
    got = plan_pool(cpus, workers)
    assert (got.workers, got.worker_cpus) == plan
    assert got.workers * got.worker_cpus + got.io_cpus <= cpus


def test_a_pool_that_would_starve_the_reads_is_refused() -> None:
    with pytest.raises(ConfigError, match="stall"):
        plan_pool(2, workers=2, worker_cpus=1.0)


@pytest.mark.slow
def test_ten_thousand_rows_through_both_engines_are_identical(
    ray_session: Any, replies: Path, local_jsonl: Path
) -> None:
    out = replies.with_name("ray.jsonl")
    with deadline(600):
        summary = repair_file_ray(replies, out, SPEC)
    assert out.read_bytes() == local_jsonl.read_bytes()
    assert summary.rows == N
    assert summary.duplicates_dropped == 0
    # Each kind of bad row is one row with its error.
    assert set(summary.by_error) >= {
        "NoJSONFound",
        "Empty",
        "RepairFailed",
        "InvalidInput",
        "BadRecord",
    }
    assert summary.ok + sum(summary.by_error.values()) == N


@pytest.mark.slow
def test_parquet_on_two_workers_on_two_cpus_finishes_with_the_same_table(
    ray_session: Any, replies: Path, local_jsonl: Path, tmp_path: Path
) -> None:
    # The replies as a Parquet file of several row groups (read by several tasks).
    rows = [{"id": None, "reply": None, "raw": line} for line in replies.read_bytes().splitlines()]
    import json

    for row in rows:
        try:
            record = json.loads(row["raw"])
            row["id"], row["reply"] = record.get("id"), record.get("reply")
        except ValueError:
            row["reply"] = row["raw"]  # garbage, as bytes
    table = pa.table(
        {
            "id": pa.array([r["id"] for r in rows], pa.string()),
            "reply": pa.array(
                [r["reply"].encode() if isinstance(r["reply"], str) else r["reply"] for r in rows],
                pa.binary(),
            ),
        }
    )
    source = tmp_path / "replies.parquet"
    pq.write_table(table, source, row_group_size=1500)
    local = tmp_path / "local.parquet"
    repair_file(source, local, SPEC)
    out = tmp_path / "ray.parquet"
    with deadline(600):  # two one-CPU actors on two CPUs stalled for minutes before
        summary = repair_file_ray(source, out, SPEC, workers=2)
    assert summary.rows == N
    assert pq.read_table(out).equals(pq.read_table(local))


class KillOnce(RepairWorker):
    """Kills its own worker process the first time it sees the marked row."""

    marker = ""
    row_to_kill = 6_000

    def __call__(self, batch: Any) -> Any:
        rows = batch.column("__row").to_pylist()
        if self.row_to_kill in rows and not os.path.exists(self.marker):
            Path(self.marker).write_text(str(os.getpid()))
            os._exit(1)  # the worker process dies mid-batch, as a crash or an OOM kill does
        return super().__call__(batch)


@pytest.mark.slow
def test_a_worker_killed_mid_run_still_gives_every_row_exactly_once(
    ray_session: Any, replies: Path, local_jsonl: Path, tmp_path: Path
) -> None:
    ray_session.cloudpickle.register_pickle_by_value(sys.modules[__name__])
    marker = tmp_path / "killed"
    worker = type("KillOnceHere", (KillOnce,), {"marker": str(marker)})
    out = tmp_path / "ray.jsonl"
    with deadline(600):
        summary = repair_file_ray(replies, out, SPEC, workers=2, batch_rows=500, worker=worker)
    assert marker.exists(), "no worker was killed"
    assert int(marker.read_text()) != os.getpid()
    assert summary.rows == N
    assert out.read_bytes() == local_jsonl.read_bytes()


@pytest.mark.slow
def test_repair_dataset_in_a_users_pipeline(ray_session: Any, tmp_path: Path) -> None:
    ray = ray_session
    items = [
        {"prompt": f"p{i}", "completion": f"{{'name': 'Ann', 'age': '{i}'}}"} for i in range(50)
    ]
    items[7]["completion"] = "no idea"
    ds = ray.data.from_items(items)
    out = repair_dataset(ds, SCHEMA, field="completion", keep=["prompt"], workers=1)
    with deadline(300):
        rows = sorted(out.take_all(), key=lambda r: int(r["prompt"][1:]))
    assert len(rows) == 50
    assert rows[0]["value"] == '{"name":"Ann","age":0}'
    assert rows[7]["error"] == "NoJSONFound"
    assert rows[7]["prompt"] == "p7"
    assert rows[0]["row"] is None  # positions are the reader's; this dataset has none


@pytest.mark.slow
def test_a_folder_output_is_written_by_the_workers(ray_session: Any, tmp_path: Path) -> None:
    source = write_lines(tmp_path / "in.jsonl", reply_lines(600, seed=3))
    folder = tmp_path / "out"
    with deadline(300):
        summary = repair_file_ray(source, folder, SPEC)
    table = pq.read_table(folder)
    assert sorted(table.column("row").to_pylist()) == list(range(600))
    assert summary.rows == 600
    assert summary.duplicates_dropped == 0
    local = tmp_path / "local.parquet"
    repair_file(source, local, SPEC)
    local_table = pq.read_table(local)
    assert table.sort_by("row").select(local_table.column_names).to_pylist() == (
        local_table.to_pylist()
    )


def test_read_dataset_keeps_every_line_and_its_position(ray_session: Any, tmp_path: Path) -> None:
    source = write_lines(tmp_path / "in.jsonl", [b'{"a": 1}', b"", b"\xff", b"[1"])
    with deadline(300):
        rows = read_dataset(source, columns=["reply"]).take_all()
    assert [r["__row"] for r in rows] == [0, 1, 2]
    assert [r["__line"] for r in rows] == [b'{"a": 1}', b"\xff", b"[1"]


class Answers(Backend):
    """Answers ``{"n": N}`` to the prompt "number N", or fails as told."""

    name = "answers"
    supports_streaming = False

    def __init__(self, fail: bool = False) -> None:
        self.model = "answers"
        self.fail = fail

    def _chat(self, messages: list[Message], options: ChatOptions) -> Completion:
        if self.fail:
            raise BackendUnreachable("connection refused", "answers")
        n = messages[-1]["content"].rsplit(" ", 1)[-1]
        return Completion("{'n': %s,}" % n, "stop", Usage(3, 4))  # noqa: UP031


def _live() -> Endpoint:
    return Endpoint(Answers(), 2, name="live")


def _dead() -> Endpoint:
    return Endpoint(Answers(fail=True), 2, name="dead", cooldown=60)


@pytest.mark.slow
def test_generate_on_ray_with_one_actor_per_backend(ray_session: Any, tmp_path: Path) -> None:
    ray_session.cloudpickle.register_pickle_by_value(sys.modules[__name__])
    lines = [f'{{"prompt": "number {i}"}}'.encode() for i in range(120)]
    source = write_lines(tmp_path / "prompts.jsonl", lines)
    spec = GenerateSpec(schema={"type": "object", "required": ["n"]}, transient_retries=0)
    ds = generate_dataset(read_dataset(source, columns=["prompt"]), spec, [_live, _dead])
    with deadline(300):
        rows = sorted(ds.take_all(), key=lambda r: r["row"])
    assert [r["row"] for r in rows] == list(range(120))
    assert all(r["ok"] and r["backend"] == "live" for r in rows), rows[:3]
    assert [json.loads(r["value"])["n"] for r in rows] == list(range(120))
