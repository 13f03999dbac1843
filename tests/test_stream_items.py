"""stream_items and repair_items: each element of a list as soon as it has closed."""

from __future__ import annotations

import asyncio
import itertools
import json
from collections.abc import AsyncIterator, Iterator
from typing import Annotated, Any

import pytest
from annotated_types import Len
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import BaseModel

import repairllm as rl
from repairllm import items as items_module
from repairllm import lexical
from repairllm.backend import Backend, ChatOptions, Chunk, Completion, Message, Usage
from repairllm.lexical import incremental
from repairllm.lexical.incremental import IncrementalParser
from repairllm.rules import Rule


class Task(BaseModel):
    title: str
    hours: int


TASK_ARRAY = {
    "type": "array",
    "items": {
        "type": "object",
        "properties": {"title": {"type": "string"}, "hours": {"type": "integer"}},
        "required": ["title", "hours"],
    },
}


def tasks_text(n: int, bad: frozenset[int] | set[int] = frozenset()) -> str:
    rows = [{"title": f"task {i}", "hours": "many" if i in bad else i % 9 + 1} for i in range(n)]
    return json.dumps(rows)


def pieces(text: str, size: int) -> list[str]:
    return [text[i : i + size] for i in range(0, len(text), size)]


class Streaming(Backend):
    """Streams a fixed reply in pieces, counting how many it has handed out."""

    name = "streaming"
    supports_json_schema = True

    def __init__(self, text: str, size: int = 5, finish: str = "stop") -> None:
        self.text = text
        self.size = size
        self.finish = finish
        self.sent = 0
        self.closed = False
        self.requests: list[tuple[list[Message], ChatOptions]] = []

    @property
    def total(self) -> int:
        return len(pieces(self.text, self.size))

    def _chat(self, messages: list[Message], options: ChatOptions) -> Completion:
        return Completion(self.text, self.finish)

    def _stream(self, messages: list[Message], options: ChatOptions) -> Iterator[Chunk]:
        self.requests.append((messages, options))
        try:
            for piece in pieces(self.text, self.size):
                self.sent += 1
                yield Chunk(piece)
            yield Chunk("", self.finish, Usage(10, 20))
        finally:
            self.closed = True


def indices_into(got: list[int], stream: Iterator[rl.StreamedItem]) -> None:
    """Read ``stream`` to its end (or its error), noting each index in ``got``."""
    for item in stream:
        got.append(item.index)


# -- item by item, before the stream ends ---------------------------------------------------


def test_items_arrive_while_later_chunks_are_still_unsent() -> None:
    reply = tasks_text(6)
    llm = Streaming(reply, size=4)
    seen: list[tuple[int, int]] = []  # (index, chunks sent when it arrived)
    for item in rl.stream_items(llm, "six tasks", list[Task]):
        assert item.ok, item.issues
        seen.append((item.index, llm.sent))
    assert [i for i, _ in seen] == list(range(6))
    assert all(sent < llm.total for _, sent in seen[:-1]), seen
    # Each arrives within a chunk of its own closing brace, not at the end.
    for index, sent in seen:
        close_at = [i for i, ch in enumerate(reply) if ch == "}"][index]
        assert sent == close_at // 4 + 1
    expected = [Task(**row) for row in json.loads(reply)]
    values = [item.value for item in rl.stream_items(Streaming(reply, 4), "x", list[Task])]
    assert values == expected
    assert all(isinstance(v, Task) for v in values)


def test_the_request_is_the_one_stream_makes_for_the_list() -> None:
    llm = Streaming(tasks_text(2))
    list(rl.stream_items(llm, "two tasks", list[Task], max_tokens=99))
    messages, options = llm.requests[0]
    assert messages[0]["role"] == "system"
    assert '"title": <string>' in messages[0]["content"]  # the skeleton of one element
    assert messages[0]["content"].lstrip().splitlines()[1].startswith("[")
    assert options.max_tokens == 99
    assert options.json_schema is not None
    assert options.json_schema["type"] == "array"
    llm = Streaming(tasks_text(2))
    list(rl.stream_items(llm, "two tasks", list[Task], native=False))
    assert llm.requests[0][1].json_schema is None


