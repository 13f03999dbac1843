"""Fixtures for driver tests: a real llama.cpp server, started once per session, and
the check that a secret shows nowhere in an error or a log."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

import pytest

from repairllm.bench.llamacpp_server import LlamaServer, serve
from repairllm.errors import ConfigError

# The session's server. 2,048 tokens of context is what the tests need; every
# test that uses it keeps max_tokens small so the file stays fast on two cores.
SERVER_N_CTX = 2048


@pytest.fixture(scope="session")
def llama_server() -> Iterator[LlamaServer]:
    """llama-cpp-python's OpenAI-compatible server with SmolLM2-135M-Instruct, on loopback.

    Skips the test when llama-cpp-python's server or the model is not installed.
    """
    try:
        with serve(n_ctx=SERVER_N_CTX) as server:
            yield server
    except ConfigError as exc:  # raised on entry only: the server was never started
        pytest.skip(f"no llama.cpp server: {exc}")


SecretCheck = Callable[..., list[BaseException]]


def _shown(value: object) -> list[str]:
    """What an attribute shows: its repr and, for a request or response it holds, the
    raw header values (httpx's repr hides authorization) and the body."""
    shown = [repr(value)]
    headers = getattr(value, "headers", None)
    if headers is not None and hasattr(headers, "items"):
        shown.append(repr(list(headers.items())))
    for body in ("content", "text", "body"):
        # A streamed response not read holds no body yet, and says so by raising.
        with contextlib.suppress(Exception):
            shown.append(repr(getattr(value, body, "")))
    return shown


def check_no_secret(secret: str, *errors: BaseException, logs: str = "") -> list[BaseException]:
    """Fail if ``secret`` is in any error's ``str``, ``repr``, args, notes or attributes
    (a held request's headers and a response's body included), in any
    ``__cause__``/``__context__`` below it, or in ``logs``.

    Returns:
        every exception in the chains, each error first.
    """
    seen: list[BaseException] = []
    todo = list(reversed(errors))
    while todo:
        exc = todo.pop()
        if any(exc is s for s in seen):
            continue
        seen.append(exc)
        where = f"{type(exc).__module__}.{type(exc).__qualname__} (link {len(seen)})"
        shown = {
            "str": [str(exc)],
            "repr": [repr(exc)],
            "args": [repr(a) for a in exc.args],
            "notes": [repr(getattr(exc, "__notes__", None))],
        }
        for name, value in vars(exc).items():
            shown[f".{name}"] = _shown(value)
        for part, texts in shown.items():
            for text in texts:
                assert secret not in text, f"the secret is in {part} of {where}: {text[:300]}"
        todo.extend(c for c in (exc.__context__, exc.__cause__) if c is not None)
    assert secret not in logs, "the secret is in the logs"
    return seen


@pytest.fixture
def no_secret() -> SecretCheck:
    """:func:`check_no_secret`, as a fixture: ``no_secret(KEY, error, logs=caplog.text)``."""
    return check_no_secret
