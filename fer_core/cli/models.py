"""`python -m fer_core` models, measure, ensemble, quantize: the registry."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from fer_core.registry import TFLITE_WEIGHTS, WEIGHT_MODES
from fer_core.tta import TTA_MODES


def add_parsers(sub: argparse._SubParsersAction) -> None:
    """Register this family's sub-commands."""
    p = sub.add_parser("models", help="list registered models, show one model's card, or choose the active one")
    p.add_argument(
        "name",
        nargs="?",
        help="a registered model: print its card (figures per split and class, TTA modes, calibration, how it "
        "was trained and its learning curve; with --json the whole card)",
    )
    p.add_argument("--activate", metavar="NAME", help="make NAME the active model")
    p.add_argument(
        "--measure",
        action="store_true",
        help="also time every model on this machine (ms per face in a batch of 64, and one face per call as "
        "Live runs), since the card's figure comes from the machine the model was made on",
    )
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=cmd_models)

    p = sub.add_parser(
        "measure",
        help="measure a registered model (e.g. an ONNX model you brought) for its card: FER-2013 validation, "
        "test and other labelled sets, each TTA mode's cost; its calibration is left as it is",
    )
    p.add_argument("name", help="registered model")
    p.add_argument("--data", type=Path, required=True, help="the training set whose validation split to measure on")
    p.add_argument("--val-fraction", type=float, default=0.1, help="validation share of --data (default 0.1)")
    p.add_argument("--seed", type=int, default=42, help="seed of the validation split (default 42, as `train`)")
    p.add_argument("--test-data", type=Path, required=True, help="held-out labelled set")
    p.add_argument(
        "--also", type=Path, nargs="*", default=[], metavar="DIR", help="more labelled sets, named by their folder"
    )
    p.set_defaults(handler=cmd_measure)

    p = sub.add_parser("ensemble", help="register an ensemble: several models whose logits are averaged")
    p.add_argument("name", help="model name for the ensemble")
    p.add_argument("--members", nargs="+", required=True, metavar="MODEL", help="registered models (two or more)")
    p.add_argument("--fit-weights", action="store_true", help="fit member weights on their shared validation split")
    p.add_argument(
        "--fit-tta",
        choices=sorted(TTA_MODES),
        default="none",
        help="with --fit-weights: fit them on the members' logits under this test-time augmentation, "
        "the mode the ensemble will mostly run in (default none)",
    )
    p.add_argument(
        "--fit-data",
        nargs="+",
        metavar="DIR",
        help="fit the weights on these labelled sets instead, 'validation' naming the members' shared validation "
        "split (each set counts alike; members of any kind, e.g. an ONNX model trained on real photos, which is "
        "scored on that split too); the card also gets 5-fold cross-validated figures per set",
    )
    p.add_argument("--test-data", type=Path, help="labelled set measured once for the card (never for choices)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing model of this name")
    p.add_argument("--set-active", action="store_true", help="make the ensemble the active model")
    p.set_defaults(handler=cmd_ensemble)

    p = sub.add_parser(
        "blend",
        help="register a model whose weights lie between two fine-tunes of one network (e.g. the default and "
        "a fine-tune of it taught on real photos), measured like a trained model",
    )
    p.add_argument("name", help="model name for the blend")
    p.add_argument(
        "--models", nargs=2, required=True, metavar=("FIRST", "SECOND"), help="two registered models of one network"
    )
    p.add_argument(
        "--share",
        type=float,
        required=True,
        help="the second model's share of every weight, 0-1 (0.5: the midpoint)",
    )
    p.add_argument("--overwrite", action="store_true", help="replace an existing model of this name")
    p.set_defaults(handler=cmd_blend)

    p = sub.add_parser(
        "quantize", help="export a model's LiteRT file again (int8 weights by default) and measure its card again"
    )
    p.add_argument("name", help="registered model with Keras weights")
    p.add_argument(
        "--weights",
        choices=WEIGHT_MODES,
        default=TFLITE_WEIGHTS,
        help="dynamic: int8 weights, activations quantized as it runs (default); int8: weights and activations "
        "(fastest in batches, may cost accuracy); float16 or float32 weights",
    )
    p.set_defaults(handler=cmd_quantize)


