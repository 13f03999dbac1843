"""connect(): names, model prefixes, config files, the environment, entry points."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import repairllm as rl
from repairllm import registry
from repairllm.backend import Backend, ChatOptions, Completion, Message


class Echo(Backend):
    name = "echo"

    def __init__(self, model: str = "echo", greeting: str = "hi", **extra: Any) -> None:
        self.model = model
        self.greeting = greeting
        self.extra = extra

    def _chat(self, messages: list[Message], options: ChatOptions) -> Completion:
        return Completion(f"{self.greeting} {messages[-1]['content']}")


class EchoTiny(Echo):
    name = "echo_tiny"


class Strict(Backend):
    name = "strict"

    def __init__(self, model: str) -> None:
        self.model = model

    def _chat(self, messages: list[Message], options: ChatOptions) -> Completion:
        return Completion("ok")


@pytest.fixture(autouse=True)
def _registered(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(registry, "_registered", {})
    rl.register("echo", Echo)
    rl.register("echo_tiny", EchoTiny)
    rl.register("strict", Strict)
    for key in ("BACKEND", "MODEL", "BASE_URL", "CONTEXT_LENGTH", "TIMEOUT"):
        monkeypatch.delenv(registry.ENV_PREFIX + key, raising=False)
    monkeypatch.chdir(tmp_path)


def test_connect_by_name() -> None:
    llm = rl.connect("echo", greeting="hello")
    assert isinstance(llm, Echo)
    assert llm.chat("you").text == "hello you"


def test_model_prefix_wins_over_the_server_name() -> None:
    assert type(rl.connect("echo", model="Tiny-Llama-1B")) is EchoTiny
    assert type(rl.connect("echo", model="big-model")) is Echo


def test_unknown_name_lists_the_registered_ones() -> None:
    with pytest.raises(rl.ConfigError) as info:
        rl.connect("nosuch")
    message = str(info.value)
    assert "'nosuch'" in message
    for name in ("echo", "openai", "ollama", "hf", "human", "vllm"):
        assert name in message


def test_builtin_drivers_are_entry_points() -> None:
    names = rl.available()
    for name in (
        "openai",
        "vllm",
        "llamacpp",
        "fastchat",
        "llamafactory",
        "lmstudio",
        "dashscope",
        "zhipu",
        "deepseek",
        "ollama",
        "hf",
        "human",
    ):
        assert name in names


def test_config_file(tmp_path: Path) -> None:
    config = tmp_path / "local.yaml"
    config.write_text("backend: echo\nmodel: m1\ngreeting: hey\n")
    llm = rl.connect(config=config)
    assert isinstance(llm, Echo)
    assert (llm.model, llm.greeting) == ("m1", "hey")
    # Arguments beat the file.
    assert rl.connect(config=config, greeting="yo").greeting == "yo"  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("content", "why"),
    [("- a\n- b\n", "mapping"), ("backend: [unclosed\n", "YAML")],
    ids=["not-a-mapping", "bad-yaml"],
)
def test_bad_config_files(tmp_path: Path, content: str, why: str) -> None:
    config = tmp_path / "bad.yaml"
    config.write_text(content)
    with pytest.raises(rl.ConfigError, match=why):
        rl.connect(config=config)


def test_missing_config_file() -> None:
    with pytest.raises(rl.ConfigError, match="cannot read"):
        rl.connect(config="nope.yaml")


def test_environment_and_dotenv(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("REPAIRLLM_BACKEND=echo\nREPAIRLLM_MODEL=from-dotenv\n")
    llm = rl.connect()
    assert isinstance(llm, Echo)
    assert llm.model == "from-dotenv"
    monkeypatch.setenv("REPAIRLLM_MODEL", "from-env")
    assert rl.connect().model == "from-env", "the environment beats .env"


def test_environment_fields_go_only_to_drivers_that_take_them(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("REPAIRLLM_BASE_URL", "http://127.0.0.1:9/v1")
    llm = rl.connect("strict", model="x")
    assert llm.model == "x"
    echo = rl.connect("echo")
    assert isinstance(echo, Echo)
    assert echo.extra == {"base_url": "http://127.0.0.1:9/v1"}
    with pytest.raises(rl.ConfigError, match="refused"):
        rl.connect("strict", model="x", base_url="http://explicit")


def test_no_backend_named_anywhere() -> None:
    with pytest.raises(rl.ConfigError, match="REPAIRLLM_BACKEND"):
        rl.connect()


def test_a_factory_must_build_a_backend() -> None:
    rl.register("broken", lambda **_: "not a backend")
    with pytest.raises(rl.ConfigError, match="not a Backend"):
        rl.connect("broken")


def test_presets_build_the_openai_driver_with_their_fields() -> None:
    llm = rl.connect("vllm", model="qwen", base_url="http://127.0.0.1:9/v1")
    assert type(llm).__name__ == "OpenAIBackend"
    assert llm.supports_json_schema
    with pytest.raises(rl.MissingKey) as info:
        rl.connect("deepseek", model="deepseek-chat")
    assert info.value.env_var == "DEEPSEEK_API_KEY"


def test_a_third_party_driver_needs_only_an_entry_point(tmp_path: Path) -> None:
    """The README's example: a package with one entry point, installed, then connected."""
    pkg = tmp_path / "pkg"
    (pkg / "repairllm_shout").mkdir(parents=True)
    (pkg / "repairllm_shout" / "__init__.py").write_text(
        "from repairllm import Backend, Completion\n"
        "class ShoutBackend(Backend):\n"
        "    name = 'shout'\n"
        "    def __init__(self, model='shout', **fields):\n"
        "        self.model = model\n"
        "    def _chat(self, messages, options):\n"
        "        return Completion(messages[-1]['content'].upper())\n"
    )
    (pkg / "pyproject.toml").write_text(
        "[build-system]\nrequires = ['hatchling']\nbuild-backend = 'hatchling.build'\n"
        "[project]\nname = 'repairllm-shout'\nversion = '0.1'\n"
        "[project.entry-points.'repairllm.backends']\nshout = 'repairllm_shout:ShoutBackend'\n"
        "[tool.hatch.build.targets.wheel]\npackages = ['repairllm_shout']\n"
    )
    target = tmp_path / "site"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-deps",
            "--no-build-isolation",
            "--target",
            str(target),
            str(pkg),
        ],
        check=True,
        capture_output=True,
    )
    code = "import repairllm as rl; print(rl.connect('shout').chat('hello').text)"
    env = {"PYTHONPATH": str(target), "PATH": "/usr/bin:/bin"}
    out = subprocess.run(
        [sys.executable, "-c", code], check=True, capture_output=True, text=True, env=env
    )
    assert out.stdout.strip() == "HELLO"
