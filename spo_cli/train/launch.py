"""`spo train --async`: its options, and launching the learner processes with accelerate.

    spo train --async --workers http://w1:8471,http://w2:8471 -m MODEL -p problems.jsonl ...
        one learner process, in this process
    spo train --async --num-processes 8 ...                    8 processes on this machine
    spo train --async --accelerate-config cluster.yaml ...     whatever the config says (DDP:
                                                               GPUs, machines, ranks, precision)
    spo train --async --accelerate-arg=--machine_rank=1 ...    any `accelerate launch` option
    accelerate launch [its options] -m spo_cli train --async ...   also works: each process then
                                                               trains in place

With more than one process (or an accelerate config, or extra accelerate arguments) this process
runs `python -m accelerate.commands.launch [options] -m spo_cli.train.async_loop SPEC`, where
SPEC (a JSON file in the run directory, removed afterwards) holds the resolved configs; the token
travels in the environment ($SPO_TOKEN), never in a file or on a command line. Without an
accelerate config on one machine, defaults are filled in: torchrun-style launch (`--multi_gpu`,
which is gloo on a machine without GPUs), no mixed precision, no dynamo, and a free local port.
Exit codes of the learners are passed on.
"""

from __future__ import annotations

import inspect
import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import List, Optional

import typer

from spo_cli.errors import BadInput, SpoError

_HELP = {
    "workers": "With --async: rollout workers (spo sample --serve) as http://HOST:PORT, comma-separated or "
               "repeated.",
    "token": "With --async: the workers' shared token (default: $SPO_TOKEN; prefer the variable, a command "
             "line is visible in ps).",
    "rollout_wait": "With --async: seconds a step waits for worker rollouts before filling the shortfall "
                    "from the offline corpus (without one, training stops after this long).",
    "worker_timeout": "With --async: seconds without an answer after which a worker counts as down (it is "
                      "retried with back-off).",
    "weights_via": "With --async: how weights reach the workers: http (over the connection) or path "
                   "(files under --weights-dir on storage the workers share).",
    "weights_dir": "With --async --weights-via path: the shared directory (workers need the same "
                   "--weights-dir).",
    "num_processes": "With --async: learner processes (accelerate launch --num_processes; default 1, or "
                     "what --accelerate-config says).",
    "accelerate_config": "With --async: an accelerate config file (accelerate config): multi-GPU DDP, "
                         "machines, mixed precision (FSDP is not supported yet).",
    "accelerate_arg": "With --async: one more option for accelerate launch, e.g. "
                      "--accelerate-arg=--machine_rank=1 (repeatable).",
}


def options() -> list[inspect.Parameter]:
    """The --async options, appended to `spo train`'s generated signature."""
    def p(name: str, ann, default) -> inspect.Parameter:
        return inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, annotation=ann, default=default)

    def flag(name: str) -> str:
        return "--" + name.replace("_", "-")

    return [
        p("async_", bool, typer.Option(False, "--async", help="Learn from rollout workers (spo sample --serve) "
                                       "asynchronously; learners launched with accelerate. See docs/async.md.")),
        p("workers", Optional[List[str]], typer.Option(None, "--workers", help=_HELP["workers"])),
        p("token", Optional[str], typer.Option(None, "--token", help=_HELP["token"])),
        p("rollout_wait", float, typer.Option(600.0, flag("rollout_wait"), help=_HELP["rollout_wait"])),
        p("worker_timeout", float, typer.Option(60.0, flag("worker_timeout"), help=_HELP["worker_timeout"])),
        p("weights_via", str, typer.Option("http", flag("weights_via"), help=_HELP["weights_via"])),
        p("weights_dir", Optional[str], typer.Option(None, flag("weights_dir"), help=_HELP["weights_dir"])),
        p("num_processes", Optional[int], typer.Option(None, flag("num_processes"), help=_HELP["num_processes"])),
        p("accelerate_config", Optional[str], typer.Option(None, flag("accelerate_config"),
                                                           help=_HELP["accelerate_config"])),
        p("accelerate_arg", Optional[List[str]], typer.Option(None, flag("accelerate_arg"),
                                                              help=_HELP["accelerate_arg"])),
    ]


