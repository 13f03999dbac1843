"""How a structured call behaves: the keywords ``generate``, ``agenerate``, ``stream``,
``astream`` and ``repairing`` share, with their defaults and their checks, in one place.

Each of those functions keeps its keyword signature (the public surface), builds one
:class:`CallOptions` from it and passes that down. What a driver is asked per request
(``max_tokens``, ``temperature`` ...) is another thing: the chat options of
:class:`repairllm.backend.ChatOptions`, passed through as they are.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from .errors import InvalidInput

if TYPE_CHECKING:
    from .policy import Policy
    from .prompts import PromptForm

__all__ = ["MODES", "CallOptions", "Mode"]

Mode = Literal["auto", "json", "tools", "prompt"]
MODES: tuple[Mode, ...] = ("auto", "json", "tools", "prompt")


@dataclass(frozen=True, kw_only=True)
class CallOptions:
    """The options of one structured call.

    The public functions use the class attributes as their defaults
    (``retries: int = CallOptions.retries``), so a default is written once, here.

    Attributes:
        retries: format retries after the first attempt, each with targeted feedback.
        policy: the repair policy (``"strict"``, ``"default"``, ``"lenient"`` or a Policy).
        native: use the server's structured mode; ``None`` uses it where the backend
            declares one, ``False`` turns it off.
        mode: how the schema is sent besides the prompt: ``"auto"`` as ``native`` says,
            ``"json"`` in the server's JSON mode (``native=True``), ``"prompt"`` in the
            prompt only (``native=False``), ``"tools"`` as one function the model is
            made to call, whose ``arguments`` are repaired (refused: the JSON mode
            unless ``native=False``, else the prompt).
        prompt_form: how the schema is shown to the model (see :mod:`repairllm.prompts`).
        continuations: how often a reply cut off at the token limit is continued.
        transient_retries: retries of timeouts, 429 and 5xx per request, with backoff.
        backoff: the first backoff in seconds (doubling, with jitter, up to 8 s).
        stop_at_value: stream each reply and stop once a complete JSON value has arrived.
    """

    retries: int = 2
    policy: Policy | str | None = None
    native: bool | None = None
    mode: Mode = "auto"
    prompt_form: PromptForm = "skeleton"
    continuations: int = 2
    transient_retries: int = 3
    backoff: float = 0.5
    stop_at_value: bool = True

    def __post_init__(self) -> None:
        from .prompts import PROMPT_FORMS

        for name in ("retries", "continuations", "transient_retries"):
            count = getattr(self, name)
            if isinstance(count, bool) or not isinstance(count, int):
                raise InvalidInput(f"{name} must be an int, not {count!r}")
        if self.retries < 0 or self.continuations < 0 or self.transient_retries < 0:
            raise InvalidInput("retries, continuations and transient_retries must be >= 0")
        backoff = self.backoff
        if isinstance(backoff, bool) or not isinstance(backoff, int | float) or not backoff >= 0:
            raise InvalidInput(f"backoff must be a number of seconds >= 0, not {backoff!r}")
        if self.prompt_form not in PROMPT_FORMS:
            raise InvalidInput(
                f"prompt_form must be one of {', '.join(PROMPT_FORMS)}, not {self.prompt_form!r}"
            )
        if self.mode not in MODES:
            raise InvalidInput(f"mode must be one of {', '.join(MODES)}, not {self.mode!r}")
        if (self.mode, self.native) in (("json", False), ("prompt", True)):
            raise InvalidInput(
                f"mode={self.mode!r} contradicts native={self.native!r}; give one of them"
            )

    @property
    def wants_native(self) -> bool | None:
        """``native`` as the mode settles it (``"json"``: on, ``"prompt"``: off)."""
        return {"json": True, "prompt": False}.get(self.mode, self.native)
