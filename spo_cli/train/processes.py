"""The processes a learner runs in, and what its models become in them.

    procs = Processes.single()                  # one process (plain `spo train`)
    procs = Processes.start(cfg)                # this process's place in an accelerate launch
    model = procs.wrap(model)                   # placed on the device; DDP- or FSDP2-wrapped to train
    ref = procs.wrap(model, frozen=True)        # a model that is only run forward
    procs.save_weights(model, path)             # the whole weights as safetensors, one tensor at a time
    mine = procs.portion(examples)              # this process's rows of a step

Three layouts, chosen the way accelerate users choose them (an accelerate config file, or flags to
`accelerate launch`; spo_cli/train/launch.py):

    one process   everything here.
    DDP           accelerate MULTI_GPU / MULTI_CPU (gloo): every process holds the whole model and
                  optimiser state; gradients are all-reduced.
    FSDP2         accelerate FSDP with fsdp_version 2 (torch.distributed.fsdp.fully_shard, through
                  accelerate's fsdp2_prepare_model): parameters, gradients and optimiser state are
                  sharded across the processes, one FSDP unit per decoder layer (accelerate's
                  transformer_based_wrap on the model's _no_split_modules, the default here unless
                  the config names another policy), plus the embeddings and the output head.
                  --precision bf16 computes in bf16 (FSDP MixedPrecisionPolicy: parameters
                  gathered in bf16, gradients reduced in fp32, fp32 master weights).

Under FSDP every forward pass is collective: all processes must run the same modules the same
number of times. So the frozen reference model (when log-probs are not cached) and PPO's value
model are sharded the same way as the policy (a reference costs 1/N of its weights per process,
never an optimiser state), and the processes agree (`must_run`) before a forward pass that only
some of them need.

accelerate turns on FSDP only on accelerators: on CPUs it sets up gloo (MULTI_CPU) and ignores
the FSDP plugin. Here, when the launch asked for FSDP (ACCELERATE_USE_FSDP, set by `accelerate
launch --use_fsdp` or an FSDP config file), the state is switched to FSDP after accelerate has set
up the processes, so CPU runs (the tests, over gloo) go through the same accelerate FSDP2 code as
GPU runs.

A step's rows: every process sees the whole step (the main process reads it and broadcasts it),
then takes a contiguous block of rows (`portion`); with --grad-accum G, a step is N x G
micro-batches of the same rows as one process with --grad-accum N x G would use, so the three
layouts compute the same losses (tests/test_fsdp.py holds them to a tolerance).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import torch

from spo_cli.errors import BadInput, SpoError

# metrics of a step that add up over processes; the others are means
SUMMED = frozenset({"tokens", "stale_rows"})


def launched() -> bool:
    """Is this one of several processes started by accelerate / torchrun?"""
    return "WORLD_SIZE" in os.environ and "RANK" in os.environ


class Processes:
    """The learner processes of one run: which one is main, what they share, how models are wrapped."""

    def __init__(self, accelerator: Any = None, *, kind: str = "single", device: torch.device | None = None,
                 precision: str = "fp32"):
        self.accelerator = accelerator
        self.kind = kind  # single, ddp or fsdp
        self.rank = accelerator.process_index if accelerator is not None else 0
        self.world = accelerator.num_processes if accelerator is not None else 1
        self.is_main = accelerator.is_main_process if accelerator is not None else True
        self.device = device or (accelerator.device if accelerator is not None else torch.device("cpu"))
        self.precision = precision

    @classmethod
    def single(cls, device: torch.device | str = "cpu", precision: str = "fp32") -> Processes:
        return cls(None, device=torch.device(device), precision=precision)

    @property
    def sharded(self) -> bool:
        """FSDP: forward passes are collective; a model's tensors are spread over the processes."""
        return self.kind == "fsdp"

    def describe(self) -> str:
        return "1 process" if self.world == 1 else f"{self.world} processes ({self.kind.upper()})"

    # ------------------------------------------------------------------ start
    @classmethod
    def start(cls, cfg: Any, timeout_s: float = 1800.0) -> Processes:
        """This process's place in the launch: one process, DDP (gloo on CPUs, NCCL on GPUs), or FSDP2."""
        from accelerate import Accelerator
        from accelerate.utils import DistributedType, InitProcessGroupKwargs

        cpu = cfg.device == "cpu" or (cfg.device == "auto" and not torch.cuda.is_available())
        asked = {k: os.environ.get(f"ACCELERATE_USE_{k}", "false").lower() == "true"
                 for k in ("FSDP", "DEEPSPEED", "MEGATRON_LM")}
        if asked["DEEPSPEED"] or asked["MEGATRON_LM"]:  # (on CPUs accelerate would quietly run DDP instead)
            raise BadInput("spo train runs one process, DDP or FSDP version 2, not DeepSpeed or Megatron-LM")
        fsdp = asked["FSDP"]
        if fsdp:
            # per-decoder-layer units unless the launch chose a policy
            os.environ.setdefault("FSDP_AUTO_WRAP_POLICY", "TRANSFORMER_BASED_WRAP")
            if os.environ.get("FSDP_VERSION", "1") != "2":
                raise BadInput("spo train runs FSDP version 2 only: add --fsdp_version 2 to accelerate launch, or "
                               "fsdp_version: 2 under fsdp_config in the accelerate config")
        pg = InitProcessGroupKwargs(timeout=timedelta(seconds=timeout_s))
        try:
            acc = Accelerator(cpu=cpu, kwargs_handlers=[pg])  # cpu: gloo, not "no distribution"
        except (RuntimeError, ValueError) as e:
            raise BadInput(f"accelerate could not set up the learner processes: {e}") from None
        n = int(os.environ.get("WORLD_SIZE", "1") or 1)
        if n > 1 and acc.num_processes == 1:
            raise BadInput(f"{n} processes were launched but accelerate set up no distributed training "
                           f"({acc.distributed_type})")
        dtype = acc.distributed_type
        if fsdp and dtype == DistributedType.MULTI_CPU:
            from accelerate.utils import FullyShardedDataParallelPlugin

            # accelerate enables FSDP on accelerators only (see the module docstring)
            acc.state.distributed_type = DistributedType.FSDP
            acc.state.fsdp_plugin = FullyShardedDataParallelPlugin()
            dtype = DistributedType.FSDP
        name = str(dtype).rsplit(".", 1)[-1]
        if acc.num_processes == 1:
            kind = "single"
        elif dtype == DistributedType.FSDP:
            kind = "fsdp"
        elif name.startswith("MULTI_"):
            kind = "ddp"
        else:
            raise BadInput(f"spo train runs one process, DDP (MULTI_GPU / MULTI_CPU) or FSDP version 2, not {name}")
        mp = str(acc.mixed_precision)
        if mp not in ("no", cfg.precision.replace("fp32", "no")):
            raise BadInput(f"accelerate's mixed_precision is {mp}, but --precision is {cfg.precision}: spo train "
                           "applies the precision itself; set --precision (fp32 or bf16) and mixed_precision 'no'")
        procs = cls(acc, kind=kind, device=acc.device, precision=cfg.precision)
        if kind == "fsdp":
            procs._fsdp_precision()
        return procs

    def _fsdp_precision(self) -> None:
        from torch.distributed.fsdp import MixedPrecisionPolicy

        plugin = self.accelerator.state.fsdp_plugin
        # bf16: parameters gathered and computed in bf16, gradients reduced in fp32, fp32 master weights
        plugin.mixed_precision_policy = MixedPrecisionPolicy(param_dtype=torch.bfloat16, reduce_dtype=torch.float32) \
            if self.precision == "bf16" else None

    @property
    def plugin(self) -> Any:
        return self.accelerator.state.fsdp_plugin if self.sharded else None

    # ------------------------------------------------------------------ models
    def wrap(self, model: torch.nn.Module, *, frozen: bool = False) -> torch.nn.Module:
        """The model placed for this layout: on the device (one process, DDP: frozen models stay
        unwrapped, trained ones become DistributedDataParallel), or sharded (FSDP2, trained or not)."""
        if frozen:
            model.eval()
            for p in model.parameters():
                p.requires_grad_(False)
        if self.kind == "fsdp":
            from accelerate.utils.fsdp_utils import fsdp2_prepare_model

            return fsdp2_prepare_model(self.accelerator, model)
        model = model.to(self.device)
        if self.kind == "ddp" and not frozen:
            return self.accelerator.prepare_model(model)
        return model

    def unwrap(self, model: Any) -> Any:
        """The model itself (DDP wraps it; an FSDP2 module is the model, its tensors sharded)."""
        return self.accelerator.unwrap_model(model, keep_torch_compile=False) if self.kind == "ddp" else model

    def is_placeholder(self, model: torch.nn.Module) -> bool:
        """A model loaded without its weights (FSDP's RAM-efficient loading: processes other than
        the first on each machine get empty tensors, and receive the first one's when sharded)."""
        p = next(iter(model.parameters()), None)
        return p is not None and p.is_meta

    def spec(self, model: torch.nn.Module) -> dict[str, tuple[tuple[int, ...], torch.dtype]]:
        """name -> (shape, dtype) of the whole model's state dict (no tensor is gathered)."""
        return {k: (tuple(v.shape), v.dtype) for k, v in self.unwrap(model).state_dict().items()}

    def full_tensors(self, model: torch.nn.Module) -> Iterator[tuple[str, torch.Tensor | None]]:
        """(name, the whole tensor on the CPU) of the model's state dict, one at a time, on the main
        process; (name, None) on the others. Under FSDP each tensor is all-gathered (every process
        must iterate to the end); nothing but the current tensor is held."""
        from torch.distributed.tensor import DTensor

        for name, t in self.unwrap(model).state_dict().items():
            t = t.detach()
            if isinstance(t, DTensor):
                t = t.full_tensor()
            yield name, (t.cpu() if self.is_main else None)
            del t

    def save_weights(self, model: torch.nn.Module, path: Path, meta: dict | None = None) -> None:
        """The model's weights as one safetensors file written by the main process, tensor by tensor
        (spo_cli.serve.weights.write_stream): never more than one whole tensor in memory. Every
        process calls it; a failure to write is raised on the main process (after the others got
        every tensor they were waiting to gather)."""
        from spo_cli.serve.weights import write_stream

        if not self.is_main and not self.sharded:
            return  # nothing to gather (DDP: the main process holds it all; it may be the only holder)
        tensors = self.full_tensors(model)
        if not self.is_main:
            for _ in tensors:
                pass
            return
        try:
            write_stream(path, self.spec(model), tensors, meta=meta)
        finally:
            for _ in tensors:  # the others are waiting in each gather
                pass

    def clip_grad_norm(self, params: list[torch.Tensor], max_norm: float) -> float:
        """Clip the gradients to a global norm (over every process's shards); the norm before clipping."""
        norm = torch.nn.utils.clip_grad_norm_(params, max_norm)
        if hasattr(norm, "full_tensor"):
            norm = norm.full_tensor()
        return float(norm)

    # ------------------------------------------------------------------ rows and metrics
    def portion(self, rows: list) -> list:
        """This process's contiguous block of a step's rows (their number divides by world)."""
        k = len(rows) // self.world
        return rows[self.rank * k:(self.rank + 1) * k]

    def reduce(self, metrics: dict) -> dict:
        """A step's metrics over every process: sums for counts (SUMMED), means for the rest (over
        the processes that report them)."""
        if self.world == 1:
            return metrics
        every = self.gather(metrics)
        out: dict = {}
        for m in every:
            for k in m:
                if k not in out:
                    vals = [x[k] for x in every if isinstance(x.get(k), (int, float))]
                    out[k] = (sum(vals) if k in SUMMED else sum(vals) / len(vals)) if vals else m[k]
        return out

    def must_run(self, needed: bool) -> bool:
        """Run a forward pass this process needs when `needed`? Under FSDP a forward pass is
        collective: every process runs it when any process needs it."""
        if not self.sharded:
            return bool(needed)
        return any(self.gather(bool(needed)))

    # ------------------------------------------------------------------ collectives
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

    def barrier(self) -> None:
        if self.world > 1:
            self.accelerator.wait_for_everyone()

    def agree(self, failure: dict | None) -> None:
        """Every process raises if any process failed (so none is left waiting in a collective)."""
        failures = [f for f in self.gather(failure) if f is not None]
        if failures:
            raise relayed(failures[0])

    def together(self, fn: Callable[[], Any]) -> Any:
        """fn() on every process; a failure on any of them is raised on all of them afterwards."""
        if self.world == 1:
            return fn()
        result, failure = None, None
        try:
            result = fn()
        except Exception as e:  # noqa: BLE001 - every process must learn of it
            failure = failure_of(e)
        self.agree(failure)
        return result

    def main_only(self, fn: Callable[[], Any]) -> Any:
        """fn() on the main process; its result on every process, or its failure raised on every one."""
        if self.world == 1:
            return fn()
        result, failure = None, None
        if self.is_main:
            try:
                result = fn()
            except Exception as e:  # noqa: BLE001 - every process must learn of it
                failure = failure_of(e)
        result, failure = self.bcast((result, failure))
        if failure is not None:
            raise relayed(failure)
        return result


def failure_of(e: BaseException) -> dict:
    return {"type": "bad_input" if isinstance(e, BadInput) else "error", "message": str(e)}


def relayed(failure: dict) -> SpoError:
    """The exception to raise for a failure another process reported (its message, its exit code)."""
    return _Relayed(failure["message"], 2 if failure["type"] == "bad_input" else 1)


class _Relayed(SpoError):
    def __init__(self, message: str, exit_code: int):
        super().__init__(message)
        self.exit_code = exit_code
