"""The repair rules: every change a stage may make, each with its cost.

A ledger's :class:`~repairllm.ledger.Fix` names the rule that made it, and a
:class:`~repairllm.policy.Policy` prices and forbids rules by name. The set is closed:
a rule is a member of :class:`Rule`, and a name that is not one is an error wherever it
turns up (a fix, a policy's ``costs`` or ``forbid``), never a silent default cost.
"""

from __future__ import annotations

from enum import Enum

__all__ = ["Rule", "rule_named"]


class Rule(str, Enum):
    """One repair rule: its value is its name in ledgers, reports and policies.

    A member is a ``str`` equal to its value and prints as it (``str``, ``format`` and
    ``repr`` give ``"trailing_comma"``, not ``Rule.TRAILING_COMMA``), so ledgers read
    and serialize as plain names. ``Rule("trailing_comma")`` gives the member.

    Attributes:
        cost: how much one application lowers confidence in the result. Lexical fixes
            that cannot change meaning are cheap; guesses (a fuzzy key, a completed
            truncation, json-repair's long tail) are dear, so that a candidate needing
            fewer or safer guesses wins. :data:`repairllm.policy.RULE_COSTS` lists them.
    """

    _value_: str
    cost: float

    def __new__(cls, value: str, cost: float) -> Rule:
        member = str.__new__(cls, value)
        member._value_ = value
        member.cost = cost
        return member

    def __str__(self) -> str:
        return self._value_

    def __format__(self, spec: str) -> str:
        return format(self._value_, spec)

    def __repr__(self) -> str:
        return repr(self._value_)

    # extract: how the candidate was found in the reply
    THINK_BLOCK = "think_block", 0.0
    BYTE_ORDER_MARK = "byte_order_mark", 0.0
    FENCED_BLOCK = "fenced_block", 0.05
    TAGGED_BLOCK = "tagged_block", 0.05
    JSON_SPAN = "json_span", 0.1
    GREEDY_SPAN = "greedy_span", 0.3
    JOINED_VALUES = "joined_values", 0.4
    UNCLOSED_SPAN = "unclosed_span", 0.3
    SCALAR_LINE = "scalar_line", 0.3
    INSIDE_THINK = "inside_think", 1.0
    PROSE_ANSWER = "prose_answer", 1.5
    # lexical
    COMMENT = "comment", 0.05
    TRAILING_COMMA = "trailing_comma", 0.05
    EXTRA_COMMA = "extra_comma", 0.1
    SINGLE_QUOTES = "single_quotes", 0.05
    SMART_QUOTES = "smart_quotes", 0.05
    UNQUOTED_KEY = "unquoted_key", 0.1
    PYTHON_LITERAL = "python_literal", 0.1
    JS_LITERAL = "js_literal", 0.3
    RAW_CONTROL_CHAR = "raw_control_char", 0.05
    INVALID_ESCAPE = "invalid_escape", 0.2
    NUMBER_FORMAT = "number_format", 0.2
    NUMBER_AS_STRING = "number_as_string", 0.2
    MISSING_COMMA = "missing_comma", 0.2
    MISSING_COLON = "missing_colon", 0.3
    UNQUOTED_VALUE = "unquoted_value", 0.4
    UNESCAPED_QUOTE = "unescaped_quote", 0.4
    WRONG_CLOSER = "wrong_closer", 0.5
    MISSING_CLOSER = "missing_closer", 0.5
    EXTRA_CLOSER = "extra_closer", 0.3
    LITERAL_NEWLINE = "literal_newline", 0.05
    GLUED_MEMBERS = "glued_members", 0.2
    STRAY_QUOTE = "stray_quote", 0.3
    PLACEHOLDER = "placeholder", 0.5
    UNQUOTED_COMMAS = "unquoted_commas", 0.5
    MISSING_VALUE = "missing_value", 1.0
    TRUNCATED_STRING = "truncated_string", 1.0
    TRUNCATED_LITERAL = "truncated_literal", 1.0
    TRUNCATED_MEMBER = "truncated_member", 1.0
    TRUNCATED_ELEMENT = "truncated_element", 1.0
    TRUNCATED_CONTAINER = "truncated_container", 0.5
    JSON_REPAIR = "json_repair", 3.0
    # align
    KEY_CASE = "key_case", 0.2
    KEY_ALIAS = "key_alias", 0.2
    KEY_FUZZY = "key_fuzzy", 1.0
    UNWRAP_OBJECT = "unwrap_object", 0.5
    UNWRAP_CALL = "unwrap_call", 0.3
    UNWRAP_LIST = "unwrap_list", 0.5
    WRAP_LIST = "wrap_list", 0.5
    DECODE_STRING = "decode_string", 0.3
    COERCE = "coerce", 0.3
    NUMBER_SYMBOLS = "number_symbols", 0.4
    ENUM_CASE = "enum_case", 0.3
    FILL_DEFAULT = "fill_default", 0.0
    DROP_EXTRA = "drop_extra", 1.0


def rule_named(name: str) -> Rule:
    """The member named ``name`` (a member is returned as it is).

    Raises:
        ValueError: ``name`` is no rule; the message lists the rules.
    """
    try:
        return _BY_NAME[name]
    except (KeyError, TypeError):
        raise ValueError(
            f"unknown repair rule {name!r}; the rules are: {', '.join(_BY_NAME)}"
        ) from None


_BY_NAME: dict[str, Rule] = {rule.value: rule for rule in Rule}
