"""`bench model` over several servers and models, on scripted backends: targets, failover,
every task once, the same results whichever server answered, and clear errors."""

from __future__ import annotations

import asyncio
import functools
import json
from pathlib import Path
from typing import Any

import pytest

import repairllm as rl
from repairllm import registry
from repairllm.backend import Backend, ChatOptions, Completion, Message, Usage
from repairllm.batch.generate import Endpoint
from repairllm.bench import targets
from repairllm.bench.model import Task, make_tasks, run_model_bench, run_model_bench_on
from repairllm.bench.targets import Target, parse_target
from repairllm.cli import main
from repairllm.errors import BackendStatusError, BackendUnreachable, ConfigError

TASKS = make_tasks(12, seed=3)
# What may differ between two runs of the same tasks: who served, and how long it took.
WHERE = {"server", "tries", "seconds"}


def _reply(task_index: int, task: Task) -> str:
    """A reply that depends on the task only: valid, repairable, or no answer."""
    if task_index % 3 == 0:
        return json.dumps(task.answer)
    if task_index % 3 == 1:
        return "Sure! ```json\n" + json.dumps(task.answer) + ",\n```"  # a trailing comma
    return "I cannot tell."


class Scripted(Backend):
    """Answers each bench task by what the task is; fails as told.

    ``dies_after``: requests answered before every later one is refused (0: dead from
    the start); ``status``: the HTTP status it fails with (0: connection refused).
    """

    name = "scripted"
    supports_streaming = False

    def __init__(
        self,
        model: str = "scripted-1",
        base_url: str = "http://live.invalid/v1",
        dies_after: int | None = None,
        status: int = 0,
        **_: Any,
    ) -> None:
        self.model = model
        self.base_url = base_url
        self.dies_after = dies_after
        self.status = status
        self.calls = 0
        self.in_flight = 0
        self.most_in_flight = 0

    def _chat(self, messages: list[Message], options: ChatOptions) -> Completion:
        raise AssertionError("the bench asks through achat")

    async def achat(self, messages: Any, **options: Any) -> Completion:
        self.calls += 1
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            await asyncio.sleep(0.001)
            if self.dies_after is not None and self.calls > self.dies_after:
                if self.status:
                    raise BackendStatusError("unavailable", self.name, status=self.status)
                raise BackendUnreachable("connection refused", self.name)
            text = " ".join(str(m.get("content", "")) for m in messages)
            for i, task in enumerate(TASKS):
                if task.prompt in text:
                    return Completion(_reply(i, task), "stop", Usage(20, 10))
            raise AssertionError(f"no task in {text[:200]!r}")
        finally:
            self.in_flight -= 1


def _measures(card: dict[str, Any]) -> list[dict[str, Any]]:
    return [{k: v for k, v in r.items() if k not in WHERE} for r in card["results"]]


def _ids(card: dict[str, Any]) -> list[str]:
    return [r["id"] for r in card["results"]]


def _rates(card: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in card["summary"].items() if not k.startswith("seconds")}


# --------------------------------------------------------------------------- #
# Targets
# --------------------------------------------------------------------------- #


