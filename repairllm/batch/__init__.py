"""Batch repair (and generation) of many stored replies: ``repairllm batch``.

Two engines over one row function (:class:`Repairer`), so they agree row for row:

- local: :func:`repair_file` (a file, in chunks, constant memory, resumable) and
  :func:`repair_iter` (any iterable of replies, lazily);
- Ray Data: :func:`repair_dataset` (a Ray Dataset in, a Ray Dataset out, for your own
  pipelines) and :func:`repair_file_ray` (a file, on a local Ray or a cluster).

Every input row gives exactly one output row, in input order, whatever is wrong with
it; the columns are listed in :mod:`repairllm.batch.records`. Ray and pyarrow are
imported only by the Ray functions (``pip install 'repairllm[ray]'``); ``import
repairllm`` never loads this package.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .files import ResumePoint
from .local import BatchInterrupted, repair_file, repair_iter
from .records import COLUMNS, ERROR_KINDS, Repairer, RepairSpec
from .summary import Summary

if TYPE_CHECKING:
    from .ray_engine import (
        PoolPlan,
        RepairWorker,
        plan_pool,
        read_dataset,
        repair_dataset,
        repair_file_ray,
    )

__all__ = [
    "COLUMNS",
    "ERROR_KINDS",
    "BatchInterrupted",
    "PoolPlan",
    "RepairSpec",
    "RepairWorker",
    "Repairer",
    "ResumePoint",
    "Summary",
    "plan_pool",
    "read_dataset",
    "repair_dataset",
    "repair_file",
    "repair_file_ray",
    "repair_iter",
]

_RAY = {
    "PoolPlan",
    "RepairWorker",
    "plan_pool",
    "read_dataset",
    "repair_dataset",
    "repair_file_ray",
}


def __getattr__(name: str) -> Any:
    # The Ray side is imported on first use: Ray takes seconds to import.
    if name in _RAY:
        from . import ray_engine

        return getattr(ray_engine, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
