"""Learner step time and peak memory: SPO (cached / live reference log-probs), PPO, and the SFT floor.

    python bench/train.py            # a ~20M-parameter Llama, batch 8 x ~256 tokens, 7 timed steps
    python bench/train.py --quick    # a ~3M-parameter Llama, batch 4 x ~128 tokens (under a minute)

All variants use the same random-weight model, the same batch and AdamW, and run the code `spo
train` runs (the algorithm's step, spo_cli/train/algos.py, via Trainer.learn; then clip, optimiser step):
- sft:        the floor: one forward, cross-entropy on the response tokens, one backward, a step;
- spo_cached: SPO terminal:ce with reference log-probs read from the trajectories' cache;
- spo_live:   the same with the frozen reference model run forward (no grad) every step;
- ppo:        PPO with its value model (forward+backward of both) and live reference log-probs.
Step times are medians over timed steps after one warm-up step, with variants interleaved.
Peak memory is measured per variant in a fresh process: its peak RSS minus that of a process that
imports the same modules and builds the same batch but creates no model, i.e. what the variant
itself adds (weights, grads, optimiser state, activations).

People-facing lines go to stderr; the last stdout line is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

SIZES = {
    "quick": dict(hidden=256, layers=4, inter=640, vocab=8192, batch=4, prompt=48, response=80),
    "full": dict(hidden=512, layers=6, inter=1376, vocab=8192, batch=8, prompt=96, response=160),
}
VARIANTS = ("sft", "spo_cached", "spo_live", "ppo")
# "none" imports everything and builds the batch but creates no model: the memory baseline.


def peak_rss_mb() -> float:
    """This process's peak RSS (VmHWM). Not ru_maxrss: Linux carries that over fork and exec, so a
    child of a large parent would report the parent's peak."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM in /proc/self/status")


def log(*a) -> None:
    print(*a, file=sys.stderr, flush=True)


