"""Per-model fuzz: how well does a model keep a format, and what does repair rescue?

Each task has a known answer: a valid instance of one of the project's schemas is
rendered as prose or as a table, and the model is asked to give it back as JSON
under the schema. For every task we record, from the same replies:

- **raw parse**: the first reply, as it came, is JSON (``json.loads``);
- **raw valid**: ... and valid against the schema, with nothing changed;
- **valid after repair**: repairllm made the first reply valid (no re-ask);
- **valid after retries**: valid within the retry budget (targeted feedback);
- **field accuracy**: share of the answer's leaf values that the final value got
  right (strings compared without case and surrounding space), so that a valid
  but wrong object does not count as a success;
- tokens and seconds per valid object, and the repair rules the ledgers used
  (which failure classes this model shows).

The tasks can be spread over several servers of one model (:func:`run_model_bench_on`,
with the fan-out and failover of :class:`repairllm.batch.generate.Fanout`): a server
that fails passes its tasks to the others, and the card says how many moved. Each
task's prompt, options and seed are the same whichever server answers it, and the
results come back in task order.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ..backend import Backend, Usage
from ..batch.generate import Endpoint, Fanout, Job
from ..errors import BackendError, BackendUnreachable, RepairLLMError, RetriesExhausted
from ..prompts import PromptForm
from ..retry import Attempt, agenerate, generate
from ..schema import compile_schema

__all__ = [
    "Task",
    "TaskResult",
    "field_accuracy",
    "leaves",
    "make_tasks",
    "render",
    "run_model_bench",
    "run_model_bench_on",
    "summarise",
]

STYLES = ("prose", "table")


@dataclass(frozen=True)
class Task:
    """One question with a known answer."""

    id: str
    schema_name: str
    schema: dict[str, Any]
    answer: Any
    style: str
    prompt: str


@dataclass
class TaskResult:
    """What one task gave; the raw replies are kept so a report can be audited."""

    id: str
    schema_name: str
    style: str
    raw_parse: bool = False
    raw_valid: bool = False
    repaired_valid: bool = False
    final_valid: bool = False
    accuracy: float = 0.0
    attempts: int = 0
    completion_tokens: int = 0
    prompt_tokens: int = 0
    seconds: float = 0.0
    rules: list[str] = field(default_factory=list)
    first_reply: str = ""
    error: str | None = None
    native: bool = False
    notes: list[str] = field(default_factory=list)
    server: str = ""
    tries: int = 1


def schemas_dir() -> Path:
    """The project's schema corpus (see :func:`repairllm.bench.parser.builtin_schemas`)."""
    from .parser import builtin_schemas

    folder = builtin_schemas()
    if folder is None:
        raise RepairLLMError(
            "the schema corpus (schemas/) was not found beside the package or in the "
            "current folder; run from a source checkout"
        )
    return folder


def leaves(value: Any, prefix: str = "") -> dict[str, Any]:
    """Flatten a value to ``{json pointer: scalar}`` (empty containers count as leaves)."""
    if isinstance(value, dict) and value:
        out: dict[str, Any] = {}
        for key, sub in value.items():
            out.update(leaves(sub, f"{prefix}/{key}"))
        return out
    if isinstance(value, list) and value:
        out = {}
        for i, sub in enumerate(value):
            out.update(leaves(sub, f"{prefix}/{i}"))
        return out
    return {prefix or "/": value}


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, str) and isinstance(b, str):
        return a.strip().casefold() == b.strip().casefold()
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b
    if isinstance(a, int | float) and isinstance(b, int | float):
        return abs(float(a) - float(b)) <= 1e-9 * max(1.0, abs(float(a)))
    return bool(a == b)


def field_accuracy(expected: Any, got: Any) -> float:
    """Share of ``expected``'s leaves that ``got`` has at the same place with the same value."""
    want = leaves(expected)
    if not want:
        return 1.0
    have = leaves(got) if got is not None else {}
    right = sum(1 for path, value in want.items() if path in have and _same(value, have[path]))
    return right / len(want)


