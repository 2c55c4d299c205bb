"""Profile the demo's generation levers inside one process: the top-p sampler alone, then batched
generation at two prompt lengths (benchmarks/RESULTS.md, "Demo profile").

    python benchmarks/demo_profile.py --model-dir .cache/smollm2-135m-instruct [--old-sampler]

`--old-sampler` swaps in the sampler as it was before (softmax + a full sort of the vocabulary per row).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

from agorabench.llm import transformers_backend as tb
from agorabench.llm.base import Request, Sampling


class SortSampler(tb._RowSampler):
    """The sampler before vectorisation: a full sort of every row's vocabulary at every step."""

    def __call__(self, input_ids, scores):
        probs = torch.softmax(scores.float() / self.temperature, dim=-1)
        sorted_p, order = torch.sort(probs, descending=True, dim=-1)
        sorted_p = sorted_p.masked_fill((sorted_p.cumsum(-1) - sorted_p) >= self.top_p, 0.0)
        cdf = sorted_p.cumsum(-1)
        u = torch.cat([torch.rand(1, generator=g) for g in self.generators])
        pos = torch.searchsorted(cdf, (u * cdf[:, -1])[:, None]).clamp_(max=cdf.shape[-1] - 1)
        return torch.full_like(scores, float("-inf")).scatter_(-1, order.gather(-1, pos), 0.0)


def sampler_ms(cls: type, temperature: float, spread: float = 3.0, steps: int = 20) -> float:
    scores = torch.randn(16, 49152, generator=torch.Generator().manual_seed(0)) * spread
    sampler = cls(list(range(16)), temperature, 0.95)
    sampler(None, scores)
    t = time.perf_counter()
    for _ in range(steps):
        sampler(None, scores)
    return (time.perf_counter() - t) / steps * 1000


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model-dir", required=True)
    ap.add_argument("--old-sampler", action="store_true")
    ap.add_argument("--template", default="config/prompts/agorabench/math_instance_generation.txt")
    args = ap.parse_args()
    torch.set_num_threads(1)
    for cls in (SortSampler, tb._RowSampler):
        print(cls.__name__, {t: round(sampler_ms(cls, t), 1) for t in (0.7, 1.0)}, "ms/step")
    if args.old_sampler:
        tb._RowSampler = SortSampler
    t = time.perf_counter()
    backend = tb.TransformersBackend(args.model_dir, batch_size=16, prompt_format="raw")
    print(f"model load {time.perf_counter() - t:.1f} s")
    words = Path(args.template).read_text().split()
    for n_words in (525, 112):  # ~420 and ~170 prompt tokens
        prompt = " ".join(words[:n_words])
        sampling = Sampling(temperature=1.0, top_p=0.95, max_tokens=128)
        reqs = [
            Request(
                id=f"{n_words}-{i}",
                messages=({"role": "user", "content": f"{prompt} {i}"},),
                sampling=sampling,
            )
            for i in range(16)
        ]
        t = time.perf_counter()
        out = list(backend.complete(reqs))
        wall = time.perf_counter() - t
        tokens = sum(c.output_tokens for c in out)
        print(f"{len(backend.encode(reqs[0]))} prompt tokens: {wall:.1f} s, {tokens / wall:.0f} tok/s")


if __name__ == "__main__":
    main()
