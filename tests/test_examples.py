"""The recipes in examples/ and the README's pipeline run as written (on the toy benchmark, with
tiny budgets), end to end through the real commands."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from spo_cli.streams import read_records

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.slow


def _env(tmp_path: Path) -> dict:
    venv_bin = str(Path(sys.executable).parent)
    env = dict(os.environ)
    env["PATH"] = f"{venv_bin}:{env.get('PATH', '/usr/bin:/bin')}"
    env["SPO_PROGRESS"] = "0"
    return env


def _run(cmd, tmp_path, env_extra=None, timeout=900):
    env = _env(tmp_path)
    env.update(env_extra or {})
    r = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=timeout)
    assert r.returncode == 0, f"{cmd} failed ({r.returncode}):\n{r.stderr[-4000:]}"
    return r


def test_quickstart(toy_benchmark, tmp_path):
    _run(["bash", str(ROOT / "examples/quickstart.sh")], tmp_path,
         {"CONFIG": "toy", "N": "2", "OUT": str(tmp_path / "qs")})
    report = json.loads((tmp_path / "qs" / "report.json").read_text())
    (model,) = report["models"]
    assert model["samples"] == 2 * model["problems"] > 0
    samples = list(read_records(tmp_path / "qs" / "heldout-samples.jsonl.zst", "trajectory"))
    assert all(s["verdict"] in ("OK", "WA", "TLE", "MLE", "RE", "CE") for s in samples)


def test_pipeline_script(toy_benchmark, tmp_path):
    out = tmp_path / "p"
    _run(["bash", str(ROOT / "examples/pipeline.sh")], tmp_path,
         {"CONFIG": "toy", "OUT": str(out), "K": "4", "TRAIN_PROBLEMS": "8", "STEPS": "2",
          "HELDOUT_PROBLEMS": "6", "EVAL_N": "2"})
    values = list(read_records(out / "values.jsonl", "value"))
    assert len(values) == 8 and all(v["k"] == 4 for v in values)
    corpus = list(read_records(out / "corpus", "trajectory"))
    assert {c["source"] for c in corpus} >= {"human", "ref"}
    assert all(c["reward"] is not None for c in corpus)
    metrics = [json.loads(l) for l in (out / "spo-metrics.jsonl").read_text().splitlines()]
    assert [m["step"] for m in metrics] == [1, 2]
    report = json.loads((out / "eval.json").read_text())
    assert [m["step"] for m in report["models"]] == [0, 2]


def test_readme_pipeline_block(toy_benchmark, tmp_path):
    readme = (ROOT / "README.md").read_text()
    block = next(b for b in re.findall(r"```sh\n(.*?)```", readme, flags=re.S) if "spo train" in b)
    _run(["bash", "-euo", "pipefail", "-c", block], tmp_path)
    report = json.loads((tmp_path / "report.json").read_text())
    assert len(report["models"]) == 2
    assert (tmp_path / "run" / "checkpoints" / "latest" / "model.safetensors").exists()
    assert len(list(read_records(tmp_path / "values.jsonl", "value"))) == 16


def test_nightly_corpus_grows_by_shards(toy_benchmark, tmp_path):
    head = tmp_path / "train4.jsonl"
    head.write_text("".join(Path(toy_benchmark.train_problems).read_text().splitlines(True)[:4]))
    env = {"MODEL": str(toy_benchmark.model_dir), "PROBLEMS": str(head), "CORPUS": str(tmp_path / "corpus"),
           "N": "2"}
    for seed in ("1", "2"):
        _run(["bash", str(ROOT / "examples/nightly_corpus.sh")], tmp_path, dict(env, SEED=seed))
    shards = sorted((tmp_path / "corpus").iterdir())
    assert len(shards) == 2
    assert len(list(read_records(tmp_path / "corpus", "trajectory"))) == 16


def test_spo_vs_ppo_experiment_runs_and_resumes(toy_benchmark, tmp_path):
    out = tmp_path / "e"
    env = {"CONFIG": "toy", "OUT": str(out), "SEEDS": "0", "STEPS": "2", "EVERY": "1", "K": "4",
           "TRAIN_PROBLEMS": "8", "HELDOUT_PROBLEMS": "6", "EVAL_N": "10", "JOBS": "2"}
    _run(["bash", str(ROOT / "examples/spo_vs_ppo.sh")], tmp_path, env)
    corpus = list(read_records(out / "corpus", "trajectory"))
    assert corpus and all(c["reward"] == 1 for c in corpus)  # the paper's offline data: correct only
    summary = json.loads((out / "summary.json").read_text())
    assert set(summary) == {"reference", "spo-half", "spo-online", "ppo"}
    for method in ("spo-half", "spo-online", "ppo"):
        row = summary[method]
        assert row["steps"] == [2] and row["pass@10"]["problems"] == 6
        assert [p[0] for p in row["curve"]["pass@10"]] == [1, 2]  # every checkpoint evaluated
    assert (out / "summary.md").read_text().startswith("| method |")
    assert (out / "summary.png").stat().st_size > 0
    # Run again: every stage is found done, and the summary is the same.
    mtime = (out / "eval-ppo-s0.json").stat().st_mtime
    _run(["bash", str(ROOT / "examples/spo_vs_ppo.sh")], tmp_path, env)
    assert (out / "eval-ppo-s0.json").stat().st_mtime == mtime
    assert json.loads((out / "summary.json").read_text()) == summary


def test_study_makefile_smoke_runs_resumes_and_rebuilds_results(toy_benchmark, tmp_path):
    """examples/Makefile end to end on the toy benchmark (SMOKE=1): data, the validation grid, the
    choices, main runs, an ablation, held-out evaluations, stored files and tables; a second make
    finds everything done; an interrupted run and a lost evaluation are redone alone; and `make
    results` rebuilds the tables from the stored files without the working files."""
    out = tmp_path / "s"
    env = {"OUT": str(out), "RESULTS": str(out / "results"), "PY": sys.executable}
    make = ["make", "-C", str(ROOT / "examples"), "SMOKE=1", "-j2"]
    _run(make + ["study"], tmp_path, env, timeout=1800)
    res = out / "results"
    choices = json.loads((res / "choices.json").read_text())
    assert set(choices) == {"grpo", "spo-half"}
    assert choices["spo-half"]["variant"] in ("spo-half", "spo-half-all") and choices["grpo"]["step"] in (1, 2)
    # settings were chosen before any held-out problem was scored
    heldout = sorted((out / "eval").glob("heldout-*.json"))
    assert heldout and all(f.stat().st_mtime >= (out / "choices.json").stat().st_mtime
                           for f in heldout if "reference" not in f.name)
    summary = json.loads((res / "summary.json").read_text())
    assert {"reference", "grpo", "spo-half"} <= set(summary["main"])
    assert summary["main"]["spo-half"]["runs"] == 2 and "delta_ref" in summary["main"]["grpo"]["pass@10"]
    assert set(summary["ablations"]) == {"pts"} and summary["claims"]
    assert [p[0] for p in summary["curves"]["spo-half"]["pass@10"]] == [1, 2]
    for name in ("g-grpo-lr1e-3", "m-spo-half-s1", "a-pts-s0"):
        assert (res / "runs" / name / "config.json").exists()
        assert [r["step"] for r in read_records(res / "runs" / name / "metrics.jsonl.zst")] == [1, 2]
    md = (res / "summary.md").read_text()
    assert "| SPO half-online" in md and "claims" in md and (res / "summary.png").stat().st_size > 0
    assert (res / "training.png").stat().st_size > 0 and summary["training"]["spo-half"]["seeds"] == 2

    # Nothing left to do.
    q = subprocess.run(make + ["-q", "stored"], env={**_env(tmp_path), **env}, capture_output=True, text=True)
    assert q.returncode == 0, q.stdout + q.stderr
    st = subprocess.run(make + ["-s", "status"], env={**_env(tmp_path), **env}, capture_output=True, text=True)
    counts = re.findall(r"(\d+)/(\d+)", st.stdout)
    assert len(counts) == 7 and all(a == b for a, b in counts if b != "0"), st.stdout
    assert "data: done" in st.stdout and "choices made on validation: yes" in st.stdout
    # An interrupted run (its last checkpoint and done marker gone) and a lost evaluation: only
    # those are redone, the run from its checkpoint.
    run = out / "runs" / "m-grpo-s1"
    (out / "runs" / "m-grpo-s1.done").unlink()
    import shutil

    shutil.rmtree(run / "checkpoints" / "step-000002")
    (run / "checkpoints" / "latest").unlink()
    (run / "checkpoints" / "latest").symlink_to("step-000001")
    (out / "eval" / "validation-reference.json").unlink()
    before = {f: f.stat().st_mtime for f in (out / "eval").glob("*.json")}
    _run(make + ["stored"], tmp_path, env, timeout=1800)
    after = {f: f.stat().st_mtime for f in (out / "eval").glob("*.json")}
    redone = {f.name for f in after if before.get(f) != after[f]}
    assert redone == {"validation-reference.json", "heldout-grpo-s1.json"}
    assert "resuming" in (out / "logs" / "m-grpo-s1.log").read_text()

    # The tables come from the stored files alone (the redone run's evaluation is new: compare
    # with tables made after it).
    _run(make + ["results"], tmp_path, env)
    summary = json.loads((res / "summary.json").read_text())
    shutil.rmtree(out / "runs")
    shutil.rmtree(out / "eval")
    _run(make + ["results"], tmp_path, env)
    again = json.loads((res / "summary.json").read_text())
    assert again == summary


def test_study_makefile_full_plan_has_every_run(tmp_path):
    """The full study's plan (not SMOKE): 8 method/corpus variants x 3 learning rates on validation,
    6 methods x 2 more seeds, 6 ablations x 2 seeds, 3 TRL seeds. (An `export` of a name before it
    was defined once emptied METHODS: the smoke run, which sets its own, could not see it.)"""
    r = _run(["make", "-s", "-C", str(ROOT / "examples"), "plan", f"OUT={tmp_path}/o"], tmp_path)
    counts = dict(re.findall(r"^(\w+) runs \((\d+)\)", r.stdout, flags=re.M))
    assert counts == {"grid": "24", "main": "12", "ablation": "12", "TRL": "3"}, r.stdout
    grid = re.search(r"^grid runs \(\d+\): (.*)$", r.stdout, flags=re.M)[1].split()
    assert {"g-spo-half-all-lr5e-5", "g-rft-lr2e-5", "g-ppo-lr1e-4"} <= set(grid)
