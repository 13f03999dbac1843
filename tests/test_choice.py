"""choose() and the reply reader behind it."""

from __future__ import annotations

from typing import Any

import pytest

import repairllm as rl
from repairllm.backend import Backend, ChatOptions, Completion, Message
from repairllm.choice import parse_choice

YES_NO = ["yes", "no"]
SENTIMENT = ["positive", "negative", "neutral"]


@pytest.mark.parametrize(
    ("reply", "options", "expected"),
    [
        ("B", YES_NO, 1),
        ("b)", YES_NO, 1),
        ("(B)", YES_NO, 1),
        ("Option B.", YES_NO, 1),
        ("option a", YES_NO, 0),
        ("Answer: b) no", YES_NO, 1),
        ("The answer is A", YES_NO, 0),
        ("b) yes", YES_NO, None),
        ("no", YES_NO, 1),
        ("No.", YES_NO, 1),
        ("  YES!  ", YES_NO, 0),
        ("I think the review is negative.", SENTIMENT, 1),
        ("positive or negative", SENTIMENT, None),
        ("C", SENTIMENT, 2),
        ("D", SENTIMENT, None),
        ('{"answer": "B"}', SENTIMENT, 1),
        ('"neutral"', SENTIMENT, 2),
        ("<think>A or B? B.</think>A", YES_NO, 0),
        ("I cannot decide.", YES_NO, None),
        ("", YES_NO, None),
        ("not sure", ["not sure", "sure"], 0),
        ("12", [f"o{i}" for i in range(30)], 11),
    ],
    ids=lambda v: repr(v)[:30] if isinstance(v, str) else None,
)
def test_parse_choice(reply: str, options: list[str], expected: int | None) -> None:
    assert parse_choice(reply, options) == expected


class Scripted(Backend):
    name = "scripted"

    def __init__(self, replies: list[str], native: bool = False) -> None:
        self.replies = replies
        self.requests: list[tuple[list[Message], ChatOptions]] = []
        self.supports_json_schema = native

    def _chat(self, messages: list[Message], options: ChatOptions) -> Completion:
        self.requests.append((messages, options))
        return Completion(self.replies.pop(0))


def test_choose_lists_labelled_options_and_returns_the_text() -> None:
    llm = Scripted(["Option B."])
    assert rl.choose(llm, "Is this review positive?", YES_NO) == "no"
    prompt = llm.requests[0][0][-1]["content"]
    assert "A) yes\nB) no" in prompt
    assert llm.requests[0][1].json_schema is None


def test_choose_reasks_once_on_an_unclear_reply() -> None:
    llm = Scripted(["Hmm, hard to say.", "A"])
    assert rl.choose(llm, "Positive?", YES_NO) == "yes"
    retry = llm.requests[1][0]
    assert retry[-2] == {"role": "assistant", "content": "Hmm, hard to say."}
    assert len(retry) == 3


def test_choose_gives_up_with_the_replies() -> None:
    llm = Scripted(["maybe", "perhaps"])
    with pytest.raises(rl.RetriesExhausted) as info:
        rl.choose(llm, "Positive?", YES_NO, retries=1)
    assert info.value.attempts == ["maybe", "perhaps"]


def test_choose_uses_native_mode_when_declared() -> None:
    llm = Scripted(['"B"'], native=True)
    assert rl.choose(llm, "Positive?", YES_NO) == "no"
    schema: Any = llm.requests[0][1].json_schema
    assert schema is not None
    assert schema["enum"][:2] == ["A", "B"]


@pytest.mark.parametrize("options", [[], ["only"], ["a", "A"]])
def test_choose_refuses_bad_options(options: list[str]) -> None:
    with pytest.raises(rl.InvalidInput):
        rl.choose(Scripted([]), "?", options)
