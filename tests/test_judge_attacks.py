"""The attack suite of issue #12: programs written to earn reward without solving the problem.

tests/judge_data/attacks/*.py: each names, in its first lines, the problem it answers (in
problems.json: HumanEval check() style, MBPP asserts, stdin/stdout, call-based) and the class of
hole it tries (forged verdicts, equality tricks, patching the interpreter, leaving early, reading
the tests, attacking the tester, earlier runs' data, packages beyond the standard library,
malformed or huge output, descriptors, memory across processes, time, signals, forcing a judge
error, names the tests look up). Every one must get reward < 1 and must not cause a judge error
(JE: reward null, the sample dropped), and the honest_*.py programs must still pass. The judge
must finish every batch (and `spo judge` exit 0 with every record written).

The suite runs as root (with the cgroup memory accounting this machine gives root, and with the
one-process fallback) and as an ordinary user (setpriv to uid 65534: user namespaces, and the
fallback accounting unless cgroups are delegated).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from spo_cli.judge import JudgeOptions, SandboxPool, judge_response, judge_stream, probe

ROOT = Path(__file__).resolve().parent.parent
DIR = ROOT / "tests" / "judge_data" / "attacks"
PROBLEMS = {p["id"]: p for p in json.loads((DIR / "problems.json").read_text())}
ALL = sorted(DIR.glob("*.py"))
ATTACKS = [p for p in ALL if not p.name.startswith("honest_")]
HONEST = [p for p in ALL if p.name.startswith("honest_")]
STYLE = {"he0": "humaneval", "he32": "humaneval", "mbpp3": "mbpp", "mbpp_math": "mbpp",
         "mbpp_gen": "mbpp",
         "mbpp_map": "mbpp", "mbpp_pair": "mbpp", "mbpp_node": "mbpp", "stdio_prime": "stdio",
         "stdio_token": "stdio", "call_gcd": "call"}
CLASSES = {"forged-verdict", "equality", "patching", "exit", "read-tests", "tester",
           "previous-run", "imports", "output", "fds", "memory", "time", "signals",
           "judge-error", "names"}


def header(path: Path) -> dict:
    out = {}
    for line in path.read_text().splitlines()[:3]:
        if line.startswith("# ") and ":" in line:
            k, v = line[2:].split(":", 1)
            out[k.strip()] = v.strip()
    return out


def trajectories() -> list[dict]:
    """Attacks first, then the honest programs: these then also show the runners still work."""
    return [{"id": p.stem, "problem_id": header(p)["problem"], "response": p.read_text()}
            for p in ATTACKS + HONEST]


def check(results: dict) -> list[str]:
    """Every way the results break the suite's promises (empty: all kept)."""
    bad = []
    for p in ATTACKS:
        r = results[p.stem]
        want = header(p).get("expect")
        if r["verdict"] == "JE" or r["reward"] is None or r["reward"] >= 1:
            bad.append(f"{p.stem}: {r['verdict']} reward {r['reward']} ({r['judge'].get('detail')})")
        elif want and r["verdict"] not in want.split():
            bad.append(f"{p.stem}: {r['verdict']}, expected {want} ({r['judge'].get('detail')})")
    for p in HONEST:
        r = results[p.stem]
        if r["verdict"] != "OK" or r["reward"] != 1.0:
            bad.append(f"{p.stem} (honest): {r['verdict']} ({r['judge'].get('detail')})")
    return bad


def test_suite_covers_every_class_and_style():
    assert len(ATTACKS) >= 40
    classes = Counter(header(p)["class"] for p in ATTACKS)
    assert set(classes) == CLASSES, set(classes) ^ CLASSES
    styles = Counter(STYLE[header(p)["problem"]] for p in ATTACKS)
    assert set(styles) == {"humaneval", "mbpp", "stdio", "call"} and min(styles.values()) >= 5
    for p in ALL:
        assert header(p)["problem"] in PROBLEMS, p
    assert {header(p)["problem"] for p in HONEST} == set(PROBLEMS)  # a control for each


def _require_namespaces():
    kind, why = probe(order=("namespaces",))
    if kind != "namespaces":
        pytest.skip(f"namespaces unavailable here ({why}); the judge refuses to run without them")


@pytest.fixture(scope="module", params=["auto", "rlimit"])
def as_root(request):
    """The suite judged by this process (root on CI machines: an unprivileged uid per runner)
    with the strongest memory accounting here, and with the one-process fallback."""
    _require_namespaces()
    opts = JudgeOptions(memory=request.param)
    with SandboxPool(2, memory=request.param) as pool:
        results = {r["id"]: r for r in judge_stream(trajectories(), PROBLEMS, opts, jobs=2,
                                                    pool=pool)}
        yield results, pool