@pytest.mark.parametrize(
    ("text", "want"),
    [
        ("hf", Target("hf")),
        ("ollama:qwen2.5:0.5b", Target("ollama", "qwen2.5:0.5b")),
        (
            "llamacpp@http://127.0.0.1:8080/v1,http://127.0.0.1:8081/v1",
            Target("llamacpp", None, ("http://127.0.0.1:8080/v1", "http://127.0.0.1:8081/v1")),
        ),
        (
            "small=openai:smollm2@https://gpu-1:8000/v1",
            Target("openai", "smollm2", ("https://gpu-1:8000/v1",), "small"),
        ),
        ("x=hf:/models/a=b.gguf", Target("hf", "/models/a=b.gguf", (), "x")),
    ],
    ids=["driver", "ollama-tag", "two-servers", "named", "path-with-equals"],
)
def test_a_target_names_driver_model_servers_and_card(text: str, want: Target) -> None:
    assert parse_target(text) == want
    assert parse_target(want.describe()) == want


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("", "driver's name"),
        ("llamacpp@127.0.0.1:8080", "not a server address"),
        ("llamacpp@http://a:1/v1,", "not a server address"),
        ("llamacpp:@http://a:1/v1", "model after ':' is empty"),
        ("my name=hf", "NAME is letters"),
        ("llamacpp@http://a:1/v1,http://a:1/v1", "names a server twice"),
        ("llamacpp@http://a:1/v1,http://a:1/v1/", "names a server twice"),
    ],
    ids=[
        "empty",
        "no-scheme",
        "empty-url",
        "empty-model",
        "bad-name",
        "same-server",
        "same-server-with-a-slash",
    ],
)
def test_a_target_written_wrong_says_what_and_shows_the_form(text: str, says: str) -> None:
    with pytest.raises(ConfigError, match=says) as caught:
        parse_target(text)
    if "twice" not in says:
        assert "[NAME=]BACKEND[:MODEL][@URL[,URL...]]" in str(caught.value)


# --------------------------------------------------------------------------- #
# The fan-out
# --------------------------------------------------------------------------- #


def test_tasks_spread_over_servers_give_the_one_servers_results_in_task_order() -> None:
    alone = run_model_bench(Scripted(), tasks=TASKS, max_tokens=64)
    a, b, c = Scripted(base_url="a"), Scripted(base_url="b"), Scripted(base_url="c")
    endpoints = [Endpoint(a, 2), Endpoint(b, 1), Endpoint(c, 3)]
    spread = run_model_bench_on(endpoints, tasks=TASKS, max_tokens=64)
    assert [r["id"] for r in spread["results"]] == [t.id for t in TASKS]
    assert _measures(spread) == _measures(alone)
    assert _rates(spread) == _rates(alone)
    assert sum(spread["servers"].values()) == len(TASKS)
    assert len([n for n in spread["servers"].values() if n]) >= 2
    assert {r["server"] for r in spread["results"]} <= {"a", "b", "c"}
    assert spread["moved"] == 0
    assert not spread["interrupted"]
    assert "error" not in spread
    assert a.most_in_flight <= 2
    assert b.most_in_flight <= 1
    assert c.most_in_flight <= 3
    # The scripted replies make each rate something other than all or nothing.
    assert 0 < alone["summary"]["raw_valid"] < alone["summary"]["valid_after_repair"] < 1


@pytest.mark.parametrize("status", [0, 503], ids=["connection-refused", "service-unavailable"])
def test_a_server_that_dies_midway_passes_its_tasks_on_and_the_card_counts_them(
    status: int,
) -> None:
    alone = run_model_bench(Scripted(), tasks=TASKS, max_tokens=64)
    dying = Scripted(base_url="dying", dies_after=2, status=status)
    dead = Scripted(base_url="dead", dies_after=0)
    live = Scripted(base_url="live")
    endpoints = [Endpoint(dying, 1), Endpoint(dead, 1), Endpoint(live, 1)]
    card = run_model_bench_on(endpoints, tasks=TASKS, max_tokens=64)
    assert [r["id"] for r in card["results"]] == [t.id for t in TASKS]  # each task once
    assert _measures(card) == _measures(alone)
    assert card["summary"]["tasks"] == len(TASKS)
    assert card["summary"]["errors"] == 0
    assert card["servers"]["dead"] == 0
    assert sum(card["servers"].values()) == len(TASKS)
    moved = [r for r in card["results"] if r["tries"] > 1]
    assert moved
    assert card["moved"] == len(moved)
    assert all(r["server"] != "dead" for r in card["results"])
    assert not card["interrupted"]


