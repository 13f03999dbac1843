"""The public surface, and what importing it pulls in."""

from __future__ import annotations

import subprocess
import sys

import pytest

import repairllm as rl


def test_all_names_exist_and_nothing_public_is_missing() -> None:
    for name in rl.__all__:
        assert hasattr(rl, name), name
    public = {
        name
        for name, obj in vars(rl).items()
        if not name.startswith("_") and getattr(obj, "__module__", "").startswith("repairllm")
    }
    assert public <= set(rl.__all__), public - set(rl.__all__)


def test_errors_form_one_tree() -> None:
    errors = [getattr(rl, n) for n in rl.__all__ if isinstance(getattr(rl, n), type)]
    errors = [e for e in errors if issubclass(e, BaseException)]
    assert len(errors) >= 14
    assert all(issubclass(e, rl.RepairLLMError) for e in errors)


def test_import_pulls_in_no_driver_torch_or_http_client() -> None:
    heavy = [
        "torch",
        "transformers",
        "httpx",
        "openai",
        "requests",
        "urllib3",
        "aiohttp",
        "ollama",
        "llama_cpp",
        "repairllm_backends",
        "json_repair",
    ]
    code = (
        "import sys, repairllm\n"
        "rl = repairllm\n"
        "rl.repair('{\"a\": 1}'); rl.repair(\"{'a': [1,]}\")\n"
        f"print(','.join(m for m in {heavy!r} if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


@pytest.mark.parametrize("bad", [None, 42, ["{}"], {"a": 1}], ids=repr)
def test_bad_input_types_are_our_errors(bad: object) -> None:
    with pytest.raises(rl.InvalidInput, match=type(bad).__name__):
        rl.repair(bad)  # type: ignore[arg-type]


def test_bytes_are_read_as_utf8() -> None:
    assert rl.repair(b'{"a": 1}') == {"a": 1}
    with pytest.raises(rl.InvalidInput, match="UTF-8"):
        rl.repair(b"\xff{}")


def test_unknown_policy_name_is_a_config_error() -> None:
    with pytest.raises(rl.ConfigError, match="strict"):
        rl.repair("{}", policy="loose")
