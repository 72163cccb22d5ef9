"""Summarise examples/spo_vs_ppo.sh: held-out pass@k per method against the reference model.

For each method (runs named METHOD-sSEED) the final checkpoint of every seed gives:
  - pass@k: mean over seeds, +- standard error across seeds (one seed: across problems);
  - delta pass@k against the reference, paired by problem (same problems, same sampling seeds):
    the per-problem differences are averaged over seeds, and the +- is their standard error
    across problems.
Writes summary.json (also the last line of stdout), summary.md (a Markdown table) and
summary.png (bars of the final pass@k, and pass@k against the training step when the runs'
intermediate checkpoints were evaluated too).

    python examples/compare.py runs/spo-vs-ppo
"""

from __future__ import annotations

import json
import math
import re
import sys
from collections import defaultdict
from pathlib import Path

ORDER = ["reference", "spo-half", "spo-online", "ppo"]
COLORS = {"reference": "#888888", "spo-half": "#22aa77", "spo-online": "#77cc44", "ppo": "#cc5555"}


def _se(xs: list[float]) -> float:
    n = len(xs)
    if n < 2:
        return float("nan")
    m = sum(xs) / n
    return math.sqrt(sum((x - m) ** 2 for x in xs) / (n - 1) / n)


def _per_problem(model: dict, k: str) -> dict[str, float]:
    return {p["problem_id"]: p[k]["mean"] for p in model["per_problem"]}


def load(out: Path) -> dict[str, list[tuple[str, list[dict]]]]:
    """method -> [(run name, [evaluated checkpoints, by step])]"""
    by_method: dict[str, list[tuple[str, list[dict]]]] = defaultdict(list)
    for f in sorted(out.glob("eval-*.json")):
        name = f.stem[len("eval-"):]
        models = sorted(json.loads(f.read_text())["models"], key=lambda m: m.get("step") or 0)
        by_method[re.sub(r"-s\d+$", "", name)].append((name, models))
    return by_method


def run_metrics(out: Path, name: str) -> list[dict] | None:
    """A run's per-step metrics (the run's own metrics.jsonl, or the stored .zst copy); None if neither."""
    from spo_cli.streams import read_records

    for path in (out / name / "metrics.jsonl", out / name / "metrics.jsonl.zst"):
        if path.exists():
            return list(read_records(path))
    return None


def train_minutes(out: Path, name: str) -> float | None:
    """Wall time of a run's optimiser steps (sum of step_s in its metrics), in minutes."""
    rows = run_metrics(out, name)
    return None if rows is None else round(sum(r.get("step_s") or 0.0 for r in rows) / 60, 2)


def summarise(by_method: dict, out: Path) -> dict:
    if "reference" not in by_method:
        raise SystemExit("compare.py: no eval-reference.json: the deltas need the reference model")
    ref = by_method["reference"][0][1][-1]
    ks = sorted((k for k in ref if k.startswith("pass@")), key=lambda k: int(k[5:]))
    summary = {}
    for method, runs in by_method.items():
        finals = [models[-1] for _, models in runs]
        row: dict = {"runs": len(runs), "steps": [m.get("step") for m in finals],
                     "train_minutes": [train_minutes(out, name) for name, _ in runs]}
        for k in ks:
            xs = [m[k]["mean"] for m in finals]
            mean = sum(xs) / len(xs)
            se = _se(xs) if len(xs) > 1 else finals[0][k]["stderr"]
            ref_pp = _per_problem(ref, k)
            per_run = [_per_problem(m, k) for m in finals]
            common = sorted(set(ref_pp).intersection(*per_run))
            diffs = [sum(r[p] for r in per_run) / len(per_run) - ref_pp[p] for p in common]
            row[k] = {"mean": round(mean, 4), "stderr": round(se, 4), "runs": [round(x, 4) for x in xs],
                      "delta": round(sum(diffs) / len(diffs), 4) if diffs else None,
                      "delta_stderr": round(_se(diffs), 4) if len(diffs) > 1 else None,
                      "problems": len(common)}
        row["curve"] = _curve(runs, ks)
        summary[method] = row
    return summary


