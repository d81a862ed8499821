"""`label` on a big folder: photos/s and peak memory of each engine, in one run.

The folder holds `--photos` hard links to a few dozen 640x480 scenes of real FER-2013 faces
(two faces each), spread over sub-folders of 1,000; every run labels the same folder into its
own output. A run is `N` (the local engine with N worker processes, CSV), `N:parquet` (the same,
Parquet shards) or `ray` (the Ray engine on a local Ray with one actor per core, Parquet; Ray's
start-up and shut-down included). Memory is the peak of the whole process tree (the command,
its workers, Ray's processes), sampled from /proc every 0.2 s.

    .venv/bin/python -m tests.benchmarks.bench_label_scale [--photos 100000] [--small] [--runs 1 2 2:parquet ray]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2

from tests.helpers import compose_scene, fer_samples

REPO = Path(__file__).resolve().parents[2]


def make_folder(root: Path, photos: int, small: bool = False) -> None:
    """`photos` hard links to 40 scenes: 640x480 with two 120 px faces, or with `small` 200x150
    with one 80 px face (cheap to label, for memory at scale)."""
    faces = [cv2.imread(str(p), cv2.IMREAD_GRAYSCALE) for p, _ in fer_samples("test", per_class=6)]
    scenes = []
    for i in range(40):
        if small:
            scene, _ = compose_scene([faces[i % len(faces)]], size=(200, 150), face_px=80, seed=i, offsets=[(60, 35)])
        else:
            scene, _ = compose_scene([faces[i % len(faces)], faces[(i + 7) % len(faces)]], face_px=120, seed=i)
        path = root / f"scene_{i:02d}.jpg"
        cv2.imwrite(str(path), scene)
        scenes.append(path)
    for i in range(photos):
        folder = root / "photos" / f"{i // 1000:04d}"
        folder.mkdir(parents=True, exist_ok=True)
        os.link(scenes[i % len(scenes)], folder / f"img_{i:07d}.jpg")


def tree_rss_mb(pid: int) -> float:
    """Resident memory of a process and all its descendants, in MB."""
    total, todo = 0, [pid]
    while todo:
        p = todo.pop()
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
            for task in Path(f"/proc/{p}/task").iterdir():
                todo += [int(c) for c in (task / "children").read_text().split()]
        except OSError:
            continue
    return total / 1024


def command_for(run_name: str, folder: Path, out_base: Path) -> list[str]:
    """The `label` command of a run name (see the module docstring)."""
    base = [sys.executable, "-m", "fer_core", "label", str(folder)]
    if run_name == "ray":
        return base + ["--out", f"{out_base}-ray.parquet", "--engine", "ray"]
    workers, _, fmt = run_name.partition(":")
    suffix = ".parquet" if fmt == "parquet" else ".csv"
    return base + ["--out", f"{out_base}-{workers}{suffix}", "--workers", workers]


def run(command: list[str], photos: int) -> tuple[float, float, float]:
    """(photos/s, seconds, peak MB) of one `label` command."""
    start = time.perf_counter()
    proc = subprocess.Popen(command, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    peak = 0.0
    while proc.poll() is None:
        peak = max(peak, tree_rss_mb(proc.pid))
        time.sleep(0.2)
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"failed: {' '.join(command)}")
    return photos / seconds, seconds, peak


def stage_costs(scenes: list[Path], repeats: int = 5) -> dict[str, float]:
    """Milliseconds per photo of each stage in one process on one core (as a worker runs):
    reading the file, decoding it, detecting and cropping the faces, classifying them."""
    import cv2

    from fer_core.imageio import read_image
    from fer_core.recognizer import RecognizerSpec

    cv2.setNumThreads(1)
    recognizer = RecognizerSpec().build()
    totals = dict.fromkeys(["read", "decode", "detect + crop", "classify"], 0.0)
    for _ in range(repeats):
        for path in scenes:
            t0 = time.perf_counter()
            data = path.read_bytes()
            t1 = time.perf_counter()
            image = read_image(data)
            t2 = time.perf_counter()
            found = recognizer.find_faces(image)
            t3 = time.perf_counter()
            recognizer.classify_found([found])
            t4 = time.perf_counter()
            for stage, seconds in zip(totals, (t1 - t0, t2 - t1, t3 - t2, t4 - t3)):
                totals[stage] += seconds
    return {stage: 1000 * seconds / (repeats * len(scenes)) for stage, seconds in totals.items()}


def phone_photo_decode_ms(scene: Path, repeats: int = 5) -> float:
    """Milliseconds to decode one 12-megapixel JPEG (a scene enlarged to 4000x3000) on one core."""
    from fer_core.imageio import read_image

    cv2.setNumThreads(1)
    big = cv2.resize(cv2.imread(str(scene)), (4000, 3000), interpolation=cv2.INTER_CUBIC)
    data = cv2.imencode(".jpg", big, [cv2.IMWRITE_JPEG_QUALITY, 90])[1].tobytes()
    start = time.perf_counter()
    for _ in range(repeats):
        read_image(data)
    return 1000 * (time.perf_counter() - start) / repeats


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", type=int, default=100_000)
    parser.add_argument("--small", action="store_true", help="200x150 photos with one face (memory at scale)")
    parser.add_argument("--runs", nargs="*", default=["1", "2", "2:parquet", "ray"], help="none: stage costs only")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        make_folder(Path(tmp), args.photos, args.small)
        kind = "200x150, 1 face" if args.small else "640x480, 2 faces"
        print(f"{args.photos} photos (hard links to 40 scenes of {kind} each); {os.cpu_count()} cores")
        costs = stage_costs(sorted(Path(tmp).glob("scene_*.jpg")))
        per_photo = sum(costs.values())
        print(
            "one worker, ms per photo: "
            + ", ".join(f"{k} {v:.2f}" for k, v in costs.items())
            + f"; total {per_photo:.1f} ms = {1000 / per_photo:.1f} photos/s per core"
        )
        print(f"decoding a 12 MP JPEG: {phone_photo_decode_ms(Path(tmp) / 'scene_00.jpg'):.0f} ms on one core")
        for name in args.runs:
            rate, seconds, peak = run(command_for(name, Path(tmp) / "photos", Path(tmp) / "out"), args.photos)
            figures = f"{rate:.1f} photos/s ({seconds:.0f} s, start-up included), peak RSS {peak:.0f} MB"
            print(f"{name}: {figures}", flush=True)


if __name__ == "__main__":
    main()
