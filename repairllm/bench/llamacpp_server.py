"""Start llama-cpp-python's OpenAI-compatible server for tests and benchmarks.

``serve()`` runs ``python -m llama_cpp.server`` on a free loopback port in a child
process, waits until it answers ``/v1/models``, and stops it on exit::

    with serve(n_ctx=2048) as server:
        llm = connect("llamacpp", base_url=server.base_url)

The server is a separate process on purpose: it is exactly what users run, the
driver talks to it over real HTTP, and a test can kill it to see what a dying
server looks like from the client's side.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from ..errors import BackendUnreachable, ConfigError

__all__ = ["LlamaServer", "serve"]

_INSTALL_HINT = "pip install 'llama-cpp-python[server]'"
# The server's own modules; checked without importing them, since importing
# llama_cpp loads the native library into this process for nothing.
_NEEDED = ("llama_cpp", "uvicorn", "fastapi", "sse_starlette", "starlette_context")


@dataclass
class LlamaServer:
    """A running server started by :func:`serve`.

    Attributes:
        base_url: the OpenAI-compatible root, ``http://127.0.0.1:<port>/v1``.
        port: the loopback port it listens on.
        process: the server's process (tests kill it to simulate a crash).
        model_path: the GGUF it serves.
        log_path: the file holding the server's stdout and stderr.
    """

    base_url: str
    port: int
    process: subprocess.Popen[bytes]
    model_path: Path
    log_path: Path

    def log_tail(self, limit: int = 2000) -> str:
        """The last ``limit`` characters of the server's output, for error messages."""
        try:
            text = self.log_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""
        return text[-limit:]

    def stop(self, grace: float = 5.0) -> None:
        """Stop the server: terminate, then kill if it is still there after ``grace`` seconds."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(grace)
            except subprocess.TimeoutExpired:
                self.process.kill()
        # Reap it either way, so no zombie or ResourceWarning is left behind.
        self.process.wait()


def _free_port() -> int:
    # Another process could take the port between this close and the server's
    # bind; on a test machine that race is rare enough, and the failure is loud.
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _check_installed() -> None:
    missing = [name for name in _NEEDED if importlib.util.find_spec(name) is None]
    if missing:
        raise ConfigError(
            f"starting a llama.cpp server needs {', '.join(missing)}, which "
            f"{'is' if len(missing) == 1 else 'are'} not installed: {_INSTALL_HINT}"
        )


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        return False


@contextlib.contextmanager
def serve(
    model_path: str | Path | None = None,
    *,
    n_ctx: int = 2048,
    port: int | None = None,
    n_threads: int | None = None,
    startup_timeout: float = 120,
) -> Iterator[LlamaServer]:
    """Run llama-cpp-python's server on loopback for the duration of a ``with`` block.

    Args:
        model_path: the GGUF to serve; by default the packaged SmolLM2-135M-Instruct
            (:func:`repairllm.default_model.default_gguf`).
        n_ctx: the context length the server allocates.
        port: the port to listen on; a free one by default.
        n_threads: generation threads; the server's default (half the cores) if ``None``.
        startup_timeout: seconds to wait for the server to answer ``/v1/models``.

    Yields:
        the running :class:`LlamaServer`.

    Raises:
        ConfigError: when llama-cpp-python's server or the default model is not installed.
        BackendUnreachable: when the server exits or does not answer in time; the
            message ends with the tail of its output.
    """
    _check_installed()
    if model_path is None:
        from repairllm.default_model import default_gguf

        model_path = default_gguf()
    path = Path(model_path)
    if not path.is_file():
        raise ConfigError(f"no model file at {path}; pass the path of a .gguf file")
    port = port or _free_port()
    command = [
        sys.executable,
        "-m",
        "llama_cpp.server",
        "--model",
        str(path),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--n_ctx",
        str(n_ctx),
    ]
    if n_threads is not None:
        command += ["--n_threads", str(n_threads), "--n_threads_batch", str(n_threads)]

    # A file, not a pipe: nobody reads a pipe while the server runs, and a full
    # pipe would block the server mid-request.
    log: IO[bytes] = tempfile.NamedTemporaryFile(  # noqa: SIM115 - closed in finally
        prefix="llamacpp-server-", suffix=".log", delete=False
    )
    log_path = Path(log.name)
    try:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
        server = LlamaServer(f"http://127.0.0.1:{port}/v1", port, process, path, log_path)
        try:
            _wait_ready(server, startup_timeout)
            _smoke(server, startup_timeout)
            yield server
        finally:
            server.stop()
    finally:
        log.close()
        log_path.unlink(missing_ok=True)


def _wait_ready(server: LlamaServer, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    url = server.base_url + "/models"
    while True:
        code = server.process.poll()
        if code is not None:
            raise BackendUnreachable(
                f"the llama.cpp server exited with code {code} before answering; "
                f"its output ends with:\n{server.log_tail()}",
                "llamacpp",
            )
        if _answers(url):
            return
        if time.monotonic() > deadline:
            raise BackendUnreachable(
                f"the llama.cpp server did not answer {url} within {timeout:g}s; "
                f"its output ends with:\n{server.log_tail()}",
                "llamacpp",
            )
        time.sleep(0.2)


_PORTABLE_HINT = (
    "a llama-cpp-python built with its default native flags crashes in llama_decode on "
    "some CPUs (AVX-512 + AMX): rebuild it with "
    'CMAKE_ARGS="-DLLAVA_BUILD=OFF -DGGML_NATIVE=OFF" and without pip\'s wheel cache '
    "(scripts/dev-install.sh does both)"
)


def _smoke(server: LlamaServer, timeout: float) -> None:
    """Ask for two tokens of a multi-token prompt before anyone relies on the server.

    Listing models proves the server started, not that it can decode: a natively
    built llama.cpp can answer ``/v1/models`` and then die on the first real prompt.
    Failing here names the cause once, instead of every test failing with
    "Connection refused".
    """
    body = json.dumps(
        {
            "messages": [{"role": "user", "content": "Say hello to the whole world, please."}],
            "max_tokens": 2,
            "temperature": 0,
        }
    ).encode()
    request = urllib.request.Request(
        server.base_url + "/chat/completions",
        data=body,
        headers={"Content-Type": "application/json"},
    )
    problem: str | None = None
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            answer = json.loads(response.read())
        if not isinstance(answer, dict) or not answer.get("choices"):
            problem = f"answered a chat request without choices: {str(answer)[:200]}"
    except (urllib.error.URLError, OSError, ValueError) as exc:
        problem = f"failed a two-token chat request ({type(exc).__name__}: {exc})"
    if problem is None:
        return
    time.sleep(0.5)  # let a crashing process finish dying, so poll() tells
    code = server.process.poll()
    died = f" and exited with code {code}" if code is not None else ""
    raise BackendUnreachable(
        f"the llama.cpp server {problem}{died}; {_PORTABLE_HINT}. "
        f"Its output ends with:\n{server.log_tail()}",
        "llamacpp",
    )
