"""Tool-call mode and call_tools against a scripted backend: what is sent, what is read,
what is repaired, and how a refusal falls back."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import Any, Literal

import pytest
import scripted_backend
from pydantic import BaseModel, Field

import repairllm as rl
from repairllm.backend import ChatOptions, Completion, Message, ToolCall, Usage
from repairllm.errors import BackendStatusError, ConfigError, InvalidInput
from repairllm.toolspec import function_tool, read_call, takes_tools, tool_name, tool_options


class Person(BaseModel):
    """A person named in the text."""

    name: str
    age: int


class Weather(BaseModel):
    """Get the current weather in a city."""

    city: str
    unit: Literal["celsius", "fahrenheit"] = "celsius"
    country: str | None = Field(default=None, pattern="^[A-Z]{2}$")


class Search(BaseModel):
    """Search the web."""

    query: str


def call(name: str, arguments: str, id: str | None = None) -> ToolCall:
    return ToolCall(name, arguments, id)


class Scripted(scripted_backend.Scripted):
    """Replies from a script: text, a tuple of tool calls, (text, calls), or an exception."""

    def __init__(
        self,
        script: Iterable[Any],
        *,
        tools: bool = True,
        json_schema: bool = False,
        streams: bool = True,
    ) -> None:
        super().__init__(script, json_schema=json_schema)
        self.supports_tools = tools
        self.streamed = 0
        self.streams = streams

    def _chat(self, messages: list[Message], options: ChatOptions) -> Completion:
        step = self._step(messages, options)
        if isinstance(step, str):
            text, calls = step, ()
        elif isinstance(step, tuple) and step and isinstance(step[0], str):
            text, calls = step[0], tuple(step[1])
        else:
            text, calls = "", tuple(step)
        finish = "tool_calls" if calls else "stop"
        return Completion(text, finish, Usage(10, 5), tool_calls=calls)

    def _stream(self, messages: list[Message], options: ChatOptions) -> Any:
        self.streamed += 1
        return super()._stream(messages, options)


# -- the form ------------------------------------------------------------------------


def test_the_schema_becomes_one_forced_function_named_after_the_model() -> None:
    schema = rl.compile_schema(Weather)
    options = tool_options(schema)
    (tool,) = options["tools"]
    assert tool["type"] == "function"
    assert tool["function"]["name"] == "Weather"
    assert tool["function"]["description"] == "Get the current weather in a city."
    assert set(tool["function"]["parameters"]["properties"]) == {"city", "unit", "country"}
    # Patterns stay out of what servers compile into grammars; validation checks them.
    assert "pattern" not in str(tool["function"]["parameters"]["properties"]["country"])
    assert options["tool_choice"] == {"type": "function", "function": {"name": "Weather"}}


@pytest.mark.parametrize(
    ("title", "expected"),
    [("Weather Report!", "Weather_Report"), ("!!!", "respond"), (None, "respond")],
    ids=["spaces", "nothing-usable", "no-title"],
)
def test_tool_names_keep_to_the_characters_servers_accept(title: str | None, expected: str) -> None:
    root: dict[str, Any] = {"type": "object", "properties": {"a": {"type": "string"}}}
    if title is not None:
        root["title"] = title
    assert tool_name(rl.compile_schema(root)) == expected


@pytest.mark.parametrize(
    ("schema", "ok"),
    [(Person, True), (list[int], False), (int, False), ({"properties": {"a": {}}}, True)],
    ids=["model", "list", "scalar", "untyped-object"],
)
def test_only_object_schemas_can_be_arguments(schema: Any, ok: bool) -> None:
    assert takes_tools(rl.compile_schema(schema)) is ok


def test_read_call_prefers_the_named_call_and_notes_the_rest() -> None:
    reply = Completion("", tool_calls=(call("other", "{}"), call("Person", '{"a": 1}')))
    text, notes = read_call(reply, "Person")
    assert text == '{"a": 1}'
    assert any("2 tool calls" in n for n in notes)
    text, notes = read_call(Completion("", tool_calls=(call("other", "[1]"),)), "Person")
    assert text == "[1]"
    assert "'other' instead of 'Person'" in notes[0]


def test_function_tool_without_schema_takes_any_object() -> None:
    assert function_tool("f", None)["function"]["parameters"] == {"type": "object"}


# -- generate(mode="tools") ----------------------------------------------------------


def test_tool_arguments_broken_are_repaired_with_a_ledger() -> None:
    llm = Scripted([[call("Person", "{'name': 'Ann', age: '31',}", "call_1")]])
    result = rl.generate(llm, "Ann is 31.", Person, mode="tools", outcome=True)
    assert result.value == Person(name="Ann", age=31)
    (attempt,) = result.attempts
    assert attempt.tools
    assert not attempt.native
    assert attempt.raw == "{'name': 'Ann', age: '31',}"
    rules = set(result.ledger.rules())
    assert len(rules) >= 3, rules  # quotes, the unquoted key, the comma, the coerced age
    _, options = llm.requests[0]
    assert options.tool_choice == {"type": "function", "function": {"name": "Person"}}
    assert options.tools is not None
    assert options.tools[0]["function"]["name"] == "Person"
    assert options.json_schema is None, "tools mode does not also send the JSON mode"
    assert llm.streamed == 0, "tool calls are read from chat, not a stream"


def test_content_instead_of_a_tool_call_is_repaired_with_a_note() -> None:
    llm = Scripted(['Here you go: {"name": "Bo", "age": 7'])
    result = rl.generate(llm, "Bo is 7.", Person, mode="tools", outcome=True)
    assert result.value == Person(name="Bo", age=7)
    (attempt,) = result.attempts
    assert attempt.tools
    assert any("instead of calling Person" in n for n in attempt.notes), attempt.notes


def test_invalid_arguments_are_retried_with_feedback_by_pointer() -> None:
    llm = Scripted(
        [
            [call("Person", '{"name": "Ann", "age": "thirty-one"}')],
            [call("Person", '{"name": "Ann", "age": 31}')],
        ]
    )
    result = rl.generate(llm, "Ann is 31.", Person, mode="tools", outcome=True)
    assert [a.ok for a in result.attempts] == [False, True]
    retry_messages, retry_options = llm.requests[1]
    assert retry_options.tools, "the retry still asks for the tool call"
    assert retry_messages[-2]["content"] == '{"name": "Ann", "age": "thirty-one"}'
    assert "/age" in retry_messages[-1]["content"]


def test_a_refusal_falls_back_to_the_json_mode_and_is_recorded() -> None:
    refused = BackendStatusError("tools are not supported", "scripted", status=400)
    llm = Scripted([refused, '{"name": "Ann", "age": 31}'], json_schema=True)
    result = rl.generate(llm, "Ann is 31.", Person, mode="tools", outcome=True, retries=0)
    (attempt,) = result.attempts
    assert result.value.age == 31
    assert not attempt.tools
    assert attempt.native
    assert any("refused tool calls" in n and "JSON mode" in n for n in attempt.notes)
    first, second = (options for _, options in llm.requests)
    assert first.tools
    assert second.tools is None
    assert second.tool_choice is None
    assert second.json_schema is not None


def test_a_refusal_without_json_mode_falls_back_to_the_prompt() -> None:
    refused = BackendStatusError("HTTP 500: unknown field tool_choice", "scripted", status=500)
    llm = Scripted([refused, '{"name": "Ann", "age": 31}', '{"name": "Cy", "age": 2}'])
    first = rl.generate(llm, "Ann is 31.", Person, mode="tools", outcome=True)
    assert not first.attempts[0].tools
    assert not first.attempts[0].native
    assert any("the schema in the prompt only" in n for n in first.attempts[0].notes)
    assert llm.requests[1][1].tools is None
    assert llm.requests[1][1].json_schema is None


def test_then_a_refused_json_mode_falls_back_to_the_prompt_in_the_same_attempt() -> None:
    llm = Scripted(
        [
            BackendStatusError("no tools", "scripted", status=422),
            BackendStatusError("no json_schema", "scripted", status=400),
            '{"name": "Ann", "age": 31}',
        ],
        json_schema=True,
    )
    result = rl.generate(llm, "Ann is 31.", Person, mode="tools", outcome=True, retries=0)
    assert result.value.age == 31
    assert len(llm.requests) == 3
    assert len(result.attempts[0].notes) == 2


def test_a_server_error_that_is_not_about_tools_is_retried_as_transient() -> None:
    flaky = BackendStatusError("overloaded", "scripted", status=503)
    flaky.transient = True
    llm = Scripted([flaky, [call("Person", '{"name": "A", "age": 1}')]])
    result = rl.generate(llm, "A is 1.", Person, mode="tools", outcome=True, backoff=0)
    assert result.attempts[0].tools
    assert result.attempts[0].transient_errors == 1


def test_a_backend_without_tools_gets_its_json_mode_and_a_note() -> None:
    llm = Scripted(['{"name": "Ann", "age": 31}'], tools=False, json_schema=True)
    result = rl.generate(llm, "Ann is 31.", Person, mode="tools", outcome=True)
    (attempt,) = result.attempts
    assert not attempt.tools
    assert attempt.native
    assert "not known to take tool calls" in attempt.notes[0]
    assert llm.requests[0][1].tools is None


def test_a_list_schema_is_not_sent_as_a_function() -> None:
    llm = Scripted(["[1, 2, 3]"])
    result = rl.generate(llm, "Count to 3.", list[int], mode="tools", outcome=True)
    assert result.value == [1, 2, 3]
    assert "needs an object schema" in result.attempts[0].notes[0]
    assert llm.requests[0][1].tools is None


def test_agenerate_reads_tool_calls_too() -> None:
    llm = Scripted([[call("Person", '{"name": "Ann", "age": "31"}')]])
    value = asyncio.run(rl.agenerate(llm, "Ann is 31.", Person, mode="tools"))
    assert value == Person(name="Ann", age=31)


@pytest.mark.parametrize(
    ("mode", "native"), [("json", False), ("prompt", True), ("xml", None)], ids=str
)
def test_contradictory_or_unknown_modes_are_refused(mode: Any, native: bool | None) -> None:
    with pytest.raises(InvalidInput, match="mode"):
        rl.generate(Scripted([]), "x", Person, mode=mode, native=native)


def test_mode_prompt_sends_no_structured_form() -> None:
    llm = Scripted(['{"name": "Ann", "age": 31}'], json_schema=True)
    rl.generate(llm, "Ann is 31.", Person, mode="prompt")
    assert llm.requests[0][1].json_schema is None
    assert llm.requests[0][1].tools is None


def test_drivers_without_tools_refuse_the_option_by_name() -> None:
    with pytest.raises(ConfigError, match="tool calls"):
        Scripted([], tools=False).chat("hi", tools=[function_tool("f", None)])


# -- call_tools ----------------------------------------------------------------------

TOOLS = {"get_weather": Weather, "search": Search}


def test_several_calls_each_validated_against_its_own_schema() -> None:
    llm = Scripted(
        [
            [
                call("get_weather", '{"city": "Paris", "unit": "Celsius"}', "c1"),
                call("search", "{query: 'louvre hours'}", "c2"),
            ]
        ]
    )
    uses = rl.call_tools(llm, "Weather in Paris, and when is the Louvre open?", TOOLS)
    assert [u.name for u in uses] == ["get_weather", "search"]
    (name, weather), (_, search) = uses
    assert name == "get_weather"
    assert weather == Weather(city="Paris", unit="celsius")
    assert search == Search(query="louvre hours")
    assert uses[0].id == "c1"
    assert uses[1].ledger, "the unquoted key and single quotes are in the ledger"
    _, options = llm.requests[0]
    assert options.tool_choice == "required"
    assert [t["function"]["name"] for t in options.tools or []] == ["get_weather", "search"]


def test_an_unknown_tool_name_is_an_issue_sent_back_to_the_model() -> None:
    llm = Scripted(
        [
            [call("get_wether", '{"city": "Paris"}')],
            [call("get_weather", '{"city": "Paris"}')],
        ]
    )
    result = rl.call_tools(llm, "Weather in Paris?", TOOLS, outcome=True)
    first, _second = result.attempts
    assert first.issues[0].path == "/0/name"
    assert "'get_wether', which is not one of the tools offered" in first.issues[0].message
    assert "get_weather, search" in first.issues[0].message
    feedback = llm.requests[1][0][-1]["content"]
    assert "/0/name" in feedback
    assert result.value == [rl.ToolUse("get_weather", Weather(city="Paris"))]


def test_an_unknown_tool_name_on_every_attempt_raises_with_the_attempts() -> None:
    llm = Scripted([[call("nope", "{}")]] * 2)
    with pytest.raises(rl.RetriesExhausted, match="not one of the tools offered") as info:
        rl.call_tools(llm, "Weather?", TOOLS, retries=1)
    assert len(info.value.attempts) == 2


def test_bad_arguments_point_into_the_call_that_has_them() -> None:
    llm = Scripted(
        [
            [call("search", '{"query": "x"}'), call("get_weather", '{"town": 3, "unit": "K"}')],
            [call("search", '{"query": "x"}'), call("get_weather", '{"city": "Oslo"}')],
        ]
    )
    result = rl.call_tools(llm, "...", TOOLS, outcome=True)
    paths = {i.path for i in result.attempts[0].issues}
    assert any(p.startswith("/1/arguments") for p in paths), paths
    assert not any(p.startswith("/0/") for p in paths)
    assert [u.name for u in result.value] == ["search", "get_weather"]


def test_calls_written_in_content_are_read_and_noted() -> None:
    text = (
        'I\'ll call both.\n```json\n[{"name": "get_weather", "arguments": '
        "{\"city\": \"Rome\"}}, {'name': 'search', 'parameters': {'query': 'pizza'}}]\n```"
    )
    llm = Scripted([text], tools=False)
    result = rl.call_tools(llm, "Rome weather and pizza", TOOLS, outcome=True)
    assert [(u.name, u.arguments) for u in result.value] == [
        ("get_weather", Weather(city="Rome")),
        ("search", Search(query="pizza")),
    ]
    attempt = result.attempts[0]
    assert any("in its content" in n for n in attempt.notes)
    assert any("not known to take tool calls" in n for n in attempt.notes)
    assert attempt.ledger, "the content's own repairs (single quotes) are the attempt's ledger"
    system = llm.requests[0][0][0]["content"]
    assert "- get_weather: Get the current weather in a city." in system
    assert '"city": <string>' in system


@pytest.mark.parametrize(
    "text",
    [
        '{"tool_calls": [{"function": {"name": "search", "arguments": "{\\"query\\": \\"q\\"}"}}]}',
        '<tool_call>{"name": "search", "arguments": {"query": "q"}}</tool_call>',
        '{"search": {"query": "q"}}',
    ],
    ids=["openai-shape", "hermes-tags", "name-as-key"],
)
def test_content_shapes_models_use_for_calls(text: str) -> None:
    uses = rl.call_tools(Scripted([text]), "q", TOOLS)
    assert uses == [rl.ToolUse("search", Search(query="q"))]


def test_one_tool_required_is_forced_by_name_and_a_bare_object_is_its_arguments() -> None:
    llm = Scripted(['{"city": "Lima"}'])
    uses = rl.call_tools(llm, "Lima?", {"get_weather": Weather})
    assert uses == [rl.ToolUse("get_weather", Weather(city="Lima"))]
    assert llm.requests[0][1].tool_choice == {
        "type": "function",
        "function": {"name": "get_weather"},
    }


def test_auto_may_call_nothing_but_required_may_not() -> None:
    assert rl.call_tools(Scripted(["No tool is needed."]), "hi", TOOLS, choice="auto") == []
    with pytest.raises(rl.RetriesExhausted, match="called no tool"):
        rl.call_tools(Scripted(["No tool is needed."]), "hi", TOOLS, retries=0)


def test_a_choice_naming_a_tool_forces_it_and_an_unknown_one_is_refused() -> None:
    llm = Scripted([[call("search", '{"query": "q"}')]])
    rl.call_tools(llm, "q", TOOLS, choice="search")
    assert llm.requests[0][1].tool_choice == {"type": "function", "function": {"name": "search"}}
    with pytest.raises(InvalidInput, match="choice"):
        rl.call_tools(llm, "q", TOOLS, choice="lookup")


def test_call_tools_refused_falls_back_to_the_listing_and_content() -> None:
    refused = BackendStatusError("does not support tools", "scripted", status=400)
    llm = Scripted([refused, '[{"name": "search", "arguments": {"query": "q"}}]'])
    result = rl.call_tools(llm, "q", TOOLS, outcome=True)
    assert result.value == [rl.ToolUse("search", Search(query="q"))]
    attempt = result.attempts[0]
    assert not attempt.tools
    assert any("refused tool calls" in n for n in attempt.notes)
    assert llm.requests[1][1].tools is None


@pytest.mark.parametrize(
    "tools",
    [
        {},
        {"count": list[int]},
        {"either": {"anyOf": [{"type": "object"}, {"type": "string"}]}},
        [Search],
        "search",
        {"get weather": Weather},
        {"a" * 65: Weather},
        {"": Weather},
        {1: Weather},
    ],
    ids=[
        "none",
        "not-an-object",
        "a-union",
        "a-list",
        "a-string",
        "name-with-a-space",
        "name-too-long",
        "empty-name",
        "name-not-a-string",
    ],
)
def test_tools_that_cannot_be_offered_are_refused(tools: Any) -> None:
    with pytest.raises(InvalidInput):
        rl.call_tools(Scripted([]), "q", tools)


@pytest.mark.parametrize("choice", [["search"], {"type": "function"}, None, 3])
def test_a_choice_that_is_not_a_name_is_refused(choice: Any) -> None:
    with pytest.raises(InvalidInput, match="choice"):
        rl.call_tools(Scripted([]), "q", TOOLS, choice=choice)


def test_acall_tools_reads_the_same_calls() -> None:
    llm = Scripted([[call("search", '{"query": "q"}')]])
    uses = asyncio.run(rl.acall_tools(llm, "q", TOOLS))
    assert uses == [rl.ToolUse("search", Search(query="q"))]


class Returns(rl.Backend):
    """A driver that returns whatever it is given, as a broken third-party one might."""

    name = "returns"
    supports_tools = True

    def __init__(self, reply: Any) -> None:
        self.reply = reply
        self.model = "returns"

    def _chat(self, messages: list[Message], options: ChatOptions) -> Any:
        return self.reply


@pytest.mark.parametrize(
    ("reply", "field"),
    [
        (None, "Completion was due"),
        ('{"query": "q"}', "Completion was due"),
        (Completion(None), "text"),  # type: ignore[arg-type]
        (Completion(b'{"query": "q"}'), "text"),  # type: ignore[arg-type]
        (Completion("", usage=None), "usage"),  # type: ignore[arg-type]
        (Completion("", finish_reason=3), "finish_reason"),  # type: ignore[arg-type]
        (Completion("", tool_calls=None), "tool_calls"),  # type: ignore[arg-type]
        (Completion("", tool_calls="search"), "tool_calls"),  # type: ignore[arg-type]
        (Completion("", tool_calls=({"name": "search", "arguments": "{}"},)), "not a ToolCall"),  # type: ignore[arg-type]
        (Completion("", tool_calls=(ToolCall(None, "{}"),)), "name"),  # type: ignore[arg-type]
        (Completion("", tool_calls=(ToolCall("search", {"query": "q"}),)), "arguments"),  # type: ignore[arg-type]
        (Completion("", tool_calls=(ToolCall("search", b'{"query": "q"}'),)), "arguments"),  # type: ignore[arg-type]
        (Completion("", tool_calls=(ToolCall("search", None),)), "arguments"),  # type: ignore[arg-type]
        (Completion("", tool_calls=(ToolCall("search", '{"query": "q"}', 7),)), "id"),  # type: ignore[arg-type]
    ],
    ids=[
        "none",
        "a-string",
        "text-none",
        "text-bytes",
        "usage-none",
        "finish-int",
        "calls-none",
        "calls-a-string",
        "call-a-dict",
        "name-none",
        "arguments-a-dict",
        "arguments-bytes",
        "arguments-none",
        "id-an-int",
    ],
)
def test_a_driver_reply_outside_the_contract_is_a_bad_response(reply: Any, field: str) -> None:
    with pytest.raises(rl.BadResponse, match=field):
        rl.call_tools(Returns(reply), "q", TOOLS, retries=0)
    with pytest.raises(rl.BadResponse, match=field):
        rl.generate(Returns(reply), "q", Search, mode="tools", retries=0)
    with pytest.raises(rl.BadResponse, match=field):
        asyncio.run(rl.acall_tools(Returns(reply), "q", TOOLS, retries=0))


def test_a_list_of_tool_calls_from_a_driver_is_read_as_the_tuple() -> None:
    reply = Completion("", tool_calls=[call("search", '{"query": "q"}')])  # type: ignore[arg-type]
    assert rl.call_tools(Returns(reply), "q", TOOLS) == [rl.ToolUse("search", Search(query="q"))]


def test_a_lone_surrogate_in_the_arguments_is_fed_back_not_a_type_error() -> None:
    # The model wrote "\ud800": a str Python holds but orjson will not encode.
    broken = '{"query": "\\ud800", "extra": [1}'
    llm = Scripted([[call("search", broken)], [call("search", '{"query": "q"}')]])
    assert rl.call_tools(llm, "q", TOOLS, retries=1) == [rl.ToolUse("search", Search(query="q"))]
    llm = Scripted([f'[{{"name": "search", "arguments": {broken}}}]', "[]"])
    with pytest.raises(rl.RetriesExhausted):
        rl.call_tools(llm, "q", TOOLS, retries=1)
    assert "\\ud800" in llm.requests[1][0][-1]["content"]


def test_an_integer_past_64_bits_in_calls_written_in_content_is_read() -> None:
    class Count(BaseModel):
        n: int

    big = 123456789012345678901234567890
    llm = Scripted([f'[{{"name": "count", "arguments": {{"n": {big}}}}}]'])
    assert rl.call_tools(llm, "q", {"count": Count}) == [rl.ToolUse("count", Count(n=big))]


class AsyncReturns(Returns):
    """A driver with its own achat, as the HTTP drivers have, that returns anything."""

    async def achat(self, messages: Any, **options: Any) -> Any:
        return self.reply


def test_a_reply_outside_the_contract_from_a_drivers_own_achat_is_a_bad_response() -> None:
    reply = Completion("", tool_calls=(ToolCall("search", {"query": "q"}),))  # type: ignore[arg-type]
    with pytest.raises(rl.BadResponse, match="arguments"):
        asyncio.run(rl.acall_tools(AsyncReturns(reply), "q", TOOLS, retries=0))
    with pytest.raises(rl.BadResponse, match="Completion was due"):
        asyncio.run(rl.agenerate(AsyncReturns(None), "q", Search, mode="tools", retries=0))
