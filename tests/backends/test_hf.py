"""The hf driver on the packaged SmolLM2-135M-Instruct GGUF: real weights, no mocks.

The model is converted once per module into a temporary cache (the cold load,
about 20 s on two cores) and read back from it for every other backend here (the
warm load, well under a second). Replies stay short so the file runs in about a
minute and a half.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("gguf")

from repairllm.default_model import default_gguf
from repairllm.errors import (
    BackendTimeout,
    ConfigError,
    ContextTooLong,
    InvalidInput,
)
from repairllm.registry import connect
from repairllm_backends.hf import HFBackend, cache_entry, cache_root

pytestmark = pytest.mark.slow

ASK = "Give me a JSON object with name Alice and age 31."
# What SmolLM2 answers to ASK at temperature 0 starts like this; the tests below
# rely only on the reply containing '"age"' after '"name"'.
N = 24


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh cache holding only a damaged entry for the GGUF, as a crash could leave."""
    root = tmp_path_factory.mktemp("hf-cache")
    entry = cache_entry(default_gguf(), root)
    entry.mkdir()
    (entry / "repairllm-cache.json").write_text('{"format": 1}')
    (entry / "config.json").write_text("not json")
    return root


@pytest.fixture(scope="module")
def cold(cache_dir: Path) -> Iterator[HFBackend]:
    """The GGUF dequantized and converted, replacing the damaged entry."""
    with HFBackend(cache_dir=cache_dir) as llm:
        assert isinstance(llm, HFBackend)
        yield llm


@pytest.fixture(scope="module")
def llm(cold: HFBackend, cache_dir: Path) -> Iterator[HFBackend]:
    """The same model read back from the cache that ``cold`` wrote."""
    with HFBackend(cache_dir=cache_dir) as backend:
        assert isinstance(backend, HFBackend)
        yield backend


@pytest.fixture(scope="module")
def greedy(llm: HFBackend) -> str:
    """The model's greedy reply to ASK, the reference for cutting and streaming."""
    out = llm.chat(ASK, max_tokens=N, temperature=0)
    assert out.finish_reason == "length"
    return out.text


def warm(cache_dir: Path, **fields: Any) -> HFBackend:
    return HFBackend(cache_dir=cache_dir, **fields)


# -- loading and the conversion cache ----------------------------------------------------


def test_module_import_does_not_import_torch() -> None:
    code = "import sys, repairllm_backends.hf; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_cold_load_writes_the_cache_and_warm_load_reads_it(
    cold: HFBackend, llm: HFBackend, cache_dir: Path
) -> None:
    assert not cold.loaded_from_cache
    assert llm.loaded_from_cache
    assert cold.cache_path == llm.cache_path
    assert cold.cache_path is not None
    assert cold.cache_path.parent == cache_dir
    names = {p.name for p in cold.cache_path.iterdir()}
    assert {"model.safetensors", "config.json", "tokenizer.json", "repairllm-cache.json"} <= names
    marker = json.loads((cold.cache_path / "repairllm-cache.json").read_text())
    assert marker["source"] == str(default_gguf().resolve())
    # No half-written entry is left next to the finished one.
    assert [p.name for p in cache_dir.iterdir()] == [cold.cache_path.name]


def test_warm_model_keeps_the_output_embedding_tied(llm: HFBackend) -> None:
    # The cache stores the shared matrix once; it must come back shared, not random.
    model = llm.hf_model
    assert model.config.tie_word_embeddings
    assert model.lm_head.weight.data_ptr() == model.model.embed_tokens.weight.data_ptr()


def test_cold_and_warm_generate_the_same_greedy_text(cold: HFBackend, llm: HFBackend) -> None:
    a = cold.chat(ASK, max_tokens=N, temperature=0)
    b = llm.chat(ASK, max_tokens=N, temperature=0)
    assert a.text == b.text
    assert a.usage == b.usage
    assert cold.tokenizer.chat_template == llm.tokenizer.chat_template


