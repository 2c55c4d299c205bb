"""Generation throughput through the call store, and what a kill -9 costs on resume.

1. requests/s and output tokens/s through CallStore + OpenAIBackend at several concurrencies, against
   a local OpenAI-compatible server: by default the project's fault server with no faults and a
   simulated latency (latency_s + per_token_s per output token), or `--base-url` (llama.cpp, vLLM).
2. Resume overhead (fault server only): a child process is SIGKILLed after `--kill-after` stored rows
   and restarted. "calls repeated after a kill" = requests whose row was stored before the kill and
   that reached the server again after the restart (must be 0); "in-flight repeats" = requests the
   server answered before the kill whose rows were not stored yet (bounded by the concurrency).
3. Optionally (`--transformers-model-dir`), local TransformersBackend tokens/s at given batch sizes.

    python benchmarks/generation_throughput.py
    python benchmarks/generation_throughput.py --base-url http://127.0.0.1:8011/v1 --model smollm2-135m
    python benchmarks/generation_throughput.py --transformers-model-dir .cache/smollm2-135m-instruct
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from agorabench.llm.base import Request, Sampling
from agorabench.llm.openai_backend import OpenAIBackend
from agorabench.llm.store import CallStore

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))  # tests/servers/: loopback servers
from servers.fault_server import Faults, FaultServer, request_key


def make_requests(n: int, max_tokens: int, tag: str) -> list[Request]:
    s = Sampling(max_tokens=max_tokens)
    return [Request(f"{tag}-{i:05d}", ({"role": "user", "content": f"Write a story, part {i} ({tag})."},), s)
            for i in range(n)]  # fmt: skip


def throughput(
    base_url: str, model: str, api_key_env: str | None, reqs: list[Request], concurrency: int
) -> dict:
    backend = OpenAIBackend(model=model, base_url=base_url, api_key_env=api_key_env, concurrency=concurrency,
                            timeout_s=600, max_retries=3)  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        comps = [c for _, c in CallStore(Path(tmp) / "calls.jsonl").run(backend, reqs)]
        wall = time.perf_counter() - t0
    out_tokens = sum(c.output_tokens for c in comps)
    return {"concurrency": concurrency, "requests": len(comps), "wall_s": round(wall, 2),
            "requests_per_s": round(len(comps) / wall, 2), "output_tokens_per_s": round(out_tokens / wall, 1),
            "p50_latency_s": round(statistics.median(c.latency_s for c in comps), 3),
            "errors": sum(c.finish_reason == "error" for c in comps)}  # fmt: skip


def child(url: str, store: str, n: int, max_tokens: int, concurrency: int) -> None:
    """The process that gets killed: stores completions and reports each one on stdout."""
    backend = OpenAIBackend(model="echo", base_url=url, api_key_env=None, concurrency=concurrency)
    for req, _ in CallStore(store).run(backend, make_requests(n, max_tokens, "resume")):
        print("STORED", req.id, flush=True)


def resume_overhead(n: int, max_tokens: int, concurrency: int, kill_after: list[int], faults: Faults) -> dict:
    key_of = {
        request_key([dict(m) for m in r.messages]): r.id for r in make_requests(n, max_tokens, "resume")
    }
    repeated, in_flight = [], []
    with tempfile.TemporaryDirectory() as tmp, FaultServer(faults) as srv:
        store, ledger = Path(tmp) / "calls.jsonl", srv.ledger
        t0 = time.perf_counter()
        for k in [*kill_after, None]:
            done = set(CallStore(store).done)
            answered = {key_of[e["key"]] for e in ledger.events if e["outcome"] in ("ok", "client_gone")}
            mark = len(ledger.arrivals)
            args = [sys.executable, __file__, "--child", srv.url, str(store), str(n), str(max_tokens),
                    str(concurrency)]  # fmt: skip
            proc = subprocess.Popen(args, stdout=subprocess.PIPE, text=True)
            stored = 0
            for line in proc.stdout:  # type: ignore[union-attr]
                stored += line.startswith("STORED")
                if k is not None and stored >= k:
                    os.kill(proc.pid, signal.SIGKILL)
                    break
            proc.wait()
            ledger.settle()
            again = {key_of[key] for key in ledger.arrivals[mark:]}
            repeated.append(len(again & done))
            in_flight.append(len(again & (answered - done)))
        wall = time.perf_counter() - t0
        final = CallStore(store)
        paid = sum(ledger.count(key, o) for key in key_of for o in ("ok", "client_gone"))
    return {"requests": n, "kills": len(kill_after), "concurrency": concurrency,
            "calls_repeated_after_kill": sum(repeated), "in_flight_repeats": in_flight[1:],
            "stored_rows": len(final), "paid_calls": paid, "wall_s": round(wall, 2)}  # fmt: skip


def transformers_tps(model_dir: str, batch_sizes: list[int], max_tokens: int, threads: int) -> list[dict]:
    from agorabench.llm.transformers_backend import TransformersBackend

    backend = TransformersBackend(model_dir, batch_size=max(batch_sizes), num_threads=threads)
    list(backend.complete(make_requests(1, 4, "warmup")))
    rows = []
    for bs in batch_sizes:
        backend.batch_size = bs
        reqs = make_requests(bs, max_tokens, f"tf-{bs}")
        t0 = time.perf_counter()
        comps = list(backend.complete(reqs))
        wall = time.perf_counter() - t0
        tokens = sum(c.output_tokens for c in comps)
        rows.append({"batch_size": bs, "output_tokens": tokens, "wall_s": round(wall, 2),
                     "output_tokens_per_s": round(tokens / wall, 1)})  # fmt: skip
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--base-url", help="an OpenAI-compatible server (default: start the fault server)")
    ap.add_argument("--model", default="echo")
    ap.add_argument("--api-key-env", default=None)
    ap.add_argument("--requests", type=int, default=96)
    ap.add_argument("--max-tokens", type=int, default=64)
    ap.add_argument("--concurrency", default="1,4,16")
    ap.add_argument("--latency-s", type=float, default=0.05, help="fault server: fixed latency per request")
    ap.add_argument("--per-token-s", type=float, default=0.002, help="fault server: latency per output token")
    ap.add_argument("--kill-after", default="10,25,40", help="stored rows before each kill (resume test)")
    ap.add_argument("--transformers-model-dir")
    ap.add_argument("--batch-sizes", default="1,16")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--json", help="also write the results here")
    ap.add_argument("--child", nargs=5, help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.child:
        url, store, n, max_tokens, conc = a.child
        return child(url, store, int(n), int(max_tokens), int(conc))

    results: dict = {
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}"
    }
    faults = Faults(latency_s=a.latency_s, per_token_s=a.per_token_s, reply_words=a.max_tokens)
    levels = [int(c) for c in a.concurrency.split(",")]
    with FaultServer(faults) as srv:
        url = a.base_url or srv.url
        results["server"] = a.base_url or f"fault server, {faults!r}, reply {a.max_tokens} tokens"
        results["throughput"] = [
            throughput(url, a.model, a.api_key_env, make_requests(a.requests, a.max_tokens, f"c{c}"), c)
            for c in levels
        ]
    kills = [int(k) for k in a.kill_after.split(",") if k]
    results["resume"] = resume_overhead(a.requests, a.max_tokens, max(levels), kills, faults)
    if a.transformers_model_dir:
        sizes = [int(b) for b in a.batch_sizes.split(",")]
        results["transformers"] = transformers_tps(a.transformers_model_dir, sizes, a.max_tokens, a.threads)
    print(json.dumps(results, indent=2))
    if a.json:
        Path(a.json).write_text(json.dumps(results, indent=2) + "\n")
    if results["resume"]["calls_repeated_after_kill"] != 0:
        raise SystemExit("FAIL: a completed call was paid again after a kill")


if __name__ == "__main__":
    main()
