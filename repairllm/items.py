"""Item-by-item streaming: each element of a list as soon as it has closed and is valid.

``stream_items(backend, prompt, list[Task])`` asks for a list as ``stream`` and
``generate`` do (the same prompt, the server's structured mode with the array's schema,
the same policy) and yields a :class:`StreamedItem` for each element the moment its
last token has been read: its index, its validated value and its own ledger.
instructor calls this ``create_iterable``.

It rides on the incremental parser (:mod:`repairllm.lexical.incremental`): each chunk
is scanned once, and the parser hands over the elements closed since the last chunk
(:meth:`~repairllm.lexical.incremental.IncrementalParser.closed_members`) without
copying or reading anything again, so each element is aligned and validated once and
the whole work is linear in the reply. A reply that is not strict JSON makes the
parser fall back to counting brackets, which marks where each element lies
(:meth:`~repairllm.lexical.incremental.IncrementalParser.member_spans`); each is then
repaired on its own by the lexical stage as soon as it has closed.

An element that cannot be made valid does not stop the stream: it comes as a record
with its issues (``on_invalid="yield"``, the default), or raises :class:`ItemFailed`
(``"raise"``). Truncation is never silent: when the reply ends before the list closes
(cut at the token limit, or simply stopped), what follows the last complete element is
not returned as a value, and a last record (or :class:`ItemFailed`) says so. One
object where a list was asked becomes element 0 with the ledger's ``wrap_list``, and
an object whose first member is the list under a key no element has (``{"tasks":
[...]}``) is read item by item with ``unwrap_object``, as the align stage does for
``repair``; the rest of such an object is not part of the list, as prose after it is not.

``repair_items``/``arepair_items`` do the same over any iterable of text chunks (or
:class:`~repairllm.backend.Chunk` records, whose ``finish_reason`` tells a cut reply),
for users with their own client; the backend functions are thin wrappers around them.
"""

from __future__ import annotations

import json
import typing
from collections.abc import AsyncIterable, AsyncIterator, Collection, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, Literal

import orjson

from . import observe
from .align import align
from .backend import Backend, Chunk, Message, Messages
from .errors import AmbiguousRepair, ConfigError, InvalidInput, ItemFailed, RepairFailed
from .ledger import Fix, Issue, Ledger, escape_pointer
from .lexical import LexicalError, Parsed, parse
from .lexical.incremental import IncrementalParser
from .observe import Hooks
from .options import CallOptions
from .outcome import Outcome
from .pipeline import _policy_issues, run
from .policy import Policy, resolve_policy
from .prompts import PromptForm
from .rules import Rule
from .schema import Schema, compile_schema
from .stream import _request

__all__ = [
    "OnInvalid",
    "StreamedItem",
    "arepair_items",
    "astream_items",
    "repair_items",
    "stream_items",
]

#: What to do with an element that cannot be made valid (or was cut off).
OnInvalid = Literal["yield", "raise"]


@dataclass(frozen=True)
class StreamedItem:
    """One element of a list read item by item.

    Attributes:
        index: its position in the list.
        value: the validated value (a model instance for a pydantic item type);
            ``None`` when the element is not ``ok``.
        ledger: the changes made to it, with pointers into the whole reply (``/3/name``).
        issues: what is still wrong (empty when ``ok``), by the same pointers.
        data: the JSON value as read and aligned, for an invalid element too.
        cut: the reply ended before the list closed; this record stands for what came
            after the last complete element, and is never a value.
    """

    index: int
    value: Any
    ledger: Ledger = field(default_factory=Ledger)
    issues: tuple[Issue, ...] = ()
    data: Any = None
    cut: bool = False

    @property
    def ok(self) -> bool:
        """Whether the element is complete and valid."""
        return not self.issues


# -- what an element is checked against -------------------------------------------------

# Kept at the root of an array made around an item schema, so that its $refs resolve.
_HOISTED = ("$schema", "$defs", "definitions")


# The arrays made around item schemas, by the item schema's id (with the schema, so an
# id reused after it is gone is no hit): a new dict every call would be compiled anew,
# and checking a schema against its metaschema costs more than reading a long reply.
_ARRAYS: dict[int, tuple[Any, Any]] = {}
_ARRAYS_KEPT = 256