def test_a_damaged_cache_entry_is_converted_again(cold: HFBackend, cache_dir: Path) -> None:
    # cache_dir began with a damaged entry under this very name; cold replaced it.
    assert cold.cache_path == cache_entry(default_gguf(), cache_dir)
    assert json.loads((cold.cache_path / "config.json").read_text())["vocab_size"] == 49152


def test_cache_entry_of_a_missing_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"missing\.gguf"):
        cache_entry(tmp_path / "missing.gguf", tmp_path)


def test_cache_root_follows_the_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("REPAIRLLM_CACHE", str(tmp_path))
    assert cache_root() == tmp_path / "hf"
    assert cache_root(tmp_path / "x") == tmp_path / "x"
    monkeypatch.delenv("REPAIRLLM_CACHE")
    assert cache_root() == Path.home() / ".cache" / "repairllm" / "hf"


def test_connect_builds_the_driver_by_name(cache_dir: Path) -> None:
    backend = connect("hf", cache_dir=cache_dir, dotenv=None, threads=1)
    assert isinstance(backend, HFBackend)
    assert backend.model == str(default_gguf())
    assert backend.context_length == 8192  # SmolLM2's max_position_embeddings


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"model": "/nonexistent/model.gguf"}, "/nonexistent/model.gguf"),
        ({"model": "/nonexistent/dir"}, "/nonexistent/dir"),
        ({"dtype": "float99"}, "unknown dtype"),
        ({"device": "toaster"}, "unknown device"),
        ({"threads": 0}, "threads"),
        ({"model_cls": "transformers.NoSuchModel"}, "NoSuchModel"),
        ({"defaults": {"max_tokenz": 3}}, "max_tokenz"),
        ({"end_token": ""}, "end_token"),
    ],
    ids=["gguf", "dir", "dtype", "device", "threads", "model_cls", "defaults", "end_token"],
)
def test_bad_fields_are_config_errors(
    fields: dict[str, Any], message: str, cache_dir: Path
) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)):
        HFBackend(cache_dir=cache_dir, **fields)


def test_a_directory_that_is_no_model_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=re.escape(str(tmp_path))):
        HFBackend(tmp_path)


# -- generation ---------------------------------------------------------------------------


def test_greedy_is_deterministic_and_usage_is_counted(llm: HFBackend, greedy: str) -> None:
    out = llm.chat(ASK, max_tokens=N, temperature=0)
    assert out.text == greedy
    assert out.truncated
    assert out.usage.prompt_tokens == llm.count_tokens([_user(ASK)])
    assert out.usage.completion_tokens == N
    assert '"name"' in greedy
    assert '"age"' in greedy


def test_a_short_answer_ends_with_eos(llm: HFBackend) -> None:
    out = llm.chat("Say hello.", max_tokens=48, temperature=0)
    assert out.finish_reason == "stop"
    assert 0 < out.usage.completion_tokens < 48
    assert out.text.strip()
    assert "<|im_end|>" not in out.text


def test_stop_strings_cut_the_reply_and_stop_generation(llm: HFBackend, greedy: str) -> None:
    out = llm.chat(ASK, max_tokens=N, temperature=0, stop=['"age"', "never appears"])
    assert out.finish_reason == "stop"
    assert out.text == greedy[: greedy.index('"age"')]
    assert out.usage.completion_tokens < N


@pytest.mark.parametrize("include_end", [False, True], ids=["cut", "kept"])
def test_end_token_cuts_the_reply(
    include_end: bool, cache_dir: Path, greedy: str, llm: HFBackend
) -> None:
    backend = warm(cache_dir, end_token='"age"', include_end=include_end)
    out = backend.chat(ASK, max_tokens=N, temperature=0)
    end = greedy.index('"age"') + (len('"age"') if include_end else 0)
    assert out.text == greedy[:end]
    assert out.finish_reason == "stop"
    assert out.usage.completion_tokens < N
    streamed = list(backend.stream(ASK, max_tokens=N, temperature=0))
    assert "".join(c.text for c in streamed) == out.text
    assert streamed[-1].finish_reason == "stop"


