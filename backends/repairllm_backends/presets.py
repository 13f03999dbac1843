"""Presets for OpenAI-compatible servers: small records, not classes.

Each names where the server usually listens, which environment variable holds its
API key (and whether one is needed at all), and which structured modes it accepts.
``connect("vllm", model=...)`` builds the openai driver from the preset (its entry
points live in :mod:`repairllm_backends.openai`); any field can still be overridden
(``base_url=...``). Pure data: nothing here imports the driver.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

__all__ = ["PRESETS", "Preset"]


@dataclass(frozen=True, kw_only=True)
class Preset:
    """How to reach one kind of OpenAI-compatible server.

    Attributes:
        name: the name ``connect`` knows it by.
        base_url: where it listens by default.
        api_key_env: the environment variable holding the key.
        key_required: whether a call without a key is refused (hosted services);
            local servers accept any placeholder.
        json_schema: constrains replies to a JSON Schema, in the form ``schema_form`` says.
        json_mode: accepts ``response_format={"type": "json_object"}``.
        tools: accepts ``tools`` and a ``tool_choice`` naming one function, and returns
            ``tool_calls``. llama-cpp-python's server does so for every chat format it
            renders from a template (SmolLM2's included): a forced function is
            generated under a grammar made from its ``parameters``.
        schema_form: how the schema is sent: OpenAI's
            ``{"type": "json_schema", "json_schema": {...}}``, or
            ``{"type": "json_object", "schema": {...}}``, the only form
            llama-cpp-python's server (0.3.x) accepts (it answers the other with 500).
    """

    name: str
    base_url: str
    api_key_env: str
    key_required: bool = False
    json_schema: bool = False
    json_mode: bool = False
    tools: bool = False
    schema_form: Literal["json_schema", "json_object"] = "json_schema"


PRESETS: dict[str, Preset] = {
    p.name: p
    for p in (
        Preset(
            name="openai",
            base_url="https://api.openai.com/v1",
            api_key_env="OPENAI_API_KEY",
            key_required=True,
            json_schema=True,
            json_mode=True,
            tools=True,
        ),
        Preset(
            name="vllm",
            base_url="http://127.0.0.1:8000/v1",
            api_key_env="VLLM_API_KEY",
            json_schema=True,
            json_mode=True,
            tools=True,
        ),
        # llama.cpp's own server and llama-cpp-python's server take the same fields.
        Preset(
            name="llamacpp",
            base_url="http://127.0.0.1:8080/v1",
            api_key_env="LLAMACPP_API_KEY",
            json_schema=True,
            json_mode=True,
            tools=True,
            schema_form="json_object",
        ),
        Preset(
            name="fastchat", base_url="http://127.0.0.1:8000/v1", api_key_env="FASTCHAT_API_KEY"
        ),
        Preset(name="llamafactory", base_url="http://127.0.0.1:8000/v1", api_key_env="API_KEY"),
        Preset(
            name="lmstudio",
            base_url="http://127.0.0.1:1234/v1",
            api_key_env="LMSTUDIO_API_KEY",
            json_schema=True,
            json_mode=True,
            tools=True,
        ),
        Preset(
            name="dashscope",
            base_url="https://dashscope.aliyuncs.com/compatible-mode/v1",
            api_key_env="DASHSCOPE_API_KEY",
            key_required=True,
            json_mode=True,
            tools=True,
        ),
        Preset(
            name="zhipu",
            base_url="https://open.bigmodel.cn/api/paas/v4",
            api_key_env="ZHIPUAI_API_KEY",
            key_required=True,
            json_mode=True,
            tools=True,
        ),
        Preset(
            name="deepseek",
            base_url="https://api.deepseek.com/v1",
            api_key_env="DEEPSEEK_API_KEY",
            key_required=True,
            json_mode=True,
            tools=True,
        ),
    )
}