def _array_of(item: Any) -> Any:
    """The array schema whose elements are ``item`` (a JSON Schema dict or bool)."""
    hit = _ARRAYS.get(id(item))
    if hit is not None and hit[0] is item:
        return hit[1]
    if isinstance(item, dict):
        inner = {k: v for k, v in item.items() if k not in _HOISTED}
        array = {**{k: item[k] for k in _HOISTED if k in item}, "type": "array", "items": inner}
    else:
        array = {"type": "array", "items": item}
    if len(_ARRAYS) >= _ARRAYS_KEPT:
        _ARRAYS.clear()
    _ARRAYS[id(item)] = (item, array)
    return array


@dataclass(frozen=True)
class _Items:
    """The list asked for, and where its elements are validated.

    Attributes:
        array: the list's schema: what the prompt shows and the server is asked for.
        schema: the schema an element is validated against: the array's own, at its
            item nodes (``of_array``), or the item type's (a pydantic model keeps
            its instances), at the root.
    """

    array: Schema
    schema: Schema
    of_array: bool

    @classmethod
    def of(cls, schema: Any) -> _Items:
        """Read ``list[Item]``, an array JSON Schema, or the schema of one item."""
        if schema is list or schema is None:
            # None is "any JSON" here as everywhere (repair, stream), not a list of nulls.
            schema = list[Any]
        listed = schema
        if typing.get_origin(schema) is typing.Annotated:
            # conlist(int, max_length=3), Annotated[list[int], Len(...)]: the list's own
            # constraints are the array's; its elements are of the inner list's type.
            listed = typing.get_args(schema)[0]
            if listed is list:
                listed = list[Any]
        if typing.get_origin(listed) is list:
            args = typing.get_args(listed)
            return cls(compile_schema(schema), compile_schema(args[0] if args else Any), False)
        if isinstance(schema, (dict, bool, Schema)):
            root = schema.root if isinstance(schema, Schema) else schema
            compiled = compile_schema(root)
            if isinstance(root, dict) and compiled.info(root).types == frozenset({"array"}):
                return cls(compiled, compiled, True)
            return cls(compile_schema(_array_of(root)), compiled, False)
        # A pydantic model or another type: the type of one element.
        return cls(compile_schema(list.__class_getitem__(schema)), compile_schema(schema), False)

    def node(self, index: int) -> Any:
        """The schema node element ``index`` answers to (``None``: the item schema's root)."""
        return self.schema.item(self.schema.root, index) if self.of_array else None

    def known_keys(self) -> Collection[str]:
        """The properties an element declares: a key among them names a field, not a
        wrapper around the list."""
        node = self.node(0)
        return self.schema.info(self.schema.root if node is None else node).properties

    def validate(self, data: Any, node: Any) -> tuple[Any, list[Issue]]:
        """The element's final value and its issues, by pointers from the element."""
        schema = self.schema
        if node is None:
            return schema.validate(data)
        if schema.is_valid(data, node):
            return data, []
        return data, schema.issues(data, node)


def _canonical(value: Any) -> str:
    """``value`` as JSON with sorted keys: equal elements give equal text."""
    try:
        return orjson.dumps(value, option=orjson.OPT_SORT_KEYS, default=str).decode()
    except TypeError:  # a lone surrogate, an integer past 64 bits
        return json.dumps(value, sort_keys=True, default=str)


# -- the reader ---------------------------------------------------------------------------


