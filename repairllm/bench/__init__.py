"""Benchmarks of repairllm, run as ``repairllm bench ...``.

Nothing here is imported by ``import repairllm``: the benchmarks pull in optional
dependencies (rich, matplotlib, the baseline parsers), each inside the function
that needs it.
"""

from __future__ import annotations
