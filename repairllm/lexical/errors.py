"""The lexical stage's internal exceptions.

None of them leaves the library: the pipeline reads them to choose what to try next
(another candidate, a cut candidate, json-repair) and raises its own errors at the end.
Only :func:`too_deep` builds a public error, for a limit that is not a parse failure.
"""

from __future__ import annotations

from ..errors import RepairFailed
from ..policy import Policy


class LexicalError(Exception):
    """Internal: a candidate could not be parsed (the pipeline tries the next candidate)."""


class TrailingText(LexicalError):
    """Internal: a complete value is followed by text that is not JSON (extraction's job)."""


class TrailingProse(LexicalError):
    """Internal: an unclosed value runs into prose at ``at``; the JSON ends before it.

    The extraction took too much (a span missing its closer runs to the end of the
    reply); the pipeline retries the candidate cut at ``at``.
    """

    def __init__(self, at: int) -> None:
        super().__init__(f"prose after an unclosed value at offset {at}")
        self.at = at


class LastResort(LexicalError):
    """Internal: our own tiers failed and json-repair may still try (see ``lexical.parse``)."""


class NotJSON(LexicalError):
    """Internal: the candidate does not even start like a JSON value (prose, say)."""


def too_deep(text: str, policy: Policy) -> RepairFailed:
    return RepairFailed(
        text,
        message=(
            f"the JSON nests deeper than the limit of {policy.max_depth} levels; "
            "no model output needs this much, so the text is refused rather than parsed"
        ),
    )


def integer_too_long(text: str) -> RepairFailed:
    import sys

    limit = sys.get_int_max_str_digits()
    return RepairFailed(
        text,
        message=(
            f"the JSON holds an integer of more than {limit} digits, which Python cannot "
            "read exactly at its current limit; the text is refused rather than the number "
            "changed (sys.set_int_max_str_digits raises the limit)"
        ),
    )


def number_out_of_range(text: str) -> RepairFailed:
    return RepairFailed(
        text,
        message=(
            "the JSON holds a number beyond the range of a double (such as 1e999); "
            "it would read as infinity, which is not JSON, so the text is refused"
        ),
    )
