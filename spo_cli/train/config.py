"""The typed configs of `spo train`. Every field's docstring is its --help text, and the command's
options are generated from these dataclasses (spo_cli/commands/train.py).

    TrainConfig    what is learnt, from what, how: the run (written to run/config.json)
    AsyncConfig    --async: where the rollouts come from and how weights go out (run/async.json)
    LaunchConfig   how the learner processes are launched (accelerate: DDP or FSDP2)

`--resume` refuses a TrainConfig that changes anything that would make the resumed run differ from
an uninterrupted one (RESUME_MAY_CHANGE lists what may change).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field

from spo_cli.errors import BadInput


@dataclass
class TrainConfig:
    model: str = ""
    """Reference model directory (Hugging Face); the policy starts as a copy of it."""
    out: str = "runs/spo"
    """Run directory: config.json, metrics.jsonl, checkpoints/, corpus/ (online rollouts)."""
    problems: list[str] = field(default_factory=list)
    """Problems to sample online rollouts for (and to format prompts of offline text)."""
    values: list[str] = field(default_factory=list)
    """Value records (spo estimate-v) giving V_hat(x0) per problem."""
    missing_value: str = "error"
    """A problem without a Value record: 'error', 'fallback:<v>' (use v as V_hat) or 'estimate'
    (sample --value-k reference responses for it when first needed)."""
    value_k: int = 32
    """Reference samples per problem when --missing-value estimate."""
    offline: list[str] = field(default_factory=list)
    """Offline corpora: judged trajectory files, shard directories or globs."""
    offline_ratio: float = -1.0
    """Fraction of each batch drawn from the offline corpus (0.5 = the paper's half-online).
    Default: 1 with only offline data, 0 with only problems, 0.5 with both."""
    algo: str = "spo"
    """spo, or a baseline: ppo (value model, GAE, KL-regularised reward, clipped ratios), grpo
    (group-relative advantages over the --online-n samples of a prompt, no value model) or rft
    (rejection-sampling fine-tuning: SFT on the correct trajectories of the corpus and, with
    --offline-ratio below 1, on the policy's own correct samples)."""
    loss: list[str] = field(default_factory=lambda: ["terminal:ce"])
    """SPO objectives, per data source: 'terminal:ce' (all sources), or 'online=terminal:ce',
    'offline=terminal:sq+mc:ce*0.5', '*=...' (any other source). See spo_cli/core/spo.py."""
    beta: float = 0.1
    """KL temperature beta of soft RL (docs/math.md)."""
    eps: float = 1e-3
    """Clipping of the cross-entropy loss (docs/math.md §5)."""
    steps: int = 100
    """Optimiser steps."""
    batch_size: int = 16
    """Trajectories per optimiser step (online + offline)."""
    grad_accum: int = 1
    """Micro-batches per step (batch_size must divide by it)."""
    lr: float = 1e-5
    """AdamW learning rate after warm-up (then constant, as in the paper)."""
    warmup: int = 20
    """Linear warm-up steps (the paper: 200)."""
    weight_decay: float = 0.0
    """AdamW weight decay."""
    max_grad_norm: float = 1.0
    """Gradient clipping (global norm); 0 = off."""
    clip_per_sequence: bool = False
    """Clip each sequence's gradient to --max-grad-norm before averaging them, instead of the
    batch's gradient (spo and rft; one backward pass per sequence, so slower)."""
    precision: str = "fp32"
    """fp32 or bf16 (autocast; under FSDP also bf16 parameters in compute; master weights stay fp32)."""
    gradient_checkpointing: bool = False
    """Recompute activations in the backward pass instead of keeping them: less memory, ~1/3 more
    compute (policy and PPO's value model)."""
    seed: int = 0
    """Seeds data order, online sampling and torch."""
    deterministic: bool = False
    """torch deterministic algorithms: a resumed run then matches an uninterrupted one exactly."""
    model_update_interval: int = 10
    """Steps between refreshes of the behaviour policy that samples online rollouts (SPO: ~10;
    PPO always uses 1)."""
    online_n: int = 4
    """Online samples per problem."""
    temperature_range: str = "0.4,1.0"
    """Online sampling temperature, drawn uniformly per sample from LO,HI (the paper samples at a
    random temperature); a single number fixes it."""
    top_p: float = 0.95
    """Online sampling top-p."""
    max_new_tokens: int = 256
    """Most tokens per online response."""
    max_len: int = 1024
    """Longest prompt + response the learner takes (longer responses are cut)."""
    judge_jobs: int = 2
    """Parallel judge processes for online rollouts."""
    time_scale: float = 1.0
    """Multiplies the problems' time limits when judging online rollouts."""
    save_every: int = 50
    """Checkpoint every N steps (and at the end)."""
    keep: int = 3
    """Checkpoints kept (oldest removed)."""
    save_rollouts: bool = True
    """Add online rollouts to run/corpus/ so they become offline data for the next run."""
    tensorboard: bool = False
    """Also log to TensorBoard (run/tb; needs the tensorboard package)."""
    device: str = "auto"
    """cpu, cuda, or auto."""
    threads: int = 0
    """torch CPU threads (0 = auto: every core on an idle machine, 1 on a busy one)."""
    shuffle_buffer: int = 4096
    """Offline records shuffled together (a streaming shuffle: memory stays flat)."""
    # PPO and GRPO
    ppo_epochs: int = 1
    """PPO: optimisation passes over each batch of rollouts (GRPO makes one: TRL's num_iterations 1)."""
    clip: float = 0.2
    """PPO and GRPO: ratio clipping epsilon (also PPO's value clipping range)."""
    vf_coef: float = 0.5
    """PPO: weight of the value loss."""
    gae_lambda: float = 0.95
    """PPO: GAE lambda."""
    gamma: float = 1.0
    """PPO: discount."""
    value_lr: float = 0.0
    """PPO: value model learning rate (0 = same as lr)."""
    max_staleness: int = 0
    """Drop rollouts more than this many policy versions old (0 = keep all). PPO corrects rollouts
    more than one version stale with importance weights either way."""
    max_importance_weight: float = 10.0
    """PPO: truncate importance weights of stale rollouts at this value."""
    # GRPO
    grpo_scale: str = "group"
    """GRPO: divide each advantage (reward minus its group's mean) by the std of its group (group:
    TRL's default), of the step's rewards (batch), or by nothing (none: Dr. GRPO)."""
    grpo_kl: float = 0.0
    """GRPO: weight of the k3 KL(policy || reference) penalty in the loss (TRL's beta; default 0,
    TRL's default)."""

    def resolved(self) -> TrainConfig:
        c = dataclasses.replace(self)
        if c.offline_ratio < 0:
            c.offline_ratio = 1.0 if c.offline and not c.problems else (0.5 if c.offline else 0.0)
        return c

    def split(self) -> tuple[int, int]:
        """(offline, online) trajectories per step, of a resolved config."""
        n_off = round(self.batch_size * self.offline_ratio)
        return n_off, self.batch_size - n_off

    def to_json(self) -> dict:
        return dataclasses.asdict(self)

    def fingerprint(self) -> str:
        d = {k: v for k, v in self.to_json().items() if k not in RESUME_MAY_CHANGE}
        return hashlib.sha256(json.dumps(d, sort_keys=True).encode()).hexdigest()[:16]


RESUME_MAY_CHANGE = frozenset({"steps", "save_every", "keep", "tensorboard", "judge_jobs", "device", "out",
                               "threads", "gradient_checkpointing"})



@dataclass
class AsyncConfig:
    """`spo train --async`: the learner's side of the rollout workers (spo_cli/serve)."""

    workers: list[str] = field(default_factory=list)
    """With --async: rollout workers (spo sample --serve) as http://HOST:PORT, comma-separated or repeated."""
    token: str | None = None  # never written to disk (to_json leaves it out)
    """With --async: the workers' shared token (default: $SPO_TOKEN; prefer the variable, a command line is
    visible in ps)."""
    rollout_wait: float = 600.0
    """With --async: seconds a step waits for worker rollouts before filling the shortfall from the offline
    corpus (without one, training stops after this long)."""
    worker_timeout: float = 60.0
    """With --async: seconds without an answer after which a worker counts as down (it is retried with
    back-off)."""
    weights_via: str = "http"
    """With --async: how weights reach the workers: http (over the connection) or path (files under
    --weights-dir on storage the workers share)."""
    weights_dir: str | None = None
    """With --async --weights-via path: the shared directory (workers need the same --weights-dir)."""

    def __post_init__(self) -> None:
        # "URL,URL" and repeated options alike: one URL per entry
        self.workers = [u.strip() for spec in self.workers for u in spec.split(",") if u.strip()]

    def check(self) -> None:
        if not self.workers:
            raise BadInput("--async needs --workers URL[,URL...] (rollout workers: spo sample --serve)")
        if self.rollout_wait <= 0 or self.worker_timeout <= 0:
            raise BadInput("--rollout-wait and --worker-timeout must be > 0")
        if self.weights_via not in ("http", "path"):
            raise BadInput(f"--weights-via must be http or path, got {self.weights_via!r}")
        if self.weights_via == "path" and not self.weights_dir:
            raise BadInput("--weights-via path needs --weights-dir (shared storage the workers can read)")

    def to_json(self) -> dict:
        d = dataclasses.asdict(self)
        d.pop("token")
        return d


@dataclass
class LaunchConfig:
    """`spo train`: how the learner processes are started (spo_cli/train/launch.py)."""

    num_processes: int | None = None
    """Learner processes (accelerate launch --num_processes; default 1, or what --accelerate-config says)."""
    accelerate_config: str | None = None
    """An accelerate config file (accelerate config): DDP or FSDP (fsdp_version 2), GPUs, machines."""
    accelerate_arg: list[str] = field(default_factory=list)
    """One more option for accelerate launch, e.g. --accelerate-arg=--use_fsdp (shard: FSDP2) or
    --accelerate-arg=--machine_rank=1 (repeatable)."""

    def check(self) -> None:
        if self.num_processes is not None and self.num_processes < 1:
            raise BadInput("--num-processes must be >= 1")

    @property
    def in_this_process(self) -> bool:
        """One learner on this machine with accelerate's defaults: no launcher needed."""
        return not self.accelerate_config and not self.accelerate_arg and (self.num_processes or 1) == 1
