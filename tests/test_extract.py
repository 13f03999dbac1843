"""The extract stage: finding the JSON in a model's reply.

``repairllm.candidates`` is checked directly (the exact candidates, in order), and
:func:`repairllm.repair` end to end (the exact value, the exact ledger, truncation).
"""

from __future__ import annotations

from typing import Any

import pytest

import repairllm
from repairllm import DEFAULT, Policy

OBJ = {"type": "object"}
EXTRACT_RULES = {
    "fenced_block",
    "tagged_block",
    "think_block",
    "json_span",
    "unclosed_span",
    "greedy_span",
    "inside_think",
    "scalar_line",
}

# -- candidates() -------------------------------------------------------------------------

CANDIDATES = [
    # fenced blocks
    pytest.param(
        'Here it is:\n```json\n{"a": 1}\n```\nDone.',
        [("whole", 'Here it is:\n```json\n{"a": 1}\n```\nDone.'), ("fenced_block", '{"a": 1}\n')],
        id="fence-json",
    ),
    pytest.param(
        "```\n[1, 2]\n```",
        [("whole", "```\n[1, 2]\n```"), ("fenced_block", "[1, 2]\n")],
        id="fence-bare",
    ),
    pytest.param(
        '~~~json\n{"a": 1}\n~~~',
        [("whole", '~~~json\n{"a": 1}\n~~~'), ("fenced_block", '{"a": 1}\n')],
        id="fence-tilde",
    ),
    pytest.param(
        '```JSON5 title="x"\n{"a": 1}\n```',
        [("whole", '```JSON5 title="x"\n{"a": 1}\n```'), ("fenced_block", '{"a": 1}\n')],
        id="fence-language-tag-and-info",
    ),
    pytest.param(
        '``` json\n{"a": 1}\n```',
        [("whole", '``` json\n{"a": 1}\n```'), ("fenced_block", '{"a": 1}\n')],
        id="fence-space-before-language",
    ),
    pytest.param(
        'Sure:\n```json\n{"a": 1}',
        [("whole", 'Sure:\n```json\n{"a": 1}'), ("fenced_block", '{"a": 1}')],
        id="fence-unclosed-at-end",
    ),
    pytest.param(
        '```json\n{"a": 1}\n```\nor\n```json\n{"b": 2}\n```',
        [
            ("whole", '```json\n{"a": 1}\n```\nor\n```json\n{"b": 2}\n```'),
            ("fenced_block", '{"a": 1}\n'),
            ("fenced_block", '{"b": 2}\n'),
            ("greedy_span", '{"a": 1}\n```\nor\n```json\n{"b": 2}'),
        ],
        id="fence-two",
    ),
    # tagged blocks
    pytest.param(
        '[CONTENT]{"a": 1}[/CONTENT]',
        [
            ("whole", '[CONTENT]{"a": 1}[/CONTENT]'),
            ("tagged_block", '{"a": 1}'),
            ("json_span", "[CONTENT]"),
            ("json_span", "[/CONTENT]"),
        ],
        id="tag-content",
    ),
    pytest.param(
        'Answer: <json>{"a": 1}</json>',
        [("whole", 'Answer: <json>{"a": 1}</json>'), ("tagged_block", '{"a": 1}')],
        id="tag-json",
    ),
    pytest.param(
        "<output>\n[1, 2]\n</output> thanks",
        [("whole", "<output>\n[1, 2]\n</output> thanks"), ("tagged_block", "\n[1, 2]\n")],
        id="tag-output",
    ),
    pytest.param(
        '[JSON]{"a": 1}',
        [("whole", '[JSON]{"a": 1}'), ("tagged_block", '{"a": 1}'), ("json_span", "[JSON]")],
        id="tag-unclosed",
    ),
    pytest.param(
        '<JSON>{"a": 1}</JSON>',
        [("whole", '<JSON>{"a": 1}</JSON>'), ("tagged_block", '{"a": 1}')],
        id="tag-uppercase",
    ),
    # think blocks
    pytest.param(
        '<think>I could say {"b": 2}.</think>\n{"a": 1}',
        [("think_block", '{"a": 1}'), ("inside_think", '{"b": 2}')],
        id="think-closed",
    ),
    pytest.param(
        'maybe {"b": 2}</think>{"a": 1}',
        [("think_block", '{"a": 1}'), ("inside_think", '{"b": 2}')],
        id="think-close-without-opener",
    ),
    pytest.param(
        '<think>the answer is\n{"a": 1}',
        [("think_block", 'the answer is\n{"a": 1}'), ("json_span", '{"a": 1}')],
        id="think-unclosed",
    ),
    pytest.param(
        '<think>draft {"b": 2}</think>no JSON, sorry',
        [("think_block", "no JSON, sorry"), ("inside_think", '{"b": 2}')],
        id="think-without-answer",
    ),
    pytest.param(
        '<thinking>hmm</thinking>\n```json\n{"a": 1}\n```',
        [("think_block", '```json\n{"a": 1}\n```'), ("fenced_block", '{"a": 1}\n')],
        id="think-then-fence",
    ),
    # spans
    pytest.param(
        'The result is {"a": 1} as requested.',
        [("whole", 'The result is {"a": 1} as requested.'), ("json_span", '{"a": 1}')],
        id="span-prose-around",
    ),
    pytest.param(
        'ok {"a": "x}", "b": "{y"} fine',
        [("whole", 'ok {"a": "x}", "b": "{y"} fine'), ("json_span", '{"a": "x}", "b": "{y"}')],
        id="span-brackets-inside-strings",
    ),
    pytest.param(
        'A {"a": 1} B [2, 3] C',
        [
            ("whole", 'A {"a": 1} B [2, 3] C'),
            ("json_span", '{"a": 1}'),
            ("json_span", "[2, 3]"),
            ("greedy_span", '{"a": 1} B [2, 3]'),
        ],
        id="span-several-and-greedy",
    ),
    pytest.param(
        'Sure: {"a": [1, 2',
        [("whole", 'Sure: {"a": [1, 2'), ("unclosed_span", '{"a": [1, 2')],
        id="span-unclosed",
    ),
    pytest.param(
        'First {"a": 1} then {"b": [1,',
        [
            ("whole", 'First {"a": 1} then {"b": [1,'),
            ("json_span", '{"a": 1}'),
            ("unclosed_span", '{"b": [1,'),
        ],
        id="span-closed-then-unclosed",
    ),
    # an unclosed value inside a fence stops before the closing fence, so the span is
    # the fenced block again (dropped as a duplicate), not the value plus the fence
    pytest.param(
        '```json\n{"a": [1, 2\n```',
        [("whole", '```json\n{"a": [1, 2\n```'), ("fenced_block", '{"a": [1, 2\n')],
        id="span-unclosed-in-fence",
    ),
    pytest.param(
        'Here: {"a": [1, 2\n~~~  \n',
        [("whole", 'Here: {"a": [1, 2\n~~~'), ("unclosed_span", '{"a": [1, 2')],
        id="span-unclosed-before-closing-fence",
    ),
    # more members after the last closer: the closer is a nested one, not the end
    pytest.param(
        'Here:\n{\n "a": [5, false],\n "b": true\n\nBye.',
        [
            ("whole", 'Here:\n{\n "a": [5, false],\n "b": true\n\nBye.'),
            ("unclosed_span", '{\n "a": [5, false],\n "b": true\n\nBye.'),
        ],
        id="span-unclosed-no-greedy-before-members",
    ),
    # a scalar alone on the last line
    pytest.param(
        'Sure! Here it is:\n"morning"\n',
        [("whole", 'Sure! Here it is:\n"morning"'), ("scalar_line", '"morning"')],
        id="scalar-string",
    ),
    pytest.param(
        "The count:\n  -4.5e2 ",
        [("whole", "The count:\n  -4.5e2"), ("scalar_line", "-4.5e2")],
        id="scalar-number",
    ),
    pytest.param(
        "Is it?\nfalse", [("whole", "Is it?\nfalse"), ("scalar_line", "false")], id="scalar-literal"
    ),
    pytest.param(
        'The word is: "morning".',
        [("whole", 'The word is: "morning".')],
        id="scalar-after-colon-not-without-schema",
    ),
    pytest.param(
        "I have 3 apples.\nThanks",
        [("whole", "I have 3 apples.\nThanks")],
        id="scalar-not-in-prose",
    ),
    # the last line of a reply cut off inside a container is a member, not a scalar
    pytest.param(
        "Here:\n[\n1,\n2",
        [("whole", "Here:\n[\n1,\n2"), ("unclosed_span", "[\n1,\n2")],
        id="scalar-not-inside-open-container",
    ),
    pytest.param("", [], id="empty"),
    pytest.param("   \n ", [], id="blank"),
]


