#!/usr/bin/env bash
# A cron job that grows a shared offline corpus: sample the latest checkpoint on the train problems,
# judge, and add the result as one new shard. Any number of these may run at once (on one machine
# or many sharing a file system): each adds its own uniquely named shard atomically, and readers
# (spo train --offline CORPUS) never see half a shard. Nothing is ever appended to an existing file.
#
#   crontab: 0 2 * * *  cd /srv/spo && MODEL=runs/spo/checkpoints/latest PROBLEMS=train.jsonl \
#                       CORPUS=/shared/corpus examples/nightly_corpus.sh >> logs/nightly.log 2>&1
set -euo pipefail
: "${MODEL:?checkpoint directory}" "${PROBLEMS:?problems file}" "${CORPUS:?corpus directory}"
N=${N:-4}
SEED=${SEED:-$(date +%Y%m%d)}   # a new seed every night: new samples, not the same ones again

mkdir -p "$CORPUS"
spo sample -m "$MODEL" -p "$PROBLEMS" -n "$N" --temperature-range 0.4,1.0 --top-p 0.95 --seed "$SEED" \
  | spo judge -p "$PROBLEMS" -o "$CORPUS/"
spo records check "$CORPUS" >&2   # counts over the whole corpus, for the log
