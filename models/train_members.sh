#!/usr/bin/env bash
# The accuracy plan (issue: Accuracy), one step after another: a second member of another family, a
# pair ensemble of it and the shipped compact model, the default fine-tuned with that pair as its
# teacher, a third member of another architecture, then a faster network for the Live budget (see
# below for what each gave and why the plan changed). Teachers judge every augmented, mixed
# batch as the student sees it (`--teacher-mode consistent`; 141 against 184 images/s for targets
# fixed on the clean faces in a 4,000-image resnet epoch with the pair as teacher); a compact
# student taught with fixed targets gained little and is no longer a step (see README). A step whose
# model is shipped in models/ is skipped (a run stopped early registers its best epoch in the
# registry, so only a shipped model counts as done); one whose run folder holds a finished run is
# skipped; an interrupted one resumes from its last checkpoint. Run from the repository root with
# ../shared beside it; safe to start again after any interruption:
#
#   FER_MODELS_DIR=~/fer-runs/registry models/train_members.sh ~/fer-runs
#
# Before the third member, the default itself is fine-tuned for 8 epochs at a tenth of its learning
# rate with the pair (flip) as a consistent teacher: the cheapest route to a distilled default (1.2
# h on the slower machine, where a student from scratch takes 13 h or more).
#
# The third member, a 32-epoch vgg (61.1% on `test`), got a weight of at most 0.03 in every subset
# fitted on validation (tests/benchmarks/BENCHMARKS.md), so the three-member ensemble and a default
# distilled from it were dropped from the plan. On that slower machine the distilled default costs
# 3.7 ms per face, over the 2 ms Live budget: fine-tuned into `resnet-fast` (the same weights with a
# stride-2 stem, every stage at half resolution, a quarter of the cost) for 12 epochs it reached
# only 62.8% on validation. So `resnet-fast` now trains from scratch for 100 epochs (epochs of
# 160-210 s there, about 5 hours), without a teacher so that it errs differently from the pair (a member for the
# ensemble), then is fine-tuned for 8 epochs with the pair (flip) as its teacher, the recipe that
# made the default: the candidate for a default within 2 ms per face here.
#
# Before the resnet-fast (paused at epoch 16 of 100 on 2026-12-02; it resumes after), a second
# resnet from another run seed (`--run-seed 7`: other starting weights, shuffling and augmentation,
# the same validation split). A net fine-tuned from another adds little beside it (the first resnet
# gets a weight of 0.02-0.10 beside the distilled default made from it, compact-r2 0.29-0.36), and
# the resnet is the strongest family here, so an independently started one is the likeliest member
# to lift the pair to the 70% target; the resnet-fast mainly serves the Live budget, a target
# already met on the faster machine. Whether the new resnet joins the pair is decided by
# `tests.benchmarks.bench_ensembles` on validation.
#
# That second resnet reached epoch 60 of 100 (validation 66.4% at its best, epoch 55) and was lost with
# its machine on 2026-12-02, as the vgg's first run had been: run folders live outside the repository
# and do not outlast a change of machine, and a 100-epoch resnet takes three sessions here. So before
# it comes a member that finishes inside one session: the shipped resnet warm-restarted (its learning
# rate back up to 0.02, one warm-up epoch, 16 epochs of cosine, another run seed; about 85 minutes
# here), which leaves its basin at the high rate and settles elsewhere, as snapshot ensembles do.
#
# A warm restart errs too much like its parent (resnet-c lifts the ensembles by 0.1-0.3 points), so
# the next one-session member starts from scratch: the compact CNN from another run seed, 30 epochs
# of cosine (about 4.7 minutes an epoch on the AVX2 machine, 2.4 hours), independent of compact-r2,
# which was fine-tuned from the first compact model. It reached 63.1% on validation (60.8% on `test`)
# and got a weight of at most 0.04 beside compact-r2 and a resnet, so it is not shipped; it is a dropped step.
#
# On a machine with AMX-BF16 (session 18) a resnet from scratch fits in one session: run seed 17, 36
# epochs (2.0 hours in bfloat16). It reached 64.9% on validation (63.1% on `test`) and got a weight of
# at most 0.04 beside compact-r2 and a resnet, so it is not shipped either; a dropped step.
#
# The second resnet (run seed 7) then had 60 epochs of cosine instead of 100, two sessions where the
# run folder outlasts the first (sessions 18-20 kept one machine), where 100 epochs took three and were
# lost twice with their machines. In bfloat16 on the AMX machine its epochs took 151-579 s (median 259
# s, 4.7 hours in all, slower while the machine was shared; `python -m fer_core runs --runs-dir
# ~/fer-runs fer2013-resnet-b`).
#
# It finished in session 20 (best epoch 54: validation 67.0%, `test` 65.1%) and got a weight of at most
# 0.07 beside compact-r2 and a resnet with flip; the subset chosen on validation stayed the trio's, so
# it is not shipped either; a dropped step (benchmark document, session 20).
#
# Session 21 fine-tuned compact-r2 for 8 epochs at lr 0.002 with the trio (flip) as a consistent
# teacher: validation 67.1% at best (compact-r2: 66.6%), `test` 64.7%, and a weight of at most 0.03
# beside compact-r2 and the resnets, so it is a dropped step too. Every member that one session can
# train has now added at most a face or two; the families that lift an ensemble are those trained
# long enough (compact-r2, the 100-epoch resnet), so the next member is the third family trained
# for 60 epochs, as its first comparison run was (65.1% on `test` then, where the 32-epoch vgg
# reached 61.1%): about 6 minutes an epoch in bfloat16 on the AMX machine (74 images/s, `python -m
# tests.benchmarks.bench_training --architectures compact,resnet,vgg,xception --steps 12`), 6 hours
# over three or more sessions, resumed from its last checkpoint each time.
#
# PYTHON picks the interpreter (default .venv/bin/python). Each model registers under its run
# folder's name into $FER_MODELS_DIR (the repository's models/ when unset); every shipped model
# (each folder in models/ with a card) is copied there first so later steps can use
# them. Every member trains on the same data, validation share and seed, so they hold out the same
# faces (the ensembles' weights are fitted there); until 2026-12-02 the starting
# weights were not seeded (each run drew its own); now `--seed` fixes them too and `--run-seed`
# changes them (and shuffling and augmentation) without changing the validation split. On this 2-core CPU:
# resnet about 245 images/s on a fast day (its 100 epochs took 7.8 h over slower days), the compact
# student about 380 (3 h with its teacher's labels). The third family was xception, but on
# 2026-12-01 (`python -m tests.benchmarks.bench_training --architectures compact,vgg,resnet,xception
# --steps 10`) it trained at 61 images/s against vgg's 117 and resnet's 132 (12 h for 100 epochs),
# so the third member is the wider VGG-style net with a dense head. Its first 60-epoch run was lost
# at epoch 20 with the machine it ran on; the next machine (AVX2, no bfloat16) trained it at 33-46
# images/s, so it now has 32 epochs (5-6 h there).
set -u
runs=${1:?usage: models/train_members.sh RUNS_DIR}
py=${PYTHON:-.venv/bin/python}
data=../shared/datasets/fer2013
registry=${FER_MODELS_DIR:-models}

