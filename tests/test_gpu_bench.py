"""benchmarks/sft_gpu.py (issue 17's GPU figures): FLOPs bookkeeping and a CPU smoke run of the suite."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("sft_gpu", ROOT / "benchmarks" / "sft_gpu.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_shapes_are_the_public_llama_sizes(bench):
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    expected = {"1b": 1_235_814_400, "8b": 8_030_261_248}  # Llama-3.2-1B, Llama-3.1-8B parameter counts
    for shape, n in expected.items():
        with torch.device("meta"):
            model = LlamaForCausalLM(LlamaConfig(**bench.SHAPES[shape]))
        assert sum(p.numel() for p in model.parameters()) == n
    assert bench.peak_tflops("NVIDIA H100 80GB HBM3") == 989.0
    assert bench.peak_tflops("NVIDIA H100 PCIe") == 756.0
    assert bench.peak_tflops("NVIDIA H200") == 989.0
    # 6 N T + 12 L d s^2: one 4096-token document through the 8B shape (N = 7.5e9 without the embedding)
    n_matmul = 8_030_261_248 - 128256 * 4096
    flops = bench.step_flops([4096], n_matmul, 32, 4096)
    assert flops == 6 * n_matmul * 4096 + 12 * 32 * 4096 * 4096**2


def test_batch_docs_reads_documents_from_collated_batches(bench):
    import torch

    packed = {"input_ids": torch.zeros(1, 9), "position_ids": torch.tensor([[0, 1, 2, 0, 1, 0, 1, 2, 3]])}
    assert bench.batch_docs(packed) == ([3, 2, 4], 9)
    padded = {"input_ids": torch.zeros(2, 4), "attention_mask": torch.tensor([[1, 1, 1, 1], [1, 1, 0, 0]])}
    assert bench.batch_docs(padded) == ([4, 2], 8)


def test_synthetic_tokenizer_gives_one_token_per_word(bench):
    tok = bench.synthetic_tokenizer(50)
    assert tok("t7 t49 t3", add_special_tokens=False)["input_ids"] == [7, 49, 3]
    assert tok.pad_token_id == 0 and tok.eos_token_id == 1
    assert bench.synthetic_tokenizer(50, pad_is_eos=True).pad_token_id == 1


def test_a_hung_configuration_is_cut_by_its_timeout(bench):
    cfg = {"device": "cpu", "seed": 0, "n": 64}
    row = bench.run_in_subprocess("matmul", cfg, timeout=0.05)
    assert row["status"] == "timeout after 0 s"


def test_spent_budget_skips_the_rest(bench, tmp_path):
    results, table = tmp_path / "r.jsonl", tmp_path / "r.md"
    args = ["--suite", "smoke", "--device", "cpu", "--budget", "0", "--results", str(results)]
    assert bench.main([*args, "--markdown", str(table)]) == 0
    rows = [json.loads(line) for line in results.read_text().splitlines()]
    assert len(rows) == len(bench.SUITES["smoke"])
    assert {r["status"] for r in rows} == {"skipped: suite budget spent"}


def test_smoke_suite_runs_the_project_paths_on_cpu(tmp_path):
    results, table = tmp_path / "bench.jsonl", tmp_path / "bench.md"
    cmd = [sys.executable, str(ROOT / "benchmarks" / "sft_gpu.py"), "--suite", "smoke", "--device", "cpu"]
    cmd += ["--in-process", "--results", str(results), "--markdown", str(table)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    rows = [json.loads(line) for line in results.read_text().splitlines()]
    assert all(r["status"] == "ok" for r in rows), [r["status"] for r in rows]
    (matmul,) = [r for r in rows if r["kind"] == "matmul"]
    assert matmul["matmul_tflops"] > 0

    train = {(r["batching"], r["grad_ckpt"]): r for r in rows if r["kind"] == "train"}
    assert set(train) == {("packing", True), ("packing", False), ("padding", True), ("padding", False)}
    for r in train.values():
        assert r["tokens_per_s"] > 0 and r["tflops_per_s"] > 0 and r["steps"] == 2
        assert "mfu" in r and r["peak_tflops"] is None  # no data-sheet peak for a CPU
        assert r["matmul_tflops"] == matmul["matmul_tflops"] and r["mfu_vs_matmul"] > 0
        assert r["precision"] == "pure bf16" and r["attn_used"] == "sdpa"  # config/config.yaml's training
    assert train["packing", True]["padding_fraction"] == 0.0
    # Packing fills 2 rows of 64 tokens; padding holds 2 documents, so more tokens per packed step.
    assert train["packing", True]["tokens_per_step_mean"] > train["padding", True]["tokens_per_step_mean"]

    infer = {r["batch"]: r for r in rows if r["kind"] == "infer"}
    assert set(infer) == {1, 16, 64}
    for b, r in infer.items():  # two timed batches, every row forced to output_len new tokens
        assert r["output_tokens"] == 2 * b * r["output_len"] and r["input_tokens"] == 2 * b * r["prompt_len"]
        assert r["output_tokens_per_s"] > 0
    text = table.read_text()
    assert "| configuration | tokens/s | TFLOP/s | MFU (peak) | MFU (matmul) |" in text
    assert "train tiny packing ckpt off" in text and "infer tiny batch 64" in text
