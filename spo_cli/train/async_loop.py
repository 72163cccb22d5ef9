"""The asynchronous learner of `spo train --async`: Trainer, fed by rollout workers, under accelerate.

    trainer = AsyncTrainer(cfg, AsyncConfig(workers=["http://w1:8471", "http://w2:8471"]))
    for metrics in trainer.steps():   # every process iterates; the main process logs
        ...

What changes against the synchronous Trainer (spo_cli/train/loop.py), and nothing else does:
- Online rollouts come from `spo sample --serve` workers (spo_cli/serve), which sample and judge
  continuously. The main process pulls them (WorkerLinks), takes the step's offline records, and
  hands every learner process its share: the same number of offline and of online rows each.
- Weights go out every `model_update_interval` steps (and once when a learner starts or resumes):
  the main process publishes a CPU snapshot; links push it to every worker (safetensors, over
  HTTP or via shared storage) while training goes on. Workers load it between sampling rounds.
- Staleness = learner version - the rollout's policy_version; logged per step (mean on the
  main process's share as `staleness`, `staleness_max` over the batch). `--max-staleness N`
  drops rollouts staler than N before the batch is formed (`rollouts_dropped_stale`; they stay in
  the workers' spools). Rollouts from an abandoned future (a learner resumed at an earlier step)
  or from another run's lineage are always dropped (`rollouts_dropped_foreign`).
- PPO needs nothing extra: Trainer.ppo_step already applies the decoupled-PPO correction to rows
  more than one version stale (MATH.md section 9), from the log-probs the workers record.
- Models and optimiser are wrapped by accelerate (DDP over gloo on CPU, NCCL on GPUs). The batch
  size is global: each process takes batch_size / processes rows; DDP averages the gradients.
  Checkpoints are written by the main process, as ordinary ones; --resume works as before.
- When no worker delivers the step's rollouts within --rollout-wait seconds (or every worker is
  down), the shortfall is filled from the offline corpus if there is one; without one the step
  keeps waiting until --rollout-wait runs out, then training stops with an error.

Where this departs from the paper: the paper gives no protocol; ours is described in
spo_cli/serve. Without --max-staleness nothing is dropped for age (SPO learns off-policy);
the paper uses a low model_update_interval for on-policy losses and 10 for SPO. Not yet: FSDP
(sharded checkpoints are not written; refused with a message), and nothing was run on GPUs.
"""

from __future__ import annotations

import dataclasses
import json
import os
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from spo_cli.errors import BadInput, SpoError
from spo_cli.serve.worker import valid_for
from spo_cli.train.batching import Example
from spo_cli.train.config import TrainConfig
from spo_cli.train.loop import Trainer

ASYNC_STATE = "async.json"


@dataclass
class AsyncConfig:
    workers: list[str] = field(default_factory=list)
    """Rollout workers (`spo sample --serve`), as http://HOST:PORT."""
    token: str | None = None
    """Shared token the workers require (default: $SPO_TOKEN). Never written to disk."""
    rollout_wait: float = 600.0
    """Seconds a step waits for its online rollouts before filling from offline data (or failing)."""
    worker_timeout: float = 60.0
    """Seconds without an answer after which a worker counts as down (then retried with back-off)."""
    weights_via: str = "http"
    """http (weights travel over the connection) or path (written under --weights-dir on storage
    the workers share; they need the same --weights-dir)."""
    weights_dir: str | None = None
    """Directory on shared storage for --weights-via path."""

    def to_json(self) -> dict:
        d = dataclasses.asdict(self)
        d.pop("token")
        return d


