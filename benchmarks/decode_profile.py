"""What a decode step costs on this CPU, and the backend's decode loop against transformers' generate()
(benchmarks/RESULTS.md, "Demo, session 7").

    python benchmarks/decode_profile.py --model-dir results/demo/models/smollm2-135m-instruct

Part 1: one decode step of a left-padded batch at several batch sizes (bfloat16, sdpa, one thread): the
step's fixed part (reading the weights) against its per-row part. Part 2: the same greedy requests
through `TransformersBackend` (rows leave the batch as they end) and through `generate()` (every row runs
to the longest), their wall times and whether the texts are identical.
"""

from __future__ import annotations

import argparse
import time

import torch

from agorabench.llm.base import Request, Sampling
from agorabench.llm.transformers_backend import TransformersBackend

PROMPTS = [
    "What is 15% of 80?",
    "Write a Python function that reverses a string.",
    "Give me two tips for sleeping better.",
    "Natalia sold clips to 48 of her friends in April, and then she sold half as many clips in May. "
    "How many clips did Natalia sell altogether in April and May?",
    "Say hello.",
    "Name three colors.",
    "Write a haiku about the sea.",
    "Explain what a prime number is.",
]


def step_ms(lm, batch: int, context: int, steps: int = 20) -> float:
    ids = torch.randint(100, 40000, (batch, context))
    mask = torch.ones_like(ids)
    mask[: batch // 2, :20] = 0  # half the rows left-padded, as in a real batch
    with torch.inference_mode():
        out = lm(input_ids=ids, attention_mask=mask, use_cache=True, logits_to_keep=1)
        cache, nxt = out.past_key_values, ids[:, -1:]
        t = time.perf_counter()
        for _ in range(steps):
            mask = torch.cat([mask, mask.new_ones((batch, 1))], dim=-1)
            cache = lm(
                input_ids=nxt, attention_mask=mask, past_key_values=cache, use_cache=True
            ).past_key_values
    return (time.perf_counter() - t) / steps * 1000


def generate_texts(backend: TransformersBackend, requests: list[Request]) -> list[str]:
    from transformers import GenerationConfig

    tok, s = backend.tokenizer, requests[0].sampling
    enc = tok.pad(
        {"input_ids": [backend.encode(r) for r in requests]}, padding_side="left", return_tensors="pt"
    )
    config = GenerationConfig(max_new_tokens=s.max_tokens, do_sample=False, pad_token_id=tok.pad_token_id,
                              eos_token_id=backend.eos_ids)  # fmt: skip
    with torch.inference_mode():
        out = backend.lm.generate(**enc, generation_config=config)
    new = out[:, enc["input_ids"].shape[1] :].tolist()
    return [backend._completion(r, 0, toks, 0.0).text for r, toks in zip(requests, new, strict=True)]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model-dir", required=True)
    ap.add_argument("--max-tokens", type=int, default=128)
    args = ap.parse_args()
    backend = TransformersBackend(args.model_dir, batch_size=len(PROMPTS) * 2, num_threads=1)
    print("decode step, bfloat16, sdpa, 1 thread, 200-token context:")
    for batch in (1, 4, 16, 48):
        print(f"  batch {batch:2d}: {step_ms(backend.lm, batch, 200):6.1f} ms/step")
    sampling = Sampling(max_tokens=args.max_tokens)
    requests = [
        Request(f"p{i}", ({"role": "user", "content": q},), sampling) for i, q in enumerate(PROMPTS * 2)
    ]
    t = time.perf_counter()
    ours = {c.id: c for c in backend.complete(requests)}
    t_ours = time.perf_counter() - t
    t = time.perf_counter()
    theirs = generate_texts(backend, sorted(requests, key=lambda r: -len(backend.encode(r))))
    t_theirs = time.perf_counter() - t
    order = sorted(requests, key=lambda r: -len(backend.encode(r)))
    same = sum(ours[r.id].text == text for r, text in zip(order, theirs, strict=True))
    lengths = sorted(c.output_tokens for c in ours.values())
    print(f"{len(requests)} greedy requests, max_tokens {args.max_tokens}, output lengths {lengths}:")
    print(f"  backend decode loop {t_ours:.1f} s, generate() {t_theirs:.1f} s,", end=" ")
    print(f"identical texts {same}/{len(order)}")


if __name__ == "__main__":
    main()
