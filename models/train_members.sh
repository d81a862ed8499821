#!/usr/bin/env bash
# Rebuild every shipped model, in the order they depend on each other, with the commands their cards
# record (docs/models.md says what each is and what the attempts that were not shipped taught).
# Run from the repository root with ../shared beside it; safe to start again after any interruption:
# a finished step is skipped, an interrupted one resumes from its last checkpoint.
#
#   FER_MODELS_DIR=~/fer-runs/registry models/train_members.sh ~/fer-runs
#
# Wall time on 2 cores (no GPU): about 20 hours in all where they were made; the resnet from scratch alone 7.8 h.
# PYTHON picks the interpreter (default .venv/bin/python). Each model registers under its run
# folder's name into $FER_MODELS_DIR (the repository's models/ when unset). Every FER-2013 model
# trains on the same data, validation share and seed, so they hold out the same faces, where the
# ensembles' weights are fitted. Two models here are steps only, not shipped: fer2013-compact (the
# first stage of compact-r2) and fer2013-pair (the teacher of the distilled resnet).
set -u
runs=${1:?usage: models/train_members.sh RUNS_DIR}
py=${PYTHON:-.venv/bin/python}
data=../shared/datasets/fer2013
registry=${FER_MODELS_DIR:-models}

run() {  # run NAME TRAIN-OPTIONS...
  local name=$1 dir=$runs/$1
  shift
  if [ -f "$registry/$name/card.json" ]; then
    echo "$name: registered, skipped"
  elif grep -q '"type": "finished"' "$dir/events.jsonl" 2>/dev/null; then
    echo "$name: finished, skipped"
  elif [ -f "$dir/config.json" ]; then
    "$py" -m fer_core train --resume "$dir"
  else
    "$py" -m fer_core train --data "$data/train" --test-data "$data/test" --register-as "$name" --run-dir "$dir" "$@"
  fi
}

ensemble() {  # ensemble NAME ENSEMBLE-OPTIONS...
  local name=$1
  shift
  [ -d "$registry/$name" ] || "$py" -m fer_core ensemble "$name" --test-data "$data/test" "$@"
}

mkdir -p "$registry"
# the compact CNN: 60 epochs, then 30 more from that checkpoint with a cosine restart
run fer2013-compact --architecture compact --epochs 60 || exit 1
run fer2013-compact-r2 --architecture compact --epochs 30 --learning-rate 0.01 --warmup-epochs 1 \
  --finetune-from fer2013-compact || exit 1
# the resnet from scratch, and the resnet fine-tuned with the pair (compact-r2 + resnet) as teacher
run fer2013-resnet --architecture resnet --epochs 100 --patience 0 --mixup 0.2 || exit 1
ensemble fer2013-pair --members fer2013-compact-r2 fer2013-resnet --fit-weights || exit 1
run fer2013-resnet-distilled --architecture resnet --finetune-from fer2013-resnet --epochs 8 \
  --learning-rate 0.002 --warmup-epochs 1 --patience 0 --mixup 0.2 \
  --teacher fer2013-pair --teacher-tta flip --teacher-mode consistent || exit 1
# members: the resnet warm-restarted, and the distilled resnet fine-tuned on larger crops
run fer2013-resnet-c --architecture resnet --finetune-from fer2013-resnet --epochs 16 --learning-rate 0.02 \
  --warmup-epochs 1 --patience 0 --mixup 0.2 --run-seed 11 || exit 1
ensemble fer2013-trio --members fer2013-compact-r2 fer2013-resnet-distilled fer2013-resnet-c \
  --fit-weights --fit-tta flip || exit 1
run fer2013-resnet-distilled-64 --architecture resnet --finetune-from fer2013-resnet-distilled --input-size 64 \
  --epochs 7 --learning-rate 0.01 --warmup-epochs 1 --patience 0 --mixup 0.2 --run-seed 23 || exit 1
