"""`label` on a big folder: photos/s and peak memory with 1 and 2 worker processes, in one run.

The folder holds `--photos` hard links to a few dozen 640x480 scenes of real FER-2013 faces
(two faces each), spread over sub-folders of 1,000; every engine labels the same folder into
its own CSV. Memory is the peak of the whole process tree (the command and its workers),
sampled from /proc every 0.2 s.

    .venv/bin/python -m tests.benchmarks.bench_label_scale [--photos 100000] [--workers 1 2]
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


def make_folder(root: Path, photos: int) -> None:
    faces = [cv2.imread(str(p), cv2.IMREAD_GRAYSCALE) for p, _ in fer_samples("test", per_class=6)]
    scenes = []
    for i in range(40):
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


def run(folder: Path, out: Path, workers: int) -> tuple[float, float]:
    """(photos/s, peak MB) of one `label` command."""
    command = [sys.executable, "-m", "fer_core", "label", str(folder), "--out", str(out), "--workers", str(workers)]
    start = time.perf_counter()
    proc = subprocess.Popen(command, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    peak = 0.0
    while proc.poll() is None:
        peak = max(peak, tree_rss_mb(proc.pid))
        time.sleep(0.2)
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"label failed with workers={workers}")
    photos = sum(1 for _ in folder.rglob("img_*.jpg"))
    return photos / seconds, peak


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", type=int, default=100_000)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        make_folder(Path(tmp), args.photos)
        print(f"{args.photos} photos (hard links to 40 scenes of 640x480, 2 faces each)")
        for workers in args.workers:
            rate, peak = run(Path(tmp) / "photos", Path(tmp) / f"out-{workers}.csv", workers)
            print(f"workers={workers}: {rate:.1f} photos/s (start-up included), peak RSS {peak:.0f} MB")


if __name__ == "__main__":
    main()
