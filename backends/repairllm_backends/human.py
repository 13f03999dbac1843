"""The human driver: a person types the model's reply.

For debugging an agent or a prompt without a model: the driver shows the new part
of the conversation (and the JSON Schema the reply should follow) on a text stream,
standard error by default, and reads the reply from another, standard input by
default, up to a line holding only the terminator (``.``) or the end of the input.
The library itself never prints; this driver writes only to the stream it is given,
because talking to a person is its whole job.

Example:
    >>> llm = HumanBackend()  # doctest: +SKIP
    >>> llm.chat("Give me a JSON object with a name.").text  # doctest: +SKIP
    '{"name": "Ada"}'
"""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping
from typing import Any, ClassVar, TextIO

from repairllm.backend import Backend, ChatOptions, Completion, Message, Usage
from repairllm.errors import BackendUnreachable

__all__ = ["HumanBackend"]

_RULE = "-" * 60


class HumanBackend(Backend):
    """A person at a terminal (or whatever writes to the input stream) is the model.

    Args:
        model: a name for the records; ``"human"`` by default.
        input: where the reply is read from; ``sys.stdin`` (as it is at call time)
            when not given.
        output: where the conversation is shown; ``sys.stderr`` (at call time) when
            not given, so that standard output stays the program's own.
        terminator: the line that ends a reply; ``None`` to read to the end of input.
        context_length: a context window to check prompts against, if wanted.
        defaults: option values for calls that do not give them.
        timeout: accepted so that a shared config can name it; a person is not timed.
    """

    name: ClassVar[str] = "human"
    # A person can follow a schema, but nothing enforces it: repair stays in charge.
    supports_json_schema: bool = False
    supports_json_mode: bool = False
    supports_streaming: ClassVar[bool] = False

    def __init__(
        self,
        model: str = "human",
        *,
        input: TextIO | None = None,
        output: TextIO | None = None,
        terminator: str | None = ".",
        context_length: int | None = None,
        defaults: Mapping[str, Any] | None = None,
        timeout: float | None = None,
    ) -> None:
        self.model = model or "human"
        self.input = input
        self.output = output
        self.terminator = terminator
        self.context_length = context_length
        self.defaults = dict(defaults or {})
        del timeout

    def _chat(self, messages: list[Message], options: ChatOptions) -> Completion:
        source = self.input if self.input is not None else sys.stdin
        sink = self.output if self.output is not None else sys.stderr
        try:
            sink.write(self._render(messages, options))
            sink.flush()
            lines: list[str] = []
            ended = False
            while True:
                line = source.readline()
                if not line:
                    break
                if self.terminator is not None and line.rstrip("\r\n") == self.terminator:
                    ended = True
                    break
                lines.append(line)
        except (OSError, ValueError) as exc:
            # ValueError is what Python raises for I/O on a closed file.
            raise self._gone(f"the conversation streams failed: {exc}") from exc
        if not lines and not ended:
            # The input is closed: there is nobody to answer, as when a server is gone.
            # Reading a closed stream again gives the same end of input, so no retry
            # can help: unlike a server that went away, this one is not transient.
            raise self._gone(
                "the input ended before any reply was typed; run interactively, or pipe "
                f"the reply in and end it with a line holding only {self.terminator!r}"
            )
        text = "".join(lines)
        if text.endswith("\n"):
            text = text[:-1].removesuffix("\r")
        return Completion(
            text=text,
            finish_reason="stop",
            usage=Usage(self.count_tokens(messages), self.count_tokens(text)),
        )

    def _gone(self, message: str) -> BackendUnreachable:
        error = BackendUnreachable(message, self.name)
        error.transient = False
        return error

    def _render(self, messages: list[Message], options: ChatOptions) -> str:
        """The messages since the model last spoke, and what the reply should look like."""
        last_reply = max(
            (i for i, m in enumerate(messages) if m.get("role") == "assistant"), default=-1
        )
        shown = messages[last_reply + 1 :] or messages[-1:]
        # The system message frames every turn, so it is shown even when old.
        system = [m for m in messages[: len(messages) - len(shown)] if m.get("role") == "system"]
        hidden = len(messages) - len(shown) - len(system)
        out = [_RULE, f"repairllm asks {self.model} for a reply"]
        if hidden:
            out.append(f"({hidden} earlier message{'s' if hidden != 1 else ''} not shown)")
        for message in system + shown:
            out.append(f"[{message.get('role')}]")
            out.append(_text(message.get("content")))
        if options.json_schema is not None:
            out.append("[reply with JSON following this schema]")
            out.append(json.dumps(options.json_schema, indent=2, ensure_ascii=False))
        elif options.json_mode:
            out.append("[reply with a JSON object]")
        if self.terminator is not None:
            out.append(f"[type the reply; end it with a line holding only {self.terminator!r}]")
        else:
            out.append("[type the reply; end it with end of input (Ctrl-D)]")
        return "\n".join(out) + "\n"


def _text(content: Any) -> str:
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    parts = [
        str(p.get("text", "")) if isinstance(p, Mapping) and p.get("type") == "text" else f"<{p}>"
        for p in content
    ]
    return "\n".join(parts)