def test_the_stream_is_closed_once_the_list_is_complete() -> None:
    reply = tasks_text(2) + "\nHope this helps! " + "blah " * 200
    llm = Streaming(reply, size=8)
    got = list(rl.stream_items(llm, "x", list[Task]))
    assert [i.index for i in got] == [0, 1]
    assert llm.closed
    assert llm.sent < llm.total, "the prose after the list was never read"


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(10**12), 10**12) | st.text(max_size=8),
    lambda kids: (
        st.lists(kids, max_size=3) | st.dictionaries(st.text(max_size=5), kids, max_size=3)
    ),
    max_leaves=12,
)


@settings(max_examples=120, deadline=None)
@given(
    rows=st.lists(json_values, max_size=6),
    cuts=st.lists(st.integers(0, 10_000), max_size=20),
    pretty=st.booleans(),
    fenced=st.booleans(),
)
def test_any_chunking_gives_the_elements_of_the_list(
    rows: list[Any], cuts: list[int], pretty: bool, fenced: bool
) -> None:
    text = json.dumps(rows, indent=2 if pretty else None, ensure_ascii=False)
    if fenced:
        text = f"Here you go:\n```json\n{text}\n```\nAnything else?"
    points = sorted({c % (len(text) + 1) for c in cuts} | {0, len(text)})
    chunks = [text[a:b] for a, b in itertools.pairwise(points)]
    got = list(rl.repair_items(chunks, {"type": "array"}))
    assert [i.index for i in got] == list(range(len(rows)))
    assert [i.value for i in got] == rows
    assert all(i.ok and not i.ledger for i in got)


@settings(max_examples=100, deadline=None)
@given(
    rows=st.lists(json_values, min_size=1, max_size=6),
    cuts=st.lists(st.integers(0, 10_000), max_size=20),
)
def test_a_python_repr_read_item_by_item_is_the_whole_repair(
    rows: list[Any], cuts: list[int]
) -> None:
    # Single quotes, True, None: not JSON, so each element is repaired on its own.
    text = repr(rows)
    points = sorted({c % (len(text) + 1) for c in cuts} | {0, len(text)})
    chunks = [text[a:b] for a, b in itertools.pairwise(points)]
    got = list(rl.repair_items(chunks, {"type": "array"}))
    assert all(i.ok for i in got), [i.issues for i in got if not i.ok]
    assert [i.value for i in got] == rl.repair(text, {"type": "array"})


# -- invalid elements -------------------------------------------------------------------------


def test_an_invalid_middle_element_is_a_record_and_later_ones_keep_coming() -> None:
    llm = Streaming(tasks_text(5, bad={2}), size=6)
    got = []
    for item in rl.stream_items(llm, "x", list[Task]):
        got.append((item, llm.sent))
    records = [item for item, _ in got]
    assert [r.index for r in records] == [0, 1, 2, 3, 4]
    assert [r.ok for r in records] == [True, True, False, True, True]
    bad = records[2]
    assert bad.value is None
    assert bad.data == {"title": "task 2", "hours": "many"}
    assert [issue.path for issue in bad.issues] == ["/2/hours"]
    # The element after it arrived before the stream ended.
    assert got[3][1] < llm.total


def test_raise_mode_raises_at_the_bad_element_after_yielding_the_ones_before() -> None:
    got: list[int] = []
    stream = rl.stream_items(Streaming(tasks_text(5, bad={2})), "x", TASK_ARRAY, on_invalid="raise")
    with pytest.raises(rl.ItemFailed) as caught:
        indices_into(got, stream)
    assert got == [0, 1]
    error = caught.value
    assert isinstance(error, rl.RepairFailed)
    assert error.index == 2
    assert [i.path for i in error.issues] == ["/2/hours"]
    assert error.best is not None
    assert error.best.data["hours"] == "many"
    assert "element 2" in str(error)
    assert "on_invalid='yield'" in str(error)


