"""Find and build backend drivers by name, config file or environment.

Drivers register under the entry-point group ``repairllm.backends``; the built-in
ones do so in this project's ``pyproject.toml``, so a third-party driver is a
package with one entry point and needs nothing from us. An entry point names a
:class:`~repairllm.backend.Backend` subclass or any callable that takes keyword
arguments and returns one (the presets of the openai driver are such callables).

Names are looked up as ``"{server}_{model prefix}"`` first, so a driver made for a
family of models (``"hf_smollm2"``) wins over the generic one (``"hf"``), then as
``"{server}"``. Nothing is imported until a name is picked.
"""

from __future__ import annotations

import inspect
import os
from collections.abc import Callable, Mapping
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

from .backend import Backend
from .errors import ConfigError

__all__ = ["ENV_PREFIX", "available", "connect", "load_config", "register"]

ENTRY_POINT_GROUP = "repairllm.backends"
ENV_PREFIX = "REPAIRLLM_"

Factory = Callable[..., Backend]

_registered: dict[str, Factory] = {}


def register(name: str, factory: Factory) -> None:
    """Register a driver at run time (an entry point is the lasting way).

    Args:
        name: ``"{server}"`` or ``"{server}_{model prefix}"``, lower case.
        factory: a Backend subclass or a callable returning a Backend.
    """
    if not name or not callable(factory):
        raise ConfigError(f"register() needs a name and a callable, got {name!r}, {factory!r}")
    _registered[name.lower()] = factory


def available() -> list[str]:
    """Every registered driver name, sorted."""
    names = set(_registered)
    names.update(ep.name.lower() for ep in entry_points(group=ENTRY_POINT_GROUP))
    return sorted(names)


def _load(name: str) -> Factory | None:
    if name in _registered:
        return _registered[name]
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        if ep.name.lower() == name:
            try:
                factory = ep.load()
            except ImportError as exc:
                raise ConfigError(
                    f"the backend {name!r} could not be imported ({exc}); "
                    f"install its extra, for example: pip install 'repairllm[{name.split('_')[0]}]'"
                ) from exc
            if not callable(factory):
                raise ConfigError(f"entry point {ep.value!r} for {name!r} is not callable")
            return factory  # type: ignore[no-any-return]
    return None


def resolve(server: str, model: str | None = None) -> tuple[str, Factory]:
    """Pick the driver for a server name and model: the longest matching model prefix wins.

    Raises:
        ConfigError: for an unknown name, listing the registered ones.
    """
    server = server.strip().lower()
    names = available()
    if model:
        key = _squash(Path(model).name if os.sep in model else model)
        specific = [
            n
            for n in names
            if n.startswith(server + "_") and key.startswith(_squash(n[len(server) + 1 :]))
        ]
        for name in sorted(specific, key=len, reverse=True):
            factory = _load(name)
            if factory is not None:
                return name, factory
    factory = _load(server)
    if factory is None:
        raise ConfigError(
            f"no backend named {server!r}; registered: {', '.join(names) or '(none)'}. "
            "A third-party driver registers under the entry-point group 'repairllm.backends'."
        )
    return server, factory


def _squash(text: str) -> str:
    return "".join(ch for ch in text.lower() if ch.isalnum())


def load_config(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read a YAML (or JSON) backend config: ``backend``, ``model`` and the driver's fields.

    Raises:
        ConfigError: when the file is missing, unreadable, or not a mapping.
    """
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read the config file {p}: {exc.strerror or exc}") from exc
    try:
        import yaml
    except ImportError as exc:  # pragma: no cover - the config extra is installed in CI
        raise ConfigError(
            "reading a config file needs PyYAML: pip install 'repairllm[config]'"
        ) from exc
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{p} is not valid YAML: {exc}") from exc
    if not isinstance(data, Mapping):
        raise ConfigError(f"{p} must hold a mapping of fields, not {type(data).__name__}")
    return {str(k): v for k, v in data.items()}


def _from_environment(dotenv: str | os.PathLike[str] | None) -> dict[str, Any]:
    if dotenv is not None and Path(dotenv).is_file():
        try:
            from dotenv import load_dotenv
        except ImportError as exc:  # pragma: no cover
            raise ConfigError(
                f"{dotenv} exists but python-dotenv is missing: pip install 'repairllm[config]'"
            ) from exc
        # Values already in the environment win, as with every other dotenv user.
        load_dotenv(dotenv, override=False)
    fields: dict[str, Any] = {}
    for key in ("backend", "model", "base_url", "context_length", "timeout"):
        value = os.environ.get(ENV_PREFIX + key.upper())
        if value:
            fields[key] = int(value) if key == "context_length" else value
    if "timeout" in fields:
        fields["timeout"] = float(fields["timeout"])
    return fields


def _accepts(factory: Factory, key: str) -> bool:
    try:
        params = inspect.signature(factory).parameters
    except (TypeError, ValueError):
        return True
    return key in params or any(p.kind is p.VAR_KEYWORD for p in params.values())


def connect(
    server: str | None = None,
    *,
    model: str | None = None,
    config: str | os.PathLike[str] | Mapping[str, Any] | None = None,
    dotenv: str | os.PathLike[str] | None = ".env",
    **fields: Any,
) -> Backend:
    """Build a backend driver.

    The fields come from, in rising priority: the environment (``REPAIRLLM_BACKEND``,
    ``REPAIRLLM_MODEL``, ``REPAIRLLM_BASE_URL``, ``REPAIRLLM_CONTEXT_LENGTH``,
    ``REPAIRLLM_TIMEOUT``, with a ``.env`` file loaded when present), the config
    file or mapping, then the arguments.

    Args:
        server: driver name (``"openai"``, ``"ollama"``, ``"hf"``, ``"human"``, a
            preset such as ``"vllm"`` or ``"llamacpp"``, or a third party's).
        model: model name, path or tag, as the driver expects.
        config: a YAML file or a mapping with ``backend``, ``model`` and driver fields.
        dotenv: the ``.env`` file to load; ``None`` to skip it.
        **fields: the driver's own keyword arguments (``base_url``, ``timeout`` ...).

    Raises:
        ConfigError: for an unknown name, a bad config, or a field the driver refuses.

    Example:
        >>> llm = connect("llamacpp", base_url="http://127.0.0.1:8080/v1")  # doctest: +SKIP
    """
    from_env = _from_environment(dotenv)
    merged: dict[str, Any] = dict(from_env)
    if config is not None:
        merged.update(load_config(config) if not isinstance(config, Mapping) else dict(config))
    merged.update(fields)
    if server is not None:
        merged["backend"] = server
    if model is not None:
        merged["model"] = model
    name = merged.pop("backend", None) or merged.pop("server", None)
    merged.pop("server", None)
    if not name:
        raise ConfigError(
            "no backend named: pass connect('openai', ...), a config file with 'backend:', "
            f"or set {ENV_PREFIX}BACKEND; registered: {', '.join(available())}"
        )
    _, factory = resolve(str(name), merged.get("model"))
    # Environment fields are shared by every driver; pass each only where it is taken.
    for key in list(from_env):
        if key in merged and merged[key] is from_env[key] and not _accepts(factory, key):
            del merged[key]
    try:
        backend = factory(**merged)
    except TypeError as exc:
        raise ConfigError(f"backend {name!r} refused its fields: {exc}") from exc
    if not isinstance(backend, Backend):
        raise ConfigError(f"backend {name!r} built {type(backend).__name__}, not a Backend")
    return backend
