"""Fixtures shared by the tests at every level: the in-memory span exporter of the
observability tests (tests/test_observe.py, tests/backends/test_observe_real.py), and a
spy that records what a function is called with."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    """repairllm's spans, in memory, from a provider of this test's own (the global one
    can be set once per process, so it is left alone).

    The SDK is imported here, not at the top: every test loads this file, and only
    the tests that ask for spans need the SDK.
    """
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    from repairllm import observe

    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    observe.use_tracer_provider(provider)
    yield exporter
    observe.use_tracer_provider(None)
    provider.shutdown()


@pytest.fixture
def first_args(monkeypatch: pytest.MonkeyPatch) -> Callable[[Any, str], list[Any]]:
    """``first_args(owner, name)`` swaps ``owner.name`` for itself, recording each call's
    first argument, for this test; returns the list the calls go into."""

    def spy(owner: Any, name: str) -> list[Any]:
        calls: list[Any] = []
        real = getattr(owner, name)

        def recording(first: Any, *args: Any, **kwargs: Any) -> Any:
            calls.append(first)
            return real(first, *args, **kwargs)

        monkeypatch.setattr(owner, name, recording)
        return calls

    return spy