def test_an_unknown_on_invalid_is_refused_at_once() -> None:
    with pytest.raises(rl.ConfigError, match="on_invalid"):
        rl.repair_items(["[]"], list[int], on_invalid="skip")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "chunks",
    [None, 5, b'[{"title": "a"}]', [b'[{"title": "a"}]'], [Chunk(b"[1]")]],  # type: ignore[arg-type]
    ids=["none", "an-int", "bytes", "a-bytes-chunk", "a-chunk-of-bytes"],
)
def test_chunks_that_are_not_text_are_invalid_input(chunks: Any) -> None:
    with pytest.raises(rl.InvalidInput, match="str"):
        list(rl.repair_items(chunks, list[int]))


@pytest.mark.parametrize("chunks", [None, ["[1]"]], ids=["none", "a-plain-list"])
def test_arepair_items_refuses_what_is_not_an_async_iterable(chunks: Any) -> None:
    async def collect() -> list[Any]:
        return [i async for i in rl.arepair_items(chunks, list[int])]

    with pytest.raises(rl.InvalidInput, match="async iterable"):
        asyncio.run(collect())


@pytest.mark.parametrize(
    ("schema", "bad"),
    [
        ({"type": "array", "items": {"type": "integer"}, "maxItems": 2}, [2, 3]),
        ({"type": "array", "items": {"type": "integer"}, "uniqueItems": True}, [1]),
        ({"type": "array", "items": {"type": "object"}, "uniqueItems": True}, [1]),
    ],
    ids=["max-items", "unique-items", "unique-objects-in-any-key-order"],
)
def test_the_lists_own_limits_are_checked_as_elements_arrive(schema: Any, bad: list[int]) -> None:
    # Each element was checked alone, so a list past maxItems or with a repeat came
    # out with every element ok.
    text = '[{"a": 1, "b": 2}, {"b": 2, "a": 1}]' if "object" in str(schema) else "[1, 1, 2, 3]"
    got = list(rl.repair_items(pieces(text, 3), schema))
    assert [i.index for i in got if not i.ok] == bad
    assert all(i.value is None for i in got if not i.ok)


def test_no_schema_takes_elements_of_any_value() -> None:
    # None was the type of each element: every element came out "Input should be null".
    got = list(rl.repair_items(['[1, "a", {"b": null}]'], None))
    assert [(i.value, i.ok) for i in got] == [(1, True), ("a", True), ({"b": None}, True)]


def test_a_constrained_list_type_is_a_list_not_an_item_type() -> None:
    # Annotated[list[int], ...] was read as the type of one element: each 1 became [1].
    schema = Annotated[list[int], Len(0, 2)]
    got = list(rl.repair_items(["[1, 2, 3]"], schema))
    assert [(i.value, i.ok) for i in got] == [(1, True), (2, True), (None, False)]
    assert "at most 2" in got[2].issues[0].message


def test_elements_are_aligned_one_by_one_with_their_own_ledger() -> None:
    reply = '[{"Title": "a", "hours": "3"}, {"title": "b", "hours": 4}, {"TITLE": "c", "hours": 5}]'
    got = list(rl.repair_items(pieces(reply, 3), TASK_ARRAY))
    assert [i.value for i in got] == [
        {"title": "a", "hours": 3},
        {"title": "b", "hours": 4},
        {"title": "c", "hours": 5},
    ]
    assert sorted(f.path for f in got[0].ledger) == ["/0/hours", "/0/title"]
    assert sorted(got[0].ledger.rules()) == sorted([Rule.KEY_CASE, Rule.COERCE])
    assert list(got[1].ledger) == []
    assert [f.path for f in got[2].ledger] == ["/2/title"]
    # The same values and fixes as repairing the whole reply at once.
    whole = rl.repair(reply, TASK_ARRAY, outcome=True)
    assert whole.value == [i.value for i in got]
    assert sorted(map(str, whole.ledger)) == sorted(str(f) for i in got for f in i.ledger)


def test_prefix_items_are_checked_at_their_own_node() -> None:
    schema = {"type": "array", "prefixItems": [{"type": "string"}], "items": {"type": "integer"}}
    got = list(rl.repair_items(['["x", 1, "y"]'], schema))
    assert [(i.index, i.ok) for i in got] == [(0, True), (1, True), (2, False)]


