"""Stages 4 and 5: run candidates through lexical → align → validate, and choose.

:func:`repair` is the public entry point. Valid JSON takes a fast path (one strict parse,
one validation, no candidate search). Otherwise every candidate the extractor finds is
parsed, aligned and validated; the valid one with the lowest ledger cost wins, ties going
to the better-ranked candidate (or failing, if the policy says so). When none is valid,
the error carries the most promising candidate, its remaining issues and its ledger.
"""

from __future__ import annotations

from typing import Any, Literal, TypeVar, overload

import orjson

from . import fast_validator
from .align import align
from .errors import AmbiguousRepair, InvalidInput, NoJSONFound, RepairFailed
from .extract import candidates
from .fast_validator import SHALLOW_TEXT, fits
from .ledger import Fix, Issue, Ledger
from .lexical import (
    JsonRepairBudget,
    LastResort,
    LexicalError,
    NotJSON,
    Parsed,
    parse,
    parse_with_schema,
    via_json_repair,
)
from .lexical.errors import TrailingProse
from .lexical.strict import (
    DIGITS_TO_ZERO,
    NINETEEN_DIGITS,
    big_exponent,
)
from .outcome import Candidate, Outcome
from .policy import DEFAULT, PRESETS, Policy, resolve_policy
from .prose import read_prose
from .rules import Rule
from .schema import ANY, Schema, compile_schema

__all__ = ["Outcome", "repair", "run"]

T = TypeVar("T")


@overload
def repair(
    text: str | bytes,
    schema: type[T],
    *,
    policy: Policy | str | None = ...,
    outcome: Literal[False] = ...,
) -> T: ...
@overload
def repair(
    text: str | bytes,
    schema: Any = ...,
    *,
    policy: Policy | str | None = ...,
    outcome: Literal[True],
) -> Outcome: ...
@overload
def repair(
    text: str | bytes,
    schema: Any = ...,
    *,
    policy: Policy | str | None = ...,
    outcome: bool = ...,
) -> Any: ...


def repair(
    text: str | bytes,
    schema: Any = None,
    *,
    policy: Policy | str | None = None,
    outcome: bool = False,
) -> Any:
    """Turn a model's reply into a trustworthy value.

    Args:
        text: the reply (str, or bytes holding UTF-8).
        schema: ``None`` for any JSON value; a pydantic model or a type such as
            ``list[int]`` for a validated instance; or a JSON Schema dict.
        policy: a :class:`Policy` or a preset name: ``"strict"``, ``"default"``, ``"lenient"``.
        outcome: return the :class:`Outcome` (value, ledger, candidate, issues, raw)
            instead of the value alone.

    Returns:
        The value, or the :class:`Outcome` when ``outcome`` is true.

    Raises:
        NoJSONFound: nothing in the text looks like JSON.
        RepairFailed: JSON was found but could not be made valid; ``.best`` holds the
            closest candidate, with ``.issues`` and ``.ledger``.
        AmbiguousRepair: different values tie and the policy says to fail.
        SchemaError: the schema is unusable.
        InvalidInput: ``text`` is not text.

    Example:
        >>> repair("Sure! ```json\\n{'name': 'Ann', 'age': '31',}\\n```")
        {'name': 'Ann', 'age': '31'}
    """
    # The commonest reply, valid JSON that needs nothing, costs one C pass over its
    # bytes, one C parse and (with a schema) one Rust check, and makes no records: on a
    # short reply each Python call or record saved is worth a tenth of the parse, so
    # this path is written out here, in the function the caller calls.
    #
    # The C pass finds runs of nineteen digits, which may be integers past 64 bits:
    # orjson reads those as floats without a word, and the strict tier of the lexical
    # stage keeps them exact. A number past a double's range orjson refuses by itself,
    # so the exponents are looked at only then (the strict tier refuses it in words).
    if policy is None:
        chosen_policy = DEFAULT
    elif policy.__class__ is str and policy in PRESETS:  # a call saved, on the fast path
        chosen_policy = PRESETS[policy]
    else:
        chosen_policy = resolve_policy(policy)
    bare = not outcome
    raw = text if text.__class__ is str else _as_text(text)
    compiled: Schema | None = (
        schema if schema is None or schema.__class__ is Schema else compile_schema(schema)
    )
    zeroed = raw.encode("utf-8", "surrogatepass").translate(DIGITS_TO_ZERO)
    if zeroed.find(NINETEEN_DIGITS) >= 0:  # find: a third of what `in` costs here
        return _not_plain(raw, compiled, chosen_policy, bare, refused=False)
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError:  # not JSON, an overflow, or a lone surrogate
        return _not_plain(raw, compiled, chosen_policy, bare, refused=not big_exponent(raw, zeroed))
    final = value
    if compiled is not None:
        check = compiled.bare_check
        if (
            check is not None
            and fast_validator.is_enabled()
            and (len(raw) <= SHALLOW_TEXT or fits(raw))  # the call saved on short text
        ):
            try:
                valid = check(value)
            except Exception:  # a format checker raised: python-jsonschema answers
                valid = compiled.is_valid(value, read_from=raw)
        elif compiled.adapter is None:
            valid = compiled.is_valid(value, read_from=raw)
        else:
            final, issues = compiled.validate(value)
            valid = not issues
        if not valid:
            result = _search(raw, compiled, chosen_policy)
            return result.value if bare else result
    if bare:
        return final
    return Outcome(final, Ledger(), Candidate(raw, "whole", 0, 0), [], raw, data=value)


