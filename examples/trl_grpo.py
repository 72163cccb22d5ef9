"""TRL's GRPOTrainer on the built-in benchmark: the peer our `--algo grpo` is measured against.

The same tiny model, train problems, reward and budget as `spo train --algo grpo` in the study: the
reward is spo's judge through its Python API (spo_cli.judge.client.Judge: 1 when every test passes,
else 0), the prompts are the chat messages spo's sampler formats (spo_cli.sampling.prompts), 16
completions a step as 4 prompts x 4 generations, the same learning rate, warm-up (5 steps, then
constant), gradient clipping (1.0), completion length (256) and number of steps. Everything else is
TRL's default: loss_type "dapo", scale_rewards "group", beta 0 (no reference model), epsilon 0.2,
num_iterations 1 (but not its gradient checkpointing, which we do not use either: it would
only cost time). Sampling: TRL draws every completion at one temperature; we use 0.7 (the middle
of the study's per-sample range 0.4-1.0) with top-p 0.95.

Runs in its own environment (examples/Makefile makes it: torch 2.13.0 CPU, trl, this package):

    /work/venv-trl/bin/python examples/trl_grpo.py --model MODEL --problems train.jsonl --out run/ \\
        --lr 5e-5 --steps 300 --seed 0

Writes run/checkpoints/step-NNNNNN (Hugging Face directories `spo eval` reads, with
spo_checkpoint.json), run/metrics.jsonl (one line per step: step, step_s, reward, loss, ...) and
run/trl_config.json. Resumes from TRL's last checkpoint when run again. Not part of CI.
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
from pathlib import Path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", required=True)
    ap.add_argument("--problems", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--lr", type=float, required=True)
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--batch-size", type=int, default=16, help="completions per step")
    ap.add_argument("--num-generations", type=int, default=4)
    ap.add_argument("--save-every", type=int, default=100)
    ap.add_argument("--max-new-tokens", type=int, default=256)
    ap.add_argument("--temperature", type=float, default=0.7)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    import torch

    torch.set_num_threads(1)
    from datasets import Dataset
    from transformers import TrainerCallback
    from trl import GRPOConfig, GRPOTrainer

    from spo_cli.judge.client import Judge
    from spo_cli.sampling.prompts import build_messages
    from spo_cli.schema import new_trajectory
    from spo_cli.streams import read_records

    out = Path(args.out)
    (out / "checkpoints").mkdir(parents=True, exist_ok=True)
    problems = {p["id"]: p for p in read_records(args.problems, "problem")}
    data = Dataset.from_list([{"prompt": build_messages(p), "problem_id": pid} for pid, p in problems.items()])
    judge = Judge(1)

    def reward(prompts, completions, problem_id, **_):
        texts = [c[-1]["content"] if isinstance(c, list) else c for c in completions]
        trajs = [new_trajectory(problem_id=pid, prompt="", response=t) for pid, t in zip(problem_id, texts)]
        return [None if j.get("reward") is None else float(j["reward"]) for j in judge(trajs, problems)]

    cfg = GRPOConfig(
        output_dir=str(out / "trl"), learning_rate=args.lr, lr_scheduler_type="constant_with_warmup", warmup_steps=5,
        max_steps=args.steps, per_device_train_batch_size=args.batch_size, num_generations=args.num_generations,
        max_completion_length=args.max_new_tokens, temperature=args.temperature, top_p=0.95, max_grad_norm=1.0,
        save_strategy="steps", save_steps=args.save_every, seed=args.seed, use_cpu=True, bf16=False,
        logging_steps=1, report_to="none", disable_tqdm=True, dataloader_num_workers=0,
        gradient_checkpointing=False,  # TRL turns it on by default; ours does not recompute activations
    )
    (out / "trl_config.json").write_text(json.dumps({k: v for k, v in cfg.to_dict().items()
                                                     if isinstance(v, (int, float, str, bool, type(None)))},
                                                    indent=1, sort_keys=True))

    class Log(TrainerCallback):
        """metrics.jsonl with the step's wall time, and spo-style checkpoint directories."""

        def __init__(self):
            self.t = time.perf_counter()
            self.step_s = 0.0

        def on_step_end(self, a, state, control, **kw):
            now = time.perf_counter()
            self.step_s, self.t = now - self.t, now

        def on_log(self, a, state, control, logs=None, **kw):
            if logs and "loss" in logs:
                row = {"step": state.global_step, "step_s": self.step_s,
                       **{k: v for k, v in logs.items() if isinstance(v, (int, float))}}
                with open(out / "metrics.jsonl", "a") as f:
                    f.write(json.dumps(row) + "\n")

        def on_save(self, a, state, control, **kw):
            src = out / "trl" / f"checkpoint-{state.global_step}"
            dst = out / "checkpoints" / f"step-{state.global_step:06d}"
            tmp = dst.with_name(dst.name + ".tmp")
            shutil.rmtree(tmp, ignore_errors=True)
            tmp.mkdir()
            for f in src.iterdir():
                if f.is_file() and not f.name.startswith(("optimizer", "scheduler", "rng_state", "trainer_state",
                                                           "training_args")):
                    shutil.copyfile(f, tmp / f.name)
            (tmp / "spo_checkpoint.json").write_text(json.dumps({"step": state.global_step}))
            shutil.rmtree(dst, ignore_errors=True)
            tmp.rename(dst)

    resume = any((out / "trl").glob("checkpoint-*"))
    if resume and (out / "metrics.jsonl").exists():  # the lines past the checkpoint will be logged again
        last = max(int(p.name.split("-")[1]) for p in (out / "trl").glob("checkpoint-*"))
        rows = [l for l in (out / "metrics.jsonl").read_text().splitlines() if json.loads(l)["step"] <= last]
        (out / "metrics.jsonl").write_text("".join(r + "\n" for r in rows))
    trainer = GRPOTrainer(model=args.model, reward_funcs=reward, args=cfg, train_dataset=data, callbacks=[Log()])
    try:
        trainer.train(resume_from_checkpoint=resume or None)
    finally:
        judge.close()


if __name__ == "__main__":
    main()
