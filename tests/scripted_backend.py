"""The scripted backend the structured-call tests share (test_retry, test_observe,
test_tools).

Each test file keeps what it measures its own (the usage it reports, a streaming
form, the model's name, the shape of a script's entries) and shares the part that
must behave alike: every request is recorded, each answers the script's next entry,
an exception entry is raised, and a request past the script's end fails the test.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from repairllm.backend import Backend, ChatOptions, Completion, Message, Usage


class Scripted(Backend):
    """Replies from a script; each entry is text, (text, finish_reason) or an exception."""

    name = "scripted"

    def __init__(self, script: Iterable[Any], *, json_schema: bool = False) -> None:
        self.script = list(script)
        self.requests: list[tuple[list[Message], ChatOptions]] = []
        self.supports_json_schema = json_schema
        self.model = "scripted"

    def _step(self, messages: list[Message], options: ChatOptions) -> Any:
        """Record the request and return the script's next entry (raised if an exception)."""
        self.requests.append((messages, options))
        if not self.script:
            raise AssertionError("the backend was asked more often than scripted")
        step = self.script.pop(0)
        if isinstance(step, BaseException):
            raise step
        return step

    def _usage(self, messages: list[Message], text: str) -> Usage:
        return Usage(self.count_tokens(messages), len(text) // 4)

    def _chat(self, messages: list[Message], options: ChatOptions) -> Completion:
        step = self._step(messages, options)
        text, finish = step if isinstance(step, tuple) else (step, "stop")
        return Completion(text, finish, self._usage(messages, text))