run fer2013-resnet-distilled-80 --architecture resnet --finetune-from fer2013-resnet-distilled --input-size 80 \
  --epochs 7 --learning-rate 0.01 --warmup-epochs 1 --patience 0 --mixup 0.2 --run-seed 37 || exit 1
run fer2013-resnet-distilled-64b --architecture resnet --finetune-from fer2013-resnet-distilled --input-size 64 \
  --epochs 12 --learning-rate 0.01 --warmup-epochs 1 --patience 0 --mixup 0.2 --run-seed 43 || exit 1
ensemble fer2013-quintet-b --members fer2013-resnet fer2013-resnet-c fer2013-resnet-distilled-64 \
  fer2013-resnet-distilled-80 fer2013-resnet-distilled-64b --fit-weights --fit-tta flip || exit 1
# the RAF-DB model from OpenCV Zoo (its file is in ../shared/models/opencv_fer), batch dimension freed
if [ ! -f "$registry/raf-mobilefacenet/card.json" ]; then
  mkdir -p "$registry/raf-mobilefacenet"
  "$py" fer_core/assets/derive_raf_fer.py \
    ../shared/models/opencv_fer/facial_expression_recognition_mobilefacenet_2022july_int8.onnx \
    "$registry/raf-mobilefacenet/model.onnx" || exit 1
  cp models/raf-mobilefacenet/card.json models/raf-mobilefacenet/LICENSE "$registry/raf-mobilefacenet/"
fi
# the resnet taught by the trio and the RAF-DB model on FER-2013 and on unlabelled real faces
[ -d "$HOME/fer-data/celeba/celebA" ] || bash models/fetch_real_faces.sh "$HOME/fer-data" || exit 1
run resnet-realfaces --architecture resnet --finetune-from fer2013-resnet-distilled --epochs 3 \
  --learning-rate 0.002 --warmup-epochs 1 --patience 0 --mixup 0.2 --teacher fer2013-trio --teacher-tta none \
  --second-teacher raf-mobilefacenet --second-teacher-weight 0.2 --second-teacher-weight-unlabeled 0.4 \
  --unlabeled "$HOME/fer-data/utkface/data/UTKFace/unlabeled:$HOME/fer-data/celeba/celebA" \
  --aug-blur 0.15 --aug-rescale 0.25 --aug-jpeg 0.15 || exit 1
# the RAF-DB network itself, rebuilt in Keras and fine-tuned on colour aligned crops of FER-2013 and of
# the unlabelled real faces, taught as the resnet above (its teachers label the 72k faces first, about an hour)
allage="$HOME/fer-data/allagefaces/All-Age-Faces Dataset/original images"
[ -d "$allage" ] || bash models/fetch_real_faces.sh "$HOME/fer-data" || exit 1
run realfaces-mobilefacenet --architecture imported --finetune-from raf-mobilefacenet --epochs 2 \
  --learning-rate 0.001 --warmup-epochs 0 --patience 0 --mixup 0.2 --teacher fer2013-trio --teacher-tta none \
  --second-teacher raf-mobilefacenet --second-teacher-weight 0.1 --second-teacher-weight-unlabeled 0.3 \
  --unlabeled "$HOME/fer-data/utkface/data/UTKFace/unlabeled:$HOME/fer-data/celeba/celebA:$allage" \
  --aug-blur 0.15 --aug-rescale 0.25 --aug-jpeg 0.15 || exit 1
# both kinds of face at once: the quintet's five ResNets and the colour student, weights fitted on
# FER-2013 validation and wild_dev together (its card adds 5-fold cross-validated figures of both)
ensemble realfaces-sextet --members fer2013-resnet fer2013-resnet-c fer2013-resnet-distilled-64 \
  fer2013-resnet-distilled-80 fer2013-resnet-distilled-64b realfaces-mobilefacenet \
  --fit-weights --fit-data validation ../shared/datasets/wild_dev || exit 1