# -- truncation ---------------------------------------------------------------------------------


def test_a_cut_off_last_element_is_never_a_value() -> None:
    reply = tasks_text(4)
    cut = reply[: reply.index('"task 3"') + 4]
    llm = Streaming(cut, size=5, finish="length")
    got = list(rl.stream_items(llm, "x", list[Task]))
    assert [i.ok for i in got] == [True, True, True, False]
    last = got[-1]
    assert last.cut
    assert last.value is None
    assert last.index == 3
    assert "token limit" in last.issues[0].message
    assert "max_tokens" in last.issues[0].message


def test_a_cut_number_is_not_taken_as_complete() -> None:
    # [1, 2, 3 cut at the limit: 3 may have been 35.
    got = list(rl.repair_items([Chunk("[1, 2, 3"), Chunk("", "length")], list[int]))
    assert [(i.index, i.value) for i in got[:2]] == [(0, 1), (1, 2)]
    assert got[2].cut
    assert got[2].index == 2


def test_a_cut_element_raises_in_raise_mode() -> None:
    chunks = [Chunk('[{"title": "a", "hours": 1}, {"title": "b'), Chunk("", "length")]
    got: list[int] = []
    with pytest.raises(rl.ItemFailed, match="incomplete") as caught:
        indices_into(got, rl.repair_items(chunks, Task, on_invalid="raise"))
    assert got == [0]
    assert caught.value.index == 1


def test_a_list_that_never_closes_says_so_even_without_a_finish_reason() -> None:
    got = list(rl.repair_items(['[{"title": "a", "hours": 1}'], list[Task]))
    assert got[0].ok
    assert got[-1].cut
    assert "ended before its list closed" in got[-1].issues[0].message


# -- one object where a list was asked ----------------------------------------------------------


def test_one_object_instead_of_a_list_is_item_zero_with_the_wrap_rule() -> None:
    llm = Streaming('Here it is: {"title": "solo", "hours": "2"}', size=4)
    got = list(rl.stream_items(llm, "x", list[Task]))
    assert len(got) == 1
    item = got[0]
    assert item.index == 0
    assert item.value == Task(title="solo", hours=2)
    assert Rule.WRAP_LIST in item.ledger.rules()
    assert Rule.COERCE in item.ledger.rules()
    assert {f.path for f in item.ledger if f.rule == Rule.COERCE} == {"/0/hours"}


def test_a_wrapper_object_is_unwrapped() -> None:
    got = list(
        rl.repair_items(['{"tasks": [{"title": "a", "hours": 1}, ', '{"title": "b"}]}'], Task)
    )
    assert [(i.index, i.ok) for i in got] == [(0, True), (1, False)]
    assert all(Rule.UNWRAP_OBJECT in i.ledger.rules() for i in got)
    assert got[1].issues[0].path == "/1/hours"  # the missing field, under its element


def test_one_broken_object_keeps_its_fixes_under_element_zero() -> None:
    got = list(rl.repair_items(["{'title': 'solo',", " hours: 2}"], list[Task]))
    assert [i.value for i in got] == [Task(title="solo", hours=2)]
    paths = {f.path for f in got[0].ledger if f.stage == "lexical"}
    assert paths == {"/0/title", "/0/hours"}


def test_a_wrapper_is_read_item_by_item_before_the_object_closes() -> None:
    reply = '{"tasks": ' + tasks_text(4) + ', "note": "' + "x" * 400 + '"}'
    llm = Streaming(reply, size=6)
    seen = [(item, llm.sent) for item in rl.stream_items(llm, "x", list[Task])]
    assert [item.value for item, _ in seen] == [Task(**row) for row in json.loads(tasks_text(4))]
    assert all(sent < llm.total for _, sent in seen), "each came while the object was open"
    for item, _ in seen:
        assert [(f.rule, f.path) for f in item.ledger] == [(Rule.UNWRAP_OBJECT, "")]
    assert llm.closed
    # What the align stage does with the one-key wrapper in a repair of the whole.
    whole = rl.repair('{"tasks": ' + tasks_text(4) + "}", list[Task], outcome=True)
    assert whole.value == [item.value for item, _ in seen]
    assert whole.ledger.rules() == [Rule.UNWRAP_OBJECT]