@pytest.mark.parametrize(("text", "expected"), CANDIDATES)
def test_candidates(text: str, expected: list[tuple[str, str]]) -> None:
    found = list(repairllm.candidates(text))
    assert [(c.rule, c.text) for c in found] == expected
    assert [c.rank for c in found] == sorted(c.rank for c in found)
    assert len({c.text.strip() for c in found}) == len(found), "duplicates"


@pytest.mark.parametrize(
    "text",
    [
        *(p.values[0] for p in CANDIDATES if not p.id.startswith("think")),
        pytest.param('<think>I could say {"b": 2}.</think>\n{"a": 1}', id="think-closed"),
        pytest.param('maybe {"b": 2}</think>{"a": 1}', id="think-close-without-opener"),
        pytest.param('<think>the answer is\n{"a": 1}', id="think-unclosed"),
        pytest.param('<thinking>hmm</thinking>\n```json\n{"a": 1}\n```', id="think-then-fence"),
        pytest.param('Pre <think>x {"b": 2}</think> then {"a": 1}', id="prose-then-think"),
        pytest.param('a<think>x</think>b</think>c {"a": 1}<think>d [1]', id="think-all-kinds"),
        pytest.param('  \n {"a": 1} ', id="whole-with-blanks"),
    ],
)
def test_candidate_start_is_an_offset_into_the_reply(text: str) -> None:
    for cand in repairllm.candidates(text):
        if cand.start >= 0:
            assert text[cand.start : cand.start + len(cand.text)] == cand.text, cand


