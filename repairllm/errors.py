"""Every exception repairllm raises, in one tree.

::

    RepairLLMError
    ├── InvalidInput (also TypeError)      the caller passed something that is not text
    ├── SchemaError (also ValueError)      the schema itself is unusable
    ├── NoJSONFound                        nothing in the text looks like JSON
    ├── RepairFailed                       candidates found, none became a valid value
    │   ├── AmbiguousRepair                several different valid values, policy says fail
    │   └── ItemFailed                     one element of a list read item by item is invalid
    ├── RetriesExhausted                   a structured call ran out of attempts
    ├── HookError                          a callback passed as hooks= raised
    ├── BackendError                       a model backend failed
    │   ├── BackendUnreachable             connection refused, DNS, server gone
    │   ├── BackendTimeout                 no answer within the timeout
    │   ├── BackendStatusError             HTTP error status, with the body
    │   ├── BadResponse                    the backend answered something malformed
    │   ├── ContextTooLong                 the prompt does not fit the context window
    │   └── MissingKey                     an API key's environment variable is unset
    └── ConfigError                        a backend name, config file or option is wrong

Every error carries structured attributes (``raw``, ``issues``, ``ledger``,
``attempts`` ...) besides its message, and the message says what to do.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .ledger import Issue, Ledger
    from .outcome import Outcome

__all__ = [
    "AmbiguousRepair",
    "BackendError",
    "BackendStatusError",
    "BackendTimeout",
    "BackendUnreachable",
    "BadResponse",
    "ConfigError",
    "ContextTooLong",
    "HookError",
    "InvalidInput",
    "ItemFailed",
    "MissingKey",
    "NoJSONFound",
    "RepairFailed",
    "RepairLLMError",
    "RetriesExhausted",
    "SchemaError",
]


def _snippet(text: str, limit: int = 120) -> str:
    text = text.strip()
    if len(text) <= limit:
        return repr(text)
    half = limit // 2
    return repr(text[:half] + " … " + text[-half:])


class RepairLLMError(Exception):
    """The root of every error repairllm raises."""


class InvalidInput(RepairLLMError, TypeError):
    """The caller passed something that is not text (or bytes holding UTF-8 text)."""


class SchemaError(RepairLLMError, ValueError):
    """The schema given is not usable: not a schema, an invalid one, or an unresolvable ``$ref``.

    Attributes:
        schema: the offending schema (or the part of it that failed).
    """

    def __init__(self, message: str, schema: Any = None) -> None:
        super().__init__(message)
        self.schema = schema


class NoJSONFound(RepairLLMError):
    """No candidate JSON value was found in the text.

    Attributes:
        raw: the text that was searched.
    """

    def __init__(self, raw: str) -> None:
        self.raw = raw
        super().__init__(
            f"no JSON value found in the text ({len(raw)} characters: {_snippet(raw)}); "
            "the reply holds no object, array or literal, so ask the model again "
            "and tell it to answer with JSON only"
        )


class RepairFailed(RepairLLMError):
    """Candidates were found but none could be repaired into a valid value.

    Attributes:
        raw: the text that was repaired.
        best: the most promising candidate's outcome (``None`` when no candidate even parsed).
        issues: what is still wrong with the best candidate.
        ledger: the changes made to the best candidate.
        reasons: one line per candidate tried, saying why it was rejected.
    """

    def __init__(
        self,
        raw: str,
        best: Outcome | None = None,
        reasons: Sequence[str] = (),
        message: str | None = None,
    ) -> None:
        self.raw = raw
        self.best = best
        self.reasons = list(reasons)
        self.issues: list[Issue] = list(best.issues) if best is not None else []
        self.ledger: Ledger | list[Any] = best.ledger if best is not None else []
        if message is None:
            message = self._describe()
        super().__init__(message)

    def _describe(self) -> str:
        if self.best is not None and self.issues:
            shown = "; ".join(str(issue) for issue in self.issues[:5])
            more = f" (and {len(self.issues) - 5} more)" if len(self.issues) > 5 else ""
            return (
                f"repaired JSON is still invalid: {shown}{more}; "
                "retry the model with these issues as feedback, or relax the policy"
            )
        if self.best is not None:
            return f"the repaired value was refused: {'; '.join(self.reasons[:3])}"
        why = "; ".join(self.reasons[:3]) or "no candidate could be parsed"
        return f"could not repair the text into JSON ({why}); text was {_snippet(self.raw)}"


class AmbiguousRepair(RepairFailed):
    """Several candidates repaired into different valid values at the same cost.

    Raised only when the policy's ``on_ambiguity`` is ``"fail"``.

    Attributes:
        outcomes: the competing outcomes, best first.
    """

    def __init__(self, raw: str, outcomes: Sequence[Outcome]) -> None:
        self.outcomes = list(outcomes)
        values = ", ".join(_snippet(repr(o.value), 60) for o in self.outcomes[:3])
        super().__init__(
            raw,
            best=self.outcomes[0],
            message=(
                f"{len(self.outcomes)} candidates give different valid values at the same cost "
                f"({values}); pass a schema that tells them apart, or use on_ambiguity='first'"
            ),
        )


class ItemFailed(RepairFailed):
    """One element of a list read item by item could not be made valid, or was cut off.

    Raised by ``stream_items`` and its kin with ``on_invalid="raise"``; with the
    default ``"yield"`` the same element comes as a record and the stream goes on.

    Attributes:
        index: the element's position in the list.
        best: the element as read and aligned (``.data``; ``None`` when it was cut
            off), with its ``.issues`` and ``.ledger`` (pointers are the whole
            reply's: ``/3/name``).
    """

    def __init__(self, raw: str, index: int, best: Outcome | None, message: str) -> None:
        self.index = index
        super().__init__(raw, best, message=message)


class RetriesExhausted(RepairLLMError):
    """A structured call used all its attempts without a valid value.

    Attributes:
        attempts: every attempt made, in order.
        best: the best value seen (may be invalid), or ``None``.
    """

    def __init__(self, attempts: Sequence[Any], best: Any = None, message: str = "") -> None:
        self.attempts = list(attempts)
        self.best = best
        super().__init__(
            message or f"no valid value after {len(self.attempts)} attempts; see .attempts"
        )


class HookError(RepairLLMError):
    """A callback passed as ``hooks=`` raised, and the call stopped there.

    Attributes:
        hook: which one (``"on_request"``, ``"on_repair"``, ``"on_attempt"``,
            ``"on_retry"``); the hook's own exception is the ``__cause__``.
        attempts: the attempts made until then.
    """

    def __init__(self, hook: str, error: BaseException, attempts: Sequence[Any] = ()) -> None:
        self.hook = hook
        self.attempts = list(attempts)
        super().__init__(
            f"the {hook} hook raised {type(error).__name__}: {error}; the call stopped "
            "there (the hook's exception is this error's __cause__)"
        )


class BackendError(RepairLLMError):
    """A model backend failed.

    Attributes:
        backend: the driver's name.
        transient: whether retrying the same request may succeed.
    """

    transient = False

    def __init__(self, message: str, backend: str = "") -> None:
        self.backend = backend
        prefix = f"[{backend}] " if backend else ""
        super().__init__(prefix + message)


class BackendUnreachable(BackendError):
    """The backend could not be reached (connection refused, name not found, server gone).

    Attributes:
        dropped: the server was reached but closed the connection mid-request.
    """

    transient = True
    dropped = False


class BackendTimeout(BackendError):
    """The backend did not answer within the timeout."""

    transient = True


class BackendStatusError(BackendError):
    """The backend answered with an HTTP error status.

    Attributes:
        status: the HTTP status code.
        body: the response body (truncated to 2,000 characters).
    """

    def __init__(self, message: str, backend: str = "", status: int = 0, body: str = "") -> None:
        self.status = status
        self.body = body[:2000]
        self.transient = status == 429 or status >= 500
        super().__init__(message, backend)


class BadResponse(BackendError):
    """The backend answered, but not in the shape its API documents."""


class ContextTooLong(BackendError):
    """The prompt does not fit the model's context window.

    Attributes:
        n_tokens: tokens the prompt needs (with the room reserved for the reply).
        limit: the context length.
    """

    def __init__(self, n_tokens: int, limit: int, backend: str = "") -> None:
        self.n_tokens = n_tokens
        self.limit = limit
        super().__init__(
            f"the prompt needs {n_tokens} tokens but the context holds {limit}; "
            "shorten the prompt or lower max_tokens",
            backend,
        )


class MissingKey(BackendError):
    """An API key is needed and its environment variable is not set.

    Attributes:
        env_var: the variable to set.
    """

    def __init__(self, env_var: str, backend: str = "") -> None:
        self.env_var = env_var
        super().__init__(f"no API key: set the environment variable {env_var}", backend)


class ConfigError(RepairLLMError):
    """A backend name, configuration file or option is wrong."""