def cmd_models(args) -> int:
    from fer_core.registry import list_models, set_active_model

    if args.activate:
        name = args.activate.rstrip("/")  # a shell's tab completion adds the slash of a folder
        set_active_model(name)
        print(f"active model: {name}")
        return 0
    if args.name:
        return _show_model(args)
    rows = list_models()
    if args.measure:
        for row in rows:
            if row["ok"]:
                row["here_ms_per_face"], row["here_ms_one_face"], row["multiply_adds"] = _time_model(row["name"])
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    if not rows:
        print("no models registered; train one with `python -m fer_core train ... --register-as NAME`")
        return 0
    if not any(r["active"] and r["ok"] for r in rows):
        from fer_core.registry import active_model_name

        print(
            f"warning: the active model {active_model_name()!r} (models/active.txt) is not usable; "
            "choose one with `python -m fer_core models --activate NAME`",
            file=sys.stderr,
        )
    width = max([len("architecture")] + [len(r.get("architecture", "")) for r in rows])
    name_width = max([len("name")] + [len(r["name"]) for r in rows])
    head = f"{'parameters':>10} {'accuracy':>9} {'macro-F1':>9} {'ms/face':>8} {'weights':>8}"
    if args.measure:
        head += f" {'here b64':>9} {'here b1':>8} {'M mult-adds':>11}"
    print(f"  {'name':<{name_width}} {'architecture':<{width}} {head}")
    for row in rows:
        mark = "*" if row["active"] else " "
        if not row["ok"]:
            print(f"{mark} {row['name']:<{name_width}} BROKEN: {row['error']}")
            continue
        params = f"{row['parameters']:,}" if row.get("parameters") else "-"
        acc = f"{row['accuracy']:.1%}" if row.get("accuracy") is not None else "-"
        f1 = f"{row['macro_f1']:.3f}" if row.get("macro_f1") is not None else "-"
        cost = f"{row['ms_per_face']:.2f}" if row.get("ms_per_face") is not None else "-"
        split = "" if row.get("split") in (None, "test") else f" ({row['split']})"
        figures = f"{params:>10} {acc:>9} {f1:>9} {cost:>8} {row.get('weights') or '-':>8}"
        if args.measure:
            mult_adds = "-" if row["multiply_adds"] is None else f"{row['multiply_adds'] / 1e6:.1f}"
            figures += f" {row['here_ms_per_face']:>9.2f} {row['here_ms_one_face']:>8.2f} {mult_adds:>11}"
        print(f"{mark} {row['name']:<{name_width}} {row['architecture']:<{width}} {figures}{split}")
    print(
        "accuracy and macro-F1 on the card's test set; ms per face in a batch of 64, where the model was made; "
        "weights: how its LiteRT file stores them"
        + (
            "; here: measured now on this machine, ms per face in a batch of 64 and one face per call; "
            "M mult-adds: millions of multiply-adds per face, the cost that does not depend on the machine"
            if args.measure
            else ""
        )
    )
    return 0


def _show_model(args) -> int:
    from fer_core.cli.card import print_card
    from fer_core.registry import active_model_name, get_model

    info = get_model(args.name.rstrip("/"))
    info.verify()
    if args.json:
        print(json.dumps(info.card, indent=2))
        return 0
    print_card(info, active=info.name == active_model_name())
    if args.measure:
        batch64, one, mult_adds = _time_model(info.name)
        print(
            f"here: {batch64:.2f} ms per face in a batch of 64, {one:.2f} ms one face per call; "
            f"{mult_adds / 1e6:.1f} M multiply-adds per face"
        )
    return 0


