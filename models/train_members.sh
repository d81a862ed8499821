#!/usr/bin/env bash
# The accuracy plan (issue: Accuracy), one step after another: a second member of another family,
# a pair ensemble of it and the shipped compact model, a compact student distilled from that pair
# (the default's candidate, as early as the CPU allows), then a third member of a third family and
# the ensemble of all three. A step whose run folder already holds a finished run is skipped; an
# interrupted one resumes from its last checkpoint. Run from the repository root with ../shared
# beside it; safe to start again after any interruption:
#
#   FER_MODELS_DIR=~/fer-runs/registry models/train_members.sh ~/fer-runs
#
# PYTHON picks the interpreter (default .venv/bin/python). Each model registers under its run
# folder's name into $FER_MODELS_DIR (the repository's models/ when unset); the shipped
# fer2013-compact-r2 is copied there first so the ensembles can use it. Every member trains on
# the same data, validation share and seed, so they hold out the same faces (the ensembles'
# weights are fitted there). On this 2-core CPU: resnet about 245 images/s (2-3 h), the compact
# student about 380 (3 h with its teacher's labels), xception 1.3-1.6x faster in float32
# than in bfloat16 (`tests/benchmarks/bench_training.py --architectures xception`), so float32: 5-12 h
# (the machine's speed varies by day; 46 vs 61 images/s on a slow one).
set -u
runs=${1:?usage: models/train_members.sh RUNS_DIR}
py=${PYTHON:-.venv/bin/python}
data=../shared/datasets/fer2013
registry=${FER_MODELS_DIR:-models}

run() {  # run NAME TRAIN-OPTIONS...
  local name=$1 dir=$runs/$1
  shift
  if grep -q '"type": "finished"' "$dir/events.jsonl" 2>/dev/null; then
    echo "$name: finished, skipped"
  elif [ -f "$dir/config.json" ]; then
    "$py" -m fer_core train --resume "$dir"
  else
    "$py" -m fer_core train --data "$data/train" --test-data "$data/test" --register-as "$name" --run-dir "$dir" "$@"
  fi
}

mkdir -p "$registry"
[ -d "$registry/fer2013-compact-r2" ] || cp -r models/fer2013-compact-r2 "$registry/"
run fer2013-resnet --architecture resnet --epochs 100 --patience 0 --mixup 0.2 || exit 1
[ -d "$registry/fer2013-pair" ] || "$py" -m fer_core ensemble fer2013-pair \
  --members fer2013-compact-r2 fer2013-resnet --fit-weights --test-data "$data/test" || exit 1
run fer2013-student --architecture compact --epochs 120 --patience 0 --mixup 0.2 \
  --teacher fer2013-pair --teacher-tta flip || exit 1
run fer2013-xception --architecture xception --epochs 100 --patience 0 --mixup 0.2 --precision float32 || exit 1
[ -d "$registry/fer2013-ensemble" ] || "$py" -m fer_core ensemble fer2013-ensemble \
  --members fer2013-compact-r2 fer2013-resnet fer2013-xception --fit-weights --test-data "$data/test" || exit 1
