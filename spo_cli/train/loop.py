"""The learner: SPO (any objective per data source) or the PPO baseline, on any mix of offline
and online trajectories.

    trainer = Trainer(cfg)            # set-up (spo_cli/train/setup.py); resumes if asked
    for metrics in trainer.steps():   # one dict per optimiser step; the caller logs them
        ...

A learner is a run (setup.py), a data source and the processes it runs in (one, DDP or FSDP2:
spo_cli/train/processes.py). One step, in order (Learner.steps):
  1. the source hands over the step's examples, the whole step on every process: offline records
     from the run's stream, and online rollouts — sampled and judged by the main process
     (LocalRollouts, below), or pulled from rollout workers by the asynchronous learner
     (WorkerRollouts, spo_cli/train/async_loop.py);
  2. online rollouts staler than --max-staleness are dropped; whole micro-batches are kept (N
     processes x --grad-accum of them);
  3. each process takes its block of rows, and the algorithm's step (spo_cli/train/algos.py,
     chosen by --algo) computes the loss and backpropagates it; the processes' gradients are
     averaged (DDP) or reduce-scattered (FSDP);
  4. the gradients are clipped, the optimiser and the learning rate step, the policy version
     advances;
  5. the step's metrics (the algorithm's averaged over the processes) are yielded; every
     --save-every steps (and at the end) a checkpoint is written, with the step's online rollouts
     added to run/corpus/.

Metrics beyond the algorithm's own: rewards and staleness of the step's data, timings, `truncated`
(trajectories of this step cut to --max-len) and `offline_unjudged` (records without a reward the
offline stream has skipped so far, since the run began).

Where this departs from the paper, or chooses where it is silent:
- Synchronous online data: each step samples its own online rollouts with the behaviour policy
  (the policy as of the last `model_update_interval` step), judges them in parallel, and learns
  from them in the same step. The paper's asynchronous workers are `spo train --async`. With
  several processes the main one samples and judges the step (under FSDP every process runs the
  same sampling, because each forward pass of a sharded model is collective; the main process's
  rollouts are used: this relies on the processes drawing the same tokens, as they do on CPUs and
  with deterministic kernels; at scale, sample with `--async` workers instead).
- Online problems are drawn uniformly with replacement from --problems, `online_n` samples each,
  with a random temperature per sample (the paper's online SPO).
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import torch

from spo_cli.console import warn
from spo_cli.errors import BadInput
from spo_cli.parsing import parse_number_or_range
from spo_cli.streams import add_shard
from spo_cli.train import checkpoint as ckpt
from spo_cli.train.batching import Example
from spo_cli.train.config import TrainConfig
from spo_cli.train.data import step_seed
from spo_cli.train.processes import Processes, launched
from spo_cli.train.setup import Run, configure, setup, trained_modules


@dataclass
class StepData:
    """What a data source hands the learner for one step: the whole step, on every process."""

    offline: list[Example]
    online: list[Example]
    metrics: dict
    rollouts: list[dict]  # judged online records for run/corpus/ (written by the main process)


class Source(Protocol):
    """Where a learner's trajectories come from, and who holds the behaviour policy that samples."""

    def next(self, step: int) -> StepData: ...
    def checkpoint(self) -> tuple[dict, dict]: ...  # trainer-state entries, file name -> model to save
    def describe(self) -> str: ...
    def note(self, metrics: dict) -> str: ...  # for the progress display
    def close(self) -> None: ...


