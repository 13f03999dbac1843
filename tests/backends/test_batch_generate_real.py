"""`batch generate` against real llama.cpp servers: one dies midway, one was never there."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest

import repairllm as rl
from repairllm.batch.generate import Endpoint, GenerateSpec, generate_file
from repairllm.bench.llamacpp_server import LlamaServer, serve

pytestmark = [pytest.mark.server, pytest.mark.slow]

CITY = {
    "type": "object",
    "properties": {"city": {"type": "string"}, "country": {"type": "string"}},
    "required": ["city", "country"],
}
PLACES = [
    "Lyon, France",
    "Kyoto, Japan",
    "Porto, Portugal",
    "Cusco, Peru",
    "Graz, Austria",
    "Oslo, Norway",
]


def _dead_url() -> str:
    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/v1"


def test_every_prompt_once_while_one_server_dies_and_one_is_dead(
    llama_server: LlamaServer, tmp_path: Path
) -> None:
    source = tmp_path / "prompts.jsonl"
    prompts = [f"Where is this? {place}. Give the city and country." for place in PLACES]
    source.write_text(
        "".join(json.dumps({"prompt": p, "key": f"k{i}"}) + "\n" for i, p in enumerate(prompts))
    )
    out = tmp_path / "values.jsonl"
    spec = GenerateSpec(
        schema=CITY, id_field="key", retries=1, options={"max_tokens": 40, "temperature": 0}
    )
    with serve(n_ctx=1024, n_threads=1) as dying:
        urls = {"live": llama_server.base_url, "dying": dying.base_url, "dead": _dead_url()}
        endpoints = [
            Endpoint(rl.connect("llamacpp", base_url=url, timeout=120), 1, name=name)
            for name, url in urls.items()
        ]
        killed_after: list[int] = []

        def kill_midway(rows: int, progress: int) -> None:
            # Once two rows are written, the second server goes away: its request in
            # flight, if any, fails, and every later prompt must go to the live one.
            if rows >= 2 and not killed_after:
                dying.process.kill()
                killed_after.append(rows)

        try:
            summary = generate_file(
                source, out, spec, endpoints, chunk_rows=1, on_progress=kill_midway
            )
        finally:
            for endpoint in endpoints:
                endpoint.backend.close()
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["row"] for r in rows] == list(range(len(prompts)))
    assert [r["id"] for r in rows] == [f"k{i}" for i in range(len(prompts))]
    assert summary.rows == len(prompts)
    assert killed_after
    # No row failed for a backend's fault: the dead and the dying server's prompts were
    # all retried on a live one.
    assert not [r for r in rows if (r["error"] or "").startswith("Backend")], rows
    assert {r["backend"] for r in rows} <= {"live", "dying"}
    assert any(r["tries"] > 1 for r in rows), "the dead server never took a prompt"
    # How many rows the dying server finished is a race: rows are written in order, so
    # it may have served several later prompts while an earlier one was still out. The
    # live server takes whatever the dying one had not finished when it went away.
    served_by_live = [r for r in rows if r["backend"] == "live"]
    assert served_by_live
    for row in rows:
        assert row["attempts"] >= 1
        assert row["completion_tokens"] > 0
        assert len(row["attempt_log"]) == row["attempts"]
    valid = [r for r in rows if r["ok"]]
    assert valid, "SmolLM2 under the server's JSON-Schema mode gave no valid value"
    for row in valid:
        assert set(row["value"]) >= {"city", "country"}
