"""Setting up a training run, fresh or resumed, in the order it happens.

    cfg = configure(cfg)            # resolved defaults, the algorithm, every check that needs no file
    run = setup(cfg, resume=True)   # -> Run: models, data, optimiser; restored from the latest
                                    #    checkpoint when resuming (step, RNG, data position ...)

A resumed run continues exactly as an uninterrupted one would have: it refuses a config that
differs in anything that changes the run (RESUME_MAY_CHANGE lists what may change), and restores
the policy, optimiser, scheduler, RNG states and the offline data position from the checkpoint.
The data source restores its own part (the behaviour policy: spo_cli/train/loop.py).
"""

from __future__ import annotations

import dataclasses
import json
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from spo_cli.errors import BadInput
from spo_cli.judge.client import Judge
from spo_cli.streams import index_by, read_records
from spo_cli.train import checkpoint as ckpt
from spo_cli.train.algos import Algorithm, ValueModel, algorithm
from spo_cli.train.batching import Example, Tokenizing, token_logprobs
from spo_cli.train.config import RESUME_MAY_CHANGE, TrainConfig
from spo_cli.train.data import OfflineStream


@dataclass
class Resumed:
    """Where a resumed run restarts: its checkpoint and what was saved with it."""

    path: Path
    meta: dict
    behaviour_version: int | None = None  # from the trainer state, filled in by restore()


class Reference:
    """The frozen reference model, loaded when first used: cached reference log-probs, or values
    that need no estimate, never load it. It stands in for the model itself (a sampler can hold it)."""

    def __init__(self, model_dir: str, device: torch.device):
        self.model_dir, self.device = model_dir, device
        self._model = None

    @property
    def loaded(self) -> bool:
        return self._model is not None

    @property
    def model(self):
        if self._model is None:
            from transformers import AutoModelForCausalLM

            model = AutoModelForCausalLM.from_pretrained(self.model_dir, dtype=torch.float32).to(self.device)
            model.eval()
            for p in model.parameters():
                p.requires_grad_(False)
            self._model = model
        return self._model

    def __getattr__(self, name):  # only for what this class lacks: the model's own attributes
        if name.startswith("_"):
            raise AttributeError(name)
        return getattr(self.model, name)

    def __call__(self, *a, **kw):
        return self.model(*a, **kw)


@dataclass
class Run:
    """Everything a training step needs, set up once. The loop advances step and policy_version."""

    cfg: TrainConfig
    algo: Algorithm
    device: torch.device
    tokenizer: Any
    fingerprint: str  # of the policy's tokenizer: records carrying it keep their token ids
    policy: Any
    reference: Reference
    problems: dict[str, dict]
    values: Any  # V_hat(x0) by problem (spo_cli.values.ValueTable), when the algorithm uses them
    tok: Tokenizing
    objective: Any  # the algorithm's loss, when it is built from the config (SPO)
    value_model: Any  # when the algorithm trains one (PPO)
    offline: OfflineStream | None
    offline_files: list[str]
    optimizer: Any  # torch.optim.AdamW (wrapped by accelerate in --async runs)
    scheduler: Any
    resumed: Resumed | None = None
    step: int = 0
    policy_version: int = 0
    judge: Any = field(default=None, repr=False)  # the run's judge client: online rollouts, --missing-value estimate

    @property
    def out(self) -> Path:
        return Path(self.cfg.out)

    @property
    def ckpt_root(self) -> Path:
        return self.out / "checkpoints"

    @property
    def n_off(self) -> int:
        return self.cfg.split()[0]

    @property
    def n_on(self) -> int:
        return self.cfg.split()[1]

    def autocast(self):
        if self.cfg.precision == "bf16":
            return torch.autocast(device_type=self.device.type, dtype=torch.bfloat16)
        return nullcontext()

    def ref_logp(self, batch) -> torch.Tensor:
        """Reference log-probs (B, L-1): the trajectories' cache, else a forward pass of the reference."""
        if batch.ref_logp is not None:
            return batch.ref_logp
        with torch.no_grad(), self.autocast():
            logp, _ = token_logprobs(self.reference, batch)
        return logp.detach()

    def v_hat(self, problem_id: str) -> float:
        return self.values.v(problem_id) if self.values is not None else 0.0

    def examples(self, records: list[dict], source: str) -> list[Example]:
        """Judged trajectory records -> Examples (source: the label of records that carry none)."""
        return [self.tok(r, self.v_hat(r["problem_id"]), r.get("source") or source) for r in records]

    def close(self) -> None:
        if self.judge is not None:
            self.judge.close()
            self.judge = None


