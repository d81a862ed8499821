"""Face detectors on synthetic and (where present) real FER-2013 scenes."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from fer_core.detect import DEFAULT_DETECTOR, DetectorError, _ssd_anchor_centres, available_detectors, make_detector
from tests.helpers import compose_scene, fer_samples


def test_anchor_layout_matches_the_models():
    assert _ssd_anchor_centres(128, [(8, 2), (16, 6)]).shape == (896, 2)
    assert _ssd_anchor_centres(192, [(4, 1)]).shape == (2304, 2)
    centres = _ssd_anchor_centres(128, [(8, 2)])
    assert centres.min() > 0 and centres.max() < 1


@pytest.mark.parametrize("name", ["blazeface", "blazeface_full", "haar"])
def test_no_face_in_a_plain_image(name):
    detector = make_detector(name)
    assert detector.detect(np.full((480, 640, 3), 127, np.uint8)) == []
    assert detector.detect(np.full((48, 48), 127, np.uint8)) == []


@pytest.mark.parametrize("name", ["blazeface", "haar"])
def test_finds_real_faces_in_a_scene(shared_fer, name):
    faces = [cv2.imread(str(p), cv2.IMREAD_GRAYSCALE) for p, _ in fer_samples("test", per_class=1)[2:4]]
    scene, truth = compose_scene(faces, face_px=170, offsets=[(60, 120), (380, 140)])
    found = make_detector(name).detect(scene)
    assert len(found) >= 1
    for box in found:  # every detection lies on one of the pasted faces
        cx, cy = box.x + box.w / 2, box.y + box.h / 2
        assert any(x <= cx <= x + w and y <= cy <= y + h for x, y, w, h in truth)


def test_unknown_and_unconfigured_detectors(monkeypatch):
    with pytest.raises(DetectorError, match="Unknown detector"):
        make_detector("nope")
    monkeypatch.delenv("FER_YUNET_MODEL", raising=False)
    with pytest.raises(DetectorError, match="FER_YUNET_MODEL"):
        make_detector("yunet")
    assert "yunet" not in available_detectors()
    assert available_detectors()[0] == DEFAULT_DETECTOR


@pytest.mark.slow
def test_mtcnn_finds_faces(shared_fer):
    faces = [cv2.imread(str(p), cv2.IMREAD_GRAYSCALE) for p, _ in fer_samples("test", per_class=1)[:2]]
    scene, _ = compose_scene(faces, face_px=170)
    assert len(make_detector("mtcnn").detect(scene)) >= 1
