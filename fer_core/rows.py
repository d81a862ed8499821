"""The results row: one per face, or one per photo with no face or that could not be read.

The one home of the row format, used by `python -m fer_core label`, the Batch page and every
export. Columns: `file,face,x,y,w,h,face_px,detector_score,emotion,confidence,p_<emotion>...,
status,detail`. `emotion`, `confidence` and the probabilities are always the model's output;
`face_px` is the shorter side of the face box and `detector_score` the detector's confidence
(for filtering doubtful faces); `status` is "ok", "low_confidence" (the model is unsure),
"doubtful_face" (the detector is: a detector score under DOUBTFUL_FACE_SCORE), "no_face" or
"unreadable" (the reason in `detail`).

After a review (the Batch page) a face row also carries REVIEW_COLUMNS: `label` (the emotion
after review), `reviewed` (a person looked at it) and `corrected` (`label` differs from the
model's `emotion`). The model's answer is never overwritten by a correction.
"""

from __future__ import annotations

import math

from fer_core.classes import EMOTIONS
from fer_core.types import Box, FaceResult

PROB_COLUMNS = [f"p_{name}" for name in EMOTIONS]
COLUMNS = [
    "file",
    "face",
    "x",
    "y",
    "w",
    "h",
    "face_px",
    "detector_score",
    "emotion",
    "confidence",
    *PROB_COLUMNS,
    "status",
    "detail",
]
FACE_STATUSES = ("ok", "low_confidence", "doubtful_face")
STATUSES = (*FACE_STATUSES, "no_face", "unreadable")
DOUBTFUL_FACE_SCORE = 0.6
"""A face the detector scores under this is marked "doubtful_face". On the real group photos of
`faces_in_photos` (YuNet, 2026-12-07) all 43 faces scored 0.90 or more; its two false detections
(a wall clock, a patterned shirt) 0.46 and 0.78."""
REVIEW_COLUMNS = ["label", "reviewed", "corrected"]

INT_COLUMNS = ("face", "x", "y", "w", "h", "face_px")
FLOAT_COLUMNS = ("detector_score", "confidence", *PROB_COLUMNS)
BOOL_COLUMNS = ("reviewed", "corrected")


def face_rows(name: str, faces: list[FaceResult]) -> list[dict]:
    """Result rows for one decoded photo (a single `no_face` row when it has none)."""
    if not faces:
        return [empty_row(name, "no_face", "no face detected")]
    rows = []
    for i, face in enumerate(faces):
        low = "low_confidence" in face.flags
        doubtful = face.box.score < DOUBTFUL_FACE_SCORE
        row = {
            "file": name,
            "face": i,
            "x": face.box.x,
            "y": face.box.y,
            "w": face.box.w,
            "h": face.box.h,
            "face_px": min(face.box.w, face.box.h),
            "detector_score": round(face.box.score, 4),
            "emotion": face.emotion,
            "confidence": round(face.confidence, 4),
            "status": "doubtful_face" if doubtful else "low_confidence" if low else "ok",
            "detail": (
                f"detector score {face.box.score:.2f} (under {DOUBTFUL_FACE_SCORE}): may not be a face"
                if doubtful
                else f"top probability {face.confidence:.2f}"
                if low
                else ""
            ),
        }
        row.update({col: round(float(p), 4) for col, p in zip(PROB_COLUMNS, face.probabilities)})
        rows.append(row)
    return rows


def empty_row(name: str, status: str, detail: str) -> dict:
    """The row of a photo without a face to report (`no_face` or `unreadable`)."""
    row = dict.fromkeys(COLUMNS, "")
    row.update(file=name, status=status, detail=detail)
    return row


def is_face(row: dict) -> bool:
    """Whether a row describes a face (not a photo without one)."""
    return row.get("status") in FACE_STATUSES


def row_box(row: dict) -> Box | None:
    """The face box of a row, or None for a row without a face."""
    if not is_face(row):
        return None
    return Box(int(row["x"]), int(row["y"]), int(row["w"]), int(row["h"]))


def label_of(row: dict) -> str:
    """The emotion a face has after review: its `label`, else the model's `emotion`."""
    return row.get("label") or row["emotion"]


def typed(row: dict) -> dict:
    """The row with each value of its column's type, and None where a value is missing.

    Rows that went through a table widget come back with numbers as text and gaps as "" or
    NaN; exports must not pass that on (JSON numbers stay numbers).
    """
    out = {}
    for key, value in row.items():
        if value is None or value == "" or (isinstance(value, float) and math.isnan(value)):
            out[key] = None
        elif key in INT_COLUMNS:
            out[key] = int(float(value))
        elif key in FLOAT_COLUMNS:
            out[key] = float(value)
        elif key in BOOL_COLUMNS:
            out[key] = value if isinstance(value, bool) else str(value).lower() in ("true", "1")
        else:
            out[key] = value
    return out


FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
"""A spreadsheet reads a cell starting with one of these as a formula (CSV injection)."""
ESCAPED_STARTS = (*FORMULA_STARTS, "'")


def spreadsheet_safe(row: dict) -> dict:
    """The row for a CSV file: text cells that a spreadsheet would run as a formula get a
    leading apostrophe (numbers, such as a negative coordinate, are left as they are).

    A text that starts with an apostrophe of its own gets one too, as spreadsheets expect, so a
    leading apostrophe in our CSV always means "escaped" and `from_spreadsheet` undoes exactly it.
    """
    return {k: "'" + v if isinstance(v, str) and v.startswith(ESCAPED_STARTS) else v for k, v in row.items()}


def from_spreadsheet(row: dict) -> dict:
    """A row read back from our CSV as it was before `spreadsheet_safe`."""
    return {k: v[1:] if isinstance(v, str) and v.startswith("'") else v for k, v in row.items()}