class _ItemReader:
    """The I/O-free core of every function here: chunks in, elements out."""

    def __init__(self, items: _Items, policy: Policy | str | None, on_invalid: OnInvalid) -> None:
        if on_invalid not in ("yield", "raise"):
            raise ConfigError(f"on_invalid must be 'yield' or 'raise', not {on_invalid!r}")
        self.items = items
        self.policy = resolve_policy(policy)
        self.raises = on_invalid == "raise"
        self.parser = IncrementalParser(members=True)
        self.next = 0  # the index of the next element to go out
        self.done = False  # the list is complete, or the reply was handed to the pipeline
        self.finish_reason: str | None = None
        # The key of an object whose first member is the list ({"tasks": [...]}), "" for
        # an object that is no wrapper, None until its first member has begun.
        self.wrapper: str | None = None
        self.unwrap: list[Fix] = []
        self.seen: set[str] = set()  # the elements so far as JSON, for uniqueItems

    def push(self, piece: str | Chunk) -> Iterator[StreamedItem]:
        """Read one chunk; the elements it completed."""
        if isinstance(piece, Chunk) and isinstance(piece.text, str):
            text = piece.text
            if piece.finish_reason is not None:
                self.finish_reason = piece.finish_reason
        elif isinstance(piece, str):
            text = piece
        elif isinstance(piece, Chunk):
            raise InvalidInput(
                f"a Chunk's text must be str, not {type(piece.text).__name__}; decode "
                "what your client streams before passing it"
            )
        else:
            raise InvalidInput(
                f"chunks must be str or Chunk, not {type(piece).__name__}; pass the text "
                "of each piece your client streams"
            )
        if self.done:
            return
        self.parser.feed(text)
        parser = self.parser
        opener = parser.opener
        if opener == "[":
            if parser.fallback:
                yield from self._spans()
            else:
                for data in parser.closed_members(self.next) or ():
                    yield self._emit(self._element(self.next, data, []))
            self.done = parser.complete
        elif opener == "{":
            yield from self._object()

    def _object(self) -> Iterator[StreamedItem]:
        """A reply that is an object: a wrapper whose first member is the list, read item
        by item as a root array is; else one element, read once the object has closed."""
        parser = self.parser
        if self.wrapper is None and parser.first_key is not None:
            key = parser.first_key
            wraps = (
                self.policy.align
                and key not in self.items.known_keys()
                and parser.closed_members(0, key) is not None
            )
            self.wrapper = key if wraps else ""
            # The fix align makes for it, in every element's ledger.
            cost = self.policy.cost(Rule.UNWRAP_OBJECT)
            self.unwrap = [Fix("align", Rule.UNWRAP_OBJECT, "", {key: "…"}, "…", cost)]
        if self.wrapper:
            for data in parser.closed_members(self.next, self.wrapper) or ():
                yield self._emit(self._element(self.next, data, self.unwrap))
            if parser.array_closed(self.wrapper):
                # The rest of the object is not part of the list, as prose after it is not.
                self.done = True
                return
        if parser.complete:  # (read by the pipeline also when the fallback took over)
            self.done = True
            end = parser.end
            yield from self._whole(parser.text if end is None else parser.text[:end])

    def finish(self) -> Iterator[StreamedItem]:
        """The stream ended: what it left unread or unfinished."""
        if self.done:
            return
        self.done = True
        if self.parser.opener == "":
            # No bracket at all: prose, a scalar per line... the pipeline may still
            # find the list (or raise NoJSONFound).
            yield from self._whole(self.parser.text)
            return
        yield self._emit(self._cut())

    def _emit(self, item: StreamedItem) -> StreamedItem:
        self.next = item.index + 1
        if item.ok or not self.raises:
            return item
        shown = "; ".join(str(issue) for issue in item.issues[:3])
        what = "is incomplete" if item.cut else "is invalid"
        best = Outcome(item.data, item.ledger, None, list(item.issues), self.parser.text, item.data)
        raise ItemFailed(
            self.parser.text,
            item.index,
            best,
            f"element {item.index} of the list {what}: {shown}; the elements before it "
            "were yielded. Pass on_invalid='yield' to receive it as a record and read on",
        )

    # -- one element ----------------------------------------------------------------------

    def _element(
        self,
        index: int,
        data: Any,
        fixes: list[Fix],
        *,
        aligned: bool = False,
        parsed: Parsed | None = None,
    ) -> StreamedItem:
        """Validate one element (aligning it first if it is not valid as it stands), as
        the pipeline does a whole value; its issues and fixes point into the whole reply."""
        items, policy = self.items, self.policy
        node = items.node(index)
        ledger = Ledger(fixes)
        try:
            value, issues = items.validate(data, node)
            if issues and policy.align and not aligned:
                data, more = align(data, items.schema, policy, node=node, path=[index])
                ledger.extend(more)
                value, issues = items.validate(data, node)
        except RecursionError:
            issues = [Issue("", "the element nests too deeply to align and validate")]
        issues = issues + _policy_issues(ledger, parsed or Parsed(data, []), policy)
        issues += self._list_issues(index, data)
        if issues:
            under = tuple(Issue(f"/{index}{i.path}", i.message, i.expected, i.got) for i in issues)
            return StreamedItem(index, None, ledger, under, data)
        return StreamedItem(index, value, ledger, (), data)

    def _list_issues(self, index: int, data: Any) -> list[Issue]:
        """What the list's own ``maxItems`` and ``uniqueItems`` say of element ``index``:
        each element is checked alone, so these are checked here, as it arrives."""
        root = self.items.array.root
        if not isinstance(root, dict):
            return []
        issues = []
        most = root.get("maxItems")
        if isinstance(most, int) and not isinstance(most, bool) and index >= most:
            issues.append(
                Issue("", f"the list may hold at most {most} element(s); this is one more")
            )
        if root.get("uniqueItems") is True:
            key = _canonical(data)
            if key in self.seen:
                issues.append(Issue("", "the list's elements must be unique; this one repeats one"))
            self.seen.add(key)
        return issues

    def _spans(self) -> Iterator[StreamedItem]:
        """The fallback's elements: each span the bracket count closed, repaired alone."""
        parser = self.parser
        text = parser.text
        first = self.next
        spans = parser.member_spans(first - 1 if first else 0)
        previous = -1
        if first and spans:  # the last element out, for what stood between it and the next
            previous = spans[0][1]
            spans = spans[1:]
        for start, end in spans:
            index = self.next
            fixes = self._between(text, previous, start, index) if previous >= 0 else []
            previous = end
            yield self._emit(self._read(index, text[start:end], fixes))

    def _between(self, text: str, end: int, start: int, index: int) -> list[Fix]:
        """What stood between two elements, if it was not one comma: a fix for each."""
        commas = text.count(",", end, start)
        if commas == 1:
            return []
        rule = Rule.MISSING_COMMA if commas == 0 else Rule.EXTRA_COMMA
        before = None if commas == 0 else "," * commas
        return [Fix("lexical", rule, f"/{index}", before, ",", self.policy.cost(rule))]

    def _read(self, index: int, text: str, fixes: list[Fix]) -> StreamedItem:
        """One element's text through the lexical stage, then :meth:`_element`."""
        try:
            parsed = parse(text, None, self.policy)
        except (LexicalError, RepairFailed) as exc:
            issue = Issue(f"/{index}", f"element {index} could not be read as JSON: {exc}")
            return StreamedItem(index, None, Ledger(fixes), (issue,))
        fixes = fixes + [
            Fix(f.stage, f.rule, f"/{index}{f.path}", f.before, f.after, f.cost)
            for f in parsed.fixes
        ]
        return self._element(index, parsed.value, fixes, parsed=parsed)

    def _whole(self, text: str) -> Iterator[StreamedItem]:
        """A reply whose value is no list (one object, a wrapper, prose): the pipeline
        makes it one, as ``repair`` would, and its elements go out one by one."""
        try:
            outcome = run(text, self.items.array, self.policy)
        except AmbiguousRepair:
            raise
        except RepairFailed as exc:
            if exc.best is None or not isinstance(exc.best.data, list):
                raise
            outcome = exc.best
        data = outcome.data
        if not isinstance(data, list):  # a schema that allows more than arrays
            raise RepairFailed(text, outcome, message="the reply holds no list")
        ledger = _rebased(outcome.ledger)
        for index, element in enumerate(data):
            if index < self.next:  # a wrapper's elements read before the fallback took over
                continue
            fixes = [fix for fix in ledger if _concerns(fix.path, index)]
            yield self._emit(self._element(index, element, fixes, aligned=True))

    def _cut(self) -> StreamedItem:
        """The record that says the list was cut after its last complete element."""
        index = self.next
        if self.finish_reason == "length":
            why = "the reply was cut off at the token limit (finish reason 'length')"
            hint = "raise max_tokens, or ask for fewer elements"
        else:
            why = "the reply ended before its list closed"
            hint = "ask the model again for the rest"
        message = (
            f"{why} after {index} complete element(s): what followed them is incomplete "
            f"and not returned as a value; {hint}"
        )
        return StreamedItem(index, None, Ledger(), (Issue(f"/{index}", message),), cut=True)


