"""The judge: runs untrusted programs against a problem's tests, isolated; the reward of SPO.

Library API (what `spo judge`, the trainer and `spo sample --serve` call):

    from spo_cli.judge import JudgeOptions, judge_response, judge_stream, SandboxPool
    fields = judge_response(problem, response, JudgeOptions(partial=True))
    for traj in judge_stream(trajectories, problems_by_id, JudgeOptions(), jobs=8): ...

Modules: extract (program out of a response), compare (CodeContests output rule, exact
integers), plain (the plain-data codec every value crosses the sandbox boundary in), memory (how
a run's memory is counted: cgroup v2, cgroup v1, one address space), sandbox (the judge's side of
the isolated runners), zygote (the runner itself, a standalone script: the program's process
and, for assert-style tests, the tester's), runner (test plans, verdicts, parallel streaming).

Where this departs from the paper: the paper takes the reward as given (pass/fail of the tests).
Here a judge error (JE: the sandbox failed, not the program) gives reward null, so a trainer can
drop the sample instead of learning from a failure that was not the policy's.
"""

from spo_cli.judge.compare import outputs_match
from spo_cli.judge.extract import extract_program
from spo_cli.judge.runner import (
    JudgeOptions,
    MissingProblem,
    SandboxPool,
    default_pool,
    judge_response,
    judge_stream,
    make_plan,
)
from spo_cli.judge.sandbox import SandboxUnavailable, probe

__all__ = [
    "JudgeOptions",
    "MissingProblem",
    "SandboxPool",
    "SandboxUnavailable",
    "default_pool",
    "extract_program",
    "judge_response",
    "judge_stream",
    "make_plan",
    "outputs_match",
    "probe",
]
