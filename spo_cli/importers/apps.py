"""APPS (codeparrot/apps) and TACO (BAAI/TACO) rows as Problem records.

Both datasets share a layout: `question`; `input_output`, a JSON string {inputs, outputs[, fn_name]};
`solutions`, a JSON string of a list of Python programs; `starter_code`; `difficulty`; `url`.
APPS adds `problem_id` (an integer, the same numbers in its train and test splits); TACO adds
`name`, `source`, `tags`, `skill_types`, `raw_tags`, `date`, `picture_num`, `time_limit`
("2 seconds"), `memory_limit` ("256 megabytes"), `Expected Time Complexity`, `Expected Auxiliary
Space`.

Mapped: question (+ the starter code, when there is one: it holds the signature a call-based
answer must have) -> prompt; input_output -> tests: stdin/stdout text, or with `fn_name` call-based
tests whose input is the JSON list of arguments and whose output the JSON of the return value
(TACO and APPS often wrap it in a one-element list; the judge accepts either); fn_name -> fn_name;
solutions -> solutions; TACO's time_limit and memory_limit -> seconds and MiB. The id: APPS
`apps-<problem_id>`, TACO `name` (else `id`, else `taco-<row number>`). Every other field is kept
under meta as it is.

Skipped (counted): a problem whose input_output is empty or holds no tests (part of APPS's test
split and of TACO has none).
"""

from __future__ import annotations

from typing import Any

import orjson

from spo_cli.errors import RecordError, Unusable
from spo_cli.importers._common import as_text, json_field, meta, with_starter_code


def _io_tests(row: dict) -> tuple[list[dict], str | None]:
    """(tests, fn_name) from the input_output field."""
    io_spec = json_field(row, "input_output") or {}
    if not isinstance(io_spec, dict):
        raise RecordError("input_output", "must decode to an object {inputs, outputs}")
    ins, outs = io_spec.get("inputs") or [], io_spec.get("outputs") or []
    if not isinstance(ins, list) or not isinstance(outs, list):
        raise RecordError("input_output", "inputs and outputs must be lists")
    if len(ins) != len(outs):
        raise RecordError("input_output", f"has {len(ins)} inputs but {len(outs)} outputs")
    fn_name = io_spec.get("fn_name") or None
    if fn_name is not None and not isinstance(fn_name, str):
        raise RecordError("input_output", f"fn_name must be a string, got {type(fn_name).__name__}")
    if fn_name:
        # Call-based: arguments and expected value as JSON text, decoded by the judge.
        tests = [{"input": orjson.dumps(i).decode(), "output": orjson.dumps(o).decode()}
                 for i, o in zip(ins, outs)]
    else:
        tests = [{"input": as_text(i), "output": as_text(o)} for i, o in zip(ins, outs)]
    if not tests:
        raise Unusable("no tests (input_output is empty)")
    return tests, fn_name


def _solutions(row: dict) -> list[str]:
    sols = json_field(row, "solutions") or []
    if not isinstance(sols, list):
        raise RecordError("solutions", "must decode to a list of programs")
    return [s for s in sols if isinstance(s, str)]


def _problem(fmt: str, pid: str, row: dict, consumed: set[str]) -> dict:
    tests, fn_name = _io_tests(row)
    question = row.get("question")
    if not isinstance(question, str):
        raise RecordError("question", "missing (the problem statement)")
    out: dict[str, Any] = {
        "id": pid,
        "prompt": with_starter_code(question, row.get("starter_code")),
        "tests": tests,
        "solutions": _solutions(row),
        "meta": meta(fmt, row, consumed),
    }
    if fn_name:
        out["fn_name"] = fn_name
    return out


APPS_CONSUMED = {"problem_id", "question", "input_output", "solutions"}
TACO_CONSUMED = {"question", "input_output", "solutions", "name", "id", "time_limit", "memory_limit"}


def from_apps(row: dict) -> dict:
    return _problem("apps", f"apps-{row['problem_id']}", row, APPS_CONSUMED)


def from_taco(row: dict, lineno: int) -> dict:
    pid = row.get("name") or row.get("id") or f"taco-{lineno}"
    out = _problem("taco", str(pid), row, TACO_CONSUMED)
    tl = row.get("time_limit")
    if isinstance(tl, str):  # "2 seconds", "1.5 s"
        num = "".join(c for c in tl.split()[0] if c.isdigit() or c == ".") if tl.split() else ""
        try:
            tl = float(num) if num else None
        except ValueError:  # "1.2.3"
            tl = None
    if isinstance(tl, (int, float)) and not isinstance(tl, bool) and tl > 0:
        out["time_limit"] = float(tl)
    mem = row.get("memory_limit")
    if isinstance(mem, str) and mem.split():
        digits = "".join(c for c in mem.split()[0] if c.isdigit())
        if digits and int(digits) > 0:
            out["memory_limit_mb"] = int(digits)
    return out
