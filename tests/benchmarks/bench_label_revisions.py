"""`python -m fer_core label` as users run it (default detector, model and workers), this working
tree against an earlier commit, in one run, on folders of 640x480 composed scenes.

    .venv/bin/python -m tests.benchmarks.bench_label_revisions --before 5039e65 [--photos 1200] [--rounds 2]

The earlier commit is checked out in a temporary git worktree and run with the same interpreter;
each round labels each folder once per revision, alternating, into a fresh CSV. Photos/s include
start-up (loading the workers and models), as a user waits for it.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2

from tests.benchmarks.scenes import load_faces, make_scenes

REPO = Path(__file__).resolve().parents[2]
KINDS = {
    "sparse (1-3 faces of 100-170 px)": {},
    "crowded (6-12 faces of 32-64 px)": {"per_scene": (6, 12), "sides": (32, 64)},
}


def scene_folder(root: Path, kwargs: dict, photos: int) -> Path:
    """`photos` hard links to 40 distinct JPEG scenes."""
    originals = root / "originals"
    originals.mkdir(parents=True)
    for i, (image, _) in enumerate(make_scenes(40, load_faces(1200), seed=3, **kwargs)):
        cv2.imwrite(str(originals / f"s{i:02d}.jpg"), image)
    folder = root / "photos"
    folder.mkdir()
    for i in range(photos):
        (folder / f"p{i:05d}.jpg").hardlink_to(originals / f"s{i % 40:02d}.jpg")
    return folder


def label_rate(repo: Path, folder: Path, out: Path) -> float:
    out.unlink(missing_ok=True)
    start = time.perf_counter()
    command = [sys.executable, "-m", "fer_core", "label", str(folder), "--out", str(out)]
    subprocess.run(command, check=True, capture_output=True, cwd=repo)
    return sum(1 for _ in folder.iterdir()) / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", required=True, help="the earlier commit")
    parser.add_argument("--photos", type=int, default=1200)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="fer-label-revisions-") as tmp:
        tmp = Path(tmp)
        before = tmp / "before"
        subprocess.run(["git", "worktree", "add", "--detach", str(before), args.before], check=True, cwd=REPO)
        try:
            for kind, kwargs in KINDS.items():
                folder = scene_folder(tmp / kind.split()[0], kwargs, args.photos)
                for round_ in range(args.rounds):
                    rates = {
                        name: label_rate(repo, folder, tmp / f"{name}.csv")
                        for name, repo in (("before", before), ("now", REPO))
                    }
                    print(
                        f"{kind}, round {round_ + 1}: {args.before} {rates['before']:.1f} photos/s, "
                        f"this tree {rates['now']:.1f} photos/s",
                        flush=True,
                    )
        finally:
            subprocess.run(["git", "worktree", "remove", "--force", str(before)], check=False, cwd=REPO)


if __name__ == "__main__":
    main()
