"""`python -m fer_core ...`: every capability of the app as a command."""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
from pathlib import Path

from fer_core.cli_runs import add_runs_parser, cmd_runs
from fer_core.cli_text import print_table
from fer_core.cli_train import add_train_parser, run_train_command
from fer_core.detect import DEFAULT_DETECTOR, DETECTOR_NOTES
from fer_core.registry import TFLITE_WEIGHTS, WEIGHT_MODES
from fer_core.tta import TTA_MODES


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m fer_core", description="Facial emotion recognition.")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("predict", help="label the faces in some photos")
    p.add_argument("images", nargs="+", type=Path)
    p.add_argument("--json", action="store_true", help="print one JSON document")
    _add_model_options(p)

    p = sub.add_parser("label", help="label every photo below a folder into CSV or Parquet (resumable)")
    p.add_argument("folder", help="the photos: a folder, or with --engine ray also a URI such as s3://bucket/prefix")
    p.add_argument(
        "--out",
        type=Path,
        required=True,
        help="results: a CSV file, or for Parquet a folder of shards; re-running the same command resumes it",
    )
    p.add_argument(
        "--format",
        choices=["csv", "parquet"],
        help="output format (default: parquet when --out ends in .parquet, else csv); parquet is a folder of shards",
    )
    p.add_argument(
        "--engine",
        choices=["local", "ray"],
        default="local",
        help="local: worker processes on this machine; ray: a Ray Data pipeline (needs requirements-ray.txt), "
        "writing Parquet shards",
    )
    p.add_argument(
        "--address",
        help="with --engine ray: the cluster to join (e.g. HEAD-IP:6379, or 'auto'); default: start Ray here",
    )
    p.add_argument(
        "--workers",
        type=int,
        default=0,
        help="processes labelling at once, each with its own detector and model (default: the CPU cores)",
    )
    _add_model_options(p)

    p = sub.add_parser(
        "export",
        help="from a results file (label's output, or a reviewed CSV from the Batch page): the photos with their "
        "faces drawn, or sorted into a folder per emotion",
    )
    p.add_argument("results", type=Path, help="a CSV file or Parquet folder of result rows")
    p.add_argument("--photos", type=Path, required=True, help="the folder the rows' file names are relative to")
    p.add_argument("--annotated", type=Path, metavar="DIR", help="write each photo with its labelled faces drawn")
    p.add_argument(
        "--sorted",
        type=Path,
        metavar="DIR",
        help="copy each photo into DIR/<emotion of its first face>/ (no_face/ without one); a reviewed "
        "label wins over the model's",
    )
    p.add_argument(
        "--dataset",
        type=Path,
        metavar="DIR",
        help="save the reviewed faces as a labelled training set (face crops in DIR/<emotion>/, a manifest): "
        "for train --data or evaluate --data; DIR must be new",
    )
    p.add_argument(
        "--all-faces",
        action="store_true",
        help="with --dataset: also faces nobody reviewed, with the model's label (marked in the manifest)",
    )
    p.add_argument("--model", help="with --dataset: crop faces as this model does (default: the active one)")

    p = sub.add_parser(
        "video", help="label every face in a video clip, frame by frame, tracked and smoothed as Live does"
    )
    p.add_argument("clip", type=Path, help="a video file (mp4, mov, avi, mkv, webm)")
    p.add_argument("--out", type=Path, required=True, help="CSV of results: one row per face per frame")
    p.add_argument("--annotated", type=Path, help="also write the clip with boxes and labels drawn (MP4)")
    p.add_argument("--max-frames", type=int, default=3000, help="stop after this many frames (default 3000)")
    p.add_argument("--min-face", type=int, default=40, help="ignore faces smaller than this, in pixels (default 40)")
    p.add_argument(
        "--smoothing", type=float, default=0.6, help="0: each frame alone; towards 1: steadier labels (default 0.6)"
    )
    _add_model_options(p)

    p = sub.add_parser(
        "evaluate",
        help="metrics of a model on labelled faces; several sets side by side (e.g. FER-2013 and your photos)",
    )
    _add_labelled_set_options(p, required=True, many=True)
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
    _add_tta_option(p)
    p.add_argument("--json", action="store_true", help="print one JSON object")

    p = sub.add_parser(
        "calibrate",
        help="fit a model's confidence temperature on a labelled set (half fits, the other half judges); "
        "--save keeps it in the model card when it helps",
    )
    _add_labelled_set_options(p, required=False)
    _add_tta_option(p)
    p.add_argument(
        "--save",
        action="store_true",
        help="store the fitted temperature for this TTA mode when it lowers the error on the judging half "
        "(the one it replaces is kept for --undo)",
    )
    p.add_argument("--undo", action="store_true", help="put back the calibration the last save replaced")
    p.add_argument("--json", action="store_true", help="print one JSON object")

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
        type=Path,
        nargs="+",
        metavar="DIR",
        help="fit the weights on these labelled sets instead (each counts alike; members of any kind, e.g. an "
        "ONNX model trained on real photos); the card also gets 5-fold cross-validated figures per set",
    )
    p.add_argument("--test-data", type=Path, help="labelled set measured once for the card (never for choices)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing model of this name")
    p.add_argument("--set-active", action="store_true", help="make the ensemble the active model")

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

    add_train_parser(sub)
    add_runs_parser(sub)
    return parser


