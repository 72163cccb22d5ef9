"""The learner of `spo train --async`: the same loop, fed by rollout workers, under accelerate.

    trainer = AsyncTrainer(cfg, AsyncConfig(workers=["http://w1:8471", "http://w2:8471"]))
    for metrics in trainer.steps():   # every process iterates; the main process logs
        ...

AsyncTrainer is spo_cli/train/loop.py's Learner with another data source (WorkerRollouts instead of
LocalRollouts) and several processes (Processes instead of OneProcess). What that changes, and
nothing else does:
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
- PPO needs nothing extra: its step (spo_cli/train/algos.py) already applies the decoupled-PPO
  correction to rows more than one version stale (docs/math.md §9), from the log-probs the
  workers record.
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
from pathlib import Path
from typing import Any, Callable

import torch

from spo_cli.errors import BadInput, SpoError
from spo_cli.judge.outcome import is_usable
from spo_cli.serve.worker import valid_for
from spo_cli.train.config import AsyncConfig, TrainConfig
from spo_cli.train.loop import Learner, StepData
from spo_cli.train.setup import Run, configure, setup

__all__ = ["AsyncConfig", "AsyncTrainer", "Processes", "WorkerRollouts", "run_async"]

ASYNC_STATE = "async.json"


class AsyncTrainer(Learner):
    """The learner fed by rollout workers; every launched process builds one."""

    def __init__(self, cfg: TrainConfig, acfg: AsyncConfig, *, resume: bool = False, accelerator: Any = None):
        acfg.check()
        procs = Processes(accelerator) if accelerator is not None else Processes.start(cfg, acfg)
        if cfg.device == "auto":
            cfg = dataclasses.replace(cfg, device=str(procs.accelerator.device))
        cfg = configure(cfg)
        n_off, n_on = cfg.split()
        if not n_on:
            raise BadInput("--async trains on worker rollouts: give --problems and an --offline-ratio below 1")
        for what, n in (("offline", n_off), ("online", n_on)):
            if n % procs.world:
                raise BadInput(f"the {n} {what} trajectories of a step must divide evenly among the "
                               f"{procs.world} learner processes")
        if (cfg.batch_size // procs.world) % cfg.grad_accum:
            raise BadInput(f"each of the {procs.world} processes takes {cfg.batch_size // procs.world} "
                           f"trajectories a step: not a multiple of --grad-accum {cfg.grad_accum}")
        # The main process first: it checks and claims the run directory; the others then load
        # whatever it loaded (the checkpoint being resumed, or the reference model).
        run = procs.main_first(lambda main: setup(cfg, resume=resume or not main))
        procs.prepare(run)
        super().__init__(run, WorkerRollouts(run, acfg, procs, resume=resume), procs)

    @property
    def lineage(self) -> str:
        return self.source.lineage

    @property
    def published_version(self) -> int | None:
        return self.source.published_version


# ---------------------------------------------------------------------- the processes
class Processes:
    """The learner processes of one accelerate launch: which one is main, and what they share."""

    def __init__(self, accelerator: Any):
        self.accelerator = accelerator
        self.rank, self.world = accelerator.process_index, accelerator.num_processes
        self.is_main = accelerator.is_main_process

    @classmethod
    def start(cls, cfg: TrainConfig, acfg: AsyncConfig) -> "Processes":
        """This process's place in the launch (DDP over gloo on CPUs, NCCL on GPUs)."""
        from datetime import timedelta

        from accelerate import Accelerator
        from accelerate.utils import InitProcessGroupKwargs

        pg = InitProcessGroupKwargs(timeout=timedelta(seconds=max(1800.0, acfg.rollout_wait + 600.0)))
        try:
            cpu = cfg.device == "cpu" or (cfg.device == "auto" and not torch.cuda.is_available())
            acc = Accelerator(cpu=cpu, kwargs_handlers=[pg])  # cpu: gloo, not "no distribution"
        except (RuntimeError, ValueError) as e:  # e.g. an FSDP launch on a machine without GPUs
            raise BadInput(f"accelerate could not set up the learner processes: {e}") from None
        launched = int(os.environ.get("WORLD_SIZE", "1") or 1)
        if launched > 1 and acc.num_processes == 1:
            # e.g. an FSDP config on a machine without GPUs: accelerate then falls back to N
            # independent single-process runs, which would all write the same run directory
            raise BadInput(f"{launched} processes were launched but accelerate set up no distributed training "
                           f"({acc.distributed_type}); on CPUs use multi-process DDP (--num-processes N without "
                           "an FSDP config)")
        kind = str(acc.distributed_type).rsplit(".", 1)[-1]
        if kind in ("FSDP", "DEEPSPEED", "MEGATRON_LM"):
            raise BadInput(f"spo train --async runs DDP (MULTI_GPU / MULTI_CPU) only, not {kind}: checkpoints of "
                           "sharded models and optimiser states are not implemented yet (see docs/async.md)")
        return cls(acc)

    def bcast(self, obj: Any) -> Any:
        """obj of the main process, on every process."""
        if self.world == 1:
            return obj
        from accelerate.utils import broadcast_object_list

        box = [obj]
        broadcast_object_list(box, from_process=0)
        return box[0]

    def gather(self, obj: Any) -> list:
        """obj of every process, on every process."""
        if self.world == 1:
            return [obj]
        from accelerate.utils import gather_object

        return gather_object([obj])

    def agree(self, failure: dict | None) -> None:
        """Every process raises if any process failed (so none is left waiting in a collective)."""
        failures = [f for f in self.gather(failure) if f is not None]
        if failures:
            raise _raise(failures[0])

    def total(self, n: int) -> int:
        return sum(self.gather(n))

    def main_first(self, fn: Callable[[bool], Any]) -> Any:
        """fn(is_main) on the main process, then (if it succeeded) on the others."""
        if self.is_main:
            try:
                result = fn(True)
            except Exception as e:
                self.bcast(_failure(e))
                raise
            self.bcast(None)
            return result
        failed = self.bcast(None)
        if failed is not None:
            raise _raise(failed)
        return fn(False)

    def main_only(self, fn: Callable[[], Any]) -> Any:
        """fn() on the main process; the others wait, and raise if it failed."""
        result, failure = None, None
        if self.is_main:
            try:
                result = fn()
            except Exception as e:  # noqa: BLE001 - every process must learn of it
                failure = _failure(e)
        failure = self.bcast(failure)
        if failure is not None:
            raise _raise(failure)
        return result

    def prepare(self, run: Run) -> None:
        """Wrap the models and optimiser for distributed training (DDP)."""
        acc = self.accelerator
        if run.value_model is not None:
            run.policy, run.value_model, run.optimizer = acc.prepare(run.policy, run.value_model, run.optimizer)
        else:
            run.policy, run.optimizer = acc.prepare(run.policy, run.optimizer)

    def unwrap(self, model: Any) -> Any:
        return self.accelerator.unwrap_model(model)


