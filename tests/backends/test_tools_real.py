"""Tool-call mode against real parts: llama-cpp-python's server with SmolLM2, and the
loopback server speaking Ollama's wire format.

What llama-cpp-python 0.3.36's server does with tools, for SmolLM2's chat format (the
GGUF's own template, which the fixture uses): a ``tool_choice`` naming a function is
answered with a real ``tool_calls`` entry whose arguments are generated under a grammar
made from the function's ``parameters``; ``"auto"`` and ``"required"`` are not forced,
and the template shows the model no tools, so it answers in content; a choice naming
a function not offered is a 500 ("Tool choice ... not found in tools"), which is read
as a refusal.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from ollama_server import FakeOllama, Model, Reply
from pydantic import BaseModel

import repairllm as rl
from repairllm.backend import refuses_structured
from repairllm.bench.llamacpp_server import LlamaServer
from repairllm.errors import BackendStatusError, BadResponse, ConfigError
from repairllm.toolspec import forced, function_tool
from repairllm_backends.ollama import OllamaBackend


class Person(BaseModel):
    """A person named in the text."""

    name: str
    age: int


class Search(BaseModel):
    """Search the web."""

    query: str


PERSON_TOOL = function_tool("Person", rl.compile_schema(Person))
SEARCH_TOOL = function_tool("search", rl.compile_schema(Search))
ADA = "Ada Lovelace is 36 years old. Give her name and age."


# -- llama-cpp-python's server --------------------------------------------------------


@pytest.fixture
def llama(llama_server: LlamaServer) -> Iterator[rl.Backend]:
    with rl.connect("llamacpp", base_url=llama_server.base_url, timeout=120) as llm:
        yield llm


@pytest.mark.server
def test_llamacpp_answers_a_forced_function_with_a_tool_call(llama: rl.Backend) -> None:
    assert llama.supports_tools
    reply = llama.chat(
        ADA, tools=[PERSON_TOOL], tool_choice=forced("Person"), max_tokens=48, temperature=0
    )
    (call,) = reply.tool_calls
    assert call.name == "Person"
    assert call.id
    assert reply.text == ""
    assert reply.finish_reason == "tool_calls"
    # Generated under a grammar from the parameters: an object with both fields.
    arguments = json.loads(call.arguments)
    assert set(arguments) == {"name", "age"}
    assert isinstance(arguments["age"], int)


@pytest.mark.server
@pytest.mark.parametrize("choice", ["auto", "required"])
def test_llamacpp_does_not_call_an_unforced_tool(llama: rl.Backend, choice: str) -> None:
    reply = llama.chat(ADA, tools=[PERSON_TOOL], tool_choice=choice, max_tokens=24, temperature=0)
    assert reply.tool_calls == ()
    assert reply.text


@pytest.mark.server
def test_llamacpp_refuses_a_choice_of_a_function_not_offered(llama: rl.Backend) -> None:
    with pytest.raises(BackendStatusError) as info:
        llama.chat(ADA, tools=[PERSON_TOOL], tool_choice=forced("Nope"), max_tokens=8)
    assert info.value.status == 500
    assert "not found in tools" in str(info.value)
    assert refuses_structured(info.value), "a 500 about the tool choice is a refusal"


@pytest.mark.server
def test_llamacpp_generate_in_tools_mode_repairs_the_calls_arguments(llama: rl.Backend) -> None:
    result = rl.generate(
        llama, ADA, Person, mode="tools", outcome=True, max_tokens=48, temperature=0
    )
    first = result.attempts[0]
    assert first.tools
    assert not first.native
    assert json.loads(first.raw).keys() == {"name", "age"}, "raw is the call's arguments"
    assert isinstance(result.value, Person)
    assert "Ada" in result.value.name


@pytest.mark.server
def test_llamacpp_agenerate_in_tools_mode(llama: rl.Backend) -> None:
    result = asyncio.run(
        rl.agenerate(llama, ADA, Person, mode="tools", outcome=True, max_tokens=48, temperature=0)
    )
    assert result.attempts[0].tools
    assert isinstance(result.value, Person)


@pytest.mark.server
def test_llamacpp_call_tools_forcing_one_tool(llama: rl.Backend) -> None:
    uses = rl.call_tools(
        llama,
        "Find the opening hours of the Louvre.",
        {"get_person": Person, "search": Search},
        choice="search",
        max_tokens=48,
        temperature=0,
    )
    assert [u.name for u in uses] == ["search"]
    assert isinstance(uses[0].arguments, Search)


@pytest.mark.server
def test_llamacpp_stream_with_tools_is_refused_before_any_request(llama: rl.Backend) -> None:
    with pytest.raises(ConfigError, match="not from a stream"):
        list(llama.stream(ADA, tools=[PERSON_TOOL], tool_choice=forced("Person")))


# -- Ollama's wire format --------------------------------------------------------------

MODEL = "tiny:latest"
PLAIN = "plain:latest"  # a model whose template has no tools


@pytest.fixture
def fake() -> Iterator[FakeOllama]:
    server = FakeOllama([Model(MODEL), Model(PLAIN, tools=False)])
    with server:
        yield server
    assert server.errors == []


@pytest.fixture
def ollama(fake: FakeOllama) -> Iterator[OllamaBackend]:
    with OllamaBackend(MODEL, base_url=fake.url, timeout=10) as backend:
        yield backend


def test_ollama_sends_tools_and_reads_object_arguments_as_text(
    ollama: OllamaBackend, fake: FakeOllama
) -> None:
    fake.script(Reply(tool_calls=[{"name": "Person", "arguments": {"name": "Ann", "age": 31}}]))
    reply = ollama.chat(ADA, tools=[PERSON_TOOL])
    (body,) = fake.bodies()
    assert body["tools"] == [PERSON_TOOL]
    assert "tool_choice" not in body, "Ollama has no tool_choice"
    (call,) = reply.tool_calls
    assert call.name == "Person"
    assert json.loads(call.arguments) == {"name": "Ann", "age": 31}


def test_ollama_reads_string_arguments_as_they_are(ollama: OllamaBackend, fake: FakeOllama) -> None:
    fake.script(Reply(tool_calls=[{"name": "search", "arguments": "{query: 'x'"}]))
    (call,) = ollama.chat("x", tools=[SEARCH_TOOL]).tool_calls
    assert call.arguments == "{query: 'x'"


def test_ollama_a_forced_choice_sends_only_that_tool(
    ollama: OllamaBackend, fake: FakeOllama
) -> None:
    ollama.chat("x", tools=[PERSON_TOOL, SEARCH_TOOL], tool_choice=forced("search"))
    ollama.chat("x", tools=[PERSON_TOOL, SEARCH_TOOL], tool_choice="none")
    forced_body, none_body = fake.bodies()
    assert [t["function"]["name"] for t in forced_body["tools"]] == ["search"]
    assert "tools" not in none_body
    with pytest.raises(ConfigError, match="not among the tools"):
        ollama.chat("x", tools=[PERSON_TOOL], tool_choice=forced("search"))


def test_ollama_generate_in_tools_mode(ollama: OllamaBackend, fake: FakeOllama) -> None:
    fake.script(Reply(tool_calls=[{"name": "Person", "arguments": {"name": "Ann", "age": "31"}}]))
    result = rl.generate(ollama, ADA, Person, mode="tools", outcome=True)
    assert result.value == Person(name="Ann", age=31)
    assert result.attempts[0].tools
    assert "coerce" in " ".join(result.ledger.rules())
    (body,) = fake.bodies()
    assert body["stream"] is False, "tool calls are read from a whole reply"
    assert "format" not in body


def test_ollama_content_instead_of_a_call_is_repaired_with_a_note(
    ollama: OllamaBackend, fake: FakeOllama
) -> None:
    fake.script(Reply(text="Sure: {'name': 'Ann', 'age': 31}", tool_calls=[]))
    result = rl.generate(ollama, ADA, Person, mode="tools", outcome=True)
    assert result.value == Person(name="Ann", age=31)
    assert any("instead of calling Person" in n for n in result.attempts[0].notes)


def test_ollama_model_without_tools_falls_back_to_format(fake: FakeOllama) -> None:
    with OllamaBackend(PLAIN, base_url=fake.url, timeout=10) as plain:
        result = rl.generate(plain, ADA, Person, mode="tools", outcome=True)
        again = rl.generate(plain, ADA, Person, mode="tools", outcome=True)
    assert isinstance(result.value, Person)
    (attempt,) = result.attempts
    assert not attempt.tools
    assert attempt.native
    (note,) = [n for n in attempt.notes if "refused tool calls" in n]
    assert "does not support tools" in note
    refused, fallback, *_ = fake.bodies()
    assert "tools" in refused
    assert "tools" not in fallback
    assert fallback["format"]["properties"].keys() == {"name", "age"}
    # Each call finds out again: a refusal is remembered per call, not per driver.
    assert again.attempts[0].notes == attempt.notes


def test_ollama_call_tools_validates_each_call(ollama: OllamaBackend, fake: FakeOllama) -> None:
    fake.script(
        Reply(
            tool_calls=[
                {"name": "search", "arguments": {"query": "louvre"}},
                {"name": "get_person", "arguments": '{"name": "Ada", "age": "36",}'},
            ]
        )
    )
    uses = rl.call_tools(ollama, "...", {"get_person": Person, "search": Search})
    assert [(u.name, u.arguments) for u in uses] == [
        ("search", Search(query="louvre")),
        ("get_person", Person(name="Ada", age=36)),
    ]
    assert uses[1].ledger, "the trailing comma and the string age are in its ledger"


def test_ollama_call_tools_on_a_model_without_tools_reads_the_content(fake: FakeOllama) -> None:
    # The first request (with tools) gets the model's 400; the second, this content.
    fake.script(Reply(text='[{"name": "search", "arguments": {"query": "q"}}]'))
    with OllamaBackend(PLAIN, base_url=fake.url, timeout=10) as plain:
        result = rl.call_tools(plain, "q", {"search": Search}, outcome=True)
    assert result.value == [rl.ToolUse("search", Search(query="q"))]
    assert any("refused tool calls" in n for n in result.attempts[0].notes)


def test_ollama_acall_tools(ollama: OllamaBackend, fake: FakeOllama) -> None:
    fake.script(Reply(tool_calls=[{"name": "search", "arguments": {"query": "q"}}]))
    uses: Any = asyncio.run(rl.acall_tools(ollama, "q", {"search": Search}))
    assert uses == [rl.ToolUse("search", Search(query="q"))]


def test_ollama_stream_with_tools_is_refused(ollama: OllamaBackend) -> None:
    with pytest.raises(ConfigError, match="not from a stream"):
        list(ollama.stream("x", tools=[SEARCH_TOOL]))


# -- an OpenAI-compatible server that answers as told --------------------------------

Answer = Callable[[dict[str, Any]], tuple[int, dict[str, Any]]]


class _OpenAIHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = 5

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        self._send(404, {"error": {"message": "not here"}})

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)))
        if self.path != "/v1/chat/completions":
            self._send(404, {"error": {"message": "not here"}})
            return
        server: Any = self.server
        server.bodies.append(body)
        self._send(*server.answer(body))

    def _send(self, status: int, answer: dict[str, Any]) -> None:
        data = json.dumps(answer).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


def _message(message: dict[str, Any], finish: str = "stop") -> dict[str, Any]:
    return {
        "id": "c1",
        "object": "chat.completion",
        "created": 0,
        "model": "m",
        "choices": [{"index": 0, "message": message, "finish_reason": finish}],
        "usage": {"prompt_tokens": 5, "completion_tokens": 5, "total_tokens": 10},
    }


@pytest.fixture
def openai_server() -> Iterator[Callable[[Answer], tuple[rl.Backend, list[Any]]]]:
    servers: list[ThreadingHTTPServer] = []

    def start(answer: Answer) -> tuple[rl.Backend, list[Any]]:
        httpd: Any = ThreadingHTTPServer(("127.0.0.1", 0), _OpenAIHandler)
        httpd.answer, httpd.bodies = answer, []
        threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}).start()
        servers.append(httpd)
        url = f"http://127.0.0.1:{httpd.server_address[1]}/v1"
        llm = rl.connect("vllm", base_url=url, model="m", timeout=10)
        return llm, httpd.bodies

    yield start
    for httpd in servers:
        httpd.shutdown()
        httpd.server_close()


def test_openai_refused_tools_fall_back_to_json_schema(openai_server: Any) -> None:
    def answer(body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        if "tools" in body:
            return 400, {"error": {"message": "tools are not supported by this model"}}
        return 200, _message({"role": "assistant", "content": '{"name": "Ann", "age": 31}'})

    llm, bodies = openai_server(answer)
    with llm:
        result = rl.generate(llm, ADA, Person, mode="tools", outcome=True, stop_at_value=False)
    assert result.value == Person(name="Ann", age=31)
    (attempt,) = result.attempts
    assert not attempt.tools
    assert attempt.native
    assert any("refused tool calls" in n and "HTTP 400" in n for n in attempt.notes)
    refused, fallback = bodies
    assert refused["tool_choice"] == {"type": "function", "function": {"name": "Person"}}
    assert "tools" not in fallback
    assert fallback["response_format"]["type"] == "json_schema"


def test_openai_object_arguments_become_text_and_a_nameless_call_is_bad(
    openai_server: Any,
) -> None:
    calls = [
        [{"id": "t1", "type": "function", "function": {"name": "Person", "arguments": {"age": 3}}}],
        [{"id": "t2", "type": "function", "function": {"arguments": "{}"}}],
    ]

    def answer(body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        message = {"role": "assistant", "content": None, "tool_calls": calls.pop(0)}
        return 200, _message(message, "tool_calls")

    llm, _ = openai_server(answer)
    with llm:
        (call,) = llm.chat(ADA, tools=[PERSON_TOOL]).tool_calls
        assert (call.name, json.loads(call.arguments), call.id) == ("Person", {"age": 3}, "t1")
        with pytest.raises(BadResponse, match="without a function name"):
            llm.chat(ADA, tools=[PERSON_TOOL])
