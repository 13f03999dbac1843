"""Grammar-constrained decoding in the hf driver, on the real SmolLM2-135M weights.

llguidance masks the tokens, so a 135M model's reply has the schema's shape by
construction; what the grammar leaves out (formats) is still checked by validation.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("llguidance")

import repairllm as rl
from repairllm.bench.model import make_tasks
from repairllm.bench.parser import builtin_schemas
from repairllm.errors import RetriesExhausted
from repairllm.prompts import grammar_safe
from repairllm.schema import compile_schema
from repairllm_backends import _hf_grammar
from repairllm_backends.hf import HFBackend

pytestmark = pytest.mark.slow

PERSON = {
    "type": "object",
    "properties": {
        "name": {"type": "string", "maxLength": 40},
        "age": {"type": "integer", "minimum": 0, "maximum": 150},
    },
    "required": ["name", "age"],
    "additionalProperties": False,
}
ASK = "Alice Smith is 31 years old. Give her name and age as JSON."


@pytest.fixture(scope="module")
def llm() -> Iterator[HFBackend]:
    # The user's conversion cache: converted once per machine, as the main job does.
    with HFBackend() as backend:
        yield backend


def test_the_driver_declares_native_modes(llm: HFBackend) -> None:
    assert llm.supports_json_schema
    assert llm.supports_json_mode
    assert llm.continues_reply


def test_json_schema_constrains_the_reply(llm: HFBackend) -> None:
    out = llm.chat(ASK, json_schema=PERSON, max_tokens=40, temperature=0)
    value = json.loads(out.text)  # exactly JSON: no prose, no fence
    jsonschema.validate(value, PERSON)
    assert out.finish_reason == "stop"
    # Unconstrained, the same model on the same prompt does not give that.
    plain = llm.chat(ASK, max_tokens=40, temperature=0)
    assert plain.text != out.text


def test_json_mode_gives_a_json_object(llm: HFBackend) -> None:
    out = llm.chat("Describe a cat as JSON.", json_mode=True, max_tokens=40, temperature=0)
    if out.finish_reason == "stop":
        assert isinstance(json.loads(out.text), dict)
    else:  # cut by max_tokens: still the start of an object
        assert out.text.startswith("{")


def test_whitespace_is_compact(llm: HFBackend) -> None:
    out = llm.chat(ASK, json_schema=PERSON, max_tokens=40, temperature=0)
    assert "\n" not in out.text
    assert "  " not in out.text


def test_sampling_under_the_grammar_stays_valid(llm: HFBackend) -> None:
    for seed in range(3):
        out = llm.chat(ASK, json_schema=PERSON, max_tokens=40, temperature=1.0, seed=seed)
        jsonschema.validate(json.loads(out.text), PERSON)


def test_format_is_left_out_of_the_grammar_and_enforced_by_validation(llm: HFBackend) -> None:
    schema = {
        "type": "object",
        "properties": {"email": {"type": "string", "format": "email", "maxLength": 40}},
        "required": ["email"],
    }
    prompt = (
        "Write a JSON object with a field email holding the address of the website example.com."
    )
    out = llm.chat(prompt, json_schema=schema, max_tokens=40, temperature=0)
    assert any("format" in note for note in out.notes)
    value = json.loads(out.text)
    assert isinstance(value["email"], str)
    # Whatever the grammar let through, validation checks the format.
    checked = compile_schema(schema)
    try:
        result = rl.generate(llm, prompt, schema, retries=0, outcome=True, max_tokens=40)
    except RetriesExhausted as exc:
        issues = exc.attempts[-1].issues
        assert any(i.path == "/email" for i in issues), issues
    else:
        assert checked.is_valid(result.data)
        assert "@" in result.data["email"]


def test_a_pattern_llguidance_cannot_compile_is_left_out(llm: HFBackend) -> None:
    schema = {
        "type": "object",
        "properties": {"code": {"type": "string", "pattern": "(?<=x)y", "maxLength": 8}},
        "required": ["code"],
    }
    out = llm.chat("Give a JSON object with a code.", json_schema=schema, max_tokens=30)
    assert any("pattern" in note for note in out.notes), out.notes
    assert isinstance(json.loads(out.text), dict)


def test_a_schema_without_any_grammar_is_unconstrained_with_a_note(llm: HFBackend) -> None:
    # A remote $ref cannot be resolved in-process: no grammar, and no llguidance error.
    schema = {"$ref": "https://example.invalid/schema.json"}
    out = llm.chat("Say hi.", json_schema=schema, max_tokens=6, temperature=0)
    assert any("no grammar" in note for note in out.notes), out.notes


def test_a_property_named_pattern_survives_grammar_safe() -> None:
    schema = {
        "type": "object",
        "properties": {
            "pattern": {"type": "string", "pattern": "^[a-z]+$"},
            "items": {"type": "array", "items": {"type": "string", "pattern": "x"}},
        },
        "required": ["pattern"],
        "examples": [{"pattern": "abc"}],
    }
    safe = grammar_safe(schema)
    assert safe["properties"]["pattern"] == {"type": "string"}
    assert safe["properties"]["items"]["items"] == {"type": "string"}
    assert safe["required"] == ["pattern"]
    assert safe["examples"] == [{"pattern": "abc"}]


def test_every_corpus_schema_compiles_or_says_why(llm: HFBackend) -> None:
    folder = builtin_schemas()
    assert folder is not None
    compiled, unsupported = [], []
    for path in sorted(Path(folder).glob("*.json")):
        schema = json.loads(path.read_text(encoding="utf-8"))
        mask = _hf_grammar.build_mask(
            llm.tokenizer,
            {k: v for k, v in schema.items() if k != "examples"},
            eos=llm._eos_ids,
            prompt_tokens=0,
            vocab_size=int(llm.hf_model.config.vocab_size),
        )
        if mask.active:
            compiled.append(path.stem)
        else:
            assert mask.notes, path.stem  # never silently unconstrained
            unsupported.append((path.stem, mask.notes))
    print(f"\ngrammar: {len(compiled)} compiled, {len(unsupported)} unsupported: {unsupported}")
    assert len(compiled) >= 30


def test_generate_in_native_mode_is_valid_on_corpus_schemas(llm: HFBackend) -> None:
    tasks = make_tasks(40, seed=1)
    seen: dict[str, Any] = {}
    for task in tasks:
        if task.schema_name in seen:
            continue
        try:
            result = rl.generate(
                llm, task.prompt, task.schema, outcome=True, temperature=0, max_tokens=160
            )
        except RetriesExhausted:
            seen[task.schema_name] = None
            continue
        assert all(a.native for a in result.attempts)
        jsonschema.validate(result.data, task.schema)
        seen[task.schema_name] = result.data
        if sum(v is not None for v in seen.values()) >= 8:
            break
    valid = [name for name, value in seen.items() if value is not None]
    assert len(valid) >= 8, seen


def test_streaming_under_the_grammar_yields_prefixes_of_the_final_value(llm: HFBackend) -> None:
    steps = list(rl.stream(llm, ASK, PERSON, temperature=0, max_tokens=40))
    final = steps[-1]
    assert final.done
    jsonschema.validate(final.value, PERSON)
    partials = [s.value for s in steps[:-1] if s.value is not None]
    assert partials
    for partial in partials:
        assert isinstance(partial, dict)
        for key, value in partial.items():
            assert key in final.value
            if isinstance(value, str):
                assert final.value[key].startswith(value)
            else:
                assert value == final.value[key]


def test_a_constrained_reply_cut_by_max_tokens_is_continued(llm: HFBackend) -> None:
    result = rl.generate(llm, ASK, PERSON, outcome=True, temperature=0, max_tokens=6, retries=0)
    first = result.attempts[0]
    assert first.continuations >= 1
    assert first.native
    # One value written on in place, not a restart: the raw reply is that value.
    assert json.loads(first.raw) == result.data
    jsonschema.validate(result.data, PERSON)


def test_choose_under_the_grammar_answers_a_label(llm: HFBackend) -> None:
    answer = rl.choose(llm, "Is this review positive? 'I loved it, great film.'", ["yes", "no"])
    assert answer in ("yes", "no")
    schema = {"type": "string", "enum": ["A", "B", "yes", "no"]}
    out = llm.chat("Pick A or B.", json_schema=schema, max_tokens=8, temperature=0)
    assert json.loads(out.text) in schema["enum"]


def test_end_token_under_the_grammar(llm: HFBackend) -> None:
    with HFBackend(end_token="<|im_end|>") as ended:
        out = ended.chat(ASK, json_schema=PERSON, max_tokens=40, temperature=0)
    jsonschema.validate(json.loads(out.text), PERSON)
    assert out.finish_reason == "stop"
    assert "<|im_end|>" not in out.text


def test_lora_adapter_under_the_grammar(tmp_path: Path, llm: HFBackend) -> None:
    peft = pytest.importorskip("peft")
    import warnings

    import torch

    config = peft.LoraConfig(
        r=4, lora_alpha=16, target_modules=["q_proj", "v_proj"], init_lora_weights=False
    )
    torch.manual_seed(0)
    with HFBackend() as base, warnings.catch_warnings():
        warnings.filterwarnings(
            "ignore", message=".*is_gradient_checkpointing", category=FutureWarning
        )
        model = peft.get_peft_model(base.hf_model, config)
        model.save_pretrained(str(tmp_path), save_embedding_layers=False)
    with HFBackend(lora_path=tmp_path) as tuned:
        out = tuned.chat(ASK, json_schema=PERSON, max_tokens=40, temperature=0)
    assert json.loads(out.text) is not None
    jsonschema.validate(json.loads(out.text), PERSON)
