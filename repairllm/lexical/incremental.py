"""Read a reply as it streams in, with total work linear in its length.

:class:`IncrementalParser` keeps its state between chunks (the stack of open
containers, the scan position, where an unfinished string may end) so each
character is scanned once. It yields nothing itself; ask it for :meth:`snapshot`
whenever :meth:`feed` says a member completed. A snapshot copies only the open
containers along the current path, so completed subtrees are shared, not copied; when
nothing completed since the last, it is the last one again.

A snapshot's copy grows with the reply (a list of a million numbers, a hundred
thousand levels), and so does what a caller does with each (align it to a schema,
compare it with the last), so :meth:`feed` paces the snapshots it asks for: one is due
when a member completed and the value so far is small, or no bigger than twice the
text read since the last due one, or complete. All the snapshots it asks for, and
any work proportional to each value, then cost time linear in the reply, as the scan
does. (A value of up to a couple of hundred members gets one per member; :meth:`snapshot`
may be called at any time.)

A reply that is not strict JSON (single quotes, unquoted keys ...) switches the
parser to a fallback that repairs the whole buffer again only when it has doubled
since the last try, which keeps the total work linear too.

A reader that takes a root array one element at a time (``repairllm.items``) asks
:meth:`closed_members` for the elements completed since the last call: they are the
parser's own objects, never changed once closed, so nothing is copied or parsed
again. In the fallback, where no value is read until the end, the bracket count
records where each element lies instead (:meth:`member_spans`, when asked with
``members=True``), so each can be repaired on its own as soon as it has closed.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable
from typing import Any, cast

import orjson

from ..errors import RepairLLMError
from ..policy import resolve_policy
from . import parse
from .errors import LexicalError
from .strict import may_hold_big_int, space_end
from .tokens import AFTER, COLON, KEY, VALUE, number_run

__all__ = ["IncrementalParser"]

# One token after optional whitespace: a punctuation mark, a complete string, a number
# or a literal. A number or literal touching the end of the buffer may still grow, so
# the caller waits for more text before taking it.
_TOKEN = re.compile(
    r"""[ \t\r\n]*(?:
        (?P<punct>[{}\[\],:])
      | (?P<string>"(?:[^"\\]|\\.)*")
      | (?P<number>-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?)
      | (?P<word>true|false|null)
    )""",
    re.VERBOSE,
)
_STRING_BODY = re.compile(r'(?:[^"\\]|\\.)*')
_START = re.compile(r"[{\[]")
_THINK_END = re.compile(r"</think\s*>", re.IGNORECASE)
_WORDS = {"true": True, "false": False, "null": None}
# Text after a number or word that may still belong to it ("-3" + "e2", "nul" + "l").
# What the fallback's bracket count skips: outside strings, inside each kind of string.
_PLAIN_RUN = cast("Callable[[str, int], re.Match[str]]", re.compile(r"[^\"'{}\[\]]*").match)
_QUOTED_RUN = {
    '"': cast("Callable[[str, int], re.Match[str]]", re.compile(r'[^"\\]*').match),
    "'": cast("Callable[[str, int], re.Match[str]]", re.compile(r"[^'\\\n]*").match),
}
_GROWING_TAIL = re.compile(r"[0-9.eE+\-a-z]*")
_GROWING = re.compile(r"-?[0-9.eE+-]*|t(?:r(?:ue?)?)?|f(?:a(?:l(?:se?)?)?)?|n(?:u(?:ll?)?)?")
# What keeps an unmatched number-like tail growing (``_GROWING``'s first alternative).
_GROWING_NUMBER = re.compile(r"[0-9.eE+-]*")
_SPACE = re.compile(r"\s*")
# The size of the value so far: its members, and this much for each open container
# (copying one is a Python step, copying a member a C one) ...
_FRAME_COST = 32
# ... and a snapshot is due when that is at most this, ...
_SNAPSHOT_SMALL = 256
# ... or at most this many times the characters read since the last due snapshot.
_SNAPSHOT_PACE = 2


class _Frame:
    __slots__ = ("container", "key", "slot", "state")

    def __init__(self, container: dict[str, Any] | list[Any], slot: str | int | None) -> None:
        self.container = container
        self.slot = slot  # where this container sits in its parent
        self.key: str | None = None
        self.state = KEY if isinstance(container, dict) else VALUE  # what may come next


class IncrementalParser:
    """Parse JSON text fed in chunks, keeping state between them.

    Args:
        members: in the fallback, also record where the root array's members lie
            (:meth:`member_spans`); without it the fallback only follows where the value
            ends, at less cost per character.

    Example:
        >>> p = IncrementalParser()
        >>> p.feed('Here: {"a": 1, "b": [tr')
        True
        >>> p.snapshot()
        {'a': 1, 'b': []}
        >>> p.feed('ue]}')
        True
        >>> p.snapshot(), p.complete
        ({'a': 1, 'b': [True]}, True)
    """

    def __init__(self, *, members: bool = False) -> None:
        self._members = members
        self.text = ""
        self._pos = 0
        self._stack: list[_Frame] = []
        self._root: Any = None
        self._started = False
        self._in_think: bool | None = None
        self._string_from = -1  # start of an unfinished string token, or -1
        self._string_scan = 0  # where scanning that string resumes
        self.complete = False
        self.fallback = False
        self._fallback_len = 0
        self._fallback_value: Any = None
        self._repaired_len = 0  # the buffer length the fallback value was repaired from
        self._fallback_growth = 2  # how many times longer the buffer must be for the next
        self._no_run_before = 0  # a number run looked for and not found reaches this far
        self._root_start = 0
        # The fallback's own bracket count, which knows both quote characters.
        self._fb_pos = 0
        self._fb_depth = 0
        self._fb_quote = ""
        self._fb_escape = False
        # The root array's members as the fallback's count finds them: (start, end)
        # offsets of each one complete, and where the one being read began (else -1).
        self._fb_track = False
        self._fb_members: list[tuple[int, int]] = []
        self._fb_open = -1
        self._lead = 0  # leading whitespace scanned so far, while the start is undecided
        # While a number or word touching the end may still grow: where its scan
        # resumes (else -1), and the characters that keep it growing. More of those
        # change nothing, so the token is not matched again from its start each chunk.
        self._wait_scan = -1
        self._wait_chars = _GROWING_TAIL
        # Pacing the snapshots (see the module's docstring).
        self._placed = 0  # members placed so far, at any depth
        self._pending = False  # something completed since the last due snapshot
        self._due_at = 0  # len(text) at the last due snapshot
        self._last: Any = None  # the last snapshot, while ``_fresh``: nothing placed since
        self._fresh = False

    # -- feeding ------------------------------------------------------------------------

    def feed(self, chunk: str) -> bool:
        """Add text; return whether a new snapshot is due.

        It is due when a value or member completed and the value is small next to the
        text read since the last due one (see the module's docstring), and always when
        the value completes; what completed while none was due shows in the next one.
        """
        if not chunk:
            return False
        # Extended in place: with the attribute's reference dropped, ``+=`` on the only
        # one left grows the string, where ``self.text += chunk`` copied the whole
        # buffer for every chunk (1 MB in 4-character chunks: 78 s).
        text = self.text
        self.text = ""
        text += chunk
        self.text = text
        del text
        if self.complete:
            return False
        if self.fallback:
            self._count_brackets()
            return self._fallback_due(final=self.complete)
        return self._due(self._scan(final=False))

    def close(self) -> bool:
        """The stream ended: numbers and words touching the end are now complete.

        Returns whether a snapshot is due: something completed since the last due one.
        """
        if self.fallback:
            return self._fallback_due(final=True)
        return self._due(self._scan(final=True), final=True)

    @property
    def end(self) -> int | None:
        """Where the value ends in :attr:`text` once it is :attr:`complete`, else ``None``.

        What follows is not part of the value: a reader that stops there sees the value
        its snapshots showed, whatever the model wrote after it.
        """
        if not self.complete:
            return None
        return self._fb_pos if self.fallback else self._pos

    def snapshot(self) -> Any:
        """The value so far: completed members only, open containers copied along the path.

        Nothing in it changes as more text arrives. When nothing completed since the
        last snapshot it is that snapshot again (the same object).
        """
        if self.fallback:
            return self._fallback_snapshot()
        if not self._started:
            return None
        if self._fresh:
            return self._last
        top = self._root.copy()
        parent = top
        for frame in self._stack[1:]:
            child = frame.container.copy()
            parent[frame.slot] = child
            parent = child
        self._last, self._fresh = top, True
        return top

    # -- the root array, one member at a time -------------------------------------------

    @property
    def opener(self) -> str:
        """The value's first character, ``"["`` or ``"{"``; ``""`` until it begins."""
        return self.text[self._root_start] if self._started else ""

    @property
    def first_key(self) -> str | None:
        """The root object's first key, once its value has begun (strict JSON only)."""
        root = self._root
        if self.fallback or not isinstance(root, dict) or not root:
            return None
        key: str = next(iter(root))
        return key

    def closed_members(self, start: int = 0, key: str | None = None) -> list[Any] | None:
        """The complete members, from index ``start`` on, of the root array, or with
        ``key`` of the array that is the root object's member ``key`` (a list wrapped in
        an object); ``None`` when there is no such array (strict JSON only: see
        :meth:`member_spans` for the fallback).

        A member is complete once its closer or its last token has been read; the parser
        never touches it again, so it is handed out as it is, not copied (do not change
        it: snapshots share it). Only the new ones are sliced, so a reader that asks
        after every chunk pays for each member once.
        """
        array, level = self._array(key)
        if array is None:
            return None
        stack = self._stack
        # A frame above the array's is its last member, still open.
        open_last = len(stack) > level + 1 and stack[level].container is array
        return array[start : len(array) - 1 if open_last else len(array)]

    def array_closed(self, key: str | None = None) -> bool:
        """Whether the array :meth:`closed_members` reads (same ``key``) has closed."""
        array, level = self._array(key)
        stack = self._stack
        return array is not None and not (len(stack) > level and stack[level].container is array)

    def _array(self, key: str | None) -> tuple[list[Any] | None, int]:
        """The array :meth:`closed_members` reads, and its depth on the stack."""
        root = self._root
        if self.fallback:
            return None, 0
        if key is None:
            return (root, 0) if isinstance(root, list) else (None, 0)
        value = root.get(key) if isinstance(root, dict) else None
        return (value, 1) if isinstance(value, list) else (None, 1)

    def member_spans(self, start: int = 0) -> list[tuple[int, int]]:
        """Where the root array's complete members lie in :attr:`text`, from index ``start``
        on, once the parser has fallen back (text that is not strict JSON); recorded
        only for a parser made with ``members=True``.

        Counted from the root's opening bracket, so the indices are the members'
        whether or not strict parsing had read the first ones. A member ends at the
        comma after it, at its own closer, or at the array's; an empty one (``[1,,2]``,
        a trailing comma) is none.
        """
        return self._fb_members[start:]

    def _due(self, completed: bool, *, final: bool = False) -> bool:
        """Whether a snapshot is due after a scan in which something ``completed``.

        Always when the value completed; else when a member was placed since the last
        due snapshot (a closer adds nothing a snapshot would show) and the value is
        small, or paid for by the text read since (see the module's docstring).
        """
        if not self._stack:
            due = completed or self._pending
            self._pending = False
            return due
        if not self._pending:
            return False
        cost = self._placed + _FRAME_COST * len(self._stack)
        if not (
            final
            or cost <= _SNAPSHOT_SMALL
            or cost <= _SNAPSHOT_PACE * (len(self.text) - self._due_at)
        ):
            return False
        self._pending = False
        self._due_at = len(self.text)
        return True

    # -- the scanner --------------------------------------------------------------------

    def _begin(self) -> bool:
        text = self.text
        if self._in_think is None:
            # The leading whitespace is skipped once, not again at every chunk.
            space = _SPACE.match(text, self._lead)
            assert space is not None  # ``\s*`` matches everywhere
            lead = self._lead = space.end()
            if len(text) - lead < 7 and "<think>".startswith(text[lead:]):
                return False
            self._in_think = text.startswith("<think>", lead)
        if self._in_think:
            end = _THINK_END.search(text, self._pos)
            if end is None:
                self._pos = max(self._pos, len(text) - 9)
                return False
            self._pos = end.end()
            self._in_think = False
        start = _START.search(text, self._pos)
        if start is None:
            self._pos = len(text)
            return False
        container: dict[str, Any] | list[Any] = {} if text[start.start()] == "{" else []
        self._root = container
        self._stack.append(_Frame(container, None))
        self._started = True
        self._pos = start.end()
        self._root_start = start.start()
        return True

    def _scan(self, final: bool) -> bool:
        if not self._started and not self._begin():
            return False
        text = self.text
        end = len(text)
        if self._wait_scan >= 0:
            grown = self._wait_chars.match(text, self._wait_scan)
            assert grown is not None  # a starred class matches everywhere
            if not final and grown.end() >= end:
                self._wait_scan = end  # still growing: nothing to read yet
                return False
            self._wait_scan = -1
        changed = False
        pos = self._pos
        while self._stack:
            if self._string_from >= 0:
                body = _STRING_BODY.match(text, self._string_scan)
                assert body is not None
                stop = body.end()
                if stop >= end or text[stop] != '"':
                    self._string_scan = stop
                    break
                token_end = stop + 1
                kind, raw = "string", text[self._string_from : token_end]
                self._string_from = -1
            else:
                frame = self._stack[-1]
                if (
                    frame.state == VALUE
                    and pos >= self._no_run_before
                    and frame.container.__class__ is list
                ):
                    run_end, self._no_run_before, values = number_run(text, pos)
                    if values is not None and self._take_numbers(frame, text, pos, run_end, values):
                        pos = run_end
                        changed = True
                        continue
                match = _TOKEN.match(text, pos)
                if match is None:
                    after = space_end(text, pos)
                    if after >= end:
                        pos = after
                        break
                    if text[after] == '"':
                        self._string_from = after
                        self._string_scan = after + 1
                        pos = after
                        continue
                    if not final and _GROWING.fullmatch(text, after) is not None:
                        pos = after
                        if text[after] not in "tfn":  # a word prefix is short: no need
                            self._wait_scan, self._wait_chars = end, _GROWING_NUMBER
                        break
                    self._fail(after)
                    return True
                kind = match.lastgroup or ""
                raw = match.group(kind)
                token_end = match.end()
                if (
                    not final
                    and kind in ("number", "word")
                    and _GROWING_TAIL.fullmatch(text, token_end)
                ):
                    pos = match.start(kind)
                    self._wait_scan, self._wait_chars = end, _GROWING_TAIL
                    break
            pos = token_end
            outcome = self._token(kind, raw)
            if outcome is None:
                self._fail(token_end - len(raw))
                return True
            changed = changed or outcome
        self._pos = pos
        if not self._stack:
            self.complete = True
        return changed

    def _token(self, kind: str, raw: str) -> bool | None:
        """Apply one token; return whether something completed, or None on a syntax error."""
        frame = self._stack[-1]
        container = frame.container
        state = frame.state
        if kind == "punct":
            if raw == ",":
                if state != AFTER:
                    return None
                frame.state = KEY if isinstance(container, dict) else VALUE
                return False
            if raw == ":":
                if state != COLON:
                    return None
                frame.state = VALUE
                return False
            if raw in "}]":
                if (raw == "}") != isinstance(container, dict):
                    return None
                # After a member, or at once in an empty container; "[1,]" is not JSON.
                if not (state == AFTER or (not container and state in (KEY, VALUE))):
                    return None
                self._stack.pop()
                if self._stack:
                    self._stack[-1].state = AFTER
                return True
            # "{" or "["
            if state != VALUE or len(self._stack) >= _PARTIAL_POLICY.max_depth:
                # Deeper than the lexical stage reads: the fallback follows the brackets
                # cheaply to the end, and the final repair refuses the text.
                return None
            child: dict[str, Any] | list[Any] = {} if raw == "{" else []
            slot = self._place(frame, child)
            self._stack.append(_Frame(child, slot))
            return False
        if state == KEY:
            if kind != "string" or not isinstance(container, dict):
                return None
            try:
                frame.key = orjson.loads(raw)
            except orjson.JSONDecodeError:  # a raw control character: not strict JSON
                return None
            frame.state = COLON
            return False
        if state != VALUE:
            return None
        try:
            if kind == "word":
                value: Any = _WORDS[raw]
            elif len(raw) > 18 and raw.lstrip("-").isdigit():
                value = int(raw)  # orjson reads integers past 64 bits as floats
            else:
                value = orjson.loads(raw)
        except ValueError:  # orjson's JSONDecodeError, or an integer past Python's limit
            return None
        self._place(frame, value)
        frame.state = AFTER
        return True

    def _take_numbers(
        self, frame: _Frame, text: str, start: int, end: int, values: list[Any]
    ) -> bool:
        """Append a run of numbers (``text[start:end]``, each with its comma) to the open
        array at once.

        What a token at a time would do, without a Python step per number (a megabyte
        of ``[1,1,1,...`` streamed took 1.5 s); integers past 64 bits, which orjson
        would read as floats, go the token path.
        """
        if may_hold_big_int(text[start:end]):
            return False
        container = frame.container
        assert isinstance(container, list)
        container.extend(values)
        self._fresh = False
        self._pending = True
        self._placed += len(values)
        return True

    def _place(self, frame: _Frame, value: Any) -> str | int:
        self._fresh = False  # the value changed: the last snapshot is stale
        self._pending = True
        self._placed += 1
        container = frame.container
        if isinstance(container, dict):
            key = frame.key
            assert key is not None
            container[key] = value
            return key
        container.append(value)
        return len(container) - 1

    # -- the fallback for text that is not strict JSON ----------------------------------

    def _fail(self, at: int) -> None:
        del at  # the whole buffer is re-read by the tolerant pipeline from here on
        self.fallback = True
        self._stack.clear()
        self._fb_pos = self._root_start
        self._fb_track = self._members and self.opener == "["
        self._count_brackets()
        self._fallback_due(final=True)

    def _count_brackets(self) -> None:
        """Follow the bracket depth of text that is not strict JSON, to see where it ends.

        Single- and double-quoted strings are skipped, so the value is complete when
        the depth returns to zero: a caller can stop reading there, as with strict JSON.
        """
        if self._fb_track:
            self._count_members()
            return
        text = self.text
        n = len(text)
        depth, quote, escape = self._fb_depth, self._fb_quote, self._fb_escape
        i = self._fb_pos
        # The characters that matter are few: runs of the others are skipped by one C
        # match each, not a Python step per character.
        while i < n:
            if quote:
                if escape:  # the character after a backslash that ended the last chunk
                    escape = False
                    i += 1
                    continue
                i = _QUOTED_RUN[quote](text, i).end()
                if i >= n:
                    break
                if text[i] == "\\":
                    escape = True
                else:  # its closing quote, or a newline: a single quote was an apostrophe
                    quote = ""
                i += 1
                continue
            i = _PLAIN_RUN(text, i).end()
            if i >= n:
                break
            ch = text[i]
            i += 1
            if ch in "\"'":
                quote = ch
            elif ch in "{[":
                depth += 1
            else:
                depth -= 1
                if depth <= 0:
                    self.complete = True
                    break
        self._fb_pos = min(i, n)
        self._fb_depth, self._fb_quote, self._fb_escape = depth, quote, escape

    def _count_members(self) -> None:
        """:meth:`_count_brackets` for a root array whose members' spans are wanted
        (:meth:`member_spans`). A loop of its own: it is the fallback's per-character
        hot path, and the members' bookkeeping would slow every other reader down."""
        text = self.text
        depth, quote, escape = self._fb_depth, self._fb_quote, self._fb_escape
        members, member = self._fb_members, self._fb_open
        for i in range(self._fb_pos, len(text)):
            ch = text[i]
            if quote:
                if escape:
                    escape = False
                elif ch == "\\":
                    escape = True
                elif ch == quote or (ch == "\n" and quote == "'"):
                    quote = ""  # (a newline ends an apostrophe, as above)
                continue
            if depth == 1 and ch not in " \t\r\n":
                # Directly inside the root array: members begin and end here.
                if ch == ",":
                    if member >= 0:
                        members.append((member, i))
                        member = -1
                    continue
                if member < 0 and ch not in "]}":
                    member = i
            if ch in "\"'":
                quote = ch
            elif ch in "{[":
                depth += 1
            elif ch in "}]":
                depth -= 1
                if depth == 1 and member >= 0:  # a container member closed
                    members.append((member, i + 1))
                    member = -1
                elif depth <= 0:
                    if member >= 0:  # the last member, closed by the array
                        members.append((member, i))
                        member = -1
                    self.complete = True
                    self._fb_pos = i + 1
                    break
        else:
            self._fb_pos = len(text)
        self._fb_depth, self._fb_quote, self._fb_escape = depth, quote, escape
        self._fb_open = member

    def _fallback_due(self, final: bool) -> bool:
        """Whether a snapshot is due: the buffer has doubled since the last (grown four
        to sixteen times, after repairs that failed), or it ended.

        The repair itself waits for :meth:`snapshot`, so a caller that only wants to
        know where the value ends (``generate``) never pays for it; repairing only
        doubled buffers keeps the total work linear.
        """
        if not final and len(self.text) < self._fallback_growth * self._fallback_len:
            return False
        # Once the value is complete, what follows it is not repaired along with it.
        self._fallback_len = max(self._fb_pos if self.complete else len(self.text), 1)
        return True

    def _fallback_snapshot(self) -> Any:
        if self._repaired_len != self._fallback_len:
            self._repaired_len = self._fallback_len
            # A prefix that could not be repaired rarely becomes repairable by growing:
            # the next try waits for four times the text, not two, and each failure in
            # a row doubles the wait (to sixteen times).
            self._fallback_growth = min(2 * self._fallback_growth, 16)
            with contextlib.suppress(RepairLLMError, LexicalError):
                self._fallback_value = self._repair(self.text[: self._fallback_len])
                self._fallback_growth = 2
        return self._fallback_value

    def _repair(self, text: str) -> Any:
        """The value of ``text``, a prefix of a reply that is not strict JSON.

        Here the lexical stage alone reads it from the root's opening bracket on;
        :class:`repairllm.stream.IncrementalParser` reads it with the whole pipeline
        (extraction, choice between candidates) instead.

        Raises:
            LexicalError: no value could be read (the last snapshot stands).
        """
        return parse(text[self._root_start :], None, _PARTIAL_POLICY).value


_PARTIAL_POLICY = resolve_policy("lenient").replace(name="partial", accept_truncated=True)
