"""`python -m fer_core` predict, label, export, video: photos and clips in, labelled rows and pictures out."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from fer_core.cli.common import add_model_options, recognizer_of


def add_parsers(sub: argparse._SubParsersAction) -> None:
    """Register this family's sub-commands."""
    p = sub.add_parser("predict", help="label the faces in some photos")
    p.add_argument("images", nargs="+", type=Path)
    p.add_argument("--json", action="store_true", help="print one JSON document")
    add_model_options(p)
    p.set_defaults(handler=cmd_predict)

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
    add_model_options(p)
    p.set_defaults(handler=cmd_label)

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
    p.set_defaults(handler=cmd_export)

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
    add_model_options(p)
    p.set_defaults(handler=cmd_video)


def cmd_predict(args) -> int:
    from fer_core.imageio import ImageReadError, read_image

    recognizer = recognizer_of(args)
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
        from fer_core.imageio import photo_folder_problem

        args.folder = Path(args.folder)
        problem = photo_folder_problem(args.folder)
        if problem:
            print(f"error: {problem}", file=sys.stderr)
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
        recognizer = recognizer_of(args)
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
    from fer_core.labeling import disk_name
    from fer_core.names import inside_relative
    from fer_core.outputs import read_rows

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
        rel = inside_relative(disk_name(name))  # names in results escape odd bytes
        if rel is None:
            refused.add(name)  # a row naming a path outside the photo folder is never followed
        elif (args.photos / rel).is_file():
            files[name] = args.photos / rel
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
            if inside_relative(rel) is None or not target.resolve().is_relative_to(folder.resolve()):
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
    recognizer = recognizer_of(args)

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
