"""The learner: SPO (any objective per data source) or the PPO baseline, on any mix of offline
and online trajectories.

    trainer = Trainer(cfg)            # loads models, data, the objective; resumes if asked
    for metrics in trainer.steps():   # one dict per optimiser step; the caller logs them
        ...

Where this departs from the paper, or chooses where it is silent:
- Synchronous online data: each step samples its own online rollouts with the behaviour policy
  (the policy as of the last `model_update_interval` step), judges them in parallel, and learns
  from them in the same step. The paper's asynchronous workers are `spo train --async`.
- Online problems are drawn uniformly with replacement from --problems, `online_n` samples each,
  with a random temperature per sample (the paper's online SPO).
- PPO: on-policy rollouts every step (interval 1), the behaviour log-probs the sampler recorded
  serve as pi_old, advantages are whitened over the batch, and the value model is a copy of the
  reference model's transformer with a scalar head (zero-initialised).
- KL to the reference (metric `kl_ref`) is the mean over rows of sum_t log pi_theta/pi_ref on the
  batch's own tokens: an estimate of KL(pi_theta || pi_ref) only on rows the policy sampled.
"""

from __future__ import annotations

import copy
import json
import math
import time
from contextlib import nullcontext
from pathlib import Path
from typing import Any, Iterator

import torch

from spo_cli.console import warn
from spo_cli.errors import BadInput, SpoError
from spo_cli.streams import add_shard, index_by, read_records
from spo_cli.train import checkpoint as ckpt
from spo_cli.train.batching import Example, Tokenizing, collate, token_logprobs
from spo_cli.train.config import RESUME_MAY_CHANGE, TrainConfig
from spo_cli.train.data import OfflineStream, step_seed


def _device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def _temperature(spec: str) -> dict:
    parts = [p for p in spec.replace(":", ",").split(",") if p.strip()]
    try:
        nums = [float(p) for p in parts]
    except ValueError:
        raise BadInput(f"--temperature-range must be LO,HI or one number, got {spec!r}") from None
    if len(nums) == 1:
        return {"temperature": nums[0]}
    if len(nums) == 2 and 0 <= nums[0] <= nums[1]:
        return {"temperature_range": (nums[0], nums[1])}
    raise BadInput(f"--temperature-range must be LO,HI with 0 <= LO <= HI, got {spec!r}")


def _masked_mean(x: torch.Tensor, mask: torch.Tensor) -> float:
    """Mean of x (R, T) over the response tokens of the first R rows of mask (B, T)."""
    m = mask[: x.shape[0]]
    return float(torch.where(m, x, 0.0).sum() / m.sum().clamp(min=1))


def build_objective(cfg: TrainConfig):
    from spo_cli.core.spo import parse_objective

    specs = [s.strip() for s in cfg.loss if s.strip()]
    spec = specs[0] if len(specs) == 1 and "=" not in specs[0] else ",".join(
        s if "=" in s else f"*={s}" for s in specs)
    try:
        return parse_objective(spec, beta=cfg.beta, eps=cfg.eps)
    except ValueError as e:
        raise BadInput(f"--loss: {e}") from None


class _LazyModel:
    """The reference model for a sampler, loaded only when a value is actually estimated."""

    def __init__(self, trainer: "Trainer"):
        self._trainer = trainer

    def __getattr__(self, name):
        return getattr(self._trainer.ref, name)

    def __call__(self, *a, **kw):
        return self._trainer.ref(*a, **kw)


class ValueModel(torch.nn.Module):
    """PPO's value model: a transformer (a copy of the reference's) with a scalar head."""

    def __init__(self, backbone: torch.nn.Module, hidden: int):
        super().__init__()
        self.backbone = backbone
        self.head = torch.nn.Linear(hidden, 1)
        torch.nn.init.zeros_(self.head.weight)
        torch.nn.init.zeros_(self.head.bias)

    def forward(self, input_ids, attention_mask):  # -> (B, L) value of the state after each token
        h = self.backbone(input_ids=input_ids, attention_mask=attention_mask, use_cache=False).last_hidden_state
        return self.head(h.float()).squeeze(-1)


