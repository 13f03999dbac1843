"""stream_items against the real SmolLM2 behind llama-cpp-python's server."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

import repairllm as rl
from repairllm.backend import Chunk
from repairllm.bench.llamacpp_server import LlamaServer

pytestmark = pytest.mark.server

PEOPLE = {
    "type": "array",
    "items": {
        "type": "object",
        "properties": {"name": {"type": "string"}, "age": {"type": "integer"}},
        "required": ["name", "age"],
    },
    "minItems": 2,
    "maxItems": 3,
}


def test_items_match_the_repair_of_the_whole_reply(llama_server: LlamaServer) -> None:
    llm = rl.connect("llamacpp", base_url=llama_server.base_url, timeout=120)
    chunks: list[str] = []
    arrivals: list[int] = []  # chunks received when each element came out
    real_stream = llm.stream

    def recording(messages: Any, **options: Any) -> Iterator[Chunk]:
        for chunk in real_stream(messages, **options):
            chunks.append(chunk.text)
            yield chunk

    with llm:
        llm.stream = recording  # type: ignore[method-assign]
        got = []
        for item in rl.stream_items(
            llm,
            "Name three people from history with their age at death.",
            PEOPLE,
            max_tokens=200,
            temperature=0,
        ):
            got.append(item)
            arrivals.append(len(chunks))
    reply = "".join(chunks)
    assert got, reply
    values = [item.data for item in got if not item.cut]
    whole = rl.repair(reply, PEOPLE, outcome=True)
    if got[-1].cut:  # the token limit came first: what came before is the whole's prefix
        assert values == whole.data[: len(values)], reply
    else:
        assert values == whole.data, reply
        assert all(item.ok for item in got), [i.issues for i in got]
    # Streamed: the first element came out before the reply was complete.
    assert arrivals[0] < len(chunks), (arrivals, len(chunks))