# ---------------------------------------------------------------------- before anything is loaded
def configure(cfg: TrainConfig) -> TrainConfig:
    """The resolved config, checked: everything that can be wrong without reading a file fails here."""
    cfg = cfg.resolved()
    algo = algorithm(cfg.algo)
    if algo.on_policy:
        cfg = dataclasses.replace(cfg, model_update_interval=1)
    if not cfg.model:
        raise BadInput("--model is required (the reference model directory)")
    if not Path(cfg.model).is_dir():
        raise BadInput("model directory does not exist", path=cfg.model)
    if cfg.batch_size % cfg.grad_accum:
        raise BadInput(f"--batch-size {cfg.batch_size} must be a multiple of --grad-accum {cfg.grad_accum}")
    if not 0.0 <= cfg.offline_ratio <= 1.0:
        raise BadInput(f"--offline-ratio must be in [0, 1], got {cfg.offline_ratio}")
    if cfg.precision not in ("fp32", "bf16"):
        raise BadInput(f"--precision must be fp32 or bf16, got {cfg.precision!r}")
    n_off, n_on = cfg.split()
    if algo.on_policy and n_off:
        raise BadInput(f"{algo.name.upper()} learns from on-policy rollouts only: use --offline-ratio 0 "
                       f"with --algo {algo.name}")
    if n_on and not cfg.problems:
        raise BadInput("online rollouts need --problems (or use --offline-ratio 1)")
    if n_off and not cfg.offline:
        raise BadInput("--offline-ratio > 0 needs --offline corpora")
    return cfg


# ---------------------------------------------------------------------- set-up, top to bottom
def setup(cfg: TrainConfig, *, resume: bool = False) -> Run:
    """Load and build everything a run needs; with resume, from its latest checkpoint."""
    from spo_cli.sampling.prompts import PromptFormatter, tokenizer_fingerprint

    cfg = configure(cfg)
    algo = algorithm(cfg.algo)
    out = Path(cfg.out)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu") if cfg.device == "auto" \
        else torch.device(cfg.device)
    if cfg.deterministic:
        torch.use_deterministic_algorithms(True)
    torch.manual_seed(cfg.seed)
    resumed = resume_point(cfg, resume)

    tokenizer, policy = load_policy(str(resumed.path) if resumed else cfg.model, device)
    fingerprint = tokenizer_fingerprint(tokenizer)
    reference = Reference(cfg.model, device)
    problems = load_problems(cfg)
    judge = Judge(cfg.judge_jobs, time_scale=cfg.time_scale)  # opens its sandbox pool on first use
    values = load_values(cfg, problems, reference, tokenizer, judge) if algo.uses_values else None
    tok = Tokenizing(tokenizer, PromptFormatter(tokenizer), fingerprint, problems, cfg.max_len)
    objective = algo.objective(cfg) if algo.objective else None
    files, offline = offline_stream(cfg, resumed) if cfg.split()[0] else ([], None)
    value_model = ValueModel.from_reference(cfg.model, policy.config.hidden_size).to(device) \
        if algo.value_model else None
    optimizer, scheduler = optimiser(cfg, policy, value_model)
    run = Run(cfg=cfg, algo=algo, device=device, tokenizer=tokenizer, fingerprint=fingerprint, policy=policy,
              reference=reference, problems=problems, values=values, tok=tok, objective=objective,
              value_model=value_model, offline=offline, offline_files=files, optimizer=optimizer,
              scheduler=scheduler, resumed=resumed, judge=judge)
    if resumed:
        restore(run, resumed)
    out.mkdir(parents=True, exist_ok=True)
    (out / "config.json").write_text(json.dumps(cfg.to_json(), indent=1))
    return run


def resume_point(cfg: TrainConfig, resume: bool) -> Resumed | None:
    """The checkpoint to continue from (None: a fresh run), after checking it continues this run."""
    out = Path(cfg.out)
    root = out / "checkpoints"
    if not resume:
        if (out / "config.json").exists():
            raise BadInput("run directory already holds a run: pass --resume to continue it, or choose "
                           "another --out", path=str(out))
        return None
    start = ckpt.latest(root)
    if start is None:
        if root.exists() and any(root.iterdir()):
            raise BadInput("no complete checkpoint to resume from", path=str(root))
        return None
    meta = ckpt.read_meta(start)
    if meta.get("config_fingerprint") != cfg.fingerprint():
        saved, now = meta.get("config", {}), cfg.to_json()
        diff = sorted(k for k in set(saved) | set(now) if k not in RESUME_MAY_CHANGE and saved.get(k) != now.get(k))
        raise BadInput("the checkpoint was made with a different config; resuming would not continue "
                       f"the same run (differs in: {', '.join(diff) or 'unknown'})")
    return Resumed(start, meta)


