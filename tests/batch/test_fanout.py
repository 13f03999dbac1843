"""Fanout, the fan-out under batch generate and bench model: what a subclass may rely on."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from repairllm.backend import Backend, ChatOptions, Completion, Message
from repairllm.batch.generate import Endpoint, Fanout, Job
from repairllm.errors import BackendUnreachable


class Idle(Backend):
    name = "idle"

    def __init__(self, label: str) -> None:
        self.model = "idle"
        self.base_url = label

    def _chat(self, messages: list[Message], options: ChatOptions) -> Completion:
        raise AssertionError("not asked")


class Squares(Fanout):
    """Squares each number; fails on the first server while it is told to."""

    def __init__(self, endpoints: list[Endpoint], *, broken: str = "", bug_at: int = -1):
        super().__init__(endpoints, tries=len(endpoints))
        self.broken = broken
        self.bug_at = bug_at

    async def attempt(self, endpoint: Endpoint, job: Job) -> None:
        job.tries += 1
        await asyncio.sleep(0)
        if job.record == self.bug_at:
            raise ZeroDivisionError("a bug in the subclass")
        if endpoint.name == self.broken:
            if self.moved(endpoint, job, BackendUnreachable("refused", "idle")):
                return
            self.finish(job, None)
            return
        endpoint.answered()
        self.finish(job, (job.record**2, endpoint.name, job.tries))


async def _all(fan: Fanout, n: int) -> list[Any]:
    stream = fan.results((i, i) for i in range(n))
    try:
        return [r async for r in stream]
    finally:
        await stream.aclose()


def test_results_come_in_input_order_and_a_failing_server_moves_its_items() -> None:
    endpoints = [Endpoint(Idle("a"), 2), Endpoint(Idle("bad"), 3), Endpoint(Idle("c"), 1)]
    results = asyncio.run(_all(Squares(endpoints, broken="bad"), 30))
    assert [r[0] for r in results] == [i * i for i in range(30)]
    assert {r[1] for r in results} <= {"a", "c"}
    assert any(r[2] > 1 for r in results)
    assert endpoints[1].served == 0
    assert endpoints[0].served + endpoints[2].served == 30


def test_an_exception_escaping_attempt_is_raised_to_the_reader_not_left_waiting() -> None:
    endpoints = [Endpoint(Idle("a"), 2), Endpoint(Idle("b"), 2)]
    with pytest.raises(ZeroDivisionError, match="a bug in the subclass"):
        asyncio.run(_all(Squares(endpoints, bug_at=7), 20))
