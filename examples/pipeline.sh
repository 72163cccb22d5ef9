#!/usr/bin/env bash
# The whole SPO pipeline on the built-in benchmark, one stage per command, every stage a stream.
# Budgets are small by default so it runs in minutes on a laptop; scale them up with the variables.
#
#   examples/pipeline.sh                       # default model
#   CONFIG=toy STEPS=4 K=4 examples/pipeline.sh
set -euo pipefail
CONFIG=${CONFIG:-default}      # benchmark/model config: default or toy
OUT=${OUT:-runs/pipeline-$CONFIG}
K=${K:-8}                      # reference samples per train problem (the paper: 800)
TRAIN_PROBLEMS=${TRAIN_PROBLEMS:-64}
BETA=${BETA:-0.1}
STEPS=${STEPS:-50}
HELDOUT_PROBLEMS=${HELDOUT_PROBLEMS:-200}
EVAL_N=${EVAL_N:-10}
SEED=${SEED:-0}
mkdir -p "$OUT"

# 0. The benchmark and the reference model (cached after the first build). The train problems
#    come as a dataset is downloaded: a CodeContests Parquet shard, turned into Problem records.
paths=$(spo benchmark build --config "$CONFIG")
field() { python3 -c "import json,sys; print(json.loads(sys.argv[1])[sys.argv[2]])" "$paths" "$1"; }
model=$(field model_dir)
head -n "$HELDOUT_PROBLEMS" "$(field heldout_problems)" > "$OUT/heldout.jsonl"
heldout="$OUT/heldout.jsonl"
spo records cat -k problem "$(field train_parquet)" -o "$OUT/train-all.jsonl"
head -n "$TRAIN_PROBLEMS" "$OUT/train-all.jsonl" > "$OUT/train.jsonl"
train="$OUT/train.jsonl"

# 1. Reference samples, judged: they estimate V(x0) and are offline data too.
spo sample -m "$model" -p "$train" -n "$K" --temperature 1.0 --ref --seed "$SEED" \
  | spo judge -p "$train" -o "$OUT/ref.jsonl.zst"

# 2. Soft values V(x0) = beta log mean exp(r / beta), one per problem.
spo estimate-v --beta "$BETA" "$OUT/ref.jsonl.zst" > "$OUT/values.jsonl"

# 3. The offline corpus: human solutions (judged like anything else) plus the reference samples.
mkdir -p "$OUT/corpus"
spo records solutions "$train" | spo judge -p "$train" -o "$OUT/corpus/"
spo records cat "$OUT/ref.jsonl.zst" -o "$OUT/corpus/"

# 4. Pivotal Token Search: Monte-Carlo targets on some successful reference samples. They are
#    corpus trajectories (same ids) annotated, and the offline reader keeps an id's first copy:
#    list the PTS file before the corpus.
spo pts -m "$model" -p "$train" --values "$OUT/values.jsonl" "$OUT/ref.jsonl.zst" \
  --limit 4 -n 4 -o "$OUT/pts.jsonl.zst"

# 5. SPO, half-online: each batch half offline corpus, half fresh rollouts of the policy.
spo train -m "$model" -p "$train" --values "$OUT/values.jsonl" --offline "$OUT/pts.jsonl.zst" --offline "$OUT/corpus" \
  --offline-ratio 0.5 --loss terminal:ce --loss pts=terminal:ce+mc:ce --beta "$BETA" --steps "$STEPS" \
  --batch-size 16 --online-n 4 --lr 3e-4 --warmup 5 --save-every "$STEPS" --seed "$SEED" \
  --out "$OUT/spo" > "$OUT/spo-metrics.jsonl"

# 6. pass@k on held-out problems: the reference model against the trained policy.
spo eval -m "$model" "$OUT/spo/checkpoints/latest" -p "$heldout" -n "$EVAL_N" -k 1,"$EVAL_N" \
  --no-per-problem > "$OUT/eval.json"