run() {  # run NAME TRAIN-OPTIONS...
  local name=$1 dir=$runs/$1
  shift
  if [ -f "models/$name/card.json" ]; then
    echo "$name: shipped, skipped"
  elif grep -q '"type": "finished"' "$dir/events.jsonl" 2>/dev/null; then
    echo "$name: finished, skipped"
  elif [ -f "$dir/config.json" ]; then
    "$py" -m fer_core train --resume "$dir"
  else
    "$py" -m fer_core train --data "$data/train" --test-data "$data/test" --register-as "$name" --run-dir "$dir" "$@"
  fi
}

mkdir -p "$registry"
for card in models/*/card.json; do
  shipped=$(basename "$(dirname "$card")")
  [ -d "$registry/$shipped" ] || [ "$registry" = models ] || cp -r "models/$shipped" "$registry/"
done
run fer2013-resnet --architecture resnet --epochs 100 --patience 0 --mixup 0.2 || exit 1
[ -d "$registry/fer2013-pair" ] || "$py" -m fer_core ensemble fer2013-pair \
  --members fer2013-compact-r2 fer2013-resnet --fit-weights --test-data "$data/test" || exit 1
run fer2013-resnet-distilled --architecture resnet --finetune-from fer2013-resnet --epochs 8 \
  --learning-rate 0.002 --warmup-epochs 1 --patience 0 --mixup 0.2 \
  --teacher fer2013-pair --teacher-tta flip --teacher-mode consistent || exit 1
# Dropped steps, not shipped (their figures are in the benchmark document); on a new machine, where
# their finished run folders are gone, they would train again, so they are no longer run:
#   fer2013-vgg: --architecture vgg --epochs 32 --patience 0 --mixup 0.2
#   fer2013-resnet-fast: --architecture resnet-fast --finetune-from fer2013-resnet-distilled --epochs 12
#     --learning-rate 0.01 --warmup-epochs 1 --patience 0 --mixup 0.2
#     --teacher fer2013-resnet-distilled --teacher-tta none --teacher-mode consistent
#   fer2013-compact-s13: --architecture compact --epochs 30 --patience 0 --run-seed 13
#   fer2013-resnet-s17: --architecture resnet --epochs 36 --patience 0 --mixup 0.2 --run-seed 17
#   fer2013-resnet-b: --architecture resnet --epochs 60 --patience 0 --mixup 0.2 --run-seed 7
#   fer2013-compact-r2-distilled: --architecture compact --finetune-from fer2013-compact-r2 --epochs 8
#     --learning-rate 0.002 --warmup-epochs 1 --patience 0 --mixup 0.2
#     --teacher fer2013-trio --teacher-tta flip --teacher-mode consistent
run fer2013-resnet-c --architecture resnet --finetune-from fer2013-resnet --epochs 16 --learning-rate 0.02 \
  --warmup-epochs 1 --patience 0 --mixup 0.2 --run-seed 11 || exit 1
# Members at 64 px (sessions 21-22): inside an ensemble they see the 48 px crop resized, and they get
# the largest weights yet; the quintet is the subset chosen on validation with flip.
run fer2013-resnet-64 --architecture resnet --finetune-from fer2013-resnet --input-size 64 --epochs 7 \
  --learning-rate 0.01 --warmup-epochs 1 --patience 0 --mixup 0.2 --run-seed 19 || exit 1
run fer2013-resnet-distilled-64 --architecture resnet --finetune-from fer2013-resnet-distilled --input-size 64 \
  --epochs 7 --learning-rate 0.01 --warmup-epochs 1 --patience 0 --mixup 0.2 --run-seed 23 || exit 1
run fer2013-compact-64 --architecture compact --finetune-from fer2013-compact-r2 --input-size 64 --epochs 7 \
  --learning-rate 0.01 --warmup-epochs 1 --patience 0 --mixup 0.2 --run-seed 29 || exit 1
[ -d "$registry/fer2013-quintet" ] || "$py" -m fer_core ensemble fer2013-quintet --members fer2013-resnet \
  fer2013-resnet-c fer2013-resnet-64 fer2013-resnet-distilled-64 fer2013-compact-64 --fit-weights --fit-tta flip \
  --test-data "$data/test" || exit 1
# Sessions 23-24: the default fine-tuned at 80 px for 7 epochs, and at 64 px again for 12 epochs with
# another run seed; with ten models in the pool the subset chosen on validation with flip is
# `fer2013-quintet-b` (the quintet's resnet, resnet-c and distilled-64 with these two).
run fer2013-resnet-distilled-80 --architecture resnet --finetune-from fer2013-resnet-distilled --input-size 80 \
  --epochs 7 --learning-rate 0.01 --warmup-epochs 1 --patience 0 --mixup 0.2 --run-seed 37 || exit 1
run fer2013-resnet-distilled-64b --architecture resnet --finetune-from fer2013-resnet-distilled --input-size 64 \
  --epochs 12 --learning-rate 0.01 --warmup-epochs 1 --patience 0 --mixup 0.2 --run-seed 43 || exit 1
[ -d "$registry/fer2013-quintet-b" ] || "$py" -m fer_core ensemble fer2013-quintet-b --members fer2013-resnet \
  fer2013-resnet-c fer2013-resnet-distilled-64 fer2013-resnet-distilled-80 fer2013-resnet-distilled-64b \
  --fit-weights --fit-tta flip --test-data "$data/test" || exit 1
run fer2013-vgg-60 --architecture vgg --epochs 60 --patience 0 --mixup 0.2 || exit 1
run fer2013-resnet-fast-scratch --architecture resnet-fast --epochs 100 --patience 0 --mixup 0.2 || exit 1
run fer2013-resnet-fast-distilled --architecture resnet-fast --finetune-from fer2013-resnet-fast-scratch --epochs 8 \
  --learning-rate 0.002 --warmup-epochs 1 --patience 0 --mixup 0.2 \
  --teacher fer2013-pair --teacher-tta flip --teacher-mode consistent || exit 1
