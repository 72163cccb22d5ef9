#!/usr/bin/env bash
# The main job on the built-in default, from nothing: build (or reuse) the benchmark and the tiny
# reference model, sample the held-out problems, judge every sample in the sandbox, and report
# pass@1 and pass@10 (a table on stderr, the JSON report in $OUT/report.json).
#
#   examples/quickstart.sh                 # the default model (a few minutes to build, once)
#   CONFIG=toy examples/quickstart.sh      # the toy model (well under a minute)
set -euo pipefail
CONFIG=${CONFIG:-default}
OUT=${OUT:-runs/quickstart-$CONFIG}
N=${N:-10}
mkdir -p "$OUT"

paths=$(spo benchmark build --config "$CONFIG")
field() { python3 -c "import json,sys; print(json.loads(sys.argv[1])[sys.argv[2]])" "$paths" "$1"; }
model=$(field model_dir)
heldout=$(field heldout_problems)

spo sample -m "$model" -p "$heldout" -n "$N" --temperature 0.4 --top-p 0.95 --seed 0 \
  | spo judge -p "$heldout" -o "$OUT/heldout-samples.jsonl.zst"
spo eval --trajectories "$OUT/heldout-samples.jsonl.zst" -k 1,10 --no-per-problem > "$OUT/report.json"
echo "report: $OUT/report.json" >&2