def test_attacks_earn_nothing_and_honest_programs_pass(as_root):
    results, pool = as_root
    assert check(results) == []
    memory = {r["judge"]["memory"] for r in results.values()}
    assert memory == {pool.memory}


def test_memory_attacks_are_mle_where_cgroups_count(as_root):
    results, pool = as_root
    if pool.memory not in ("cgroup1", "cgroup2"):
        # One address space per run: the processes, memfds and shared mappings are refused.
        for p in ATTACKS:
            if header(p)["class"] == "memory":
                assert results[p.stem]["verdict"] in ("MLE", "RE")
        return
    for p in ATTACKS:
        if header(p)["class"] == "memory":
            r = results[p.stem]
            # Threads share one address space, whose limit stays as a backstop beside the cgroup:
            # it may refuse a thread's stack before the heap outgrows the cgroup (which of the two
            # comes first is a race), and Python then raises "can't start new thread".
            refused_thread = r["verdict"] == "RE" and "can't start new thread" in (r["judge"].get("detail") or "")
            assert r["verdict"] == "MLE" or refused_thread, (p.stem, r["judge"])


def test_earlier_runs_leave_nothing_to_find():
    """Honest runs and the attacks that look for their data, back to back on one runner (as a
    trainer judges the samples of one problem)."""
    _require_namespaces()
    prob = PROBLEMS["stdio_token"]
    honest = (DIR / "honest_stdio_token.py").read_text()
    spies = [(DIR / f"{n}.py").read_text() for n in ("60_previous_outputs_in_memory",
                                                      "61_previous_files_and_sockets")]
    with SandboxPool(1) as pool:
        for spy in spies * 2:
            assert judge_response(prob, honest, pool=pool)["verdict"] == "OK"
            r = judge_response(prob, spy, pool=pool)
            assert r["verdict"] == "WA", r["judge"]


def test_cli_writes_every_record_and_exits_0(tmp_path):
    """Trajectories that once broke the judge (RecursionError on 100,000 '[') in one batch with
    honest ones: `spo judge` writes them all and exits 0."""
    _require_namespaces()
    names = ["81_brackets_on_result_fd", "82_frame_garbage", "84_hostile_return_values",
             "86_huge_exception_message", "87_hash_collisions", "83_bad_bytes_stdout",
             "honest_call_gcd", "honest_stdio_prime"]
    probs = tmp_path / "problems.jsonl"
    probs.write_text("".join(json.dumps(p) + "\n" for p in PROBLEMS.values()))
    trajs = tmp_path / "trajs.jsonl"
    trajs.write_text("".join(json.dumps({"id": n, "problem_id": header(DIR / f"{n}.py")["problem"],
                                         "prompt": "", "response": (DIR / f"{n}.py").read_text()})
                             + "\n" for n in names))
    out = tmp_path / "judged.jsonl"
    r = subprocess.run([sys.executable, "-m", "spo_cli", "judge", "-p", str(probs), str(trajs),
                        "-o", str(out), "-j", "2"], capture_output=True, timeout=300)
    assert r.returncode == 0, r.stderr.decode()[-2000:]
    got = {rec["id"]: rec for rec in map(json.loads, out.read_text().splitlines())}
    assert sorted(got) == sorted(names)
    for n in names:
        ok = got[n]["verdict"] == "OK"
        assert ok == n.startswith("honest_"), (n, got[n]["verdict"], got[n]["judge"])
        assert got[n]["verdict"] != "JE"


# ------------------------------------------------------------------------------------------
# The same suite for an ordinary user: user namespaces, no cgroup to write.

NOBODY_SCRIPT = r"""
import json, sys
sys.path.insert(0, sys.argv[1])
from spo_cli.judge import JudgeOptions, judge_stream
problems, trajs = json.load(sys.stdin)
out = {r["id"]: r for r in judge_stream(trajs, problems, JudgeOptions(), jobs=2)}
print(json.dumps(out))
"""


def as_nobody(script: str, stdin: bytes):
    """The last stdout line (JSON) of `script` run as uid 65534, with this checkout's path as
    its argument (skips where that cannot be done here)."""
    if os.geteuid() != 0 or not shutil.which("setpriv"):
        pytest.skip("needs root and setpriv to become an ordinary user")
    python = "/usr/bin/python3" if os.access("/usr/bin/python3", os.X_OK) else sys.executable
    r = subprocess.run(
        ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", python, "-I", "-c",
         script, str(ROOT)], input=stdin, capture_output=True, timeout=600, cwd="/")
    if r.returncode != 0 and b"no process isolation works here" in r.stderr:
        pytest.skip("unprivileged user namespaces are disabled on this machine")
    assert r.returncode == 0, r.stderr.decode()[-3000:]
    return json.loads(r.stdout.decode().splitlines()[-1])