def test_an_object_whose_first_key_is_a_field_is_one_element() -> None:
    schema = {
        "type": "array",
        "items": {
            "type": "object",
            "properties": {"tags": {"type": "array"}, "name": {"type": "string"}},
        },
    }
    got = list(rl.repair_items(['{"tags": ["a", "b"],', ' "name": "n"}'], schema))
    assert [(i.index, i.value) for i in got] == [(0, {"tags": ["a", "b"], "name": "n"})]
    assert got[0].ledger.rules() == [Rule.WRAP_LIST]


def test_a_cut_wrapper_ends_with_a_cut_record() -> None:
    reply = '{"tasks": ' + tasks_text(3)
    chunks = [Chunk(piece) for piece in pieces(reply[: reply.rindex("{") + 5], 5)]
    got = list(rl.repair_items([*chunks, Chunk("", "length")], list[Task]))
    assert [i.ok for i in got] == [True, True, False]
    assert got[-1].cut
    assert got[-1].index == 2


def test_a_wrapper_that_turns_out_broken_keeps_its_indices() -> None:
    reply = (
        '{"tasks": [{"title": "a", "hours": 1}, {\'title\': "b", "hours": 2},'
        ' {"title": \'c\', "hours": 3}]}'
    )
    got = list(rl.repair_items(pieces(reply, 4), list[Task]))
    assert [(i.index, i.value) for i in got] == [
        (0, Task(title="a", hours=1)),
        (1, Task(title="b", hours=2)),
        (2, Task(title="c", hours=3)),
    ]
    assert all(Rule.UNWRAP_OBJECT in i.ledger.rules() for i in got)
    # Each element has its own lexical fixes, pointing into the list, not the wrapper.
    assert [f.path for f in got[1].ledger if f.rule == Rule.SINGLE_QUOTES] == ["/1/title"]
    assert [f.path for f in got[2].ledger if f.rule == Rule.SINGLE_QUOTES] == ["/2/title"]


def test_strict_policy_does_not_wrap() -> None:
    with pytest.raises(rl.RepairFailed):
        list(rl.repair_items(['{"title": "solo", "hours": 2}'], list[Task], policy="strict"))


def test_a_reply_with_no_json_raises() -> None:
    with pytest.raises(rl.NoJSONFound):
        list(rl.stream_items(Streaming("I cannot help with that."), "x", list[Task]))


# -- text that is not strict JSON -------------------------------------------------------------


def test_broken_json_still_comes_item_by_item_each_repaired_alone() -> None:
    reply = (
        "[{'title': 'a', 'hours': 1}, {title: 'b', hours: 2,},"
        " {'title': 'c' 'hours': 3} {'title': 'd', 'hours': 4}]"
    )
    fed: list[int] = []
    got = []
    chunks = pieces(reply, 6)
    reader = iter(chunks)

    def counted() -> Iterator[str]:
        for chunk in reader:
            fed.append(1)
            yield chunk

    for item in rl.repair_items(counted(), list[Task]):
        got.append((item, len(fed)))
    records = [i for i, _ in got]
    assert [r.value for r in records] == [
        Task(title="a", hours=1),
        Task(title="b", hours=2),
        Task(title="c", hours=3),
        Task(title="d", hours=4),
    ]
    assert got[0][1] < len(chunks), "the first element came before the end"
    assert Rule.SINGLE_QUOTES in records[0].ledger.rules()
    assert {f.path for f in records[1].ledger if f.rule == Rule.UNQUOTED_KEY} == {
        "/1/title",
        "/1/hours",
    }
    assert Rule.MISSING_COMMA in records[3].ledger.rules()  # between c and d
    assert rl.repair(reply, list[Task]) == [r.value for r in records]


