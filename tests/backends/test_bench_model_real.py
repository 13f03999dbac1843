"""`bench model` over real llama.cpp servers: two serving one GGUF, one killed midway, and
none there at all."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

import repairllm as rl
from repairllm.batch.generate import Endpoint
from repairllm.bench.llamacpp_server import LlamaServer, serve
from repairllm.bench.model import make_tasks, run_model_bench_on
from repairllm.cli import main

pytestmark = [pytest.mark.server, pytest.mark.slow]

# What may differ between two runs of the same tasks: who served, and how long it took.
WHERE = {"server", "tries", "seconds"}


def _dead_url() -> str:
    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/v1"


def _hook(backend: Any, before: Callable[[], Awaitable[None]]) -> None:
    """Await ``before()`` ahead of each request the backend sends (whole or streamed)."""
    achat, astream = backend.achat, backend.astream

    async def hooked_achat(messages: Any, **options: Any) -> Any:
        await before()
        return await achat(messages, **options)

    async def hooked_astream(messages: Any, **options: Any) -> AsyncIterator[Any]:
        await before()
        async for chunk in astream(messages, **options):
            yield chunk

    backend.achat, backend.astream = hooked_achat, hooked_astream


def _ids(card: dict[str, Any]) -> list[str]:
    return [r["id"] for r in card["results"]]


@pytest.fixture(scope="module")
def second_server(llama_server: LlamaServer) -> Any:
    """A second server of the same GGUF, with the fixture's context length."""
    with serve(llama_server.model_path, n_ctx=2048) as server:
        yield server


def test_two_servers_of_one_gguf_give_a_card_per_model_and_a_comparison(
    llama_server: LlamaServer,
    second_server: LlamaServer,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    first, second = llama_server.base_url, second_server.base_url
    code = main(
        [
            "bench",
            "model",
            "--target",
            f"pair=llamacpp@{first},{second}",
            "--target",
            f"one=llamacpp@{second}",
            "-n",
            "3",
            "--retries",
            "0",
            "--max-tokens",
            "48",
            "--out",
            str(tmp_path),
        ]
    )
    assert code == 0, capsys.readouterr().err
    pair = json.loads((tmp_path / "pair.json").read_text())
    one = json.loads((tmp_path / "one.json").read_text())
    want = [t.id for t in make_tasks(3)]
    for card in (pair, one):
        assert _ids(card) == want  # every task counted once, in task order
        assert card["summary"]["tasks"] == 3
        assert card["summary"]["errors"] == 0
        assert sum(card["servers"].values()) == 3
        assert card["moved"] == 0
        assert all(r["completion_tokens"] > 0 for r in card["results"])
    # Both servers of the pair took tasks (one worker each, both asked at once) ...
    assert set(pair["servers"]) == {first, second}
    assert all(pair["servers"].values())
    assert {r["server"] for r in one["results"]} == {second}
    # ... and the results are those of the one server alone: same prompts, seeds and
    # options whichever server answers, and greedy decoding of the same GGUF.
    strip = [{k: v for k, v in r.items() if k not in WHERE} for r in pair["results"]]
    assert strip == [{k: v for k, v in r.items() if k not in WHERE} for r in one["results"]]
    compare = (tmp_path / "compare.md").read_text()
    assert compare.startswith("# Model comparison")
    assert "pair (openai)" in compare  # the llamacpp preset of the openai driver
    assert "one (openai)" in compare
    assert "Served by 2 server(s)" in (tmp_path / "pair.md").read_text()


def test_a_server_killed_midway_passes_its_tasks_to_the_live_one(
    llama_server: LlamaServer, tmp_path: Path
) -> None:
    tasks = make_tasks(4)
    with serve(llama_server.model_path, n_ctx=1024, n_threads=1) as dying:
        live = rl.connect("llamacpp", base_url=llama_server.base_url, timeout=120)
        doomed = rl.connect("llamacpp", base_url=dying.base_url, timeout=120)
        killed = asyncio.Event()
        calls = {"live": 0, "dying": 0}

        async def before_dying() -> None:
            # The dying server answers its first request; on its second it is killed
            # (the request then meets a closed port), with its task in hand. That may
            # still be its first task (a reply cut at max_tokens is continued in a
            # second request), so it may have finished none.
            calls["dying"] += 1
            if calls["dying"] == 2:
                dying.process.kill()
                dying.process.wait()
                killed.set()

        async def before_live() -> None:
            # The live server waits before its second request until the other has
            # died: so the dying one surely asks for a second task (no race on speed).
            calls["live"] += 1
            if calls["live"] == 2:
                await asyncio.wait_for(killed.wait(), 300)

        _hook(live, before_live)
        _hook(doomed, before_dying)
        endpoints = [Endpoint(live, 1, name="live"), Endpoint(doomed, 1, name="dying")]
        try:
            card = run_model_bench_on(endpoints, tasks=tasks, retries=0, max_tokens=32)
        finally:
            live.close()
            doomed.close()
    assert killed.is_set()
    assert _ids(card) == [t.id for t in tasks]  # every task once, in order
    assert not card["interrupted"]
    assert "error" not in card
    assert card["summary"]["errors"] == 0
    assert card["servers"]["live"] + card["servers"].get("dying", 0) == len(tasks)
    moved = [r for r in card["results"] if r["tries"] > 1]
    assert moved
    assert card["moved"] == len(moved)
    assert all(r["server"] == "live" for r in moved)


def test_no_server_there_at_all_is_one_clear_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    urls = [_dead_url(), _dead_url()]
    code = main(
        [
            "bench",
            "model",
            "--backend",
            "llamacpp",
            "--base-url",
            urls[0],
            "--base-url",
            urls[1],
            "-n",
            "2",
            "--out",
            str(tmp_path),
        ]
    )
    err = capsys.readouterr().err
    assert code == 1
    assert "Traceback" not in err
    assert f"every server of this model failed ({urls[0]}, {urls[1]})" in err
    assert "run the bench again" in err
