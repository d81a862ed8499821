"""Datasets of reviewed faces ("corrections"), saved from a batch for training and evaluation."""

from __future__ import annotations

import csv
import json
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath

import cv2
import numpy as np

from fer_core.classes import EMOTIONS
from fer_core.imageio import ImageReadError, read_image
from fer_core.names import unique_name
from fer_core.preprocess import Preprocessing, preprocess_face
from fer_core.rows import label_of, row_box, spreadsheet_safe, typed

DATASET_FILE = "dataset.json"


def save_corrections_dataset(
    rows: list[dict],
    files: dict[str, Path],
    out_dir: Path,
    spec: Preprocessing = Preprocessing(),
    reviewed_only: bool = True,
) -> dict[str, int]:
    """Write labelled face crops into `out_dir/<label>/`, with a manifest.csv and a dataset.json.

    Crops are made by the one preprocessing function inference uses (`preprocess_face` with
    the model's `spec`), so a model trained on them sees faces exactly as it will in use; the
    dataset loader takes such small crops as they are.

    Args:
        rows: result rows with review columns (`label`, `reviewed`, `corrected`).
        reviewed_only: save only faces a person reviewed (corrected faces count as reviewed).
            Otherwise every face is saved and the unreviewed ones keep the model's label: the
            manifest marks them, and dataset.json counts them, so that evaluating a model on
            this set can warn that some labels came from a model.

    Returns:
        Crops written per label.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    counts = dict.fromkeys(EMOTIONS, 0)
    manifest = []
    written: set[str] = set()
    manifest_names: list[str] = []
    current: tuple[str, np.ndarray | None] = ("", None)  # one decoded photo at a time
    for row in sorted((typed(r) for r in rows if row_box(r) is not None), key=lambda r: (r["file"], r["face"])):
        reviewed = bool(row.get("reviewed") or row.get("corrected"))
        label = label_of(row)
        if (reviewed_only and not reviewed) or label not in EMOTIONS or row["file"] not in files:
            continue
        if current[0] != row["file"]:
            try:
                current = (row["file"], read_image(files[row["file"]]))
            except ImageReadError:
                current = (row["file"], None)
        if current[1] is None:
            continue
        box = row_box(row)
        # the photo's whole relative name (suffix included) under the label: every crop its own file
        rel = f"{label}/{PurePosixPath(row['file']).as_posix()}__face{row['face']}.png"
        if rel.casefold() in written:
            rel = unique_name(rel, set(manifest_names))
        written.add(rel.casefold())
        manifest_names.append(rel)
        (out_dir / rel).parent.mkdir(parents=True, exist_ok=True)
        crop = preprocess_face(current[1], box, spec)
        cv2.imwrite(str(out_dir / rel), cv2.cvtColor(crop, cv2.COLOR_RGB2BGR) if crop.ndim == 3 else crop)
        counts[label] += 1
        manifest.append(
            {
                "crop": rel,
                "source": row["file"],
                "face": row["face"],
                "x": box.x,
                "y": box.y,
                "w": box.w,
                "h": box.h,
                "label": label,
                "predicted": row["emotion"],
                "corrected": label != row["emotion"],
                "reviewed": reviewed,
            }
        )
    with (out_dir / "manifest.csv").open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(manifest[0]) if manifest else ["crop"])
        writer.writeheader()
        writer.writerows(map(spreadsheet_safe, manifest))
    (out_dir / DATASET_FILE).write_text(
        json.dumps(
            {
                "created": datetime.now(UTC).isoformat(timespec="seconds"),
                "counts": counts,
                "corrected": sum(m["corrected"] for m in manifest),
                "unreviewed": sum(not m["reviewed"] for m in manifest),
                "preprocessing": spec.to_dict(),
            },
            indent=2,
        )
    )
    return counts


def unreviewed_share(folder: Path) -> tuple[int, int]:
    """(labels that came from a model unreviewed, all labels) of a saved corrections dataset; (0, 0) if unknown."""
    try:
        info = json.loads((folder / DATASET_FILE).read_text())
    except (OSError, ValueError):
        return 0, 0
    return int(info.get("unreviewed", 0)), int(sum(info.get("counts", {}).values()))
