"""The learner of `spo train --async`: the same loop, fed by rollout workers, under accelerate.

    trainer = AsyncTrainer(cfg, AsyncConfig(workers=["http://w1:8471", "http://w2:8471"]))
    for metrics in trainer.steps():   # every process iterates; the main process logs
        ...

AsyncTrainer is spo_cli/train/loop.py's Learner with another data source (WorkerRollouts instead of
LocalRollouts), always in accelerate-launched processes (spo_cli/train/processes.py: one, DDP or
FSDP2). What that changes, and nothing else does:
- Online rollouts come from `spo sample --serve` workers (spo_cli/serve), which sample and judge
  continuously. The main process pulls them (WorkerLinks), takes the step's offline records, and
  hands the step to every learner process (each learns from its block of rows).
- Weights go out every `model_update_interval` steps (and once when a learner starts or resumes):
  the processes gather the policy one tensor at a time (under FSDP each tensor is all-gathered)
  and the main process streams it into a safetensors file (on shared storage with
  --weights-via path, else in run/.published/): no process ever holds a second whole copy of the
  model, however large. Links push the file to every worker (over HTTP, read and cast to the
  worker's dtype tensor by tensor, or by its path) while training goes on. Workers load it
  between sampling rounds.
- Staleness = learner version - the rollout's policy_version; logged per step (mean on the
  main process's share as `staleness`, `staleness_max` over the batch). `--max-staleness N`
  drops rollouts staler than N before the batch is formed (`rollouts_dropped_stale`; they stay in
  the workers' spools). Rollouts from an abandoned future (a learner resumed at an earlier step)
  or from another run's lineage are always dropped (`rollouts_dropped_foreign`).
- PPO needs nothing extra: its step (spo_cli/train/algos.py) already applies the decoupled-PPO
  correction to rows more than one version stale (docs/math.md §9), from the log-probs the
  workers record.
- Models are wrapped for the launch's layout (DDP over gloo on CPU, NCCL on GPUs, or FSDP2). The
  batch size is global: each process takes batch_size / processes rows. Checkpoints are the
  ordinary ones (spo_cli/train/checkpoint.py); --resume works as before, with any layout.
- When no worker delivers the step's rollouts within --rollout-wait seconds (or every worker is
  down), the shortfall is filled from the offline corpus if there is one; without one the step
  keeps waiting until --rollout-wait runs out, then training stops with an error.

Where this departs from the paper: the paper gives no protocol; ours is described in
spo_cli/serve. Without --max-staleness nothing is dropped for age (SPO learns off-policy);
the paper uses a low model_update_interval for on-policy losses and 10 for SPO. Not run on GPUs
(nor NCCL, nor several machines): see docs/async.md.
"""

from __future__ import annotations

import json
import os
import time
import uuid

from spo_cli.errors import BadInput, SpoError
from spo_cli.judge.outcome import is_usable
from spo_cli.serve.worker import valid_for
from spo_cli.train.config import AsyncConfig, TrainConfig
from spo_cli.train.loop import Learner, StepData
from spo_cli.train.processes import Processes
from spo_cli.train.setup import Run, configure, setup

__all__ = ["AsyncConfig", "AsyncTrainer", "WorkerRollouts", "run_async"]

ASYNC_STATE = "async.json"


class AsyncTrainer(Learner):
    """The learner fed by rollout workers; every launched process builds one."""

    def __init__(self, cfg: TrainConfig, acfg: AsyncConfig, *, resume: bool = False,
                 procs: Processes | None = None):
        acfg.check()
        cfg = configure(cfg)
        if not cfg.split()[1]:
            raise BadInput("--async trains on worker rollouts: give --problems and an --offline-ratio below 1")
        procs = procs or Processes.start(cfg, timeout_s=max(1800.0, acfg.rollout_wait + 600.0))
        run = setup(cfg, resume=resume, procs=procs)
        super().__init__(run, WorkerRollouts(run, acfg, resume=resume))

    @property
    def lineage(self) -> str:
        return self.source.lineage

    @property
    def published_version(self) -> int | None:
        return self.source.published_version


# ---------------------------------------------------------------------- the data source
class WorkerRollouts:
    """A step's data from rollout workers: the main process pulls the step's online rollouts and
    offline records, and every learner process takes its share. The behaviour policy lives on the
    workers; this source sends them the policy's weights every --model-update-interval steps."""

    def __init__(self, run: Run, acfg: AsyncConfig, *, resume: bool):
        from spo_cli.serve.auth import resolve_token

        self.run, self.acfg, self.procs = run, acfg, run.procs
        self.lineage = self._lineage(resume)
        self.links = None
        if self.procs.is_main:
            from spo_cli.serve.client import WorkerLinks

            self.links = WorkerLinks(acfg.workers, resolve_token(acfg.token), lineage=self.lineage,
                                     prefetch=run.n_on, timeout=acfg.worker_timeout, weights_via=acfg.weights_via,
                                     weights_dir=acfg.weights_dir, tokenizer=run.fingerprint,
                                     publish_dir=str(run.out / ".published")).start()
        self.published_version: int | None = None

    def describe(self) -> str:
        run, c = self.run, self.run.cfg
        return (f"spo train --async: {c.algo} | {self.procs.describe()} | {run.n_off} offline + "
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
        """Send the current weights to the workers: gathered one tensor at a time and streamed into a
        file by the main process (every process takes part), which the links then push."""
        run, procs = self.run, self.procs
        t0 = time.perf_counter()
        version = run.policy_version
        path = procs.main_only(lambda: self.links.weights_path(version))
        procs.together(lambda: procs.save_weights(run.policy, path,
                                                   meta={"policy_version": version, "lineage": self.lineage}))
        if procs.is_main:
            self.links.publish(path, version)
        self.published_version = version
        return time.perf_counter() - t0

    # ------------------------------------------------------------------ data in
    def next(self, step: int) -> StepData:
        run, procs = self.run, self.procs
        publish_s = 0.0
        if self.published_version is None or (step % run.cfg.model_update_interval == 0
                                               and self.published_version != run.policy_version):
            publish_s = self.publish()
        data = procs.main_only(self._collect)
        off = run.examples(data["off"], "offline", data["v"])
        on = run.examples(data["on"], "online", data["v"])
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
        return {"off": off + fill, "on": on, "stats": stats, "v": run.step_values(off + fill + on)}

    def checkpoint(self) -> tuple[dict, dict]:
        version = self.published_version if self.published_version is not None else self.run.policy_version
        return {"behaviour_version": version}, {}

    def close(self) -> None:
        if self.links is not None:
            self.links.close()
            self.links = None


# ---------------------------------------------------------------------- the driver
def run_async(cfg: TrainConfig, acfg: AsyncConfig, *, resume: bool = False, quiet_stdout: bool = False) -> list[dict]:
    """Train to cfg.steps with worker rollouts; every process calls this (the main one logs).
    Returns the metrics of the steps run here (on the main process; [] on the others)."""
    from spo_cli.train.run import run

    return run(cfg, resume=resume, quiet_stdout=quiet_stdout,
               make_trainer=lambda c, resume: AsyncTrainer(c, acfg, resume=resume))
