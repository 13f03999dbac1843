"""Tier 3 of the lexical stage: a single-pass, schema-aware parser for broken JSON.

It reads the text once, left to right, with an explicit stack (no recursion, so depth is
bounded by the policy rather than by Python), understands every failure class the
pipeline knows, and asks the schema while it reads: a number where only a string fits
stays text (``02134`` → ``"02134"``), an unquoted value ends where the next known key
begins, ``#`` starts a value where a string is due and a comment elsewhere. It writes
compact, valid JSON, which the C parser then turns into the value.
"""

from __future__ import annotations

import json
import re
from typing import Any

from ..ledger import Fix, escape_pointer
from ..policy import Policy
from ..rules import Rule
from ..schema import ANY, Schema
from .errors import LexicalError, NotJSON, TrailingProse, integer_too_long, too_deep
from .result import STAGE, Parsed
from .strict import exceeds_int_digits, strict_loads
from .tokens import (
    AFTER,
    BAD_ESCAPE,
    COLON,
    CONTROL,
    IDENT_KEY,
    IDENT_TAIL,
    JSON_NUMBER,
    KEY,
    LAYOUT_ESCAPES,
    LITERAL_PREFIXES,
    LITERALS,
    PLACEHOLDER,
    QUOTE_RULE,
    QUOTED_PLACEHOLDER,
    QUOTES,
    VALUE,
    WORD,
    closes_outer,
    comment_end,
    find_quote,
    is_comment,
    json_string,
    next_key,
    normalise_number,
    number_run,
    prev_nonspace,
    starts_literal,
    strip_escapes,
)

_NUMBER = re.compile(r"[-+]?(?:0[xX][0-9a-fA-F]+|(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)")
_DQ_VALID = re.compile(r'"[^"\\\x00-\x1f]*(?:\\(?:["\\/bfnrt]|u[0-9a-fA-F]{4})[^"\\\x00-\x1f]*)*"')
_UNQUOTED_KEY = re.compile(r"[^\s:,{}\[\]\"']+(?:[ \t]+[^\s:,{}\[\]\"']+)*(?=[ \t]*[:=])")
_PLACEHOLDER_START = ".<e\u2026"
_UNQUOTED_VALUE = {
    "{": re.compile(r"[^,}\]\n]*"),
    "[": re.compile(r"[^,\]}\n]*"),
}


_PLAIN = re.compile(r'[^\x00-\x1f"\\]*')


def _quoted(text: str) -> str:
    """``text`` as a JSON string literal (``json.dumps`` only where something needs escaping)."""
    if _PLAIN.fullmatch(text):
        return '"' + text + '"'
    return json.dumps(text, ensure_ascii=False)


class _Frame:
    __slots__ = (
        "after_comma",
        "comma_at",
        "index",
        "key",
        "kind",
        "member_at",
        "node",
        "prefix",
        "state",
    )

    def __init__(self, kind: str, node: Any, member_at: int, prefix: str) -> None:
        # member_at: where the current member starts in the output (after the opener,
        # or at the comma before it), so a member cut off by the end can be dropped.
        # prefix: the JSON pointer of this container, fixed while it is open, so that
        # placing a fix costs one step, not one per level.
        self.kind = kind
        self.prefix = prefix
        self.node = node
        self.state = KEY if kind == "{" else VALUE
        self.key: str | None = None
        self.index = 0
        self.after_comma = False
        self.comma_at = -1
        self.member_at = member_at