def test_loose_scalars_take_a_string_after_a_colon() -> None:
    text = 'The word is: "morning".'
    found = [(c.rule, c.text) for c in repairllm.candidates(text, loose_scalars=True)]
    assert found == [("whole", text), ("scalar_line", '"morning"')]


def test_candidates_limit() -> None:
    text = 'A {"a": 1} B {"b": 2} C'
    assert [c.rule for c in repairllm.candidates(text, limit=2)] == ["whole", "json_span"]
    assert [c.text for c in repairllm.candidates(text, limit=1)] == [text]


# -- repair() end to end ------------------------------------------------------------------

REPAIRS = [
    # fenced blocks
    pytest.param(
        'Here it is:\n```json\n{"a": 1}\n```\nDone.',
        None,
        {"a": 1},
        [("extract", "fenced_block", "")],
        False,
        id="fence-json",
    ),
    pytest.param(
        "```\n[1, 2]\n```", None, [1, 2], [("extract", "fenced_block", "")], False, id="fence-bare"
    ),
    pytest.param(
        '~~~json\n{"a": 1}\n~~~',
        None,
        {"a": 1},
        [("extract", "fenced_block", "")],
        False,
        id="fence-tilde",
    ),
    pytest.param(
        '```JSON5 title="x"\n{"a": 1}\n```',
        None,
        {"a": 1},
        [("extract", "fenced_block", "")],
        False,
        id="fence-language-tag-and-info",
    ),
    pytest.param(
        "Code:\n```javascript\n{a: 1}\n```",
        None,
        {"a": 1},
        [("extract", "fenced_block", ""), ("lexical", "unquoted_key", "/a")],
        False,
        id="fence-javascript-unquoted-key",
    ),
    pytest.param(
        '```jsonc\n{"a": 1} // one\n```',
        None,
        {"a": 1},
        [("extract", "fenced_block", ""), ("lexical", "comment", "")],
        False,
        id="fence-jsonc-comment",
    ),
    pytest.param(
        'Sure:\n```json\n{"a": 1}',
        None,
        {"a": 1},
        [("extract", "fenced_block", "")],
        False,
        id="fence-unclosed-complete-value",
    ),
    pytest.param(
        'Sure:\n```json\n{"a": [1, 2',
        None,
        {"a": [1, 2]},
        [
            ("extract", "fenced_block", ""),
            ("lexical", "missing_closer", "/a"),
            ("lexical", "missing_closer", ""),
        ],
        True,
        id="fence-unclosed-truncated-value",
    ),
    pytest.param(
        '```json\n{"a": 1}\n```\nor\n```json\n{"b": 2}\n```',
        None,
        {"a": 1},
        [("extract", "fenced_block", "")],
        False,
        id="fence-two-first-wins",
    ),
    pytest.param(
        '```json\n{"a": 1}\n```',
        OBJ,
        {"a": 1},
        [("extract", "fenced_block", "")],
        False,
        id="fence-with-schema",
    ),
    # tagged blocks
    pytest.param(
        '[CONTENT]{"a": 1}[/CONTENT]',
        None,
        {"a": 1},
        [("extract", "tagged_block", "")],
        False,
        id="tag-content",
    ),
    pytest.param(
        '[CONTENT]\n{"a": 1}\n[/CONTENT]',
        None,
        {"a": 1},
        [("extract", "tagged_block", "")],
        False,
        id="tag-content-newlines",
    ),
    pytest.param(
        'Answer: <json>{"a": 1}</json>',
        None,
        {"a": 1},
        [("extract", "tagged_block", "")],
        False,
        id="tag-json",
    ),
    pytest.param(
        "<output>\n[1, 2]\n</output> thanks",
        None,
        [1, 2],
        [("extract", "tagged_block", "")],
        False,
        id="tag-output",
    ),
    pytest.param(
        "<answer>{'a': 1}</answer>",
        None,
        {"a": 1},
        [("extract", "tagged_block", ""), ("lexical", "single_quotes", "/a")],
        False,
        id="tag-answer-single-quotes",
    ),
    pytest.param(
        '[JSON]{"a": 1}',
        None,
        {"a": 1},
        [("extract", "tagged_block", "")],
        False,
        id="tag-unclosed",
    ),
    # think blocks
    pytest.param(
        '<think>I could say {"b": 2}.</think>\n{"a": 1}',
        None,
        {"a": 1},
        [("extract", "think_block", "")],
        False,
        id="think-closed-braces-inside-lose",
    ),
    pytest.param(
        '<thinking>x</thinking>{"a": 1}',
        None,
        {"a": 1},
        [("extract", "think_block", "")],
        False,
        id="think-thinking-tag",
    ),
    pytest.param(
        '<THINK>x {"b": 2}</THINK>\n{"a": 1}',
        None,
        {"a": 1},
        [("extract", "think_block", "")],
        False,
        id="think-uppercase",
    ),
    pytest.param(
        'maybe {"b": 2}</think>{"a": 1}',
        None,
        {"a": 1},
        [("extract", "think_block", "")],
        False,
        id="think-close-without-opener",
    ),
    pytest.param(
        '<think>the answer is\n{"a": 1}',
        None,
        {"a": 1},
        [("extract", "json_span", "")],
        False,
        id="think-unclosed",
    ),
    pytest.param(
        '<think>draft {"b": 2}</think>no JSON, sorry',
        None,
        {"b": 2},
        [("extract", "inside_think", "")],
        False,
        id="think-only-json-is-inside",
    ),
    pytest.param(
        '<thinking>hmm</thinking>\n```json\n{"a": 1}\n```',
        None,
        {"a": 1},
        [("extract", "fenced_block", "")],
        False,
        id="think-then-fence",
    ),
    pytest.param(
        '<think>{"a": "draft"}</think>{"a": 1}',
        {"type": "object", "properties": {"a": {"type": "integer"}}},
        {"a": 1},
        [("extract", "think_block", "")],
        False,
        id="think-braces-inside-lose-with-schema",
    ),
    pytest.param(
        '<think>{"a": 1, "b": 2}</think>Answer: {"a": 3}',
        None,
        {"a": 3},
        [("extract", "json_span", "")],
        False,
        id="think-whole-json-inside-loses-to-span",
    ),
    # prose around one value
    pytest.param(
        'The result is: {"a": 1}',
        None,
        {"a": 1},
        [("extract", "json_span", "")],
        False,
        id="prose-before",
    ),
    pytest.param(
        '{"a": 1}\nHope this helps!',
        None,
        {"a": 1},
        [("extract", "json_span", "")],
        False,
        id="prose-after",
    ),
    pytest.param(
        'The result is {"a": 1} as requested.',
        None,
        {"a": 1},
        [("extract", "json_span", "")],
        False,
        id="prose-around",
    ),
    pytest.param(
        'ok {"a": "x}", "b": "{y"} fine',
        None,
        {"a": "x}", "b": "{y"},
        [("extract", "json_span", "")],
        False,
        id="prose-brackets-inside-strings",
    ),
    pytest.param(
        "Numbers: [1, 2, 3].",
        None,
        [1, 2, 3],
        [("extract", "json_span", "")],
        False,
        id="prose-array",
    ),
    # several values
    pytest.param(
        'A {"a": 1} B {"b": 2} C',
        None,
        {"a": 1},
        [("extract", "json_span", "")],
        False,
        id="several-first-wins",
    ),
    pytest.param(
        '{"a": 1}\n{"b": 2}\n{"c": 3}',
        None,
        {"a": 1},
        [("extract", "json_span", "")],
        False,
        id="several-lines-first-wins",
    ),
    pytest.param(
        'Option 1: {"a": 1}\nOption 2: {"b": 2}',
        {"type": "object", "required": ["b"]},
        {"b": 2},
        [("extract", "json_span", "")],
        False,
        id="several-schema-picks-second",
    ),
    pytest.param(
        '{"a": 1}\n{"b": 2}\n{"c": 3}',
        {"type": "object", "required": ["c"]},
        {"c": 3},
        [("extract", "json_span", "")],
        False,
        id="several-schema-picks-third",
    ),
    pytest.param(
        '[1] then {"b": 2}',
        OBJ,
        {"b": 2},
        [("extract", "json_span", "")],
        False,
        id="several-schema-picks-by-type",
    ),
    # values that run off the end
    pytest.param(
        'Sure: {"a": [1, 2',
        None,
        {"a": [1, 2]},
        [
            ("extract", "unclosed_span", ""),
            ("lexical", "missing_closer", "/a"),
            ("lexical", "missing_closer", ""),
        ],
        True,
        id="unclosed",
    ),
    pytest.param(
        'Here you go: [1, 2, {"x": "abc',
        None,
        [1, 2, {}],  # the cut string is not completed: its member is dropped
        [
            ("extract", "unclosed_span", ""),
            ("lexical", "truncated_member", "/2/x"),
            ("lexical", "missing_closer", "/2"),
            ("lexical", "missing_closer", ""),
        ],
        True,
        id="unclosed-in-string",
    ),
    pytest.param(
        '{"a": 1, "b": [true',
        None,
        {"a": 1, "b": [True]},
        [("lexical", "missing_closer", "/b"), ("lexical", "missing_closer", "")],
        True,
        id="unclosed-whole-reply",
    ),
    pytest.param(
        'First {"a": 1} then {"b": [1,',
        None,
        {"a": 1},
        [("extract", "json_span", "")],
        False,
        id="closed-value-beats-unclosed",
    ),
    # A value missing its closer, followed by prose: the span runs to the end, and the
    # prose is cut where the JSON stops; nothing after a nested closer is dropped.
    pytest.param(
        'Here:\n{\n "a": [5, false],\n "b": true,\n "c": 7.5\n\nLet me know.',
        None,
        {"a": [5, False], "b": True, "c": 7.5},
        [("extract", "unclosed_span", ""), ("lexical", "missing_closer", "")],
        True,
        id="unclosed-then-prose",
    ),
    pytest.param(
        '{\n "a": [5, false],\n "b": "x"\n\nLet me know if you\'d like changes.',
        {"type": "object", "required": ["a", "b"]},
        {"a": [5, False], "b": "x"},
        [("extract", "unclosed_span", ""), ("lexical", "missing_closer", "")],
        True,
        id="unclosed-whole-reply-then-prose",
    ),
    pytest.param(
        '<think>ok</think>\n{"a": {"b": [1]},\n "c": 2\nThat is all.',
        None,
        {"a": {"b": [1]}, "c": 2},
        [("extract", "unclosed_span", ""), ("lexical", "missing_closer", "")],
        True,
        id="think-then-unclosed-then-prose",
    ),
    pytest.param(
        "Values:\n[1, [2],\n 3,\n\nHope this helps",
        None,
        [1, [2], 3],
        [
            ("extract", "unclosed_span", ""),
            ("lexical", "trailing_comma", ""),
            ("lexical", "missing_closer", ""),
        ],
        True,
        id="unclosed-array-then-prose",
    ),
    pytest.param(
        'Result: {"a": 1, "b": [2]}\n\nNote: a { starts an object.',
        None,
        {"a": 1, "b": [2]},
        [("extract", "json_span", "")],
        False,
        id="complete-value-then-stray-opener",
    ),
    pytest.param(
        'Result: {"a": 1, "b": [2]}\nThen {\nmore prose',
        {"type": "object", "required": ["b"]},
        {"a": 1, "b": [2]},
        [("extract", "json_span", "")],
        False,
        id="complete-value-then-stray-opener-and-prose",
    ),
    # A top-level scalar on the last line, after prose.
    pytest.param(
        'Sure! Here is the JSON you asked for:\n"morning"',
        None,
        "morning",
        [("extract", "scalar_line", "")],
        False,
        id="scalar-string-after-prose",
    ),
    pytest.param(
        'Sure! Here is the JSON you asked for:\n"morning"',
        {"type": "string"},
        "morning",
        [("extract", "scalar_line", "")],
        False,
        id="scalar-string-schema",
    ),
    pytest.param(
        'The greeting is: "good morning".',
        {"type": "string"},
        "good morning",
        [("extract", "scalar_line", "")],
        False,
        id="scalar-string-after-colon-schema",
    ),
    pytest.param(
        "Let me count.\n\n42\n",
        {"type": "integer"},
        42,
        [("extract", "scalar_line", "")],
        False,
        id="scalar-int",
    ),
    pytest.param(
        '```\n"morning"\n```',
        {"type": "string"},
        "morning",
        [("extract", "fenced_block", "")],
        False,
        id="scalar-fenced",
    ),
    pytest.param(
        'Here: {"a": 1}\n42',
        None,
        {"a": 1},
        [("extract", "json_span", "")],
        False,
        id="span-beats-scalar",
    ),
    pytest.param(
        'First {"a": 1} then {"b": [1,',
        {"type": "object", "required": ["b"]},
        {"b": [1]},
        [
            ("extract", "unclosed_span", ""),
            ("lexical", "trailing_comma", "/b"),
            ("lexical", "missing_closer", "/b"),
            ("lexical", "missing_closer", ""),
        ],
        True,
        id="unclosed-picked-by-schema",
    ),
]


