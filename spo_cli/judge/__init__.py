"""The judge: runs untrusted programs against a problem's tests, isolated; the reward of SPO.

Library API (what `spo judge`, the trainer and `spo sample --serve` call):

    from spo_cli.judge import JudgeOptions, judge_response, judge_stream, SandboxPool
    fields = judge_response(problem, response, JudgeOptions(partial=True))
    for traj in judge_stream(trajectories, problems_by_id, JudgeOptions(), jobs=8): ...

    from spo_cli.judge.client import Judge, open_pool, rollouts   # what callers judge with
    from spo_cli.judge.outcome import outcome, is_success         # success / failure / JE / unjudged

Modules: client (the memoising Judge, the one way to open a pool, "sample, judge, drop judge
errors"), outcome (the one answer to "is this record judged, a judge error, a success"), extract (program out of a response), compare (CodeContests output rule, exact
integers), plain (the plain-data codec every value crosses the sandbox boundary in), memory (how
a run's memory is counted: cgroup v2, cgroup v1, one address space), sandbox (the judge's side of
the isolated runners), zygote (the runner itself, a standalone script: the program's process
and, for assert-style tests, the tester's), runner (test plans, verdicts, parallel streaming).

Where this departs from the paper: the paper takes the reward as given (pass/fail of the tests).
Here a judge error (JE: the sandbox failed, not the program) gives reward null, so a trainer can
drop the sample instead of learning from a failure that was not the policy's.
"""

# The names below load their modules on first use (PEP 562), so importing spo_cli.judge.outcome
# or spo_cli.judge.compare does not pay for the sandbox machinery.
_EXPORTS = {
    "JudgeOptions": "runner", "MissingProblem": "runner", "SandboxPool": "runner",
    "default_pool": "runner", "judge_response": "runner", "judge_stream": "runner",
    "make_plan": "runner", "SandboxUnavailable": "sandbox", "probe": "sandbox",
    "extract_program": "extract", "outputs_match": "compare",
    "Judge": "client", "open_pool": "client", "rollouts": "client",
    "outcome": "outcome", "is_success": "outcome",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'spo_cli.judge' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(f"spo_cli.judge.{module}"), name)
    globals()[name] = value
    return value
