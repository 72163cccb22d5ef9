#!/usr/bin/env bash
# The paper's comparison in miniature, on the built-in benchmark: SPO half-online (offline corpus =
# judged human solutions + reference samples), SPO online, and PPO, each over three seeds with the
# same number of steps and batch size; then pass@1/pass@10 on held-out problems against the
# reference model. Writes $OUT/summary.{json,md,png} (examples/compare.py).
#
#   examples/spo_vs_ppo.sh                          # the default model; ~1-2 hours on 2 CPU cores
#   STEPS=10 SEEDS="0" examples/spo_vs_ppo.sh       # a smoke run
set -euo pipefail
CONFIG=${CONFIG:-default}
OUT=${OUT:-runs/spo-vs-ppo}
SEEDS=${SEEDS:-"0 1 2"}
STEPS=${STEPS:-60}
BATCH=${BATCH:-16}
LR=${LR:-2e-4}
BETA=${BETA:-0.1}
K=${K:-16}                              # reference samples per train problem, for V(x0)
TRAIN_PROBLEMS=${TRAIN_PROBLEMS:-300}
HELDOUT_PROBLEMS=${HELDOUT_PROBLEMS:-100}
EVAL_N=${EVAL_N:-20}
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
  spo estimate-v --beta "$BETA" "$OUT/ref.jsonl.zst" -o "$OUT/values.jsonl"
fi
if [ ! -d "$OUT/corpus" ]; then
  mkdir -p "$OUT/corpus.tmp"
  spo records solutions "$train" | spo judge -p "$train" -o "$OUT/corpus.tmp/"
  spo records cat "$OUT/ref.jsonl.zst" -o "$OUT/corpus.tmp/"
  mv "$OUT/corpus.tmp" "$OUT/corpus"
fi

common=(-m "$model" -p "$train" --values "$OUT/values.jsonl" --steps "$STEPS" --batch-size "$BATCH"
        --online-n 4 --lr "$LR" --warmup 5 --beta "$BETA" --save-every "$STEPS" --keep 1
        --temperature-range 0.4,1.0 --max-new-tokens 256 --no-save-rollouts)
for seed in $SEEDS; do
  run() { local name=$1; shift; [ -f "$OUT/$name-s$seed/checkpoints/latest/model.safetensors" ] && return 0
          spo train "${common[@]}" --seed "$seed" --out "$OUT/$name-s$seed" "$@" > /dev/null; }
  run spo-half --offline "$OUT/corpus" --offline-ratio 0.5 --loss terminal:ce --model-update-interval 10
  run spo-online --offline-ratio 0 --loss terminal:ce --model-update-interval 10
  run ppo --algo ppo --offline-ratio 0
done

eval_one() {  # name, model dir
  [ -s "$OUT/eval-$1.json" ] && return 0
  spo eval -m "$2" -p "$OUT/heldout.jsonl" -n "$EVAL_N" -k 1,10 --seed 7 --no-plot > "$OUT/eval-$1.json.tmp"
  mv "$OUT/eval-$1.json.tmp" "$OUT/eval-$1.json"
}
eval_one reference "$model"
for seed in $SEEDS; do
  for name in spo-half spo-online ppo; do
    eval_one "$name-s$seed" "$OUT/$name-s$seed/checkpoints/latest"
  done
done
python3 "$(dirname "$0")/compare.py" "$OUT"
