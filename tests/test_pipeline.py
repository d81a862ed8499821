"""The inference pipeline with a really trained tiny model."""

from __future__ import annotations

import numpy as np
import pytest

from fer_core.classes import EMOTIONS
from fer_core.models import load_classifier
from fer_core.recognizer import EmotionRecognizer
from fer_core.registry import get_model
from fer_core.tta import tta_views
from fer_core.types import Box
from tests.helpers import pattern_face


class FixedBoxes:
    """A stand-in detector returning preset boxes (keeps these tests free of face photos)."""

    name = "fixed"

    def __init__(self, boxes):
        self.boxes = boxes

    def detect(self, image, min_face=None):
        return list(self.boxes)


@pytest.fixture
def classifier(tiny_models_dir):
    return load_classifier(get_model("tiny-test", tiny_models_dir))


def test_classifier_learned_the_patterns(classifier):
    rng = np.random.default_rng(99)
    labels = np.arange(7).repeat(5)
    crops = np.stack([pattern_face(int(k), rng) for k in labels])
    probs = classifier.predict_proba(crops)
    assert probs.shape == (35, 7)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-5)
    accuracy = (probs.argmax(axis=1) == labels).mean()
    assert accuracy > 0.6, accuracy


def test_batches_of_any_size_agree_with_single_calls(classifier):
    rng = np.random.default_rng(1)
    crops = rng.integers(0, 255, (70, 48, 48), dtype=np.uint8)
    together = classifier.logits(crops)
    one_by_one = np.concatenate([classifier.logits(crops[i : i + 1]) for i in range(5)])
    np.testing.assert_allclose(together[:5], one_by_one, rtol=1e-4, atol=1e-4)
    assert classifier.logits(crops[:0]).shape == (0, 7)
    with pytest.raises(ValueError, match="Received: shape"):
        classifier.logits(np.zeros((2, 10, 10), np.uint8))


def test_recognizer_results(tiny_models_dir):
    info = get_model("tiny-test", tiny_models_dir)
    boxes = [Box(10, 10, 100, 100), Box(200, 50, 30, 30)]
    rec = EmotionRecognizer(load_classifier(info), FixedBoxes(boxes), info.preprocessing)
    image = np.random.default_rng(0).integers(0, 255, (240, 320, 3), dtype=np.uint8)
    faces = rec.analyze(image)
    assert len(faces) == 2
    first = faces[0]
    assert first.box == boxes[0]
    assert first.box_fraction == pytest.approx((10 / 320, 10 / 240, 100 / 320, 100 / 240))
    assert first.emotion == EMOTIONS[int(first.probabilities.argmax())]
    assert first.confidence == pytest.approx(float(first.probabilities.max()))
    assert "small_face" in faces[1].flags and "small_face" not in first.flags
    record = first.to_dict()
    assert list(record["probabilities"]) == list(EMOTIONS)
    many = rec.analyze_many([image, image[::-1].copy()])
    np.testing.assert_allclose(many[0][0].probabilities, first.probabilities, rtol=1e-4, atol=1e-5)
    assert EmotionRecognizer(rec.classifier, FixedBoxes([]), info.preprocessing).analyze(image) == []


def test_tta_flip_averages(tiny_models_dir):
    info = get_model("tiny-test", tiny_models_dir)
    plain = load_classifier(info)
    flip = load_classifier(info, tta="flip")
    crops = np.random.default_rng(3).integers(0, 255, (4, 48, 48), dtype=np.uint8)
    expected = (plain.logits(crops) + plain.logits(crops[:, :, ::-1])) / 2
    np.testing.assert_allclose(flip.logits(crops), expected, rtol=1e-4, atol=1e-5)


def test_tta_crops_views_and_average(tiny_models_dir):
    crops = np.random.default_rng(4).integers(0, 255, (9, 48, 48), dtype=np.uint8)
    views = tta_views(crops, "crops")
    assert views.shape == (10, 9, 48, 48)
    np.testing.assert_array_equal(views[0], crops)
    # the second view is the face moved 3 px (6% of 48) to the left, the right edge reflected
    np.testing.assert_array_equal(views[1][:, :, :-3], crops[:, :, 3:])
    np.testing.assert_array_equal(views[1][:, :, -1], crops[:, :, -3])
    np.testing.assert_array_equal(views[5:], views[:5, :, :, ::-1])
    info = get_model("tiny-test", tiny_models_dir)
    plain = load_classifier(info)
    ten = load_classifier(info, tta="crops")
    # 90 views cross the 64-image chunk boundary; each face still averages its own ten views
    expected = np.mean([plain.logits(np.ascontiguousarray(v)) for v in views], axis=0)
    np.testing.assert_allclose(ten.logits(crops), expected, rtol=1e-4, atol=1e-5)
    with pytest.raises(ValueError, match="Unknown test-time augmentation"):
        load_classifier(info, tta="tencrop")


def test_inference_path_imports_no_tensorflow(tiny_models_dir):
    import subprocess
    import sys

    code = (
        "import sys; from pathlib import Path; from fer_core.recognizer import EmotionRecognizer;"
        "from fer_core.registry import get_model;"
        f"EmotionRecognizer.from_registry(get_model('tiny-test', Path({str(tiny_models_dir)!r})));"
        "print('tensorflow' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
