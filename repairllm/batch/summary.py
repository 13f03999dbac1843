"""What a batch did, in numbers: rows, how many ok, per rule, per error kind, speed."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Summary"]


@dataclass
class Summary:
    """Counts over output rows; :meth:`as_dict` is the summary JSON file.

    Attributes:
        rows: output rows counted (one per input row).
        ok: rows holding a valid value.
        truncated: rows whose value was completed from a cut-off reply.
        bytes: reply bytes read (of the rows that had a reply).
        by_error: rows per error kind.
        by_rule: rows on which each rule was applied at least once.
        applications: how often each rule was applied, over all rows.
        seconds: wall time of this run (a resumed run counts only its own time).
        resumed_rows: rows that an earlier, interrupted run had written already.
        duplicates_dropped: rows the engine delivered twice (a retried Ray task) and
            the writer dropped; each row is still written exactly once.
    """

    rows: int = 0
    ok: int = 0
    truncated: int = 0
    bytes: int = 0
    by_error: Counter[str] = field(default_factory=Counter)
    by_rule: Counter[str] = field(default_factory=Counter)
    applications: Counter[str] = field(default_factory=Counter)
    seconds: float = 0.0
    resumed_rows: int = 0
    duplicates_dropped: int = 0
    _started: float = field(default_factory=time.perf_counter, repr=False)

    def add(self, row: Mapping[str, Any]) -> None:
        """Count one output row."""
        self.rows += 1
        if row["ok"]:
            self.ok += 1
        else:
            self.by_error[row["error"]] += 1
        if row["truncated"]:
            self.truncated += 1
        self.bytes += row["bytes"] or 0
        rules = row["rules"]
        if rules:
            self.applications.update(rules)
            self.by_rule.update(set(rules))

    def add_all(self, rows: Iterable[Mapping[str, Any]]) -> None:
        """Count every row of ``rows``."""
        for row in rows:
            self.add(row)

    def stop(self) -> None:
        """Fix the wall time at now."""
        self.seconds = time.perf_counter() - self._started

    @property
    def failed(self) -> int:
        return self.rows - self.ok

    def as_dict(self, **extra: Any) -> dict[str, Any]:
        """The summary as JSON-ready data; ``extra`` keys (input, output, engine) go first."""
        seconds = self.seconds or time.perf_counter() - self._started
        fresh_rows = self.rows - self.resumed_rows
        return {
            **extra,
            "rows": self.rows,
            "ok": self.ok,
            "failed": self.failed,
            "ok_rate": round(self.ok / self.rows, 6) if self.rows else None,
            "truncated": self.truncated,
            "by_error": dict(self.by_error.most_common()),
            "by_rule": dict(self.by_rule.most_common()),
            "rule_applications": dict(self.applications.most_common()),
            "bytes": self.bytes,
            "seconds": round(seconds, 3),
            "rows_per_second": round(fresh_rows / seconds, 1) if seconds > 0 else None,
            "mb_per_second": (round(self._fresh_bytes / seconds / 1e6, 3) if seconds > 0 else None),
            "resumed_rows": self.resumed_rows,
            "duplicates_dropped": self.duplicates_dropped,
        }

    # Bytes of rows counted before this run began (set by a resume), so that the speed
    # is that of this run alone.
    _resumed_bytes: int = field(default=0, repr=False)

    @property
    def _fresh_bytes(self) -> int:
        return self.bytes - self._resumed_bytes

    def mark_resumed(self) -> None:
        """Say that every row counted so far was written by an earlier run."""
        self.resumed_rows = self.rows
        self._resumed_bytes = self.bytes
