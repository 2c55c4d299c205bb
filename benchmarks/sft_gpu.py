"""GPU benchmark for the SFT step: tokens/s and MFU of Llama-shaped models with random weights.

Measures one training step (forward + backward, optionally AdamW) of a Llama-3.2-1B- or Llama-3.1-8B-shaped
model built from its config (random weights, nothing downloaded) in bf16, over sequences of up to
--seq-len tokens, for every combination of:
  batching   padding (B documents padded to the longest) | packing (B rows of seq-len tokens, padding-free:
             flattened to one row, position_ids restart per document, so no cross-document attention)
  liger      off | on   (Liger Triton kernels: RMSNorm, RoPE, SwiGLU, fused linear cross-entropy)
  attention  sdpa | flash_attention_2

Each combination runs in its own subprocess (Liger patches classes globally; OOM stays contained). Results
are printed as a table and appended as JSON lines to --results.

FLOPs (model FLOPs, the MFU convention of PaLM, Chowdhery et al. 2022, appendix B):
  per step = 6 * N * T  +  12 * n_layers * (n_heads * head_dim) * sum_i s_i^2
  N    parameters taking part in matmuls: all but the input embedding (the LM head counts once, tied or not)
  T    real (non-padding) tokens in the step
  s_i  length of document i; attention is per document (block-diagonal when packed)
  The attention term counts the full s x s score and value matmuls (fwd 4*s^2*d per layer, x3 for fwd+bwd),
  ignoring the causal mask, as PaLM and Megatron do. Padding and activation-checkpointing recomputation are
  not model FLOPs: they lower MFU, which is the point of comparing padding with packing.
  MFU = FLOPs per step / step time / (peak dense bf16 FLOP/s of the GPU, table PEAK_TFLOPS).

Runs on CPU too (--device cpu --shapes tiny) as a smoke test of the code path; CPU numbers mean nothing.
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import os
import random
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

# Dense bf16 peak (no sparsity), TFLOP/s per GPU, from the vendors' data sheets. Longest match wins.
PEAK_TFLOPS = {
    "H100 NVL": 835.0,
    "H100 PCIe": 756.0,
    "H100": 989.0,  # SXM5 (HBM3), e.g. "NVIDIA H100 80GB HBM3"
    "H200": 989.0,
    "GH200": 989.0,
    "A100": 312.0,
    "L40S": 362.0,
    "B200": 2250.0,
}

# Llama shapes (config.json of the public checkpoints); "tiny" is for CPU smoke tests only.
SHAPES: dict[str, dict[str, Any]] = {
    "1b": dict(hidden_size=2048, num_hidden_layers=16, num_attention_heads=32, num_key_value_heads=8,
               intermediate_size=8192, vocab_size=128256, tie_word_embeddings=True, rope_theta=500000.0),
    "8b": dict(hidden_size=4096, num_hidden_layers=32, num_attention_heads=32, num_key_value_heads=8,
               intermediate_size=14336, vocab_size=128256, tie_word_embeddings=False, rope_theta=500000.0),
    "tiny": dict(hidden_size=64, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                 intermediate_size=128, vocab_size=1024, tie_word_embeddings=False, rope_theta=10000.0),
}  # fmt: skip

DEFAULT_RESULTS = Path(__file__).resolve().parent / "results" / "sft_gpu.jsonl"


# --- workload -------------------------------------------------------------------------------------------


def doc_lengths(rng: random.Random, n: int, mean: float, seq_len: int) -> list[int]:
    """Log-normal document lengths (sigma 0.8, like SFT data: many short, a long tail), clipped to seq_len."""
    sigma = 0.8
    mu = math.log(mean) - sigma**2 / 2
    return [max(16, min(seq_len, round(rng.lognormvariate(mu, sigma)))) for _ in range(n)]


def padding_batches(rng: random.Random, steps: int, batch: int, mean: float, seq_len: int) -> list[list[int]]:
    """Each step: `batch` documents, padded to the longest."""
    return [doc_lengths(rng, batch, mean, seq_len) for _ in range(steps)]


def packing_batches(rng: random.Random, steps: int, batch: int, mean: float, seq_len: int) -> list[list[int]]:
    """Each step: documents filling `batch` rows of seq_len (first fit), flattened padding-free."""
    out = []
    for _ in range(steps):
        rows = [0] * batch
        docs: list[int] = []
        while True:
            (n,) = doc_lengths(rng, 1, mean, seq_len)
            free = [i for i, used in enumerate(rows) if used + n <= seq_len]
            if not free:
                break
            rows[free[0]] += n
            docs.append(n)
        out.append(docs)
    return out


def step_flops(docs: list[int], n_matmul: int, layers: int, attn_dim: int) -> float:
    tokens = sum(docs)
    return 6.0 * n_matmul * tokens + 12.0 * layers * attn_dim * sum(s * s for s in docs)


def matmul_params(model: Any, shape: dict[str, Any]) -> int:
    """N of the FLOPs formula: every weight but the embedding table, plus the LM head once."""
    body = sum(
        p.numel() for n, p in model.named_parameters() if "embed_tokens" not in n and "lm_head" not in n
    )
    return body + shape["vocab_size"] * shape["hidden_size"]


def peak_tflops(device_name: str) -> float | None:
    matches = [k for k in PEAK_TFLOPS if k in device_name]
    return PEAK_TFLOPS[max(matches, key=len)] if matches else None


# --- one configuration (runs in a subprocess) -------------------------------------------------------------


def _build_model(shape: str, attn: str, liger: bool, device: str, grad_ckpt: bool):
    import torch
    from transformers import AutoModelForCausalLM, LlamaConfig

    if liger:
        from liger_kernel.transformers import apply_liger_kernel_to_llama

        apply_liger_kernel_to_llama(rope=True, rms_norm=True, swiglu=True, fused_linear_cross_entropy=True)
    config = LlamaConfig(**SHAPES[shape], max_position_embeddings=131072)
    with torch.device(device):
        model = AutoModelForCausalLM.from_config(config, dtype=torch.bfloat16, attn_implementation=attn)
    if grad_ckpt:
        model.gradient_checkpointing_enable()
    model.config.use_cache = False
    return model.train()


def _inputs(docs: list[int], batching: str, vocab: int, device: str) -> dict[str, Any]:
    import torch

    if batching == "packing":
        ids = torch.randint(0, vocab, (1, sum(docs)), device=device)
        pos = torch.cat([torch.arange(n, device=device) for n in docs])[None]
        return {"input_ids": ids, "position_ids": pos, "labels": ids}
    longest = max(docs)
    ids = torch.randint(0, vocab, (len(docs), longest), device=device)
    mask = torch.zeros_like(ids)
    for i, n in enumerate(docs):
        mask[i, :n] = 1
    labels = ids.masked_fill(mask == 0, -100)
    return {"input_ids": ids, "attention_mask": mask, "labels": labels}


def _sync(device: str) -> None:
    import torch

    if device.startswith("cuda"):
        torch.cuda.synchronize()


def run_single(cfg: dict[str, Any]) -> dict[str, Any]:
    """Time `steps` training steps after `warmup`; returns the result row."""
    import torch

    torch.manual_seed(cfg["seed"])
    device = cfg["device"]
    model = _build_model(cfg["shape"], cfg["attn"], cfg["liger"], device, cfg["grad_ckpt"])
    on_gpu = device.startswith("cuda")
    opt = torch.optim.AdamW(model.parameters(), lr=1e-5, fused=on_gpu) if cfg["adamw"] else None
    make = packing_batches if cfg["batching"] == "packing" else padding_batches
    rng = random.Random(cfg["seed"])
    batches = make(rng, cfg["warmup"] + cfg["steps"], cfg["batch"], cfg["mean_doc_len"], cfg["seq_len"])
    shape = SHAPES[cfg["shape"]]
    n_matmul = matmul_params(model, shape)
    attn_dim = shape["num_attention_heads"] * (shape["hidden_size"] // shape["num_attention_heads"])
    times, flops, tokens, slots = [], [], [], []
    if device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()
    for i, docs in enumerate(batches):
        inputs = _inputs(docs, cfg["batching"], shape["vocab_size"], device)
        _sync(device)
        t0 = time.perf_counter()
        loss = model(**inputs).loss
        loss.backward()
        if opt is not None:
            opt.step()
        model.zero_grad(set_to_none=True)
        _sync(device)
        if i >= cfg["warmup"]:
            times.append(time.perf_counter() - t0)
            flops.append(step_flops(docs, n_matmul, shape["num_hidden_layers"], attn_dim))
            tokens.append(sum(docs))
            slots.append(inputs["input_ids"].numel())
    return _summarise(cfg, times, flops, tokens, slots, n_matmul)


def _summarise(cfg, times, flops, tokens, slots, n_matmul) -> dict[str, Any]:
    import torch

    total_t = sum(times)
    on_gpu = cfg["device"].startswith("cuda")
    device_name = torch.cuda.get_device_name(0) if on_gpu else "cpu"
    peak = cfg["peak_tflops"] or (peak_tflops(device_name) if device_name != "cpu" else None)
    achieved = sum(flops) / total_t / 1e12
    return {
        **cfg,
        "status": "ok",
        "device_name": device_name,
        "n_matmul_params": n_matmul,
        "step_s_mean": round(total_t / len(times), 4),
        "step_s_max": round(max(times), 4),
        "tokens_per_s": round(sum(tokens) / total_t, 1),
        "tokens_per_step_mean": round(sum(tokens) / len(tokens), 1),
        "padding_fraction": round(1 - sum(tokens) / sum(slots), 4),
        "tflops_per_s": round(achieved, 2),
        "peak_tflops": peak,
        "mfu": round(achieved / peak, 4) if peak else None,
        "peak_memory_gib": round(torch.cuda.max_memory_allocated() / 2**30, 2) if on_gpu else None,
        "versions": _versions(),
    }


def _versions() -> dict[str, str | None]:
    import importlib.metadata as md

    out = {}
    for name in ("torch", "transformers", "liger-kernel", "flash-attn"):
        try:
            out[name] = md.version(name)
        except md.PackageNotFoundError:
            out[name] = None
    return out


# --- driver -------------------------------------------------------------------------------------------------


def skip_reason(cfg: dict[str, Any]) -> str | None:
    import importlib.util

    on_gpu = cfg["device"].startswith("cuda")
    if cfg["liger"] and (not on_gpu or importlib.util.find_spec("liger_kernel") is None):
        return "liger-kernel needs a GPU and the liger-kernel package"
    no_flash = importlib.util.find_spec("flash_attn") is None
    if cfg["attn"].startswith("flash_attention") and (not on_gpu or no_flash):
        return "flash_attention_2 needs a GPU and the flash-attn package"
    return None


def configs(args: argparse.Namespace) -> list[dict[str, Any]]:
    grid = itertools.product(args.shapes, args.batching, args.liger, args.attn)
    return [
        {
            "shape": shape,
            "batching": batching,
            "liger": liger == "on",
            "attn": attn,
            "seq_len": args.seq_len,
            "batch": args.batch_size,
            "mean_doc_len": args.mean_doc_len,
            "steps": args.steps,
            "warmup": args.warmup,
            "grad_ckpt": args.grad_ckpt == "on",
            "adamw": args.optimizer == "adamw",
            "device": args.device,
            "peak_tflops": args.peak_tflops,
            "seed": args.seed,
        }
        for shape, batching, liger, attn in grid
    ]


def run_in_subprocess(cfg: dict[str, Any], timeout: int) -> dict[str, Any]:
    reason = skip_reason(cfg)
    if reason:
        return {**cfg, "status": f"skipped: {reason}"}
    cmd = [sys.executable, str(Path(__file__).resolve()), "--single", json.dumps(cfg)]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {**cfg, "status": f"timeout after {timeout} s"}
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    if proc.returncode != 0 or not lines:
        tail = proc.stderr.strip().splitlines()[-1:] or ["no output"]
        status = "oom" if "OutOfMemoryError" in proc.stderr else f"error: {tail[0][:200]}"
        return {**cfg, "status": status}
    return json.loads(lines[-1])


def print_table(rows: list[dict[str, Any]]) -> None:
    head = f"{'shape':5} {'batching':8} {'liger':5} {'attention':17} {'tok/s':>10} {'TFLOP/s':>8} {'MFU':>6} "
    head += f"{'pad':>5} {'mem GiB':>7}  status"
    print(head)
    print("-" * len(head))
    for r in rows:
        ok = r["status"] == "ok"
        mfu = f"{r['mfu']:.1%}" if ok and r.get("mfu") is not None else "-"
        print(
            f"{r['shape']:5} {r['batching']:8} {('on' if r['liger'] else 'off'):5} {r['attn']:17} "
            f"{(r['tokens_per_s'] if ok else '-'):>10} {(r['tflops_per_s'] if ok else '-'):>8} {mfu:>6} "
            f"{(r['padding_fraction'] if ok else '-'):>5} {(r.get('peak_memory_gib') or '-'):>7}  "
            f"{r['status']}"
        )


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--shapes", nargs="+", default=["1b", "8b"], choices=sorted(SHAPES))
    p.add_argument("--batching", nargs="+", default=["packing", "padding"], choices=["packing", "padding"])
    p.add_argument("--liger", nargs="+", default=["off", "on"], choices=["off", "on"])
    p.add_argument("--attn", nargs="+", default=["flash_attention_2", "sdpa"],
                   choices=["flash_attention_2", "sdpa", "eager"])  # fmt: skip
    p.add_argument("--seq-len", type=int, default=4096, help="max tokens per row (training.max_length)")
    p.add_argument("--batch-size", type=int, default=4, help="rows (packing) or documents (padding) per step")
    p.add_argument("--mean-doc-len", type=float, default=700.0, help="mean document length in tokens")
    p.add_argument("--steps", type=int, default=10, help="timed steps")
    p.add_argument("--warmup", type=int, default=3, help="untimed steps first")
    p.add_argument("--grad-ckpt", choices=["on", "off"], default="on", help="activation checkpointing")
    p.add_argument(
        "--optimizer",
        choices=["none", "adamw"],
        default="none",
        help="also time a fused AdamW step (8B + bf16 AdamW needs ~64 GiB before activations)",
    )
    p.add_argument("--device", default="cuda", help="cuda, cuda:1, or cpu (smoke test only)")
    p.add_argument("--peak-tflops", type=float, help="override the peak dense bf16 TFLOP/s of the GPU")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--timeout", type=int, default=1800, help="seconds per configuration")
    p.add_argument("--results", type=Path, default=DEFAULT_RESULTS, help="JSON lines appended here")
    p.add_argument("--single", help=argparse.SUPPRESS)  # internal: run one configuration, print JSON
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.single:
        print(json.dumps(run_single(json.loads(args.single))), flush=True)
        return 0
    rows = []
    args.results.parent.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S")
    for cfg in configs(args):
        row = {"time": stamp, "host": os.uname().nodename, **run_in_subprocess(cfg, args.timeout)}
        rows.append(row)
        with args.results.open("a", encoding="utf-8") as fh:
            fh.write(json.dumps(row) + "\n")
        name = f"{cfg['shape']} {cfg['batching']} liger={cfg['liger']} {cfg['attn']}"
        print(f"{name}: {row['status']}", flush=True)
    print()
    print_table(rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
