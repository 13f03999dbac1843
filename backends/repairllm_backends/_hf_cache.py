"""Loading weights for the hf driver, and the cache of dequantized GGUF files.

transformers dequantizes a ``.gguf`` file on load, which takes seconds, and cannot
``save_pretrained`` a model it read from GGUF. So the first load writes the
dequantized weights (safetensors), config and tokenizer to a cache directory keyed
by the file's path, size and modification time; later loads read that directory
as an ordinary model directory, several times faster.

Nothing here translates exceptions: the driver (:mod:`repairllm_backends.hf`) does,
in its one place for that.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import importlib
import importlib.util
import json
import os
import shutil
import tempfile
import threading
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from repairllm.errors import ConfigError

if TYPE_CHECKING:
    import torch

__all__ = [
    "INSTALL_HINT",
    "LOAD_LOCK",
    "Weights",
    "apply_lora",
    "cache_entry",
    "cache_root",
    "load_weights",
    "need",
    "quiet_progress",
]

INSTALL_HINT = "pip install 'repairllm[hf]'"

_CACHE_FORMAT = 1
"""Bump when the cache layout changes, so old entries are ignored rather than misread."""
_CACHE_MARKER = "repairllm-cache.json"
_WEIGHTS = "model.safetensors"

LOAD_LOCK = threading.Lock()
"""Loading and tqdm patching touch process-wide state; one load at a time."""


def need(module: str, what: str) -> None:
    """Fail with the install hint when ``module`` is not installed."""
    if importlib.util.find_spec(module) is None:
        raise ConfigError(
            f"the hf driver needs {module} for {what}; install it with: {INSTALL_HINT}"
        )


def cache_root(cache_dir: str | os.PathLike[str] | None = None) -> Path:
    """Where converted GGUF models are cached.

    Args:
        cache_dir: an explicit directory; it wins.

    Returns:
        ``cache_dir``, else ``$REPAIRLLM_CACHE/hf``, else ``~/.cache/repairllm/hf``.
    """
    if cache_dir is not None:
        return Path(cache_dir).expanduser()
    env = os.environ.get("REPAIRLLM_CACHE")
    base = Path(env).expanduser() if env else Path.home() / ".cache" / "repairllm"
    return base / "hf"


def cache_entry(
    gguf: str | os.PathLike[str], cache_dir: str | os.PathLike[str] | None = None
) -> Path:
    """The cache directory that holds (or will hold) a GGUF file's converted model.

    Its name hashes the file's resolved path, size and modification time and the
    transformers version, so a changed file or converter never reads a stale entry.
    Deleting the directory is always safe.

    Args:
        gguf: the ``.gguf`` file.
        cache_dir: as for :func:`cache_root`.

    Raises:
        ConfigError: when the file cannot be read.
    """
    import transformers

    path = Path(gguf).expanduser()
    try:
        stat = path.stat()
    except OSError as exc:
        raise ConfigError(f"cannot read the model {path}: {exc.strerror or exc}") from exc
    ident = f"{path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}|{transformers.__version__}"
    digest = hashlib.sha256(ident.encode()).hexdigest()[:16]
    return cache_root(cache_dir) / f"{path.stem}-{digest}"


@contextlib.contextmanager
def quiet_progress() -> Iterator[None]:
    """Silence transformers' progress bars while loading: the library never prints.

    The GGUF dequantizer uses ``tqdm`` directly rather than transformers' switch, so
    its module-level name is swapped for a disabled one for the duration.
    """
    from transformers.utils import logging as hf_logging

    was_enabled = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()  # type: ignore[no-untyped-call, unused-ignore]
    gguf_utils = importlib.import_module("transformers.modeling_gguf_pytorch_utils")
    original = getattr(gguf_utils, "tqdm", None)
    if original is not None:
        gguf_utils.tqdm = functools.partial(original, disable=True)  # type: ignore[attr-defined]
    try:
        yield
    finally:
        if original is not None:
            gguf_utils.tqdm = original  # type: ignore[attr-defined]
        if was_enabled:
            hf_logging.enable_progress_bar()  # type: ignore[no-untyped-call, unused-ignore]


@dataclass(frozen=True)
class Weights:
    """A loaded tokenizer and model, and where a GGUF model's cache entry lies.

    Attributes:
        tokenizer: the tokenizer.
        model: the model, on the device it was asked for.
        cache_path: the cache entry of a GGUF model (``None`` for a model directory).
        from_cache: whether a GGUF was read from the conversion cache.
    """

    tokenizer: Any
    model: Any
    cache_path: Path | None = None
    from_cache: bool = False


def load_weights(
    model: str,
    path: Path,
    model_class: Any,
    tokenizer_class: Any,
    *,
    dtype: torch.dtype,
    device: torch.device,
    cache_dir: str | os.PathLike[str] | None,
) -> Weights:
    """Load a model directory, a Hub id or a ``.gguf`` file (through the cache) onto ``device``.

    Args:
        model: the model as the caller named it (a directory, a Hub id, a file).
        path: ``model`` as a path, user directory expanded.
        model_class: the class whose ``from_pretrained`` reads the model.
        tokenizer_class: the class whose ``from_pretrained`` reads the tokenizer.
        dtype: the dtype the model runs in.
        device: where the model runs.
        cache_dir: as for :func:`cache_root`.

    Raises:
        whatever transformers raises; the driver translates it.
    """
    if path.suffix.lower() == ".gguf":
        weights = _load_gguf(path, model_class, tokenizer_class, dtype, cache_dir)
    else:
        weights = Weights(
            tokenizer_class.from_pretrained(model),
            model_class.from_pretrained(model, dtype=dtype),
        )
    return Weights(
        weights.tokenizer, weights.model.to(device), weights.cache_path, weights.from_cache
    )


def _load_gguf(
    path: Path,
    model_class: Any,
    tokenizer_class: Any,
    dtype: torch.dtype,
    cache_dir: str | os.PathLike[str] | None,
) -> Weights:
    import torch

    entry = cache_entry(path, cache_dir)
    if (entry / _CACHE_MARKER).is_file():
        loaded = _load_cached(entry, model_class, tokenizer_class, dtype)
        if loaded is not None:
            tokenizer, model = loaded
            return Weights(tokenizer, model, entry, from_cache=True)
    need("gguf", "reading .gguf files")
    need("accelerate", "reading .gguf files")
    where, name = str(path.parent), path.name
    tokenizer = tokenizer_class.from_pretrained(where, gguf_file=name)
    # Dequantized weights are float32; cache them as such and cast afterwards, so
    # one cache entry serves every dtype.
    model = model_class.from_pretrained(where, gguf_file=name, dtype=torch.float32)
    _write_cache(entry, path, model, tokenizer)
    return Weights(tokenizer, model.to(dtype), entry)


def _load_cached(
    entry: Path, model_class: Any, tokenizer_class: Any, dtype: torch.dtype
) -> tuple[Any, Any] | None:
    """Read a cache entry; ``None`` when it is unusable, so the caller converts again."""
    try:
        marker = json.loads((entry / _CACHE_MARKER).read_text(encoding="utf-8"))
        if marker.get("format") != _CACHE_FORMAT:
            return None
        tokenizer = tokenizer_class.from_pretrained(str(entry))
        model, info = model_class.from_pretrained(str(entry), dtype=dtype, output_loading_info=True)
    except Exception:  # a cache is disposable: any damage means convert again
        return None
    # Tied weights (lm_head = embed_tokens) are saved once; anything else missing
    # means the entry does not match this model class.
    if info.get("missing_keys") or info.get("unexpected_keys"):
        return None
    return tokenizer, model


def _write_cache(entry: Path, source: Path, model: Any, tokenizer: Any) -> None:
    """Write the converted model next to ``entry`` and move it into place in one rename.

    Another process may convert the same file at the same time: whoever renames
    first wins and the other's copy is dropped. A cache that cannot be written
    (read-only home) only costs the next load its speed.
    """
    from safetensors.torch import save_file

    try:
        entry.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=entry.name + ".", dir=entry.parent))
    except OSError:
        return
    try:
        seen: set[int] = set()
        tensors: dict[str, torch.Tensor] = {}
        for key, tensor in model.state_dict().items():
            # Tied parameters share storage; safetensors refuses aliases, and
            # from_pretrained re-ties them from tie_word_embeddings.
            ptr = tensor.untyped_storage().data_ptr()
            if ptr in seen:
                continue
            seen.add(ptr)
            tensors[key] = tensor.detach().contiguous()
        save_file(tensors, str(tmp / _WEIGHTS), metadata={"format": "pt"})
        model.config.save_pretrained(str(tmp))
        if model.generation_config is not None:
            model.generation_config.save_pretrained(str(tmp))
        tokenizer.save_pretrained(str(tmp))
        stat = source.stat()
        marker = {
            "format": _CACHE_FORMAT,
            "source": str(source.resolve()),
            "size": stat.st_size,
            "mtime_ns": stat.st_mtime_ns,
        }
        (tmp / _CACHE_MARKER).write_text(json.dumps(marker, indent=2), encoding="utf-8")
        if entry.exists():
            shutil.rmtree(entry, ignore_errors=True)
        os.replace(tmp, entry)
    except OSError:
        pass
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def apply_lora(model: Any, lora_path: Path) -> Any:
    """Apply the PEFT adapter at ``lora_path`` and merge it into the weights.

    Raises:
        ConfigError: when there is no adapter there, or peft is not installed;
            whatever peft raises otherwise (the driver translates it).
    """
    if not (lora_path / "adapter_config.json").is_file():
        raise ConfigError(
            f"no PEFT adapter at {lora_path} (adapter_config.json is missing); "
            "pass the directory that save_pretrained wrote"
        )
    need("peft", "LoRA adapters")
    from peft import PeftModel

    with warnings.catch_warnings():
        # peft (0.15) reads a property transformers 5 deprecated; nothing the
        # caller can act on.
        warnings.filterwarnings(
            "ignore", message=".*is_gradient_checkpointing", category=FutureWarning
        )
        peft_model = PeftModel.from_pretrained(model, str(lora_path))
    # Merging removes the adapter's per-step overhead; nothing unloads it later.
    return peft_model.merge_and_unload()
