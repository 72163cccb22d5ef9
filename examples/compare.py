"""Summarise examples/spo_vs_ppo.sh: pass@k per method (mean over seeds, standard error across
seeds) against the reference model, as JSON (stdout and summary.json), a Markdown table
(summary.md) and a bar chart (summary.png).

    python examples/compare.py runs/spo-vs-ppo
"""

from __future__ import annotations

import json
import math
import re
import sys
from collections import defaultdict
from pathlib import Path


def main(out: Path) -> dict:
    by_method: dict[str, list[dict]] = defaultdict(list)
    for f in sorted(out.glob("eval-*.json")):
        name = f.stem[len("eval-"):]
        method = re.sub(r"-s\d+$", "", name)
        (model,) = json.loads(f.read_text())["models"]
        by_method[method].append({k: v["mean"] for k, v in model.items() if k.startswith("pass@")}
                                 | {"name": name, "problem_stderr": {k: v["stderr"] for k, v in model.items()
                                                                     if k.startswith("pass@")}})
    summary = {}
    for method, runs in by_method.items():
        row = {"runs": len(runs)}
        for k in [k for k in runs[0] if k.startswith("pass@")]:
            xs = [r[k] for r in runs]
            mean = sum(xs) / len(xs)
            se = math.sqrt(sum((x - mean) ** 2 for x in xs) / (len(xs) - 1) / len(xs)) if len(xs) > 1 \
                else runs[0]["problem_stderr"][k]  # one run: the standard error across problems
            row[k] = {"mean": round(mean, 4), "stderr": round(se, 4), "runs": [round(x, 4) for x in xs]}
        summary[method] = row
    (out / "summary.json").write_text(json.dumps(summary, indent=1))
    ks = sorted({k for r in summary.values() for k in r if k.startswith("pass@")}, key=lambda k: int(k[5:]))
    lines = ["| method | runs | " + " | ".join(ks) + " |", "|---|---|" + "---|" * len(ks)]
    order = ["reference", "spo-half", "spo-online", "ppo"]
    for m in sorted(summary, key=lambda m: order.index(m) if m in order else 99):
        r = summary[m]
        lines.append(f"| {m} | {r['runs']} | " + " | ".join(
            f"{100 * r[k]['mean']:.1f} ± {100 * r[k]['stderr']:.1f}" for k in ks) + " |")
    (out / "summary.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines), file=sys.stderr)
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        methods = [m for m in sorted(summary, key=lambda m: order.index(m) if m in order else 99)]
        fig, axes = plt.subplots(1, len(ks), figsize=(4.5 * len(ks), 3.6))
        for ax, k in zip(axes if len(ks) > 1 else [axes], ks):
            means = [100 * summary[m][k]["mean"] for m in methods]
            errs = [100 * summary[m][k]["stderr"] for m in methods]
            ax.bar(methods, means, yerr=errs, capsize=4, color=["#888", "#2a7", "#7c4", "#c55"][: len(methods)])
            ax.set_title(f"held-out {k} (%)")
            ax.tick_params(axis="x", rotation=20)
        fig.tight_layout()
        fig.savefig(out / "summary.png", dpi=120)
    except ImportError:
        pass
    print(json.dumps(summary))
    return summary


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "runs/spo-vs-ppo"))