def test_attacks_as_an_ordinary_user():
    results = as_nobody(NOBODY_SCRIPT, json.dumps([PROBLEMS, trajectories()]).encode())
    assert check(results) == []
    assert all(rec["judge"]["sandbox"].startswith("namespaces(user,") for rec in results.values())


# ------------------------------------------------------------------------------------------
# One tester serves the assert-style runs of a runner: nothing a run does to it may reach the
# next run (as an ordinary user the program shares the tester's uid and can signal it).

SABOTEURS = ["56_stop_the_kept_tester", "57_kill_the_kept_tester", "58_sigio_to_the_tester",
             "59_leave_a_saboteur", "51_stop_everyone", "50_kill_everything_in_call",
             "120_signal_everyone", "52_starve_the_tester"]
LIST_PIDS = ("import os\nprint(' '.join(sorted(p for p in os.listdir('/proc') if p.isdigit() "
             "and int(p) not in (1, os.getpid()))))\n")

SEQUENCE_SCRIPT = r"""
import json, sys
sys.path.insert(0, sys.argv[1])
from spo_cli.judge import JudgeOptions, SandboxPool, judge_response
from spo_cli.judge.sandbox import Limits
problems, programs, list_pids = json.load(sys.stdin)
honest = programs.pop("honest_he0")
out = {"runs": []}
with SandboxPool(1) as pool:
    sb = pool.acquire()
    pool.release(sb)
    out["keep_tester"] = sb.keep_tester

    def others():
        run = sb.run({"mode": "stdio", "code": list_pids},
                     Limits(cpu_s=2, wall_s=5, mem_bytes=256 << 20, out_bytes=1 << 20))
        return run.stdout.decode().split()

    for name, code in [(None, None)] + list(programs.items()):
        if name is not None:
            bad = judge_response(problems[name.split("|")[0]], code, pool=pool)
            out["runs"].append([name, bad["verdict"], bad["reward"], bad["judge"].get("detail")])
        good = judge_response(problems["he0"], honest, pool=pool)
        out["runs"].append(["honest_he0", good["verdict"], good["reward"], good["judge"].get("detail")])
        out["runs"].append(["others", others()])
print(json.dumps(out))
"""


def _sequence_input():
    programs = {"honest_he0": (DIR / "honest_he0.py").read_text()}
    for n in SABOTEURS:
        programs[f"{header(DIR / f'{n}.py')['problem']}|{n}"] = (DIR / f"{n}.py").read_text()
    return json.dumps([PROBLEMS, programs, LIST_PIDS]).encode()


def _check_sequence(out: dict, as_root: bool) -> None:
    runs = out["runs"]
    for rec in runs:
        if rec[0] == "honest_he0":
            assert rec[1] == "OK" and rec[2] == 1.0, rec
        elif rec[0] != "others":
            assert rec[1] != "JE" and rec[2] is not None and rec[2] < 1, rec
    seen = [rec[1] for rec in runs if rec[0] == "others"]
    if not out["keep_tester"]:
        assert all(s == [] for s in seen), seen  # a tester per run: none between runs
        return
    # Between runs a stdio program sees exactly one other process: the kept tester.
    assert all(len(s) == 1 for s in seen), seen
    if as_root:  # another uid: no program could touch it, one tester served every run
        assert len({s[0] for s in seen}) == 1, seen


def _run_sequence(env=None):
    r = subprocess.run([sys.executable, "-I", "-c", SEQUENCE_SCRIPT, str(ROOT)],
                       input=_sequence_input(), capture_output=True, timeout=600, env=env)
    assert r.returncode == 0, r.stderr.decode()[-3000:]
    return json.loads(r.stdout.decode().splitlines()[-1])


def test_a_run_cannot_reach_the_next_through_the_kept_tester():
    _require_namespaces()
    out = _run_sequence()
    assert out["keep_tester"] or os.uname().machine != "x86_64"
    _check_sequence(out, as_root=os.geteuid() == 0)


def test_one_tester_per_run_when_asked():
    """SPO_JUDGE_TESTER_RUNS=1: every assert-style run forks its own tester (the older way)."""
    _require_namespaces()
    out = _run_sequence(env=dict(os.environ, SPO_JUDGE_TESTER_RUNS="1"))
    assert out["keep_tester"] is False
    _check_sequence(out, as_root=os.geteuid() == 0)


def test_a_run_cannot_reach_the_next_through_the_kept_tester_as_an_ordinary_user():
    out = as_nobody(SEQUENCE_SCRIPT, _sequence_input())
    assert out["keep_tester"] or os.uname().machine != "x86_64"
    _check_sequence(out, as_root=False)
