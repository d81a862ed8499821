"""Face detectors on synthetic and (where present) real FER-2013 scenes."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

from fer_core.detect import (
    ASSETS,
    DEFAULT_DETECTOR,
    YUNET_FILE,
    YUNET_SHA256,
    DetectorError,
    YuNetDetector,
    _ssd_anchor_centres,
    _YuNetOnnx,
    _YuNetOpenCV,
    available_detectors,
    make_detector,
)
from tests.helpers import compose_scene, fer_samples


def test_anchor_layout_matches_the_models():
    assert _ssd_anchor_centres(128, [(8, 2), (16, 6)]).shape == (896, 2)
    assert _ssd_anchor_centres(192, [(4, 1)]).shape == (2304, 2)
    centres = _ssd_anchor_centres(128, [(8, 2)])
    assert centres.min() > 0 and centres.max() < 1


@pytest.mark.parametrize("name", ["yunet", "blazeface", "blazeface_full", "haar"])
def test_no_face_in_a_plain_image(name):
    detector = make_detector(name)
    assert detector.detect(np.full((480, 640, 3), 127, np.uint8)) == []
    assert detector.detect(np.full((48, 48), 127, np.uint8)) == []


@pytest.mark.parametrize("name", ["yunet", "blazeface", "haar"])
def test_finds_real_faces_in_a_scene(shared_fer, name):
    faces = [cv2.imread(str(p), cv2.IMREAD_GRAYSCALE) for p, _ in fer_samples("test", per_class=1)[2:4]]
    scene, truth = compose_scene(faces, face_px=170, offsets=[(60, 120), (380, 140)])
    found = make_detector(name).detect(scene)
    assert len(found) >= 1
    for box in found:  # every detection lies on one of the pasted faces
        cx, cy = box.x + box.w / 2, box.y + box.h / 2
        assert any(x <= cx <= x + w and y <= cy <= y + h for x, y, w, h in truth)


def test_unknown_detector_and_the_default(monkeypatch):
    with pytest.raises(DetectorError, match="Unknown detector"):
        make_detector("nope")
    monkeypatch.delenv("FER_YUNET_MODEL", raising=False)
    assert DEFAULT_DETECTOR == "yunet" and available_detectors()[0] == "yunet"
    assert isinstance(make_detector(), YuNetDetector)  # from the shipped file, no environment variable


PHOTOS = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "faces_in_photos"


def _real_photo() -> tuple[np.ndarray, list[list[int]]]:
    if not (PHOTOS / "truth.json").is_file():
        pytest.skip(f"real photos not present at {PHOTOS}")
    truth = json.loads((PHOTOS / "truth.json").read_text())
    name = sorted(truth)[0]
    return cv2.imread(str(PHOTOS / name)), truth[name]["boxes"]


def _hits(found, truth, scale: float = 1.0) -> int:
    def inside(t, b):
        cx, cy = (t[0] + t[2] / 2) * scale, (t[1] + t[3] / 2) * scale
        return b.x <= cx <= b.x + b.w and b.y <= cy <= b.y + b.h

    return sum(any(inside(t, b) for b in found) for t in truth)


def test_default_detector_finds_the_faces_of_a_real_photo(monkeypatch):
    monkeypatch.delenv("FER_YUNET_MODEL", raising=False)
    photo, truth = _real_photo()
    found = make_detector().detect(photo)
    assert _hits(found, truth) == len(truth) >= 5
    assert all(b.landmarks is not None and len(b.landmarks) == 5 for b in found)
    for box in found:  # eyes above the mouth, inside the box
        (rx, ry), (lx, ly), _, (mrx, mry), (mlx, mly) = box.landmarks
        assert max(ry, ly) < min(mry, mly)
        assert box.x <= min(rx, lx) and max(rx, lx) <= box.x + box.w


@pytest.mark.parametrize("factor", [0.64, 12.0])
def test_tiny_and_24_megapixel_photos(factor):
    """The real photo shrunk to 320x240 (faces about 24 px) and enlarged to 24 MP (faces 440+ px)."""
    photo, truth = _real_photo()
    resized = cv2.resize(
        photo, None, fx=factor, fy=factor, interpolation=cv2.INTER_AREA if factor < 1 else cv2.INTER_LINEAR
    )
    found = make_detector().detect(resized)
    assert _hits(found, truth, factor) >= len(truth) - 1


def test_a_face_filling_a_big_photo():
    """A face 1500 px wide in a 3000 px photo: found at the main scale, with a fine pass for small faces."""
    photo, truth = _real_photo()
    x, y, w, h = truth[0]
    face = photo[max(0, y - h // 2) : y + h + h // 2, max(0, x - w // 2) : x + w + w // 2]
    big = cv2.resize(face, (3000, 3000), interpolation=cv2.INTER_CUBIC)
    detector = make_detector()
    assert detector.scales(3000, 3000) == [640 / 3000, 0.5]  # the shorter side at most 640 px
    assert detector.scales(480, 640) == [1.25]  # a 640x480 photo: one pass, at 800x600
    assert detector.scales(240, 320) == [1.25]  # small photos: enlarged at most 1.25x
    assert detector.scales(3000, 4000) == [0.2, 0.5]
    found = detector.detect(big)
    assert found and found[0].w > 1000


UPSTREAM_YUNET = PHOTOS.parents[1] / "models" / "yunet" / "yunet_n_640_640.onnx"


def _upstream_yunet() -> Path:
    if not UPSTREAM_YUNET.is_file():
        pytest.skip(f"upstream YuNet file not present at {UPSTREAM_YUNET}")
    return UPSTREAM_YUNET


def test_shipped_yunet_is_upstream_with_a_free_input_size(tmp_path):
    """The shipped file is reproduced byte for byte from upstream's by assets/derive_yunet.py."""
    import hashlib
    import runpy

    derive = runpy.run_path(str(ASSETS / "derive_yunet.py"))["derive"]
    derive(_upstream_yunet(), tmp_path / "yunet.onnx")
    assert hashlib.sha256((tmp_path / "yunet.onnx").read_bytes()).hexdigest() == YUNET_SHA256


