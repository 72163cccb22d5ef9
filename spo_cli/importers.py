"""Map the field layouts of public code benchmarks onto our Problem record.

`to_problem(row, lineno)` recognises a row by its fields and returns a Problem dict:

- ours: has `id` and `prompt` - passed through unchanged.
- CodeContests (HF deepmind/code_contests): `name`, `description`, `public_tests`,
  `private_tests`, `generated_tests` ({input: [...], output: [...]}), `solutions` /
  `incorrect_solutions` ({language: [...], solution: [...]}, Python 3 = language 3),
  `time_limit` ({seconds, nanos}), `memory_limit_bytes`.
- TACO (BAAI/TACO): `question`, `input_output` (a JSON string: {inputs, outputs[, fn_name]}),
  `solutions` (a JSON string: list of programs), `name` or row number for the id. With `fn_name`
  the tests are call-based: each input is a list of arguments, each output the return value.
- HumanEval (openai/human-eval): `task_id`, `prompt`, `test`, `entry_point`,
  `canonical_solution` (prompt + canonical_solution is a complete program).
- MBPP: `task_id`, `text`, `code`, `test_list`, `test_setup_code`, `challenge_test_list`.

Fields that do not map onto the Problem record are kept under `meta`, so nothing is lost.
"""

from __future__ import annotations

from typing import Any

import orjson

from spo_cli.errors import RecordError

CC_PYTHON3 = 3
CC_PYTHON2 = 1


def _cc_tests(block: Any, field: str) -> list[dict]:
    if block is None:
        return []
    if not isinstance(block, dict):
        raise RecordError(field, "must be an object {input: [...], output: [...]}")
    ins, outs = block.get("input") or [], block.get("output") or []
    if len(ins) != len(outs):
        raise RecordError(field, f"has {len(ins)} inputs but {len(outs)} outputs")
    return [{"input": i, "output": o} for i, o in zip(ins, outs)]


def _cc_solutions(block: Any, field: str) -> list[str]:
    """Python 3 programs of a CodeContests solutions block."""
    if not block:
        return []
    if isinstance(block, list):
        return [s for s in block if isinstance(s, str)]
    langs, sols = block.get("language") or [], block.get("solution") or []
    if len(langs) != len(sols):
        raise RecordError(field, f"has {len(langs)} languages but {len(sols)} solutions")
    return [s for lang, s in zip(langs, sols) if lang == CC_PYTHON3 or lang == "PYTHON3"]


