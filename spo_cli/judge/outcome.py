"""What a record's judging came to: the one answer to "is it judged, a judge error, a success".

The judge (runner.judge_response) writes `reward` and `verdict` into a trajectory; `spo sample`
writes both as null. From those two fields a record is one of:

- success      reward is SUCCESS (1.0: every test passed; docs/math.md §1, r_max = 1), within
               SUCCESS_TOL so that a partial reward summed from fractions still counts;
- failure      any other reward (0 for the binary judge, passed/total with --partial);
- judge_error  reward null and a verdict (the judge writes JE: the sandbox failed, not the
               program). Any verdict with a null reward counts as one, so a record that the judge
               could not score is never read as a failure or as unjudged;
- unjudged     reward and verdict both null: nobody has judged it yet.

Successes and failures are *usable* (they have a reward to learn from, estimate with or count);
judge errors are left out and counted by every caller; an unjudged record where a judged one is
needed is bad input (`judged_reward`).
"""

from __future__ import annotations

from typing import Any

from spo_cli.errors import BadInput

SUCCESS = 1.0  # the reward of a response that passed every test
SUCCESS_TOL = 1e-9  # float slack when comparing a reward with SUCCESS

SUCCEEDED, FAILED, JUDGE_ERROR, UNJUDGED = "success", "failure", "judge_error", "unjudged"
OUTCOMES = (SUCCEEDED, FAILED, JUDGE_ERROR, UNJUDGED)


def is_success(reward: Any) -> Any:
    """Is a reward a success? Works elementwise on a numpy array of rewards too.

    >>> is_success(1.0), is_success(1.0 - 1e-12), is_success(0.9), is_success(0)
    (True, True, False, False)
    """
    return reward >= SUCCESS - SUCCESS_TOL


def outcome(record: dict) -> str:
    """One of OUTCOMES ("success", "failure", "judge_error", "unjudged") for a trajectory.

    >>> outcome({"reward": 1.0, "verdict": "OK"}), outcome({"reward": 0.0, "verdict": "WA"})
    ('success', 'failure')
    >>> outcome({"reward": None, "verdict": "JE"}), outcome({"reward": None, "verdict": None})
    ('judge_error', 'unjudged')
    """
    reward = record.get("reward")
    if reward is None:
        return UNJUDGED if record.get("verdict") is None else JUDGE_ERROR
    return SUCCEEDED if is_success(reward) else FAILED


def is_usable(record: dict) -> bool:
    """Does the record carry a reward (a success or a failure, not a judge error or unjudged)?"""
    return record.get("reward") is not None


def judged_reward(record: dict, n: int | None = None) -> float | None:
    """The reward of a record that must have been through the judge: a number, or None for a
    judge error (the caller counts it and leaves it out). An unjudged record raises BadInput;
    `n` (1-based position in the input) goes into the message when given.

    >>> judged_reward({"reward": 0.5}), judged_reward({"reward": None, "verdict": "JE"})
    (0.5, None)
    """
    reward = record.get("reward")
    if reward is None and record.get("verdict") is None:
        where = f"trajectory {n} (id {record.get('id')!r}, " if n is not None else \
            f"trajectory {record.get('id')!r} ("
        raise BadInput(f"{where}problem {record.get('problem_id')!r}) is not judged (reward and "
                       "verdict null): run it through `spo judge` first")
    return reward
