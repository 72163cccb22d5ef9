"""Function-level benchmarks as Problem records: HumanEval, MBPP, and EvalPlus's HumanEval+ and
MBPP+.

HumanEval (openai/human-eval): `task_id`, `prompt` (signature and docstring), `canonical_solution`
(the body: prompt + canonical_solution is a program), `test` (a `check(candidate)` function),
`entry_point`. Mapped to id, prompt, test_code, entry_point, solutions; the rest under meta.

MBPP (google-research mbpp; full and sanitized): `task_id`, `text` (sanitized: `prompt`), `code`,
`test_list` (asserts), `test_setup_code`, `challenge_test_list`, sanitized `test_imports`. Mapped:
the statement plus the first assert (it shows the function's name and signature) -> prompt; the
imports, setup code and all asserts -> test_code (each top-level assert a test); code ->
solutions; the rest under meta.

EvalPlus (the HumanEvalPlus / MbppPlus releases, evalplus/evalplus): `task_id`, `prompt`,
`entry_point`, `canonical_solution`, `base_input` and `plus_input` (lists of argument lists),
`atol`, `contract`, and for MBPP+ what the MBPP row had. EvalPlus stores inputs only: the expected
value of each is what the reference (prompt + canonical_solution) returns on it, compared as
EvalPlus compares (evalplus/eval/__init__.py): equal, else for floats (or a flat sequence of
them) within `atol` (1e-6 when atol is 0) with rtol 1e-7, the rule of numpy.allclose; with
EvalPlus's special oracles for the tasks it names (HumanEval/32 find_zero: any root of the
polynomial; MBPP+: set equality, "not None", and the closed forms of Mbpp/295, 558, 581). MBPP+
inputs that JSON cannot hold (tuples, sets, complex numbers) are rebuilt as EvalPlus's loader
rebuilds them (evalplus/data/mbpp.py, mbpp_deserialize_inputs, MBPP+ v0.2.0).

So test_code is generated: the reference, run in the judge's trusted tester (never in the
program's process), the inputs, the comparison, and one top-level assert per input (base inputs
first), so every input is a test and the time limit scales with their number. Mapped: task_id ->
id; prompt -> prompt; entry_point -> entry_point; prompt + canonical_solution -> solutions.
Under meta: contract, the counts of base and plus inputs, and every other field except the
inputs and atol, which are in test_code.

Skipped (counted): an EvalPlus task with no inputs.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from spo_cli.errors import RecordError, Unusable
from spo_cli.importers._common import meta, string_list

# --------------------------------------------------------------------------- HumanEval, MBPP

HUMANEVAL_CONSUMED = {"task_id", "prompt", "test", "entry_point", "canonical_solution"}
MBPP_CONSUMED = {"task_id", "text", "prompt", "code", "test_list", "test_setup_code",
                 "challenge_test_list", "test_imports"}


def from_humaneval(row: dict) -> dict:
    out = {
        "id": str(row["task_id"]),
        "prompt": row["prompt"],
        "test_code": row["test"],
        "entry_point": row["entry_point"],
        "meta": meta("humaneval", row, HUMANEVAL_CONSUMED),
    }
    if row.get("canonical_solution"):
        out["solutions"] = [row["prompt"] + row["canonical_solution"]]
    return out


def from_mbpp(row: dict) -> dict:
    imports = string_list(row.get("test_imports") or [], "test_imports", "import")
    setup = row.get("test_setup_code") or ""
    asserts = string_list(row.get("test_list") or [], "test_list", "test") + string_list(
        row.get("challenge_test_list") or [], "challenge_test_list", "test")
    if not asserts:
        raise Unusable("no tests (test_list and challenge_test_list are empty)")
    head = "".join(line + "\n" for line in imports) + (setup + "\n" if setup else "")
    text = row.get("text") or row.get("prompt")
    if not isinstance(text, str):
        raise RecordError("text", "missing (the MBPP problem statement)")
    out = {
        "id": str(row["task_id"]),
        # MBPP's statement does not name the function; the first test shows its signature.
        "prompt": text + ("\n" + row["test_list"][0] if row.get("test_list") else ""),
        "test_code": head + "\n".join(asserts) + "\n",
        "entry_point": None,
        "meta": meta("mbpp", row, MBPP_CONSUMED),
    }
    if row.get("code"):
        out["solutions"] = [row["code"]]
    return out


# --------------------------------------------------------------------------- EvalPlus

EVALPLUS_CONSUMED = {"task_id", "prompt", "entry_point", "canonical_solution", "base_input",
                     "plus_input", "atol"}


def _each(f: Callable) -> Callable:
    return lambda args: [f(a) for a in args]


def _first(f: Callable) -> Callable:
    return lambda args: [f(args[0]), *args[1:]]


def _tuples(a: list) -> list:
    return [tuple(x) for x in a]


def _deep_tuple(a: Any) -> Any:
    return tuple(_deep_tuple(x) for x in a) if isinstance(a, list) else a


# MBPP+ task number -> how its JSON argument list becomes the arguments EvalPlus passes.
_MBPP_PLUS_ARGS: dict[int, Callable[[list], Any]] = {
    **dict.fromkeys((2, 116, 132, 143, 222, 261, 273, 394, 399, 421, 424, 429, 470, 560, 579, 596,
                     616, 630, 726, 740, 744, 809), _each(tuple)),
    **dict.fromkeys((63, 64, 70, 94, 120, 237, 272, 299, 400, 409, 417, 438, 473, 614, 780),
                    _each(_tuples)),
    **dict.fromkeys((75, 413, 444, 753), _first(_tuples)),
    **dict.fromkeys((106, 750), lambda args: [args[0], tuple(args[1]), *args[2:]]),
    **dict.fromkeys((250, 307, 405, 446, 617, 720, 763, 808), _first(tuple)),
    **dict.fromkeys((259, 401, 445), _each(lambda a: tuple(tuple(x) for x in a))),
    **dict.fromkeys((580, 615, 791), _deep_tuple),
    # EvalPlus turns an empty list here into {} (an empty dict), and so do we.
    115: _first(lambda a: [set(x) if isinstance(x, list) and x else {} for x in a]),
    124: lambda args: (float(args[0]), complex(args[1])),
    252: lambda args: [complex(args[0])],
    278: _first(lambda a: tuple(tuple(x) if isinstance(x, list) else x for x in a)),
    722: _first(lambda d: {k: tuple(v) for k, v in d.items()}),
}

# EvalPlus's special oracles, as Python run in the tester: `exact` is `out == exp` on entry; a
# `return` decides the test outright.
_ORACLES = {
    ("HumanEval", "find_zero"): (
        "    return abs(sum(c * _spo_math.pow(out, k) for k, c in enumerate(args[0]))) <= _SPO_ATOL\n"),
    ("Mbpp", "are_equivalent"): "    exact = True\n",
    ("Mbpp", "sum_div"): "    exact = exact or out == 0\n",
    ("Mbpp", "surface_Area"): (
        "    b, h = args\n"
        "    exact = exact or abs(out - round(b * b + 2 * b * _spo_math.sqrt((b / 2) ** 2 + h * h)))"
        " <= _SPO_ATOL\n"),
    ("Mbpp", "digit_distance_nums"): (
        "    a, b = str(args[0]), str(args[1])\n"
        "    n = max(len(a), len(b))\n"
        "    exact = exact or out == sum(abs(int(x) - int(y)) for x, y in zip(a.zfill(n), b.zfill(n)))\n"),
    **{("Mbpp", name): "    exact = set(out) == set(exp)\n"
       for name in ("similar_elements", "find_char_long", "common_in_nested_lists", "extract_singly",
                    "larg_nnum", "intersection_array", "find_dissimilar", "Diff")},
    **{("Mbpp", name): ("    exact = out == exp if isinstance(out, bool) else exp == (out is not None)\n")
       for name in ("check_str", "text_match_three", "text_starta_endb")},
}
_NOT_NONE = {"check_str", "text_match_three", "text_starta_endb"}  # expected: "is not None"

_TEST_CODE = '''\
# EvalPlus {task_id}: {n_base} base and {n_plus} plus inputs. The expected value of each is what the
# reference solution returns on it (run here, in the judge's tester), compared as EvalPlus does.
import copy as _spo_copy
import math as _spo_math

_SPO_REF_SOURCE = {ref!r}
_spo_ns = {{"__name__": "reference"}}
exec(compile(_SPO_REF_SOURCE, "reference.py", "exec"), _spo_ns)
_SPO_REF = _spo_ns[{entry!r}]
_SPO_ATOL = {atol!r}
_SPO_INPUTS = {inputs}


def _spo_floats(x):
    if isinstance(x, float):
        return True
    return isinstance(x, (list, tuple)) and len(x) > 0 and all(isinstance(i, float) for i in x)


def _spo_close(a, b, atol):
    # numpy.allclose(a, b, rtol=1e-07, atol=atol) on numbers and nested sequences of them
    if isinstance(b, (list, tuple)):
        return isinstance(a, (list, tuple)) and len(a) == len(b) and all(
            _spo_close(x, y, atol) for x, y in zip(a, b))
    if isinstance(a, (list, tuple, str)) or isinstance(b, str):
        return False
    try:
        if _spo_math.isinf(a) or _spo_math.isinf(b):
            return a == b
        return abs(a - b) <= atol + 1e-07 * abs(b)
    except TypeError:
        return False


def _spo_same(out, exp, args):
    exact = out == exp
{oracle}    atol = _SPO_ATOL
    if atol == 0 and _spo_floats(exp):
        atol = 1e-06
    if not exact and atol != 0:
        if type(out) is not type(exp):
            return False
        return _spo_close(out, exp, atol)
    return exact


def _spo_case(i, fn):
    args = _SPO_INPUTS[i]
    out = fn(*args)
    exp = _SPO_REF(*_spo_copy.deepcopy(args))
{not_none}    return _spo_same(out, exp, args)


'''


def literal(v: Any, depth: int = 0) -> str:
    """Python source that evaluates to `v` (plain data: None, bool, int, float including nan and
    inf, complex, str, bytes, list, tuple, set, frozenset, dict)."""
    if depth > 100:
        raise ValueError("nested more than 100 deep")
    t = type(v)
    if v is None or t in (bool, int, str, bytes):
        return repr(v)
    if t is float:
        return repr(v) if math.isfinite(v) else f"float({repr(v)!r})"
    if t is complex:
        return f"complex({literal(v.real)}, {literal(v.imag)})"
    d = depth + 1
    if t is list:
        return "[" + ", ".join(literal(x, d) for x in v) + "]"
    if t is tuple:
        return "(" + ", ".join(literal(x, d) for x in v) + ("," if len(v) == 1 else "") + ")"
    if t in (set, frozenset):
        inner = "[" + ", ".join(literal(x, d) for x in v) + "]"
        return f"{t.__name__}({inner})"
    if t is dict:
        return "{" + ", ".join(f"{literal(k, d)}: {literal(x, d)}" for k, x in v.items()) + "}"
    raise ValueError(f"{t.__name__} is not plain data")


def _inputs(row: dict, field: str, task: str) -> list:
    v = row.get(field)
    if v is None:
        return []
    if not isinstance(v, list) or not all(isinstance(a, list) for a in v):
        raise RecordError(field, "must be a list of argument lists")
    if task.startswith("Mbpp/"):
        try:
            number = int(task.split("/")[-1])
        except ValueError:
            return v
        rebuild = _MBPP_PLUS_ARGS.get(number)
        if rebuild is not None:
            try:
                return [rebuild(a) for a in v]
            except (TypeError, ValueError, IndexError, AttributeError) as e:
                raise RecordError(field, f"the arguments of {task} are not shaped as EvalPlus "
                                         f"stores them ({type(e).__name__}: {e})") from None
    return v


def from_evalplus(row: dict) -> dict:
    task = str(row["task_id"])
    entry, prompt = row.get("entry_point"), row.get("prompt")
    if not isinstance(entry, str) or not entry.isidentifier():
        raise RecordError("entry_point", "must name the function under test")
    if not isinstance(prompt, str):
        raise RecordError("prompt", "missing")
    canonical = row.get("canonical_solution")
    if not isinstance(canonical, str) or not canonical.strip():
        raise RecordError("canonical_solution", "missing (EvalPlus's expected values come from it)")
    base, plus = _inputs(row, "base_input", task), _inputs(row, "plus_input", task)
    if not base and not plus:
        raise Unusable("no tests (base_input and plus_input are empty)")
    atol = row.get("atol") or 0
    if not isinstance(atol, (int, float)) or isinstance(atol, bool) or not atol >= 0:
        raise RecordError("atol", f"must be a number >= 0, got {atol!r}")
    inputs = base + plus
    try:
        inputs_src = literal(inputs)
    except ValueError as e:
        raise RecordError("plus_input" if plus else "base_input", f"holds what is not plain data: {e}") from None
    dataset = task.split("/")[0]
    code = _TEST_CODE.format(
        task_id=task, n_base=len(base), n_plus=len(plus), ref=prompt + canonical, entry=entry,
        atol=float(atol), inputs=inputs_src, oracle=_ORACLES.get((dataset, entry), ""),
        not_none="    exp = exp is not None\n" if dataset == "Mbpp" and entry in _NOT_NONE else "",
    ) + "".join(f"assert _spo_case({i}, {entry}), 'wrong result on input {i}'\n"
                for i in range(len(inputs)))
    return {
        "id": task,
        "prompt": prompt,
        "test_code": code,
        "entry_point": entry,
        "solutions": [prompt + canonical],
        "meta": meta("evalplus", row, EVALPLUS_CONSUMED, base_tests=len(base), plus_tests=len(plus),
                     atol=float(atol)),
    }
