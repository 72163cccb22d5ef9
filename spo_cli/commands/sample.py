"""`spo sample`: draw trajectories for problems from a model (thin layer over spo_cli.sampling)."""

from __future__ import annotations

from typing import List, Optional

import typer

from spo_cli.commands._options import Compress, Output, SkipInvalid
from spo_cli.commands import _options as opts


def _unescape(s: str) -> str:
    r"""'\n', '\t' and '\\' in a --stop value, so `--stop '\n\n'` works without $'...'."""
    out, i = [], 0
    while i < len(s):
        if s[i] == "\\" and i + 1 < len(s) and s[i + 1] in "nt\\":
            out.append({"n": "\n", "t": "\t", "\\": "\\"}[s[i + 1]])
            i += 2
        else:
            out.append(s[i])
            i += 1
    return "".join(out)


def main(
    model: str = typer.Option(..., "--model", "-m", help="Hugging Face checkpoint directory (local; nothing is downloaded)."),
    problems: str = typer.Option("-", "--problems", "-p", help="Problems: file, shard directory, glob or - for stdin (CodeContests/TACO/HumanEval/MBPP rows accepted)."),
    output: str = Output,
    n: int = typer.Option(1, "-n", "--n", help="Samples per problem."),
    temperature: Optional[float] = typer.Option(None, "--temperature", "-t", help="Sampling temperature (default 1.0; 0 = greedy)."),
    temperature_range: Optional[str] = typer.Option(None, "--temperature-range", help="LO,HI: each sample draws its temperature uniformly from [LO, HI] (online SPO). Excludes --temperature."),
    top_p: float = typer.Option(1.0, "--top-p", help="Nucleus sampling mass (1 = off)."),
    max_new_tokens: int = opts.MaxNewTokens,
    seed: int = typer.Option(0, "--seed", help="Run seed: sample k of problem id uses a seed derived from (seed, id, k), so output does not depend on batching."),
    backend: str = opts.Backend,
    stop: Optional[List[str]] = typer.Option(None, "--stop", help="Stop string (repeatable; \\n and \\t understood). The token completing it is kept."),
    system: Optional[str] = typer.Option(None, "--system", help="System message (chat template) or first paragraph (plain template)."),
    template: Optional[str] = typer.Option(None, "--template", help="File holding the user-message template; {prompt} and {problem_id} are replaced."),
    no_chat_template: bool = typer.Option(False, "--no-chat-template", help="Use the plain template even if the tokenizer has a chat template."),
    ref: bool = typer.Option(False, "--ref", help="Mark trajectories source=ref (samples of the reference policy) instead of online."),
    policy_version: int = typer.Option(0, "--policy-version", help="policy_version stamped on every trajectory."),
    batch_size: int = opts.BatchSize,
    device: str = opts.Device,
    dtype: str = opts.Dtype,
    threads: Optional[int] = opts.Threads,
    skip_invalid: bool = SkipInvalid,
    compress: Optional[str] = Compress,
    serve: bool = typer.Option(False, "--serve", help="Run as a rollout worker for spo train --async: sample continuously with the newest weights learners send, judge inline, hand judged trajectories to learners over HTTP (--output unused; with --ref it keeps sampling the reference policy; see docs/async.md)."),
    host: str = typer.Option("127.0.0.1", "--host", help="With --serve: address to listen on; anything but loopback needs a token."),
    port: int = typer.Option(8471, "--port", help="With --serve: port (0: any free one); the URL goes to stdout as a JSON line."),
    token: Optional[str] = typer.Option(None, "--token", help="With --serve: token learners must send (default: $SPO_TOKEN; prefer the variable, a command line is visible in ps)."),
    spool: Optional[str] = typer.Option(None, "--spool", help="With --serve: corpus directory that receives every rollout (a new shard per round)."),
    queue_size: int = typer.Option(64, "--queue-size", help="With --serve: judged trajectories kept for learners; sampling pauses when full (rollouts age while they wait: a few learner steps' worth is enough)."),
    weights_dir: Optional[str] = typer.Option(None, "--weights-dir", help="With --serve: also take weights by path, from safetensors files under this shared directory."),
    judge_jobs: int = typer.Option(2, "--judge-jobs", help="With --serve: parallel judge processes."),
) -> None:
    """Sample trajectories for problems from a model; write them as JSONL (stdout by default).

    Each trajectory has the response text, prompt_ids / response_ids, the tokenizer's
    fingerprint, and `logprobs`: for each response token, its log-probability under the RAW model
    (temperature 1, no top-p), log softmax(logits) in fp32 - the behaviour policy pi_theta that
    SPO and the trainer's importance weights use. Temperature and top-p only shape the draw.
    `sampler` records model, temperature (the one drawn, per sample), top_p, seed and sample
    index; `finish_reason` is stop (EOS or a stop string; both kept in response_ids) or length.

    Prompts use the tokenizer's chat template when it has one, else a plain template
    (system paragraph + prompt). Same seed and options, same output.

    Example: spo sample -m ckpt -p problems.jsonl -n 8 --temperature-range 0.2,1.2 --top-p 0.95 | spo judge -p problems.jsonl
    """
    from pathlib import Path

    from spo_cli.console import info, progress
    from spo_cli.errors import BadInput
    from spo_cli.sampling import SampleOptions, make_sampler, parse_temperature_range
    from spo_cli.streams import ReadStats, open_writer, read_records

    if temperature is not None and temperature_range is not None:
        raise typer.BadParameter("give --temperature or --temperature-range, not both",
                                 param_hint="--temperature-range")
    template_text = None
    if template is not None:
        try:
            template_text = Path(template).read_text(encoding="utf-8")
        except OSError as e:
            raise BadInput(f"cannot read the template: {e.strerror}", path=template) from None
        if "{prompt}" not in template_text:
            raise BadInput("the template has no {prompt} placeholder", path=template)
    try:
        t_range = parse_temperature_range(temperature_range) if temperature_range else None
    except ValueError as e:
        raise typer.BadParameter(str(e), param_hint="--temperature-range") from None
    try:
        opts = SampleOptions(
            n=n,
            temperature=1.0 if temperature is None else temperature,
            temperature_range=t_range,
            top_p=top_p,
            max_new_tokens=max_new_tokens,
            seed=seed,
            stop=tuple(_unescape(s) for s in stop or ()),
            system=system,
            template=template_text,
            use_chat_template=not no_chat_template,
            source="ref" if ref else "online",
            policy_version=policy_version,
            batch_size=batch_size,
        )
    except ValueError as e:
        raise typer.BadParameter(str(e)) from None
    if backend not in ("hf", "vllm"):
        raise typer.BadParameter("choose hf or vllm", param_hint="--backend")
    if threads is not None:
        import torch

        torch.set_num_threads(max(1, threads))

    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # people's output stays ours: one line, then our bar
    if serve:  # a long-running rollout worker (spo_cli/serve)
        from spo_cli.serve.server import run_worker

        run_worker(lambda: make_sampler(backend, model, opts, device=device, dtype=dtype), problems, host=host,
                   port=port, token=token, weights_dir=weights_dir, skip_invalid=skip_invalid, n=n, rows=batch_size,
                   queue_size=queue_size, seed=seed, judge_jobs=judge_jobs, spool=spool,
                   reference=ref)
        return
    sampler = make_sampler(backend, model, opts, device=device, dtype=dtype)
    info(f"spo sample: {backend} backend, model {model}, {n} per problem")
    stats = ReadStats()
    written = 0
    with progress() as bar, open_writer(output, compress) as w:
        task = bar.add_task("sampling", total=None)
        for rec in sampler.iter_sample(read_records(problems, "problem", skip_invalid=skip_invalid, stats=stats)):
            w.write(rec)
            written += 1
            bar.advance(task)
    info(f"spo sample: {written} trajectories for {stats.records} problems")
    if stats.invalid:
        info(f"spo sample: {stats.summary()}")
