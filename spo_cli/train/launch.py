"""`spo train --async`: launching the learner processes with accelerate (options: LaunchConfig).

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

import dataclasses
import os
import socket
import subprocess
import sys
from pathlib import Path

from spo_cli.errors import BadInput, SpoError
from spo_cli.train.config import AsyncConfig, LaunchConfig, TrainConfig


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


def launch(cfg: TrainConfig, acfg: AsyncConfig, lcfg: LaunchConfig, *, resume: bool = False) -> None:
    """Run `spo train --async`: in this process, or as accelerate-launched learner processes."""
    import orjson

    from spo_cli.serve.auth import resolve_token
    from spo_cli.train.async_loop import run_async

    acfg.check()
    lcfg.check()
    acfg = dataclasses.replace(acfg, token=resolve_token(acfg.token))
    if in_launched_process() or lcfg.in_this_process:
        run_async(cfg, acfg, resume=resume)
        return
    cmd = accelerate_command(lcfg.num_processes, lcfg.accelerate_config, lcfg.accelerate_arg)
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    spec = out / f".launch-{os.getpid()}.json"
    spec.write_bytes(orjson.dumps({"train": cfg.to_json(), "async": acfg.to_json(), "resume": resume}))
    env = dict(os.environ)
    if acfg.token:
        env["SPO_TOKEN"] = acfg.token
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