def _add_labelled_set_options(p: argparse.ArgumentParser, required: bool, many: bool = False) -> None:
    """--data, --usage and --model: a labelled set (or several, with `many`) and the model measured on it."""
    p.add_argument(
        "--data",
        required=required,
        type=Path,
        nargs="+" if many else None,
        metavar="DIR",
        help="class folders or a FER-2013 CSV (e.g. your own labelled photos)"
        + ("; several are measured side by side" if many else ""),
    )
    p.add_argument("--usage", help="with a FER CSV: only rows with this Usage (e.g. PublicTest)")
    p.add_argument("--model", help="registered model (default: the active one)")


def _add_tta_option(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--tta",
        default="none",
        choices=sorted(TTA_MODES),
        # argparse formats help with %: a literal one ("6% of its side") must be doubled.
        help="test-time augmentation; " + "; ".join(f"{k}: {v}" for k, v in TTA_MODES.items()).replace("%", "%%"),
    )


def _add_model_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", help="registered model (default: the active one)")
    p.add_argument(
        "--detector",
        default=DEFAULT_DETECTOR,
        choices=sorted(DETECTOR_NOTES),
        help="; ".join(f"{k}: {v}" for k, v in DETECTOR_NOTES.items()),
    )
    _add_tta_option(p)


def _recognizer(args):
    from fer_core.recognizer import EmotionRecognizer

    return EmotionRecognizer.from_registry(args.model, detector=args.detector, tta=args.tta)


def cmd_predict(args) -> int:
    from fer_core.imageio import ImageReadError, read_image

    recognizer = _recognizer(args)
    report, failed = [], 0
    for path in args.images:
        try:
            faces = [f.to_dict() for f in recognizer.analyze(read_image(path))]
            report.append({"file": str(path), "faces": faces, "error": None})
        except (ImageReadError, OSError) as e:
            failed += 1
            report.append({"file": str(path), "faces": [], "error": str(e)})
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        for item in report:
            if item["error"]:
                print(f"{item['file']}: unreadable: {item['error']}")
            elif not item["faces"]:
                print(f"{item['file']}: no face")
            for i, face in enumerate(item["faces"]):
                b = face["box"]
                print(
                    f"{item['file']} face {i} at ({b['x']},{b['y']},{b['w']}x{b['h']}): "
                    f"{face['emotion']} {face['confidence']:.2f}"
                )
    return 1 if failed == len(args.images) else 0


def cmd_label(args) -> int:
    from tqdm import tqdm

    from fer_core.labeling import label_folder
    from fer_core.recognizer import RecognizerSpec

    if "://" in args.folder and args.engine != "ray":
        print(f"error: a URI needs --engine ray: {args.folder}", file=sys.stderr)
        return 2
    if "://" not in args.folder:
        args.folder = Path(args.folder)
        if not args.folder.is_dir():
            print(f"error: not a folder: {args.folder}", file=sys.stderr)
            return 2

    workers = args.workers or os.cpu_count() or 1
    if workers < 1:
        print(f"error: --workers must be 1 or more. Received: {workers}", file=sys.stderr)
        return 2
    if args.engine == "ray":
        return _label_on_ray(args, RecognizerSpec(args.model, args.detector, args.tta))
    if args.address:
        print("error: --address is for --engine ray", file=sys.stderr)
        return 2
    if workers == 1:
        recognizer = _recognizer(args)
    else:
        # Check the model and the detector here, with a clear message, before any worker starts;
        # the workers load their own, so this process keeps neither.
        from fer_core.detect import make_detector
        from fer_core.registry import get_model

        info = get_model(args.model)
        info.verify()
        make_detector(args.detector)
        recognizer = RecognizerSpec(info.name, args.detector, args.tta)
    bar = tqdm(unit="photo", file=sys.stderr, disable=None, smoothing=0.1)

    def progress(done: int, total: int) -> None:
        if bar.total is None:  # the first photo of this run: rates count from here
            bar.reset(total)
            bar.initial = bar.n = done - 1
        bar.update(done - bar.n)

    try:
        counts = label_folder(args.folder, args.out, recognizer, progress=progress, workers=workers, fmt=args.format)
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    finally:
        bar.close()
    _print_counts(counts, args.out)
    return 0


