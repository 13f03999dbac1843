"""The LangChain adapter: a RepairingOutputParser in LCEL chains over LangChain's fake chat models.

The fake models stand in for a chat model replying with the broken JSON small models
write; the chain is the one users build (``prompt | llm | parser``), so the parser is
exercised through LangChain's own invoke, batch, stream and async paths.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from pydantic import BaseModel

pytest.importorskip(
    "langchain_core", reason="the langchain extra is not installed: pip install '.[langchain]'"
)

from langchain_core.exceptions import OutputParserException
from langchain_core.language_models.fake_chat_models import (
    FakeListChatModel,
    GenericFakeChatModel,
)
from langchain_core.messages import AIMessage
from langchain_core.output_parsers import PydanticOutputParser
from langchain_core.outputs import ChatGeneration
from langchain_core.prompts import ChatPromptTemplate

from repairllm import ConfigError, Outcome, RepairFailed, SchemaError
from repairllm.adapters.langchain import RepairingOutputParser


class Person(BaseModel):
    name: str
    age: int


ANN = Person(name="Ann", age=31)

# Replies LangChain's PydanticOutputParser fails on and repair turns into ANN.
BROKEN = {
    "single-quotes": "{'name': 'Ann', 'age': 31}",
    "trailing-comma": '{"name": "Ann", "age": 31,}',
    "key-case": '{"Name": "Ann", "AGE": 31}',
    "python-literals": "{'name': 'Ann', 'age': 31, 'extra': None}",
    "comment": '{"name": "Ann", // the name\n "age": 31}',
    "unquoted-keys": '{name: "Ann", age: 31}',
    "one-key-wrapper": '{"person": {"name": "Ann", "age": 31}}',
    "think-block": '<think>maybe {"x": 1}</think>{"name": "Ann", "age": 31}',
    "missing-comma": '{"name": "Ann" "age": 31}',
    "everything": "Sure!\n```json\n{'Name': 'Ann', 'Age': '31',}\n```\nHope it helps.",
}
# Replies both parsers read (fences, a number as a string): repair must not spoil them.
PLAIN = {
    "fenced": '```json\n{"name": "Ann", "age": 31}\n```',
    "string-for-int": '{"name": "Ann", "age": "31"}',
    "prose-around": 'Here it is: {"name": "Ann", "age": 31} Anything else?',
}
ALL = {**BROKEN, **PLAIN}


def _chain(parser: RepairingOutputParser[Any], llm: Any) -> Any:
    prompt = ChatPromptTemplate.from_messages(
        [("system", "{format_instructions}"), ("human", "{text}")]
    ).partial(format_instructions=parser.get_format_instructions())
    return prompt | llm | parser


@pytest.mark.parametrize("reply", list(ALL.values()), ids=list(ALL))
def test_a_chain_returns_the_repaired_value(reply: str) -> None:
    chain = _chain(RepairingOutputParser(Person), FakeListChatModel(responses=[reply]))
    assert chain.invoke({"text": "Ann is 31."}) == ANN


@pytest.mark.parametrize("reply", list(BROKEN.values()), ids=list(BROKEN))
def test_pydantic_output_parser_fails_where_repair_succeeds(reply: str) -> None:
    llm = FakeListChatModel(responses=[reply, reply])
    theirs = PydanticOutputParser(pydantic_object=Person)
    with pytest.raises(OutputParserException):
        (llm | theirs).invoke("Ann is 31.")
    assert (llm | RepairingOutputParser(Person)).invoke("Ann is 31.") == ANN


def test_the_model_sees_our_format_instructions() -> None:
    parser = RepairingOutputParser(Person)
    instructions = parser.get_format_instructions()
    assert '"name": <string>' in instructions
    assert '"age": <integer>' in instructions
    prompt = _chain(parser, FakeListChatModel(responses=["{}"])).first
    system = prompt.invoke({"text": "Ann is 31."}).to_messages()[0]
    assert system.content == instructions


def test_the_prompt_form_changes_the_instructions() -> None:
    keys = RepairingOutputParser(Person, prompt_form="keys").get_format_instructions()
    assert "- age (integer, required)" in keys
    schema = RepairingOutputParser(Person, prompt_form="schema").get_format_instructions()
    assert '"required"' in schema


def test_a_reply_repair_cannot_fix_raises_with_the_pointer() -> None:
    reply = '{"name": "Ann", "age": "old"}'
    chain = _chain(RepairingOutputParser(Person), FakeListChatModel(responses=[reply]))
    with pytest.raises(OutputParserException) as caught:
        chain.invoke({"text": "Ann is 31."})
    error = caught.value
    assert "/age" in str(error)
    assert error.llm_output == reply
    # The cause is ours, with what a program needs to act on it.
    assert isinstance(error.__cause__, RepairFailed)
    assert [issue.path for issue in error.__cause__.issues] == ["/age"]
    # The observation is the feedback a retry would send: the pointer and the shape.
    assert error.observation is not None
    assert "at /age" in error.observation
    assert '"age": <integer>' in error.observation


def test_a_reply_without_json_raises_saying_so() -> None:
    parser = RepairingOutputParser(Person)
    with pytest.raises(OutputParserException) as caught:
        parser.invoke(AIMessage(content="I cannot help with that."))
    assert "no JSON" in str(caught.value)
    assert caught.value.observation is not None
    assert "held no JSON" in caught.value.observation


def test_the_policy_is_obeyed() -> None:
    reply = '{"name": "Ann", "age": "31"}'
    assert RepairingOutputParser(Person).parse(reply) == ANN
    # strict coerces nothing: the string stays a string, against a JSON Schema that says no.
    schema = {
        "type": "object",
        "properties": {"name": {"type": "string"}, "age": {"type": "integer"}},
        "required": ["name", "age"],
    }
    with pytest.raises(OutputParserException, match="/age"):
        RepairingOutputParser(schema, policy="strict").parse(reply)
    assert RepairingOutputParser(schema).parse(reply) == {"name": "Ann", "age": 31}


def test_a_json_schema_and_no_schema_work_too() -> None:
    schema = {"type": "array", "items": {"type": "integer"}}
    llm = FakeListChatModel(responses=["```\n[1, '2', 3,]\n```"])
    assert (llm | RepairingOutputParser(schema)).invoke("numbers") == [1, 2, 3]
    llm = FakeListChatModel(responses=["Sure: {'a': True,}"])
    assert (llm | RepairingOutputParser()).invoke("anything") == {"a": True}


def test_the_outcome_carries_the_ledger() -> None:
    reply = BROKEN["everything"]
    parser = RepairingOutputParser(Person)
    outcome = parser.parse_with_outcome(reply)
    assert outcome.value == ANN
    assert {"single_quotes", "trailing_comma", "key_case", "coerce"} <= set(outcome.ledger.rules())
    chain = FakeListChatModel(responses=[reply]) | RepairingOutputParser(Person, outcome=True)
    result = chain.invoke("Ann is 31.")
    assert isinstance(result, Outcome)
    assert result.value == ANN
    assert result.ledger.rules() == outcome.ledger.rules()


def test_message_content_blocks_are_read() -> None:
    message = AIMessage(
        content=[
            {"type": "text", "text": "{'name': 'Ann', "},
            {"type": "text", "text": "'age': 31}"},
        ]
    )
    assert RepairingOutputParser(Person).invoke(message) == ANN


@pytest.mark.parametrize(
    "content",
    [[{"type": "text", "text": None}], [{"type": "text", "text": 5}]],
    ids=["text-none", "text-a-number"],
)
def test_content_that_is_not_text_is_no_reply_not_a_value(content: Any) -> None:
    # str() of the block's None would read as null, a valid value of an optional type.
    message = AIMessage(content=content)
    parser = RepairingOutputParser(int | None)
    with pytest.raises(OutputParserException, match="no JSON"):
        parser.parse_result([ChatGeneration(message=message)])
    with pytest.raises(OutputParserException, match="no JSON"):
        parser.invoke(message)


def test_batch_and_async_invoke() -> None:
    parser = RepairingOutputParser(Person)
    replies = [BROKEN["trailing-comma"], BROKEN["key-case"]]
    assert parser.batch(replies) == [ANN, ANN]
    llm = FakeListChatModel(responses=[BROKEN["single-quotes"]])
    assert asyncio.run(_chain(parser, llm).ainvoke({"text": "Ann is 31."})) == ANN


def test_streaming_yields_partials_then_the_validated_value() -> None:
    reply = "```json\n{'Name': 'Ann Lee', 'age': '31', 'city': 'Oslo',}\n```"
    llm = GenericFakeChatModel(messages=iter([AIMessage(content=reply)]))
    steps = list(_chain(RepairingOutputParser(Person), llm).stream({"text": "Ann is 31."}))
    assert len(steps) > 2  # the fake model streams word by word
    *partials, last = steps
    assert last == Person(name="Ann Lee", age=31)
    # Partials are the JSON so far, aligned to the schema (keys matched, "31" coerced),
    # each one a step further than the one before.
    assert all(isinstance(p, dict) for p in partials)
    assert partials[-1]["name"] == "Ann Lee"
    assert partials[-1]["age"] == 31
    assert len({repr(p) for p in partials}) == len(partials)


def test_async_streaming_matches_sync_streaming() -> None:
    reply = BROKEN["everything"]

    def chain() -> Any:
        return _chain(
            RepairingOutputParser(Person),
            GenericFakeChatModel(messages=iter([AIMessage(content=reply)])),
        )

    async def collect() -> list[Any]:
        return [step async for step in chain().astream({"text": "Ann is 31."})]

    assert asyncio.run(collect()) == list(chain().stream({"text": "Ann is 31."}))


def test_a_stream_that_ends_invalid_raises_the_parser_exception() -> None:
    reply = '{"name": "Ann", "age": "old"}'
    llm = GenericFakeChatModel(messages=iter([AIMessage(content=reply)]))
    with pytest.raises(OutputParserException, match="/age") as caught:
        list((llm | RepairingOutputParser(Person)).stream("Ann is 31."))
    assert caught.value.llm_output == reply


def test_partial_parse_result_never_raises() -> None:
    from langchain_core.outputs import Generation

    parser = RepairingOutputParser(Person)
    assert parser.parse_result([Generation(text='{"name": "An')], partial=True) is None
    assert parser.parse_result([Generation(text='{"NAME": "Ann", "age": 3')], partial=True) == {
        "name": "Ann"
    }
    assert parser.parse_result([Generation(text="no json yet")], partial=True) is None


def test_an_unusable_schema_fails_at_construction() -> None:
    with pytest.raises(SchemaError):
        RepairingOutputParser({"type": "no-such-type"})


@pytest.mark.parametrize("form", ["nope", None])
def test_an_unknown_prompt_form_fails_at_construction(form: Any) -> None:
    # A KeyError at get_format_instructions, or pydantic's ValidationError of the field.
    with pytest.raises(ConfigError, match="prompt_form"):
        RepairingOutputParser(Person, prompt_form=form)


def test_output_type_is_the_model() -> None:
    assert RepairingOutputParser(Person).OutputType is Person
    assert RepairingOutputParser(Person, outcome=True).OutputType is Outcome


def test_the_settings_cannot_change_behind_the_compiled_schema() -> None:
    from pydantic import ValidationError

    parser = RepairingOutputParser(Person)
    with pytest.raises(ValidationError, match="frozen"):
        parser.policy = "strict"