def _words(pointer: str) -> str:
    parts = [p for p in pointer.split("/") if p and not p.isdigit()]
    return " ".join(p.replace("_", " ") for p in parts) or "value"


def _text(value: Any) -> str:
    if value is None:
        return "not given"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list | dict):
        return "none"
    return str(value)


def render(answer: Any, style: str) -> str:
    """Describe a value in words (``"prose"``) or as a two-column Markdown table."""
    flat = leaves(answer)
    if style == "table":
        rows = [f"| {_words(p)} | {_text(v)} |" for p, v in flat.items()]
        return "| field | value |\n|---|---|\n" + "\n".join(rows)
    sentences = [f"The {_words(p)} is {_text(v)}." for p, v in flat.items()]
    return " ".join(sentences)


def make_tasks(
    n: int,
    seed: int = 0,
    *,
    folder: Path | None = None,
    max_chars: int = 400,
    styles: Sequence[str] = STYLES,
) -> list[Task]:
    """``n`` seeded tasks from the schemas' ``examples`` (small answers first).

    Args:
        n: how many tasks (cycles through the examples when ``n`` is larger).
        seed: the shuffle's seed.
        folder: a directory of JSON Schemas with ``examples``; the project's by default.
        max_chars: skip answers longer than this as JSON (a 135M model's reach).
        styles: renderings to alternate between.
    """
    folder = folder or schemas_dir()
    pool: list[tuple[str, dict[str, Any], Any]] = []
    for path in sorted(folder.glob("*.json")):
        try:
            schema = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError):
            continue
        if not isinstance(schema, dict) or schema.get("type") != "object":
            continue  # each task asks for "a JSON object" (and keeps the seeded pool as it was)
        examples = schema.get("examples") or []
        bare = {k: v for k, v in schema.items() if k != "examples"}
        for example in examples:
            if len(json.dumps(example)) <= max_chars:
                pool.append((path.stem, bare, example))
    if not pool:
        raise RepairLLMError(f"no schema with small enough examples in {folder}")
    rng = random.Random(seed)
    rng.shuffle(pool)
    tasks = []
    for i in range(n):
        name, schema, answer = pool[i % len(pool)]
        style = styles[i % len(styles)]
        title = schema.get("title") or name.replace("_", " ")
        prompt = (
            f"Here is the information about a {title}:\n\n{render(answer, style)}\n\n"
            "Write it as a JSON object."
        )
        tasks.append(Task(f"{i:03d}-{name}", name, schema, answer, style, prompt))
    return tasks


def _raw_checks(text: str, schema: dict[str, Any]) -> tuple[bool, bool]:
    try:
        value = json.loads(text)
    except ValueError:
        return False, False
    return True, compile_schema(schema).is_valid(value)


def run_task(
    backend: Backend,
    task: Task,
    *,
    retries: int,
    prompt_form: PromptForm,
    native: bool | None,
    options: dict[str, Any],
) -> TaskResult:
    """Ask one task and measure it (a backend's failure is the task's ``error``)."""
    try:
        generation = generate(
            backend,
            task.prompt,
            task.schema,
            retries=retries,
            outcome=True,
            prompt_form=prompt_form,
            native=native,
            **options,
        )
    except RetriesExhausted as exc:
        return _measured(task, exc.attempts, exc.best, valid=False)
    except BackendError as exc:
        return _measured(task, (), None, valid=False, error=str(exc))
    return _measured(task, generation.attempts, generation.value, valid=True)


async def arun_task(
    backend: Backend,
    task: Task,
    *,
    retries: int,
    prompt_form: PromptForm,
    native: bool | None,
    options: dict[str, Any],
    transient_retries: int = 1,
) -> TaskResult:
    """:func:`run_task` through ``achat``; a backend's failure is raised, for the caller
    to move the task to another server or record it."""
    try:
        generation = await agenerate(
            backend,
            task.prompt,
            task.schema,
            retries=retries,
            outcome=True,
            prompt_form=prompt_form,
            native=native,
            transient_retries=transient_retries,
            **options,
        )
    except RetriesExhausted as exc:
        return _measured(task, exc.attempts, exc.best, valid=False)
    return _measured(task, generation.attempts, generation.value, valid=True)


