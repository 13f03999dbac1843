"""generate() end to end against the real SmolLM2 behind llama-cpp-python's server."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

import repairllm as rl
from repairllm.bench.llamacpp_server import LlamaServer

pytestmark = pytest.mark.server

SCHEMAS = Path(__file__).resolve().parents[2] / "schemas"


def schema(name: str) -> dict[str, Any]:
    data = json.loads((SCHEMAS / f"{name}.json").read_text())
    data.pop("examples", None)
    return data


PROMPTS = {
    "get_weather": "What's the weather in Lyon, France, in celsius?",
    "classification": "Ticket: 'I was charged twice this month.' Classify it.",
    "person": "Ada Lovelace, born 1815-12-10, English mathematician, aged 36.",
}


@pytest.mark.parametrize("name", sorted(PROMPTS))
def test_native_mode_and_repair_give_a_valid_value(llama_server: LlamaServer, name: str) -> None:
    llm = rl.connect("llamacpp", base_url=llama_server.base_url, timeout=120)
    with llm:
        result = rl.generate(
            llm, PROMPTS[name], schema(name), retries=2, outcome=True, max_tokens=160, temperature=0
        )
    assert rl.compile_schema(schema(name)).is_valid(result.data)
    first = result.attempts[0]
    assert first.native, "the server's JSON-Schema mode was used"
    assert first.raw
    assert first.usage.completion_tokens > 0
    assert first.seconds > 0
    assert isinstance(result.ledger, rl.Ledger)


def test_plain_prompting_records_every_attempt(llama_server: LlamaServer) -> None:
    llm = rl.connect("llamacpp", base_url=llama_server.base_url, timeout=120)
    with llm:
        try:
            result = rl.generate(
                llm,
                PROMPTS["get_weather"],
                schema("get_weather"),
                retries=1,
                native=False,
                outcome=True,
                max_tokens=96,
                temperature=0,
            )
            attempts = result.attempts
            assert attempts[-1].ok
        except rl.RetriesExhausted as exc:
            attempts = exc.attempts
            assert len(attempts) == 2
            assert all(a.issues for a in attempts)
    assert all(a.raw for a in attempts)
    assert not any(a.native for a in attempts)


def test_a_reply_cut_off_is_continued(llama_server: LlamaServer) -> None:
    llm = rl.connect("llamacpp", base_url=llama_server.base_url, timeout=120)
    with llm:
        try:
            result = rl.generate(
                llm,
                PROMPTS["person"],
                schema("person"),
                retries=0,
                native=True,
                continuations=4,
                outcome=True,
                max_tokens=12,
                temperature=0,
            )
            attempt = result.attempts[0]
        except rl.RetriesExhausted as exc:
            attempt = exc.attempts[0]
    assert attempt.continuations >= 1, "the cut-off reply was continued, not restarted"
    assert attempt.usage.completion_tokens > 12