def from_codecontests(row: dict) -> dict:
    public = _cc_tests(row.get("public_tests"), "public_tests")
    tests = public + _cc_tests(row.get("private_tests"), "private_tests") + _cc_tests(
        row.get("generated_tests"), "generated_tests"
    )
    tl = row.get("time_limit")
    time_limit = None
    if isinstance(tl, dict):
        time_limit = float(tl.get("seconds") or 0) + float(tl.get("nanos") or 0) / 1e9
    elif isinstance(tl, (int, float)):
        time_limit = float(tl)
    mem = row.get("memory_limit_bytes")
    consumed = {"name", "description", "public_tests", "private_tests", "generated_tests",
                "solutions", "incorrect_solutions", "time_limit", "memory_limit_bytes"}
    out: dict[str, Any] = {
        "id": str(row["name"]),
        "prompt": row["description"],
        "tests": tests,
        "public_tests": public,
        "solutions": _cc_solutions(row.get("solutions"), "solutions"),
        "incorrect_solutions": _cc_solutions(row.get("incorrect_solutions"), "incorrect_solutions"),
        "meta": {"format": "codecontests", **{k: v for k, v in row.items() if k not in consumed}},
    }
    if time_limit:
        out["time_limit"] = time_limit
    if mem:
        out["memory_limit_mb"] = max(1, int(mem) // (1 << 20))
    return out


def _json_field(row: dict, field: str) -> Any:
    v = row.get(field)
    if isinstance(v, str):
        if not v.strip():
            return None
        try:
            return orjson.loads(v)
        except orjson.JSONDecodeError as e:
            raise RecordError(field, f"is not valid JSON ({e})") from None
    return v


def _as_text(v: Any) -> str:
    if isinstance(v, str):
        return v
    if isinstance(v, list):
        return "\n".join(str(x) for x in v)
    return str(v)


def from_taco(row: dict, lineno: int) -> dict:
    io_spec = _json_field(row, "input_output") or {}
    if not isinstance(io_spec, dict):
        raise RecordError("input_output", "must decode to an object {inputs, outputs}")
    ins, outs = io_spec.get("inputs") or [], io_spec.get("outputs") or []
    if len(ins) != len(outs):
        raise RecordError("input_output", f"has {len(ins)} inputs but {len(outs)} outputs")
    fn_name = io_spec.get("fn_name")
    if fn_name:
        # Call-based: arguments and expected value as JSON text, decoded by the judge.
        tests = [{"input": orjson.dumps(i).decode(), "output": orjson.dumps(o).decode()}
                 for i, o in zip(ins, outs)]
    else:
        tests = [{"input": _as_text(i), "output": _as_text(o)} for i, o in zip(ins, outs)]
    sols = _json_field(row, "solutions") or []
    pid = row.get("name") or row.get("id") or f"taco-{lineno}"
    consumed = {"question", "input_output", "solutions", "name", "id", "time_limit", "memory_limit"}
    out: dict[str, Any] = {
        "id": str(pid),
        "prompt": row["question"],
        "tests": tests,
        "solutions": [s for s in sols if isinstance(s, str)],
        "meta": {"format": "taco", **{k: v for k, v in row.items() if k not in consumed}},
    }
    if fn_name:
        out["fn_name"] = fn_name
    tl = row.get("time_limit")
    if isinstance(tl, str):  # "2 seconds", "1.5 s"
        num = "".join(c for c in tl.split()[0] if c.isdigit() or c == ".") if tl.split() else ""
        tl = float(num) if num else None
    if isinstance(tl, (int, float)) and tl > 0:
        out["time_limit"] = float(tl)
    mem = row.get("memory_limit")
    if isinstance(mem, str) and mem.split():
        digits = "".join(c for c in mem.split()[0] if c.isdigit())
        if digits:
            out["memory_limit_mb"] = int(digits)
    return out


def from_humaneval(row: dict) -> dict:
    consumed = {"task_id", "prompt", "test", "entry_point", "canonical_solution"}
    out = {
        "id": str(row["task_id"]),
        "prompt": row["prompt"],
        "test_code": row["test"],
        "entry_point": row["entry_point"],
        "meta": {"format": "humaneval", **{k: v for k, v in row.items() if k not in consumed}},
    }
    if row.get("canonical_solution"):
        out["solutions"] = [row["prompt"] + row["canonical_solution"]]
    return out


def from_mbpp(row: dict) -> dict:
    setup = row.get("test_setup_code") or ""
    asserts = list(row.get("test_list") or []) + list(row.get("challenge_test_list") or [])
    test_code = (setup + "\n" if setup else "") + "\n".join(asserts) + "\n"
    consumed = {"task_id", "text", "prompt", "code", "test_list", "test_setup_code", "challenge_test_list"}
    text = row.get("text") or row.get("prompt")
    if not isinstance(text, str):
        raise RecordError("text", "missing (the MBPP problem statement)")
    out = {
        "id": str(row["task_id"]),
        # MBPP's statement does not name the function; the first test shows its signature.
        "prompt": text + ("\n" + row["test_list"][0] if row.get("test_list") else ""),
        "test_code": test_code,
        "entry_point": None,
        "meta": {"format": "mbpp", **{k: v for k, v in row.items() if k not in consumed}},
    }
    if row.get("code"):
        out["solutions"] = [row["code"]]
    return out


def detect_format(row: dict) -> str:
    """Which layout a row is in: ours, codecontests, taco, humaneval or mbpp."""
    if "id" in row and "prompt" in row:
        return "spo"
    if "description" in row and "name" in row and ("public_tests" in row or "private_tests" in row):
        return "codecontests"
    if "question" in row and "input_output" in row:
        return "taco"
    if "task_id" in row and "entry_point" in row and "test" in row:
        return "humaneval"
    if "task_id" in row and "test_list" in row:
        return "mbpp"
    return "unknown"


def to_problem(row: Any, lineno: int) -> dict:
    """The Problem record for a row of any supported layout (validated by the caller)."""
    if not isinstance(row, dict):
        raise RecordError(None, f"a problem must be a JSON object, got {type(row).__name__}")
    fmt = detect_format(row)
    if fmt == "spo":
        return row
    if fmt == "codecontests":
        return from_codecontests(row)
    if fmt == "taco":
        return from_taco(row, lineno)
    if fmt == "humaneval":
        return from_humaneval(row)
    if fmt == "mbpp":
        return from_mbpp(row)
    raise RecordError(None, "not a problem in any known layout (spo: id+prompt; CodeContests: "
                            "name+description+tests; TACO: question+input_output; HumanEval: "
                            "task_id+prompt+test+entry_point; MBPP: task_id+text+test_list)")