def _measured(
    task: Task, attempts: Sequence[Attempt], value: Any, *, valid: bool, error: str | None = None
) -> TaskResult:
    result = TaskResult(task.id, task.schema_name, task.style, final_valid=valid, error=error)
    if attempts:
        first = attempts[0]
        result.first_reply = first.raw
        result.raw_parse, result.raw_valid = _raw_checks(first.raw, task.schema)
        result.repaired_valid = first.ok
        result.native = first.native
        result.notes = sorted({n for a in attempts for n in a.notes})
    result.accuracy = field_accuracy(task.answer, value) if valid else 0.0
    usage = Usage()
    for attempt in attempts:
        usage = usage + attempt.usage
        result.rules.extend(sorted(set(attempt.ledger.rules())))
    result.attempts = len(attempts)
    result.completion_tokens = usage.completion_tokens
    result.prompt_tokens = usage.prompt_tokens
    result.seconds = sum(a.seconds for a in attempts)
    return result


def summarise(results: Sequence[TaskResult]) -> dict[str, Any]:
    """Rates and costs over the finished tasks."""
    n = len(results)
    if n == 0:
        return {"tasks": 0}
    valid = sum(r.final_valid for r in results)
    tokens = sum(r.completion_tokens for r in results)
    seconds = sum(r.seconds for r in results)
    classes = Counter(rule for r in results for rule in r.rules)
    return {
        "tasks": n,
        "raw_parse": sum(r.raw_parse for r in results) / n,
        "raw_valid": sum(r.raw_valid for r in results) / n,
        "valid_after_repair": sum(r.repaired_valid for r in results) / n,
        "valid_after_retries": valid / n,
        "field_accuracy": sum(r.accuracy for r in results) / n,
        "field_accuracy_of_valid": (
            sum(r.accuracy for r in results if r.final_valid) / valid if valid else 0.0
        ),
        "attempts_per_task": sum(r.attempts for r in results) / n,
        "tokens_per_valid": tokens / valid if valid else None,
        "seconds_per_valid": seconds / valid if valid else None,
        "completion_tokens": tokens,
        "seconds": seconds,
        "errors": sum(r.error is not None for r in results),
        "native": sum(r.native for r in results) / n,
        "failure_classes": dict(classes.most_common()),
    }


class _TaskFanout(Fanout):
    """Bench tasks over the servers of one model; a server's failure moves its task."""

    def __init__(self, endpoints: Sequence[Endpoint], ask: Any) -> None:
        # Every server may be tried once, and one of them again after its rest: a task
        # fails for good only when the servers fail it all round.
        super().__init__(endpoints, tries=len(endpoints) + 1)
        self.ask = ask

    async def attempt(self, endpoint: Endpoint, job: Job) -> None:
        task: Task = job.record
        job.tries += 1
        try:
            result: TaskResult = await self.ask(endpoint.backend, task)
        except BackendError as exc:
            if self.moved(endpoint, job, exc):
                return
            if job.last_error is exc:  # the backend's fault, on every server in turn
                raise BackendUnreachable(self._gone(), endpoint.backend.name) from exc
            # The task's own fault (its prompt does not fit, a 400): its result says so.
            result = _measured(task, (), None, valid=False, error=str(exc))
        else:
            endpoint.answered()
        result.server = endpoint.name
        result.tries = job.tries
        self.finish(job, result)

    def _gone(self) -> str:
        names = ", ".join(e.name for e in self.endpoints)
        many = len(self.endpoints) > 1
        return (
            f"{'every server' if many else 'the server'} of this model failed ({names}); "
            "check that it is running and reachable, then run the bench again"
        )


