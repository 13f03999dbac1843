"""LangChain: an output parser that repairs the reply instead of failing on it.

:class:`RepairingOutputParser` stands where ``PydanticOutputParser`` (which fails on a
single quote, a trailing comma or ``"30"`` for an integer) or ``OutputFixingParser``
(which spends a second model call on them) would, in an LCEL chain::

    parser = RepairingOutputParser(Person)
    prompt = ChatPromptTemplate.from_messages(
        [("system", "{format}"), ("human", "{text}")]
    ).partial(format=parser.get_format_instructions())
    person = (prompt | llm | parser).invoke({"text": "Alice Smith is 31."})

It runs repairllm's pipeline on the reply (extract, lexical, align, validate: no model
call) and returns the validated value. A reply repair cannot save raises LangChain's
``OutputParserException``, so LangChain's own remedies (``RetryWithErrorOutputParser``,
an agent's ``handle_parsing_errors``) still apply, now with the issues by JSON pointer
in the message, the reply in ``llm_output``, the feedback a retry would send in
``observation``, and repairllm's error (``.best``, ``.issues``, ``.ledger``) as the cause.

Streamed (``chain.stream``), the reply is read by repairllm's incremental parser, each
character once: the parser yields partial JSON values, aligned to the schema, as fields
complete, and last the validated value.

Importing this module imports langchain-core (``pip install 'repairllm[langchain]'``);
``import repairllm`` and ``import repairllm.adapters`` do not.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any, Literal, TypeVar, overload

from ..errors import ConfigError, RepairFailed, RepairLLMError
from ..outcome import Outcome
from ..policy import Policy
from ..prompts import PromptForm
from ..stream import _Streamer
from ._shared import Repairer

try:
    from langchain_core.exceptions import OutputParserException
    from langchain_core.messages import BaseMessage
    from langchain_core.output_parsers import BaseTransformOutputParser
    from langchain_core.outputs import ChatGeneration, Generation
    from pydantic import ConfigDict, PrivateAttr
except ImportError as exc:  # pragma: no cover - the message is the point
    raise ConfigError(
        f"the LangChain adapter needs langchain-core: pip install 'repairllm[langchain]' ({exc})"
    ) from exc

__all__ = ["RepairingOutputParser"]

T = TypeVar("T")


class RepairingOutputParser(BaseTransformOutputParser[T]):  # type: ignore[misc, unused-ignore]
    """A LangChain output parser that repairs the model's reply into a validated value.

    Args:
        schema: a pydantic model, a type such as ``list[int]``, a JSON Schema dict, or
            ``None`` for any JSON value.
        policy: a :class:`~repairllm.Policy` or a preset name (``"strict"``,
            ``"default"``, ``"lenient"``): which repairs are allowed.
        prompt_form: how :meth:`get_format_instructions` shows the schema (see
            :mod:`repairllm.prompts`): ``"skeleton"``, ``"keys"``, ``"schema"`` or ``"none"``.
        outcome: return repairllm's :class:`~repairllm.Outcome` (value, ledger, issues)
            instead of the value alone, so a chain can keep the ledger.

    Raises:
        SchemaError: the schema is unusable (at construction, not at the first reply).
        ConfigError: the policy or the prompt form is unknown.
    """

    target: Any = None
    """The schema as given: a pydantic model, a type, a JSON Schema dict, or ``None``."""
    policy: Any = None
    """The policy as given (a :class:`~repairllm.Policy`, a preset name or ``None``)."""
    prompt_form: str = "skeleton"
    """How the format instructions show the schema."""
    outcome: bool = False
    """Whether parsing returns the :class:`~repairllm.Outcome` rather than the value."""

    _repairer: Repairer = PrivateAttr()

    # The fields are compiled once, at construction: an assignment would leave the
    # compiled schema and policy behind, so there is none.
    model_config = ConfigDict(frozen=True)

    @overload
    def __init__(
        self: RepairingOutputParser[Outcome],
        schema: Any = ...,
        *,
        policy: Policy | str | None = ...,
        prompt_form: PromptForm = ...,
        outcome: Literal[True],
        **kwargs: Any,
    ) -> None: ...
    @overload
    def __init__(
        self: RepairingOutputParser[T],
        schema: type[T],
        *,
        policy: Policy | str | None = ...,
        prompt_form: PromptForm = ...,
        outcome: Literal[False] = ...,
        **kwargs: Any,
    ) -> None: ...
    @overload
    def __init__(
        self: RepairingOutputParser[Any],
        schema: Any = ...,
        *,
        policy: Policy | str | None = ...,
        prompt_form: PromptForm = ...,
        outcome: bool = ...,
        **kwargs: Any,
    ) -> None: ...

    def __init__(
        self,
        schema: Any = None,
        *,
        policy: Policy | str | None = None,
        prompt_form: PromptForm = "skeleton",
        outcome: bool = False,
        **kwargs: Any,
    ) -> None:
        # ``target=``, the field's own name, is accepted too; ``schema`` is for people.
        target = kwargs.pop("target", schema)
        # One dict: the type checker sees the base class's fields only, not these.
        fields = {
            "target": target,
            "policy": policy,
            "prompt_form": prompt_form,
            "outcome": outcome,
        }
        # First: a bad schema, policy or prompt form is our error, not the model's
        # ValidationError of a field.
        repairer = Repairer.of(target, policy, prompt_form)
        super().__init__(**fields, **kwargs)
        self._repairer = repairer

    # -- the parser contract -----------------------------------------------------------

    def parse(self, text: str) -> T:
        """Repair one reply's text into the validated value (or the Outcome, see ``outcome``).

        Raises:
            OutputParserException: repair could not make the reply valid; the message
                names each issue by JSON pointer, and the cause is repairllm's error.
        """
        result = self.parse_with_outcome(text)
        return result if self.outcome else result.value  # type: ignore[no-any-return, return-value, unused-ignore]

    def parse_with_outcome(self, text: str) -> Outcome:
        """Repair one reply and return the whole :class:`~repairllm.Outcome`: value and ledger.

        Raises:
            OutputParserException: as :meth:`parse`.
        """
        try:
            return self._repairer.run(text)
        except RepairLLMError as exc:
            raise self._failure(text, exc) from exc

    def parse_result(self, result: list[Generation], *, partial: bool = False) -> Any:
        """Parse the first generation: a chat model's message or an LLM's text.

        With ``partial``, the text is a reply still arriving: the answer is the value so
        far, aligned to the schema, or ``None`` when nothing is readable yet (partial
        parsing never raises, as LangChain's own parsers do).
        """
        first = result[0]
        # A message's own content: ChatGeneration.text keeps only the first text block
        # in langchain-core 0.3.
        text = _chunk_text(first.message) if isinstance(first, ChatGeneration) else first.text
        if not partial:
            return self.parse(text)
        streamer = self._streamer()
        step = streamer.push(text)
        return step.value if step is not None else None

    def get_format_instructions(self) -> str:
        """What to tell the model, from repairllm's prompt forms (a skeleton by default).

        The same instruction :func:`repairllm.generate` sends: small models copy a
        skeleton of the answer far more faithfully than a pasted JSON Schema.
        """
        return self._repairer.instructions()

    @property
    def _type(self) -> str:
        return "repairllm"

    @property
    def OutputType(self) -> Any:
        """The type a parse returns: the model or type given, else any JSON value."""
        if self.outcome:
            return Outcome
        return self.target if isinstance(self.target, type) else Any

    # -- streaming ---------------------------------------------------------------------

    def _transform(self, input: Iterator[str | BaseMessage]) -> Iterator[Any]:
        streamer = self._streamer()
        for chunk in input:
            step = streamer.push(_chunk_text(chunk))
            if step is not None:
                yield step.value
        yield from self._finish(streamer)

    async def _atransform(self, input: AsyncIterator[str | BaseMessage]) -> AsyncIterator[Any]:
        streamer = self._streamer()
        async for chunk in input:
            step = streamer.push(_chunk_text(chunk))
            if step is not None:
                yield step.value
        for value in self._finish(streamer):
            yield value

    def _streamer(self) -> _Streamer:
        return _Streamer(self._repairer.schema, self._repairer.policy)

    def _finish(self, streamer: _Streamer) -> Iterator[Any]:
        """The last partial the close reveals, then the validated value (or the error)."""
        try:
            for step in streamer.finish():
                if not step.done:
                    yield step.value
                elif step.outcome is not None:
                    yield step.outcome if self.outcome else step.value
        except RepairLLMError as exc:
            raise self._failure(streamer.parser.text, exc) from exc

    # -- errors ------------------------------------------------------------------------

    def _failure(self, text: str, error: RepairLLMError) -> OutputParserException:
        """LangChain's parse error, carrying our issues by pointer and the retry feedback."""
        what = getattr(self.target, "__name__", None) or "the schema"
        if isinstance(error, RepairFailed) and error.issues:
            why = "; ".join(str(issue) for issue in error.issues[:8])
        else:
            why = str(error)
        return OutputParserException(
            f"repairllm could not repair the reply into {what}: {why}",
            observation=self._repairer.feedback(error),
            llm_output=text,
        )


def _chunk_text(chunk: str | BaseMessage) -> str:
    """A reply's or a streamed chunk's text: a string, or a message's text blocks joined.

    Read from ``content`` itself: ``BaseMessage.text`` is a method in langchain-core 0.3
    and a property in 1.x, and 0.3's ``ChatGeneration.text`` is the first block alone.
    """
    if isinstance(chunk, str):
        return chunk
    content = chunk.content
    if isinstance(content, str):
        return content
    if not isinstance(content, list):  # None, where a message carries tool calls alone
        return ""
    parts = []
    for block in content:
        if isinstance(block, str):
            parts.append(block)
        elif isinstance(block, dict) and block.get("type", "text") == "text":
            # Only text: str() of a None or a number would be read as a JSON value.
            text = block.get("text")
            if isinstance(text, str):
                parts.append(text)
    return "".join(parts)