def test_a_special_end_token_is_kept_though_decoding_drops_specials(cache_dir: Path) -> None:
    # <|im_end|> is SmolLM2's end of turn: a special token, absent from decoded text.
    backend = warm(cache_dir, end_token="<|im_end|>", include_end=True)
    out = backend.chat("Say hello.", max_tokens=48, temperature=0)
    assert out.finish_reason == "stop"
    assert out.text.endswith("<|im_end|>")
    assert out.text.count("<|im_end|>") == 1
    streamed = list(backend.stream("Say hello.", max_tokens=48, temperature=0))
    assert "".join(c.text for c in streamed) == out.text


def test_generation_config_gives_defaults_that_options_override(cache_dir: Path) -> None:
    backend = warm(cache_dir, generation_config={"max_new_tokens": 3})
    assert backend.chat(ASK, temperature=0).usage.completion_tokens == 3
    assert backend.chat(ASK, temperature=0, max_tokens=5).usage.completion_tokens == 5


def test_seeded_sampling_repeats(llm: HFBackend) -> None:
    a = llm.chat(ASK, max_tokens=12, temperature=1.0, seed=7)
    b = llm.chat(ASK, max_tokens=12, temperature=1.0, seed=7)
    assert a.text == b.text


def test_text_parts_read_as_plain_content(llm: HFBackend) -> None:
    parts = [{"role": "user", "content": [{"type": "text", "text": ASK}]}]
    assert llm.count_tokens(parts) == llm.count_tokens([_user(ASK)])
    image = [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "x"}}]}]
    with pytest.raises(InvalidInput, match="text parts"):
        llm.chat(image, max_tokens=2)


def test_a_trailing_assistant_message_is_continued(llm: HFBackend, greedy: str) -> None:
    prefix = greedy[: greedy.index('"age"')].rstrip()
    out = llm.chat([_user(ASK), {"role": "assistant", "content": prefix}], max_tokens=6)
    # The model goes on from inside the object instead of opening a new reply.
    assert not out.text.lstrip().startswith("```")
    assert out.usage.prompt_tokens > llm.count_tokens([_user(ASK)])


def test_count_tokens_uses_the_tokenizer_and_template(llm: HFBackend) -> None:
    assert llm.count_tokens("hello world") == 2
    # The template adds a system turn and role markers around the user's text.
    assert llm.count_tokens([_user("hello world")]) > 2 + 10


def test_chat_template_override_is_used(cache_dir: Path) -> None:
    backend = warm(cache_dir, chat_template="{% for m in messages %}{{ m['content'] }}{% endfor %}")
    assert backend.count_tokens([_user("hello world")]) == 2


def test_prompt_beyond_the_context_is_refused_before_generating(cache_dir: Path) -> None:
    backend = warm(cache_dir, context_length=64)
    with pytest.raises(ContextTooLong) as info:
        backend.chat("word " * 80, max_tokens=4)
    assert info.value.limit == 64


