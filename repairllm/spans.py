"""OpenTelemetry for :mod:`repairllm.observe`: the API found at the first call, and what
each span says.

The API (``opentelemetry-api``, the ``otel`` extra) is imported the first time a call
asks for a tracer, never when ``repairllm`` is imported; when it is not installed
:func:`tracer` answers ``None`` and nothing else here runs. Spans follow the GenAI
semantic conventions for a client's inference call (``chat {model}`` with
``gen_ai.operation.name``, ``gen_ai.provider.name``, ``gen_ai.request.*``,
``gen_ai.response.finish_reasons``, ``gen_ai.usage.*``); the call and attempt spans
around them carry ``repairllm.*`` attributes only.
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from .backend import Backend, Completion
from .errors import NoJSONFound, RepairFailed, RetriesExhausted

__all__ = [
    "attach",
    "current",
    "detach",
    "end_request",
    "fail",
    "provider_name",
    "set_error",
    "start",
    "start_request",
    "tracer",
    "use_tracer_provider",
]

_UNSET: Any = object()
_api: Any = _UNSET  # the opentelemetry.trace module, None when not installed
_provider: Any = None
_tracer_cache: Any = None


def use_tracer_provider(provider: Any | None) -> None:
    """Send repairllm's spans to ``provider`` instead of the global tracer provider.

    For tests and for applications that keep several providers; ``None`` goes back to
    the global one (``opentelemetry.trace.set_tracer_provider``), which is otherwise
    used.
    """
    global _provider, _tracer_cache
    _provider, _tracer_cache = provider, None


def _trace() -> Any:
    """The ``opentelemetry.trace`` module, imported at first use; ``None`` without it."""
    global _api
    if _api is _UNSET:
        try:
            from opentelemetry import trace
        except ImportError:
            trace = None  # type: ignore[assignment]
        _api = trace
    return _api


def tracer() -> Any:
    """repairllm's tracer, or ``None`` when the OpenTelemetry API is not installed."""
    global _tracer_cache
    api = _trace()
    if api is None:
        return None
    if _tracer_cache is None:
        from . import __version__

        _tracer_cache = api.get_tracer("repairllm", __version__, tracer_provider=_provider)
    return _tracer_cache


def start(
    tracer: Any, name: str, parent: Any, attributes: Mapping[str, Any], *, client: bool = False
) -> Any:
    """Start a span under ``parent`` (``None``: under whatever span is current)."""
    api = _trace()
    return tracer.start_span(
        name,
        context=api.set_span_in_context(parent) if parent is not None else None,
        kind=api.SpanKind.CLIENT if client else api.SpanKind.INTERNAL,
        attributes=attributes,
    )


def attach(span: Any) -> Any:
    """Make ``span`` current until :func:`detach` is given the token this returns."""
    from opentelemetry import context

    return context.attach(_trace().set_span_in_context(span))


def detach(token: Any) -> None:
    from opentelemetry import context

    context.detach(token)


@contextmanager
def current(span: Any) -> Iterator[None]:
    """Make ``span`` the current one (so that an HTTP client's spans nest under it)."""
    with _trace().use_span(
        span, end_on_exit=False, record_exception=False, set_status_on_exception=False
    ):
        yield


_REQUEST_OPTIONS = {
    "max_tokens": "gen_ai.request.max_tokens",
    "temperature": "gen_ai.request.temperature",
    "top_p": "gen_ai.request.top_p",
    "seed": "gen_ai.request.seed",
    "stop": "gen_ai.request.stop_sequences",
}


def _same(value: Any) -> Any:
    return value


# The types the conventions give: doubles, and a list of strings.
_CONVERT: dict[str, Any] = {"temperature": float, "top_p": float, "stop": list}