def run(text: str | bytes, schema: Any = None, policy: Policy | str | None = None) -> Outcome:
    """:func:`repair` returning the :class:`Outcome` always."""
    outcome: Outcome = repair(text, schema, policy=policy, outcome=True)
    return outcome


def _not_plain(
    raw: str, schema: Schema | None, policy: Policy, bare: bool, *, refused: bool
) -> Any:
    """:func:`repair` for a reply that is not plain JSON: ``refused``, orjson refused it
    (it was not asked when the reply may hold a big integer)."""
    if raw.startswith("\ufeff"):  # orjson refuses the mark
        result = _without_bom(raw, schema, policy)
    else:
        result = _search(raw, schema, policy, refused=refused)
    return result.value if bare else result


def _without_bom(raw: str, schema: Schema | None, policy: Policy) -> Outcome:
    """A reply that starts with a byte-order mark: read without it, and say so."""
    outcome: Outcome = repair(raw[1:], schema, policy=policy, outcome=True)
    mark = Fix(
        "extract", Rule.BYTE_ORDER_MARK, "", "\ufeff", None, policy.cost(Rule.BYTE_ORDER_MARK)
    )
    outcome.ledger = Ledger.of([mark], list(outcome.ledger))
    outcome.raw = raw
    return outcome


def _as_text(text: object) -> str:
    if isinstance(text, str):
        return text
    if isinstance(text, (bytes, bytearray, memoryview)):
        try:
            return bytes(text).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise InvalidInput(
                f"the reply is bytes but not UTF-8 (bad byte at offset {exc.start}); "
                "decode it yourself and pass a str"
            ) from exc
    raise InvalidInput(f"repair() needs the reply as str or bytes, not {type(text).__name__}")


def _extraction_fixes(raw: str, cand: Candidate, policy: Policy) -> list[Fix]:
    if cand.rule == "whole":
        return []
    if cand.rule == Rule.THINK_BLOCK:
        dropped = cand.note
    elif cand.rule == Rule.JOINED_VALUES:
        dropped = ""  # the values are all kept; only what stood between them went
    elif cand.start >= 0:
        dropped = (raw[: cand.start] + " … " + raw[cand.start + len(cand.text) :]).strip()
    else:
        dropped = ""
    if len(dropped) > 160:
        dropped = dropped[:78] + " … " + dropped[-78:]
    return [Fix("extract", cand.rule, "", dropped or None, None, policy.cost(cand.rule))]


