"""Presets for OpenAI-compatible servers: small records, not classes.

Each names where the server usually listens, which environment variable holds its
API key (and whether one is needed at all), and which structured modes it accepts.
``connect("vllm", model=...)`` builds the openai driver from the preset; any field
can still be overridden (``base_url=...``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from .openai import OpenAIBackend

__all__ = ["PRESETS", "Preset"]


@dataclass(frozen=True)
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
    schema_form: Literal["json_schema", "json_object"] = "json_schema"


PRESETS: dict[str, Preset] = {
    p.name: p
    for p in (
        Preset("openai", "https://api.openai.com/v1", "OPENAI_API_KEY", True, True, True),
        Preset("vllm", "http://127.0.0.1:8000/v1", "VLLM_API_KEY", False, True, True),
        # llama.cpp's own server and llama-cpp-python's server take the same fields.
        Preset(
            "llamacpp",
            "http://127.0.0.1:8080/v1",
            "LLAMACPP_API_KEY",
            False,
            True,
            True,
            "json_object",
        ),
        Preset("fastchat", "http://127.0.0.1:8000/v1", "FASTCHAT_API_KEY"),
        Preset("llamafactory", "http://127.0.0.1:8000/v1", "API_KEY"),
        Preset("lmstudio", "http://127.0.0.1:1234/v1", "LMSTUDIO_API_KEY", False, True, True),
        Preset(
            "dashscope",
            "https://dashscope.aliyuncs.com/compatible-mode/v1",
            "DASHSCOPE_API_KEY",
            True,
            False,
            True,
        ),
        Preset(
            "zhipu", "https://open.bigmodel.cn/api/paas/v4", "ZHIPUAI_API_KEY", True, False, True
        ),
        Preset("deepseek", "https://api.deepseek.com/v1", "DEEPSEEK_API_KEY", True, False, True),
    )
}


def _factory(name: str) -> Any:
    def build(**fields: Any) -> OpenAIBackend:
        from .openai import OpenAIBackend

        return OpenAIBackend(preset=name, **fields)

    build.__name__ = name
    build.__doc__ = f"Build the openai driver with the {name!r} preset."
    return build


# Entry points name these: `vllm = "repairllm_backends.presets:vllm"` and so on.
openai = _factory("openai")
vllm = _factory("vllm")
llamacpp = _factory("llamacpp")
fastchat = _factory("fastchat")
llamafactory = _factory("llamafactory")
lmstudio = _factory("lmstudio")
dashscope = _factory("dashscope")
zhipu = _factory("zhipu")
deepseek = _factory("deepseek")
