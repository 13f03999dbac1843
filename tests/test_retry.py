"""generate / agenerate / repairing against a scripted backend: the loop's decisions."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest
from pydantic import BaseModel
from scripted_backend import Scripted

import repairllm as rl
from repairllm.backend import Backend, ChatOptions, Chunk, Completion, Message, Usage
from repairllm.errors import BackendStatusError, BackendTimeout, MissingKey


class Person(BaseModel):
    name: str
    age: int


def test_valid_first_reply_is_one_attempt() -> None:
    llm = Scripted(['Sure! {"name": "Ann", "age": "31"}'])
    result = rl.generate(llm, "Ann is 31.", Person, outcome=True)
    assert result.value == Person(name="Ann", age=31)
    assert len(result.attempts) == 1
    assert "coerce" in " ".join(result.ledger.rules())
    # The schema went into the prompt as a skeleton the model can imitate.
    system = llm.requests[0][0][0]
    assert system["role"] == "system"
    assert '"age": <integer>' in system["content"]


def test_feedback_names_the_issue_by_pointer_and_shows_the_repaired_value() -> None:
    llm = Scripted(['{"name": "Ann", "age": "thirty-one"}', '{"name": "Ann", "age": 31}'])
    result = rl.generate(llm, "Ann is 31.", Person, outcome=True)
    assert result.value.age == 31
    assert [a.ok for a in result.attempts] == [False, True]
    second = llm.requests[1][0]
    assert second[-2] == {"role": "assistant", "content": '{"name": "Ann", "age": "thirty-one"}'}
    feedback = second[-1]["content"]
    assert "/age" in feedback
    assert '"thirty-one"' in feedback


def test_context_stays_bounded_over_five_failed_attempts() -> None:
    bad = ['{"name": "Ann", "age": "x' + "y" * i + '"}' for i in range(5)]
    llm = Scripted(bad)
    with pytest.raises(rl.RetriesExhausted) as info:
        rl.generate(llm, "Ann is 31.", Person, retries=4)
    assert len(info.value.attempts) == 5
    sizes = [len(messages) for messages, _ in llm.requests]
    assert sizes[0] == 2
    assert set(sizes[1:]) == {4}, "each retry replaces the failed turn instead of appending"
    tokens = [llm.count_tokens(messages) for messages, _ in llm.requests[1:]]
    assert max(tokens) - min(tokens) <= 3, tokens
    # The last failed reply is the one shown, not the first.
    assert llm.requests[-1][0][-2]["content"] == bad[3]
    assert info.value.best is not None
    assert all(a.issues for a in info.value.attempts)


def test_no_json_at_all_says_so_in_feedback() -> None:
    llm = Scripted(["I cannot help with that.", '{"name": "Bo", "age": 3}'])
    assert rl.generate(llm, "Bo is 3.", Person) == Person(name="Bo", age=3)
    assert "held no JSON" in llm.requests[1][0][-1]["content"]


def test_truncated_reply_is_continued_not_restarted() -> None:
    llm = Scripted([('{"name": "Al', "length"), ('Al", "age": 4}', "stop")])
    result = rl.generate(llm, "Al is 4.", Person, outcome=True, max_tokens=8)
    assert result.value == Person(name="Al", age=4)
    attempt = result.attempts[0]
    assert attempt.continuations == 1
    assert attempt.raw == '{"name": "Al", "age": 4}', "the repeated 'Al' overlap was removed"
    cont = llm.requests[1][0]
    assert cont[-2] == {"role": "assistant", "content": '{"name": "Al'}
    assert "cut off" in cont[-1]["content"]
    pieces = ['{"name": "Al', 'Al", "age": 4}']
    assert attempt.usage.completion_tokens == sum(len(t) // 4 for t in pieces)


def test_transient_errors_are_retried_and_counted_apart() -> None:
    llm = Scripted(
        [
            BackendTimeout("slow", "scripted"),
            BackendStatusError("busy", "scripted", status=503, body="overloaded"),
            '{"name": "Cy", "age": 9}',
        ]
    )
    result = rl.generate(llm, "Cy is 9.", Person, outcome=True, backoff=0.001)
    assert len(result.attempts) == 1
    assert result.attempts[0].transient_errors == 2


def test_transient_errors_give_up_after_their_budget() -> None:
    llm = Scripted([BackendTimeout("slow", "scripted")] * 3)
    with pytest.raises(BackendTimeout):
        rl.generate(llm, "x", Person, transient_retries=2, backoff=0.001)
    assert len(llm.requests) == 3


def test_non_transient_errors_are_not_retried() -> None:
    llm = Scripted([MissingKey("SOME_KEY", "scripted"), '{"name": "x", "age": 1}'])
    with pytest.raises(MissingKey):
        rl.generate(llm, "x", Person, backoff=0.001)
    assert len(llm.requests) == 1


def test_native_mode_sends_the_schema_and_can_be_switched_off() -> None:
    llm = Scripted(['{"name": "Di", "age": 5}'], json_schema=True)
    rl.generate(llm, "Di is 5.", Person)
    sent = llm.requests[0][1].json_schema
    assert sent is not None
    assert set(sent["properties"]) == {"name", "age"}
    off = Scripted(['{"name": "Di", "age": 5}'], json_schema=True)
    rl.generate(off, "Di is 5.", Person, native=False)
    assert off.requests[0][1].json_schema is None


def test_native_mode_falls_back_when_the_server_refuses_the_schema() -> None:
    refusal = BackendStatusError("bad grammar", "scripted", status=400, body="cannot compile")
    llm = Scripted([refusal, '{"name": "Ed", "age": 6}'], json_schema=True)
    result = rl.generate(llm, "Ed is 6.", Person, outcome=True)
    assert result.value.name == "Ed"
    assert llm.requests[0][1].json_schema is not None
    assert llm.requests[1][1].json_schema is None
    assert result.attempts[0].native is False


def test_options_reach_the_backend_and_bad_ones_fail_early() -> None:
    llm = Scripted(['{"name": "Fa", "age": 7}'])
    rl.generate(llm, "Fa is 7.", Person, max_tokens=33, temperature=0)
    assert llm.requests[0][1].max_tokens == 33
    with pytest.raises(rl.ConfigError, match="max_tokenz"):
        rl.generate(Scripted([]), "x", Person, max_tokenz=3)


def test_agenerate_runs_the_same_loop() -> None:
    llm = Scripted(['{"name": "Gu", "age": "x"}', '{"name": "Gu", "age": 8}'])
    result = asyncio.run(rl.agenerate(llm, "Gu is 8.", Person, outcome=True))
    assert result.value == Person(name="Gu", age=8)
    assert len(result.attempts) == 2


def test_repairing_passes_feedback_to_functions_that_take_it() -> None:
    seen: list[str | None] = []
    replies = iter(["{'name': 'Hal', 'age': 'old'}", "{'name': 'Hal', 'age': 70}"])

    @rl.repairing(Person, retries=2)
    def ask(prompt: str, feedback: str | None = None) -> str:
        seen.append(feedback)
        return next(replies)

    assert ask("Hal is 70.") == Person(name="Hal", age=70)
    assert seen[0] is None
    assert seen[1] is not None
    assert "/age" in seen[1]


def test_repairing_without_feedback_parameter_just_calls_again() -> None:
    replies = iter(["nothing", '{"name": "Io", "age": 2}'])

    @rl.repairing(Person)
    def ask() -> str:
        return next(replies)

    assert ask() == Person(name="Io", age=2)


def test_repairing_async_and_exhaustion() -> None:
    @rl.repairing(Person, retries=1)
    async def ask() -> str:
        return '{"name": 5}'

    with pytest.raises(rl.RetriesExhausted) as info:
        asyncio.run(ask())
    assert len(info.value.attempts) == 2


def test_repairing_refuses_non_text() -> None:
    @rl.repairing(Person)
    def ask() -> Any:
        return {"name": "x", "age": 1}

    with pytest.raises(rl.InvalidInput, match="not text"):
        ask()


def test_negative_retries_are_refused() -> None:
    with pytest.raises(rl.InvalidInput):
        rl.generate(Scripted([]), "x", Person, retries=-1)


class Chatty(Backend):
    """Streams a JSON value, then prose until the token limit; records what was read."""

    name = "chatty"

    def __init__(self, value: str, prose_chunks: int = 50) -> None:
        self.pieces = [value[i : i + 5] for i in range(0, len(value), 5)]
        self.pieces += [" and some more words"] * prose_chunks
        self.yielded = 0
        self.closed = False

    def _chat(self, messages: list[Message], options: ChatOptions) -> Completion:
        return Completion("".join(self.pieces), "length", Usage(10, len(self.pieces)))

    def _stream(self, messages: list[Message], options: ChatOptions) -> Iterator[Chunk]:
        try:
            for piece in self.pieces:
                self.yielded += 1
                yield Chunk(piece)
            yield Chunk("", "length", Usage(10, len(self.pieces)))
        finally:
            self.closed = True


def test_generation_stops_once_the_value_is_complete() -> None:
    value = '{"name": "Jo", "age": 40}'
    llm = Chatty(value)
    result = rl.generate(llm, "Jo is 40.", Person, outcome=True)
    assert result.value == Person(name="Jo", age=40)
    assert llm.closed
    assert llm.yielded == -(-len(value) // 5), "no prose chunk was read"
    assert result.attempts[0].finish_reason == "stop"
    assert result.attempts[0].raw == value
    assert result.attempts[0].usage.completion_tokens == llm.count_tokens(value)


def test_reading_to_the_end_when_asked_and_no_pointless_continuation() -> None:
    llm = Chatty('{"name": "Jo", "age": 40}', prose_chunks=3)
    result = rl.generate(llm, "Jo is 40.", Person, outcome=True, stop_at_value=False)
    attempt = result.attempts[0]
    assert attempt.finish_reason == "length"
    assert attempt.continuations == 0, "the value was complete: nothing to continue"
    assert attempt.raw.endswith("and some more words")


def test_a_reply_stuck_in_a_loop_is_not_continued() -> None:
    loop = '{"name": "Kim", "note": "' + "they asked for it again, " * 60
    llm = Scripted([(loop, "length"), '{"name": "Kim", "age": 50}'])
    result = rl.generate(llm, "Kim is 50.", Person, outcome=True)
    assert result.attempts[0].continuations == 0
    assert len(result.attempts) == 2, "the loop ended the attempt; feedback took over"
    assert result.value == Person(name="Kim", age=50)


def test_a_looping_stream_is_cut_short() -> None:
    looping = Chatty('{"name": "Lu", "note": "' + "again and " * 400)
    good = Scripted(['{"name": "Lu", "age": 1}'])

    class Both(Backend):
        name = "both"

        def __init__(self) -> None:
            self.calls = 0

        def _chat(self, messages: list[Message], options: ChatOptions) -> Completion:
            return good._chat(messages, options)

        def _stream(self, messages: list[Message], options: ChatOptions) -> Iterator[Chunk]:
            self.calls += 1
            if self.calls == 1:
                return looping._stream(messages, options)
            return super()._stream(messages, options)

    result = rl.generate(Both(), "Lu is 1.", Person, outcome=True)
    first = result.attempts[0]
    assert first.finish_reason == "loop"
    assert first.continuations == 0
    assert looping.closed
    assert looping.yielded < len(looping.pieces) // 3, "reading stopped soon after the loop began"
    assert result.value == Person(name="Lu", age=1)


def test_native_schema_leaves_patterns_to_validation() -> None:
    schema = {
        "type": "object",
        "properties": {"code": {"type": "string", "pattern": "^\\d{4}$"}},
        "required": ["code"],
    }
    llm = Scripted(['{"code": "12345"}', '{"code": "1234"}'], json_schema=True)
    assert rl.generate(llm, "code?", schema) == {"code": "1234"}
    sent = llm.requests[0][1].json_schema
    assert sent is not None
    assert "pattern" not in sent["properties"]["code"]
    assert "/code" in llm.requests[1][0][-1]["content"], "validation still caught the pattern"