def _print_counts(counts: dict[str, int], out: Path) -> None:
    print(f"wrote {sum(counts.values())} rows to {out}: " + ", ".join(f"{k} {v}" for k, v in counts.items()))


def _label_on_ray(args, spec) -> int:
    from fer_core.ray_engine import label_folder_ray

    if args.format == "csv":
        print("error: the Ray engine writes Parquet (a folder of shards); leave out --format csv", file=sys.stderr)
        return 2
    try:
        counts = label_folder_ray(args.folder, args.out, spec, workers=args.workers or None, address=args.address)
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    _print_counts(counts, args.out)
    return 0


def cmd_export(args) -> int:
    from fer_core.exports import annotated_files, sorted_files
    from fer_core.outputs import read_rows
    from fer_core.uploads import safe_relative_path

    if not (args.annotated or args.sorted or args.dataset):
        print("error: say what to write: --annotated DIR, --sorted DIR and/or --dataset DIR", file=sys.stderr)
        return 2
    if args.dataset and args.dataset.exists() and any(args.dataset.iterdir()):
        print(f"error: {args.dataset} already holds files; a dataset goes into a new folder", file=sys.stderr)
        return 2
    if not args.results.exists():
        print(f"error: {args.results}: no such results file", file=sys.stderr)
        return 2
    source = args.photos.resolve()
    for flag, folder in (("--annotated", args.annotated), ("--sorted", args.sorted), ("--dataset", args.dataset)):
        if folder is not None and (folder.resolve() == source or folder.resolve().is_relative_to(source)):
            print(f"error: {flag} {folder} is inside the photo folder {args.photos}; write elsewhere", file=sys.stderr)
            return 2
    rows, _ = read_rows(args.results)
    files, refused = {}, set()
    for row in rows:
        name = str(row.get("file", ""))
        rel = safe_relative_path(name)
        if rel is None or rel != name:
            refused.add(name)  # a row naming a path outside the photo folder is never followed
        elif (args.photos / rel).is_file():
            files[rel] = args.photos / rel
    for name in sorted(refused)[:20]:
        print(f"skipped {name!r}: not a path inside {args.photos}", file=sys.stderr)
    missing = {str(r.get("file")) for r in rows} - set(files) - refused
    if missing:
        print(f"{len(missing)} photos named in the results are not in {args.photos}", file=sys.stderr)
    for folder, entries in ((args.annotated, annotated_files), (args.sorted, sorted_files)):
        if folder is None:
            continue
        written = kept = 0
        for rel, data in entries(rows, files):
            target = folder / rel
            if safe_relative_path(rel) != rel or not target.resolve().is_relative_to(folder.resolve()):
                print(f"skipped {rel!r}: a label in the results would lead outside {folder}", file=sys.stderr)
                continue
            if target.exists() or target.is_symlink():
                kept += 1  # a file already there (an earlier export, or the user's own) is never replaced
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            with target.open("xb") as f:
                f.write(data)
            written += 1
        print(f"{written} photos -> {folder}" + (f" ({kept} already there, left as they were)" if kept else ""))
    if args.dataset:
        from fer_core.corrections import save_corrections_dataset
        from fer_core.registry import get_model

        spec = get_model(args.model).preprocessing
        counts = save_corrections_dataset(rows, files, args.dataset, spec, reviewed_only=not args.all_faces)
        total = sum(counts.values())
        hint = "" if total or args.all_faces else " (no face was marked reviewed: --all-faces keeps the model's labels)"
        print(f"{total} face crops -> {args.dataset}: " + ", ".join(f"{k} {v}" for k, v in counts.items()) + hint)
    return 0


def cmd_video(args) -> int:
    import csv
    import tempfile

    from fer_core.live import LiveSettings
    from fer_core.video import VideoError, process_video

    if not args.clip.is_file():
        print(f"error: {args.clip}: no such file", file=sys.stderr)
        return 2
    settings = LiveSettings(min_face=args.min_face, smoothing=args.smoothing, mirror=False)
    recognizer = _recognizer(args)

    def progress(done: int, total: int) -> None:
        if done % 100 == 0 or done == total:
            print(f"\r{done}/{total or '?'} frames", end="", file=sys.stderr, flush=True)

    with tempfile.TemporaryDirectory() as tmp:
        annotated = args.annotated or Path(tmp) / "annotated.mp4"
        try:
            result = process_video(args.clip, annotated, recognizer, settings, args.max_frames, progress)
        except VideoError as e:
            print(f"\nerror: {e}", file=sys.stderr)
            return 2
    print(file=sys.stderr)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with args.out.open("w", newline="") as f:
        columns = list(result.rows[0]) if result.rows else ["time", "track"]
        writer = csv.DictWriter(f, fieldnames=columns)
        writer.writeheader()
        writer.writerows(result.rows)
    tracks = len({r["track"] for r in result.rows})
    print(
        f"{args.clip}: {result.frames} frames at {result.fps:.0f} fps, {tracks} faces tracked, "
        f"{len(result.rows)} rows -> {args.out}" + (f"; annotated clip -> {args.annotated}" if args.annotated else "")
    )
    return 0


