"""`spo train` in several processes: launching the learners with accelerate (options: LaunchConfig).

    spo train -m MODEL ...                                         one process, this one
    spo train --num-processes 8 ...                                8 processes on this machine (DDP)
    spo train --num-processes 8 --accelerate-arg=--use_fsdp ...    the same, sharded (FSDP2)
    spo train --accelerate-config cluster.yaml ...                 whatever the config says (DDP or
                                                                   FSDP: GPUs, machines, ranks)
    spo train --accelerate-arg=--machine_rank=1 ...                any `accelerate launch` option
    accelerate launch [its options] -m spo_cli train ...           also works: each process then
                                                                   trains in place
The same with --async (learners fed by rollout workers: spo_cli/train/async_loop.py).

With more than one process (or an accelerate config, or extra accelerate arguments) this process
runs `python -m accelerate.commands.launch [options] -m spo_cli.train.launch SPEC`, where SPEC (a
JSON file in the run directory, removed afterwards) holds the resolved configs; the token travels
in the environment ($SPO_TOKEN), never in a file or on a command line. Without an accelerate
config on one machine, defaults are filled in: torchrun-style launch (`--multi_gpu`, which is gloo
on a machine without GPUs), no mixed precision (spo train applies --precision itself), no dynamo,
a free local port, and FSDP version 2 when FSDP is asked for (`--use_fsdp`). Exit codes of the
learners are passed on.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

from spo_cli.errors import BadInput, SpoError
from spo_cli.train.config import AsyncConfig, LaunchConfig, TrainConfig
from spo_cli.train.processes import launched


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
    if _has(extra, "--use_fsdp") and not _has(extra, "--fsdp_version"):
        cmd += ["--fsdp_version", "2"]
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


def train(cfg: TrainConfig, acfg: AsyncConfig | None, *, resume: bool = False, quiet_stdout: bool = False) -> list[dict]:
    """Train in this process (one of the launched ones, or the only one): synchronously, or with
    rollout workers when acfg is given. Returns the metrics of the steps run (main process)."""
    if acfg is None:
        from spo_cli.train.run import run

        return run(cfg, resume=resume, quiet_stdout=quiet_stdout)
    from spo_cli.train.async_loop import run_async

    return run_async(cfg, acfg, resume=resume, quiet_stdout=quiet_stdout)


def launch(cfg: TrainConfig, acfg: AsyncConfig | None, lcfg: LaunchConfig, *, resume: bool = False) -> None:
    """Run `spo train` (with --async when acfg is given): in this process, or as accelerate-launched
    learner processes."""
    import dataclasses

    import orjson

    from spo_cli.serve.auth import resolve_token

    lcfg.check()
    if acfg is not None:
        acfg.check()
        acfg = dataclasses.replace(acfg, token=resolve_token(acfg.token))
    if launched() or lcfg.in_this_process:
        train(cfg, acfg, resume=resume)
        return
    cmd = accelerate_command(lcfg.num_processes, lcfg.accelerate_config, lcfg.accelerate_arg)
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    spec = out / f".launch-{os.getpid()}.json"
    spec.write_bytes(orjson.dumps({"train": cfg.to_json(), "async": acfg.to_json() if acfg else None,
                                   "resume": resume}))
    env = dict(os.environ)
    if acfg is not None and acfg.token:
        env["SPO_TOKEN"] = acfg.token
    proc = subprocess.Popen(cmd + ["-m", "spo_cli.train.launch", str(spec)], env=env)
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


def main(argv: list[str] | None = None) -> int:
    """Entry point of each launched learner process: `python -m spo_cli.train.launch SPEC.json`
    (launch() writes SPEC: the train config, the async config or null, resume)."""
    import json
    import signal

    from spo_cli.console import error
    from spo_cli.runtime import on_sigterm, quiet_libraries

    quiet_libraries()
    signal.signal(signal.SIGTERM, on_sigterm)
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        error("usage: python -m spo_cli.train.launch SPEC.json")
        return 2
    try:
        spec = json.loads(Path(args[0]).read_text())
        acfg = AsyncConfig(**spec["async"]) if spec.get("async") is not None else None
        train(TrainConfig(**spec["train"]), acfg, resume=bool(spec["resume"]))
    except SpoError as e:
        error(str(e))
        return e.exit_code
    except KeyboardInterrupt:
        error("interrupted")
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
