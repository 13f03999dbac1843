"""Pick one of a few options with a model, robust to how small models answer.

Options are shown with labels (``A) yes``, ``B) no``; numbers past 26 options) and the
reply is read by :func:`parse_choice`, which accepts "B", "b)", "(B)", "Option B.",
"Answer: b) no", "no", "I think the answer is no." or ``{"answer": "B"}``, and refuses
a reply that names two different options.
"""

from __future__ import annotations

import string
from collections.abc import Sequence
from typing import Any

import orjson
import regex

from . import observe
from .attempt import Attempt
from .backend import Backend, Message, Messages, as_messages
from .errors import InvalidInput, RetriesExhausted
from .extract import split_think
from .ledger import Issue, Ledger
from .observe import Hooks
from .outcome import Outcome

__all__ = ["choose", "parse_choice"]

_LABEL = regex.compile(
    r"""^\W*(?:(?:the\s+)?(?:final\s+)?(?:answer|option|choice|label)\s*(?:is\s*)?[:\-]?\s*)?
        [\(\[]?(?P<label>[A-Za-z]|\d{1,3})(?:[\)\]\.:,]|\s|$)""",
    regex.VERBOSE | regex.IGNORECASE,
)
_WORD_EDGE = r"(?<![\p{L}\p{N}])"
_WORD_END = r"(?![\p{L}\p{N}])"


def _labels(n: int) -> list[str]:
    return list(string.ascii_uppercase[:n]) if n <= 26 else [str(i + 1) for i in range(n)]


def _norm(text: str) -> str:
    return " ".join(regex.sub(r"[^\p{L}\p{N}]+", " ", text.casefold()).split())


def parse_choice(reply: str, options: Sequence[str]) -> int | None:
    """The index of the option a reply picks, or ``None`` when it picks none or several.

    Args:
        reply: the model's text.
        options: the options as shown to the model (labelled A, B, ... in order).
    """
    labels = _labels(len(options))
    text = split_think(reply)[0]
    text = text.strip().strip("`").strip()
    if text.startswith(("{", '"')):
        try:
            data = orjson.loads(text)
        except orjson.JSONDecodeError:
            data = None
        if isinstance(data, dict) and len(data) == 1:
            data = next(iter(data.values()))
        if isinstance(data, str) and data != text:
            return parse_choice(data, options)
    normed = [_norm(o) for o in options]
    whole = _norm(text)
    # 1. The reply is exactly one option's text.
    if whole in normed and normed.count(whole) == 1:
        return normed.index(whole)
    # 2. A label at the start: "B", "b)", "(B) no", "Option B.", "Answer: b".
    match = _LABEL.match(text)
    if match:
        label = match.group("label").upper()
        if label in labels:
            index = labels.index(label)
            rest = _norm(text[match.end() :])
            # "A) no" where A is "yes": the label and the text disagree; trust neither.
            named = _named(rest, normed)
            if named is None or named == index:
                return index
            return None
    # 3. Exactly one option's text appears as whole words.
    return _named(whole, normed)


def _named(text: str, normed: list[str]) -> int | None:
    if not text:
        return None
    found = {
        i
        for i, option in enumerate(normed)
        if option and regex.search(_WORD_EDGE + regex.escape(option) + _WORD_END, text)
    }
    # An option inside a longer one that is also named ("no" in "not sure") does not count.
    found = {i for i in found if not any(j != i and normed[i] in normed[j] for j in found)}
    return found.pop() if len(found) == 1 else None


def _question(prompt: Messages, options: Sequence[str]) -> list[Message]:
    labels = _labels(len(options))
    listing = "\n".join(f"{label}) {option}" for label, option in zip(labels, options, strict=True))
    messages = as_messages(prompt)
    last = dict(messages[-1])
    last["content"] = (
        f"{last.get('content') or ''}\n\nOptions:\n{listing}\n"
        f"Answer with the letter of one option ({', '.join(labels)}) and nothing else."
    )
    return [*messages[:-1], last]


def choose(
    backend: Backend,
    prompt: Messages,
    options: Sequence[str],
    *,
    retries: int = 1,
    native: bool | None = None,
    hooks: Hooks | None = None,
    **chat_options: Any,
) -> str:
    """Ask the model to pick one of ``options`` and return the option picked.

    Args:
        backend: a driver.
        prompt: the question (a string or messages).
        options: two or more distinct options.
        retries: re-asks when the reply picks none or several options.
        native: constrain the reply to the labels with the server's JSON Schema mode
            where the backend declares one (``None``), or not.
        hooks: callbacks on each request and attempt (see :class:`repairllm.observe.Hooks`).
        **chat_options: ``temperature``, ``max_tokens`` ...

    Raises:
        InvalidInput: fewer than two options, or duplicates.
        RetriesExhausted: no reply named exactly one option; ``.attempts`` holds the replies.
    """
    options = [str(o) for o in options]
    if len(options) < 2 or len({_norm(o) for o in options}) != len(options):
        raise InvalidInput(f"choose() needs two or more distinct options, got {options!r}")
    labels = _labels(len(options))
    question = _question(prompt, options)
    messages = question
    extra: dict[str, Any] = {"max_tokens": 16}
    if backend.supports_json_schema and native is not False:
        extra["json_schema"] = {"type": "string", "enum": labels + options}
    extra.update(chat_options)
    replies: list[str] = []
    with observe.call("choose", backend, hooks) as obs:
        for _ in range(retries + 1):
            attempt, completion = obs.chat(backend.chat, messages, extra)
            reply = completion.text
            replies.append(reply)
            index = parse_choice(reply, options)
            _judge(attempt, options, index)
            if index is not None:
                return options[index]
            # The failed reply replaces the previous one: the context stays bounded.
            messages = [
                *question,
                {"role": "assistant", "content": reply},
                {"role": "user", "content": f"Answer with one letter only: {', '.join(labels)}."},
            ]
        raise RetriesExhausted(
            replies,
            message=(
                f"no reply picked exactly one of {len(options)} options after {len(replies)} "
                f"attempt(s); last reply: {replies[-1][:80]!r}"
            ),
        )


def _judge(attempt: Attempt, options: Sequence[str], index: int | None) -> None:
    """Record what a reply picked on its attempt, for logs, spans and hooks."""
    if index is None:
        attempt.issues = [Issue("", f"the reply picked none or several of {len(options)} options")]
    else:
        attempt.outcome = Outcome(options[index], Ledger(), None, [], attempt.raw, options[index])