def run_model_bench(
    backend: Backend,
    *,
    n: int = 10,
    seed: int = 0,
    retries: int = 2,
    prompt_form: PromptForm = "skeleton",
    native: bool | None = None,
    tasks: Sequence[Task] | None = None,
    max_tokens: int = 256,
    on_result: Callable[[TaskResult], None] | None = None,
) -> dict[str, Any]:
    """Run the tasks against a backend and return the report card's data.

    The same as :func:`run_model_bench_on` with one endpoint taking one task at a time.
    """
    return run_model_bench_on(
        [Endpoint(backend, 1)],
        n=n,
        seed=seed,
        retries=retries,
        prompt_form=prompt_form,
        native=native,
        tasks=tasks,
        max_tokens=max_tokens,
        on_result=on_result,
    )


def run_model_bench_on(
    endpoints: Sequence[Endpoint],
    *,
    n: int = 10,
    seed: int = 0,
    retries: int = 2,
    prompt_form: PromptForm = "skeleton",
    native: bool | None = None,
    tasks: Sequence[Task] | None = None,
    max_tokens: int = 256,
    on_result: Callable[[TaskResult], None] | None = None,
    label: str | None = None,
) -> dict[str, Any]:
    """Run the tasks over the servers of one model and return the report card's data.

    Each endpoint takes at most its ``concurrency`` tasks at once. A server that fails
    (unreachable, timed out, 5xx, 429) passes its task to another, and rests; the
    card's ``moved`` counts the tasks that went elsewhere, ``servers`` how many each
    server finished. When every server has failed a task, the run stops: the card holds
    what finished, with ``"interrupted": true`` and the reason in ``"error"``. A
    KeyboardInterrupt stops it too, after the tasks in flight.

    Args:
        endpoints: the servers, all of the same model, each with its concurrency.
        n: tasks to make, when ``tasks`` is not given.
        seed: the tasks' seed.
        retries: format retries per task.
        prompt_form: how the schema is shown (``skeleton``, ``keys``, ``schema``, ``none``).
        native: use the server's structured mode (``None``: where it declares one).
        tasks: the tasks (default: :func:`make_tasks` of ``n`` and ``seed``).
        max_tokens: the token limit of each reply.
        on_result: called with each result, in task order.
        label: the name the card and the comparison show for this model.
    """
    if not endpoints:
        raise RepairLLMError("the bench needs at least one backend")
    tasks = list(tasks) if tasks is not None else make_tasks(n, seed)
    options = {"max_tokens": max_tokens, "temperature": 0}

    async def ask(backend: Backend, task: Task) -> TaskResult:
        return await arun_task(
            backend,
            task,
            retries=retries,
            prompt_form=prompt_form,
            native=native,
            options=options,
        )

    results: list[TaskResult] = []

    async def run() -> None:
        stream = _TaskFanout(endpoints, ask).results(enumerate(tasks))
        try:
            async for result in stream:
                results.append(result)
                if on_result is not None:
                    on_result(result)
        finally:
            await stream.aclose()

    interrupted = False
    error: str | None = None
    started = time.perf_counter()
    try:
        asyncio.run(run())
    except KeyboardInterrupt:
        interrupted = True
    except BackendError as exc:
        interrupted = True
        error = str(exc)
    first = endpoints[0].backend
    card: dict[str, Any] = {
        "model": first.model,
        "backend": first.name,
        "summary": summarise(results),
        "config": {
            "tasks": len(tasks),
            "seed": seed,
            "retries": retries,
            "prompt_form": prompt_form,
            "native": native,
            "max_tokens": max_tokens,
            "temperature": 0,
            "wall_seconds": time.perf_counter() - started,
        },
        "interrupted": interrupted,
        "servers": {e.name: e.served for e in endpoints},
        "moved": sum(r.tries > 1 for r in results),
        "results": [asdict(r) for r in results],
    }
    if label:
        card["label"] = label
    if error is not None:
        card["error"] = error
    return card