@pytest.mark.parametrize(("text", "schema", "expected", "ledger", "truncated"), REPAIRS)
def test_repair_extracts(
    text: str, schema: Any, expected: Any, ledger: list[tuple[str, str, str]], truncated: bool
) -> None:
    outcome = repairllm.repair(text, schema, outcome=True)
    assert outcome.value == expected
    assert [(f.stage, f.rule, f.path) for f in outcome.ledger] == ledger
    assert outcome.truncated is truncated
    assert outcome.issues == []
    assert outcome.raw == text
    extract = outcome.ledger.stage("extract")
    assert len(extract) <= 1
    for fix in extract:
        assert fix.rule in EXTRACT_RULES
        assert fix.rule == outcome.candidate.rule
        assert fix.after is None
        assert fix.cost == DEFAULT.cost(fix.rule)
    if not extract:
        assert outcome.candidate.rule == "whole"


@pytest.mark.parametrize(
    ("text", "before"),
    [
        pytest.param(
            'Here it is:\n```json\n{"a": 1}\n```\nDone.',
            "Here it is:\n```json\n … ```\nDone.",
            id="fence",
        ),
        pytest.param('[CONTENT]{"a": 1}[/CONTENT]', "[CONTENT] … [/CONTENT]", id="tag"),
        pytest.param(
            'The result is {"a": 1} as requested.', "The result is  …  as requested.", id="span"
        ),
        pytest.param('Sure: {"a": [1, 2', "Sure:  …", id="unclosed"),
        pytest.param(
            '<think>I could say {"b": 2}.</think>\n{"a": 1}',
            '<think>I could say {"b": 2}.</think>',
            id="think",
        ),
        pytest.param('maybe {"b": 2}</think>{"a": 1}', 'maybe {"b": 2}', id="think-close-only"),
        pytest.param(
            'Here:\n{"a": [1],\n "b": 2\n\nLet me know.',
            "Here:\n … \n\nLet me know.",
            id="unclosed-then-prose",
        ),
        pytest.param(
            'Pre <think>x</think> then {"a": 1} ok',
            "Pre <think>x</think> then  …  ok",
            id="prose-then-think",
        ),
    ],
)
def test_extract_fix_records_what_was_dropped(text: str, before: str) -> None:
    (fix,) = repairllm.repair(text, outcome=True).ledger.stage("extract")
    assert fix.before == before


