"""Batch core: safe unpacking of uploads and zips, exports, and the corrections dataset."""

from __future__ import annotations

import csv
import io
import json
import zipfile

import cv2
import numpy as np
import pytest

from fer_core.corrections import save_corrections_dataset
from fer_core.datasets import load_class_folders
from fer_core.exports import annotated_zip, rows_to_csv, rows_to_json, sorted_zip
from fer_core.rows import COLUMNS
from fer_core.types import Box
from fer_core.uploads import UploadLimits, safe_relative_path, unpack_uploads

PNG = cv2.imencode(".png", np.full((100, 120, 3), 120, np.uint8))[1].tobytes()


def _zip(entries: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in entries.items():
            z.writestr(name, data)
    return buf.getvalue()


@pytest.mark.parametrize(
    "name, expected",
    [
        ("a/b.png", "a/b.png"),
        ("./a//b.png", "a/b.png"),
        ("../x.png", None),
        ("/etc/passwd", None),
        ("a/../../x", None),
        ("C:\\\\win.png", None),
        ("a\\\\b.png", "a/b.png"),
        ("", None),
    ],
)
def test_safe_relative_path(name, expected):
    assert safe_relative_path(name) == expected


def test_unpack_keeps_folders_and_refuses_traversal(tmp_path):
    work = tmp_path / "work"
    work.mkdir()
    data = _zip(
        {
            "happy/a.png": PNG,
            "../../escape.png": PNG,
            "/abs.png": PNG,
            "inner.zip": b"PK",
            "__MACOSX/._a.png": b"junk",
            "sad/.hidden.png": PNG,
        }
    )
    uploads, rejected = unpack_uploads([("set.zip", data), ("dir/b.png", PNG), ("../c.png", PNG)], work)
    assert sorted(u.name for u in uploads) == ["dir/b.png", "set/happy/a.png"]
    reasons = {r["file"]: r["detail"] for r in rejected}
    assert "unsafe path" in reasons["set/../../escape.png"]
    assert "unsafe path" in reasons["set//abs.png"]
    assert reasons["set/inner.zip"] == "nested zip ignored"
    assert "unsafe path" in reasons["../c.png"]
    assert all(r["status"] == "unreadable" and set(r) == set(COLUMNS) for r in rejected)
    written = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert all(work in p.parents for p in written)  # nothing outside the work folder
    assert not (tmp_path / "escape.png").exists()


def test_a_zipped_folder_keeps_its_own_name_once_and_rows_come_sorted(tmp_path):
    data = _zip({"scenes20/b.png": PNG, "scenes20/a.png": PNG, "scenes20/sub/c.png": PNG, "__MACOSX/x": b"j"})
    uploads, _ = unpack_uploads([("scenes20.zip", data), ("z.png", PNG), ("m.png", PNG)], tmp_path / "w")
    assert [u.name for u in uploads] == ["m.png", "scenes20/a.png", "scenes20/b.png", "scenes20/sub/c.png", "z.png"]
    loose = _zip({"b.png": PNG, "a.png": PNG})  # no top folder: the zip's name groups them
    uploads, _ = unpack_uploads([("loose.zip", loose)], tmp_path / "w2")
    assert [u.name for u in uploads] == ["loose/a.png", "loose/b.png"]


def test_zip_bomb_and_file_count_limits(tmp_path):
    bomb = _zip({f"f{i}.png": b"\0" * 2_000_000 for i in range(5)})  # ~10 MB uncompressed, tiny zipped
    uploads, rejected = unpack_uploads([("bomb.zip", bomb)], tmp_path, UploadLimits(max_total_bytes=1_000_000))
    assert uploads == [] and "the limit is 5,000 files and 1 MB" in rejected[0]["detail"]
    many = [(f"p{i}.png", PNG) for i in range(7)]
    uploads, rejected = unpack_uploads(many, tmp_path, UploadLimits(max_files=5))
    assert len(uploads) == 5 and len(rejected) == 2 and "limit of 5 files" in rejected[0]["detail"]
    uploads, rejected = unpack_uploads([("bad.zip", b"not a zip")], tmp_path)
    assert rejected[0]["detail"] == "not a valid zip archive"


def _rows_for(name: str, box: Box | None, emotion: str, status: str = "ok") -> dict:
    row = dict.fromkeys(COLUMNS, "")
    row.update(file=name, status=status)
    if box:
        probs = np.full(7, 0.05)
        probs[3] = 0.7
        row.update(
            face=0,
            x=box.x,
            y=box.y,
            w=box.w,
            h=box.h,
            emotion=emotion,
            confidence=0.7,
            **{f"p_{e}": p for e, p in zip(["angry", "disgust", "fear", "happy", "neutral", "sad", "surprise"], probs)},
        )
    return row


def test_exports_and_corrections_dataset(tmp_path):
    photo = tmp_path / "in" / "sub" / "one.png"
    photo.parent.mkdir(parents=True)
    photo.write_bytes(PNG)
    blank = tmp_path / "in" / "none.png"
    blank.write_bytes(PNG)
    files = {"sub/one.png": photo, "none.png": blank}
    face = _rows_for("sub/one.png", Box(10, 10, 60, 60), "happy")
    fixed = dict(face, label="sad", reviewed=True, corrected=True)  # the model's "happy" stays in `emotion`
    rows = [fixed, _rows_for("none.png", None, "", status="no_face")]
    text = rows_to_csv(rows)
    assert text.splitlines()[0].startswith(",".join(COLUMNS))
    exported = json.loads(rows_to_json(rows))
    assert exported[1]["x"] is None
    assert exported[0]["emotion"] == "happy" and exported[0]["label"] == "sad" and exported[0]["corrected"] is True
    # Rows that went through the table widget come back as text: the JSON still has numbers.
    as_text = [{k: ("" if v is None else str(v)) for k, v in r.items()} for r in rows]
    again = json.loads(rows_to_json(as_text))
    assert again[0]["x"] == 10 and again[0]["confidence"] == 0.7 and again[0]["corrected"] is True
    with zipfile.ZipFile(io.BytesIO(annotated_zip(rows, files))) as z:
        assert sorted(z.namelist()) == ["none.png.jpg", "sub/one.png.jpg"]  # a PNG drawn is a JPEG beside its name
    with zipfile.ZipFile(io.BytesIO(sorted_zip(rows, files))) as z:
        assert sorted(z.namelist()) == ["no_face/none.png", "sad/sub/one.png"]
    out = tmp_path / "dataset"
    counts = save_corrections_dataset(rows, files, out)
    assert counts["sad"] == 1 and sum(counts.values()) == 1
    manifest = list(csv.DictReader((out / "manifest.csv").open()))
    assert manifest[0]["source"] == "sub/one.png" and manifest[0]["label"] == "sad"
    assert manifest[0]["predicted"] == "happy" and manifest[0]["corrected"] == "True"
    assert json.loads((out / "dataset.json").read_text())["corrected"] == 1
    loaded = load_class_folders(out)  # the Train page can use it as it is
    assert len(loaded) == 1 and loaded.labels[0] == 5
    # An unreviewed face is left out by default; saved on request, marked, and counted.
    other = dict(_rows_for("sub/one.png", Box(70, 20, 30, 30), "fear"), face=1)
    assert sum(save_corrections_dataset([fixed, other], files, tmp_path / "reviewed").values()) == 1
    save_corrections_dataset([fixed, other], files, tmp_path / "all", reviewed_only=False)
    marked = {m["label"]: m["reviewed"] for m in csv.DictReader((tmp_path / "all" / "manifest.csv").open())}
    assert marked == {"sad": "True", "fear": "False"}
    from fer_core.corrections import unreviewed_share

    assert unreviewed_share(tmp_path / "all") == (1, 2)


def test_corrections_are_cropped_as_inference_crops(tmp_path):
    """A model fine-tuned on saved corrections sees the same crops as it does in use."""
    from fer_core.preprocess import Preprocessing, preprocess_face

    rng = np.random.default_rng(3)
    image = rng.integers(0, 255, (120, 160, 3), dtype=np.uint8)
    path = tmp_path / "p.png"
    cv2.imwrite(str(path), image)
    box = Box(100, 60, 50, 50)  # reaches past the border: padded as at inference
    row = dict(_rows_for("p.png", box, "fear"), reviewed=True)
    spec = Preprocessing(size=48, margin=0.1)
    save_corrections_dataset([row], {"p.png": path}, tmp_path / "set", spec)
    saved = cv2.imread(str(next((tmp_path / "set" / "fear").glob("*.png"))), cv2.IMREAD_GRAYSCALE)
    np.testing.assert_array_equal(saved, preprocess_face(image, box, spec))
    loaded = load_class_folders(tmp_path / "set", spec)
    np.testing.assert_array_equal(loaded.images[0], preprocess_face(image, box, spec))


def test_files_that_are_not_photos_are_skipped_not_counted_unreadable(tmp_path):
    data = _zip({"photos/a.png": PNG, "photos/README.md": b"# notes", "photos/truth.json": b"{}"})
    files = [("set.zip", data), ("dir/b.png", PNG), ("dir/notes.txt", b"x"), ("dir/c.heic", b"heic")]
    uploads, rejected = unpack_uploads(files, tmp_path / "w")
    assert sorted(u.name for u in uploads) == ["dir/b.png", "dir/c.heic", "photos/a.png"]
    assert rejected == []  # a HEIC is kept to be reported by the labeller as unsupported