def start_request(
    tracer: Any,
    parent: Any,
    backend: Backend,
    provider: str,
    options: Mapping[str, Any],
    *,
    attempt: int,
    continuation: bool,
    native: bool,
    output: str,
) -> Any:
    """The span of one backend request, ``chat {model}``, under its attempt's span.

    ``CLIENT`` for a driver that talks to a server (it has a ``base_url``), else
    ``INTERNAL`` (an in-process model), as the conventions ask.
    """
    sent = {**backend.defaults, **options}
    model = backend.model
    attributes: dict[str, Any] = {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": provider,
        "gen_ai.output.type": output,
        "repairllm.attempt": attempt,
        "repairllm.continuation": continuation,
        "repairllm.native": native,
        "repairllm.tools": "tools" in sent,
        **_server(backend),
    }
    if model:
        attributes["gen_ai.request.model"] = model
    for key, name in _REQUEST_OPTIONS.items():
        value = sent.get(key)
        if value is not None:
            attributes[name] = _CONVERT.get(key, _same)(value)
    name = f"chat {model}" if model else "chat"
    return start(tracer, name, parent, attributes, client=bool(getattr(backend, "base_url", None)))


def end_request(
    span: Any,
    backend: Backend,
    asked: str,
    reply: Completion | None,
    error: BaseException | None,
    *,
    text: bool,
) -> None:
    """End a request's span with what came back (``asked``: the model named at its start)."""
    model = backend.model
    if model and not asked:
        # Discovered by the driver during the request (the server's one model).
        span.set_attribute("gen_ai.request.model", model)
        span.update_name(f"chat {model}")
    if reply is not None:
        if reply.finish_reason is not None:
            span.set_attribute("gen_ai.response.finish_reasons", [reply.finish_reason])
        span.set_attribute("gen_ai.usage.input_tokens", reply.usage.prompt_tokens)
        span.set_attribute("gen_ai.usage.output_tokens", reply.usage.completion_tokens)
    fail(span, error, text=text)
    span.end()


def provider_name(backend: Backend) -> str:
    """``gen_ai.provider.name``: the preset an OpenAI-compatible driver was made from
    (``vllm``, ``llamacpp``, ``deepseek`` ...), else the driver's name."""
    preset = getattr(getattr(backend, "preset", None), "name", None)
    return preset if isinstance(preset, str) and preset else backend.name


def _server(backend: Backend) -> dict[str, Any]:
    """``server.address`` and ``server.port`` from the driver's ``base_url`` (host only:
    credentials in the URL never come along)."""
    url = getattr(backend, "base_url", None)
    if not isinstance(url, str) or not url:
        return {}
    split = urllib.parse.urlsplit(url if "://" in url else f"http://{url}")
    if not split.hostname:
        return {}
    try:
        port = split.port
    except ValueError:
        port = None
    port = port or (443 if split.scheme == "https" else 80)
    return {"server.address": split.hostname, "server.port": port}


# Errors whose message quotes the reply: spans get a summary unless text is on.
_QUOTING = (NoJSONFound, RepairFailed, RetriesExhausted)


def _summary(exc: BaseException) -> str:
    if isinstance(exc, RetriesExhausted):
        return f"no valid value after {len(exc.attempts)} attempt(s)"
    if isinstance(exc, RepairFailed):
        return f"repair failed with {len(exc.issues)} issue(s) left"
    return "the reply held no JSON"


def set_error(span: Any, description: str) -> None:
    api = _trace()
    span.set_status(api.Status(api.StatusCode.ERROR, description))


def fail(span: Any, exc: BaseException | None, *, text: bool) -> None:
    """Mark ``span`` as failed by ``exc``; a stream closed early is no failure, only said.

    Args:
        span: the span, not yet ended.
        exc: what ended its work, or ``None``.
        text: whether reply text may be shown (:func:`repairllm.observe.log_text`).
    """
    if exc is None:
        return
    if isinstance(exc, GeneratorExit):
        span.set_attribute("repairllm.closed_early", True)
        return
    name = type(exc).__qualname__
    span.set_attribute("error.type", name)
    if isinstance(exc, _QUOTING) and not text:
        message = _summary(exc)
        span.add_event("exception", {"exception.type": name, "exception.message": message})
    else:
        message = str(exc)
        span.record_exception(exc)
    set_error(span, f"{name}: {message}")