@pytest.mark.parametrize(
    "text",
    [
        pytest.param(
            '<think>\nLet me consider {"draft": true}\n</think>\n\nFinal: {"a": 1}', id="span"
        ),
        pytest.param('<reasoning>r</reasoning>\n```json\n{"a": 1}\n```', id="fence"),
    ],
)
def test_extract_fix_after_think_block_does_not_contain_the_value(text: str) -> None:
    (fix,) = repairllm.repair(text, outcome=True).ledger.stage("extract")
    assert '{"a": 1}' not in fix.before


def test_unescaped_quote_inside_prose() -> None:
    assert repairllm.repair('x {"a": "quote " inside"} y') == {"a": 'quote " inside'}


# -- ambiguity ------------------------------------------------------------------------------

FAIL = Policy(on_ambiguity="fail")


@pytest.mark.parametrize(
    ("text", "values", "rule"),
    [
        pytest.param('A {"a": 1} B {"b": 2} C', [{"a": 1}, {"b": 2}], "json_span", id="spans"),
        pytest.param(
            '{"a": 1}\n{"b": 2}\n{"c": 3}', [{"a": 1}, {"b": 2}, {"c": 3}], "json_span", id="three"
        ),
        pytest.param(
            '```json\n{"a": 1}\n```\nor\n```json\n{"b": 2}\n```',
            [{"a": 1}, {"b": 2}],
            "fenced_block",
            id="fences",
        ),
        pytest.param(
            '[CONTENT]{"a": 1}[/CONTENT] <json>{"b": 2}</json>',
            [{"a": 1}, {"b": 2}],
            "tagged_block",
            id="tags",
        ),
        pytest.param("Either [1] or [2].", [[1], [2]], "json_span", id="arrays"),
    ],
)
def test_ambiguous_values_fail_when_asked(text: str, values: list[Any], rule: str) -> None:
    with pytest.raises(repairllm.AmbiguousRepair) as info:
        repairllm.repair(text, policy=FAIL)
    err = info.value
    assert isinstance(err, repairllm.RepairFailed)
    assert [o.value for o in err.outcomes] == values
    assert err.best is err.outcomes[0]
    assert err.issues == []
    assert err.ledger.rules() == [rule]
    # the default policy takes the first
    assert repairllm.repair(text) == values[0]


