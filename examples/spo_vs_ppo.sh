#!/usr/bin/env bash
# The paper's comparison in miniature, on the built-in benchmark: SPO half-online (offline corpus =
# correct solutions: the judged human solutions and the reference samples that passed, as in the
# paper), SPO online, and PPO, each over three seeds with the same steps, batch size and learning
# rate; then pass@1/pass@10 on held-out problems for every saved checkpoint, against the
# reference model. Writes $OUT/summary.{json,md,png} (examples/compare.py).
#
#   examples/spo_vs_ppo.sh                          # the default model; ~1 hour on 2 CPU cores
#   STEPS=10 EVERY=5 SEEDS="0" examples/spo_vs_ppo.sh   # a smoke run
#
# Resumable: each stage is skipped when its output exists, and an interrupted training run is
# continued from its last checkpoint. JOBS runs go side by side (one torch thread each).
set -euo pipefail
CONFIG=${CONFIG:-default}
OUT=${OUT:-runs/spo-vs-ppo}
SEEDS=${SEEDS:-"0 1 2"}
STEPS=${STEPS:-300}
EVERY=${EVERY:-100}                     # checkpoint (and evaluate) every EVERY steps
BATCH=${BATCH:-16}
LR=${LR:-5e-5}
BETA=${BETA:-0.1}
K=${K:-16}                              # reference samples per train problem, for V(x0)
TRAIN_PROBLEMS=${TRAIN_PROBLEMS:-300}
HELDOUT_PROBLEMS=${HELDOUT_PROBLEMS:-200}
EVAL_N=${EVAL_N:-20}
JOBS=${JOBS:-2}
threads=(); [ "$JOBS" -gt 1 ] && threads=(--threads 1)  # side by side: one thread each
mkdir -p "$OUT"

paths=$(spo benchmark build --config "$CONFIG")
field() { python3 -c "import json,sys; print(json.loads(sys.argv[1])[sys.argv[2]])" "$paths" "$1"; }
model=$(field model_dir)
head -n "$TRAIN_PROBLEMS" "$(field train_problems)" > "$OUT/train.jsonl"
head -n "$HELDOUT_PROBLEMS" "$(field heldout_problems)" > "$OUT/heldout.jsonl"
train="$OUT/train.jsonl"

if [ ! -s "$OUT/values.jsonl" ]; then
  spo sample -m "$model" -p "$train" -n "$K" --temperature 1.0 --ref --seed 1000 \
    | spo judge -p "$train" -o "$OUT/ref.jsonl.zst"
  spo estimate-v --beta "$BETA" "$OUT/ref.jsonl.zst" -o "$OUT/values.jsonl.tmp"
  mv "$OUT/values.jsonl.tmp" "$OUT/values.jsonl"
fi
if [ ! -d "$OUT/corpus" ]; then
  rm -rf "$OUT/corpus.tmp" && mkdir -p "$OUT/corpus.tmp"
  spo records solutions "$train" | spo judge -p "$train" | spo records cat --min-reward 1 -o "$OUT/corpus.tmp/"
  spo records cat "$OUT/ref.jsonl.zst" --min-reward 1 -o "$OUT/corpus.tmp/"
  mv "$OUT/corpus.tmp" "$OUT/corpus"
fi

pids=()
bg() {  # run a command in the background, at most JOBS at once
  while [ "$(jobs -rp | wc -l)" -ge "$JOBS" ]; do sleep 1; done
  "$@" & pids+=($!)
}
join() { for p in "${pids[@]}"; do wait "$p"; done; pids=(); }  # fails if any job failed

common=(-m "$model" -p "$train" --values "$OUT/values.jsonl" --steps "$STEPS" --batch-size "$BATCH"
        --online-n 4 --lr "$LR" --warmup 5 --beta "$BETA" --save-every "$EVERY" --keep 1000
        --temperature-range 0.4,1.0 --max-new-tokens 256 --no-save-rollouts "${threads[@]}")
train_run() {  # name seed args...
  local dir="$OUT/$1-s$2" seed=$2 name=$1; shift 2
  [ -d "$dir/checkpoints/step-$(printf %06d "$STEPS")" ] && return 0
  local resume=()
  if [ -e "$dir/checkpoints/latest" ]; then resume=(--resume); else rm -rf "$dir"; fi
  spo train "${common[@]}" --seed "$seed" --out "$dir" "${resume[@]}" "$@" > /dev/null 2> "$dir.log" \
    || { echo "spo_vs_ppo: training $name seed $seed failed; see $dir.log" >&2; return 1; }
}
for seed in $SEEDS; do
  bg train_run spo-half "$seed" --offline "$OUT/corpus" --offline-ratio 0.5 --loss terminal:ce --model-update-interval 10
  bg train_run spo-online "$seed" --offline-ratio 0 --loss terminal:ce --model-update-interval 10
  bg train_run ppo "$seed" --algo ppo --offline-ratio 0
done
join

eval_run() {  # name, model dirs...
  local name=$1; shift
  [ -s "$OUT/eval-$name.json" ] && return 0
  spo eval -m "$@" -p "$OUT/heldout.jsonl" -n "$EVAL_N" -k 1,10 --seed 7 "${threads[@]}" --no-plot \
    > "$OUT/eval-$name.json.tmp" 2> "$OUT/eval-$name.log" \
    || { echo "spo_vs_ppo: evaluating $name failed; see $OUT/eval-$name.log" >&2; return 1; }
  mv "$OUT/eval-$name.json.tmp" "$OUT/eval-$name.json"
}
bg eval_run reference "$model"
for seed in $SEEDS; do
  for name in spo-half spo-online ppo; do
    bg eval_run "$name-s$seed" "$OUT/$name-s$seed"/checkpoints/step-*
  done
done
join
python3 "$(dirname "$0")/compare.py" "$OUT"