def _rebased(ledger: Ledger) -> list[Fix]:
    """The whole reply's fixes, the lexical stage's pointers moved to where the align
    stage put the list: under ``/0`` after a wrap, out of the wrapper after an unwrap.

    The lexical stage points into the text as written (``/name`` in the one object,
    ``/tasks/2/title`` in the wrapper); an element's ledger points into the list.
    """
    shape = next(
        (
            fix
            for fix in ledger
            if fix.stage == "align"
            and fix.path == ""
            and fix.rule in (Rule.WRAP_LIST, Rule.UNWRAP_OBJECT)
        ),
        None,
    )
    if shape is None:
        return list(ledger)
    if shape.rule == Rule.WRAP_LIST:
        prefix, into = "", "/0"
    else:
        prefix, into = "/" + escape_pointer(next(iter(shape.before))), ""
    moved = []
    for fix in ledger:
        path = fix.path
        if fix.stage == "lexical" and (path == prefix or path.startswith(prefix + "/")):
            path = into + path[len(prefix) :]
            fix = Fix(fix.stage, fix.rule, path, fix.before, fix.after, fix.cost)
        moved.append(fix)
    return moved


def _concerns(path: str, index: int) -> bool:
    """Whether a fix of the whole list at ``path`` concerns element ``index``: one below
    it, or one of the whole (the wrap, the extraction)."""
    head = path.split("/", 2)[1] if path.startswith("/") else ""
    return not head.isdigit() or int(head) == index