def build(workdir: Path, size: dict) -> Path:
    """A random-weight Llama with a real tokenizer, saved as an HF directory, plus problems/values."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    from spo_cli.benchmark.tinymodel import train_tokenizer
    from spo_cli.streams import write_records

    model_dir = workdir / "model"
    texts = [f"def f{i}(x):\n    return x * {i} + {i % 7}\nprint(f{i}(int(input())))\n" for i in range(400)]
    tok = train_tokenizer(texts, vocab_size=512)
    cfg = LlamaConfig(vocab_size=size["vocab"], hidden_size=size["hidden"], intermediate_size=size["inter"],
                      num_hidden_layers=size["layers"], num_attention_heads=size["hidden"] // 64,
                      num_key_value_heads=size["hidden"] // 64, max_position_embeddings=1024,
                      tie_word_embeddings=False, bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id,
                      pad_token_id=tok.pad_token_id)
    torch.manual_seed(0)
    LlamaForCausalLM(cfg).save_pretrained(model_dir)
    tok.save_pretrained(model_dir)
    write_records(workdir / "problems.jsonl", [{"id": "p0", "prompt": "x", "tests": [{"input": "", "output": ""}]}])
    write_records(workdir / "values.jsonl", [{"problem_id": "p0", "v": -0.5, "k": 8, "beta": 0.1}])
    return model_dir


def examples(size: dict, n_vocab: int, cached_ref: bool, seed: int = 0):
    import torch

    from spo_cli.train.batching import Example

    g = torch.Generator().manual_seed(seed)
    out = []
    for i in range(size["batch"]):
        p = torch.randint(5, n_vocab, (size["prompt"],), generator=g).tolist()
        r_len = size["response"] - 8 * (i % 3)  # ragged, so padding is real
        r = torch.randint(5, n_vocab, (r_len,), generator=g).tolist()
        lp = (-torch.rand(r_len, generator=g) * 3).tolist()
        out.append(Example(problem_id="p0", prompt_ids=p, response_ids=r, reward=float(i % 2), v_hat=-0.5,
                           source="online", logprobs=lp, ref_logprobs=lp if cached_ref else None))
    return out


def make_trainer(workdir: Path, model_dir: Path, variant: str):
    from spo_cli.train.config import TrainConfig
    from spo_cli.train.loop import Trainer

    algo = "ppo" if variant == "ppo" else "spo"
    cfg = TrainConfig(model=str(model_dir), out=str(workdir / f"run-{variant}-{os.getpid()}"),
                      problems=[str(workdir / "problems.jsonl")], values=[str(workdir / "values.jsonl")],
                      algo=algo, offline_ratio=0.0, batch_size=SIZE["batch"], online_n=1, lr=1e-5, warmup=0,
                      model_update_interval=1)
    return Trainer(cfg)


def sft_step(trainer, exs) -> None:
    """The floor: forward, cross-entropy on response tokens, backward, clip, optimiser step."""
    import torch

    from spo_cli.train.batching import collate

    batch = collate(exs, trainer.run.tokenizer.pad_token_id, trainer.run.device)
    logits = trainer.run.policy(input_ids=batch.input_ids, attention_mask=batch.attention, use_cache=False).logits
    target = batch.input_ids[:, 1:]
    ce = torch.nn.functional.cross_entropy(logits[:, :-1].flatten(0, 1).float(), target.flatten(), reduction="none")
    loss = (ce.view_as(target) * batch.mask).sum() / batch.mask.sum()
    loss.backward()
    _finish(trainer)


def _finish(trainer) -> None:
    import torch

    params = [p for g in trainer.run.optimizer.param_groups for p in g["params"]]
    torch.nn.utils.clip_grad_norm_(params, 1.0)
    trainer.run.optimizer.step()
    trainer.run.optimizer.zero_grad(set_to_none=True)


def one_step(trainer, variant: str, exs) -> float:
    t = time.perf_counter()
    if variant == "sft":
        sft_step(trainer, exs)
    else:  # spo_* or ppo, as the trainer's config says
        trainer.learn(exs)
        _finish(trainer)
    return time.perf_counter() - t


SIZE: dict = {}


def child(workdir: Path, model_dir: Path, variant: str, steps: int) -> None:
    """Peak RSS of one variant in this fresh process (prints one JSON line)."""
    import torch
    import transformers.models.llama.modeling_llama  # noqa: F401 - imported by every variant

    from spo_cli.train import loop  # noqa: F401

    torch.set_num_threads(int(os.environ.get("BENCH_THREADS", "2")))
    exs = examples(SIZE, 500, cached_ref=variant == "spo_cached")
    if variant != "none":
        trainer = make_trainer(workdir, model_dir, variant)
        for _ in range(steps):
            one_step(trainer, variant, exs)
        if variant == "spo_cached":
            assert not trainer.run.reference.loaded, "the cached variant must never load the reference model"
    print(json.dumps({"variant": variant, "peak_mb": peak_rss_mb()}))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--steps", type=int, default=None, help="timed steps per variant")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--mem-reps", type=int, default=None,
                    help="fresh processes per variant for peak memory, median (default 3; --quick: 1)")
    ap.add_argument("--child", nargs=3, metavar=("WORKDIR", "VARIANT", "STEPS"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    SIZE.update(SIZES["quick" if args.quick else "full"])
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    import transformers

    transformers.utils.logging.disable_progress_bar()
    if args.child:
        wd = Path(args.child[0])
        child(wd, wd / "model", args.child[1], int(args.child[2]))
        return
    import torch

    torch.set_num_threads(args.threads)
    steps = args.steps or (5 if args.quick else 7)
    args.mem_reps = args.mem_reps or (1 if args.quick else 3)
    with tempfile.TemporaryDirectory() as d:
        wd = Path(d)
        model_dir = build(wd, SIZE)
        trainers = {v: make_trainer(wd, model_dir, v) for v in VARIANTS}
        n_params = sum(p.numel() for p in trainers["sft"].run.policy.parameters())
        log(f"model: {n_params / 1e6:.1f}M parameters, batch {SIZE['batch']} x ~{SIZE['prompt'] + SIZE['response']} tokens")
        data = {v: examples(SIZE, 500, cached_ref=v == "spo_cached") for v in VARIANTS}
        times: dict[str, list[float]] = {v: [] for v in VARIANTS}
        for v in VARIANTS:  # warm-up (allocator, lazy reference load)
            one_step(trainers[v], v, data[v])
        for rep in range(steps):
            for v in VARIANTS:
                times[v].append(one_step(trainers[v], v, data[v]))
            log(f"step {rep + 1}/{steps}: " + " ".join(f"{v} {times[v][-1]:.3f}s" for v in VARIANTS))
        med = {v: statistics.median(times[v]) for v in VARIANTS}
        del trainers
        # Peak RSS moves by tens of MB from one process to the next (allocator state), so each
        # variant is measured in `mem_reps` fresh processes, interleaved, and the median taken.
        peaks: dict[str, list[float]] = {v: [] for v in ("none",) + VARIANTS}
        env = dict(os.environ, BENCH_THREADS=str(args.threads))
        for _ in range(args.mem_reps):
            for v in peaks:
                cmd = [sys.executable, __file__, "--child", str(wd), v, "2"] + (["--quick"] if args.quick else [])
                out = subprocess.run(cmd, capture_output=True, text=True, env=env, check=True).stdout
                peaks[v].append(json.loads(out.strip().splitlines()[-1])["peak_mb"])
        mem = {v: statistics.median(peaks[v]) - statistics.median(peaks["none"]) for v in VARIANTS}
        log("peak memory added: " + " ".join(f"{v} {mem[v]:.0f} MB" for v in VARIANTS))
    result = {
        "params_m": round(n_params / 1e6, 2),
        "step_s": {v: round(med[v], 4) for v in VARIANTS},
        "mem_mb": {v: round(mem[v], 1) for v in VARIANTS},
        "spo_cached_vs_sft": round(med["spo_cached"] / med["sft"], 3),
        "spo_live_vs_sft": round(med["spo_live"] / med["sft"], 3),
        "ppo_vs_sft": round(med["ppo"] / med["sft"], 3),
        "spo_mem_vs_ppo": round(mem["spo_live"] / mem["ppo"], 3),
        "spo_cached_mem_vs_ppo": round(mem["spo_cached"] / mem["ppo"], 3),
        "steps": steps,
        "mem_reps": args.mem_reps,
    }
    log(f"SPO cached {result['spo_cached_vs_sft']}x SFT, live {result['spo_live_vs_sft']}x, PPO "
        f"{result['ppo_vs_sft']}x; SPO memory {result['spo_mem_vs_ppo']}x PPO's")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