def _search(raw: str, schema: Schema | None, policy: Policy, *, refused: bool = False) -> Outcome:
    """Every candidate through the stages; ``refused``: orjson has refused ``raw`` already."""
    valid: list[Outcome] = []
    best_invalid: Outcome | None = None
    failures: list[tuple[Candidate, LexicalError]] = []  # put in words only if all fail
    json_like = False  # some candidate started like JSON, even if it could not be parsed
    # Candidates only json-repair could read: it is slow and dear, so it runs after the
    # search, and only on those that could still beat the best valid value found.
    deferred: list[Candidate] = []
    best_cost = 0.0  # of valid[0], once there is one
    settled = False  # no candidate still to come can be more than a piece of valid[0]

    def worth(rule: str, extra: float = 0.0) -> bool:
        # A candidate costs at least its extraction; ties matter only when the policy
        # fails on ambiguity, since otherwise the earlier candidate wins a tie.
        if not valid:
            return True
        if settled:
            return False  # what is left to find are pieces of the best value
        # The reply taken whole makes no extraction fix, so "whole" is no rule; as a floor
        # it has always counted 1.0 (what an unknown rule once cost), and still does, so
        # that which candidates are tried stays as it was.
        floor = (1.0 if rule == "whole" else policy.cost(rule)) + extra
        return floor <= best_cost if policy.on_ambiguity == "fail" else floor < best_cost

    def consider(cand: Candidate, parsed: Parsed) -> None:
        nonlocal best_invalid, best_cost, settled
        extract_fixes = _extraction_fixes(raw, cand, policy)
        result = _evaluate(raw, cand, extract_fixes, parsed, schema, policy)
        if schema is not None and _reread(parsed, result):
            # The cheap tiers read the text without the schema; let it settle the reading.
            reread = parse_with_schema(cand.text, schema, policy)
            if reread is not None and reread.value != parsed.value:
                alternative = _evaluate(raw, cand, extract_fixes, reread, schema, policy)
                if _better(alternative, result):
                    result = alternative
        if not result.issues:
            valid.append(result)
            if len(valid) > 1:
                valid.sort(key=lambda o: (o.cost, o._rank))
            best_cost = valid[0].cost
            settled = _holds_every_value(valid[0], raw)
        elif best_invalid is None or _better(result, best_invalid):
            best_invalid = result

    several = _wants_array(schema)
    # An object where the schema's root takes only an array is valid only once align has
    # made it one (wrapped it, or unwrapped a one-member object): that costs at least
    # this much more than the object's extraction, so once a cheaper value is found (the
    # joined values of a JSON Lines reply, say) the objects need no align walk. Only an
    # object read strictly: a text that needed fixes is read again with the schema,
    # which might read it otherwise.
    to_array = min(policy.cost(Rule.WRAP_LIST), policy.cost(Rule.UNWRAP_OBJECT))
    found = candidates(
        raw,
        limit=policy.max_candidates,
        worth=worth,
        loose_scalars=_wants_string(schema),
        several=several,
    )
    for cand in found:
        if not worth(cand.rule):
            break  # candidates come in order of extraction cost: none left can win
        try:
            try:
                # The reply tried whole skips the C parse that has refused it once.
                strict = not (refused and cand.rule == "whole")
                parsed = parse(cand.text, schema, policy, last_resort=False, strict=strict)
            except TrailingProse as exc:
                # The value lacks its closer and the span ran on into the closing prose:
                # the JSON ends where the prose begins, so that is the candidate.
                cand = _cut(cand, exc.at)
                parsed = parse(cand.text, schema, policy, last_resort=False)
        except NotJSON as exc:
            failures.append((cand, exc))
            continue
        except LexicalError as exc:
            json_like = True
            failures.append((cand, exc))
            if isinstance(exc, LastResort):
                deferred.append(cand)
            continue
        json_like = True
        if (
            several
            and parsed.value.__class__ is dict
            and not parsed.fixes
            and not worth(cand.rule, to_array)
        ):
            continue
        consider(cand, parsed)
    budget = JsonRepairBudget()  # what json-repair may read for this reply, in all
    for cand in deferred:
        if not worth(cand.rule, policy.cost(Rule.JSON_REPAIR)):
            continue
        fallback = via_json_repair(cand.text, policy, budget)
        if fallback is not None:
            consider(cand, fallback)
    if valid:
        return _choose(raw, valid, policy)
    if not json_like:
        prose = _prose_answer(raw, schema, policy)
        if prose is not None and not prose.issues:
            return prose
        if prose is not None:
            raise RepairFailed(raw, prose, ["prose_answer: the value read from prose is invalid"])
        raise NoJSONFound(raw)
    reasons = [f"{cand.rule} at offset {cand.start}: {exc}" for cand, exc in failures]
    reasons += budget.refusals
    raise RepairFailed(raw, best_invalid, reasons)