def _place(box) -> tuple[int, int]:
    return box.y, box.x


@pytest.mark.parametrize("size", [None, (800, 600), (333, 251)])
def test_onnx_runtime_finds_what_opencv_finds(monkeypatch, size):
    """The shipped file on ONNX Runtime, decoded by us, against upstream's fixed-size file on
    cv2.FaceDetectorYN (FER_YUNET_MODEL): the same faces, boxes, landmarks and scores."""
    photo, _ = _real_photo()
    photo = photo if size is None else cv2.resize(photo, size)
    ours = YuNetDetector(work_size=max(photo.shape))
    monkeypatch.setenv("FER_YUNET_MODEL", str(_upstream_yunet()))
    opencv = YuNetDetector(work_size=max(photo.shape))
    assert isinstance(ours._nets[0], _YuNetOnnx) and isinstance(opencv._nets[0], _YuNetOpenCV)
    for scale in (1.0, 0.8):
        a, b = ours._detect_at(photo, scale), opencv._detect_at(photo, scale)
        assert len(a) == len(b) >= 2
        for x, y in zip(sorted(a, key=_place), sorted(b, key=_place)):
            assert abs(x.x - y.x) <= 1 and abs(x.y - y.y) <= 1 and abs(x.w - y.w) <= 1
            assert x.score == pytest.approx(y.score, abs=1e-4)
            assert np.allclose(x.landmarks, y.landmarks, atol=0.01)


def test_faces_filling_the_frame_are_found_at_any_size(shared_fer):
    """Face crops (the face fills the image) from 48 px to a 640x480 close-up: enlarging small
    photos must not push such a face past what YuNet finds."""
    faces = [cv2.imread(str(p)) for p, _ in fer_samples("train", per_class=2)]
    detector = make_detector()
    for side in (48, 224, 480):
        found = sum(bool(detector.detect(cv2.resize(f, (side, side), interpolation=cv2.INTER_LINEAR))) for f in faces)
        assert found >= len(faces) - 2, side
    close_ups = [cv2.copyMakeBorder(cv2.resize(f, (480, 480)), 0, 0, 80, 80, cv2.BORDER_REFLECT) for f in faces]
    assert sum(bool(detector.detect(c)) for c in close_ups) >= len(faces) - 2


def test_missing_or_corrupt_model_file_names_the_file(tmp_path, monkeypatch):
    monkeypatch.setenv("FER_YUNET_MODEL", str(tmp_path / "missing.onnx"))
    with pytest.raises(DetectorError, match="missing.onnx: YuNet model file is missing"):
        make_detector("yunet")
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not a model" * 10)
    monkeypatch.setenv("FER_YUNET_MODEL", str(bad))
    with pytest.raises(DetectorError, match="bad.onnx: not a loadable YuNet model"):
        make_detector("yunet")
    monkeypatch.delenv("FER_YUNET_MODEL")
    assets = tmp_path / "assets"
    shutil.copytree(ASSETS, assets)
    (assets / YUNET_FILE).write_bytes((ASSETS / YUNET_FILE).read_bytes()[:-10])
    monkeypatch.setattr("fer_core.detect.ASSETS", assets)
    with pytest.raises(DetectorError, match=f"{YUNET_FILE}: sha256 does not match"):
        make_detector("yunet")


def test_min_face_is_per_call_not_shared_state():
    photo, truth = _real_photo()
    detector = make_detector()
    assert detector.detect(photo, min_face=500) == []
    assert _hits(detector.detect(photo), truth) == len(truth)  # the shared default is untouched


@pytest.mark.slow
def test_mtcnn_finds_faces(shared_fer):
    faces = [cv2.imread(str(p), cv2.IMREAD_GRAYSCALE) for p, _ in fer_samples("test", per_class=1)[:2]]
    scene, _ = compose_scene(faces, face_px=170)
    assert len(make_detector("mtcnn").detect(scene)) >= 1
