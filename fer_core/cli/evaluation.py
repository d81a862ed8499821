"""`python -m fer_core` evaluate, calibrate: how a model does on labelled faces."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from fer_core.cli.common import add_labelled_set_options, add_tta_option
from fer_core.cli.text import print_table


def add_parsers(sub: argparse._SubParsersAction) -> None:
    """Register this family's sub-commands."""
    p = sub.add_parser(
        "evaluate",
        help="metrics of a model on labelled faces; several sets side by side (e.g. FER-2013 and your photos)",
    )
    add_labelled_set_options(p, required=True, many=True)
    p.add_argument(
        "--errors",
        type=Path,
        metavar="CSV",
        help="write every face the model gets wrong (file, true and predicted class, both probabilities), the "
        "surest mistakes first: a list to review labels with, as the Evaluate page's confusion-matrix drill-down",
    )
    p.add_argument(
        "--compare",
        metavar="MODEL",
        help="also evaluate MODEL on the same faces and print both side by side, with the differences (B - A)",
    )
    add_tta_option(p)
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(handler=cmd_evaluate)

    p = sub.add_parser(
        "calibrate",
        help="fit a model's confidence temperature on a labelled set (half fits, the other half judges); "
        "--save keeps it in the model card when it helps",
    )
    add_labelled_set_options(p, required=False)
    add_tta_option(p)
    p.add_argument(
        "--save",
        action="store_true",
        help="store the fitted temperature for this TTA mode when it lowers the error on the judging half "
        "(the one it replaces is kept for --undo)",
    )
    p.add_argument("--undo", action="store_true", help="put back the calibration the last save replaced")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(handler=cmd_calibrate)


def cmd_evaluate(args) -> int:
    from fer_core.evaluation import scoring_threads
    from fer_core.models import load_classifier
    from fer_core.registry import get_model

    info = get_model(args.model)
    classifier = load_classifier(info, tta=args.tta, num_threads=scoring_threads())
    if len(args.data) > 1:
        if args.errors or args.compare:
            print("error: --errors and --compare take one --data set", file=sys.stderr)
            return 2
        return _evaluate_sets(info, classifier, args)
    args.data = args.data[0]
    other = get_model(args.compare) if args.compare else None
    metrics, data, probs = _evaluate_one(info, classifier, args.data, args)
    compared = _compare(info, other, args, data, metrics) if other else None
    if args.errors:
        wrong = _write_errors(args.errors, data, probs)
        print(f"{wrong} faces the model gets wrong -> {args.errors}", file=sys.stderr)
    if compared:
        metrics["compare"] = compared
    if args.json:
        print(json.dumps(metrics))
        return 0
    print(
        f"model {info.name} on {args.data}: n={metrics['n']} accuracy={metrics['accuracy']:.4f} "
        f"macro_f1={metrics['macro_f1']:.4f} ece={metrics['ece']:.4f}"
    )
    print(f"{'class':<10}{'precision':>10}{'recall':>10}{'f1':>10}{'support':>10}")
    for name, m in metrics["per_class"].items():
        print(f"{name:<10}{m['precision']:>10.3f}{m['recall']:>10.3f}{m['f1']:>10.3f}{m['support']:>10}")
    print("confusion matrix (rows true, columns predicted, order " + ",".join(metrics["classes"]) + "):")
    for row in metrics["confusion_matrix"]:
        print(" ".join(f"{v:>5}" for v in row))
    if compared:
        _print_comparison(info.name, compared)
    return 0


def _evaluate_one(info, classifier, path: Path, args):
    """(metrics, faces, probabilities) of the classifier on one labelled set; skipped items reported."""
    from fer_core.datasets import DatasetError, load_labeled
    from fer_core.evaluation import evaluate_classifier

    data = load_labeled(path, spec=info.preprocessing, usage=args.usage)
    for source, reason in data.errors[:20]:
        print(f"{path}: skipped {source}: {reason}", file=sys.stderr)
    if data.unknown_classes:
        print(f"{path}: skipped folders that are not emotions: {', '.join(data.unknown_classes)}", file=sys.stderr)
    if data.photo_note():
        print(f"{path}: {data.photo_note()}", file=sys.stderr)
    if len(data) == 0:
        first = f" (first: {data.errors[0][0]}: {data.errors[0][1]})" if data.errors else ""
        raise DatasetError(f"{path}: no readable labelled image; {len(data.errors)} skipped{first}")
    metrics, probs = evaluate_classifier(classifier, data)
    metrics.update(
        model=info.name,
        tta=args.tta,
        data=str(path),
        photos_cropped=data.photos_cropped,
        photos_without_face=data.photos_without_face,
    )
    return metrics, data, probs


def _evaluate_sets(info, classifier, args) -> int:
    """Several labelled sets side by side (e.g. FER-2013 test and photos of real people)."""
    results = [_evaluate_one(info, classifier, path, args)[0] for path in args.data]
    if args.json:
        print(json.dumps({"model": info.name, "tta": args.tta, "sets": results}))
        return 0

    def pct(value) -> str:
        return "-" if value is None else f"{100 * value:.1f}%"

    print(f"model {info.name}, TTA {args.tta}")
    rows = [
        ["faces", *[str(m["n"]) for m in results]],
        ["accuracy", *[pct(m["accuracy"]) for m in results]],
        ["macro-F1", *[pct(m["macro_f1"]) for m in results]],
        ["accuracy without disgust", *[pct((m["without_disgust"] or {}).get("accuracy")) for m in results]],
        ["macro-F1 without disgust", *[pct((m["without_disgust"] or {}).get("macro_f1")) for m in results]],
        ["ECE", *[f"{m['ece']:.3f}" for m in results]],
    ]
    rows += [[f"recall {c}", *[pct(m["per_class"][c]["recall"]) for m in results]] for c in results[0]["per_class"]]
    print_table([["", *[str(p) for p in args.data]], *rows])
    return 0