# Repairs that guess where a value ends inside the reply: after one of these, a piece
# of the reply may be the value the model meant, so the search goes on. Closers added at
# the end of a reply that was cut off are not among them (the reply simply stopped).
_STRUCTURAL = frozenset(
    {
        Rule.WRONG_CLOSER,
        Rule.EXTRA_CLOSER,
        Rule.UNESCAPED_QUOTE,
        Rule.MISSING_VALUE,
        Rule.UNQUOTED_VALUE,
        Rule.UNQUOTED_COMMAS,
        Rule.JSON_REPAIR,
    }
)


def _holds_every_value(best: Outcome, raw: str) -> bool:
    """Whether no later candidate can be anything but a piece of the best one.

    True when the best value was read without guessing where it ends, and came from the
    whole reply, or from a fenced or tagged block with no opening bracket outside it.
    Then every block, span or line the extractor could still find is that same text or a
    piece of it (a fence inside a string value, an object inside the fenced one): the
    pieces are not answers however cheaply they parse, and need not be searched for.
    """
    cand = best.candidate
    if cand is None:
        return False
    if cand.rule in (Rule.FENCED_BLOCK, Rule.TAGGED_BLOCK):
        if cand.start < 0:
            return False
        end = cand.start + len(cand.text)
        for opener in "{[":
            if raw.find(opener, 0, cand.start) >= 0 or raw.find(opener, end) >= 0:
                return False
    elif cand.rule not in ("whole", Rule.THINK_BLOCK):
        return False
    for fix in best.ledger:
        if fix.rule in _STRUCTURAL or (fix.rule == Rule.MISSING_CLOSER and not best.truncated):
            return False
    return True


def _prose_answer(raw: str, schema: Schema | None, policy: Policy) -> Outcome | None:
    """A reply without JSON read as a prose answer (``The sentiment is **positive**``)."""
    if schema is None or not policy.prose_answers or Rule.PROSE_ANSWER in policy.forbid:
        return None
    reading = read_prose(raw, schema)
    if reading is None:
        return None
    value, phrase = reading
    cand = Candidate(raw.strip(), Rule.PROSE_ANSWER, -1, 0)
    fix = Fix("extract", Rule.PROSE_ANSWER, "", phrase, None, policy.cost(Rule.PROSE_ANSWER))
    return _evaluate(raw, cand, [fix], Parsed(value, []), schema, policy)


def _wants_array(schema: Schema | None) -> bool:
    """Whether the schema's root is an array and nothing else."""
    if schema is None:
        return False
    return schema.info(schema.root).types == frozenset({"array"})


def _wants_string(schema: Schema | None) -> bool:
    """Whether the schema's root takes a string, so a quoted phrase in prose may be the value."""
    if schema is None:
        return False
    types = schema.info(schema.root).types
    return "string" in types and types != ANY


def _cut(cand: Candidate, at: int) -> Candidate:
    """``cand`` without the prose from ``at`` on: an unclosed span that ends where its JSON does."""
    rule = Rule.UNCLOSED_SPAN if cand.rule in ("whole", Rule.THINK_BLOCK) else cand.rule
    return Candidate(cand.text[:at].rstrip(), rule, cand.start, cand.rank, cand.note)


