"""Batch generation on scripted backends: every prompt once, in order, failing over."""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path
from typing import Any

import pytest

from repairllm.backend import Backend, ChatOptions, Completion, Message, Usage
from repairllm.batch import BatchInterrupted
from repairllm.batch.generate import Endpoint, GenerateSpec, agenerate_rows, generate_file
from repairllm.errors import BackendStatusError, BackendUnreachable, ContextTooLong

PERSON = {
    "type": "object",
    "properties": {"name": {"type": "string"}, "age": {"type": "integer"}},
    "required": ["name", "age"],
}


class Echo(Backend):
    """Answers ``{"name": ..., "age": N}`` for a prompt "person N", after a short wait."""

    name = "echo"
    supports_streaming = False  # one achat per request

    def __init__(self, label: str, *, fail: BaseException | None = None, delay: float = 0.0):
        self.model = "echo"
        self.base_url = label
        self.fail = fail
        self.delay = delay
        self.prompts: list[str] = []
        self.in_flight = 0
        self.most_in_flight = 0

    def _chat(self, messages: list[Message], options: ChatOptions) -> Completion:
        raise AssertionError("the batch uses achat")

    async def achat(self, messages: Any, **options: Any) -> Completion:
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            await asyncio.sleep(self.delay)
            prompt = messages[-1]["content"] if not isinstance(messages, str) else messages
            self.prompts.append(prompt)
            if self.fail is not None:
                raise self.fail
            found = re.search(r"person (\d+)", prompt)
            if found is None:
                return Completion("I don't know.", "stop", Usage(5, 3))
            n = int(found.group(1))
            if n % 3:
                reply = f"{{'name': 'P{n}', 'age': '{n}'}}"
            else:
                reply = f'{{"name": "P{n}", "age": {n}}}'
            return Completion(reply, "stop", Usage(10, 8))
        finally:
            self.in_flight -= 1


def _records(n: int) -> list[tuple[int, Any]]:
    return [(i, {"prompt": f"person {i}"}) for i in range(n)]


async def _collect(records: Any, endpoints: list[Endpoint], spec: GenerateSpec) -> list[Any]:
    return [row async for row in agenerate_rows(records, endpoints, spec)]


def test_rows_come_back_in_order_within_each_backends_limit() -> None:
    a, b = Echo("a", delay=0.01), Echo("b", delay=0.003)
    spec = GenerateSpec(schema=PERSON, options={"max_tokens": 32})
    rows = asyncio.run(_collect(_records(60), [Endpoint(a, 2), Endpoint(b, 3)], spec))
    assert [r["row"] for r in rows] == list(range(60))
    assert all(r["ok"] for r in rows)
    assert [json.loads(r["value"])["age"] for r in rows] == list(range(60))
    assert a.most_in_flight <= 2
    assert b.most_in_flight <= 3
    assert len(a.prompts) + len(b.prompts) == 60  # each prompt asked once
    assert {r["backend"] for r in rows} == {"a", "b"}
    assert all(r["attempts"] == 1 and r["prompt_tokens"] == 10 for r in rows)
    coerced = rows[1]
    assert "single_quotes" in coerced["rules"]


def test_a_dead_backends_prompts_are_served_by_the_live_one() -> None:
    dead = Echo("dead", fail=BackendUnreachable("connection refused", "echo"))
    live = Echo("live", delay=0.002)
    spec = GenerateSpec(schema=PERSON, transient_retries=0)
    endpoints = [Endpoint(dead, 4, cooldown=60), Endpoint(live, 2)]
    rows = asyncio.run(_collect(_records(40), endpoints, spec))
    assert [r["row"] for r in rows] == list(range(40))
    assert all(r["ok"] and r["backend"] == "live" for r in rows)
    assert len(live.prompts) == 40
    # The dead server failed a few prompts, then rested while the live one took the rest.
    assert 1 <= len(dead.prompts) <= 8
    assert max(r["tries"] for r in rows) == 2


def test_when_every_backend_is_down_each_row_says_so_once() -> None:
    spec = GenerateSpec(schema=PERSON, tries=2, transient_retries=0)
    endpoints = [
        Endpoint(Echo("x", fail=BackendUnreachable("refused", "echo")), 2, cooldown=0.01),
        Endpoint(Echo("y", fail=BackendStatusError("503", "echo", status=503)), 2, cooldown=0.01),
    ]
    rows = asyncio.run(_collect(_records(10), endpoints, spec))
    assert [r["row"] for r in rows] == list(range(10))
    assert {r["error"] for r in rows} <= {"BackendUnreachable", "BackendStatusError"}
    assert all(r["tries"] == 2 and r["value"] is None for r in rows)


def test_a_prompts_own_fault_is_its_row_not_a_failover() -> None:
    too_long = Echo("a", fail=ContextTooLong(5000, 2048, "echo"))
    other = Echo("b")
    spec = GenerateSpec(schema=PERSON)
    rows = asyncio.run(_collect(_records(3), [Endpoint(too_long, 1)], spec))
    assert [r["error"] for r in rows] == ["ContextTooLong"] * 3
    assert other.prompts == []


def test_bad_records_and_format_failures_are_rows(tmp_path: Path) -> None:
    source = tmp_path / "prompts.jsonl"
    source.write_bytes(
        b'{"prompt": "person 4", "key": "k4"}\n'
        b'{"prompt": ""}\n'
        b"\xff\xfe\n"
        b'{"prompt": "nobody"}\n'
        b'{"prompt": [{"role": "user", "content": "person 5"}]}\n'
    )
    echo = Echo("a")
    spec = GenerateSpec(schema=PERSON, id_field="key", retries=1)
    summary = generate_file(source, tmp_path / "out.jsonl", spec, [Endpoint(echo, 2)])
    rows = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text().splitlines()]
    assert [r["error"] for r in rows] == [None, "Empty", "InvalidInput", "RetriesExhausted", None]
    assert rows[0]["id"] == "k4"
    assert rows[0]["value"] == {"name": "P4", "age": 4}
    assert rows[3]["attempts"] == 2  # the first reply and one retry with feedback
    assert len(rows[3]["attempt_log"]) == 2
    assert rows[4]["value"] == {"name": "P5", "age": 5}
    assert summary.rows == 5
    assert summary.ok == 2
    assert json.loads((tmp_path / "out.jsonl").read_text().splitlines()[0])["backend"] == "a"


def test_generate_resumes_where_it_stopped(tmp_path: Path) -> None:
    source = tmp_path / "prompts.jsonl"
    source.write_text("".join(json.dumps({"prompt": f"person {i}"}) + "\n" for i in range(30)))
    whole = tmp_path / "whole.parquet"
    pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    spec = GenerateSpec(schema=PERSON)
    generate_file(source, whole, spec, [Endpoint(Echo("a"), 3)], chunk_rows=5)
    out = tmp_path / "out.parquet"
    seen = []

    def stop(rows: int, progress: int) -> None:
        seen.append(rows)
        if rows >= 10:
            raise KeyboardInterrupt

    with pytest.raises(BatchInterrupted):
        generate_file(source, out, spec, [Endpoint(Echo("a"), 3)], chunk_rows=5, on_progress=stop)
    assert pq.read_table(out).column("row").to_pylist() == list(range(10))
    generate_file(source, out, spec, [Endpoint(Echo("a"), 3)], chunk_rows=5, resume=True)
    drop = ["seconds", "attempt_log"]
    assert pq.read_table(out).drop(drop).equals(pq.read_table(whole).drop(drop))
