"""Drop-in pieces for the big frameworks, so their users get repair without new code.

- :mod:`repairllm.adapters.langchain`: :class:`RepairingOutputParser`, a LangChain
  output parser that repairs the reply instead of failing (``PydanticOutputParser``) or
  asking the model a second time (``OutputFixingParser``); ``pip install 'repairllm[langchain]'``.
- :mod:`repairllm.adapters.pydantic_ai`: :func:`repaired`, a pydantic-ai text output
  that repairs the reply and, where repair is not enough, raises ``ModelRetry`` with
  the issues by JSON pointer so the agent asks again; ``pip install 'repairllm[pydantic-ai]'``.

Importing this package imports neither framework: each loads with its own module,
which the names below reach only when first used (``from repairllm.adapters import
RepairingOutputParser`` imports LangChain then, not before).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .langchain import RepairingOutputParser
    from .pydantic_ai import instructions, repaired, repairing_function

__all__ = ["RepairingOutputParser", "instructions", "repaired", "repairing_function"]

# Each public name and the module that defines it (and imports its framework).
_HOMES = {
    "RepairingOutputParser": "langchain",
    "instructions": "pydantic_ai",
    "repaired": "pydantic_ai",
    "repairing_function": "pydantic_ai",
}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{home}"), name)