class Tolerant:
    """A single-pass, schema-aware parser for broken JSON that writes valid JSON text."""

    def __init__(self, text: str, schema: Schema | None, policy: Policy) -> None:
        self.text = text
        self.n = len(text)
        self.schema = schema
        self.policy = policy
        self.out: list[str] = []
        self.stack: list[_Frame] = []
        self.fixes: list[Fix] = []
        self.truncated = False
        # The first ledger entry of a string, number or literal the end of the text cut
        # off (and which was completed), or -1: finish() drops it unless the policy
        # completes cut values.
        self.cut = -1
        self.completed = False
        self.done = False
        self._prose_from = -1  # see starts_prose
        self.layout_escapes = False  # a \n outside strings was read as a line break
        self.lookahead = self.n  # characters strings may scan past a quoted inner name
        self.costs: dict[str, float] = {}  # the policy's cost of each rule met so far
        self.no_run_before = 0  # a number run looked for and not found reaches this far

    # -- bookkeeping

    def fix(self, rule: str, before: Any, after: Any, *, container: bool = False) -> None:
        stack = self.stack
        depth = len(stack) - 1 if container and stack else len(stack)
        path = ""
        if depth:
            frame = stack[depth - 1]
            if frame.kind == "[":
                path = f"{frame.prefix}/{frame.index}"
            elif frame.key is not None and frame.state != KEY:
                path = f"{frame.prefix}/{escape_pointer(frame.key)}"
            else:
                path = frame.prefix
        cost = self.costs.get(rule)
        if cost is None:
            cost = self.costs[rule] = self.policy.cost(rule)
        self.fixes.append(Fix(STAGE, rule, path, before, after, cost))
        limit = self.policy.max_fixes
        if limit is not None and len(self.fixes) > limit:
            raise LexicalError(f"needs more than {limit:,} repairs (Policy.max_fixes); not read on")

    def child_prefix(self) -> str:
        """The pointer of a container opened here (inside every open frame)."""
        if not self.stack:
            return ""
        frame = self.stack[-1]
        if frame.kind == "[":
            return f"{frame.prefix}/{frame.index}"
        if frame.key is not None:
            return f"{frame.prefix}/{escape_pointer(frame.key)}"
        return frame.prefix

    def types_here(self) -> frozenset[str]:
        if self.schema is None:
            return ANY
        return self.schema.info(self.node_here()).types

    def node_here(self) -> Any:
        if self.schema is None:
            return {}
        if not self.stack:
            return self.schema.root
        frame = self.stack[-1]
        if frame.kind == "[":
            return self.schema.item(frame.node, frame.index)
        return self.schema.child(frame.node, frame.key or "")

    def known_keys(self) -> frozenset[str]:
        if self.schema is None or not self.stack:
            return frozenset()
        frame = self.stack[-1]
        target = frame if frame.kind == "{" else None
        if target is None:
            return frozenset()
        return frozenset(self.schema.info(target.node).properties)

    # -- main loop

    def run(self) -> Parsed:
        text = self.text
        pos = self.skip(0)
        if pos >= self.n:
            raise NotJSON("nothing but whitespace and comments")
        first = text[pos]
        if not (first in '{["-' or first in QUOTES or first.isdigit() or starts_literal(text, pos)):
            raise NotJSON(f"no JSON value at the start (found {first!r})")
        while True:
            pos = self.skip(pos)
            if pos >= self.n:
                self.finish()
                break
            if self.done:
                if text[pos] in "}]":
                    self.fix(Rule.EXTRA_CLOSER, text[pos], None)
                    pos += 1
                    continue
                raise LexicalError(f"text after the value at offset {pos}")
            if len(self.stack) > self.policy.max_depth:
                raise too_deep(text, self.policy)
            if not self.stack:
                pos = self.value(pos)
                continue
            frame = self.stack[-1]
            state = frame.state
            if (
                text[pos].isalpha()
                and (state in (AFTER, KEY) or frame.kind == "[")
                and self.starts_prose(pos)
            ):
                raise TrailingProse(pos)
            if state == VALUE:
                if (
                    frame.kind == "["
                    and pos >= self.no_run_before
                    and (text[pos].isdigit() or text[pos] == "-")
                    and self.numbers_as_written(frame)
                ):
                    end, self.no_run_before, _values = number_run(text, pos)
                    if end > pos:
                        pos = self.take_numbers(text[pos:end], pos, frame)
                        continue
                pos = self.value(pos)
            elif state == AFTER:
                pos = self.after(pos, frame)
            elif state == KEY:
                pos = self.key(pos, frame)
            else:
                pos = self.colon(pos, frame)
        out = "".join(self.out)
        try:
            value = strict_loads(out)
        except RecursionError:
            raise too_deep(text, self.policy) from None
        except ValueError as exc:
            if exceeds_int_digits(exc):
                raise integer_too_long(text) from None
            raise LexicalError(f"internal: produced invalid JSON ({exc})") from exc  # a bug
        return Parsed(value, self.fixes, self.truncated, self.completed)

    def skip(self, pos: int) -> int:
        text = self.text
        n = self.n
        while pos < n:
            ch = text[pos]
            if ch in " \t\r\n\ufeff\u00a0":
                pos += 1
            elif ch == "\\" and text[pos : pos + 2] in LAYOUT_ESCAPES:
                escape = text[pos : pos + 2]
                self.fix(Rule.LITERAL_NEWLINE, escape, LAYOUT_ESCAPES[escape])
                self.layout_escapes = True
                pos += 2
            elif (ch == "/" and text.startswith(("//", "/*"), pos)) or (
                ch == "#" and not self.hash_is_value()
            ):
                end = comment_end(text, pos)
                self.fix(Rule.COMMENT, text[pos:end], None)
                pos = end
            else:
                break
        return pos

    def starts_prose(self, pos: int) -> bool:
        """Whether a word at ``pos``, where a member or ``,`` is due, starts closing prose.

        A reply whose value lacks its closer runs on into the sentence after it
        (``"c": 7.5\n\nLet me know.``). The sentence starts on a new line, is no literal,
        and nothing after it looks like JSON (no bracket, quote or colon), so cutting it
        off loses no member; reading it as an unquoted key or value would invent one.
        """
        text = self.text
        if self._prose_from < 0:
            self._prose_from = 1 + max(text.rfind(c) for c in '{}[]":')
        if pos < self._prose_from or starts_literal(text, pos):
            return False
        return "\n" in text[prev_nonspace(text, pos) + 1 : pos]

    def hash_is_value(self) -> bool:
        """``#`` where a value is due and the schema wants a string starts the value."""
        if not self.stack or self.stack[-1].state != VALUE:
            return False
        types = self.types_here()
        return "string" in types and types != ANY

    def numbers_as_written(self, frame: _Frame) -> bool:
        """Whether every element of this array takes a number as it is written: no
        schema, or one item schema for all (no tuple form) that does not want strings."""
        if self.schema is None:
            return True
        node = self.schema.resolve(frame.node)
        if not isinstance(node, dict) or "prefixItems" in node:
            return False
        if not isinstance(node.get("items"), dict):
            return False
        types = self.types_here()
        return "string" not in types or bool(types & {"number", "integer"})

    def take_numbers(self, run: str, pos: int, frame: _Frame) -> int:
        """Take a run of strictly valid numbers, each with its comma, in one step.

        What the per-element path would do, without a Python step per element (a
        megabyte of ``[1,1,1,...`` took 1.4 s): the run is copied as it is, the last
        comma (``run`` ends with it) kept apart so that a trailing comma can still be
        dropped.
        """
        self.out.append(run[:-1])
        frame.comma_at = len(self.out)
        self.out.append(",")
        frame.member_at = frame.comma_at
        frame.after_comma = True
        frame.index += run.count(",")
        return pos + len(run)

    def complete(self) -> None:
        if not self.stack:
            self.done = True
            return
        frame = self.stack[-1]
        frame.state = AFTER
        frame.after_comma = False

    # -- states

    def value(self, pos: int) -> int:
        text = self.text
        ch = text[pos]
        frame = self.stack[-1] if self.stack else None
        if ch == "{" or ch == "[":
            node = self.node_here()
            self.stack.append(_Frame(ch, node, len(self.out) + 1, self.child_prefix()))
            self.out.append(ch)
            return pos + 1
        if ch in _PLACEHOLDER_START and frame is not None:
            placeholder = PLACEHOLDER.match(text, pos)
            if placeholder is not None:
                return self.drop_placeholder(pos, placeholder.end(), frame)
        if ch == '"':
            if frame is not None and frame.kind == "[":
                if self.stray_quote(pos, key=False):
                    self.fix(Rule.STRAY_QUOTE, ch, None)
                    return pos + 1
                quoted = QUOTED_PLACEHOLDER.match(text, pos)
                if quoted is not None and self.wants_no_string():
                    return self.drop_placeholder(pos, quoted.end(), frame)
            return self.dq_string(pos, key=False)
        if ch in QUOTES:
            return self.other_string(pos, key=False)
        if ch in "}]":
            if frame is None:
                raise LexicalError("a closer where a value was expected")
            if frame.kind == "{":
                self.fix(Rule.MISSING_VALUE, None, None)
                self.out.append("null")
                self.complete()
            return self.close(pos, frame)
        if ch == ",":
            if frame is None:
                raise LexicalError("a comma where a value was expected")
            if frame.kind == "[":
                self.fix(Rule.EXTRA_COMMA, ",", None)
                return pos + 1
            self.fix(Rule.MISSING_VALUE, None, None)
            self.out.append("null")
            self.complete()
            return pos
        if ch == "-" and text.startswith("-Infinity", pos):
            self.fix(Rule.JS_LITERAL, "-Infinity", None)
            self.out.append("null")
            self.complete()
            return pos + 9
        if ch.isdigit() or ch in "-+.":
            return self.number(pos)
        word = WORD.match(text, pos)
        if word is not None:
            got = word.group()
            literal = LITERALS.get(got)
            if literal is not None:
                value, rule = literal
                if rule:
                    self.fix(rule, got, value)
                self.out.append(value)
                self.complete()
                return word.end()
            if word.end() >= self.n and got != "" and frame is not None:
                for full in LITERAL_PREFIXES:
                    if full.startswith(got):
                        self.truncated = True
                        self.cut = len(self.fixes)
                        value = LITERALS[full][0]
                        self.fix(Rule.TRUNCATED_LITERAL, got, value)
                        self.out.append(value)
                        self.complete()
                        return word.end()
        if frame is None:
            raise LexicalError(f"no JSON value at offset {pos}")
        return self.unquoted_value(pos, frame)

    def after(self, pos: int, frame: _Frame) -> int:
        text = self.text
        ch = text[pos]
        if ch == ",":
            frame.after_comma = True
            frame.comma_at = len(self.out)
            self.out.append(",")
            frame.member_at = frame.comma_at
            if frame.kind == "[":
                frame.index += 1
                frame.state = VALUE
            else:
                frame.state = KEY
            return pos + 1
        if ch in "}]":
            return self.close(pos, frame)
        if ch == ":" and frame.kind == "{":
            raise LexicalError(f"unexpected ':' at offset {pos}")
        if ch == '"' and self.stray_quote(pos, key=False):
            self.fix(Rule.STRAY_QUOTE, ch, None)
            return pos + 1
        if ch in _PLACEHOLDER_START:
            placeholder = PLACEHOLDER.match(text, pos)
            if placeholder is not None:
                # ``[1, 2 ...]``: no comma before it, so nothing to take with it.
                self.fix(Rule.PLACEHOLDER, placeholder.group(), None)
                return placeholder.end()
        if frame.kind == "{" and not (
            ch in '"' or ch in QUOTES or _UNQUOTED_KEY.match(text, pos) is not None
        ):
            raise LexicalError(f"expected ',' or '}}' at offset {pos}")
        # Another member or element with no comma before it; glued to the one before
        # when nothing at all separates them (``"x""b": 2``, ``}{``).
        glued = ch in '"{[' and text[pos - 1] in '"}]'
        self.fix(Rule.GLUED_MEMBERS if glued else Rule.MISSING_COMMA, None, ",")
        frame.comma_at = len(self.out)
        self.out.append(",")
        frame.after_comma = True
        frame.member_at = frame.comma_at
        if frame.kind == "[":
            frame.index += 1
            frame.state = VALUE
        else:
            frame.state = KEY
        return pos

    def key(self, pos: int, frame: _Frame) -> int:
        text = self.text
        ch = text[pos]
        if ch == '"':
            if self.stray_quote(pos, key=True):
                self.fix(Rule.STRAY_QUOTE, ch, None)
                return pos + 1
            return self.dq_string(pos, key=True)
        if ch in _PLACEHOLDER_START:
            placeholder = PLACEHOLDER.match(text, pos)
            if placeholder is not None:
                return self.drop_placeholder(pos, placeholder.end(), frame)
        if ch in QUOTES:
            return self.other_string(pos, key=True)
        if ch in "}]":
            return self.close(pos, frame)
        if ch == ",":
            self.fix(Rule.EXTRA_COMMA, ",", None)
            return pos + 1
        match = _UNQUOTED_KEY.match(text, pos)
        if match is not None:
            name = match.group()
            frame.key = name
            token = _quoted(name)
            self.out.append(token)
            frame.state = COLON
            self.fix(Rule.UNQUOTED_KEY, name, token)
            return match.end()
        if IDENT_TAIL.fullmatch(text, pos):
            # A key cut off by the end of the text.
            self.truncated = True
            self.fix(Rule.TRUNCATED_MEMBER, text[pos:], None)
            return self.n
        raise LexicalError(f"expected a key at offset {pos}, found {ch!r}")

    def colon(self, pos: int, frame: _Frame) -> int:
        ch = self.text[pos]
        if ch == ":":
            self.out.append(":")
            frame.state = VALUE
            return pos + 1
        if ch == "=":
            self.fix(Rule.MISSING_COLON, "=", ":")
            self.out.append(":")
            frame.state = VALUE
            return pos + 1
        if ch in ",}":
            self.fix(Rule.MISSING_VALUE, None, None)
            self.out.append(":null")
            self.complete()
            return pos
        self.fix(Rule.MISSING_COLON, None, ":")
        self.out.append(":")
        frame.state = VALUE
        return pos

    def close(self, pos: int, frame: _Frame) -> int:
        ch = self.text[pos]
        want = "}" if frame.kind == "{" else "]"
        self.drop_trailing_comma(frame)
        if ch != want:
            depth = closes_outer([f.kind for f in self.stack], ch, self.text, pos + 1)
            if depth is not None:
                # The closer belongs to an outer container: close the inner ones first.
                while len(self.stack) > depth + 1:
                    inner = self.stack[-1]
                    self.drop_trailing_comma(inner)
                    closer = "}" if inner.kind == "{" else "]"
                    self.fix(Rule.MISSING_CLOSER, None, closer, container=True)
                    self.stack.pop()
                    self.out.append(closer)
                    self.complete()
                return pos
            self.fix(Rule.WRONG_CLOSER, ch, want, container=True)
        self.stack.pop()
        self.out.append(want)
        self.complete()
        return pos + 1

    def drop_trailing_comma(self, frame: _Frame) -> None:
        if frame.after_comma and frame.state in (KEY, VALUE) and frame.comma_at >= 0:
            self.out[frame.comma_at] = ""
            frame.after_comma = False
            self.fix(Rule.TRAILING_COMMA, ",", None, container=True)
            if frame.kind == "[":
                frame.index -= 1

    def drop_placeholder(self, pos: int, end: int, frame: _Frame) -> int:
        """Drop a placeholder (``...``) where an element, a key or a member's value is due.

        What the model wrote for it goes too: the comma before it, or the comma after it
        when it comes first, and the key of a member whose value it is (``"b": ...``).
        """
        text = self.text
        self.fix(Rule.PLACEHOLDER, text[pos:end], None)
        del self.out[frame.member_at :]
        if frame.comma_at >= 0 and frame.member_at == frame.comma_at:
            if frame.kind == "[":
                frame.index -= 1
            frame.state = AFTER
            frame.after_comma = False
            return end
        frame.state = KEY if frame.kind == "{" else VALUE
        k = self.space_end(end)
        return k + 1 if k < self.n and text[k] == "," else end

    def stray_quote(self, pos: int, *, key: bool) -> bool:
        """Whether the ``"`` at ``pos`` stands alone before a closer: ``["a", "b""]``.

        Only when no string that ends well starts there (``["a" "]"]`` is two strings).
        """
        if not self.before_closer(pos + 1):
            return False
        valid = _DQ_VALID.match(self.text, pos)
        return valid is None or not self.string_ends_at(valid.end() - 1, key)

    def before_closer(self, k: int) -> bool:
        """Whether only whitespace stands between ``k`` and a closer."""
        k = self.space_end(k)
        return k < self.n and self.text[k] in "]}"

    def space_end(self, k: int) -> int:
        """``k`` past whitespace, and past the layout written as escapes (``\\n``): after
        a quote or a value either is outside any string (see :meth:`skip`)."""
        text = self.text
        n = self.n
        while k < n:
            ch = text[k]
            if ch in " \t\r\n":
                k += 1
            elif ch == "\\" and text[k : k + 2] in LAYOUT_ESCAPES:
                k += 2
            else:
                break
        return k

    def wants_no_string(self) -> bool:
        """Whether the schema says what belongs here, and a string does not."""
        types = self.types_here()
        return types != ANY and "string" not in types

    def finish(self) -> None:
        """The text ended: complete what is open, as a reply cut off by a token limit needs.

        A string, number or literal the end cut off is completed only where the policy
        says so (``complete_cut_values``); otherwise the element or member holding it is
        dropped, and at the top level, where there is nothing to drop, the completed
        value stands but is marked (the pipeline refuses it, with the value as ``best``).
        """
        if self.cut >= 0 and not self.policy.complete_cut_values:
            if self.stack:
                frame = self.stack[-1]
                del self.fixes[self.cut :]
                dropped = "".join(self.out[frame.member_at :])
                del self.out[frame.member_at :]
                if frame.kind == "{":
                    self.fix(Rule.TRUNCATED_MEMBER, dropped, None)
                else:
                    self.fix(Rule.TRUNCATED_ELEMENT, dropped, None)
                    if frame.after_comma or dropped.startswith(","):
                        frame.index -= 1
                frame.state = AFTER
                frame.after_comma = False
            else:
                self.completed = True
        elif self.cut >= 0:
            self.completed = True
        while self.stack:
            frame = self.stack[-1]
            if frame.state == COLON or (frame.kind == "{" and frame.state == VALUE):
                # A key with no value yet: drop the member (and its comma).
                self.truncated = True
                dropped = "".join(self.out[frame.member_at :])
                del self.out[frame.member_at :]
                self.fix(Rule.TRUNCATED_MEMBER, dropped, None)
                frame.state = AFTER
                frame.after_comma = False
            elif frame.after_comma:
                self.truncated = True
                self.drop_trailing_comma(frame)
            closer = "}" if frame.kind == "{" else "]"
            self.fix(Rule.MISSING_CLOSER, None, closer, container=True)
            self.truncated = True
            self.stack.pop()
            self.out.append(closer)
            self.complete()
        if not self.done:
            raise LexicalError("the text ended before any value")

    # -- tokens

    def dq_string(self, pos: int, *, key: bool) -> int:
        text = self.text
        valid = _DQ_VALID.match(text, pos)
        if valid is not None and self.string_ends_at(valid.end() - 1, key):
            token = valid.group()
            self.emit_string(token, key)
            return valid.end()
        return self.rough_string(pos, key, '"', '"')

    def other_string(self, pos: int, *, key: bool) -> int:
        opener = self.text[pos]
        return self.rough_string(pos, key, opener, QUOTES[opener])

    def rough_string(self, pos: int, key: bool, opener: str, closer: str) -> int:
        """A string with faults: inner quotes, raw control characters, bad escapes, no end."""
        text = self.text
        n = self.n
        mark = len(self.fixes)
        i = pos + 1
        first_end = -1
        inner_key = -1  # the first end skipped as the end of a quoted name inside the text
        opened = -1  # the quote before the one being tried, inside the string
        while True:
            j = find_quote(text, i, closer)
            if j < 0:
                break
            if first_end < 0:
                first_end = j
            if self.string_ends_at(j, key):
                if key or opened < 0 or not self.inner_name(opened, j):
                    break
                if inner_key < 0:
                    inner_key = j
            opened = j
            i = j + 1
        if inner_key >= 0:
            # Scanning past a quoted name costs up to the rest of the text once per
            # string; the budget keeps the whole parse linear.
            self.lookahead -= (j if j >= 0 else n) - inner_key
            if j < 0:
                j = inner_key
        truncated = False
        if j < 0:
            # No quote fits: the first one closes the string after all, or none does
            # and the reply was cut off inside it.
            truncated = first_end < 0
            j = n if truncated else first_end
        elif (
            not key
            and closer == '"'
            and text.startswith('"', j + 1)
            and self.before_closer(j + 2)
            and strip_escapes(text[pos + 1 : j]).count('"') % 2 == 1
        ):
            # ``["He said "hi""]``: an inner quote is still open, so the first of the two
            # quotes before the closer is hers and the second ends the string (with an even
            # count, as in ``"b""]``, the second is a stray one).
            j += 1
        body = text[pos + 1 : j]
        if opener == "'":
            body = body.replace("\\'", "'")
        token = json_string(body)
        if opener != '"':
            self.fix(QUOTE_RULE.get(opener, Rule.SMART_QUOTES), text[pos : j + 1], token)
        else:
            if '"' in strip_escapes(body):
                self.fix(Rule.UNESCAPED_QUOTE, text[pos : j + 1], token)
            if CONTROL.search(body):
                self.fix(Rule.RAW_CONTROL_CHAR, text[pos : j + 1], token)
            if BAD_ESCAPE.search(body):
                self.fix(Rule.INVALID_ESCAPE, text[pos : j + 1], token)
        if truncated:
            self.truncated = True
            self.cut = mark
            self.fix(Rule.TRUNCATED_STRING, text[pos:], token)
            self.emit_string(token, key)
            return n
        self.emit_string(token, key)
        return j + 1

    def string_ends_at(self, j: int, key: bool) -> bool:
        """Whether the quote at ``j`` really closes the string (what follows must fit)."""
        text = self.text
        n = self.n
        k = self.space_end(j + 1)
        if k >= n:
            return True
        nxt = text[k]
        if key:
            return nxt in ":=" or not (j + 1 < n and (text[j + 1].isalnum()))
        if nxt in "}]:" or is_comment(text, k):
            return True
        if nxt == ",":
            return self.plausible_after_comma(k + 1)
        # Another string right after is a missing comma; so is a value on the next line
        # (a line break written as an escape too).
        if nxt == '"' or "\n" in text[j + 1 : k] or "\\n" in text[j + 1 : k]:
            return True
        if nxt.isdigit() and self.stack and self.stack[-1].kind == "[":
            # ``["Q1 2024"12.4, 0.08]``: a number with its comma or closer right after
            # is the next element; a quoted year inside text (``"the "2024" report"``)
            # is followed by its own closing quote instead.
            number = _NUMBER.match(text, k)
            if number is not None:
                end = self.space_end(number.end())
                return end >= n or text[end] in ",]"
        # So is a key the schema knows, with its colon (``"a"b:1``, minified): a quote
        # inside the text is far less likely to be followed by exactly that.
        key_next = IDENT_KEY.match(text, k)
        return key_next is not None and key_next.group() in self.known_keys()

    def inner_name(self, opened: int, j: int) -> bool:
        """Whether ``"name":`` between the quotes at ``opened`` and ``j`` is text inside a
        string value rather than the next member after a string that lost its end.

        ``"chart": "x-axis Reach\\n    "Taskwarrior": [0.4, 0.7]"``: the quotes around
        ``Taskwarrior`` are the string's own, unescaped, and a colon follows. Read as a
        key only when the schema knows that name here; with no schema (or no budget
        left) the first fitting quote ends the string, as it always did.
        """
        k = self.space_end(j + 1)
        if self.lookahead <= 0 or self.text[k : k + 1] != ":":
            return False
        keys = self.known_keys()
        return bool(keys) and self.text[opened + 1 : j] not in keys

    def plausible_after_comma(self, k: int) -> bool:
        text = self.text
        n = self.n
        k = self.space_end(k)
        if k >= n:
            return True
        ch = text[k]
        frame = self.stack[-1] if self.stack else None
        in_object = frame is not None and frame.kind == "{"
        if ch in "}]" or is_comment(text, k) or PLACEHOLDER.match(text, k) is not None:
            return True
        if in_object:
            if ch == '"' or ch in QUOTES:
                return True
            return _UNQUOTED_KEY.match(text, k) is not None
        if ch in '"{[-' or ch in QUOTES or ch.isdigit():
            return True
        word = WORD.match(text, k)
        return word is not None and word.group() in LITERALS

    def emit_string(self, token: str, key: bool) -> None:
        if key:
            frame = self.stack[-1]
            frame.key = json.loads(token) if "\\" in token else token[1:-1]
            frame.state = COLON
            self.out.append(token)
            return
        self.out.append(token)
        self.complete()

    def number(self, pos: int) -> int:
        text = self.text
        match = _NUMBER.match(text, pos)
        if match is None:
            frame = self.stack[-1] if self.stack else None
            if frame is None:
                raise LexicalError(f"no JSON value at offset {pos}")
            return self.unquoted_value(pos, frame)
        raw = match.group()
        end = match.end()
        if end < self.n and (text[end].isalpha() or text[end] == "_") and self.stack:
            return self.unquoted_value(pos, self.stack[-1])
        types = self.types_here()
        if "string" in types and not types & {"number", "integer"}:
            token = json.dumps(raw)
            self.fix(Rule.NUMBER_AS_STRING, raw, token)
            self.out.append(token)
            self.complete()
            return end
        if JSON_NUMBER.match(raw):
            self.out.append(raw)
            self.complete()
            return end
        # At the very end, "2." or "1e-" is a number the cut went through, not a style.
        cut = end >= self.n and raw[-1] in "eE+-." and not self.policy.complete_cut_values
        normal = None if cut else normalise_number(raw)
        if normal is not None:
            token = normal
            self.fix(Rule.NUMBER_FORMAT, raw, token)
        elif end >= self.n:
            self.truncated = True
            self.cut = len(self.fixes)
            token = normalise_number(raw.rstrip("eE+-.")) or "0"
            self.fix(Rule.TRUNCATED_LITERAL, raw, token)
        else:
            raise LexicalError(f"malformed number {raw!r} at offset {pos}")
        self.out.append(token)
        self.complete()
        return end

    def unquoted_value(self, pos: int, frame: _Frame) -> int:
        text = self.text
        end = self.segment_end(frame.kind, pos)
        rule = Rule.UNQUOTED_VALUE
        if frame.kind == "{":
            keys = self.known_keys()
            start = pos
            while True:
                if keys:
                    cut = next_key(text, start, end, keys, frame.key)
                    if cut is not None:
                        end = cut
                        break
                if end >= self.n or text[end] != "," or self.member_follows(end + 1, keys):
                    break
                # No member after the comma: it is part of the text (``Smith, John``),
                # which runs on to the next key (a guess, dearer than a plain value).
                rule = Rule.UNQUOTED_COMMAS
                start = end + 1
                end = self.segment_end(frame.kind, start)
        raw = text[pos:end].rstrip()
        if not raw:
            raise LexicalError(f"unexpected {text[pos]!r} at offset {pos}")
        if raw[-1:] == '"' and raw.count('"') == 1:
            raw = raw[:-1]  # a value missing only its opening quote
        token = _quoted(raw)
        if end >= self.n:
            self.truncated = True
            self.cut = len(self.fixes)
        self.fix(rule, raw, token)
        self.out.append(token)
        self.complete()
        return pos + len(text[pos:end].rstrip()) if end < self.n else end

    def segment_end(self, kind: str, start: int) -> int:
        """Where an unquoted value that starts at ``start`` stops: a delimiter, a line end."""
        text = self.text
        match = _UNQUOTED_VALUE[kind].match(text, start)
        end = match.end() if match is not None else start
        if self.layout_escapes and "\\" in text[start:end]:
            for escape in ("\\n", "\\r"):
                found = text.find(escape, start, end)
                if found >= 0:
                    end = found
        return end

    def member_follows(self, k: int, keys: frozenset[str]) -> bool:
        """Whether a member (or the end of the object) follows a comma before ``k``."""
        text = self.text
        n = self.n
        while k < n and text[k] in " \t":
            k += 1
        if k >= n or text[k] in '\r\n}]{["' or text[k] in QUOTES or is_comment(text, k):
            return True
        if self.layout_escapes and text[k : k + 2] in LAYOUT_ESCAPES:
            return True
        if IDENT_KEY.match(text, k) is not None:
            return True
        key = _UNQUOTED_KEY.match(text, k)
        return key is not None and (not keys or key.group() in keys)