def _drain(reader: _ItemReader, chunks: Iterable[str | Chunk]) -> Iterator[StreamedItem]:
    for chunk in chunks:
        yield from reader.push(chunk)
        if reader.done:
            return  # what follows the list is not part of it
    yield from reader.finish()


async def _adrain(
    reader: _ItemReader, chunks: AsyncIterable[str | Chunk]
) -> AsyncIterator[StreamedItem]:
    async for chunk in chunks:
        for item in reader.push(chunk):
            yield item
        if reader.done:
            return
    for item in reader.finish():
        yield item


# -- the public functions -----------------------------------------------------------------


def repair_items(
    chunks: Iterable[str | Chunk],
    schema: Any,
    *,
    on_invalid: OnInvalid = "yield",
    policy: Policy | str | None = CallOptions.policy,
) -> Iterator[StreamedItem]:
    """Read a list from text chunks and yield each element as soon as it has closed.

    For a client of your own: pass the text pieces it streams (or
    :class:`~repairllm.backend.Chunk` records; a ``finish_reason`` of ``"length"``
    makes the last record say the reply was cut at the token limit).

    Args:
        chunks: the reply, piece by piece.
        schema: ``list[Item]``, an array JSON Schema, or the schema of one element
            (a pydantic model, a type, or a JSON Schema that is not an array);
            ``None`` takes elements of any JSON value.
        on_invalid: ``"yield"`` an invalid or cut element as a record (``ok`` false,
            with its issues) and read on, or ``"raise"`` :class:`ItemFailed`.
        policy: the repair policy for each element.

    Yields:
        :class:`StreamedItem` records in index order.

    Raises:
        ItemFailed: an element is invalid or was cut, with ``on_invalid="raise"``.
        NoJSONFound, RepairFailed: the reply holds nothing that can be made a list.
        ConfigError: ``on_invalid`` is neither ``"yield"`` nor ``"raise"``.
        InvalidInput: ``chunks`` is not an iterable of ``str`` or :class:`Chunk`.

    Example:
        >>> chunks = ['[{"n": 1}, {"n', '": "2"}, {"n": "x"}]']
        >>> [(i.index, i.value, i.ok) for i in repair_items(chunks, list[dict[str, int]])]
        [(0, {'n': 1}, True), (1, {'n': 2}, True), (2, None, False)]
    """
    if isinstance(chunks, bytes | bytearray) or not isinstance(chunks, Iterable):
        raise InvalidInput(
            f"chunks must be an iterable of str or Chunk, not {type(chunks).__name__}"
        )
    return _drain(_ItemReader(_Items.of(schema), policy, on_invalid), chunks)


