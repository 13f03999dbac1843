"""The pydantic-ai adapter: a repairing text output in real agents over FunctionModel and TestModel.

FunctionModel plays a small model: it answers each request from a script and records
what the agent sent it, so a test sees both the value the agent returns and the retry
prompt our feedback became.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from pydantic import BaseModel

pytest.importorskip(
    "pydantic_ai", reason="the pydantic-ai extra is not installed: pip install '.[pydantic-ai]'"
)

from pydantic_ai import Agent, ModelRetry, PromptedOutput
from pydantic_ai.exceptions import UnexpectedModelBehavior
from pydantic_ai.messages import ModelMessage, ModelRequest, ModelResponse, TextPart
from pydantic_ai.models.function import AgentInfo, FunctionModel
from pydantic_ai.models.test import TestModel

from repairllm import ConfigError, NoJSONFound, Outcome, RepairFailed, SchemaError
from repairllm.adapters.pydantic_ai import instructions, repaired, repairing_function


class Person(BaseModel):
    name: str
    age: int


ANN = Person(name="Ann", age=31)


class Script:
    """A FunctionModel function that answers from a list and records every request."""

    def __init__(self, *replies: str) -> None:
        self._replies: Iterator[str] = iter(replies)
        self.requests: list[list[ModelMessage]] = []
        self.infos: list[AgentInfo] = []

    def reply(self, messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
        self.requests.append(list(messages))
        self.infos.append(info)
        return ModelResponse(parts=[TextPart(next(self._replies))])

    def model(self) -> FunctionModel:
        return FunctionModel(self.reply)

    def last_prompt(self) -> str:
        """The text the agent sent in its latest request (a retry's feedback, after a retry)."""
        request = self.requests[-1][-1]
        assert isinstance(request, ModelRequest)
        return "\n".join(str(getattr(part, "content", "")) for part in request.parts)


def _run(agent: Agent[None, Any], prompt: str) -> Any:
    """``agent.run_sync`` without its thread-wide event loop, which is never closed
    (and so warns, an error here, when collected)."""
    return asyncio.run(agent.run(prompt))


def _agent(script: Script, **kwargs: Any) -> Agent[None, Any]:
    return Agent(
        script.model(), output_type=repaired(Person), instructions=instructions(Person), **kwargs
    )


@pytest.mark.parametrize(
    "reply",
    [
        "Sure! {'name': 'Ann', 'age': 31,}",
        '```json\n{"Name": "Ann", "AGE": "31"}\n```',
        '<think>what is asked?</think>{name: "Ann", age: 31}',
        '{"person": {"name": "Ann", "age": 31}}',
    ],
    ids=["quotes-and-comma", "fence-case-string", "think-unquoted", "wrapper"],
)
def test_a_repairable_reply_costs_no_second_call(reply: str) -> None:
    script = Script(reply)
    assert _run(_agent(script), "Ann is 31.").output == ANN
    assert len(script.requests) == 1


def test_prompted_output_needs_the_second_call_repair_saves() -> None:
    reply = "Sure! {'name': 'Ann', 'age': 31,}"
    theirs = Script(reply, reply)
    with pytest.raises(UnexpectedModelBehavior):
        _run(Agent(theirs.model(), output_type=PromptedOutput(Person), retries=1), "Ann")
    assert len(theirs.requests) == 2
    ours = Script(reply, reply)
    assert _run(_agent(ours, retries=1), "Ann").output == ANN
    assert len(ours.requests) == 1


def test_a_reply_repair_cannot_fix_is_retried_with_pointer_feedback() -> None:
    script = Script(
        "{'name': 'Ann', 'age': 'thirty-one'}",
        '```json\n{"name": "Ann", "age": "31"}\n```',
    )
    result = _run(_agent(script), "Ann is 31.")
    assert result.output == ANN
    assert len(script.requests) == 2
    feedback = script.last_prompt()
    # Ours: the issue by JSON pointer, with what was found, the reply as repaired so
    # far (quotes fixed), and the shape again.
    assert '- at /age: Input should be a valid integer (found "thirty-one")' in feedback
    assert '{"name":"Ann","age":"thirty-one"}' in feedback
    assert '"age": <integer>' in feedback


def test_a_reply_without_json_is_retried_saying_so() -> None:
    script = Script("Sorry, I do not know.", '{"name": "Ann", "age": 31}')
    assert _run(_agent(script), "Ann is 31.").output == ANN
    assert "Your reply held no JSON." in script.last_prompt()


def test_retries_run_out_as_the_agent_says() -> None:
    script = Script(*["no JSON here"] * 3)
    with pytest.raises(UnexpectedModelBehavior):
        _run(_agent(script, retries=2), "Ann is 31.")
    assert len(script.requests) == 3


def test_the_model_gets_our_instructions() -> None:
    script = Script('{"name": "Ann", "age": 31}')
    _run(_agent(script), "Ann is 31.")
    sent = script.infos[0].instructions or ""
    assert '"name": <string>' in sent
    assert '"age": <integer>' in sent
    assert instructions(Person, "keys") in instructions(Person, "keys")  # a str, any form
    assert "- age (integer, required)" in instructions(Person, "keys")


def test_test_model_text_and_the_outcome() -> None:
    model = TestModel(custom_output_text="{'NAME': 'Ann', 'age': '31',}")
    result = _run(Agent(model, output_type=repaired(Person, outcome=True)), "Ann is 31.")
    assert isinstance(result.output, Outcome)
    assert result.output.value == ANN
    assert {"single_quotes", "trailing_comma", "key_case", "coerce"} <= set(
        result.output.ledger.rules()
    )


def test_a_json_schema_and_a_type() -> None:
    numbers = Script("[1, '2', 3,]")
    agent = Agent(numbers.model(), output_type=repaired(list[int]))
    assert _run(agent, "numbers").output == [1, 2, 3]
    schema = {"type": "object", "properties": {"ok": {"type": "boolean"}}, "required": ["ok"]}
    flag = Script("{'ok': 'yes'}")
    assert _run(Agent(flag.model(), output_type=repaired(schema)), "ok?").output == {"ok": True}


def test_the_policy_is_obeyed() -> None:
    schema = {"type": "object", "properties": {"age": {"type": "integer"}}, "required": ["age"]}
    fn = repairing_function(schema, policy="strict")
    with pytest.raises(ModelRetry, match="/age"):
        fn('{"age": "31"}')
    assert repairing_function(schema)('{"age": "31"}') == {"age": 31}


def test_the_retry_is_chained_from_our_error() -> None:
    fn: Callable[[str], Person] = repairing_function(Person)
    with pytest.raises(ModelRetry) as caught:
        fn('{"name": "Ann", "age": "old"}')
    assert isinstance(caught.value.__cause__, RepairFailed)
    assert [issue.path for issue in caught.value.__cause__.issues] == ["/age"]
    with pytest.raises(ModelRetry) as caught:
        fn("nothing")
    assert isinstance(caught.value.__cause__, NoJSONFound)


def test_a_streamed_run_gives_the_repaired_value() -> None:
    model = TestModel(custom_output_text="Here: {'name': 'Ann', 'age': '31',} Done.")
    agent = Agent(model, output_type=repaired(Person))

    async def streamed() -> tuple[list[Any], Any]:
        async with agent.run_stream("Ann is 31.") as run:
            # stream_output applies the output function too: its last value is ours.
            steps = [step async for step in run.stream_output()]
            return steps, await run.get_output()

    steps, output = asyncio.run(streamed())
    assert output == ANN
    assert steps[-1] == ANN


def test_an_unusable_schema_fails_at_construction() -> None:
    with pytest.raises(SchemaError):
        repaired({"type": "no-such-type"})


@pytest.mark.parametrize("form", ["nope", None])
def test_an_unknown_prompt_form_fails_at_construction(form: Any) -> None:
    # It was a KeyError at the first reply that needed feedback, inside the agent's run.
    with pytest.raises(ConfigError, match="prompt_form"):
        repaired(Person, prompt_form=form)
    with pytest.raises(ConfigError, match="prompt_form"):
        instructions(Person, form)