@pytest.mark.parametrize(
    "option", [{"json_schema": {"type": "object"}}, {"json_mode": True}], ids=["schema", "mode"]
)
def test_structured_modes_without_llguidance_are_refused_with_the_hint(
    llm: HFBackend, option: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    # What a user without the hf extra's llguidance sees; the grammar tests are in
    # test_hf_grammar.py.
    monkeypatch.setattr(llm, "supports_json_schema", False)
    monkeypatch.setattr(llm, "supports_json_mode", False)
    with pytest.raises(ConfigError, match=r"needs llguidance.*repairllm\[hf\]"):
        llm.chat(ASK, max_tokens=2, **option)


def test_unknown_option_is_refused(llm: HFBackend) -> None:
    with pytest.raises(ConfigError, match="max_tokenz"):
        llm.chat(ASK, max_tokenz=3)


def test_timeout_raises_backend_timeout(llm: HFBackend) -> None:
    with pytest.raises(BackendTimeout, match="timeout"):
        llm.chat(ASK, max_tokens=64, temperature=0, timeout=0.001)


def test_closed_backend_refuses_calls(cache_dir: Path) -> None:
    backend = warm(cache_dir)
    backend.close()
    backend.close()
    with pytest.raises(ConfigError, match="closed"):
        backend.chat(ASK, max_tokens=2)


# -- streaming ----------------------------------------------------------------------------


def test_stream_yields_the_same_text_as_chat(llm: HFBackend, greedy: str) -> None:
    chunks = list(llm.stream(ASK, max_tokens=N, temperature=0))
    assert len(chunks) > 2
    assert "".join(c.text for c in chunks) == greedy
    assert all(c.finish_reason is None and c.usage is None for c in chunks[:-1])
    assert chunks[-1].finish_reason == "length"
    assert chunks[-1].usage is not None
    assert chunks[-1].usage.completion_tokens == N


def test_stream_cuts_at_a_stop_string_split_across_pieces(llm: HFBackend, greedy: str) -> None:
    stop = '"age": 3'  # spans several tokens, so it arrives in pieces
    chunks = list(llm.stream(ASK, max_tokens=N, temperature=0, stop=[stop]))
    assert "".join(c.text for c in chunks) == greedy[: greedy.index(stop)]
    assert chunks[-1].finish_reason == "stop"


def test_stream_abandoned_early_releases_the_model(llm: HFBackend) -> None:
    stream = llm.stream(ASK, max_tokens=200, temperature=0)
    first = next(iter(stream))
    assert first.text
    stream.close()  # type: ignore[attr-defined]
    # The generation thread stopped and let go of the lock: the next call runs at once.
    assert llm.chat(ASK, max_tokens=2, temperature=0).usage.completion_tokens == 2


def test_errors_in_the_generation_thread_reach_the_reader(cache_dir: Path) -> None:
    # An unknown generate() keyword fails inside the worker thread, after it started.
    backend = warm(cache_dir, generation_config={"no_such_setting": 1})
    with pytest.raises(ConfigError, match="no_such_setting"):
        list(backend.stream(ASK, max_tokens=4, temperature=0))
    with pytest.raises(ConfigError, match="no_such_setting"):
        backend.chat(ASK, max_tokens=4, temperature=0)


def test_async_chat_and_stream(llm: HFBackend, greedy: str) -> None:
    async def run() -> tuple[str, str]:
        out = await llm.achat(ASK, max_tokens=N, temperature=0)
        text = "".join([c.text async for c in llm.astream(ASK, max_tokens=N, temperature=0)])
        return out.text, text

    assert asyncio.run(run()) == (greedy, greedy)


# -- LoRA ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def adapter(cache_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A random LoRA adapter on SmolLM2's attention, saved the way peft saves one."""
    peft = pytest.importorskip("peft")
    import torch

    base = warm(cache_dir)
    config = peft.LoraConfig(
        r=4, lora_alpha=16, target_modules=["q_proj", "v_proj"], init_lora_weights=False
    )
    torch.manual_seed(0)
    with warnings.catch_warnings():
        # peft 0.15 reads a property transformers 5 deprecated (FutureWarning).
        warnings.filterwarnings(
            "ignore", message=".*is_gradient_checkpointing", category=FutureWarning
        )
        model = peft.get_peft_model(base.hf_model, config)
    out = tmp_path_factory.mktemp("lora")
    # The vocabulary is unchanged: say so, rather than have peft look for a config.
    model.save_pretrained(str(out), save_embedding_layers=False)
    base.close()
    return out


def test_lora_adapter_changes_the_reply(
    adapter: Path, cache_dir: Path, greedy: str, llm: HFBackend
) -> None:
    assert (adapter / "adapter_config.json").is_file()
    tuned = warm(cache_dir, lora_path=adapter)
    out = tuned.chat(ASK, max_tokens=N, temperature=0)
    assert out.text != greedy
    # The base model in the same process is untouched.
    assert llm.chat(ASK, max_tokens=N, temperature=0).text == greedy


def test_missing_lora_adapter_is_a_config_error(cache_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no PEFT adapter"):
        warm(cache_dir, lora_path=tmp_path / "missing")


def _user(text: str) -> dict[str, str]:
    return {"role": "user", "content": text}


def test_threads_default_uses_the_cores_this_process_may_use(llm: HFBackend) -> None:
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    assert llm.threads == min(8, max(1, cores or 1))
