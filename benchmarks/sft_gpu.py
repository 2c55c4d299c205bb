"""GPU figures (issue 17): the project's own SFT path and student inference, with random-weight Llama shapes.

Training goes through agorabench.training: the `training` section of config/config.yaml, checked by
`validate_hparams`, turned into the rule's SFTConfig by `sft_config` and into the rule's SFTTrainer (TRL
collator, BFD packing, completion-only loss, AdamW, scheduler) by `build_trainer`. Only the model and the
data are synthetic: a Llama-3.2-1B- or Llama-3.1-8B-shaped model built from its config (random weights,
nothing downloaded) and pre-tokenized documents of log-normal length (random ids; the first quarter of each
is prompt, masked from the loss). A step is timed from the end of one optimizer step to the end of the next
(data, forward, backward, clipping, AdamW, logging), warm-up steps excluded. Each configuration:
  batching   padding (per_device_batch_size documents padded to the longest) | packing (rows of max_length
             tokens, padding-free: position_ids restart per document, no cross-document attention)
  grad_ckpt  activation checkpointing on | off
  liger      off | on   (Liger Triton kernels through SFTConfig.use_liger_kernel; GPU only)

Inference goes through agorabench.llm.TransformersBackend (its batching, left padding, generate, decode) on
the same random model saved to a folder, with a tokenizer of one word per id, so prompt and output lengths
are exact: the only change is min_new_tokens = max_tokens (EOS suppressed until the length is reached).

FLOPs (model FLOPs, the MFU convention of PaLM, Chowdhery et al. 2022, appendix B):
  per step = 6 * N * T  +  12 * n_layers * (n_heads * head_dim) * sum_i s_i^2
  N    parameters taking part in matmuls: all but the input embedding (the LM head counts once, tied or not)
  T    real (non-padding) tokens in the step
  s_i  length of document i; attention is per document (block-diagonal when packed)
  The attention term counts the full s x s score and value matmuls (fwd 4*s^2*d per layer, x3 for fwd+bwd),
  ignoring the causal mask, as PaLM and Megatron do. Padding and activation-checkpointing recomputation are
  not model FLOPs: they lower MFU, which is the point of comparing padding with packing.
  MFU = FLOPs per step / step time / peak, for two peaks: the data sheet's dense bf16 peak (PEAK_TFLOPS)
  and the bf16 GEMM rate measured on the same device (`matmul`, an n x n x n product).

`--suite issue17` runs the prepared list (SUITES) with a timeout per configuration and an overall budget,
appends JSON lines and writes a Markdown table. Runs on CPU too (--device cpu, shape "tiny") as a smoke
test of the code path; CPU numbers mean nothing.
"""

from __future__ import annotations

import argparse
import importlib.metadata as md
import itertools
import json
import math
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as a script from anywhere (the GPU machine has no installed package)
    sys.path.insert(0, str(ROOT))

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

CONFIG = ROOT / "config" / "config.yaml"
DEFAULT_RESULTS = Path(__file__).resolve().parent / "results" / "sft_gpu.jsonl"
SPECIAL = ("<pad>", "<eos>", "<unk>")  # ids 0, 1, 2 of the synthetic tokenizer

# The prepared suite of issue 17: (kind, settings, timeout s). Sized for <= 8 minutes on one H200.
TRAIN_8B = {"shape": "8b", "seq_len": 4096, "batch": 2, "steps": 4, "warmup": 2}
TRAIN_1B = {"shape": "1b", "seq_len": 4096, "batch": 4, "steps": 4, "warmup": 2}
INFER_1B = {"shape": "1b", "prompt_len": 512, "output_len": 128}
TRAIN_TINY = {"shape": "tiny", "seq_len": 64, "batch": 2, "steps": 2, "warmup": 1, "mean_doc_len": 20}
SUITES: dict[str, list[tuple[str, dict[str, Any], int]]] = {
    "issue17": [
        ("matmul", {"n": 8192}, 60),
        ("train", {**TRAIN_8B, "batching": "packing", "grad_ckpt": True, "liger": False}, 80),
        ("train", {**TRAIN_8B, "batching": "packing", "grad_ckpt": False, "liger": False}, 80),
        ("train", {**TRAIN_8B, "batching": "packing", "grad_ckpt": True, "liger": True}, 90),
        ("train", {**TRAIN_8B, "batching": "padding", "grad_ckpt": True, "liger": False}, 70),
        ("train", {**TRAIN_8B, "batching": "padding", "grad_ckpt": False, "liger": False}, 70),
        ("train", {**TRAIN_1B, "batching": "packing", "grad_ckpt": True, "liger": False}, 50),
        ("train", {**TRAIN_1B, "batching": "padding", "grad_ckpt": True, "liger": False}, 45),
        ("infer", {**INFER_1B, "batch": 1}, 90),
        ("infer", {**INFER_1B, "batch": 16}, 40),
        ("infer", {**INFER_1B, "batch": 64}, 45),
    ],
    # The CPU smoke test: the same code paths with tiny shapes.
    "smoke": [
        ("matmul", {"n": 256}, 60),
        *[
            ("train", {**TRAIN_TINY, "batching": b, "grad_ckpt": g, "liger": False}, 120)
            for b in ("packing", "padding")
            for g in (True, False)
        ],
        *[
            ("infer", {"shape": "tiny", "prompt_len": 8, "output_len": 4, "batch": b}, 120)
            for b in (1, 16, 64)
        ],
    ],
}