def load_policy(model_dir: str, device: torch.device) -> tuple[Any, Any]:
    """The tokenizer (padding with EOS when it has no pad token) and the trainable policy."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    try:
        policy = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32).to(device)
    except Exception as e:  # noqa: BLE001 - corrupt or mismatched weights
        raise BadInput(f"cannot load the policy: {type(e).__name__}: {e}", path=model_dir) from None
    policy.train()
    return tokenizer, policy


def load_problems(cfg: TrainConfig) -> dict[str, dict]:
    if not cfg.problems:
        return {}
    problems = index_by(read_records(cfg.problems, "problem"), "id", "problem")
    if not problems:
        raise BadInput(f"no problems in {', '.join(cfg.problems)}")
    return problems


def load_values(cfg: TrainConfig, problems: dict[str, dict], reference: Reference, tokenizer: Any, judge: Judge):
    """V_hat(x0) by problem (spo_cli.values). A missing value follows --missing-value: an error
    naming the problem, a fallback, or an estimate from --value-k reference samples, judged by
    `judge` when first needed."""
    from spo_cli.sampling.base import SampleOptions
    from spo_cli.sampling.hf import HFSampler
    from spo_cli.values import load_values, parse_missing_value, value_estimator

    try:
        missing = parse_missing_value(cfg.missing_value)
    except ValueError as e:
        raise BadInput(f"--missing-value: {e}") from None
    estimator = None
    if missing.policy == "estimate":
        opts = SampleOptions(n=cfg.value_k, temperature=1.0, max_new_tokens=cfg.max_new_tokens, seed=cfg.seed,
                             source="ref")
        estimator = value_estimator(HFSampler(reference, tokenizer, opts, model_name=cfg.model), judge, problems,
                                    k=cfg.value_k, beta=cfg.beta)
    return load_values(cfg.values or [], missing=missing, beta=cfg.beta, estimator=estimator)


def offline_stream(cfg: TrainConfig, resumed: Resumed | None) -> tuple[list[str], OfflineStream]:
    """The offline corpus files (listed when the run starts, kept by its checkpoints) as a stream,
    at the resumed run's data position."""
    files, position = OfflineStream.list_files(cfg.offline), 0
    if resumed is not None:
        files = resumed.meta.get("offline_files", files)
        position = int(resumed.meta["data_position"])
    missing = [f for f in files if not Path(f).exists()]
    if missing:
        raise BadInput(f"offline shard of this run is gone: {missing[0]}")
    return files, OfflineStream(files, cfg.seed, cfg.shuffle_buffer, position)


def optimiser(cfg: TrainConfig, policy: Any, value_model: Any) -> tuple[torch.optim.Optimizer, Any]:
    """AdamW over the policy (and the value model, at --value-lr), after a linear warm-up."""
    groups = [{"params": [p for p in policy.parameters() if p.requires_grad], "lr": cfg.lr}]
    if value_model is not None:
        groups.append({"params": list(value_model.parameters()), "lr": cfg.value_lr or cfg.lr})
    optimizer = torch.optim.AdamW(groups, lr=cfg.lr, weight_decay=cfg.weight_decay)
    warm = max(0, cfg.warmup)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: min(1.0, (s + 1) / warm) if warm else 1.0)
    return optimizer, scheduler


def restore(run: Run, resumed: Resumed) -> None:
    """Step, versions, optimiser, scheduler, RNG and value model as the checkpoint left them."""
    path = resumed.path
    state = ckpt.load_trainer_state(path)
    run.step = int(resumed.meta["step"])
    run.policy_version = int(resumed.meta["policy_version"])
    try:
        run.optimizer.load_state_dict(state["optimizer"])
        run.scheduler.load_state_dict(state["scheduler"])
    except (KeyError, ValueError, RuntimeError) as e:
        raise BadInput(f"checkpoint optimiser state does not fit this model: {e}", path=str(path)) from None
    ckpt.set_rng_state(state["rng"])
    resumed.behaviour_version = int(state.get("behaviour_version", run.policy_version))
    if run.value_model is not None:
        vm = path / "value_model" / "model.safetensors"
        if not vm.exists():
            raise BadInput("PPO checkpoint without a value model", path=str(path))
        run.value_model.load_state_dict(ckpt.load_tensors(vm), strict=True)