def _time_model(name: str) -> tuple[float, float, int | None]:
    """Milliseconds per face of a registered model on this machine (batch of 64, one face per call),
    and its multiply-adds per face (None for a model run by ONNX Runtime, whose operators are not counted).

    Timing does not depend on the faces, so seeded noise crops of the model's input size stand in.
    """
    import numpy as np

    from fer_core.evaluation import measure_cost_ms, measure_single_face_ms
    from fer_core.models import load_classifier

    classifier = load_classifier(name)
    crops = np.random.default_rng(0).integers(0, 256, (64, *classifier.crop_shape), np.uint8)
    classifier.logits(crops)  # warm-up: the interpreter sizes itself for the batch
    batch64 = measure_cost_ms(classifier, crops, repeats=5)
    mult_adds = classifier.multiply_adds() if hasattr(classifier, "multiply_adds") else None
    return batch64, measure_single_face_ms(classifier, crops, calls=100), mult_adds


def cmd_measure(args) -> int:
    from fer_core.datasets import load_labeled, validation_split
    from fer_core.evaluation import measure_as_shipped
    from fer_core.models import load_classifier
    from fer_core.registry import get_model, write_card

    info = get_model(args.name)
    info.verify()
    spec = info.preprocessing
    val = validation_split(args.data, args.val_fraction, args.seed, spec)
    sets = {"validation": val, "test": load_labeled(args.test_data, spec=spec)}
    sets.update({folder.name: load_labeled(folder, spec=spec) for folder in args.also})
    found = measure_as_shipped(lambda tta, threads: load_classifier(info, tta, threads), sets, val.images[:64])
    card = dict(info.card)
    card["metrics"] = {**card.get("metrics", {}), **found["metrics"]}
    card["tta"] = found["tta"]
    card.setdefault("measured", {})["command"] = args.command_line
    card["measured"]["sets"] = {
        "validation": f"{args.data} (val_fraction {args.val_fraction}, seed {args.seed})",
        "test": str(args.test_data),
        **{f.name: str(f) for f in args.also},
    }
    write_card(info.folder, card, hash_files=False)
    for name, m in found["metrics"].items():
        print(f"{name}: n={m['n']} accuracy {m['accuracy']:.4f} macro_f1 {m['macro_f1']:.4f}")
    return 0


def cmd_ensemble(args) -> int:
    from fer_core.ensemble import create_ensemble
    from fer_core.registry import set_active_model

    info = create_ensemble(
        args.name,
        args.members,
        fit=args.fit_weights,
        fit_tta=args.fit_tta,
        test_data=args.test_data,
        overwrite=args.overwrite,
        command=args.command_line,
        fit_data=args.fit_data,
    )
    weights = ", ".join(f"{m['name']} {m['weight']}" for m in info.card["members"])
    metrics = info.card["metrics"]
    print(f"registered ensemble {info.name} ({weights})")
    for split in ("validation", "test"):
        if split in metrics:
            print(f"{split}: accuracy {metrics[split]['accuracy']:.4f} macro_f1 {metrics[split]['macro_f1']:.4f}")
    if args.set_active:
        set_active_model(info.name)
        print(f"active model: {info.name}")
    return 0


def cmd_blend(args) -> int:
    from fer_core.registry import get_model
    from fer_core.train.registration import blend_models

    name = blend_models(args.name, *args.models, args.share, overwrite=args.overwrite, command=args.command_line)
    info = get_model(name)
    print(f"registered {name}: {1 - args.share:g} x {args.models[0]} + {args.share:g} x {args.models[1]}")
    for split, m in info.card["metrics"].items():
        print(f"{split}: accuracy {m['accuracy']:.4f} macro_f1 {m['macro_f1']:.4f}")
    return 0


def cmd_quantize(args) -> int:
    from fer_core.registry import get_model
    from fer_core.train.registration import quantize_model

    stored = quantize_model(args.name, args.weights, command=args.command_line)
    info = get_model(args.name)
    agreement = info.card.get("quantization", {}).get("agreement_with_float")
    agrees = f" (labels {agreement:.1%} of validation faces as the float model does)" if agreement is not None else ""
    print(f"{info.name}: LiteRT file exported with {stored} weights{agrees}")
    for split, m in info.card["metrics"].items():
        print(f"{split}: accuracy {m['accuracy']:.4f} macro_f1 {m['macro_f1']:.4f}")
    print(f"ms per face (batch 64): {info.card['tta']['none']['ms_per_face_batch64']:.2f}")
    return 0
