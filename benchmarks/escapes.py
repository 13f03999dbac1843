"""Only our errors escape: a long hypothesis run of repair over adversarial inputs.

Inputs mix text made of the characters that matter to a JSON parser, damaged JSON
values, numbers at the edges (past 64 bits, past a double, past Python's digit limit),
deep nesting, and byte-order marks and surrogates; schemas mix the project's corpus
(``schemas/``) with schemas built to break validators (``multipleOf`` on huge numbers,
patterns Python cannot compile, formats); every policy preset. Anything raised that is
not a ``RepairLLMError``, and any returned value that is not JSON (``NaN``,
``Infinity``), counts as an escape; the first few are printed.

    python benchmarks/escapes.py                 # 100,000 inputs (a few minutes)
    python benchmarks/escapes.py --examples 5000

Writes ``benchmarks/results/escapes.json``; exits 1 if anything escaped.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel

import repairllm as rl

ROOT = Path(__file__).resolve().parents[1]

CORPUS = [
    json.loads(p.read_text(encoding="utf-8")) for p in sorted((ROOT / "schemas").glob("*.json"))
]
TRICKY: list[Any] = [
    None,
    {"type": "integer"},
    {"type": "number", "multipleOf": 0.01},
    {"type": "integer", "multipleOf": 0.1},
    {"type": "string", "format": "regex"},
    {"type": "string", "pattern": "a{99999999999}"},
    {"type": "array", "items": {"type": "number"}},
    {"type": "object", "properties": {"a": {"type": "integer"}}},
    {"type": "string", "enum": ["positive", "negative"]},
    {"type": "boolean"},
]

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(min_value=2**63, max_value=10**80)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=6), children, max_size=4)
    ),
    max_leaves=20,
)
jsonish = st.text(
    alphabet=st.sampled_from(list("{}[]\",:'\n\t\\ /*#-+.0123456789eEtrufalsnNTFx<>`$%\ufeff")),
    max_size=120,
)
edge_numbers = st.one_of(
    st.builds(lambda m, e: f"{m}e{e}", st.integers(1, 99), st.integers(250, 10**6)),
    st.builds(lambda d: "9" * d, st.integers(300, 5000)),
).map(str)


def _damaged(value: Any, cut: float, how: int) -> str:
    text = json.dumps(value)
    if how == 0:
        return text[: max(1, int(len(text) * cut))]
    if how == 1:
        return text.replace('"', "'")
    if how == 2:
        return text[:-1] + ",}" if text.endswith("}") else text + ","
    return "Sure! ```json\n" + text + "\n```"


texts = st.one_of(
    jsonish,
    st.text(max_size=60),
    st.builds(_damaged, json_values, st.floats(0.1, 1.0), st.integers(0, 3)),
    st.builds(
        lambda n, s: s.replace("{}", n), edge_numbers, st.sampled_from(["{}", "[{}]", '{"a": {}}'])
    ),
    # Deep nesting, closed or cut open (one branch: each costs tens of milliseconds).
    st.builds(
        lambda d, closed: "[" * d + "]" * d if closed else '{"a":' * d,
        st.integers(300, 700),
        st.booleans(),
    ),
)


class _Person(BaseModel):
    name: str
    age: int


schemas = st.sampled_from([*TRICKY, *CORPUS, _Person])
policies = st.sampled_from(["strict", "default", "lenient"])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=str(ROOT / "benchmarks/results/escapes.json"))
    args = parser.parse_args(argv)

    escapes: list[dict[str, str]] = []
    counts = {"inputs": 0, "values": 0, "our_errors": 0}

    @settings(
        max_examples=args.examples,
        deadline=None,
        database=None,
        derandomize=True,
        suppress_health_check=list(HealthCheck),
    )
    @given(texts, schemas, policies)
    def run(text: str, schema: Any, policy: str) -> None:
        counts["inputs"] += 1
        try:
            value = rl.repair(text, schema, policy=policy)
        except rl.RepairLLMError:
            counts["our_errors"] += 1
            return
        except BaseException as exc:  # the thing measured: anything else is an escape
            if len(escapes) < 20:
                escapes.append(
                    {
                        "input": text[:200],
                        "schema": str(schema)[:120],
                        "policy": policy,
                        "escape": f"{type(exc).__name__}: {str(exc)[:200]}",
                    }
                )
            counts.setdefault("escapes", 0)
            counts["escapes"] += 1
            return
        counts["values"] += 1
        try:
            json.dumps(
                value.model_dump() if isinstance(value, BaseModel) else value, allow_nan=False
            )
        except (ValueError, TypeError) as exc:
            counts.setdefault("escapes", 0)
            counts["escapes"] += 1
            if len(escapes) < 20:
                escapes.append(
                    {"input": text[:200], "policy": policy, "escape": f"not JSON: {exc}"}
                )

    start = time.perf_counter()
    run()
    seconds = time.perf_counter() - start
    counts.setdefault("escapes", 0)
    report = {
        **counts,
        "seconds": round(seconds, 1),
        "examples_asked": args.examples,
        "first_escapes": escapes,
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(
        json.dumps(report, indent=1, ensure_ascii=False) + "\n", encoding="utf-8"
    )
    print(
        f"{counts['inputs']} inputs in {seconds:.0f} s: {counts['values']} values, "
        f"{counts['our_errors']} of our errors, {counts['escapes']} escapes"
    )
    for item in escapes[:5]:
        print("  ", item)
    return 1 if counts["escapes"] else 0


if __name__ == "__main__":
    sys.exit(main())