@pytest.mark.parametrize(
    ("text", "schema", "expected"),
    [
        pytest.param('{"a": 1} and {"a": 1}', None, {"a": 1}, id="same-value-twice"),
        pytest.param('only {"a": 1} here', None, {"a": 1}, id="one-value"),
        pytest.param(
            'A {"a": 1} B {"b": 2} C', {"type": "object", "required": ["b"]}, {"b": 2}, id="schema"
        ),
        pytest.param('A {"a": 1} B {"b": 2,} C', None, {"a": 1}, id="second-costs-more"),
        pytest.param('<think>{"b": 2}</think>{"a": 1}', None, {"a": 1}, id="think-costs-more"),
    ],
)
def test_no_ambiguity(text: str, schema: Any, expected: Any) -> None:
    assert repairllm.repair(text, schema, policy=FAIL) == expected


# -- truncation policies ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "policy",
    [
        pytest.param("strict", id="strict"),
        pytest.param(Policy(accept_truncated=False), id="accept-truncated-off"),
        pytest.param(Policy(forbid=frozenset({"missing_closer"})), id="forbid-missing-closer"),
        pytest.param(Policy(max_cost=0.5), id="max-cost"),
        pytest.param(Policy(forbid=frozenset({"unclosed_span"})), id="forbid-unclosed-span"),
    ],
)
def test_truncated_value_refused_by_policy(policy: Any) -> None:
    with pytest.raises(repairllm.RepairFailed) as info:
        repairllm.repair('Sure: {"a": [1, 2', policy=policy)
    err = info.value
    assert err.best is not None
    assert err.best.data == {"a": [1, 2]}
    assert err.best.truncated is True
    assert [i.path for i in err.issues] == [""]
    assert err.ledger.rules() == ["unclosed_span", "missing_closer", "missing_closer"]