def cmd_evaluate(args) -> int:
    from fer_core.models import load_classifier
    from fer_core.registry import get_model

    info = get_model(args.model)
    classifier = load_classifier(info, tta=args.tta)
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
    from fer_core.datasets import load_labeled
    from fer_core.evaluation import evaluate_classifier

    data = load_labeled(path, spec=info.preprocessing, usage=args.usage)
    for source, reason in data.errors[:20]:
        print(f"{path}: skipped {source}: {reason}", file=sys.stderr)
    if data.unknown_classes:
        print(f"{path}: skipped folders that are not emotions: {', '.join(data.unknown_classes)}", file=sys.stderr)
    if data.photo_note():
        print(f"{path}: {data.photo_note()}", file=sys.stderr)
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
    from fer_core.evaluation import compare_metrics, compare_overall, evaluate_classifier
    from fer_core.models import load_classifier

    if other.preprocessing != info.preprocessing:
        data = load_labeled(args.data, spec=other.preprocessing, usage=args.usage)
    metrics_b, _ = evaluate_classifier(load_classifier(other, tta=args.tta), data)
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
    from fer_core.evaluation import MIN_CALIBRATION_SET, calibration_record, calibration_report, classifier_logits
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
    logits = classifier_logits(load_classifier(info, tta=args.tta), data)
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
            mult_adds = row["multiply_adds"] / 1e6
            figures += f" {row['here_ms_per_face']:>9.2f} {row['here_ms_one_face']:>8.2f} {mult_adds:>11.1f}"
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
    from fer_core.cli_card import print_card
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


def _time_model(name: str) -> tuple[float, float, int]:
    """Milliseconds per face of a registered model on this machine (batch of 64, one face per call),
    and its multiply-adds per face.

    Timing does not depend on the faces, so seeded noise crops of the model's input size stand in.
    """
    import numpy as np

    from fer_core.evaluation import measure_cost_ms, measure_single_face_ms
    from fer_core.models import load_classifier

    classifier = load_classifier(name)
    crops = np.random.default_rng(0).integers(0, 256, (64, classifier.input_size, classifier.input_size), np.uint8)
    classifier.logits(crops)  # warm-up: the interpreter sizes itself for the batch
    batch64 = measure_cost_ms(classifier, crops, repeats=5)
    return batch64, measure_single_face_ms(classifier, crops, calls=100), classifier.multiply_adds()


def cmd_measure(args) -> int:
    from fer_core.datasets import load_labeled, train_val_split
    from fer_core.evaluation import measure_as_shipped
    from fer_core.models import load_classifier
    from fer_core.registry import get_model, write_card

    info = get_model(args.name)
    info.verify()
    spec = info.preprocessing
    _, val = train_val_split(args.data, args.val_fraction, args.seed, spec)
    sets = {"validation": val, "test": load_labeled(args.test_data, spec=spec)}
    sets.update({folder.name: load_labeled(folder, spec=spec) for folder in args.also})
    found = measure_as_shipped(lambda tta: load_classifier(info, tta), sets, val.images[:64])
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


def main(argv: list[str] | None = None) -> int:
    """Run one command; expected errors print a message and return non-zero."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    from fer_core.datasets import DatasetError
    from fer_core.detect import DetectorError
    from fer_core.registry import ModelError

    args = build_parser().parse_args(argv)
    args.command_line = "python -m fer_core " + shlex.join(sys.argv[1:] if argv is None else argv)
    handlers = {
        "predict": cmd_predict,
        "label": cmd_label,
        "export": cmd_export,
        "video": cmd_video,
        "evaluate": cmd_evaluate,
        "calibrate": cmd_calibrate,
        "models": cmd_models,
        "ensemble": cmd_ensemble,
        "measure": cmd_measure,
        "quantize": cmd_quantize,
        "train": run_train_command,
        "runs": cmd_runs,
    }
    try:
        return handlers[args.command](args)
    except (ModelError, DetectorError, DatasetError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