def _curve(runs: list, ks: list[str]) -> dict[str, list[list[float]]]:
    """k -> [[step, mean over seeds, se over seeds], ...] over the steps every seed evaluated."""
    steps = sorted(set.intersection(*[{m.get("step") or 0 for m in models} for _, models in runs]))
    curve = {}
    for k in ks:
        pts = []
        for s in steps:
            xs = [next(m[k]["mean"] for m in models if (m.get("step") or 0) == s) for _, models in runs]
            se = _se(xs)
            pts.append([s, round(sum(xs) / len(xs), 4), None if math.isnan(se) else round(se, 4)])
        curve[k] = pts
    return curve


def table(summary: dict) -> str:
    ks = sorted({k for r in summary.values() for k in r if k.startswith("pass@")}, key=lambda k: int(k[5:]))
    head = ["method", "runs", "steps", "train min"] + ks + [f"Δ {k} vs reference" for k in ks]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for m in sorted(summary, key=lambda m: ORDER.index(m) if m in ORDER else 99):
        r = summary[m]
        mins = [t for t in r["train_minutes"] if t is not None]
        cells = [m, str(r["runs"]), "/".join(str(s) for s in sorted(set(r["steps"]))),
                 f"{max(mins):.1f} (max)" if mins else "—"]
        cells += [f"{100 * r[k]['mean']:.1f} ± {100 * r[k]['stderr']:.1f}" for k in ks]
        cells += ["—" if m == "reference" else f"{100 * r[k]['delta']:+.1f} ± {100 * r[k]['delta_stderr']:.1f}"
                  for k in ks]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def plot(summary: dict, path: Path) -> bool:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    methods = sorted(summary, key=lambda m: ORDER.index(m) if m in ORDER else 99)
    ks = sorted({k for r in summary.values() for k in r if k.startswith("pass@")}, key=lambda k: int(k[5:]))
    curves = any(len(summary[m]["curve"][ks[0]]) > 1 for m in methods if m != "reference")
    fig, axes = plt.subplots(1 + curves, len(ks), figsize=(4.8 * len(ks), 3.8 * (1 + curves)), squeeze=False)
    for j, k in enumerate(ks):
        ax = axes[0][j]
        means = [100 * summary[m][k]["mean"] for m in methods]
        errs = [100 * summary[m][k]["stderr"] for m in methods]
        ax.bar(methods, means, yerr=errs, capsize=4, color=[COLORS.get(m, "#5577cc") for m in methods])
        ax.set_title(f"held-out {k} (%), final checkpoint")
        ax.tick_params(axis="x", rotation=20)
        if curves:
            ax = axes[1][j]
            ref = 100 * summary["reference"][k]["mean"]
            for m in methods:
                if m == "reference":
                    continue
                pts = [[0, summary["reference"][k]["mean"], None]] + [p for p in summary[m]["curve"][k] if p[0] > 0]
                xs, ys = [p[0] for p in pts], [100 * p[1] for p in pts]
                es = [100 * p[2] if p[2] is not None else 0 for p in pts]
                ax.errorbar(xs, ys, yerr=es, marker="o", capsize=3, label=m, color=COLORS.get(m))
            ax.axhline(ref, color=COLORS["reference"], ls="--", label="reference")
            ax.set_xlabel("training step")
            ax.set_title(f"held-out {k} (%), mean ± se over seeds")
            ax.legend(fontsize=8)
    fig.text(0.5, 0.005, "error bars: standard error across seeds (reference: across problems); "
             "the table's deltas are paired by problem", ha="center", fontsize=8, color="#555555")
    fig.tight_layout(rect=(0, 0.02, 1, 1))
    fig.savefig(path, dpi=120)
    return True


def main(out: Path) -> dict:
    summary = summarise(load(out), out)
    (out / "summary.json").write_text(json.dumps(summary, indent=1))
    md = table(summary)
    (out / "summary.md").write_text(md)
    print(md, file=sys.stderr, end="")
    if plot(summary, out / "summary.png"):
        print(f"plot: {out / 'summary.png'}", file=sys.stderr)
    print(json.dumps(summary))
    return summary


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "runs/spo-vs-ppo"))