def _evaluate(
    raw: str,
    cand: Candidate,
    extract_fixes: list[Fix],
    parsed: Parsed,
    schema: Schema | None,
    policy: Policy,
) -> Outcome:
    """Align and validate one parsed candidate, and apply the policy's limits."""
    ledger = Ledger.of(extract_fixes, parsed.fixes)
    data = parsed.value
    value: Any = data
    issues: list[Issue] = []
    if schema is not None:
        try:
            if policy.align and schema.adapter is None:
                # The issues of the value before alignment would not be kept: only ask
                # python-jsonschema (slow, for its wording) about the aligned one.
                misaligned = not schema.is_valid(data)
            else:
                value, issues = schema.validate(data)
                misaligned = bool(issues) and policy.align
            if misaligned:
                data, align_fixes = align(data, schema, policy)
                ledger.extend(align_fixes)
                value, issues = schema.validate(data)
        except RecursionError:
            raise RepairFailed(
                raw, message="the value nests too deeply to align and validate"
            ) from None
    issues = issues + _policy_issues(ledger, parsed, policy)
    return Outcome(value, ledger, cand, issues, raw, data, parsed.truncated, cand.rank)


def _reread(parsed: Parsed, result: Outcome) -> bool:
    """Whether the schema may read the candidate's text better than the cheap tiers did.

    Not where their reading needed no lexical fix and aligned to a valid value without
    turning a number into text: strictly valid JSON has one reading but for a number
    where the schema wants a string (``1.10`` stays ``"1.10"``, not ``"1.1"``).
    """
    if result.issues:
        return True
    if parsed.fixes:
        return any(f.stage == "align" for f in result.ledger)
    return any(
        f.stage == "align"
        and isinstance(f.after, str)
        and isinstance(f.before, (int, float))
        and not isinstance(f.before, bool)
        for f in result.ledger
    )


def _better(a: Outcome, b: Outcome) -> bool:
    """Whether ``a`` beats ``b``: valid first, then fewer issues, then lower cost."""
    return (len(a.issues), a.cost) < (len(b.issues), b.cost)


def _policy_issues(ledger: Ledger, parsed: Parsed, policy: Policy) -> list[Issue]:
    issues = []
    truncated = parsed.truncated
    forbid = policy.forbid
    refused = sorted({fix.rule for fix in ledger if fix.rule in forbid}) if forbid else None
    if refused:
        issues.append(
            Issue("", f"policy {policy.name!r} forbids the repair rule(s) {', '.join(refused)}")
        )
    if truncated and not policy.accept_truncated:
        issues.append(
            Issue(
                "",
                f"the reply was cut off and policy {policy.name!r} does not accept completed "
                "values; raise max_tokens or ask the model to continue",
            )
        )
    elif truncated and not policy.complete_cut_values:
        if parsed.completed:
            issues.append(
                Issue(
                    "",
                    "the reply was cut off inside a string, number or literal; completing "
                    f"it would invent text, which policy {policy.name!r} does not do "
                    "(policy 'lenient' does); raise max_tokens or ask the model to continue",
                )
            )
        elif _only_closers(parsed.value):
            issues.append(
                Issue(
                    "",
                    "the reply was cut off before any content: the value would be nothing "
                    f"but invented closers, which policy {policy.name!r} does not return",
                )
            )
    if policy.max_cost is not None and ledger.cost > policy.max_cost:
        issues.append(
            Issue(
                "",
                f"the repairs cost {ledger.cost:.2f}, over the policy's ceiling of "
                f"{policy.max_cost:.2f}",
            )
        )
    return issues


def _only_closers(value: Any) -> bool:
    """Whether ``value`` is empty containers all the way down (``{}``, ``[[]]``)."""
    todo = [value]
    while todo:
        item = todo.pop()
        if isinstance(item, list):
            todo.extend(item)
        elif not (isinstance(item, dict) and not item):
            return False
    return True


def _choose(raw: str, valid: list[Outcome], policy: Policy) -> Outcome:
    best = valid[0]
    if policy.on_ambiguity == "fail":
        rivals = [o for o in valid[1:] if o.cost == best.cost and o.data != best.data]
        if rivals:
            raise AmbiguousRepair(raw, [best, *rivals])
    return best