class Learner:
    """The training loop over a set-up run, a data source and its processes (run.procs)."""

    def __init__(self, run: Run, source: Source):
        self.run = run
        self.source = source
        self.processes: Processes = run.procs
        self._rollouts: list[dict] = []

    def describe(self) -> str:
        """One line for people about what this run does."""
        return self.source.describe()

    def progress_note(self, metrics: dict) -> str:
        """Extra text for the progress bar after a step."""
        return self.source.note(metrics)

    # ------------------------------------------------------------------ the loop
    def steps(self) -> Iterator[dict]:
        run, cfg, procs = self.run, self.run.cfg, self.processes
        params = [p for g in run.optimizer.param_groups for p in g["params"]]
        unit = procs.world * cfg.grad_accum  # micro-batches of a step, over all processes
        while run.step < cfg.steps:
            t0 = time.perf_counter()
            cut = run.tok.truncated
            data = self.source.next(run.step)
            self._rollouts += data.rollouts
            metrics: dict[str, Any] = {"step": run.step + 1, **data.metrics}
            if data.offline:
                metrics["reward_offline"] = sum(e.reward for e in data.offline) / len(data.offline)
            examples = data.offline + self._fresh(data.online, metrics)
            metrics["truncated"] = run.tok.truncated - cut
            if run.offline is not None:
                metrics["offline_unjudged"] = run.offline.unjudged
            examples = examples[: len(examples) - len(examples) % unit]  # whole micro-batches
            if not examples:
                if procs.is_main:
                    warn(f"step {run.step + 1}: no usable trajectories (all judge errors); skipped")
                run.step += 1
                continue
            t_learn = time.perf_counter()
            out = procs.reduce(self.learn(procs.portion(examples)))
            grad_norm = self.update(params)
            now = time.perf_counter()
            metrics.update(out)
            metrics.update({
                "lr": run.scheduler.get_last_lr()[0], "grad_norm": grad_norm,
                "learn_s": now - t_learn, "step_s": now - t0,
                "tokens_per_s": out["tokens"] / max(now - t_learn, 1e-9),
                "policy_version": run.policy_version,
            })
            if run.offline is not None:
                metrics["data_position"] = run.offline.position
            yield metrics
            if run.step % cfg.save_every == 0 or run.step == cfg.steps:
                self.save()

    def _fresh(self, online: list[Example], metrics: dict) -> list[Example]:
        """The online examples within --max-staleness; their reward and staleness as metrics."""
        run = self.run
        if not run.n_on:
            return online
        if run.cfg.max_staleness > 0:
            kept = [e for e in online if run.policy_version - e.policy_version <= run.cfg.max_staleness]
            metrics["dropped_stale"] = len(online) - len(kept)
            online = kept
        if online:
            metrics["reward_online"] = sum(e.reward for e in online) / len(online)
            metrics["staleness"] = sum(run.policy_version - e.policy_version for e in online) / len(online)
        return online

    def learn(self, examples: list[Example]) -> dict:
        """The algorithm's loss on the examples, backpropagated (no optimiser step); its metrics."""
        return self.run.algo.step(self.run, examples)

    def update(self, params: list[torch.Tensor]) -> float:
        """Clip the gradients, step the optimiser and the learning rate: the policy is one version newer."""
        run, cfg = self.run, self.run.cfg
        norm = self.processes.clip_grad_norm(params, cfg.max_grad_norm if cfg.max_grad_norm > 0 else math.inf)
        run.optimizer.step()
        run.scheduler.step()
        run.optimizer.zero_grad(set_to_none=True)
        run.step += 1
        run.policy_version += 1
        return norm

    # ------------------------------------------------------------------ checkpoints, shutdown
    def flush_rollouts(self) -> None:
        if self._rollouts and self.run.cfg.save_rollouts:
            add_shard(self.run.out / "corpus", self._rollouts, prefix=f"online-step{self.run.step:06d}")
        self._rollouts = []

    def save(self) -> Path:
        """Write a checkpoint (every process writes its part; spo_cli/train/checkpoint.py)."""
        run, procs = self.run, self.processes
        procs.main_only(self.flush_rollouts)
        source_state, extra_weights = self.source.checkpoint()
        meta = {
            "policy_version": run.policy_version,
            "data_position": run.offline.position if run.offline else 0,
            "offline_files": run.offline_files,
            "config_fingerprint": run.cfg.fingerprint(),
            "config": run.cfg.to_json(),
            "reference_model": run.cfg.model,
            "algo": run.cfg.algo,
        }
        extra_models = {"value_model": run.value_model} if run.value_model is not None else None
        return ckpt.save(run.ckpt_root, run.step, procs, policy=run.policy, tokenizer=run.tokenizer,
                         optimizer=run.optimizer, modules=trained_modules(run),
                         trainer_state={"scheduler": run.scheduler.state_dict(), **source_state}, meta=meta,
                         extra_models=extra_models, extra_weights=extra_weights, keep=run.cfg.keep)

    def close(self) -> None:
        self.source.close()
        self.run.close()


class Trainer(Learner):
    """The synchronous learner: online rollouts sampled and judged by the main process each step.
    In this process, or (launched by accelerate: spo_cli/train/launch.py) in each of several."""

    def __init__(self, cfg: TrainConfig, *, resume: bool = False, procs: Processes | None = None):
        LocalRollouts.check(configure(cfg))
        if procs is None and launched():
            procs = Processes.start(cfg, timeout_s=7200.0)  # the others wait while the main one samples and judges
        run = setup(cfg, resume=resume, procs=procs)
        super().__init__(run, LocalRollouts(run))


# ---------------------------------------------------------------------- the synchronous data source
def _temperature(spec: str) -> dict:
    """--temperature-range as sampling options: one number fixes the temperature, LO,HI draws it."""
    lo, hi = parse_number_or_range(spec, "--temperature-range", lo=0.0)
    return {"temperature": lo} if lo == hi else {"temperature_range": (lo, hi)}


