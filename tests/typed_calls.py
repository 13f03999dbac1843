"""What a user's type checker sees: cases for mypy, not for pytest.

``tests/test_typing.py`` runs mypy (strict, the project's configuration) on this file.
Each ``assert_type`` states the type a call returns; each ``type: ignore`` with its code
states an error mypy must report (an ignore that is not needed is itself an error).
The functions are never called.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

from pydantic import BaseModel
from typing_extensions import assert_type

import repairllm as rl


class Person(BaseModel):
    name: str
    age: int


def sync_calls(llm: rl.Backend) -> None:
    assert_type(rl.repair('{"name": "Ann", "age": 31}', Person), Person)
    assert_type(rl.generate(llm, "Ann is 31.", Person), Person)
    assert_type(rl.generate(llm, "Ann is 31.", Person, retries=1, max_tokens=64), Person)
    assert_type(rl.generate(llm, "Ann is 31.", list[int]), list[int])
    assert_type(rl.generate(llm, "Ann is 31.", Person, outcome=True), rl.Generation[Any])
    assert_type(rl.generate(llm, "Ann is 31.", {"type": "object"}), Any)
    assert_type(rl.generate(llm, "Ann is 31."), Any)
    assert_type(rl.stream(llm, "Ann is 31.", Person), Iterator[rl.Partial])
    rl.generate(llm, "Ann is 31.", Person, retries="2")  # type: ignore[call-overload]
    assert_type(rl.generate(llm, "Ann is 31.", Person, mode="tools"), Person)
    rl.generate(llm, "Ann is 31.", Person, mode="xml")  # type: ignore[call-overload]
    hooks = rl.Hooks(on_attempt=lambda attempt: None, on_retry=lambda attempt: attempt.ok)
    assert_type(rl.generate(llm, "Ann is 31.", Person, hooks=hooks), Person)
    assert_type(
        rl.generate(llm, "Ann is 31.", Person, hooks=hooks, outcome=True), rl.Generation[Any]
    )
    assert_type(rl.choose(llm, "Good?", ["yes", "no"], hooks=hooks), str)
    assert_type(rl.stream(llm, "Ann is 31.", Person, hooks=hooks), Iterator[rl.Partial])
    rl.generate(llm, "Ann is 31.", Person, hooks=print)  # type: ignore[call-overload]
    rl.Hooks(on_request=lambda record: record.reply.text)  # type: ignore[union-attr]
    assert_type(rl.call_tools(llm, "Ann?", {"person": Person}), list[rl.ToolUse])
    assert_type(
        rl.call_tools(llm, "Ann?", {"person": Person}, outcome=True),
        rl.Generation[list[rl.ToolUse]],
    )


async def async_calls(llm: rl.Backend) -> None:
    assert_type(await rl.agenerate(llm, "Ann is 31.", Person), Person)
    assert_type(await rl.agenerate(llm, "Ann is 31.", Person, policy="strict"), Person)
    assert_type(await rl.agenerate(llm, "Ann is 31.", list[int]), list[int])
    assert_type(await rl.agenerate(llm, "Ann is 31.", Person, outcome=True), rl.Generation[Any])
    assert_type(await rl.agenerate(llm, "Ann is 31.", {"type": "object"}), Any)
    assert_type(await rl.agenerate(llm, "Ann is 31."), Any)
    assert_type(rl.astream(llm, "Ann is 31.", Person), AsyncIterator[rl.Partial])
    await rl.agenerate(llm, "Ann is 31.", Person, retries="2")  # type: ignore[call-overload]
    hooks = rl.Hooks(on_request=lambda record: record.seconds)
    assert_type(await rl.agenerate(llm, "Ann is 31.", Person, hooks=hooks), Person)
    assert_type(await rl.acall_tools(llm, "Ann?", {"person": Person}), list[rl.ToolUse])