def test_when_every_server_fails_the_run_stops_with_what_finished() -> None:
    endpoints = [
        Endpoint(Scripted(base_url="a", dies_after=3), 1, cooldown=0.01),
        Endpoint(Scripted(base_url="b", dies_after=1), 1, cooldown=0.01),
    ]
    card = run_model_bench_on(endpoints, tasks=TASKS, max_tokens=64)
    assert card["interrupted"]
    assert "every server of this model failed (a, b)" in card["error"]
    finished = [r["id"] for r in card["results"]]
    assert finished == [t.id for t in TASKS[: len(finished)]]
    assert 0 < len(finished) < len(TASKS)
    assert card["summary"]["errors"] == 0  # a dead server is no answer of the model's


def test_a_tasks_own_backend_error_is_its_result_not_a_failover() -> None:
    class TooLong(Scripted):
        async def achat(self, messages: Any, **options: Any) -> Completion:
            self.calls += 1
            raise BackendStatusError("bad request", self.name, status=400)

    first, second = TooLong(base_url="x"), TooLong(base_url="y")
    card = run_model_bench_on([Endpoint(first, 1), Endpoint(second, 1)], tasks=TASKS[:4])
    assert card["summary"]["errors"] == 4
    assert card["moved"] == 0
    assert not card["interrupted"]
    assert first.calls + second.calls == 4


def test_ctrl_c_leaves_a_card_of_the_tasks_that_finished() -> None:
    seen: list[str] = []

    def stop_after_three(result: Any) -> None:
        seen.append(result.id)
        if len(seen) == 3:
            raise KeyboardInterrupt

    endpoints = [Endpoint(Scripted(base_url="a"), 2), Endpoint(Scripted(base_url="b"), 2)]
    card = run_model_bench_on(endpoints, tasks=TASKS, on_result=stop_after_three)
    assert card["interrupted"]
    assert "error" not in card
    assert _ids(card) == [t.id for t in TASKS[:3]]
    assert card["summary"]["tasks"] == 3


# --------------------------------------------------------------------------- #
# The command
# --------------------------------------------------------------------------- #