class LocalRollouts:
    """A step's data, from the main process: the offline records of the run's stream, and online
    rollouts sampled by the behaviour policy (the policy as of the last --model-update-interval
    step: a lagging copy when that is more than 1) and judged there; handed to every process."""

    @staticmethod
    def check(cfg: TrainConfig) -> None:
        """What this source needs of a configured run (before anything is loaded)."""
        n_on = cfg.split()[1]
        if n_on and n_on % cfg.online_n:
            raise BadInput(f"the {n_on} online trajectories per step must be a multiple of --online-n {cfg.online_n}")
        if n_on:
            _temperature(cfg.temperature_range)

    def __init__(self, run: Run):
        self.run = run
        self.temperature = _temperature(run.cfg.temperature_range) if run.n_on else {}
        self.lagging = bool(run.n_on and run.cfg.model_update_interval > 1)
        self.version = run.policy_version
        self.behaviour = self._lagging_copy() if self.lagging else run.procs.unwrap(run.policy)
        self._judged: list[dict] = []

    def _lagging_copy(self) -> Any:
        """The behaviour policy as a model of its own: a sharded one on every process under FSDP (it
        samples with them), a copy on the main process otherwise (the only one that samples). Resumed:
        the weights it had when the checkpoint was written."""
        run, procs = self.run, self.run.procs
        resumed = run.resumed
        saved = resumed.path / "behaviour.safetensors" if resumed is not None else None
        if resumed is not None:
            self.version = resumed.behaviour_version
        if procs.sharded:
            from transformers import AutoModelForCausalLM

            model = AutoModelForCausalLM.from_pretrained(str(resumed.path) if resumed else run.cfg.model,
                                                         dtype=torch.float32)
            if saved is not None and saved.exists() and not procs.is_placeholder(model):
                model.load_state_dict(ckpt.load_tensors(saved), strict=True)
            return procs.wrap(model, frozen=True)
        if not procs.is_main:
            return None
        model = copy.deepcopy(procs.unwrap(run.policy)).eval()
        for p in model.parameters():
            p.requires_grad_(False)
        if saved is not None and saved.exists():  # only when it lagged the policy
            model.load_state_dict(ckpt.load_tensors(saved), strict=True)
        return model

    def describe(self) -> str:
        run, c = self.run, self.run.cfg
        return (f"spo train: {c.algo} | {run.procs.describe()} | {run.n_off} offline + {run.n_on} online per step | "
                f"loss {run.objective or c.algo} | beta {c.beta} | lr {c.lr} | {c.steps} steps -> {run.out}")

    def note(self, metrics: dict) -> str:
        return ""

    def next(self, step: int) -> StepData:
        run, procs = self.run, self.run.procs
        self._refresh(step)
        if run.n_on and procs.sharded and not procs.is_main:
            self._sampler(step)[0].sample(self._problems(step))  # collective forward passes, in step with the main one
        data = procs.main_only(lambda: self._collect(step))
        off = run.examples(data["off"], "offline", data["v"])
        on = run.examples(data["on"], "online", data["v"])
        judged, self._judged = self._judged, []
        return StepData(off, on, {**data["metrics"], "behaviour_version": self.version}, judged)

    def _collect(self, step: int) -> dict:
        """Main process: the step's offline records, online rollouts (judged) and V_hat of their problems."""
        run = self.run
        off = run.offline.take(run.n_off) if run.n_off else []
        on, metrics = [], {}
        if run.n_on:
            on, metrics, self._judged = self.online(step)
        return {"off": off, "on": on, "metrics": metrics, "v": run.step_values(off + on)}

    def _refresh(self, step: int) -> None:
        """The behaviour policy catches up with the policy every --model-update-interval steps."""
        run = self.run
        if not self.lagging:
            self.version = run.policy_version
        elif step % run.cfg.model_update_interval == 0 and self.version != run.policy_version:
            if self.behaviour is not None:  # (DDP: on the main process only; FSDP: each its shards)
                self.behaviour.load_state_dict(run.procs.unwrap(run.policy).state_dict())
            self.version = run.policy_version

    def _problems(self, step: int) -> list[dict]:
        run, cfg = self.run, self.run.cfg
        ids = sorted(run.problems)
        rng = torch.Generator().manual_seed(step_seed(cfg.seed, step, "online-problems"))
        picks = torch.randint(len(ids), (run.n_on // cfg.online_n,), generator=rng).tolist()
        return [run.problems[ids[i]] for i in picks]

    def _sampler(self, step: int) -> tuple[Any, Any]:
        from spo_cli.sampling.base import SampleOptions
        from spo_cli.sampling.hf import HFSampler

        run, cfg = self.run, self.run.cfg
        opts = SampleOptions(n=cfg.online_n, top_p=cfg.top_p, max_new_tokens=cfg.max_new_tokens,
                             seed=step_seed(cfg.seed, step, "online-sample"), source="online",
                             policy_version=self.version, batch_size=max(1, run.n_on), **self.temperature)
        return HFSampler(self.behaviour, run.tokenizer, opts, model_name=f"{cfg.out}@{self.version}"), opts

    def online(self, step: int) -> tuple[list[dict], dict, list[dict]]:
        """Sample and judge this step's online rollouts with the behaviour policy -> the usable
        records, timing metrics, and every judged record (for run/corpus/)."""
        from spo_cli.judge.client import rollouts

        r = rollouts(self._sampler(step)[0], self._problems(step), self.run.judge)
        return r.usable, {"sample_s": r.sample_s, "judge_s": r.judge_s, "sample_tokens": r.tokens,
                          "judge_errors": r.judge_errors}, r.judged

    def checkpoint(self) -> tuple[dict, dict]:
        lagging = self.lagging and self.version != self.run.policy_version
        return {"behaviour_version": self.version}, ({"behaviour.safetensors": self.behaviour} if lagging else {})

    def close(self) -> None:
        pass  # the run's judge closes with the run