class AsyncTrainer(Trainer):
    samples_online = False  # the workers sample (their own -n per problem), not this learner

    def describe(self) -> str:
        c = self.cfg
        return (f"spo train --async: {c.algo} | {self.world} learner process(es) | {self.n_off} offline + "
                f"{self.n_on} online per step | {len(self.links.links)} worker(s) | weights every "
                f"{c.model_update_interval} steps via {self.acfg.weights_via} | lineage {self.lineage} -> {self.out}")

    def progress_note(self, metrics: dict) -> str:
        return f"v{metrics.get('published_version')}"

    def __init__(self, cfg: TrainConfig, acfg: AsyncConfig, *, resume: bool = False, accelerator: Any = None):
        from datetime import timedelta

        from accelerate import Accelerator
        from accelerate.utils import InitProcessGroupKwargs

        from spo_cli.serve.auth import resolve_token

        self.acfg = acfg
        if accelerator is None:
            pg = InitProcessGroupKwargs(timeout=timedelta(seconds=max(1800.0, acfg.rollout_wait + 600.0)))
            try:
                cpu = cfg.device == "cpu" or (cfg.device == "auto" and not torch.cuda.is_available())
                accelerator = Accelerator(cpu=cpu, kwargs_handlers=[pg])  # cpu: gloo, not "no distribution"
            except (RuntimeError, ValueError) as e:  # e.g. an FSDP launch on a machine without GPUs
                raise BadInput(f"accelerate could not set up the learner processes: {e}") from None
        self.accelerator = acc = accelerator
        self.rank, self.world = acc.process_index, acc.num_processes
        launched = int(os.environ.get("WORLD_SIZE", "1") or 1)
        if launched > 1 and self.world == 1:
            # e.g. an FSDP config on a machine without GPUs: accelerate then falls back to N
            # independent single-process runs, which would all write the same run directory
            raise BadInput(f"{launched} processes were launched but accelerate set up no distributed training "
                           f"({acc.distributed_type}); on CPUs use multi-process DDP (--num-processes N without "
                           "an FSDP config)")
        kind = str(acc.distributed_type).rsplit(".", 1)[-1]
        if kind in ("FSDP", "DEEPSPEED", "MEGATRON_LM"):
            raise BadInput(f"spo train --async runs DDP (MULTI_GPU / MULTI_CPU) only, not {kind}: checkpoints of "
                           "sharded models and optimiser states are not implemented yet (see docs/async.md)")
        self.is_main = acc.is_main_process
        if cfg.device == "auto":
            cfg = dataclasses.replace(cfg, device=str(acc.device))
        if not acfg.workers:
            raise BadInput("--async needs --workers URL[,URL...] (rollout workers: spo sample --serve)")
        if acfg.rollout_wait <= 0 or acfg.worker_timeout <= 0:
            raise BadInput("--rollout-wait and --worker-timeout must be > 0")

        # The main process first: it checks and claims the run directory; the others then load
        # whatever it loaded (the checkpoint being resumed, or the reference model).
        if self.is_main:
            try:
                super().__init__(cfg, resume=resume)
            except Exception as e:
                self._bcast(_failure(e))
                raise
            self._bcast(None)
        else:
            failed = self._bcast(None)
            if failed is not None:
                raise _raise(failed)
            super().__init__(cfg, resume=True)

        if not self.n_on:
            raise BadInput("--async trains on worker rollouts: give --problems and an --offline-ratio below 1")
        for what, n in (("offline", self.n_off), ("online", self.n_on)):
            if n % self.world:
                raise BadInput(f"the {n} {what} trajectories of a step must divide evenly among the "
                               f"{self.world} learner processes")
        if (self.cfg.batch_size // self.world) % self.cfg.grad_accum:
            raise BadInput(f"each of the {self.world} processes takes {self.cfg.batch_size // self.world} "
                           f"trajectories a step: not a multiple of --grad-accum {self.cfg.grad_accum}")
        self.behaviour = self.policy  # the behaviour policy lives on the workers now
        self.behaviour_version = self.policy_version

        if self.value_model is not None:
            self.policy, self.value_model, self.optimizer = acc.prepare(self.policy, self.value_model, self.optimizer)
        else:
            self.policy, self.optimizer = acc.prepare(self.policy, self.optimizer)
        self.behaviour = self.policy

        self.lineage = self._lineage(resume)
        self.links = None
        if self.is_main:
            from spo_cli.serve.client import WorkerLinks

            urls = [u.strip() for spec in acfg.workers for u in spec.split(",") if u.strip()]
            self.links = WorkerLinks(urls, resolve_token(acfg.token), lineage=self.lineage, prefetch=self.n_on,
                                     timeout=acfg.worker_timeout, weights_via=acfg.weights_via,
                                     weights_dir=acfg.weights_dir, tokenizer=self.fingerprint).start()
        self.published_version: int | None = None
        self._step_data: tuple[int, list[Example], list[Example], dict] | None = None

    # ------------------------------------------------------------------ collectives
    def _bcast(self, obj: Any) -> Any:
        """obj of the main process, on every process."""
        if self.world == 1:
            return obj
        from accelerate.utils import broadcast_object_list

        box = [obj]
        broadcast_object_list(box, from_process=0)
        return box[0]

    def _agree(self, failure: dict | None) -> None:
        """Every process raises if any process failed (so none is left waiting in a collective)."""
        if self.world > 1:
            from accelerate.utils import gather_object

            failures = [f for f in gather_object([failure]) if f is not None]
            failure = failures[0] if failures else None
        if failure is not None:
            raise _raise(failure)

    def _lineage(self, resume: bool) -> str:
        path = self.out / ASYNC_STATE
        lineage = None
        if self.is_main:
            state = {}
            if resume and path.exists():
                state = json.loads(path.read_text())
            lineage = state.get("lineage") or f"run-{uuid.uuid4().hex[:12]}"
            tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
            tmp.write_text(json.dumps({"lineage": lineage, **self.acfg.to_json(), "processes": self.world}, indent=1))
            os.replace(tmp, path)
        return self._bcast(lineage)

    # ------------------------------------------------------------------ weights out
    def publish(self) -> float:
        """Send the current weights to the workers (the links push them in the background)."""
        from spo_cli.serve.weights import snapshot

        t0 = time.perf_counter()
        sd = self.accelerator.get_state_dict(self.policy)  # collective under FSDP; full on the main process
        if self.is_main:
            self.links.publish(snapshot(sd), self.policy_version)
        self.published_version = self.policy_version
        return time.perf_counter() - t0

    # ------------------------------------------------------------------ data in
    def _reject(self, rec: dict, version: int) -> str | None:
        v = rec.get("policy_version")
        if not isinstance(v, int):
            return "unversioned"
        if not valid_for((rec.get("sampler") or {}).get("lineage"), v, self.lineage, version):
            return "foreign"
        if self.cfg.max_staleness > 0 and version - v > self.cfg.max_staleness:
            return "stale"
        if rec.get("reward") is None:
            return "unjudged"
        if rec.get("problem_id") not in self.problems:
            return "unknown"  # a worker given other problems than this learner
        return None

    def _collect(self) -> dict:
        """Main process: this step's offline records and online rollouts, for all processes."""
        acfg, links = self.acfg, self.links
        version = self.policy_version
        t0 = time.perf_counter()
        on, dropped = links.get(self.n_on, acfg.rollout_wait, lambda r: self._reject(r, version))
        while len(on) < self.n_on and self.offline is None:
            waited = time.perf_counter() - t0
            if waited >= acfg.rollout_wait:
                raise SpoError(f"only {len(on)} of {self.n_on} rollouts from the workers in {waited:.0f} s "
                               f"({links.stats()['workers_up']} of {len(links.links)} workers up) and no "
                               "offline data to fill with")
            if links.all_down:
                time.sleep(0.5)
            more, d = links.get(self.n_on - len(on), acfg.rollout_wait - waited, lambda r: self._reject(r, version))
            on += more
            for k, n in d.items():
                dropped[k] = dropped.get(k, 0) + n
        wait_s = time.perf_counter() - t0
        fill = self.offline.take(self.n_on - len(on)) if len(on) < self.n_on else []
        off = self.offline.take(self.n_off) if self.n_off else []
        stale = [version - r["policy_version"] for r in on]
        stats = {
            "online_rows": len(on), "filled_offline": len(fill), "wait_s": wait_s,
            "rollouts_dropped_stale": dropped.get("stale", 0), "rollouts_dropped_foreign": dropped.get("foreign", 0),
            "rollouts_dropped_unknown": dropped.get("unknown", 0),
            "staleness_max": max(stale) if stale else None, **links.stats(),
        }
        return {"off": off + fill, "on": on, "stats": stats}

    def _exchange(self, step: int) -> None:
        if self._step_data is not None and self._step_data[0] == step:
            return
        publish_s = 0.0
        if self.published_version is None or (step % self.cfg.model_update_interval == 0
                                               and self.published_version != self.policy_version):
            publish_s = self.publish()
        data = None
        if self.is_main:
            try:
                data = self._collect()
            except Exception as e:  # noqa: BLE001 - every process must learn of it
                data = {"failure": _failure(e)}
        data = self._bcast(data)
        if "failure" in data:
            raise _raise(data["failure"])
        tagged = [(True, r) for r in data["off"]] + [(False, r) for r in data["on"]]
        mine = tagged[self.rank::self.world]
        failure, off, on = None, [], []
        try:
            for is_off, r in mine:
                if is_off:
                    off.append(self.tok(r, self._v_hat(r["problem_id"]), r.get("source") or "offline"))
                else:
                    on.append(self.tok(r, self._v_hat(r["problem_id"]), r.get("source") or "online"))
        except Exception as e:  # noqa: BLE001
            failure = _failure(e)
        self._agree(failure)
        if self.is_main:
            self._pending_rollouts.extend(data["on"])
        stats = dict(data["stats"], publish_s=publish_s, published_version=self.published_version,
                     learner_processes=self.world)
        self.behaviour_version = self.published_version  # what the workers were last sent
        self._step_data = (step, off, on, stats)

    def offline_examples(self) -> list[Example]:
        self._exchange(self.step)
        return self._step_data[1]

    def online_examples(self, step: int) -> tuple[list[Example], dict]:
        self._exchange(step)
        return self._step_data[2], self._step_data[3]

    # ------------------------------------------------------------------ checkpoints, shutdown
    def save(self) -> Path | None:
        """The main process writes the checkpoint (unwrapped models); the others wait for it."""
        acc = self.accelerator
        path, failure = None, None
        if self.is_main:
            wrapped = (self.policy, self.value_model)
            self.policy = self.behaviour = acc.unwrap_model(self.policy)  # no separate behaviour copy
            if self.value_model is not None:
                self.value_model = acc.unwrap_model(self.value_model)
            try:
                path = super().save()
            except Exception as e:  # noqa: BLE001
                failure = _failure(e)
            finally:
                self.policy, self.value_model = wrapped
                self.behaviour = self.policy
        else:
            self._pending_rollouts = []
        failure = self._bcast(failure)
        if failure is not None:
            raise _raise(failure)
        return path

    def flush_rollouts(self) -> None:
        if self.is_main:
            super().flush_rollouts()
        self._pending_rollouts = []

    def close(self) -> None:
        if self.links is not None:
            self.links.close()
            self.links = None
        super().close()


def _failure(e: BaseException) -> dict:
    return {"type": "bad_input" if isinstance(e, BadInput) else "error", "message": str(e)}


def _raise(failure: dict) -> SpoError:
    """The exception to raise for a failure another process reported (its message, its exit code)."""
    return _Relayed(failure["message"], 2 if failure["type"] == "bad_input" else 1)


class _Relayed(SpoError):
    def __init__(self, message: str, exit_code: int):
        super().__init__(message)
        self.exit_code = exit_code


# ---------------------------------------------------------------------- the driver
def run_async(cfg: TrainConfig, acfg: AsyncConfig, *, resume: bool = False, quiet_stdout: bool = False) -> list[dict]:
    """Train to cfg.steps with worker rollouts; every process calls this (the main one logs).
    Returns the metrics of the steps run here (on the main process; [] on the others)."""
    from spo_cli.train.run import run

    return run(cfg, resume=resume, quiet_stdout=quiet_stdout,
               make_trainer=lambda c, resume: AsyncTrainer(c, acfg, resume=resume))


def main(argv: list[str] | None = None) -> int:
    """Entry point of each launched learner process: `python -m spo_cli.train.async_loop SPEC.json`
    (spo_cli/train/launch.py writes SPEC: the train config, the async config, resume)."""
    import signal

    from spo_cli.console import error
    from spo_cli.runtime import on_sigterm, quiet_libraries

    quiet_libraries()
    signal.signal(signal.SIGTERM, on_sigterm)
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        error("usage: python -m spo_cli.train.async_loop SPEC.json")
        return 2
    try:
        spec = json.loads(Path(args[0]).read_text())
        run_async(TrainConfig(**spec["train"]), AsyncConfig(**spec["async"]), resume=bool(spec["resume"]))
    except SpoError as e:
        error(str(e))
        return e.exit_code
    except KeyboardInterrupt:
        error("interrupted")
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