# ---------------------------------------------------------------------- the data source
class WorkerRollouts:
    """A step's data from rollout workers: the main process pulls the step's online rollouts and
    offline records, and every learner process takes its share. The behaviour policy lives on the
    workers; this source sends them the policy's weights every --model-update-interval steps."""

    def __init__(self, run: Run, acfg: AsyncConfig, procs: Processes, *, resume: bool):
        from spo_cli.serve.auth import resolve_token

        self.run, self.acfg, self.procs = run, acfg, procs
        self.lineage = self._lineage(resume)
        self.links = None
        if procs.is_main:
            from spo_cli.serve.client import WorkerLinks

            self.links = WorkerLinks(acfg.workers, resolve_token(acfg.token), lineage=self.lineage,
                                     prefetch=run.n_on, timeout=acfg.worker_timeout, weights_via=acfg.weights_via,
                                     weights_dir=acfg.weights_dir, tokenizer=run.fingerprint).start()
        self.published_version: int | None = None

    def describe(self) -> str:
        run, c = self.run, self.run.cfg
        return (f"spo train --async: {c.algo} | {self.procs.world} learner process(es) | {run.n_off} offline + "
                f"{run.n_on} online per step | {len(self.links.links)} worker(s) | weights every "
                f"{c.model_update_interval} steps via {self.acfg.weights_via} | lineage {self.lineage} -> {run.out}")

    def note(self, metrics: dict) -> str:
        return f"v{metrics.get('published_version')}"

    def _lineage(self, resume: bool) -> str:
        path = self.run.out / ASYNC_STATE
        lineage = None
        if self.procs.is_main:
            state = {}
            if resume and path.exists():
                state = json.loads(path.read_text())
            lineage = state.get("lineage") or f"run-{uuid.uuid4().hex[:12]}"
            tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
            tmp.write_text(json.dumps({"lineage": lineage, **self.acfg.to_json(), "processes": self.procs.world},
                                      indent=1))
            os.replace(tmp, path)
        return self.procs.bcast(lineage)

    # ------------------------------------------------------------------ weights out
    def publish(self) -> float:
        """Send the current weights to the workers (the links push them in the background)."""
        from spo_cli.serve.weights import snapshot

        t0 = time.perf_counter()
        sd = self.procs.accelerator.get_state_dict(self.run.policy)  # collective under FSDP; full on the main process
        if self.procs.is_main:
            self.links.publish(snapshot(sd), self.run.policy_version)
        self.published_version = self.run.policy_version
        return time.perf_counter() - t0

    # ------------------------------------------------------------------ data in
    def next(self, step: int) -> StepData:
        run, procs = self.run, self.procs
        publish_s = 0.0
        if self.published_version is None or (step % run.cfg.model_update_interval == 0
                                               and self.published_version != run.policy_version):
            publish_s = self.publish()
        data = None
        if procs.is_main:
            try:
                data = self._collect()
            except Exception as e:  # noqa: BLE001 - every process must learn of it
                data = {"failure": _failure(e)}
        data = procs.bcast(data)
        if "failure" in data:
            raise _raise(data["failure"])
        tagged = [(True, r) for r in data["off"]] + [(False, r) for r in data["on"]]
        mine = tagged[procs.rank::procs.world]
        failure, off, on = None, [], []
        try:
            off = run.examples([r for is_off, r in mine if is_off], "offline")
            on = run.examples([r for is_off, r in mine if not is_off], "online")
        except Exception as e:  # noqa: BLE001
            failure = _failure(e)
        procs.agree(failure)
        metrics = dict(data["stats"], publish_s=publish_s, published_version=self.published_version,
                       learner_processes=procs.world, behaviour_version=self.published_version)
        return StepData(off, on, metrics, data["on"] if procs.is_main else [])

    def _reject(self, rec: dict, version: int) -> str | None:
        v = rec.get("policy_version")
        if not isinstance(v, int):
            return "unversioned"
        if not valid_for((rec.get("sampler") or {}).get("lineage"), v, self.lineage, version):
            return "foreign"
        if self.run.cfg.max_staleness > 0 and version - v > self.run.cfg.max_staleness:
            return "stale"
        if not is_usable(rec):
            return "unjudged"
        if rec.get("problem_id") not in self.run.problems:
            return "unknown"  # a worker given other problems than this learner
        return None

    def _collect(self) -> dict:
        """Main process: this step's offline records and online rollouts, for all processes."""
        run, acfg, links = self.run, self.acfg, self.links
        version = run.policy_version
        t0 = time.perf_counter()
        on, dropped = links.get(run.n_on, acfg.rollout_wait, lambda r: self._reject(r, version))
        while len(on) < run.n_on and run.offline is None:
            waited = time.perf_counter() - t0
            if waited >= acfg.rollout_wait:
                raise SpoError(f"only {len(on)} of {run.n_on} rollouts from the workers in {waited:.0f} s "
                               f"({links.stats()['workers_up']} of {len(links.links)} workers up) and no "
                               "offline data to fill with")
            if links.all_down:
                time.sleep(0.5)
            more, d = links.get(run.n_on - len(on), acfg.rollout_wait - waited, lambda r: self._reject(r, version))
            on += more
            for k, n in d.items():
                dropped[k] = dropped.get(k, 0) + n
        wait_s = time.perf_counter() - t0
        fill = run.offline.take(run.n_on - len(on)) if len(on) < run.n_on else []
        off = run.offline.take(run.n_off) if run.n_off else []
        stale = [version - r["policy_version"] for r in on]
        stats = {
            "online_rows": len(on), "filled_offline": len(fill), "wait_s": wait_s,
            "rollouts_dropped_stale": dropped.get("stale", 0), "rollouts_dropped_foreign": dropped.get("foreign", 0),
            "rollouts_dropped_unknown": dropped.get("unknown", 0),
            "staleness_max": max(stale) if stale else None, **links.stats(),
        }
        return {"off": off + fill, "on": on, "stats": stats}

    def checkpoint(self) -> tuple[dict, dict]:
        version = self.published_version if self.published_version is not None else self.run.policy_version
        return {"behaviour_version": version}, {}

    def close(self) -> None:
        if self.links is not None:
            self.links.close()
            self.links = None


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
