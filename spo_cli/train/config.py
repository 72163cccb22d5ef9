"""The one typed config of `spo train`. Every field's docstring is its --help text.

The resolved config is written to `run/config.json`; `--resume` refuses a config that changes
anything that would make the resumed run differ from an uninterrupted one (RESUME_MAY_CHANGE lists
what may change).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field


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
    """spo or ppo (the baseline: value model, GAE, KL-regularised reward, clipped ratios)."""
    loss: list[str] = field(default_factory=lambda: ["terminal:ce"])
    """SPO objectives, per data source: 'terminal:ce' (all sources), or 'online=terminal:ce',
    'offline=terminal:sq+mc:ce*0.5', '*=...' (any other source). See spo_cli/core/spo.py."""
    beta: float = 0.1
    """KL temperature beta of soft RL (MATH.md)."""
    eps: float = 1e-3
    """Clipping of the cross-entropy loss (MATH.md section 5)."""
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
    precision: str = "fp32"
    """fp32 or bf16 (autocast; master weights stay fp32)."""
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
    # PPO
    ppo_epochs: int = 1
    """PPO: optimisation passes over each batch of rollouts."""
    clip: float = 0.2
    """PPO: ratio clipping epsilon (also the value clipping range)."""
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

    def resolved(self) -> "TrainConfig":
        c = dataclasses.replace(self)
        if c.offline_ratio < 0:
            c.offline_ratio = 1.0 if c.offline and not c.problems else (0.5 if c.offline else 0.0)
        if c.algo == "ppo":
            c.model_update_interval = 1
        return c

    def to_json(self) -> dict:
        return dataclasses.asdict(self)

    def fingerprint(self) -> str:
        d = {k: v for k, v in self.to_json().items() if k not in RESUME_MAY_CHANGE}
        return hashlib.sha256(json.dumps(d, sort_keys=True).encode()).hexdigest()[:16]


RESUME_MAY_CHANGE = frozenset({"steps", "save_every", "keep", "tensorboard", "judge_jobs", "device", "out",
                               "threads"})

FIELD_DOCS: dict[str, str] = {}


def _collect_docs() -> None:
    """Field docstrings (the attribute docstrings under each field) for --help."""
    import ast
    import inspect

    src = inspect.getsource(TrainConfig)
    tree = ast.parse(src)
    body = tree.body[0].body
    for a, b in zip(body, body[1:]):
        if isinstance(a, ast.AnnAssign) and isinstance(b, ast.Expr) and isinstance(b.value, ast.Constant):
            FIELD_DOCS[a.target.id] = " ".join(b.value.value.split())


_collect_docs()