def _write_errors(path: Path, data, probs) -> int:
    """Every misclassified face of `data` as CSV rows, lowest probability for the true class first."""
    import csv

    from fer_core.classes import EMOTIONS
    from fer_core.evaluation import cell_examples

    rows = []
    for t, true_class in enumerate(EMOTIONS):
        for p, predicted in enumerate(EMOTIONS):
            if t != p:
                rows += [{**e, "true": true_class, "predicted": predicted} for e in cell_examples(data, probs, t, p)]
    rows.sort(key=lambda r: r["p_true"])
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["source", "true", "predicted", "p_true", "p_predicted"])
        for r in rows:
            writer.writerow([r["source"], r["true"], r["predicted"], f"{r['p_true']:.4f}", f"{r['p_predicted']:.4f}"])
    return len(rows)


def _compare(info, other, args, data, metrics: dict) -> dict:
    """Model `other` on the labelled faces `info` was evaluated on (cropped its own way if it crops differently)."""
    from fer_core.datasets import load_labeled
    from fer_core.evaluation import compare_metrics, compare_overall, evaluate_classifier, scoring_threads
    from fer_core.models import load_classifier

    if other.preprocessing != info.preprocessing:
        data = load_labeled(args.data, spec=other.preprocessing, usage=args.usage)
    metrics_b, _ = evaluate_classifier(load_classifier(other, tta=args.tta, num_threads=scoring_threads()), data)
    return {
        "model": other.name,
        "overall": compare_overall(metrics, metrics_b),
        "per_class": compare_metrics(metrics, metrics_b),
        "metrics": metrics_b,
    }


def _print_comparison(name_a: str, compared: dict) -> None:

    print(f"compared: A = {name_a}, B = {compared['model']}, on the same faces (differences are B - A)")
    table = [["measure", "A", "B", "B - A"]]
    table += [[r["measure"], f"{r['A']:.4f}", f"{r['B']:.4f}", f"{r['Δ (B - A)']:+.4f}"] for r in compared["overall"]]
    print_table(table)
    table = [["class", "support", "recall A", "recall B", "B - A", "F1 A", "F1 B", "B - A"]]
    for r in compared["per_class"]:
        table.append(
            [r["class"], str(r["support"])]
            + [f"{r['recall A']:.3f}", f"{r['recall B']:.3f}", f"{r['recall Δ']:+.3f}"]
            + [f"{r['f1 A']:.3f}", f"{r['f1 B']:.3f}", f"{r['f1 Δ']:+.3f}"]
        )
    print_table(table)


def cmd_calibrate(args) -> int:
    from fer_core.datasets import load_labeled
    from fer_core.evaluation import (
        MIN_CALIBRATION_SET,
        calibration_record,
        calibration_report,
        classifier_logits,
        scoring_threads,
    )
    from fer_core.models import load_classifier
    from fer_core.registry import get_model, save_calibration, undo_calibration

    info = get_model(args.model)
    if args.undo:
        mode = undo_calibration(info.name)
        print(f"{info.name}: " + (f"restored the previous calibration (TTA {mode})" if mode else "nothing to undo"))
        return 0
    if args.data is None:
        print("error: --data is required (a labelled set), unless --undo", file=sys.stderr)
        return 2
    data = load_labeled(args.data, spec=info.preprocessing, usage=args.usage)
    if len(data) < MIN_CALIBRATION_SET:
        print(
            f"error: calibration needs at least {MIN_CALIBRATION_SET} labelled faces; {args.data} has {len(data)}",
            file=sys.stderr,
        )
        return 2
    logits = classifier_logits(load_classifier(info, tta=args.tta, num_threads=scoring_threads()), data)
    report = calibration_report(data, logits, info.temperature_for(args.tta))
    saved = bool(args.save and report["improves"])
    if saved:
        save_calibration(info.name, calibration_record(report, data, "python -m fer_core calibrate"), args.tta)
    if args.json:
        keys = ("temperature", "current_temperature", "ece_current", "ece_after", "improves", "n_fit", "n_eval")
        print(json.dumps({"model": info.name, "tta": args.tta, **{k: report[k] for k in keys}, "saved": saved}))
        return 0
    print(
        f"{info.name} (TTA {args.tta}) on {args.data}: temperature now {report['current_temperature']:.3f}, "
        f"fitted {report['temperature']:.3f} on {report['n_fit']} faces; expected calibration error on the other "
        f"{report['n_eval']}: {report['ece_current']:.3f} now, {report['ece_after']:.3f} fitted"
    )
    if not report["improves"]:
        print("the fitted temperature does not lower the error on the judging half: nothing to save")
    elif saved:
        print(f"saved into {info.name}'s card for TTA {args.tta}; every page uses it now (--undo puts back the last)")
    else:
        print("--save would store it in the model card")
    return 0
