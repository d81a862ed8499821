"""Class-folder and FER-2013 CSV loaders."""

from __future__ import annotations

import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

from fer_core.datasets import DatasetError, load_class_folders, load_fer_csv, load_labeled
from tests.helpers import write_class_folders


def test_class_folders_with_aliases_unknown_and_bad_files(tmp_path):
    root = write_class_folders(tmp_path / "d", per_class=2, names={0: "anger", 5: "Sadness", 6: "surprised"})
    (root / "cats").mkdir()
    (root / "cats" / "x.png").write_bytes(b"")
    (root / "happy" / "broken.jpg").write_bytes(b"not a jpeg")
    data = load_class_folders(root)
    assert len(data) == 14
    assert data.class_counts() == dict.fromkeys(data.class_counts(), 2)
    assert data.unknown_classes == ["cats"]
    assert data.errors and data.errors[0][0] == "happy/broken.jpg"
    assert data.images.shape == (14, 48, 48) and data.images.dtype == np.uint8
    assert data.fingerprint() == load_class_folders(root).fingerprint()


def test_class_folders_with_no_emotions_names_them(tmp_path):
    (tmp_path / "dogs").mkdir()
    (tmp_path / "dogs" / "a.png").write_bytes(b"")
    with pytest.raises(DatasetError, match="dogs"):
        load_class_folders(tmp_path)
    with pytest.raises(DatasetError, match="not found"):
        load_class_folders(tmp_path / "missing")


def test_fer_csv_rows_and_malformed_row_numbers(tmp_path):
    pixels = " ".join(["128"] * 2304)
    csv_path = tmp_path / "fer2013.csv"
    csv_path.write_text(
        "emotion,pixels,Usage\n"
        f"3,{pixels},Training\n"
        f"0,{pixels},PublicTest\n"
        "2,1 2 3,Training\n"  # row 4: not square
        f"9,{pixels},Training\n"  # row 5: unknown label
        f"4,{' '.join(['300'] * 2304)},Training\n"  # row 6: out of range
    )
    data = load_fer_csv(csv_path)
    assert list(data.labels) == [3, 0]
    assert [e[1].split(":")[0] for e in data.errors] == ["row 4", "row 5", "row 6"]
    assert load_fer_csv(csv_path, usage="PublicTest").labels.tolist() == [0]
    assert len(load_labeled(csv_path)) == 2


def test_fer_csv_bad_header(tmp_path):
    bad = tmp_path / "x.csv"
    bad.write_text("a,b\n1,2\n")
    with pytest.raises(DatasetError, match="emotion"):
        load_fer_csv(bad)


def test_real_fer_folder_sample(shared_fer, tmp_path):
    import shutil

    from tests.helpers import fer_samples

    for path, emotion in fer_samples("test", per_class=2):
        (tmp_path / emotion).mkdir(exist_ok=True)
        shutil.copy(path, tmp_path / emotion / path.name)
    data = load_class_folders(tmp_path)
    assert len(data) == 14 and not data.errors


def test_labelled_folders_of_whole_photos_evaluate(use_models, pattern_dataset, tmp_path, capsys):
    """Photos get their largest face cropped; a photo with no face is left out and counted."""
    import json

    from fer_core.cli import main

    photos = sorted((Path(__file__).resolve().parents[2] / "shared" / "datasets" / "faces_in_photos").glob("*.jpg"))
    if not photos:
        pytest.skip("real photos not present in ../shared/datasets/faces_in_photos")
    root = tmp_path / "mixed"
    shutil.copytree(pattern_dataset, root)  # 48 px crops: used whole
    for i, photo in enumerate(photos[:4]):
        shutil.copy(photo, root / "happy" / f"photo{i}.jpg")
    cv2.imwrite(str(root / "sad" / "wall.png"), np.full((300, 400, 3), 128, np.uint8))
    assert main(["evaluate", "--data", str(root), "--json"]) == 0
    captured = capsys.readouterr()
    report = json.loads(captured.out)
    crops = sum(1 for _ in pattern_dataset.rglob("*.png"))
    assert report["photos_cropped"] == 4 and report["photos_without_face"] == 1
    assert report["n"] == crops + 4
    assert "4 images were whole photos" in captured.err and "1 photos had no face" in captured.err


def test_summary_counts_without_decoding_every_image(pattern_dataset, monkeypatch):
    from fer_core import datasets

    decoded = []
    real_read = datasets.read_image
    monkeypatch.setattr(datasets, "read_image", lambda p, *a, **k: decoded.append(p) or real_read(p, *a, **k))
    summary = datasets.summarize_labelled(pattern_dataset, per_class=2)
    assert summary.counts == {e: 30 for e in summary.counts} and summary.total == 210
    assert len(decoded) == 14 and len(summary.samples) == 14  # two samples per class, nothing else read
    assert sorted(set(summary.samples.labels.tolist())) == list(range(7))


def test_class_folders_wrapped_in_one_or_two_top_folders_are_found(pattern_dataset, tmp_path):
    import shutil

    from fer_core.datasets import find_class_root, load_class_folders

    wrapped = tmp_path / "upload-name" / "my-photos"
    shutil.copytree(pattern_dataset, wrapped)
    assert find_class_root(tmp_path / "upload-name") == wrapped
    assert find_class_root(tmp_path) == wrapped
    direct = load_class_folders(pattern_dataset)
    found = load_class_folders(tmp_path)
    assert len(found) == len(direct) and found.class_counts() == direct.class_counts()
    (tmp_path / "other").mkdir()  # two folders, neither an emotion: no guessing, a clear error
    with pytest.raises(DatasetError, match="Unrecognised folders: other, upload-name"):
        load_class_folders(tmp_path)


def test_split_by_file_list_decodes_only_what_is_asked_and_ignores_unreadable_files(pattern_dataset, tmp_path):
    from fer_core.datasets import train_val_split, validation_split

    train, val = train_val_split(pattern_dataset, 0.2, 7)
    assert len(val) == 42 and len(train) == 168
    assert not set(train.sources) & set(val.sources)
    assert validation_split(pattern_dataset, 0.2, 7).sources == val.sources
    capped = validation_split(pattern_dataset, 0.2, 7, max_images=100)
    assert len(capped) == 20 and set(capped.sources) <= set(train.sources) | set(val.sources)

    broken = tmp_path / "set"
    shutil.copytree(pattern_dataset, broken)
    (broken / train.sources[0]).write_bytes(b"not an image")  # a training file goes bad
    assert validation_split(broken, 0.2, 7).sources == val.sources  # no validation face moves
    assert [e[0] for e in train_val_split(broken, 0.2, 7)[0].errors] == [train.sources[0]]
