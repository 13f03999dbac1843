"""Fixtures for driver tests: a real llama.cpp server, started once per session."""

from __future__ import annotations

from collections.abc import Iterator

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
