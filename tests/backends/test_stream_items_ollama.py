"""stream_items through the ollama driver, over HTTP to the loopback Ollama server."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from ollama_server import FakeOllama, Reply, example_instance
from pydantic import BaseModel

import repairllm as rl
from repairllm.backend import Chunk
from repairllm_backends.ollama import OllamaBackend

MODEL = "tiny:latest"


class Task(BaseModel):
    title: str
    hours: int


@pytest.fixture
def fake() -> Iterator[FakeOllama]:
    with FakeOllama() as server:
        yield server
    assert server.errors == []


@pytest.fixture
def llm(fake: FakeOllama) -> Iterator[OllamaBackend]:
    backend = OllamaBackend(MODEL, base_url=fake.url, timeout=10)
    yield backend
    backend.close()


def recorded(llm: OllamaBackend) -> list[str]:
    """Make ``llm.stream`` note each chunk's text as the driver hands it over."""
    seen: list[str] = []
    real = llm.stream

    def stream(messages: Any, **options: Any) -> Iterator[Chunk]:
        for chunk in real(messages, **options):
            seen.append(chunk.text)
            yield chunk

    llm.stream = stream  # type: ignore[method-assign]
    return seen


def test_items_come_off_the_ndjson_stream_one_by_one(llm: OllamaBackend, fake: FakeOllama) -> None:
    rows = [{"title": f"t{i}", "hours": i + 1} for i in range(5)]
    rows[2]["hours"] = "lots"
    fake.script(Reply(text=json.dumps(rows, indent=1)))
    seen = recorded(llm)
    got = []
    for item in rl.stream_items(llm, "five tasks", list[Task]):
        got.append((item, len(seen)))
    assert [(i.index, i.ok) for i, _ in got] == [
        (0, True),
        (1, True),
        (2, False),
        (3, True),
        (4, True),
    ]
    assert got[2][0].issues[0].path == "/2/hours"
    # Each element came while the server was still streaming the ones after it.
    arrivals = [n for _, n in got]
    assert arrivals == sorted(arrivals)
    assert arrivals[0] < arrivals[-1]
    # Ollama's structured mode was asked for the list.
    assert fake.bodies()[0]["format"] == rl.compile_schema(list[Task]).root


def test_the_servers_own_instance_matches_a_whole_repair(
    llm: OllamaBackend, fake: FakeOllama
) -> None:
    schema = {
        "type": "array",
        "items": {
            "type": "object",
            "properties": {"name": {"type": "string"}, "n": {"type": "integer"}},
            "required": ["name", "n"],
        },
        "minItems": 3,
    }
    seen = recorded(llm)
    got = list(rl.stream_items(llm, "three", schema))
    reply = "".join(seen)
    assert json.loads(reply) == example_instance(schema)
    assert [i.value for i in got] == rl.repair(reply, schema)
    assert all(i.ok for i in got)


def test_a_reply_cut_by_num_predict_ends_with_a_cut_record(
    llm: OllamaBackend, fake: FakeOllama
) -> None:
    rows = [{"title": f"t{i}", "hours": i + 1} for i in range(4)]
    fake.script(Reply(text=json.dumps(rows)))
    # The fake cuts after that many whitespace-separated words, done_reason "length".
    words = len(json.dumps(rows[:2]).split()) + 2
    got = list(rl.stream_items(llm, "four tasks", list[Task], max_tokens=words))
    assert [i.value for i in got[:-1]] == [Task.model_validate(row) for row in rows[:2]]
    assert got[-1].cut
    assert "token limit" in got[-1].issues[0].message