async def arepair_items(
    chunks: AsyncIterable[str | Chunk],
    schema: Any,
    *,
    on_invalid: OnInvalid = "yield",
    policy: Policy | str | None = CallOptions.policy,
) -> AsyncIterator[StreamedItem]:
    """Async :func:`repair_items`, over an async iterable of chunks."""
    if not isinstance(chunks, AsyncIterable):
        hint = "; for a plain iterable use repair_items" if isinstance(chunks, Iterable) else ""
        raise InvalidInput(
            f"chunks must be an async iterable of str or Chunk, not {type(chunks).__name__}" + hint
        )
    async for item in _adrain(_ItemReader(_Items.of(schema), policy, on_invalid), chunks):
        yield item


def _start(
    backend: Backend, prompt: Messages, schema: Any, call: CallOptions, on_invalid: OnInvalid
) -> tuple[_ItemReader, list[Message], dict[str, Any]]:
    """The reader, the messages and the structured-mode options of a call."""
    items = _Items.of(schema)
    reader = _ItemReader(items, call.policy, on_invalid)
    messages, extra = _request(backend, prompt, items.array, call)
    return reader, messages, extra


def stream_items(
    backend: Backend,
    prompt: Messages,
    schema: Any,
    *,
    on_invalid: OnInvalid = "yield",
    policy: Policy | str | None = CallOptions.policy,
    prompt_form: PromptForm = CallOptions.prompt_form,
    native: bool | None = CallOptions.native,
    hooks: Hooks | None = None,
    **options: Any,
) -> Iterator[StreamedItem]:
    """Ask for a list and yield each element as soon as it is complete and valid.

    The request is the one :func:`repairllm.stream` makes for the list's schema. The
    backend's stream is closed once the list is complete, so what a model writes
    after it is never paid for.

    Args:
        backend: a driver; its ``stream`` is used.
        prompt: a string or OpenAI-style messages.
        schema: ``list[Item]``, an array JSON Schema, or the schema of one element.
        on_invalid: ``"yield"`` an invalid or cut element as a record and read on, or
            ``"raise"`` :class:`ItemFailed`.
        policy: the repair policy for each element.
        prompt_form: how the schema is shown (see :mod:`repairllm.prompts`).
        native: use the server's structured mode where declared (``None``), or not.
        hooks: callbacks on the request and the attempt (see
            :class:`repairllm.observe.Hooks`); an invalid item's issues are the attempt's.
        **options: chat options (``max_tokens``, ``temperature`` ...).

    Yields:
        :class:`StreamedItem` records in index order (see :func:`repair_items`).

    Raises:
        ItemFailed: with ``on_invalid="raise"``.
        NoJSONFound, RepairFailed: the reply holds nothing that can be made a list.
        BackendError: from the backend.

    Example:
        >>> for item in stream_items(llm, "Three tasks for today", list[Task]):  # doctest: +SKIP
        ...     print(item.index, item.value if item.ok else item.issues)
    """
    call = CallOptions(policy=policy, prompt_form=prompt_form, native=native)
    reader, messages, extra = _start(backend, prompt, schema, call, on_invalid)
    with observe.call("stream_items", backend, hooks) as obs:
        stream = obs.chunks(backend.stream, messages, {**options, **extra})
        try:
            yield from obs.items(_drain(reader, stream))
        finally:
            stream.close()


async def astream_items(
    backend: Backend,
    prompt: Messages,
    schema: Any,
    *,
    on_invalid: OnInvalid = "yield",
    policy: Policy | str | None = CallOptions.policy,
    prompt_form: PromptForm = CallOptions.prompt_form,
    native: bool | None = CallOptions.native,
    hooks: Hooks | None = None,
    **options: Any,
) -> AsyncIterator[StreamedItem]:
    """Async :func:`stream_items`, through the backend's ``astream``."""
    call = CallOptions(policy=policy, prompt_form=prompt_form, native=native)
    reader, messages, extra = _start(backend, prompt, schema, call, on_invalid)
    with observe.call("astream_items", backend, hooks) as obs:
        stream = obs.achunks(backend.astream, messages, {**options, **extra})
        try:
            async for item in obs.aitems(_adrain(reader, stream)):
                yield item
        finally:
            await stream.aclose()
