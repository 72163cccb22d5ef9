"""The record layouts: Problem, Trajectory, Value (DESIGN.md, "Records").

Records are plain dicts, one JSON object per line. This module is the one place that spells out
which fields each record has, their types, and what they mean; validation names the field and the
reason. Unknown fields are never touched: they pass through every stage.

Validation is deliberately cheap (key presence and isinstance checks, no copies), because it runs
on every record read; the I/O benchmark (bench/io.py) holds it to 0.8x of a bare decode loop.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from spo_cli.errors import RecordError

VERDICTS = ("OK", "WA", "TLE", "MLE", "RE", "CE", "JE")
"""Judge verdicts: accepted, wrong answer, time/memory limit, runtime error, compile (syntax)
error, and JE for the judge's own failures (never the program's fault)."""

SOURCES = ("ref", "online", "offline", "human", "pts", "pts-rollout")
"""Known trajectory sources; others are allowed (a corpus may carry its own labels)."""

_NUM = (int, float)
_NONE = type(None)


@dataclass(frozen=True)
class Field:
    name: str
    types: tuple[type, ...]
    required: bool
    doc: str
    check: Callable[[Any], str | None] | None = None  # returns a reason when the value is bad


def _unit_interval_or_none(v: Any) -> str | None:
    if v is None or 0.0 <= v <= 1.0:  # NaN fails the comparison
        return None
    return f"must be in [0, 1], got {v!r}"


def _positive(v: Any) -> str | None:
    if v is None:
        return None
    return None if v > 0 else f"must be > 0, got {v!r}"


def _tests_list(v: Any) -> str | None:
    for t in v:  # exact types first, twice as fast: a problem may hold hundreds of tests
        if type(t) is not dict or type(t.get("input")) is not str or type(t.get("output")) is not str:
            break
    else:
        return None
    for i, t in enumerate(v):  # subclasses pass here; anything else gets its reason
        if not isinstance(t, dict):
            return f"item {i} must be an object with 'input' and 'output'"
        if not isinstance(t.get("input"), str) or not isinstance(t.get("output"), str):
            return f"item {i} needs string 'input' and 'output'"
    return None


def _str_list(v: Any) -> str | None:
    for i, s in enumerate(v):
        if not isinstance(s, str):
            return f"item {i} must be a string"
    return None


def _messages(v: Any) -> str | None:
    for i, m in enumerate(v):
        if not isinstance(m, dict) or not isinstance(m.get("role"), str) or not isinstance(
            m.get("content"), str
        ):
            return f"item {i} must be {{'role': str, 'content': str}}"
    return None


def _mc(v: Any) -> str | None:
    if v is None:
        return None
    for i, e in enumerate(v):
        if not isinstance(e, (list, tuple)) or len(e) != 3:
            return f"item {i} must be [token_index, p_hat, n_rollouts]"
        if not isinstance(e[0], int) or e[0] < 0:
            return f"item {i}: token_index must be an integer >= 0"
        if not isinstance(e[1], _NUM) or not 0.0 <= e[1] <= 1.0:
            return f"item {i}: p_hat must be in [0, 1]"
    return None


def _verdict(v: Any) -> str | None:
    if v is None or v in VERDICTS:
        return None
    return f"must be one of {', '.join(VERDICTS)} or null, got {v!r}"


PROBLEM_FIELDS: tuple[Field, ...] = (
    Field("id", (str,), True, "Unique problem id (from the source: CodeContests/TACO name, HumanEval/MBPP task_id)."),
    Field("prompt", (str, list), True, "Text shown to the model, or chat messages [{role, content}]."),
    Field("tests", (list,), False, "stdin/stdout tests [{input, output}] (all used for judging), or call tests with fn_name.", _tests_list),
    Field("public_tests", (list,), False, "The examples shown in the statement, a subset of tests.", _tests_list),
    Field("test_code", (str,), False, "Assert-style test code (HumanEval check(candidate), MBPP asserts)."),
    Field("entry_point", (str, _NONE), False, "Function that test_code's check() is called with."),
    Field("fn_name", (str, _NONE), False, "Call-based tests (TACO): each test input is a JSON list of arguments."),
    Field("time_limit", _NUM, False, "Seconds per test.", _positive),
    Field("memory_limit_mb", _NUM, False, "Memory limit in MiB.", _positive),
    Field("solutions", (list,), False, "Known-good Python 3 programs.", _str_list),
    Field("incorrect_solutions", (list,), False, "Known-bad Python 3 programs.", _str_list),
    Field("packages", (list,), False, "Installed packages (top-level module names) the judge lets this problem's programs import beyond the standard library.", _str_list),
    Field("meta", (dict,), False, "Anything else from the source."),
)

TRAJECTORY_FIELDS: tuple[Field, ...] = (
    Field("id", (str,), True, "Content hash of problem id + response (see trajectory_id), for dedup."),
    Field("problem_id", (str,), True, "The Problem this answers."),
    Field("prompt", (str, list), True, "The prompt as given to the policy (text or chat messages)."),
    Field("response", (str,), True, "The policy's (or human's) answer."),
    Field("prompt_ids", (list, _NONE), False, "Token ids of the formatted prompt."),
    Field("response_ids", (list, _NONE), False, "Token ids of the response."),
    Field("tokenizer", (str, _NONE), False, "Fingerprint of the tokenizer the ids belong to."),
    Field("logprobs", (list, _NONE), False, "Behaviour policy log-prob of each response token (raw model, T=1)."),
    Field("ref_logprobs", (list, _NONE), False, "Cached reference-policy log-prob of each response token."),
    Field("reward", _NUM + (_NONE,), False, "0..1, null until judged.", _unit_interval_or_none),
    Field("verdict", (str, _NONE), False, "Judge verdict: " + ", ".join(VERDICTS) + ".", _verdict),
    Field("tests_passed", (int, _NONE), False, "Tests passed."),
    Field("tests_total", (int, _NONE), False, "Tests run or available."),
    Field("judge", (dict, _NONE), False, "How it was judged: sandbox in force, time_s, cpu_s, runs, failed_test, detail."),
    Field("source", (str, _NONE), False, "Where it came from: " + ", ".join(SOURCES) + ", ..."),
    Field("policy_version", (int, _NONE), False, "Learner step of the weights that sampled it."),
    Field("sampler", (dict, _NONE), False, "How it was sampled: model, temperature, top_p, seed (+ index, backend, max_new_tokens; from rollout workers also worker, seq, lineage)."),
    Field("finish_reason", (str, _NONE), False, "Why sampling ended: stop (EOS or a stop string) or length."),
    Field("mc", (list, _NONE), False, "Monte-Carlo targets [[token_index, p_hat, n_rollouts], ...].", _mc),
    Field("pivotal", (list, _NONE), False, "PTS: pivotal tokens [{index, token_id, token, p_before, p_after, delta}]."),
    Field("pts", (dict, _NONE), False, "PTS: what the search did (rollouts used, budget exhausted, ...)."),
    Field("created", _NUM + (str, _NONE), False, "Unix time of creation."),
)

VALUE_FIELDS: tuple[Field, ...] = (
    Field("problem_id", (str,), True, "The Problem this value is for."),
    Field("v", _NUM, True, "Soft value V_hat(x0) = beta log mean exp(r/beta)."),
    Field("p_hat", _NUM + (_NONE,), False, "Success rate of the K samples (binary rewards).", _unit_interval_or_none),
    Field("k", (int,), True, "Number of samples."),
    Field("beta", _NUM, True, "Temperature of the soft value.", _positive),
    Field("stderr", _NUM + (_NONE,), False, "Standard error of v."),
    Field("judge_errors", (int, _NONE), False, "Samples left out because the judge failed (JE)."),
    Field("fallback", (bool, _NONE), False, "True when v is the configured fallback, not an estimate."),
    Field("estimated_on_demand", (bool, _NONE), False, "True when spo train estimated it on first use."),
)

KINDS: dict[str, tuple[Field, ...]] = {
    "problem": PROBLEM_FIELDS,
    "trajectory": TRAJECTORY_FIELDS,
    "value": VALUE_FIELDS,
}

# Precomputed (name, types, required, check) tuples: validation is on the hot path of every read.
_PLAN = {
    kind: tuple((f.name, f.types, f.required, f.check) for f in fields) for kind, fields in KINDS.items()
}


def _type_names(types: tuple[type, ...]) -> str:
    names = {int: "integer", float: "number", str: "string", list: "array", dict: "object", _NONE: "null"}
    return " or ".join(dict.fromkeys(names.get(t, t.__name__) for t in types))


_SHAPE_CACHE_MAX = 4096  # distinct (keys, types) shapes remembered per kind; records of one writer share a few


def _compile_fast_check(kind: str) -> Callable[[dict], bool]:
    """A check that is True when a record of `kind` is certainly valid; any doubt (False) falls
    through to the generic loop in `validate`, which also produces the error message.

    Built from the field table, so it cannot drift from it. The type part is decided once per
    record *shape* — the tuple of its keys and the exact types of their values, which records
    from one writer share — and remembered; per record that costs two C-level tuple builds and
    a dict lookup. Only the value checks (reward in [0, 1], verdict, mc) then run per record.
    Exact types: True is a bool, so it never passes as an int."""
    plan = _PLAN[kind]
    allowed = {name: frozenset(types) for name, types, _, _ in plan}
    required = frozenset(name for name, _, req, _ in plan if req)
    need_tests = kind == "problem"

    def shape_ok(keys: tuple, types: tuple) -> bool:
        if not required.issubset(keys) or (need_tests and "tests" not in keys and "test_code" not in keys):
            return False
        return all(allowed[k].__contains__(t) for k, t in zip(keys, types) if k in allowed)

    # The value checks, as one generated expression over the fields that have one.
    env: dict[str, Any] = {}
    terms = []
    for i, (name, _, _, check) in enumerate(plan):
        if check is None:
            continue
        if check is _unit_interval_or_none:
            terms.append(f"((v{i} := g({name!r})) is None or 0.0 <= v{i} <= 1.0)")
        else:
            env[f"C{i}"] = check
            terms.append(f"((v{i} := g({name!r})) is None or C{i}(v{i}) is None)")
    src = "def values_ok(r):\n    g = r.get\n    return (" + "\n            and ".join(terms or ["True"]) + ")"
    exec(src, env)  # noqa: S102 - code built from our own field table only
    values_ok = env["values_ok"]
    shapes: dict[tuple, bool] = {}

    def fast(r: dict) -> bool:
        shape = (tuple(r), tuple(map(type, r.values())))
        ok = shapes.get(shape)
        if ok is None:
            ok = shape_ok(*shape)
            if len(shapes) < _SHAPE_CACHE_MAX:
                shapes[shape] = ok
        return ok and values_ok(r)

    return fast


def validate(record: Any, kind: str) -> dict:
    """Check `record` against the layout of `kind`; return it unchanged, or raise RecordError."""
    fast = _FAST.get(kind)
    if fast is not None and type(record) is dict and fast(record):
        return record
    return _validate_field_by_field(record, kind)


def _validate_field_by_field(record: Any, kind: str) -> dict:
    """The generic check behind `validate`: the first problem found is raised with its reason."""
    if not isinstance(record, dict):
        raise RecordError(None, f"a {kind} record must be a JSON object, got {type(record).__name__}")
    for name, types, required, check in _PLAN[kind]:
        if name not in record:
            if required:
                raise RecordError(name, "missing")
            continue
        value = record[name]
        if not isinstance(value, types) or (isinstance(value, bool) and bool not in types):
            raise RecordError(name, f"must be {_type_names(types)}, got {type(value).__name__}")
        if check is not None:
            reason = check(value)
            if reason:
                raise RecordError(name, reason)
    if kind == "problem":
        _check_problem_tests(record)
    return record


_FAST = {kind: _compile_fast_check(kind) for kind in _PLAN}


def _check_problem_tests(record: dict) -> None:
    if "tests" not in record and "test_code" not in record:
        raise RecordError("tests", "missing (a problem needs 'tests' or 'test_code')")


def validate_problem(record: Any) -> dict:
    return validate(record, "problem")


def validate_trajectory(record: Any) -> dict:
    return validate(record, "trajectory")


def validate_value(record: Any) -> dict:
    return validate(record, "value")


def trajectory_id(problem_id: str, response: str) -> str:
    """Content hash of problem id and response: the same answer to the same problem dedups,
    whoever produced it and however often."""
    h = hashlib.blake2b(digest_size=16)
    h.update(problem_id.encode("utf-8", "surrogatepass"))
    h.update(b"\x00")
    h.update(response.encode("utf-8", "surrogatepass"))
    return h.hexdigest()


def new_trajectory(*, problem_id: str, prompt: str | list, response: str, **fields: Any) -> dict:
    """A Trajectory record with its id and creation time set; other fields as given.

    Unjudged trajectories carry reward/verdict null, so a reader can tell "not judged" from "0".
    """
    rec: dict[str, Any] = {
        "id": trajectory_id(problem_id, response),
        "problem_id": problem_id,
        "prompt": prompt,
        "response": response,
        "reward": None,
        "verdict": None,
    }
    rec.update(fields)
    rec.setdefault("created", round(time.time(), 3))
    return rec


def new_value(*, problem_id: str, v: float, k: int, beta: float, p_hat: float | None = None,
              stderr: float | None = None, **fields: Any) -> dict:
    rec = {"problem_id": problem_id, "v": v, "p_hat": p_hat, "k": k, "beta": beta, "stderr": stderr}
    rec.update(fields)
    return rec


def prompt_text(prompt: str | list) -> str:
    """The prompt as plain text (chat messages joined), for places that need a string."""
    if isinstance(prompt, str):
        return prompt
    return "\n\n".join(m.get("content", "") for m in prompt)


def describe(kind: str) -> str:
    """A human-readable table of a record's fields (used by `spo records schema`)."""
    lines = []
    for f in KINDS[kind]:
        req = "required" if f.required else "optional"
        lines.append(f"{f.name:20} {_type_names(f.types):26} {req:9} {f.doc}")
    return "\n".join(lines)