class Trainer:
    samples_online = True  # this learner samples its own online rollouts (online_n per problem)
    is_main = True  # the process that logs and writes (a distributed subclass has several)

    def __init__(self, cfg: TrainConfig, *, resume: bool = False):
        from transformers import AutoModelForCausalLM, AutoTokenizer

        from spo_cli.sampling.prompts import PromptFormatter, tokenizer_fingerprint

        self.cfg = cfg = cfg.resolved()
        if cfg.algo not in ("spo", "ppo"):
            raise BadInput(f"--algo must be spo or ppo, got {cfg.algo!r}")
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
        self.n_off = round(cfg.batch_size * cfg.offline_ratio)
        self.n_on = cfg.batch_size - self.n_off
        if cfg.algo == "ppo" and self.n_off:
            raise BadInput("PPO learns from on-policy rollouts only: use --offline-ratio 0 with --algo ppo")
        if self.n_on and not cfg.problems:
            raise BadInput("online rollouts need --problems (or use --offline-ratio 1)")
        if self.n_off and not cfg.offline:
            raise BadInput("--offline-ratio > 0 needs --offline corpora")
        if self.n_on and self.samples_online and self.n_on % cfg.online_n:
            raise BadInput(f"the {self.n_on} online trajectories per step must be a multiple of --online-n {cfg.online_n}")

        self.out = Path(cfg.out)
        self.ckpt_root = self.out / "checkpoints"
        self.device = _device(cfg.device)
        if cfg.deterministic:
            torch.use_deterministic_algorithms(True)
        torch.manual_seed(cfg.seed)

        start = ckpt.latest(self.ckpt_root) if resume else None
        if resume and start is None and self.ckpt_root.exists() and any(self.ckpt_root.iterdir()):
            raise BadInput("no complete checkpoint to resume from", path=str(self.ckpt_root))
        meta = ckpt.read_meta(start) if start else None
        if not resume and (self.out / "config.json").exists():
            raise BadInput("run directory already holds a run: pass --resume to continue it, or choose "
                           "another --out", path=str(self.out))
        if meta is not None:
            self._check_resumable(meta)
        policy_dir = str(start) if start else cfg.model

        self.tokenizer = AutoTokenizer.from_pretrained(policy_dir)
        if self.tokenizer.pad_token_id is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        try:
            self.policy = AutoModelForCausalLM.from_pretrained(policy_dir, dtype=torch.float32).to(self.device)
        except Exception as e:  # noqa: BLE001 - corrupt or mismatched weights
            raise BadInput(f"cannot load the policy: {type(e).__name__}: {e}", path=policy_dir) from None
        self.policy.train()
        self._ref = None
        self.fingerprint = tokenizer_fingerprint(self.tokenizer)
        self.formatter = PromptFormatter(self.tokenizer)

        self.problems: dict[str, dict] = {}
        if cfg.problems:
            self.problems = index_by(read_records(cfg.problems, "problem"), "id", "problem")
            if not self.problems:
                raise BadInput(f"no problems in {', '.join(cfg.problems)}")
        self.problem_ids = sorted(self.problems)
        self.values = self._load_values() if cfg.algo == "spo" else None
        self.tok = Tokenizing(self.tokenizer, self.formatter, self.fingerprint, self.problems, cfg.max_len)
        self.objective = build_objective(cfg) if cfg.algo == "spo" else None

        self.step = 0
        self.policy_version = 0
        position = 0
        files = OfflineStream.list_files(cfg.offline) if self.n_off else []
        if meta is not None:
            self.step = int(meta["step"])
            self.policy_version = int(meta["policy_version"])
            position = int(meta["data_position"])
            files = meta.get("offline_files", files)
        if self.n_off:
            missing = [f for f in files if not Path(f).exists()]
            if missing:
                raise BadInput(f"offline shard of this run is gone: {missing[0]}")
        self.offline = OfflineStream(files, cfg.seed, cfg.shuffle_buffer, position) if self.n_off else None

        # Behaviour policy: a lagging copy when online data is sampled between updates.
        self.behaviour = self.policy
        if self.n_on and cfg.model_update_interval > 1:
            self.behaviour = copy.deepcopy(self.policy).eval()
            for p in self.behaviour.parameters():
                p.requires_grad_(False)
        self.behaviour_version = self.policy_version

        self.value_model = None
        params = [{"params": [p for p in self.policy.parameters() if p.requires_grad], "lr": cfg.lr}]
        if cfg.algo == "ppo":
            from transformers import AutoModel

            backbone = AutoModel.from_pretrained(cfg.model, dtype=torch.float32)
            self.value_model = ValueModel(backbone, self.policy.config.hidden_size).to(self.device)
            params.append({"params": list(self.value_model.parameters()), "lr": cfg.value_lr or cfg.lr})
        self.optimizer = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
        warm = max(0, cfg.warmup)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, lambda s: min(1.0, (s + 1) / warm) if warm else 1.0)

        if start is not None:
            self._restore(start)
        self._sampler = None
        self._pool = None
        self._pending_rollouts: list[dict] = []
        self.out.mkdir(parents=True, exist_ok=True)
        (self.out / "config.json").write_text(json.dumps(cfg.to_json(), indent=1))
        self.offline_files = files

    def describe(self) -> str:
        """One line for people about what this run does."""
        c = self.cfg
        return (f"spo train: {c.algo} | {self.n_off} offline + {self.n_on} online per step | loss "
                f"{self.objective or 'ppo'} | beta {c.beta} | lr {c.lr} | {c.steps} steps -> {self.out}")

    def progress_note(self, metrics: dict) -> str:
        """Extra text for the progress bar after a step."""
        return ""

    # ------------------------------------------------------------------ set-up helpers
    def _check_resumable(self, meta: dict) -> None:
        if meta.get("config_fingerprint") != self.cfg.fingerprint():
            saved = meta.get("config", {})
            now = self.cfg.to_json()
            diff = sorted(k for k in set(saved) | set(now) if k not in RESUME_MAY_CHANGE and saved.get(k) != now.get(k))
            raise BadInput("the checkpoint was made with a different config; resuming would not continue "
                           f"the same run (differs in: {', '.join(diff) or 'unknown'})")

    def _restore(self, path: Path) -> None:
        state = ckpt.load_trainer_state(path)
        try:
            self.optimizer.load_state_dict(state["optimizer"])
            self.scheduler.load_state_dict(state["scheduler"])
        except (KeyError, ValueError, RuntimeError) as e:
            raise BadInput(f"checkpoint optimiser state does not fit this model: {e}", path=str(path)) from None
        ckpt.set_rng_state(state["rng"])
        if self.behaviour is not self.policy:
            beh = path / "behaviour.safetensors"
            if beh.exists():
                self.behaviour.load_state_dict(ckpt.load_tensors(beh), strict=True)
            else:
                self.behaviour.load_state_dict(self.policy.state_dict())
            self.behaviour_version = int(state.get("behaviour_version", self.policy_version))
        if self.value_model is not None:
            vm = path / "value_model" / "model.safetensors"
            if not vm.exists():
                raise BadInput("PPO checkpoint without a value model", path=str(path))
            self.value_model.load_state_dict(ckpt.load_tensors(vm), strict=True)

    @property
    def ref(self):
        """The frozen reference model, loaded when first needed (cached ref log-probs avoid it)."""
        if self._ref is None:
            from transformers import AutoModelForCausalLM

            self._ref = AutoModelForCausalLM.from_pretrained(self.cfg.model, dtype=torch.float32).to(self.device)
            self._ref.eval()
            for p in self._ref.parameters():
                p.requires_grad_(False)
        return self._ref

    @property
    def pool(self):
        if self._pool is None:
            from spo_cli.judge.runner import SandboxPool

            self._pool = SandboxPool(self.cfg.judge_jobs)
        return self._pool

    def close(self) -> None:
        if self._pool is not None:
            self._pool.close()
            self._pool = None
        judge = getattr(self, "_value_judge", None)
        if judge is not None:
            judge.close()
            self._value_judge = None

    # ------------------------------------------------------------------ data
    def _load_values(self):
        """V_hat(x0) by problem (spo_cli.values); a missing one follows --missing-value: an error
        naming the problem, a fallback, or an estimate from --value-k reference samples."""
        from spo_cli.values import load_values, parse_missing_value, value_estimator

        cfg = self.cfg
        try:
            missing = parse_missing_value(cfg.missing_value)
        except ValueError as e:
            raise BadInput(f"--missing-value: {e}") from None
        estimator = None
        if missing.policy == "estimate":
            estimator = value_estimator(self._reference_sampler(), self._judge_for_values(), self.problems,
                                        k=cfg.value_k, beta=cfg.beta)
        return load_values(cfg.values or [], missing=missing, beta=cfg.beta, estimator=estimator)

    def _reference_sampler(self):
        from spo_cli.sampling.base import SampleOptions
        from spo_cli.sampling.hf import HFSampler

        opts = SampleOptions(n=self.cfg.value_k, temperature=1.0, max_new_tokens=self.cfg.max_new_tokens,
                             seed=self.cfg.seed, source="ref")
        return HFSampler(_LazyModel(self), self.tokenizer, opts, model_name=self.cfg.model)

    def _judge_for_values(self):
        from spo_cli.values import Judge

        self._value_judge = Judge(self.cfg.judge_jobs, time_scale=self.cfg.time_scale)
        return self._value_judge

    def _v_hat(self, problem_id: str) -> float:
        return self.values.v(problem_id) if self.values is not None else 0.0

    def online_examples(self, step: int) -> tuple[list[Example], dict]:
        """Sample and judge this step's online rollouts with the behaviour policy."""
        from spo_cli.judge.runner import JudgeOptions, judge_stream
        from spo_cli.sampling.base import SampleOptions
        from spo_cli.sampling.hf import HFSampler

        cfg = self.cfg
        n_problems = self.n_on // cfg.online_n
        rng = torch.Generator().manual_seed(step_seed(cfg.seed, step, "online-problems"))
        picks = torch.randint(len(self.problem_ids), (n_problems,), generator=rng).tolist()
        problems = [self.problems[self.problem_ids[i]] for i in picks]
        opts = SampleOptions(n=cfg.online_n, top_p=cfg.top_p, max_new_tokens=cfg.max_new_tokens,
                             seed=step_seed(cfg.seed, step, "online-sample"), source="online",
                             policy_version=self.behaviour_version, batch_size=max(1, self.n_on),
                             **_temperature(cfg.temperature_range))
        t0 = time.perf_counter()
        sampler = HFSampler(self.behaviour, self.tokenizer, opts, model_name=f"{cfg.out}@{self.behaviour_version}")
        trajs = sampler.sample(problems)
        t1 = time.perf_counter()
        # duplicate problems in one step: judge against the same record
        judged = list(judge_stream(trajs, self.problems, JudgeOptions(time_scale=cfg.time_scale),
                                   jobs=cfg.judge_jobs, pool=self.pool))
        t2 = time.perf_counter()
        self._pending_rollouts.extend(judged)
        examples = []
        je = 0
        for rec in judged:
            if rec.get("reward") is None:  # the judge failed (JE): not the program's fault, skip
                je += 1
                continue
            examples.append(self.tok(rec, self._v_hat(rec["problem_id"]), "online"))
        n_tok = sum(len(t["response_ids"]) for t in trajs)
        return examples, {"sample_s": t1 - t0, "judge_s": t2 - t1, "sample_tokens": n_tok, "judge_errors": je}

    def offline_examples(self) -> list[Example]:
        recs = self.offline.take(self.n_off)
        return [self.tok(r, self._v_hat(r["problem_id"]), r.get("source") or "offline") for r in recs]

    # ------------------------------------------------------------------ one step
    def _autocast(self):
        if self.cfg.precision == "bf16":
            return torch.autocast(device_type=self.device.type, dtype=torch.bfloat16)
        return nullcontext()

    def _ref_logp(self, batch) -> torch.Tensor:
        if batch.ref_logp is not None:
            return batch.ref_logp
        with torch.no_grad(), self._autocast():
            logp, _ = token_logprobs(self.ref, batch)
        return logp.detach()

    def spo_step(self, examples: list[Example]) -> dict:
        from spo_cli.core.spo import SPOBatch, mc_tensors, terminal_q

        cfg = self.cfg
        micro = len(examples) // cfg.grad_accum
        sums: dict[str, float] = {}
        n_tok = 0
        for m in range(cfg.grad_accum):
            part = examples[m * micro:(m + 1) * micro]
            batch = collate(part, self.tokenizer.pad_token_id, self.device)
            ref = self._ref_logp(batch)
            with self._autocast():
                logp, ent = token_logprobs(self.policy, batch, with_entropy=True)
            mc = None
            if any(e.mc for e in part):
                mc = mc_tensors([e.mc for e in part], [len(e.response_ids) for e in part], self.device)
            sb = SPOBatch(logp=logp, ref_logp=ref, mask=batch.mask, reward=batch.reward, v_hat=batch.v_hat,
                          mc_index=mc[0] if mc else None, mc_p=mc[1] if mc else None,
                          mc_valid=mc[2] if mc else None, source=[e.source for e in part])
            loss = self.objective(sb)
            if not torch.isfinite(loss):
                raise SpoError(f"non-finite loss at step {self.step}: {loss.item()}")
            (loss / cfg.grad_accum).backward()
            with torch.no_grad():
                mask = batch.mask
                q_t = terminal_q(logp.detach(), ref, mask, batch.v_hat, cfg.beta)
                diff = torch.where(mask, logp.detach() - ref, 0.0)
                self._acc(sums, {
                    "loss": loss.item(),
                    "kl_ref": diff.sum(-1).mean().item(),
                    "entropy": _masked_mean(ent, mask),
                    "q_terminal_err": (q_t - (batch.reward - 1.0)).abs().mean().item(),
                    "q_terminal": q_t.mean().item(),
                }, 1.0 / cfg.grad_accum)
            n_tok += batch.n_tokens
        sums["tokens"] = n_tok
        return sums

    def ppo_step(self, examples: list[Example]) -> dict:
        from spo_cli.core.ppo import (
            gae,
            importance_weights,
            kl_penalized_rewards,
            masked_whiten,
            ppo_policy_loss,
            ppo_value_loss,
        )

        cfg = self.cfg
        batch = collate(examples, self.tokenizer.pad_token_id, self.device)
        if batch.behaviour_logp is None:
            raise SpoError("PPO needs behaviour log-probs on every rollout")
        ref = self._ref_logp(batch)
        behaviour = batch.behaviour_logp
        stale = torch.tensor([self.policy_version - e.policy_version > 1 for e in examples], device=self.device)
        weights = None
        if bool(stale.any()):
            # Decoupled PPO (MATH.md 9): clip against the current policy (pi_old), and correct
            # pi_old vs the stale behaviour policy with per-token importance weights.
            with torch.no_grad(), self._autocast():
                now, _ = token_logprobs(self.policy, batch)
            old = torch.where(stale.unsqueeze(-1), now.float(), behaviour)
            weights = importance_weights(old, behaviour, batch.mask, stale=stale,
                                         max_weight=cfg.max_importance_weight)
        else:
            old = behaviour  # fresh rollouts: the behaviour policy is the current one
        with torch.no_grad():
            values_old = self.value_model(batch.input_ids, batch.attention)[:, :-1]  # (B, L-1)
            rewards = kl_penalized_rewards(batch.reward, old, ref, batch.mask, cfg.beta)
            adv, ret = gae(rewards, values_old, batch.mask, cfg.gamma, cfg.gae_lambda)
            adv = masked_whiten(adv, batch.mask)
        sums: dict[str, float] = {}
        micro = len(examples) // cfg.grad_accum
        for epoch in range(cfg.ppo_epochs):
            for m in range(cfg.grad_accum):
                rows = torch.arange(m * micro, (m + 1) * micro, device=self.device)
                sub = collate(examples[m * micro:(m + 1) * micro], self.tokenizer.pad_token_id, self.device)
                width = sub.mask.shape[1]
                with self._autocast():
                    logp, ent = token_logprobs(self.policy, sub, with_entropy=True)
                    values = self.value_model(sub.input_ids, sub.attention)[:, :-1]
                w = weights[rows, :width] if weights is not None else None
                pl = ppo_policy_loss(logp, old[rows, :width], adv[rows, :width], sub.mask, cfg.clip, weights=w)
                vl = ppo_value_loss(values, values_old[rows, :width], ret[rows, :width], sub.mask, cfg.clip)
                loss = pl.loss + cfg.vf_coef * vl
                if not torch.isfinite(loss):
                    raise SpoError(f"non-finite loss at step {self.step}: {loss.item()}")
                (loss / (cfg.grad_accum * cfg.ppo_epochs)).backward()
                with torch.no_grad():
                    diff = torch.where(sub.mask, logp.detach() - ref[rows, :width], 0.0)
                    self._acc(sums, {
                        "loss": loss.item(), "policy_loss": pl.loss.item(), "value_loss": vl.item(),
                        "clip_frac": pl.clip_frac.item(), "approx_kl": pl.approx_kl.item(),
                        "kl_ref": diff.sum(-1).mean().item(),
                        "entropy": _masked_mean(ent, sub.mask),
                    }, 1.0 / (cfg.grad_accum * cfg.ppo_epochs))
        sums["tokens"] = batch.n_tokens * cfg.ppo_epochs
        sums["stale_rows"] = float(stale.sum())
        if weights is not None:
            sums["importance_weight"] = float(weights[batch.mask & stale.unsqueeze(-1)].mean())
        return sums

    @staticmethod
    def _acc(sums: dict, values: dict, w: float) -> None:
        for k, v in values.items():
            sums[k] = sums.get(k, 0.0) + w * v

    # ------------------------------------------------------------------ the loop
    def steps(self) -> Iterator[dict]:
        cfg = self.cfg
        params = [p for g in self.optimizer.param_groups for p in g["params"]]
        while self.step < cfg.steps:
            t0 = time.perf_counter()
            if self.behaviour is not self.policy and self.step % cfg.model_update_interval == 0 \
                    and self.behaviour_version != self.policy_version:
                self.behaviour.load_state_dict(self.policy.state_dict())
                self.behaviour_version = self.policy_version
            elif self.behaviour is self.policy:
                self.behaviour_version = self.policy_version
            examples: list[Example] = []
            metrics: dict[str, Any] = {"step": self.step + 1}
            if self.n_off:
                off = self.offline_examples()
                examples += off
                metrics["reward_offline"] = sum(e.reward for e in off) / len(off)
            if self.n_on:
                on, timing = self.online_examples(self.step)
                metrics.update(timing)
                if cfg.max_staleness > 0:
                    kept = [e for e in on if self.policy_version - e.policy_version <= cfg.max_staleness]
                    metrics["dropped_stale"] = len(on) - len(kept)
                    on = kept
                if on:
                    metrics["reward_online"] = sum(e.reward for e in on) / len(on)
                    metrics["staleness"] = sum(self.policy_version - e.policy_version for e in on) / len(on)
                examples += on
            if cfg.algo == "ppo" and len(examples) % cfg.grad_accum:
                examples = examples[: len(examples) - len(examples) % cfg.grad_accum]
            if not examples:
                warn(f"step {self.step + 1}: no usable trajectories (all judge errors); skipped")
                self.step += 1
                continue
            t_learn = time.perf_counter()
            out = self.ppo_step(examples) if cfg.algo == "ppo" else self.spo_step(examples)
            grad_norm = torch.nn.utils.clip_grad_norm_(params, cfg.max_grad_norm if cfg.max_grad_norm > 0 else math.inf)
            self.optimizer.step()
            self.scheduler.step()
            self.optimizer.zero_grad(set_to_none=True)
            self.step += 1
            self.policy_version += 1
            now = time.perf_counter()
            metrics.update(out)
            metrics.update({
                "lr": self.scheduler.get_last_lr()[0], "grad_norm": float(grad_norm),
                "learn_s": now - t_learn, "step_s": now - t0,
                "tokens_per_s": out["tokens"] / max(now - t_learn, 1e-9),
                "policy_version": self.policy_version, "behaviour_version": self.behaviour_version,
            })
            if self.offline is not None:
                metrics["data_position"] = self.offline.position
            yield metrics
            if self.step % cfg.save_every == 0 or self.step == cfg.steps:
                self.save()

    # ------------------------------------------------------------------ checkpoints
    def flush_rollouts(self) -> None:
        if self._pending_rollouts and self.cfg.save_rollouts:
            add_shard(self.out / "corpus", self._pending_rollouts, prefix=f"online-step{self.step:06d}")
        self._pending_rollouts = []

    def save(self) -> Path:
        self.flush_rollouts()
        state = {
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "rng": ckpt.rng_state(),
            "behaviour_version": self.behaviour_version,
        }
        extra_tensors = {}
        if self.behaviour is not self.policy and self.behaviour_version != self.policy_version:
            extra_tensors["behaviour.safetensors"] = self.behaviour.state_dict()
        meta = {
            "policy_version": self.policy_version,
            "data_position": self.offline.position if self.offline else 0,
            "offline_files": self.offline_files,
            "config_fingerprint": self.cfg.fingerprint(),
            "config": self.cfg.to_json(),
            "reference_model": self.cfg.model,
            "algo": self.cfg.algo,
        }
        extra_models = {"value_model": self.value_model} if self.value_model is not None else None
        return ckpt.save(self.ckpt_root, self.step, model=self.policy, tokenizer=self.tokenizer, trainer_state=state,
                         meta=meta, extra_models=extra_models, extra_tensors=extra_tensors, keep=self.cfg.keep)
