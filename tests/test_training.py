"""SFT on CPU with SmolLM2-135M: loss goes down, response-only loss, packing, resume after kill, bad input."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from agorabench.errors import ConfigError, DataError
from agorabench.jsonl import sha256_file
from agorabench.training import launch_command, resolve_accumulation, validate_hparams
from agorabench.training.data import check_lengths, load_records, to_conversation

ROOT = Path(__file__).resolve().parents[1]
WORDS = ["apple", "banana", "cherry", "delta", "echo", "foxtrot", "golf", "hotel"]
HP = {
    "epochs": 1,
    "learning_rate": 1e-4,
    "max_length": 256,
    "per_device_batch_size": 4,
    "gradient_accumulation_steps": 1,
    "seed": 42,
    "bf16": True,
    "lr_scheduler": "constant",
    "warmup_ratio": 0.0,
    "max_steps": 4,
    "packing": False,
    "gradient_checkpointing": False,
    "attn_implementation": "sdpa",
    "save_steps": 100,
}


def _write_rows(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def _memo_rows() -> list[dict]:
    return [
        {
            "id": f"memo/{i}",
            "instruction": f"What is secret word number {i}?",
            "response": f"Word {i} is {w}.",
        }
        for i, w in enumerate(WORDS)
    ]


@pytest.fixture(scope="module")
def memo_path(tmp_path_factory) -> Path:
    return _write_rows(tmp_path_factory.mktemp("data") / "train.jsonl", _memo_rows())


@pytest.fixture(scope="module")
def trained(tmp_path_factory, memo_path, smollm2_dir) -> dict:
    from agorabench.training import train_sft

    out = tmp_path_factory.mktemp("run")
    info = train_sft(
        train_path=str(memo_path),
        model_dir=str(smollm2_dir),
        output_dir=str(out / "model"),
        hparams=HP,
        log_path=str(out / "log.jsonl"),
        info_path=str(out / "info.json"),
        plot_path=str(out / "loss.png"),
    )
    return {"out": out, "info": info}


# --- training on CPU ---------------------------------------------------------------------------------


@pytest.mark.slow
def test_loss_decreases_and_log_rows(trained):
    rows = [json.loads(line) for line in (trained["out"] / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [1, 2, 3, 4]
    assert set(rows[0]) >= {"step", "epoch", "loss", "learning_rate", "tokens_per_s", "elapsed_s"}
    assert rows[-1]["loss"] < 0.7 * rows[0]["loss"], [r["loss"] for r in rows]
    assert all(r["tokens_per_s"] > 0 for r in rows)
    assert rows[-1]["elapsed_s"] > rows[0]["elapsed_s"]


@pytest.mark.slow
def test_info_plot_and_no_leftover_checkpoints(trained, memo_path):
    out, info = trained["out"], trained["info"]
    assert json.loads((out / "info.json").read_text()) == json.loads(json.dumps(info))
    assert info["dataset"]["sha256"] == sha256_file(memo_path)
    assert info["dataset"]["rows"] == len(WORDS)
    assert info["steps"] == 4 and info["effective_global_batch"] == 4
    assert info["training_data"] == {"seed_records": 0, "generated_records": len(WORDS)}
    assert info["precision"] == "bf16 autocast, fp32 master weights"
    assert info["final_loss"] < info["first_loss"]
    assert set(info["versions"]) >= {"torch", "transformers", "trl", "accelerate"}
    assert info["hardware"]["cpu"] and info["hardware"]["gpu_count_visible"] == 0
    assert info["end_of_turn_token"] == "<|im_end|>"
    assert (out / "loss.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not (out / "model.checkpoints").exists()
    assert sorted(p.name for p in (out / "model").iterdir()) == [
        "chat_template.jinja",
        "config.json",
        "generation_config.json",
        "model.safetensors",
        "tokenizer.json",
        "tokenizer_config.json",
    ]


@pytest.mark.slow
def test_checkpoint_reloads_and_generates(trained, smollm2_dir):
    import torch
    from safetensors import safe_open
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model_dir = trained["out"] / "model"
    config = json.loads((model_dir / "config.json").read_text())
    assert config["dtype"] == "bfloat16" and config["tie_word_embeddings"] is True
    with safe_open(model_dir / "model.safetensors", "pt") as f:
        keys = set(f.keys())
        assert f.get_tensor("model.embed_tokens.weight").dtype == torch.bfloat16
    assert "lm_head.weight" not in keys  # tied: stored once, like the base model
    model = AutoModelForCausalLM.from_pretrained(model_dir)
    tok = AutoTokenizer.from_pretrained(model_dir)
    base = AutoModelForCausalLM.from_pretrained(smollm2_dir)
    changed = not torch.equal(
        model.model.layers[0].mlp.up_proj.weight, base.model.layers[0].mlp.up_proj.weight
    )
    assert changed
    eos = model.generation_config.eos_token_id
    assert tok.convert_tokens_to_ids("<|im_end|>") in (eos if isinstance(eos, list) else [eos])
    enc = tok.apply_chat_template(
        [{"role": "user", "content": "What is secret word number 3?"}],
        add_generation_prompt=True,
        return_tensors="pt",
        return_dict=True,
    )
    gen = model.generate(**enc, max_new_tokens=8, do_sample=False)
    text = tok.decode(gen[0, enc["input_ids"].shape[1] :], skip_special_tokens=True)
    assert text.strip(), "generated nothing"


# --- what the trainer trains on ------------------------------------------------------------------------


def _trainer(smollm2_dir: Path, rows: list[dict], tmp_path: Path, **overrides):
    from agorabench.training.hparams import validate_hparams as vh
    from agorabench.training.sft import build_trainer, load_model, load_tokenizer, sft_config

    hp = vh({**HP, **overrides})
    tok = load_tokenizer(str(smollm2_dir))
    config = sft_config(hp, ckpt_dir=tmp_path / "ckpt", accumulation=1, cuda=False, liger=False)
    model = load_model(str(smollm2_dir), "sdpa")
    return build_trainer(model, tok, rows, config), tok


@pytest.mark.slow
def test_loss_covers_response_tokens_only(smollm2_dir, tmp_path):
    rows = [to_conversation(r) for r in load_records(_write_rows(tmp_path / "t.jsonl", _memo_rows()[:2]))]
    trainer, tok = _trainer(smollm2_dir, rows, tmp_path)
    for row, src in zip(trainer.train_dataset, _memo_rows()[:2], strict=True):
        ids, labels = row["input_ids"], row["labels"]
        first = next(i for i, lab in enumerate(labels) if lab != -100)
        assert all(lab == -100 for lab in labels[:first])
        assert labels[first:] == ids[first:]
        assert tok.decode(ids[first:]) == src["response"] + "<|im_end|>\n"
        assert src["instruction"] in tok.decode(ids[:first])


@pytest.mark.slow
def test_packing_keeps_examples_apart(smollm2_dir, tmp_path):
    import torch

    rows = [to_conversation(r) for r in load_records(_write_rows(tmp_path / "t.jsonl", _memo_rows()[:3]))]
    trainer, _ = _trainer(smollm2_dir, rows, tmp_path, packing=True)
    packed = trainer.train_dataset[0]
    assert len(packed["seq_lengths"]) == 3  # three short examples share one 256-token row
    batch = trainer.data_collator([packed])
    assert "attention_mask" not in batch and batch["position_ids"][0].tolist().count(0) == 3
    body = trainer.model.model.eval()
    with torch.no_grad():
        joint = body(input_ids=batch["input_ids"], position_ids=batch["position_ids"]).last_hidden_state[0]
        start = 0
        for n in packed["seq_lengths"]:
            alone = body(input_ids=batch["input_ids"][:, start : start + n]).last_hidden_state[0]
            torch.testing.assert_close(joint[start : start + n], alone, atol=1e-4, rtol=1e-4)
            start += n


def _token_loss_sum(model, input_ids, labels, **kw) -> tuple[float, int]:
    """(sum of the per-token losses, token count) of one forward pass; labels shifted as in training."""
    out = model(input_ids=input_ids, labels=labels, **kw)
    n = int((labels[:, 1:] != -100).sum())
    return out.loss.item() * n, n


@pytest.mark.slow
@pytest.mark.parametrize("attn", ["sdpa", "eager"])
def test_packed_loss_equals_unpacked_loss(smollm2_dir, tmp_path, attn):
    # The attention the environments provide (config: training.attn_implementation) must keep packed
    # examples apart: the loss of one packed row equals the token-weighted loss of its examples run alone.
    import torch

    from agorabench.training import sft

    hp = validate_hparams({**HP, "packing": True, "attn_implementation": attn})
    assert sft.resolve_attention(attn, cuda=False) == attn
    config = sft.sft_config(hp, ckpt_dir=tmp_path / "ckpt", accumulation=1, cuda=False, liger=False)
    rows = [to_conversation(r) for r in load_records(_write_rows(tmp_path / "t.jsonl", _memo_rows()[:3]))]
    model = sft.load_model(str(smollm2_dir), attn).eval()
    trainer = sft.build_trainer(model, sft.load_tokenizer(str(smollm2_dir)), rows, config)
    packed = trainer.train_dataset[0]
    assert len(packed["seq_lengths"]) == 3
    batch = trainer.data_collator([packed])
    ids, labels, pos = batch["input_ids"], batch["labels"], batch["position_ids"]
    with torch.no_grad():
        total, count = _token_loss_sum(model, ids, labels, position_ids=pos)
        alone_sum = alone_n = 0
        start = 0
        for n in packed["seq_lengths"]:
            s, k = _token_loss_sum(model, ids[:, start : start + n], labels[:, start : start + n])
            alone_sum, alone_n, start = alone_sum + s, alone_n + k, start + n
        # Control: the same row and positions with a plain causal mask lets examples see each other.
        ones = torch.ones_like(ids)
        crossed, _ = _token_loss_sum(model, ids, labels, position_ids=pos, attention_mask=ones)
    assert count == alone_n > 0
    # fp32 forward passes of the same tokens: only the order of sums differs, so 1e-4 is a loose bound.
    assert total / count == pytest.approx(alone_sum / alone_n, rel=1e-4)
    assert abs(crossed / count - alone_sum / alone_n) > 1e-2, "the control should see cross-example attention"


# --- preemption -----------------------------------------------------------------------------------------


def _sft_cmd(train: Path, model: Path, out: Path, hp: dict) -> list[str]:
    args = ["--train", str(train), "--model", str(model), "--out", str(out / "model")]
    args += [
        "--hparams-json",
        json.dumps(hp),
        "--log",
        str(out / "log.jsonl"),
        "--info",
        str(out / "info.json"),
    ]
    return launch_command(1, args)


def _wait_for(path: Path, proc: subprocess.Popen, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert proc.poll() is None, f"training exited early: {proc.communicate()[1][-2000:]}"
        assert time.monotonic() < deadline, f"no {path} after {timeout} s"
        time.sleep(0.5)


@pytest.mark.slow
def test_resume_after_sigkill(memo_path, smollm2_dir, tmp_path):
    hp = {**HP, "save_steps": 2, "per_device_batch_size": 2}
    cmd = _sft_cmd(memo_path, smollm2_dir, tmp_path, hp)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    first = subprocess.Popen(
        cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        _wait_for(tmp_path / "model.checkpoints" / "checkpoint-2" / "trainer_state.json", first, 600)
    finally:
        first.send_signal(signal.SIGKILL)
        first.communicate()
    assert not (tmp_path / "model").exists()
    (tmp_path / "log.jsonl").unlink()  # as the workflow does with outputs of a failed job

    second = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
    assert second.returncode == 0, second.stderr[-3000:]
    assert "resumed from checkpoint" in second.stderr and "at step 2" in second.stderr
    assert "step 3/4" in second.stderr and "step 1/4" not in second.stderr
    steps = [json.loads(line)["step"] for line in (tmp_path / "log.jsonl").read_text().splitlines()]
    assert steps == [1, 2, 3, 4]
    info = json.loads((tmp_path / "info.json").read_text())
    assert info["resumed_from"].endswith("checkpoint-2") and info["steps"] == 4
    assert (tmp_path / "model" / "model.safetensors").is_file()
    assert not (tmp_path / "model.checkpoints").exists()


# --- bad input -------------------------------------------------------------------------------------------


def _run_bad(tmp_path: Path, model_dir: Path, rows_text: str, **hp):
    from agorabench.training import train_sft

    train = tmp_path / "bad.jsonl"
    train.write_text(rows_text, encoding="utf-8")
    return train_sft(
        train_path=str(train),
        model_dir=str(model_dir),
        output_dir=str(tmp_path / "model"),
        hparams={**HP, **hp},
        log_path=str(tmp_path / "log.jsonl"),
        info_path=str(tmp_path / "info.json"),
    )


def test_empty_file(tmp_path, smollm2_dir):
    with pytest.raises(DataError, match=r"bad\.jsonl: no training records"):
        _run_bad(tmp_path, smollm2_dir, "\n")


def test_malformed_json_line(tmp_path, smollm2_dir):
    good = json.dumps(_memo_rows()[0])
    with pytest.raises(DataError, match=r"bad\.jsonl, line 2: invalid JSON"):
        _run_bad(tmp_path, smollm2_dir, good + "\n{not json\n")


def test_record_missing_response(tmp_path, smollm2_dir):
    rows = _memo_rows()[:2]
    del rows[1]["response"]
    text = "".join(json.dumps(r) + "\n" for r in rows)
    with pytest.raises(DataError, match=r"line 2, record 'memo/1': field 'response' missing"):
        _run_bad(tmp_path, smollm2_dir, text)


def test_record_longer_than_max_length(tmp_path, smollm2_dir):
    rows = _memo_rows()[:3]
    rows[2]["response"] = "word " * 300
    text = "".join(json.dumps(r) + "\n" for r in rows)
    with pytest.raises(DataError, match=r"line 3, record 'memo/2': \d+ tokens > training\.max_length 256"):
        _run_bad(tmp_path, smollm2_dir, text)


def test_truncate_flag_counts_instead_of_failing(tmp_path):
    records = load_records(_write_rows(tmp_path / "t.jsonl", _memo_rows()[:3]))
    assert check_lengths(tmp_path / "t.jsonl", records, [10, 300, 20], 256, truncate=True) == 1


def test_model_dir_missing(tmp_path):
    rows = "".join(json.dumps(r) + "\n" for r in _memo_rows())
    with pytest.raises(DataError, match=r"no-such-model: not a model folder"):
        _run_bad(tmp_path, tmp_path / "no-such-model", rows)


def test_model_dir_broken(tmp_path):
    broken = tmp_path / "broken-model"
    broken.mkdir()
    (broken / "config.json").write_text('{"model_type": "llama"}')
    rows = "".join(json.dumps(r) + "\n" for r in _memo_rows())
    with pytest.raises(DataError, match=r"broken-model: cannot load the tokenizer"):
        _run_bad(tmp_path, broken, rows)


def test_missing_chat_template_file(tmp_path, smollm2_dir):
    rows = "".join(json.dumps(r) + "\n" for r in _memo_rows())
    with pytest.raises(ConfigError, match=r"training\.chat_template"):
        _run_bad(tmp_path, smollm2_dir, rows, chat_template=str(tmp_path / "none.jinja"))


def test_cli_reports_error_without_traceback(tmp_path, smollm2_dir):
    train = _write_rows(tmp_path / "t.jsonl", _memo_rows())
    cmd = _sft_cmd(train, smollm2_dir, tmp_path, {**HP, "learning_rate": "fast"})
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2
    assert "config key 'training.learning_rate'" in proc.stderr and "Traceback" not in proc.stderr


# --- hyper-parameters -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "key"),
    [
        ({"epochs": None}, "training.epochs"),
        ({"max_length": 0}, "training.max_length"),
        ({"bf16": "yes"}, "training.bf16"),
        ({"per_device_batch_size": True}, "training.per_device_batch_size"),
        ({"lr_scheduler": "zigzag"}, "training.lr_scheduler"),
        ({"warmup_ratio": 1.5}, "training.warmup_ratio"),
        ({"attn_implementation": "fast"}, "training.attn_implementation"),
        ({"epoch": 3}, "training.epoch"),
        ({"pure_bf16": True, "bf16": False}, "training.pure_bf16"),
        ({"lr_gamma": 0.0}, "training.lr_gamma"),
        ({"lr_scheduler": "step_per_epoch", "warmup_ratio": 0.03}, "training.warmup_ratio"),
    ],
)
def test_bad_hparams_name_the_key(change, key):
    hp = {**HP, **change}
    hp = {k: v for k, v in hp.items() if v is not None}
    with pytest.raises(ConfigError) as err:
        validate_hparams(hp)
    assert err.value.key == key


def test_global_batch_sets_accumulation():
    hp = validate_hparams({**HP, "global_batch_size": 128, "gpus": 4})
    assert resolve_accumulation(hp, 4) == 8  # the paper: 4 GPUs x 4 x 8
    assert resolve_accumulation(hp, 2) == 16
    assert resolve_accumulation(hp, 1) == 32
    with pytest.raises(ConfigError, match=r"training\.global_batch_size"):
        resolve_accumulation(hp, 3)


def test_paper_config_recipe_is_the_official_one():
    # data-agora's command: 2 packed sequences x accumulation 8 x 4 GPUs, StepLR(gamma 0.85) per epoch,
    # pure bf16, weight decay 0.01 (README.md:142-160, train/src/llama_recipes/configs/training.py:26).
    import yaml

    cfg = yaml.safe_load((ROOT / "config" / "config.yaml").read_text(encoding="utf-8"))["training"]
    hp = validate_hparams(cfg)
    assert resolve_accumulation(hp, cfg["gpus"]) == 8
    assert hp.per_device_batch_size * 8 * cfg["gpus"] == 64
    assert (hp.lr_scheduler, hp.lr_gamma, hp.warmup_ratio) == ("step_per_epoch", 0.85, 0.0)
    assert hp.pure_bf16 and hp.bf16 and hp.weight_decay == 0.01


def test_epoch_step_factor_is_steplr_per_epoch():
    import torch

    from agorabench.training.schedule import epoch_step_factor

    factor = epoch_step_factor(3, 0.85)
    # torch's own StepLR, stepped once per epoch of 3 optimizer steps, is the reference.
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    step_lr = torch.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.85)
    expected = []
    for _epoch in range(4):
        expected += [opt.param_groups[0]["lr"]] * 3
        opt.step()
        step_lr.step()
    assert [factor(k) for k in range(12)] == pytest.approx(expected)


class _Recorder:
    """Callback: the learning rate each optimizer step applies, and the dtypes it updates."""

    def __init__(self):
        from transformers import TrainerCallback

        outer = self

        class Callback(TrainerCallback):
            def on_pre_optimizer_step(self, args, state, control, optimizer=None, model=None, **kw):
                outer.lrs.append(optimizer.param_groups[0]["lr"])
                outer.epochs.append(state.epoch)

            def on_optimizer_step(self, args, state, control, optimizer=None, model=None, **kw):
                outer.param_dtypes |= {p.dtype for p in model.parameters()}
                states = optimizer.state.values()
                outer.state_dtypes |= {v.dtype for st in states for k, v in st.items() if k != "step"}

        self.lrs, self.epochs, self.param_dtypes, self.state_dtypes = [], [], set(), set()
        self.callback = Callback()


@pytest.mark.slow
def test_step_per_epoch_and_pure_bf16_on_smollm2(smollm2_dir, tmp_path):
    from agorabench.training.sft import build_trainer, load_model, load_tokenizer, sft_config

    hp = validate_hparams(
        {
            **HP,
            "max_steps": None,
            "epochs": 3,
            "lr_scheduler": "step_per_epoch",
            "lr_gamma": 0.5,
            "pure_bf16": True,
        }
    )
    tok = load_tokenizer(str(smollm2_dir))
    model = load_model(str(smollm2_dir), "sdpa", hp.pure_bf16)
    config = sft_config(hp, ckpt_dir=tmp_path / "ckpt", accumulation=1, cuda=False, liger=False)
    rec = _Recorder()
    rows = [to_conversation(r) for r in load_records(_write_rows(tmp_path / "t.jsonl", _memo_rows()))]
    trainer = build_trainer(model, tok, rows, config, callbacks=[rec.callback], lr_gamma=hp.lr_gamma)
    trainer.train()
    # 8 rows / batch 4 = 2 optimizer steps an epoch: lr x 0.5 after each epoch, no warmup.
    lr = HP["learning_rate"]
    assert rec.lrs == pytest.approx([lr, lr, lr / 2, lr / 2, lr / 4, lr / 4])
    assert trainer.state.global_step == 6
    import torch

    assert rec.param_dtypes == {torch.bfloat16}  # no fp32 master copy
    assert rec.state_dtypes == {torch.bfloat16}  # AdamW moments in bf16 too


# --- launching ---------------------------------------------------------------------------------------------


def test_launch_command_single_process():
    assert launch_command(1, ["--train", "x"]) == [
        sys.executable,
        "-m",
        "agorabench.training.sft",
        "--train",
        "x",
    ]
    assert launch_command(0, [])[1:] == ["-m", "agorabench.training.sft"]


def test_launch_command_fsdp_parses_with_accelerate():
    from accelerate.commands.launch import launch_command_parser

    cmd = launch_command(4, ["--train", "x"], main_process_port=29555)
    assert cmd[1:3] == ["-m", "accelerate.commands.launch"]
    args = launch_command_parser().parse_args(cmd[3:])
    assert args.num_processes == 4 and args.use_fsdp and args.mixed_precision == "bf16"
    assert args.fsdp_version == "2" and args.fsdp_activation_checkpointing == "true"
    assert args.module and args.training_script == "agorabench.training.sft"
    assert args.training_script_args == ["--train", "x"]
    ddp = launch_command_parser().parse_args(launch_command(2, [], fsdp=False)[3:])
    assert ddp.multi_gpu and not ddp.use_fsdp
    fp32 = launch_command_parser().parse_args(launch_command(2, [], mixed_precision="no")[3:])
    assert fp32.mixed_precision == "no"
    with pytest.raises(ValueError, match="mixed_precision"):
        launch_command(2, [], mixed_precision="fp16")


def test_fsdp_on_cpu_engages_only_for_launched_cpu_ranks(monkeypatch):
    from agorabench.training.distributed import wants_fsdp_on_cpu

    monkeypatch.setenv("ACCELERATE_USE_FSDP", "true")
    monkeypatch.setenv("WORLD_SIZE", "2")
    assert wants_fsdp_on_cpu(cuda=False) and not wants_fsdp_on_cpu(cuda=True)
    monkeypatch.setenv("WORLD_SIZE", "1")
    assert not wants_fsdp_on_cpu(cuda=False)
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("ACCELERATE_USE_FSDP", "false")  # `accelerate launch --multi_gpu`: DDP stays DDP
    assert not wants_fsdp_on_cpu(cuda=False)


def test_child_env_puts_this_package_first_on_pythonpath(tmp_path):
    from agorabench.childenv import PACKAGE_ROOT, child_env

    env = child_env({"PYTHONPATH": f"/elsewhere{os.pathsep}{PACKAGE_ROOT}", "HOME": "/h"})
    assert env["PYTHONPATH"].split(os.pathsep) == [PACKAGE_ROOT, "/elsewhere"] and env["HOME"] == "/h"
    code = "import agorabench; print(agorabench.__file__)"
    clean = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    cmd = [sys.executable, "-c", code]
    done = subprocess.run(cmd, env=child_env(clean), cwd=tmp_path, capture_output=True, text=True)
    assert done.stdout.strip() == str(ROOT / "agorabench" / "__init__.py"), done.stderr


# --- chat template ---------------------------------------------------------------------------------------


def test_llama3_agora_template_matches_official_format(smollm2_dir):
    from transformers import AutoTokenizer

    from agorabench.training.data import set_chat_template

    tok = AutoTokenizer.from_pretrained(smollm2_dir)
    set_chat_template(tok, "llama3-agora", str(smollm2_dir))
    text = tok.apply_chat_template(
        [{"role": "user", "content": "Q?"}, {"role": "assistant", "content": "A."}], tokenize=False
    )
    # neulab/data-agora synthetic_dataset.py: BOS + create_prompt_with_llama3_format(q) + response + eot
    official = (
        "<|start_header_id|>system<|end_header_id|>\n\nYou are a helpful AI assistant.<|eot_id|>"
        "<|start_header_id|>user<|end_header_id|>\n\nQ?<|eot_id|>"
        "<|start_header_id|>assistant<|end_header_id|>\n\nA.<|eot_id|>"
    )
    assert text == tok.bos_token + official


def test_no_final_checkpoint_cancels_only_the_save_after_the_last_step() -> None:
    from transformers import TrainerControl, TrainerState

    from agorabench.training.callbacks import NoFinalCheckpoint

    cb = NoFinalCheckpoint()
    for step, expected in ((1, True), (2, False)):  # step 1: a periodic save stays; step 2 is the last
        control = TrainerControl(should_save=True)
        cb.on_step_end(None, TrainerState(max_steps=2, global_step=step), control)
        assert control.should_save is expected