# --- workload and FLOPs ---------------------------------------------------------------------------------


def doc_lengths(rng: random.Random, n: int, mean: float, seq_len: int) -> list[int]:
    """Log-normal document lengths (sigma 0.8, like SFT data: many short, a long tail), clipped to seq_len."""
    sigma = 0.8
    mu = math.log(mean) - sigma**2 / 2
    return [max(16, min(seq_len, round(rng.lognormvariate(mu, sigma)))) for _ in range(n)]


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


def batch_docs(batch: dict[str, Any]) -> tuple[list[int], int]:
    """Document lengths and token slots of one collated batch (padding-free rows restart position_ids)."""
    ids = batch["input_ids"]
    if "attention_mask" in batch:
        return [int(n) for n in batch["attention_mask"].sum(dim=1).tolist()], ids.numel()
    pos = batch["position_ids"].flatten().tolist()
    starts = [i for i, p in enumerate(pos) if p == 0] + [len(pos)]
    return [b - a for a, b in itertools.pairwise(starts)], ids.numel()


# --- synthetic model, tokenizer and data -----------------------------------------------------------------


def synthetic_tokenizer(vocab_size: int, pad_is_eos: bool = False) -> Any:
    """One whitespace-separated word per id ("t3" is id 3): a text of n words is exactly n tokens."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {tok: i for i, tok in enumerate(SPECIAL)} | {f"t{i}": i for i in range(len(SPECIAL), vocab_size)}
    core = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    core.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    pad = "<eos>" if pad_is_eos else "<pad>"
    return PreTrainedTokenizerFast(tokenizer_object=core, pad_token=pad, eos_token="<eos>", unk_token="<unk>")


def build_model(shape: str, attn: str, dtype_name: str, device: str) -> Any:
    import torch
    from transformers import AutoModelForCausalLM, LlamaConfig

    config = LlamaConfig(**SHAPES[shape], max_position_embeddings=131072, pad_token_id=0, eos_token_id=1)
    with torch.device(device):
        return AutoModelForCausalLM.from_config(
            config, dtype=getattr(torch, dtype_name), attn_implementation=attn
        )


def training_rows(cfg: dict[str, Any], n_docs: int, vocab: int) -> list[dict[str, list[int]]]:
    """Pre-tokenized rows (TRL skips tokenization): random ids, the first quarter masked as prompt."""
    rng = random.Random(cfg["seed"])
    rows = []
    for n in doc_lengths(rng, n_docs, cfg["mean_doc_len"], cfg["seq_len"]):
        prompt = n // 4
        ids = [rng.randrange(len(SPECIAL), vocab) for _ in range(n)]
        rows.append({"input_ids": ids, "completion_mask": [0] * prompt + [1] * (n - prompt)})
    return rows


def docs_needed(cfg: dict[str, Any]) -> int:
    steps = cfg["warmup"] + cfg["steps"]
    if cfg["batching"] == "padding":
        return steps * cfg["batch"]
    return math.ceil(1.3 * steps * cfg["batch"] * cfg["seq_len"] / cfg["mean_doc_len"]) + 8


def training_hparams(cfg: dict[str, Any], config_path: Path = CONFIG) -> Any:
    """The config's `training` section with the benchmark's choices on top, checked as the rule checks it."""
    import yaml

    from agorabench.training.hparams import validate_hparams

    raw = dict(yaml.safe_load(config_path.read_text(encoding="utf-8"))["training"])
    raw.update(
        max_length=cfg["seq_len"], per_device_batch_size=cfg["batch"], packing=cfg["batching"] == "packing",
        gradient_checkpointing=cfg["grad_ckpt"], liger_kernel=cfg["liger"],
        attn_implementation=cfg["attn"], max_steps=cfg["warmup"] + cfg["steps"], seed=cfg["seed"],
        gradient_accumulation_steps=1, global_batch_size=None, logging_steps=1, save_steps=10**9,
    )  # fmt: skip
    return validate_hparams(raw)


# --- one configuration (runs in a subprocess) -------------------------------------------------------------


class _Recorder:
    """Wraps the trainer's collator to keep each batch's document lengths (the k-th batch is step k)."""

    def __init__(self, collator: Any):
        self.collator = collator
        self.batches: list[tuple[list[int], int]] = []

    def __call__(self, examples: list[dict[str, Any]]) -> dict[str, Any]:
        out = self.collator(examples)
        self.batches.append(batch_docs(out))
        return out


def _step_timer(device: str) -> Any:
    from transformers import TrainerCallback

    class StepTimer(TrainerCallback):
        def __init__(self):
            self.ends: list[float] = []

        def on_train_begin(self, args, state, control, **kw):
            if device.startswith("cuda"):
                import torch

                torch.cuda.reset_peak_memory_stats()

        def on_step_end(self, args, state, control, **kw):
            _sync(device)
            self.ends.append(time.perf_counter())

    return StepTimer()


def _sync(device: str) -> None:
    import torch

    if device.startswith("cuda"):
        torch.cuda.synchronize()


def run_train(cfg: dict[str, Any]) -> dict[str, Any]:
    """A few steps of the project's SFTTrainer on a random-weight model; the result row."""
    import torch
    from transformers.trainer_utils import SaveStrategy

    from agorabench.training.sft import build_trainer, resolve_attention, resolve_liger, sft_config

    torch.manual_seed(cfg["seed"])
    device, cuda = cfg["device"], cfg["device"].startswith("cuda")
    hp = training_hparams(cfg)
    attn, liger = resolve_attention(hp.attn_implementation, cuda), resolve_liger(hp.liger_kernel, cuda)
    shape = SHAPES[cfg["shape"]]
    model = build_model(cfg["shape"], attn, "bfloat16" if hp.pure_bf16 else "float32", device)
    rows = training_rows(cfg, docs_needed(cfg), shape["vocab_size"])
    timer = _step_timer(device)
    with tempfile.TemporaryDirectory() as tmp:
        config = sft_config(hp, ckpt_dir=Path(tmp), accumulation=1, cuda=cuda, liger=liger)
        config.save_strategy = SaveStrategy.NO  # no checkpoint: 8B weights + AdamW would fill the disk
        gamma = hp.lr_gamma if hp.lr_scheduler == "step_per_epoch" else None
        trainer = build_trainer(model, synthetic_tokenizer(shape["vocab_size"]), rows, config, [timer], gamma)
        recorder = _Recorder(trainer.data_collator)
        trainer.data_collator = recorder
        trainer.train()
    steps = trainer.state.global_step
    if steps != hp.max_steps or len(recorder.batches) < steps:
        raise RuntimeError(f"ran {steps} of {hp.max_steps} steps on {len(recorder.batches)} batches")
    timed = recorder.batches[cfg["warmup"] : steps]
    wall = timer.ends[steps - 1] - timer.ends[cfg["warmup"] - 1]
    n_matmul = matmul_params(trainer.model, shape)
    attn_dim = shape["num_attention_heads"] * (shape["hidden_size"] // shape["num_attention_heads"])
    flops = sum(step_flops(docs, n_matmul, shape["num_hidden_layers"], attn_dim) for docs, _ in timed)
    tokens = sum(sum(docs) for docs, _ in timed)
    slots = sum(n for _, n in timed)
    extra = {"attn_used": attn, "liger_used": liger, "precision": "pure bf16" if hp.pure_bf16 else "bf16 amp"}
    return _train_row(cfg, wall, flops, tokens, slots, n_matmul, len(timed), extra)


def _train_row(cfg, wall, flops, tokens, slots, n_matmul, steps, extra) -> dict[str, Any]:
    achieved = flops / wall / 1e12
    peak = cfg.get("peak_tflops") or peak_tflops(_device_name(cfg["device"]))
    measured = cfg.get("matmul_tflops")
    return {
        **cfg, **extra,
        "status": "ok",
        "device_name": _device_name(cfg["device"]),
        "n_matmul_params": n_matmul,
        "step_s_mean": round(wall / steps, 4),
        "tokens_per_s": round(tokens / wall, 1),
        "tokens_per_step_mean": round(tokens / steps, 1),
        "padding_fraction": round(1 - tokens / slots, 4),
        "tflops_per_s": float(f"{achieved:.4g}"),
        "peak_tflops": peak,
        "mfu": round(achieved / peak, 4) if peak else None,
        "matmul_tflops": measured,
        "mfu_vs_matmul": round(achieved / measured, 4) if measured else None,
        "peak_memory_gib": _peak_memory(cfg["device"]),
    }  # fmt: skip


def run_matmul(cfg: dict[str, Any]) -> dict[str, Any]:
    """bf16 GEMM rate, n x n x n on random data: mean of 10 products after 3 warm-ups."""
    import torch

    n, device = cfg["n"], cfg["device"]
    a, b = (torch.randn(n, n, device=device, dtype=torch.bfloat16) for _ in range(2))
    for _ in range(3):
        a @ b
    _sync(device)
    t0 = time.perf_counter()
    for _ in range(10):
        a @ b
    _sync(device)
    wall = time.perf_counter() - t0
    tflops = 10 * 2 * n**3 / wall / 1e12
    return {**cfg, "status": "ok", "device_name": _device_name(device), "matmul_tflops": round(tflops, 3)}


def _backend_class() -> Any:
    from agorabench.llm.transformers_backend import TransformersBackend

    class FixedLengthBackend(TransformersBackend):
        """The project's backend, every row forced to max_tokens new tokens (EOS suppressed until then)."""

        def _generation_kwargs(self, batch):
            kwargs = super()._generation_kwargs(batch)
            kwargs["generation_config"].min_new_tokens = kwargs["generation_config"].max_new_tokens
            return kwargs

    return FixedLengthBackend


def save_inference_model(shape: str, folder: Path, device: str) -> None:
    """The random-weight model and its tokenizer as a Hugging Face folder, written atomically."""
    if folder.is_dir():
        return
    tmp = folder.with_name(folder.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    build_model(shape, "sdpa", "bfloat16", device).save_pretrained(tmp)  # random init is fast on a GPU
    synthetic_tokenizer(SHAPES[shape]["vocab_size"], pad_is_eos=True).save_pretrained(tmp)
    tmp.rename(folder)


def run_infer(cfg: dict[str, Any]) -> dict[str, Any]:
    """Output tokens/s of TransformersBackend at one batch size: one untimed batch, then two timed."""
    from agorabench.llm.base import Request, Sampling

    folder = Path(cfg["workdir"]) / f"infer-{cfg['shape']}"
    save_inference_model(cfg["shape"], folder, cfg["device"])
    if cfg["device"].startswith("cuda"):  # the peak of the backend alone, not of saving the folder
        import torch

        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
    backend = _backend_class()(folder, dtype="bfloat16", batch_size=cfg["batch"], device=cfg["device"],
                               prompt_format="raw")  # fmt: skip
    rng = random.Random(cfg["seed"])
    vocab = SHAPES[cfg["shape"]]["vocab_size"]
    sampling = Sampling(temperature=0.0, max_tokens=cfg["output_len"])

    def requests(tag: str) -> list[Any]:
        words = lambda: " ".join(f"t{rng.randrange(len(SPECIAL), vocab)}" for _ in range(cfg["prompt_len"]))  # noqa: E731
        msgs = lambda: ({"role": "user", "content": words()},)  # noqa: E731
        return [Request(id=f"{tag}{i}", messages=msgs(), sampling=sampling) for i in range(cfg["batch"])]

    list(backend.complete(requests("warm")))
    _sync(cfg["device"])
    t0 = time.perf_counter()
    done = list(backend.complete(requests("a") + requests("b")))
    wall = time.perf_counter() - t0
    out_tokens = sum(c.output_tokens for c in done)
    in_tokens = sum(c.input_tokens for c in done)
    backend.close()
    return {
        **cfg, "status": "ok", "device_name": _device_name(cfg["device"]), "requests": len(done),
        "input_tokens": in_tokens, "output_tokens": out_tokens, "wall_s": round(wall, 3),
        "output_tokens_per_s": round(out_tokens / wall, 1), "peak_memory_gib": _peak_memory(cfg["device"]),
    }  # fmt: skip


def _device_name(device: str) -> str:
    import torch

    return torch.cuda.get_device_name(torch.device(device)) if device.startswith("cuda") else "cpu"


def _peak_memory(device: str) -> float | None:
    import torch

    return round(torch.cuda.max_memory_allocated() / 2**30, 2) if device.startswith("cuda") else None


RUNNERS = {"train": run_train, "matmul": run_matmul, "infer": run_infer}


# --- driver -------------------------------------------------------------------------------------------------


def versions() -> dict[str, str | None]:
    out: dict[str, str | None] = {"python": sys.version.split()[0]}
    for name in ("torch", "transformers", "accelerate", "trl", "datasets", "liger-kernel", "triton"):
        try:
            out[name] = md.version(name)
        except md.PackageNotFoundError:
            out[name] = None
    return out


def driver_version() -> str | None:
    try:
        cmd = ["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"]
        return subprocess.run(cmd, capture_output=True, text=True, timeout=20).stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def skip_reason(kind: str, cfg: dict[str, Any]) -> str | None:
    import importlib.util

    if kind == "train" and cfg["liger"]:
        if not cfg["device"].startswith("cuda"):
            return "liger-kernel needs a GPU"
        if importlib.util.find_spec("liger_kernel") is None:
            return "liger-kernel is not installed"
    return None


def run_in_subprocess(kind: str, cfg: dict[str, Any], timeout: float) -> dict[str, Any]:
    """One configuration in its own process (Liger patches classes globally; an OOM stays contained)."""
    reason = skip_reason(kind, cfg)
    if reason:
        return {**cfg, "status": f"skipped: {reason}"}
    cmd = [sys.executable, str(Path(__file__).resolve()), "--single", json.dumps({"kind": kind, **cfg})]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {**cfg, "status": f"timeout after {timeout:.0f} s"}
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    if proc.returncode != 0 or not lines:
        tail = proc.stderr.strip().splitlines()[-1:] or ["no output"]
        status = "oom" if "OutOfMemoryError" in proc.stderr else f"error: {tail[0][:300]}"
        return {**cfg, "status": status}
    return json.loads(lines[-1])


def run_in_process(kind: str, cfg: dict[str, Any], timeout: float) -> dict[str, Any]:
    """One configuration in this process: no isolation and no timeout (the CPU smoke test's shortcut)."""
    reason = skip_reason(kind, cfg)
    if reason:
        return {**cfg, "status": f"skipped: {reason}"}
    try:
        return {**RUNNERS[kind](cfg), "versions": versions()}
    except Exception as exc:  # reported in the row, as a subprocess's failure would be
        return {**cfg, "status": f"error: {type(exc).__name__}: {exc}"[:300]}


def run_suite(args: argparse.Namespace) -> list[dict[str, Any]]:
    """Every configuration of the suite, within --budget seconds; rows appended to --results as they end."""
    t_start = time.monotonic()
    rows: list[dict[str, Any]] = []
    matmul = None
    args.results.parent.mkdir(parents=True, exist_ok=True)
    workdir = Path(tempfile.mkdtemp(prefix="gpu-figures-"))
    common = {"device": args.device, "seed": args.seed, "attn": args.attn, "mean_doc_len": args.mean_doc_len,
              "peak_tflops": args.peak_tflops, "workdir": str(workdir)}  # fmt: skip
    try:
        for kind, settings, timeout in SUITES[args.suite]:
            cfg = {"kind": kind, **common, **settings, "matmul_tflops": matmul}
            left = args.budget - (time.monotonic() - t_start)
            if left < 10:
                row = {**cfg, "status": "skipped: suite budget spent"}
            else:
                run = run_in_process if args.in_process else run_in_subprocess
                row = {**run(kind, cfg, min(timeout * args.timeout_scale, left)), "kind": kind}
            if kind == "matmul" and row["status"] == "ok":
                matmul = row["matmul_tflops"]
            rows.append(row)
            with args.results.open("a", encoding="utf-8") as fh:
                fh.write(json.dumps(row) + "\n")
            print(f"{describe(row)}: {row['status']}", flush=True)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return rows


def describe(row: dict[str, Any]) -> str:
    if row["kind"] == "train":
        liger = "liger" if row["liger"] else "no liger"
        ckpt = "ckpt on" if row["grad_ckpt"] else "ckpt off"
        return f"train {row['shape']} {row['batching']} {ckpt} {liger} b={row['batch']} s={row['seq_len']}"
    if row["kind"] == "infer":
        return f"infer {row['shape']} batch {row['batch']} ({row['prompt_len']} in, {row['output_len']} out)"
    return f"matmul bf16 {row['n']}^3"


def _fmt(value: Any, spec: str = "") -> str:
    return "-" if value is None else format(value, spec)


def markdown(rows: list[dict[str, Any]], command: str) -> str:
    """The RESULTS.md table: command, GPU, driver, package versions, then one line per configuration."""
    name = next((r["device_name"] for r in rows if r.get("device_name")), "unknown")
    packages = ", ".join(f"{k} {v}" for k, v in versions().items() if v)
    head = ["configuration", "tokens/s", "TFLOP/s", "MFU (peak)", "MFU (matmul)", "padding", "peak GiB"]
    lines = [f"Command: `{command}`", "", f"Device: {name}; driver {driver_version() or '-'}; {packages}", ""]
    lines += ["| " + " | ".join([*head, "status"]) + " |", "|---" * (len(head) + 1) + "|"]
    for r in rows:
        ok = r["status"] == "ok"
        if r["kind"] == "matmul":
            cells = ["-", _fmt(r.get("matmul_tflops")), "-", "-", "-", "-"]
        elif r["kind"] == "infer":
            cells = [_fmt(r.get("output_tokens_per_s")) + " (output)", "-", "-", "-", "-",
                     _fmt(r.get("peak_memory_gib"))]  # fmt: skip
        else:
            cells = [_fmt(r.get("tokens_per_s")), _fmt(r.get("tflops_per_s")), _fmt(r.get("mfu"), ".1%"),
                     _fmt(r.get("mfu_vs_matmul"), ".1%"), _fmt(r.get("padding_fraction"), ".1%"),
                     _fmt(r.get("peak_memory_gib"))]  # fmt: skip
        cells = cells if ok else ["-"] * 6
        lines.append(f"| {describe(r)} | " + " | ".join(cells) + f" | {r['status']} |")
    return "\n".join(lines) + "\n"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--suite", default="issue17", choices=sorted(SUITES), help="configurations to run")
    p.add_argument("--device", default="cuda", help="cuda, cuda:1, or cpu (smoke test only)")
    p.add_argument(
        "--attn",
        default="sdpa",
        choices=["sdpa", "flash_attention_2", "eager"],
        help="training.attn_implementation (flash_attention_2 needs the flash-attn package)",
    )
    p.add_argument("--mean-doc-len", type=float, default=700.0, help="mean document length in tokens")
    p.add_argument("--budget", type=float, default=450.0, help="seconds for the whole suite")
    p.add_argument("--timeout-scale", type=float, default=1.0, help="multiplies every per-config timeout")
    p.add_argument("--peak-tflops", type=float, help="override the peak dense bf16 TFLOP/s of the GPU")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--results", type=Path, default=DEFAULT_RESULTS, help="JSON lines appended here")
    p.add_argument("--markdown", type=Path, help="write the Markdown table here (default: next to --results)")
    p.add_argument("--in-process", action="store_true", help="no subprocess per configuration (CPU tests)")
    p.add_argument("--single", help=argparse.SUPPRESS)  # internal: run one configuration, print JSON
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.single:
        cfg = json.loads(args.single)
        row = RUNNERS[cfg["kind"]](cfg)
        print(json.dumps({**row, "versions": versions()}), flush=True)
        return 0
    rows = run_suite(args)
    table = markdown(rows, " ".join(["python", "benchmarks/sft_gpu.py", *(argv or sys.argv[1:])]))
    out = args.markdown or args.results.with_suffix(".md")
    out.write_text(table, encoding="utf-8")
    print("\n" + table)
    return 0 if all(r["status"] == "ok" or r["status"].startswith("skipped") for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