DEFAULTS = {"async_": False, "workers": None, "token": None, "rollout_wait": 600.0,
            "worker_timeout": 60.0, "weights_via": "http", "weights_dir": None, "num_processes": None,
            "accelerate_config": None, "accelerate_arg": None}


def take_options(kwargs: dict) -> dict | None:
    """Remove the --async options from a command's kwargs; None unless --async was given (and
    BadInput if another of them was)."""
    opts = {k: kwargs.pop(k) for k in DEFAULTS if k in kwargs}
    if opts.get("async_"):
        return opts
    given = [k for k, v in opts.items() if v not in (DEFAULTS[k], [], ())]
    if given:
        raise BadInput(f"--{given[0].replace('_', '-')} needs --async")
    return None


def in_launched_process() -> bool:
    """Already one of several processes started by accelerate / torchrun?"""
    return "WORLD_SIZE" in os.environ and "RANK" in os.environ


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _has(args: list[str], name: str) -> bool:
    return any(a == name or a.startswith(name + "=") for a in args)


def accelerate_command(num_processes: int | None, config: str | None, extra: list[str]) -> list[str]:
    """`accelerate launch` with our defaults filled in where neither a config nor `extra` decides."""
    cmd = [sys.executable, "-m", "accelerate.commands.launch"]
    if config:
        if not Path(config).is_file():
            raise BadInput("no such accelerate config file", path=config)
        cmd += ["--config_file", config]
    if num_processes is not None:
        cmd += ["--num_processes", str(num_processes)]
    if not config:
        modes = ("--multi_gpu", "--use_fsdp", "--use_deepspeed", "--use_megatron_lm", "--tpu", "--cpu")
        if (num_processes or 1) > 1 and not any(_has(extra, m) for m in modes):
            cmd.append("--multi_gpu")  # the torchrun launcher; gloo on a machine without GPUs
        for name, value in (("--mixed_precision", "no"), ("--dynamo_backend", "no")):
            if not _has(extra, name):
                cmd += [name, value]
        if not _has(extra, "--num_machines"):
            cmd += ["--num_machines", "1"]
            if not _has(extra, "--main_process_port"):
                cmd += ["--main_process_port", str(free_port())]
    return cmd + list(extra)


class LaunchFailed(SpoError):
    def __init__(self, code: int):
        super().__init__(f"the learner processes failed (exit {code}); their messages are above")
        self.exit_code = code if 0 < code < 128 else 1


def launch(cfg, opts: dict, *, resume: bool = False) -> None:
    """Run `spo train --async`: in this process, or as accelerate-launched learner processes."""
    import orjson

    from spo_cli.serve.auth import resolve_token
    from spo_cli.train.async_loop import AsyncConfig, run_async

    workers = [u.strip() for spec in opts.get("workers") or [] for u in spec.split(",") if u.strip()]
    if not workers:
        raise BadInput("--async needs --workers URL[,URL...] (rollout workers: spo sample --serve)")
    if opts.get("num_processes") is not None and opts["num_processes"] < 1:
        raise BadInput("--num-processes must be >= 1")
    token = resolve_token(opts.get("token"))
    acfg = AsyncConfig(workers=workers, token=token, rollout_wait=opts.get("rollout_wait", 600.0),
                       worker_timeout=opts.get("worker_timeout", 60.0),
                       weights_via=opts.get("weights_via", "http"), weights_dir=opts.get("weights_dir"))
    extra = list(opts.get("accelerate_arg") or [])
    config = opts.get("accelerate_config")
    n = opts.get("num_processes")
    if in_launched_process() or (not config and not extra and (n or 1) == 1):
        run_async(cfg, acfg, resume=resume)
        return
    cmd = accelerate_command(n, config, extra)
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    spec = out / f".launch-{os.getpid()}.json"
    spec.write_bytes(orjson.dumps({"train": cfg.to_json(), "async": acfg.to_json(), "resume": resume}))
    env = dict(os.environ)
    if token:
        env["SPO_TOKEN"] = token
    proc = subprocess.Popen(cmd + ["-m", "spo_cli.train.async_loop", str(spec)], env=env)
    try:
        code = proc.wait()
    except BaseException:
        proc.terminate()  # accelerate / torchrun pass it on to the learners
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
        raise
    finally:
        spec.unlink(missing_ok=True)
    if code:
        raise LaunchFailed(code)
