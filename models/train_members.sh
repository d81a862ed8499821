#!/usr/bin/env bash
# Trains the ensemble's members (issue: accuracy) one after another. A member whose run folder
# already holds a finished run is skipped; an interrupted one resumes from its last checkpoint.
# Run from the repository root with ../shared beside it; safe to start again after any interruption.
#
#   FER_MODELS_DIR=~/fer-runs/registry models/train_members.sh ~/fer-runs
#
# PYTHON picks the interpreter (default .venv/bin/python). Each member registers under its run
# folder's name into $FER_MODELS_DIR (the repository's models/ when unset).
set -u
runs=${1:?usage: models/train_members.sh RUNS_DIR}
py=${PYTHON:-.venv/bin/python}
data=../shared/datasets/fer2013

member() {  # member NAME TRAIN-OPTIONS...
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

member fer2013-resnet --architecture resnet --epochs 100 --patience 0 --mixup 0.2 || exit 1
member fer2013-xception --architecture xception --epochs 100 --patience 0 --mixup 0.2 || exit 1