def test_strict_elements_then_broken_ones_keep_their_indices() -> None:
    reply = '[{"title": "a", "hours": 1}, {"title": "b", "hours": 2}, {\'title\': "c", "hours": 3}]'
    got = list(rl.repair_items(pieces(reply, 7), list[Task]))
    assert [(i.index, i.value.title) for i in got] == [(0, "a"), (1, "b"), (2, "c")]
    assert list(got[0].ledger) == []
    assert list(got[1].ledger) == []
    assert Rule.SINGLE_QUOTES in got[2].ledger.rules()


# -- the async variant -------------------------------------------------------------------------


def test_astream_items_matches_stream_items() -> None:
    reply = tasks_text(4, bad={1})

    async def collect() -> list[rl.StreamedItem]:
        return [i async for i in rl.astream_items(Streaming(reply, 5), "x", list[Task])]

    got = asyncio.run(collect())
    assert got == list(rl.stream_items(Streaming(reply, 5), "x", list[Task]))
    assert [i.ok for i in got] == [True, False, True, True]


def test_arepair_items_reads_an_async_iterable() -> None:
    async def chunks() -> AsyncIterator[str]:
        for piece in pieces("[1, 2, 3]", 2):
            yield piece

    async def collect() -> list[Any]:
        return [i.value async for i in rl.arepair_items(chunks(), list[int])]

    assert asyncio.run(collect()) == [1, 2, 3]


# -- linear work -------------------------------------------------------------------------------


class _CountingMatch:
    def __init__(self, pattern: Any) -> None:
        self.pattern = pattern
        self.calls = 0

    def match(self, text: str, pos: int = 0) -> Any:
        self.calls += 1
        return self.pattern.match(text, pos)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.pattern, name)


def _work(monkeypatch: pytest.MonkeyPatch, text: str) -> dict[str, int]:
    """Feed ``text`` in 5-character chunks; count the parser's token matches, the
    elements it handed over and the element validations."""
    token = _CountingMatch(incremental._TOKEN)
    monkeypatch.setattr(incremental, "_TOKEN", token)
    counts = {"handed": 0, "validated": 0}
    closed = IncrementalParser.closed_members

    def counting_closed(
        self: IncrementalParser, start: int = 0, key: str | None = None
    ) -> list[Any] | None:
        out = closed(self, start, key)
        counts["handed"] += len(out or ())
        return out

    validate = items_module._Items.validate

    def counting_validate(self: Any, data: Any, node: Any) -> Any:
        counts["validated"] += 1
        return validate(self, data, node)

    monkeypatch.setattr(IncrementalParser, "closed_members", counting_closed)
    monkeypatch.setattr(items_module._Items, "validate", counting_validate)
    got = list(rl.repair_items(pieces(text, 5), TASK_ARRAY))
    monkeypatch.undo()
    assert all(i.ok for i in got)
    counts["tokens"] = token.calls
    counts["items"] = len(got)
    return counts


def test_work_grows_linearly_with_the_number_of_items(monkeypatch: pytest.MonkeyPatch) -> None:
    small = _work(monkeypatch, tasks_text(40))
    large = _work(monkeypatch, tasks_text(400))
    assert (small["items"], large["items"]) == (40, 400)
    # Each element handed over once and validated once, whatever the chunking.
    assert (small["handed"], large["handed"]) == (40, 400)
    assert (small["validated"], large["validated"]) == (40, 400)
    # Ten times the items: ten times the tokens matched (re-parsing the buffer at each
    # chunk would be a hundred times).
    assert large["tokens"] <= 11 * small["tokens"]


def test_broken_json_work_is_linear_too(monkeypatch: pytest.MonkeyPatch) -> None:
    def read(n: int) -> int:
        text = tasks_text(n).replace('"', "'")
        read_chars = 0

        def counting_parse(text: str, *args: Any, **kwargs: Any) -> Any:
            nonlocal read_chars
            read_chars += len(text)
            return lexical.parse(text, *args, **kwargs)

        monkeypatch.setattr(items_module, "parse", counting_parse)
        got = list(rl.repair_items(pieces(text, 5), TASK_ARRAY))
        monkeypatch.undo()
        assert len(got) == n
        assert all(i.ok for i in got)
        assert read_chars < len(text), "each element's text is read once"
        return read_chars

    assert read(400) <= 11 * read(40)
