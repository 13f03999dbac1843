"""repairllm: data a program can trust from any LLM, above all a small open one.

The public surface. ``repair`` turns a model's reply into a value (optionally validated
against a pydantic model, a type or a JSON Schema) and keeps a ledger of every change.
Nothing here imports a backend driver, torch, transformers or an HTTP client.
"""

from __future__ import annotations

from .backend import Backend, ChatOptions, Chunk, Completion, ToolCall, Usage
from .choice import choose
from .errors import (
    AmbiguousRepair,
    BackendError,
    BackendStatusError,
    BackendTimeout,
    BackendUnreachable,
    BadResponse,
    ConfigError,
    ContextTooLong,
    HookError,
    InvalidInput,
    ItemFailed,
    MissingKey,
    NoJSONFound,
    RepairFailed,
    RepairLLMError,
    RetriesExhausted,
    SchemaError,
)
from .extract import Candidate, candidates
from .items import StreamedItem, arepair_items, astream_items, repair_items, stream_items
from .ledger import Fix, Issue, Ledger
from .observe import Hooks
from .outcome import Outcome
from .pipeline import repair
from .policy import DEFAULT, LENIENT, RULE_COSTS, STRICT, Policy
from .registry import available, connect, register
from .retry import Attempt, Generation, agenerate, generate, repairing
from .schema import Schema, compile_schema
from .stream import Partial, astream, stream
from .tools import ToolUse, acall_tools, call_tools

__version__ = "0.1.0"

__all__ = [
    "DEFAULT",
    "LENIENT",
    "RULE_COSTS",
    "STRICT",
    "AmbiguousRepair",
    "Attempt",
    "Backend",
    "BackendError",
    "BackendStatusError",
    "BackendTimeout",
    "BackendUnreachable",
    "BadResponse",
    "Candidate",
    "ChatOptions",
    "Chunk",
    "Completion",
    "ConfigError",
    "ContextTooLong",
    "Fix",
    "Generation",
    "HookError",
    "Hooks",
    "InvalidInput",
    "Issue",
    "ItemFailed",
    "Ledger",
    "MissingKey",
    "NoJSONFound",
    "Outcome",
    "Partial",
    "Policy",
    "RepairFailed",
    "RepairLLMError",
    "RetriesExhausted",
    "Schema",
    "SchemaError",
    "StreamedItem",
    "ToolCall",
    "ToolUse",
    "Usage",
    "__version__",
    "acall_tools",
    "agenerate",
    "arepair_items",
    "astream",
    "astream_items",
    "available",
    "call_tools",
    "candidates",
    "choose",
    "compile_schema",
    "connect",
    "generate",
    "register",
    "repair",
    "repair_items",
    "repairing",
    "stream",
    "stream_items",
]
