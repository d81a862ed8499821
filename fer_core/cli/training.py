"""`python -m fer_core train`: one option per training setting, and the run in this process."""

from __future__ import annotations

import argparse
import shlex
import sys
from dataclasses import fields
from datetime import datetime
from pathlib import Path

from fer_core.paths import runs_dir
from fer_core.train.config import ARCHITECTURES, Augmentation, TrainConfig
from fer_core.train.events import event_line

_HELP = {
    "architecture": "; ".join(f"{name} ({note})" for name, note in ARCHITECTURES.items()),
    "precision": "auto picks bfloat16 where the CPU has it",
    "finetune_from": "registered model to start from",
    "freeze_bn": "keep the batch-normalisation layers' statistics and scales as they are (for fine-tuning)",
    "register_as": "register the best checkpoint under this model name",
    "test_data": "labelled set evaluated once at the end, for the model card only",
    "overwrite": "replace an existing model of the --register-as name (never a folder holding other files)",
    "align": "turn faces with landmarks upright, as inference does (default on)",
    "mixup": "mix pairs of training faces, Beta(ALPHA, ALPHA) weights (0 = off)",
    "teacher": "registered model (e.g. an ensemble) to distil: its soft targets on the training faces",
    "teacher_tta": "test-time augmentation of the teacher when it labels the training faces (none/flip/crops)",
    "teacher_mode": "fixed: the teacher labels each face once before training; consistent: every augmented "
    "batch as the student sees it (slower; a second teacher's share stays fixed)",
    "distill_temperature": "temperature softening teacher and student logits in the distillation loss",
    "seed": "seed of the validation split (and of the run unless --run-seed is given)",
    "run_seed": "seed of the starting weights, shuffling and augmentation (default: --seed); another value "
    "trains another model on the same validation split, e.g. an ensemble member of the same architecture",
    "second_teacher": "a second teacher of any kind (e.g. raf-mobilefacenet, trained on real photos); its "
    "calibrated logits are mixed with the teacher's",
    "second_teacher_weight": "the second teacher's share of the mixed logits (0-1)",
    "second_teacher_weight_unlabeled": "its share on the unlabelled faces (default: --second-teacher-weight)",
    "unlabeled": "folders of face photos without labels (joined with ':'): their largest faces are added, "
    "with the teachers' probabilities as targets",
    "unlabeled_max": "at most this many unlabelled photos",
    "unlabeled_weight": "loss weight of each unlabelled face (labelled faces have their class weight)",
    "teacher_logits_from": "an earlier run folder whose teachers' logits to reuse (same teachers, data, split and "
    "unlabelled faces; only the shares, loss and schedule may differ): skips labelling every face again",
    "distill_weight": "share of the loss on the teacher's soft targets (0-1; the rest on the labels)",
}


def add_train_parser(sub: argparse._SubParsersAction) -> None:
    """Register the `train` sub-command: one option per TrainConfig field."""
    p = sub.add_parser("train", help="train or fine-tune a model (runs in this process)")
    p.set_defaults(handler=run_train_command)
    p.add_argument("--run-dir", help="run folder (default $FER_RUNS_DIR or runs/, then <time>-<architecture>)")
    p.add_argument("--resume", metavar="RUN_DIR", help="continue an interrupted run from its last checkpoint")
    p.add_argument("--config", type=Path, help="read every setting from a config.json (other options are ignored)")
    p.add_argument("--set-active", action="store_true", help="make the registered model the active one")
    for f in fields(TrainConfig):
        if f.name in ("augmentation", "command"):
            continue
        flag = "--" + f.name.replace("_", "-")
        kind = {"int": int, "float": float, "int | None": int, "float | None": float}.get(str(f.type), str)
        kwargs = {"type": kind, "help": _HELP.get(f.name)}
        if str(f.type) == "bool" and not f.default:
            p.add_argument(flag, action="store_true", default=None, help=_HELP.get(f.name))
        elif str(f.type) == "bool":
            p.add_argument(flag, type=_parse_bool, default=None, help=(_HELP.get(f.name) or "") + " (on/off)")
        elif f.name == "data":
            p.add_argument(flag, **kwargs)
        else:
            p.add_argument(flag, default=None, **kwargs)
    for f in fields(Augmentation):
        flag = "--aug-" + f.name.replace("_", "-")
        if f.type == "bool":
            p.add_argument(flag, type=_parse_bool, default=None, help="on/off")
        else:
            p.add_argument(flag, type=float, default=None, help=f"(0 turns it off; default {f.default})")


def _parse_bool(text: str) -> bool:
    if text.lower() in ("1", "true", "on", "yes"):
        return True
    if text.lower() in ("0", "false", "off", "no"):
        return False
    raise argparse.ArgumentTypeError(f"expected on/off. Received: {text!r}")


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    """A TrainConfig from parsed arguments; unset options keep their defaults."""
    aug = {f.name: getattr(args, "aug_" + f.name) for f in fields(Augmentation)}
    values = {
        f.name: getattr(args, f.name)
        for f in fields(TrainConfig)
        if f.name not in ("augmentation", "command") and getattr(args, f.name) is not None
    }
    values["augmentation"] = Augmentation(**{k: v for k, v in aug.items() if v is not None})
    values["command"] = command_line(args)
    return TrainConfig(**values)


def command_line(args: argparse.Namespace) -> str:
    """The command as typed (main() stores it; sys.argv when a parser was used directly)."""
    return getattr(args, "command_line", None) or "python -m fer_core " + shlex.join(sys.argv[1:])


def _print_event(event: dict) -> None:
    line = event_line(event)
    if line:
        print(line, flush=True)


def run_train_command(args: argparse.Namespace) -> int:
    """Start or resume a run in this process; prints the final event."""
    from fer_core.registry import set_active_model
    from fer_core.train.run import TrainingError, run_training

    if args.resume:
        run_dir, config, resume = Path(args.resume), None, True
    elif args.config:
        config, resume = TrainConfig.load(args.config), False
        if not config.command:
            config.command = command_line(args)
        run_dir = Path(args.run_dir or args.config.parent)
    else:
        if not args.data:
            print("error: --data is required (a class-folder dataset or a FER-2013 CSV)", file=sys.stderr)
            return 2
        config = config_from_args(args)
        stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
        run_dir, resume = Path(args.run_dir or runs_dir() / f"{stamp}-{config.architecture}"), False
    print(f"run folder: {run_dir}", file=sys.stderr)
    try:
        final = run_training(run_dir, config, resume=resume, report=_print_event)
    except TrainingError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    print(f"{final['type']}: model={final.get('model')} epochs={final.get('epochs_done')}")
    if args.set_active and final.get("model"):
        set_active_model(final["model"], Path(config.models_dir) if config and config.models_dir else None)
    return 0
