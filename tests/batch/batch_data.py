"""Input data and helpers for the batch tests (imported by the test modules)."""

from __future__ import annotations

import contextlib
import json
import random
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

# A mix of what stored replies hold: clean JSON, the usual damage, and rows that cannot
# give a value at all (each must still be one output row with its error).
SCHEMA = {
    "type": "object",
    "properties": {
        "name": {"type": "string"},
        "age": {"type": "integer"},
        "tags": {"type": "array", "items": {"type": "string"}},
    },
    "required": ["name", "age"],
}


# Bytes for a line of binary garbage: any but the line breaks, which would make it two.
GARBAGE = [b for b in range(256) if b not in (0x0A, 0x0D)]


def reply_lines(n: int, seed: int = 0) -> list[bytes]:
    """``n`` JSONL lines ``{"id", "reply"}``, a seeded mix of good, damaged and bad rows."""
    rng = random.Random(seed)
    lines = []
    for i in range(n):
        name = rng.choice(["Ann", "Bo", "Cy", "Dee", "Édith", "名前"])
        age = rng.randint(0, 99)
        body = json.dumps({"name": name, "age": age, "tags": ["x", "y"][: rng.randint(0, 2)]})
        kind = i % 12
        if kind == 0:
            reply: Any = body
        elif kind == 1:
            reply = f"Sure! Here it is:\n```json\n{body}\n```"
        elif kind == 2:
            reply = body.replace('"', "'").replace("]", ",]")
        elif kind == 3:
            reply = f"<think>the user wants JSON</think>{body[:-1]},}}"
        elif kind == 4:
            reply = body[: max(8, len(body) // 2)]  # cut off
        elif kind == 5:
            reply = f'{{"Name": "{name}", "AGE": "{age}"}}'
        elif kind == 6:
            reply = "I'm sorry, I can't answer that."
        elif kind == 7:
            reply = ""
        elif kind == 8:
            reply = f'{{"name": "{name}", "age": "very old"}}'
        elif kind == 9:
            lines.append(b"\xff\xfe\x00" + bytes(rng.choice(GARBAGE) for _ in range(12)))
            continue
        elif kind == 10:
            lines.append(b'{"id": %d, "reply": ' % i)  # a line cut off mid-record
            continue
        else:
            reply = None
        lines.append(json.dumps({"id": f"r{i}", "reply": reply}, ensure_ascii=False).encode())
    return lines


def write_lines(path: Path, lines: list[bytes]) -> Path:
    path.write_bytes(b"".join(line + b"\n" for line in lines))
    return path


class Timeout(Exception):
    pass


@contextlib.contextmanager
def deadline(seconds: int) -> Iterator[None]:
    """Fail, rather than hang the suite, when a Ray pipeline stalls."""

    def expire(signum: int, frame: Any) -> None:
        raise Timeout(f"still running after {seconds} s: the pipeline stalled")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