@pytest.fixture(autouse=True)
def _scripted(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(registry, "_registered", {})
    rl.register("scripted", Scripted)
    # A failed server rests a moment, not five seconds: the tests stay short.
    monkeypatch.setattr(targets, "Endpoint", functools.partial(Endpoint, cooldown=0.01))


def _bench(out: Path, *args: str) -> int:
    return main(["bench", "model", "-n", "6", "--seed", "3", "--out", str(out), *args])


def test_two_targets_write_a_card_each_and_one_comparison(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = _bench(
        tmp_path,
        "--target",
        "pair=scripted@http://a.invalid/v1,http://dies-soon.invalid/v1",
        "--target",
        "one=scripted:scripted-2",
        "--set",
        "dies_after=2",  # every server of the run answers two requests ...
        "--concurrency",
        "2",
    )
    err = capsys.readouterr().err
    # ... so both targets run out of servers: the cards hold what finished, and the
    # command ends with one clear line, exit 1.
    assert code == 1
    assert "Traceback" not in err
    assert "BackendUnreachable" in err
    assert "pair=scripted@" in err
    assert "one=scripted" in err
    pair = json.loads((tmp_path / "pair.json").read_text())
    one = json.loads((tmp_path / "one.json").read_text())
    assert pair["interrupted"]
    assert one["interrupted"]
    compare = (tmp_path / "compare.md").read_text()
    assert "pair (scripted)" in compare
    assert "one (scripted)" in compare


def test_servers_of_one_model_give_one_card_with_every_task_and_a_comparison(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = _bench(
        tmp_path,
        "--backend",
        "scripted",
        "--base-url",
        "http://a.invalid/v1",
        "--base-url",
        "http://b.invalid/v1",
        "--concurrency",
        "1",
        "--concurrency",
        "2",
    )
    assert code == 0, capsys.readouterr().err
    cards = sorted(p.name for p in tmp_path.glob("*.json"))
    assert cards == ["scripted-scripted-1.json"]
    card = json.loads((tmp_path / cards[0]).read_text())
    assert [r["id"] for r in card["results"]] == [t.id for t in TASKS[:6]]
    assert sum(card["servers"].values()) == 6
    assert set(card["servers"]) == {"http://a.invalid/v1", "http://b.invalid/v1"}
    assert (tmp_path / "compare.md").read_text().count("scripted-1 (scripted)") == 1
    assert "Served by 2 server(s)" in (tmp_path / "scripted-scripted-1.md").read_text()


def test_one_backend_as_before_writes_its_card_and_no_comparison(tmp_path: Path) -> None:
    assert _bench(tmp_path, "--backend", "scripted") == 0
    written = {p.name for p in tmp_path.iterdir()}
    assert {"scripted-scripted-1.json", "scripted-scripted-1.md"} <= written
    assert "compare.md" not in written
    card = json.loads((tmp_path / "scripted-scripted-1.json").read_text())
    assert card["summary"]["tasks"] == 6
    assert "Served by" not in (tmp_path / "scripted-scripted-1.md").read_text()


def test_two_unnamed_targets_of_the_same_model_do_not_overwrite_each_other(
    tmp_path: Path,
) -> None:
    assert _bench(tmp_path, "--target", "scripted", "--target", "scripted") == 0
    assert {p.name for p in tmp_path.glob("*.json")} == {
        "scripted-scripted-1.json",
        "scripted-scripted-1-2.json",
    }


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--target", "scripted", "--backend", "scripted"], "drop --backend or the --target"),
        (["--target", "scripted", "--base-url", "http://a/v1"], "drop --base-url"),
        (["--target", "scripted", "--concurrency", "1", "--concurrency", "2"], "one --concurrency"),
        (["--target", "a=scripted", "--target", "a=scripted:m"], "the same NAME"),
        (["--target", "scripted@localhost:8080"], "not a server address"),
        (
            [
                "--backend",
                "scripted",
                "--base-url",
                "http://a/v1",
                "--concurrency",
                "1",
                "--concurrency",
                "2",
                "--concurrency",
                "3",
            ],
            "3 --concurrency values for 1 servers",
        ),
        (["--backend", "scripted", "--concurrency", "0"], "at least 1"),
        (["--backend", "scripted", "--set", "oops"], "KEY=VALUE"),
        # The real drivers check their address when made, before any task is sent.
        (["--target", "llamacpp:m@http://[::1"], "Invalid IPv6 URL"),
        (["--target", "llamacpp:m@http://127.0.0.1:99999/v1"], "Port out of range"),
        (["--target", "llamacpp@ftp://127.0.0.1/v1"], "http:// or https://"),
        (["--target", "ollama:m@http://[::1"], "Invalid IPv6 URL"),
    ],
    ids=[
        "target-and-backend",
        "target-and-url",
        "concurrencies",
        "same-name",
        "bad-url",
        "concurrency-count",
        "concurrency-zero",
        "bad-set",
        "unclosed-ipv6",
        "port-out-of-range",
        "not-http",
        "ollama-unclosed-ipv6",
    ],
)
def test_a_wrong_command_is_one_line_and_exit_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], says: str
) -> None:
    assert _bench(tmp_path, *args) == 1
    err = capsys.readouterr().err
    assert says in err
    assert "Traceback" not in err
    assert "internal error" not in err
    assert not list(tmp_path.glob("*.json"))


def test_every_server_dead_from_the_start_is_a_clear_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = _bench(
        tmp_path,
        "--backend",
        "scripted",
        "--base-url",
        "http://a.invalid/v1",
        "--base-url",
        "http://b.invalid/v1",
        "--set",
        "dies_after=0",
    )
    err = capsys.readouterr().err
    assert code == 1
    assert "every server of this model failed (http://a.invalid/v1, http://b.invalid/v1)" in err
    assert "Traceback" not in err
    card = json.loads((tmp_path / "scripted-scripted-1.json").read_text())
    assert card["results"] == []
    assert card["servers"] == {
        "http://a.invalid/v1": 0,
        "http://b.invalid/v1": 0,
    }
