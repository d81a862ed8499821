"""Peak memory of labelling a batch of big photos (issue: Safety, item on memory).

Writes N 12-megapixel JPEGs (a real photo from ../shared/datasets/faces_in_photos enlarged to
4000x3000, so each holds real faces) and labels them in a fresh process per mode, reporting
each process's peak RSS and photos/s:

- `label`: the shipped path (`label_sources`: each worker decodes one photo, keeps only its face
  crops, and the crops of a chunk are classified together);
- `chunk-decode`: the earlier path as a same-run baseline (a chunk of 16 photos decoded and held
  at full resolution, then `analyze_many`);
- `idle`: the process with the recognizer loaded and no photo, for the floor.

With `--png16`, instead: the peak memory of decoding one 12-megapixel 16-bit RGBA PNG (a
small file: mostly flat colour) by `read_image`, against Pillow's `alpha_composite` path that
`read_image` used before (same run, fresh process each; the peak is counted from just before
the decode: Linux's VmHWM, reset through /proc/self/clear_refs).

    .venv/bin/python -m tests.benchmarks.bench_memory [--photos 50]
    .venv/bin/python -m tests.benchmarks.bench_memory --png16
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PHOTOS = REPO.parent / "shared" / "datasets" / "faces_in_photos"


def make_photos(folder: Path, count: int) -> int:
    """Write `count` 4000x3000 JPEGs; returns their total size in bytes."""
    import cv2

    source = cv2.imread(str(sorted(PHOTOS.glob("*.jpg"))[0]))
    big = cv2.resize(source, (4000, 3000), interpolation=cv2.INTER_CUBIC)
    ok, data = cv2.imencode(".jpg", big, [cv2.IMWRITE_JPEG_QUALITY, 85])
    assert ok
    for i in range(count):
        (folder / f"photo_{i:03d}.jpg").write_bytes(data.tobytes())
    return len(data) * count


def child(mode: str, folder: Path) -> None:
    """Runs in the measured process: label the folder one way and print the figures as JSON."""
    from fer_core.imageio import read_image
    from fer_core.labeling import label_sources
    from fer_core.recognizer import EmotionRecognizer

    recognizer = EmotionRecognizer.from_registry()
    paths = sorted(folder.glob("*.jpg"))
    start = time.perf_counter()
    faces = 0
    if mode == "label":
        faces = sum(
            1
            for row in label_sources([(p.name, p.read_bytes) for p in paths], recognizer)
            if row["status"] != "no_face"
        )
    elif mode == "chunk-decode":
        for begin in range(0, len(paths), 16):
            images = [read_image(p) for p in paths[begin : begin + 16]]
            faces += sum(len(r) for r in recognizer.analyze_many(images))
    seconds = time.perf_counter() - start
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"mode": mode, "peak_rss_mb": round(peak_mb), "faces": faces, "seconds": round(seconds, 1)}))


def png16_child(mode: str, path: Path) -> None:
    """Runs in the measured process: decode the PNG one way; print the peak over the imports."""
    import io

    import cv2
    import numpy as np
    from PIL import Image

    from fer_core.imageio import read_image

    data = path.read_bytes()
    Path("/proc/self/clear_refs").write_text("5")  # Linux: the peak (VmHWM) starts again from now
    before = _status_kb("VmRSS")
    if mode == "read_image":
        image = read_image(data)
    else:  # the earlier path, as a baseline
        rgba = Image.open(io.BytesIO(data))
        rgba.load()
        rgba = rgba.convert("RGBA")
        flat = Image.alpha_composite(Image.new("RGBA", rgba.size, (255, 255, 255, 255)), rgba)
        image = cv2.cvtColor(np.asarray(flat.convert("RGB")), cv2.COLOR_RGB2BGR)
    over = (_status_kb("VmHWM") - before) / 1024
    print(json.dumps({"mode": mode, "peak_over_imports_mb": round(over), "shape": list(image.shape)}))


def _status_kb(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise KeyError(field)


def png16(folder: Path) -> None:
    import cv2
    import numpy as np

    image = np.zeros((3000, 4000, 4), np.uint16)
    image[..., 0], image[..., 3] = 30000, 40000
    image[1000:2000, 1000:2000, 1] = 65535
    path = folder / "rgba16.png"
    cv2.imwrite(str(path), image)
    print(f"one 4000x3000 16-bit RGBA PNG of {path.stat().st_size / 1e3:.0f} KB")
    for mode in ("read_image", "pillow-alpha-composite"):
        out = subprocess.run(
            [sys.executable, "-m", "tests.benchmarks.bench_memory", "--png16-child", mode, str(path)],
            cwd=REPO,
            capture_output=True,
            text=True,
            check=True,
        )
        result = json.loads(out.stdout.strip().splitlines()[-1])
        print(f"{mode:>22}: peak RSS {result['peak_over_imports_mb']:4d} MB over the imports")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--photos", type=int, default=50)
    parser.add_argument("--png16", action="store_true", help="measure decoding a 12 MP 16-bit RGBA PNG instead")
    parser.add_argument("--child", nargs=2, metavar=("MODE", "FOLDER"), help=argparse.SUPPRESS)
    parser.add_argument("--png16-child", nargs=2, metavar=("MODE", "FILE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child[0], Path(args.child[1]))
        return
    if args.png16_child:
        png16_child(args.png16_child[0], Path(args.png16_child[1]))
        return
    if args.png16:
        with tempfile.TemporaryDirectory() as tmp:
            png16(Path(tmp))
        return
    with tempfile.TemporaryDirectory() as tmp:
        total = make_photos(Path(tmp), args.photos)
        print(f"{args.photos} photos of 4000x3000 px, {total / 1e6:.1f} MB of JPEG")
        for mode in ("idle", "label", "chunk-decode"):
            out = subprocess.run(
                [sys.executable, "-m", "tests.benchmarks.bench_memory", "--child", mode, tmp],
                cwd=REPO,
                capture_output=True,
                text=True,
                check=True,
            )
            result = json.loads(out.stdout.strip().splitlines()[-1])
            rate = args.photos / result["seconds"] if mode != "idle" and result["seconds"] else 0
            print(f"{mode:>13}: peak RSS {result['peak_rss_mb']:5d} MB, faces {result['faces']}, {rate:.2f} photos/s")


if __name__ == "__main__":
    main()
