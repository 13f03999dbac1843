"""What a ``bench model`` run measures: targets, each one model on one or several servers.

A target is written ``[NAME=]BACKEND[:MODEL][@URL[,URL...]]``::

    llamacpp@http://127.0.0.1:8080/v1,http://127.0.0.1:8081/v1   one model, two servers
    ollama:qwen2.5:0.5b                                         the driver's default address
    small=openai:smollm2@http://gpu-1:8000/v1                    a name for its card
    hf                                                          the embedded SmolLM2

The model is everything between the first ``:`` and the ``@`` (Ollama's tags keep their
own ``:``); the servers are the comma-separated addresses after the ``@``, each with its
scheme. Each target gives one report card; its tasks are fanned out over its servers.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ..batch.generate import Endpoint
from ..errors import ConfigError

__all__ = ["Target", "endpoints_for", "parse_target"]

FORM = "[NAME=]BACKEND[:MODEL][@URL[,URL...]]"
_EXAMPLE = "e.g. small=llamacpp@http://127.0.0.1:8080/v1,http://127.0.0.1:8081/v1"
_WORD = re.compile(r"[A-Za-z0-9_.-]+")
_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://\S+")
#: The driver ``bench model`` measures when nothing names one: SmolLM2-135M-Instruct,
#: in-process through transformers. (llama.cpp's repetition penalty of 1.1 was tried
#: on it: it breaks the JSON punctuation a schema answer must repeat: of the first two
#: tasks, one was valid without it and none with it.)
DEFAULT_BACKEND = "hf"


@dataclass(frozen=True)
class Target:
    """One model to measure, on one or several servers.

    Attributes:
        backend: the driver's name; ``None``: a config file's, else :data:`DEFAULT_BACKEND`.
        model: the model name, tag or path; ``None``: the driver's default.
        urls: the servers' addresses; empty: the driver's default (or none, in-process).
        label: the name of its card and of its column in the comparison.
    """

    backend: str | None = None
    model: str | None = None
    urls: tuple[str, ...] = ()
    label: str | None = None

    def __post_init__(self) -> None:
        # The drivers drop a trailing "/": ".../v1" and ".../v1/" are one server.
        if len({url.rstrip("/") for url in self.urls}) != len(self.urls):
            raise ConfigError(
                f"{self.describe()} names a server twice; give each address once "
                "(--concurrency lets one server take several tasks at a time)"
            )

    def describe(self) -> str:
        """The target as it would be written with ``--target``."""
        text = self.backend or DEFAULT_BACKEND
        if self.label:
            text = f"{self.label}={text}"
        if self.model:
            text += f":{self.model}"
        if self.urls:
            text += "@" + ",".join(self.urls)
        return text


def _refuse(text: str, why: str) -> ConfigError:
    return ConfigError(f"--target {text!r}: {why}; the form is {FORM}, {_EXAMPLE}")


def parse_target(text: str) -> Target:
    """Read one ``--target`` (see the module's docstring for the form).

    Raises:
        ConfigError: naming what is wrong, with the form and an example.
    """
    rest = text.strip()
    label: str | None = None
    name, eq, after = rest.partition("=")
    if eq and not re.search(r"[:@]", name):
        if not _WORD.fullmatch(name):
            raise _refuse(text, "a NAME is letters, digits, '.', '_' or '-'")
        label, rest = name, after
    spec, at, servers = rest.partition("@")
    urls: tuple[str, ...] = ()
    if at:
        urls = tuple(u.strip() for u in servers.split(","))
        for url in urls:
            if not _URL.fullmatch(url):
                raise _refuse(
                    text,
                    f"{url!r} is not a server address (one starts with its scheme, http://)",
                )
    backend, colon, model = spec.partition(":")
    if not _WORD.fullmatch(backend):
        raise _refuse(text, "it starts with a driver's name (llamacpp, openai, ollama, hf ...)")
    if colon and not model.strip():
        raise _refuse(text, "the model after ':' is empty")
    return Target(backend, model.strip() or None, urls, label)


def endpoints_for(
    target: Target,
    *,
    config: str | None = None,
    fields: Mapping[str, Any] | None = None,
    concurrency: Sequence[int] = (1,),
) -> list[Endpoint]:
    """Connect to each of the target's servers.

    Args:
        target: the model and its servers.
        config: a YAML backend config file, for every server.
        fields: driver fields (``--set``), for every server.
        concurrency: tasks in flight per server: one value for all, or one per server.

    Raises:
        ConfigError: when the concurrency values do not match the servers, or the
            driver refuses the fields.
    """
    from ..registry import connect

    urls: list[str | None] = list(target.urls) or [None]
    limits = list(concurrency)
    if len(limits) == 1:
        limits = limits * len(urls)
    if len(limits) != len(urls):
        raise ConfigError(
            f"{len(limits)} --concurrency values for {len(urls)} servers of "
            f"{target.describe()}; give one for all or one per server"
        )
    # As `repairllm bench model` always did: a config file may name the driver; with
    # neither, the embedded model.
    server = target.backend if target.backend is not None or config is not None else DEFAULT_BACKEND
    endpoints: list[Endpoint] = []
    try:
        for url, limit in zip(urls, limits, strict=True):
            extra = dict(fields or {})
            if url is not None:
                extra["base_url"] = url
            backend = connect(server, model=target.model, config=config, **extra)
            endpoints.append(Endpoint(backend, limit, name=url or ""))
    except BaseException:
        for endpoint in endpoints:
            endpoint.backend.close()
        raise
    return endpoints
