"""`spo judge`: run every response against its problem's tests, isolated (thin layer over
spo_cli.judge)."""

from __future__ import annotations

import os
from typing import Optional

import typer

from spo_cli.commands._options import Compress, Output, SkipInvalid


def main(
    trajectories: str = typer.Argument("-", help="Trajectories: file, shard directory, glob or - for stdin."),
    problems: str = typer.Option(..., "--problems", "-p", help="Problems the trajectories answer, joined by problem_id (CodeContests/TACO/HumanEval/MBPP rows accepted)."),
    output: str = Output,
    jobs: Optional[int] = typer.Option(None, "--jobs", "-j", help="Programs run in parallel (default: the number of CPU cores)."),
    partial: bool = typer.Option(False, "--partial", help="Reward = fraction of tests passed (runs all tests) instead of 1/0."),
    all_tests: bool = typer.Option(False, "--all-tests", help="Run every test, not only up to the first failure."),
    strict: bool = typer.Option(False, "--strict", help="Byte-exact output comparison instead of CodeContests' token rule."),
    time_scale: float = typer.Option(1.0, "--time-scale", help="Multiply every problem's time limit by this."),
    default_time_limit: float = typer.Option(3.0, "--default-time-limit", help="Seconds per test for problems that give no time limit."),
    default_memory_mb: int = typer.Option(512, "--default-memory-mb", help="Memory limit (MiB) for problems that give none."),
    no_extract: bool = typer.Option(False, "--no-extract", help="Run the response as it is, without taking the program out of markdown code fences."),
    unsafe_no_isolation: bool = typer.Option(False, "--unsafe-no-isolation", help="Where Linux namespaces are unavailable, run programs with rlimits only. UNSAFE: programs can then reach the network and write files."),
    python: Optional[str] = typer.Option(None, "--python", help="Interpreter for the programs (default: the base interpreter of the one running spo, never its virtual environment)."),
    sandbox: str = typer.Option("auto", "--sandbox", help="auto (the strongest that works here), namespaces (spo's own) or bwrap (bubblewrap)."),
    memory_accounting: str = typer.Option("auto", "--memory-accounting", help="How a run's memory is counted: auto (the strongest here), cgroup2, cgroup1, or rlimit (one address space per run: programs may not start processes)."),
    output_limit_mb: int = typer.Option(32, "--output-limit-mb", help="stdout + stderr a run may write (MiB); more is WA. The same for every test."),
    allow_package: list[str] = typer.Option([], "--allow-package", help="Make this installed package importable in the sandbox (repeatable; its dependencies must be allowed too). Problems may allow more with their `packages` field. Nothing beyond the standard library is importable otherwise."),
    skip_invalid: bool = SkipInvalid,
    compress: Optional[str] = Compress,
) -> None:
    """Judge trajectories: run each response against its problem's tests, write them back with
    reward, verdict, tests_passed, tests_total and `judge` (sandbox in force, timing, detail).

    Verdicts: OK, WA, TLE, MLE, RE, CE (does not compile), JE (the judge failed, not the
    program: reward null). Reward 1 when all tests pass, else 0 (--partial: fraction passed).
    Tests: stdin/stdout (CodeContests, TACO), call-based (TACO fn_name), assert-style
    (HumanEval check(), MBPP asserts). Output is compared as CodeContests does (whitespace
    tokens, case-insensitive, floats within 1e-5) unless --strict.

    Every run is isolated: pid, mount, network, IPC and UTS namespaces (set up by spo itself, or
    by bubblewrap where only it may create them), a read-only root, a private /tmp, seccomp,
    rlimits, an unprivileged uid when run as root; everything a run started is killed when it
    ends. spo judge refuses to run without namespaces unless --unsafe-no-isolation is given.
    The mechanism in force (judge.sandbox) and the memory accounting (judge.memory) are printed
    and recorded in each trajectory. Output order = input order.

    What the judge guarantees (with isolation):

    - Verdicts come from trusted code only: outputs and return values are compared outside
    the sandbox; assert-style tests run in a separate sandboxed process that calls the
    program's functions and gets plain data back (builtin types, rebuilt outside the
    program). Nothing a program writes, returns or patches can make a failing test pass.

    - A program never sees the tests' code or expected outputs, nor any earlier run's data or
    processes; its limits do not depend on the expected output. (One tester serves a runner's
    assert-style runs in turn: it runs no program code, and is replaced whenever a run could
    have disturbed it; SPO_JUDGE_TESTER_RUNS=1 forks one per run.)

    - Only the standard library is importable, plus what --allow-package or the problem's
    `packages` field allow.

    - Memory is limited per run (all its processes, tmpfs, memfds): cgroups where writable,
    else one address space per run.

    - A program cannot end the judge or cause a judge error (JE): every trajectory gets a
    verdict, the output is written, the exit code is 0.

    - An integer in the expected output matches only the same integer.

    What it does not guarantee: that the tests are good (a weak test passes wrong programs);
    that assert-style tests behave exactly as in one process (arguments and return values are
    copied, so in-place changes to arguments are not seen by the tests, and a test that passes
    its own callables to the program fails); protection beyond what Linux namespaces and
    seccomp give against a kernel exploit; memory accounting of kernel buffers (pipes, sockets)
    in the rlimit mode. Programs may not call setsid or setpgid (EPERM): a run's processes stay
    in the group the judge kills.

    Example: spo sample -m ckpt -p problems.jsonl -n 8 | spo judge -p problems.jsonl -o traj.jsonl.zst
    """
    from collections import Counter

    from rich.progress import TextColumn

    from spo_cli.console import err, info, progress, quiet, warn
    from spo_cli.errors import BadInput
    from spo_cli.judge import JudgeOptions, MissingProblem, judge_stream
    from spo_cli.judge.client import open_pool
    from spo_cli.streams import ReadStats, index_by, open_writer, read_records

    if sandbox not in ("auto", "namespaces", "bwrap"):
        raise typer.BadParameter("choose auto, namespaces or bwrap", param_hint="--sandbox")
    if time_scale <= 0:
        raise typer.BadParameter("must be > 0", param_hint="--time-scale")
    if jobs is not None and jobs < 1:
        raise typer.BadParameter("must be >= 1", param_hint="--jobs")
    if output_limit_mb < 1:
        raise typer.BadParameter("must be >= 1", param_hint="--output-limit-mb")
    from spo_cli.judge.memory import CHOICES
    from spo_cli.judge.sandbox import package_binds

    if memory_accounting not in CHOICES:
        raise typer.BadParameter(f"choose {', '.join(CHOICES)}", param_hint="--memory-accounting")
    try:
        package_binds(allow_package)
    except ValueError as e:
        raise typer.BadParameter(str(e), param_hint="--allow-package") from None
    jobs = jobs or os.cpu_count() or 1
    opts = JudgeOptions(
        partial=partial, all_tests=all_tests, strict=strict, time_scale=time_scale,
        default_time_limit=default_time_limit, default_memory_mb=default_memory_mb,
        extract=not no_extract, unsafe_no_isolation=unsafe_no_isolation, python=python,
        sandbox=sandbox, memory=memory_accounting, output_limit_mb=output_limit_mb,
        allow_packages=tuple(allow_package),
    )
    pstats = ReadStats()
    by_id = index_by(read_records(problems, "problem", skip_invalid=skip_invalid, stats=pstats),
                     "id", "problem")
    pool = open_pool(opts, jobs)
    if pool.isolation == "none":
        warn("=" * 72)
        warn("NO ISOLATION: programs run with rlimits only (--unsafe-no-isolation). They can")
        warn("reach the network, write files and leave processes behind.")
        warn(f"Namespaces failed because: {pool.unsafe_reason}")
        warn("=" * 72)
    info(f"spo judge: {len(by_id)} problems, {jobs} jobs")
    if not quiet():
        err.print(f"spo judge: sandbox {pool.mechanism}, memory {pool.memory}", soft_wrap=True,
                  markup=False)
    counts: Counter = Counter()
    tstats = ReadStats()
    try:
        with progress(TextColumn("{task.fields[verdicts]}")) as bar, \
                open_writer(output, compress) as w:
            task = bar.add_task("judging", total=None, verdicts="")
            trajs = read_records(trajectories, "trajectory", skip_invalid=skip_invalid,
                                 stats=tstats)
            try:
                for rec in judge_stream(trajs, by_id, opts, jobs, pool=pool):
                    w.write(rec)
                    counts[rec["verdict"]] += 1
                    bar.update(task, advance=1, verdicts=" ".join(
                        f"{v} {counts[v]}" for v in ("OK", "WA", "TLE", "MLE", "RE", "CE", "JE")
                        if counts[v]))
            except MissingProblem as e:
                raise BadInput(str(e), path=trajectories if trajectories != "-" else "<stdin>",
                               line=None) from None
    finally:
        pool.close()
    total = sum(counts.values())
    summary = ", ".join(f"{v} {n}" for v, n in counts.most_common())
    info(f"spo judge: {total} trajectories judged ({summary or 'none'})")
    for st in (pstats, tstats):
        if st.invalid:
            info(f"spo judge: {st.summary()}")
    if counts["JE"]:
        warn(f"{counts['JE']} judge errors (JE): the sandbox failed, not the program; their reward is null")
