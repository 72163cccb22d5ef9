"""`spo sample`: draw trajectories for problems from a model (thin layer over spo_cli.sampling).

Its options are generated from spo_cli.sampling.SampleOptions and the dataclasses below."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import partial

import typer

from spo_cli.commands._options import READING, RUNTIME, WRITING, Cli, Options, cli, signature
from spo_cli.parsing import parse_range
from spo_cli.sampling.base import SampleOptions


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


@dataclass
class Sample:
    model: str = field(metadata=cli("--model", "-m"))
    """Hugging Face checkpoint directory (local; nothing is downloaded)."""
    problems: str = field(default="-", metadata=cli("--problems", "-p"))
    """Problems: file, shard directory, glob or - for stdin (CodeContests/TACO/HumanEval/MBPP rows
    accepted)."""
    template: str | None = None
    """File holding the user-message template; {prompt} and {problem_id} are replaced."""
    ref: bool = field(default=False, metadata=cli("--ref"))
    """Mark trajectories source=ref (samples of the reference policy) instead of online."""


@dataclass
class Serve:
    serve: bool = field(default=False, metadata=cli("--serve"))
    """Run as a rollout worker for spo train --async: sample continuously with the newest weights
    learners send, judge inline, hand judged trajectories to learners over HTTP (--output unused;
    with --ref it keeps sampling the reference policy; see docs/async.md)."""
    host: str = "127.0.0.1"
    """With --serve: address to listen on; anything but loopback needs a token."""
    port: int = 8471
    """With --serve: port (0: any free one); the URL goes to stdout as a JSON line."""
    token: str | None = None
    """With --serve: token learners must send (default: $SPO_TOKEN; prefer the variable, a command
    line is visible in ps)."""
    spool: str | None = None
    """With --serve: corpus directory that receives every rollout (a new shard per round)."""
    queue_size: int = 64
    """With --serve: judged trajectories kept for learners; sampling pauses when full (rollouts age
    while they wait: a few learner steps' worth is enough)."""
    weights_dir: str | None = None
    """With --serve: also take weights by path, from safetensors files under this shared
    directory."""
    judge_jobs: int = 2
    """With --serve: parallel judge processes."""


SAMPLE = Options(Sample)
OPTIONS = Options(SampleOptions, {
    "n": Cli(("-n", "--n")),
    "temperature": Cli(("--temperature", "-t"), default=None, help="Sampling temperature (0 = greedy)."),
    "temperature_range": Cli(parse=partial(parse_range, lo=0.0), metavar="LO,HI",
                             help="LO,HI: each sample draws its temperature uniformly from [LO, HI] "
                                  "(online SPO). Excludes --temperature."),
    "stop": Cli(parse=lambda text, option: _unescape(text),
                help="Stop string (\\n and \\t understood): a sample ends with the token that "
                     "completes one (the token is kept)."),
    "use_chat_template": Cli(("--chat-template/--no-chat-template",)),
}, skip=("template", "source"))
SERVE = Options(Serve)


def main(**kw) -> None:
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
    from spo_cli.sampling import make_sampler
    from spo_cli.streams import ReadStats, open_writer, read_records

    if kw["temperature"] is not None and kw["temperature_range"] is not None:
        raise typer.BadParameter("give --temperature or --temperature-range, not both",
                                 param_hint="--temperature-range")
    args, out, reading, serve = SAMPLE.take(kw), WRITING.take(kw), READING.take(kw), SERVE.take(kw)
    runtime = RUNTIME.take(kw)
    template_text = None
    if args.template is not None:
        try:
            template_text = Path(args.template).read_text(encoding="utf-8")
        except OSError as e:
            raise BadInput(f"cannot read the template: {e.strerror}", path=args.template) from None
        if "{prompt}" not in template_text:
            raise BadInput("the template has no {prompt} placeholder", path=args.template)
    opts = OPTIONS.take(kw, template=template_text, source="ref" if args.ref else "online")
    runtime.apply()
    model, backend = args.model, runtime.backend

    def sampler():
        return make_sampler(backend, model, opts, device=runtime.device, dtype=runtime.dtype)

    if serve.serve:  # a long-running rollout worker (spo_cli/serve)
        from spo_cli.serve.server import run_worker

        run_worker(sampler, args.problems, host=serve.host, port=serve.port,
                   token=serve.token, weights_dir=serve.weights_dir, skip_invalid=reading.skip_invalid,
                   n=opts.n, rows=opts.batch_size, queue_size=serve.queue_size, seed=opts.seed,
                   judge_jobs=serve.judge_jobs, spool=serve.spool, reference=args.ref)
        return
    smp = sampler()
    info(f"spo sample: {backend} backend, model {model}, {opts.n} per problem")
    stats = ReadStats()
    written = 0
    with progress() as bar, open_writer(out.output, out.compress) as w:
        task = bar.add_task("sampling", total=None)
        for rec in smp.iter_sample(read_records(args.problems, "problem", skip_invalid=reading.skip_invalid,
                                              stats=stats)):
            w.write(rec)
            written += 1
            bar.advance(task)
    info(f"spo sample: {written} trajectories for {stats.records} problems")
    if stats.invalid:
        info(f"spo sample: {stats.summary()}")


main.__signature__ = signature(SAMPLE, WRITING, OPTIONS, RUNTIME, READING, SERVE)  # type: ignore[attr-defined]