# -- nothing to find -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("", id="empty"),
        pytest.param("   \n\t", id="whitespace"),
        pytest.param("I cannot help with that.", id="prose"),
        pytest.param("Sorry (I have no data) today.", id="prose-with-parentheses"),
        pytest.param("<think>only thoughts</think>", id="only-thoughts"),
        pytest.param("<think>cut off while thinking", id="unclosed-thoughts"),
        pytest.param("I don't know", id="prose-apostrophe"),
        pytest.param("Let me see.\nThe answer is unknown", id="prose-lines"),
        pytest.param('He said "no" twice.', id="prose-quoted-word"),
        pytest.param("There are 3\nbut", id="prose-number-mid-line"),
        pytest.param(b"", id="empty-bytes"),
    ],
)
def test_no_json_found(text: str | bytes) -> None:
    with pytest.raises(repairllm.NoJSONFound) as info:
        repairllm.repair(text)
    assert isinstance(info.value, repairllm.RepairLLMError)
    assert info.value.raw == (text.decode() if isinstance(text, bytes) else text)
    with pytest.raises(repairllm.NoJSONFound):
        repairllm.repair(text, OBJ)


@pytest.mark.parametrize(
    "text",
    [
        pytest.param(5, id="int"),
        pytest.param(None, id="none"),
        pytest.param(b"\xff\xfe", id="bad-utf8"),
        pytest.param(["{}"], id="list"),
    ],
)
def test_invalid_input(text: Any) -> None:
    with pytest.raises(repairllm.InvalidInput):
        repairllm.repair(text)


