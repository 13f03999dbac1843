"""A real local Ray for the batch engine's tests: two CPUs, started once per module and
shut down after its last test, so that Ray's processes and threads (a collector thread
among them) do not run on through the rest of the suite. One module uses it; a
``package`` scope would not do, as ``tests/batch`` is not a package and pytest then
keeps the fixture to the end of the session."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest


@pytest.fixture(scope="module")
def ray_session() -> Iterator[Any]:
    """``ray.init(num_cpus=2)`` for a module's Ray tests; skipped without Ray."""
    ray = pytest.importorskip("ray")
    pytest.importorskip("ray.data")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    context = ray.data.DataContext.get_current()
    context.enable_progress_bars = False
    try:
        yield ray
    finally:
        ray.shutdown()