def test_bytes_input() -> None:
    outcome = repairllm.repair('Sure: ```json\n{"name": "Zoë"}\n```'.encode(), outcome=True)
    assert outcome.value == {"name": "Zoë"}
    assert outcome.ledger.rules() == ["fenced_block"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # A fence inside a single-quoted string: the fenced body parses more cheaply than
        # the whole reply (which needs its quotes fixed), but it is a piece of the value.
        (
            "{'code': '```json\n{\"a\": 1}\n```', 'n': 2}",
            {"code": '```json\n{"a": 1}\n```', "n": 2},
        ),
        # The same with a tag pair and a balanced span inside a string value.
        ("{'out': '[CONTENT]{\"x\": 1}[/CONTENT]'}", {"out": '[CONTENT]{"x": 1}[/CONTENT]'}),
        ("{note: 'see {\"b\": 2}', k: 1}", {"note": 'see {"b": 2}', "k": 1}),
    ],
    ids=["fence_in_string", "tag_in_string", "span_in_string"],
)
def test_reply_that_is_json_beats_the_pieces_inside_it(text: str, expected: Any) -> None:
    out = repairllm.repair(text, outcome=True)
    assert out.value == expected
    assert out.candidate is not None
    assert out.candidate.rule == "whole"


def test_fenced_block_with_nothing_outside_beats_the_pieces_inside_it() -> None:
    # A quote-wrapped closer splits the balanced scan inside the fence, which once made
    # the inner object a cheaper candidate than the fenced block: {"c": 1} came back.
    out = repairllm.repair("```json\n{'a': 'x}', 'b': {\"c\": 1}}\n```", outcome=True)
    assert out.value == {"a": "x}", "b": {"c": 1}}
    assert out.candidate is not None
    assert out.candidate.rule == "fenced_block"


def test_value_outside_the_fence_is_still_a_candidate() -> None:
    # An opener outside the block: a value may stand there, so the search goes on (and
    # the clean value in the prose costs less than the block's repairs).
    out = repairllm.repair("Like {\"a\": 1}.\n```json\n{'a': 2, 'b': 3}\n```", outcome=True)
    assert out.candidate is not None
    assert out.candidate.rule == "json_span"
    assert out.value == {"a": 1}


def test_pieces_still_searched_when_the_whole_reading_guessed_an_end() -> None:
    # Reading the whole reply needs a closer guessed; the span that is complete wins.
    out = repairllm.repair('{"a": 1}}', outcome=True)
    assert out.value == {"a": 1}
    assert "extra_closer" not in out.ledger.rules()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('{"a":\n"x"', {"a": "x"}),
        ('{"name": "Ann",\n"age":\n31', {"name": "Ann", "age": 31}),
        ("[\n1,\n2", [1, 2]),
        ('Sure:\n{"tags": [\n"a",\n"b"', {"tags": ["a", "b"]}),
    ],
    ids=["object-string", "object-number", "list", "after-prose"],
)
def test_cut_off_reply_is_completed_not_replaced_by_its_last_line(text: str, expected: Any) -> None:
    # These once came back as "x", 31, 2 and "b": the last line read as a lone scalar
    # (cost 0.3) beat the reply completed with its closers (0.5).
    out = repairllm.repair(text, outcome=True)
    assert out.value == expected
    assert out.truncated
