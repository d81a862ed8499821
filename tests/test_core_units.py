"""Classes, preprocessing, boxes and metrics on small hand-made inputs."""

from __future__ import annotations

import numpy as np
import pytest

from fer_core.classes import EMOTIONS, canonical_emotion, emotion_index
from fer_core.metrics import classification_metrics, expected_calibration_error, fit_temperature, softmax
from fer_core.preprocess import Preprocessing, preprocess_face, preprocess_faces, square_box, to_model_input
from fer_core.types import Box


def test_class_order_and_aliases():
    assert EMOTIONS == ("angry", "disgust", "fear", "happy", "neutral", "sad", "surprise")
    assert canonical_emotion("Anger") == "angry"
    assert canonical_emotion("sadness") == "sad"
    assert canonical_emotion("Surprised") == "surprise"
    assert canonical_emotion("happiness") == "happy"
    assert canonical_emotion("3") == "happy"
    assert canonical_emotion("cat") is None
    with pytest.raises(ValueError, match="Received: name='cat'"):
        emotion_index("cat")


def test_preprocess_whole_image_and_box():
    img = np.zeros((100, 200, 3), np.uint8)
    img[20:60, 50:90] = 255
    crop = preprocess_face(img, Box(50, 20, 40, 40), Preprocessing(size=48, margin=0.0))
    assert crop.shape == (48, 48) and crop.dtype == np.uint8
    assert crop.mean() > 250  # the box is all white
    whole = preprocess_face(img[..., 0], None, Preprocessing(size=48))
    assert whole.shape == (48, 48)


def test_preprocess_box_past_edge_is_padded_not_failed():
    img = np.full((50, 50), 100, np.uint8)
    crop = preprocess_face(img, Box(30, 30, 40, 40), Preprocessing(size=48, margin=0.2))
    assert crop.shape == (48, 48) and (crop == 100).all()
    x, y, side = square_box(Box(10, 10, 20, 10), margin=0.5)
    assert side == 40 and (x, y) == (0, -5)


def test_preprocess_faces_and_model_input():
    img = np.random.default_rng(0).integers(0, 255, (120, 160, 3), dtype=np.uint8)
    crops = preprocess_faces(img, [Box(0, 0, 40, 40), Box(50, 50, 60, 60)])
    assert crops.shape == (2, 48, 48)
    x = to_model_input(crops)
    assert x.shape == (2, 48, 48, 1) and x.dtype == np.float32 and x.max() > 1  # raw 0..255; the model rescales
    assert preprocess_faces(img, []).shape == (0, 48, 48)


def test_box_fractions_and_iou():
    b = Box(10, 20, 30, 40)
    assert b.as_fractions(100, 200) == (0.1, 0.1, 0.3, 0.2)
    assert b.iou(b) == 1.0
    assert Box(0, 0, 10, 10).iou(Box(5, 0, 10, 10)) == pytest.approx(50 / 150)
    assert Box(0, 0, 10, 10).iou(Box(20, 20, 5, 5)) == 0.0


def test_metrics_against_hand_computed_values():
    # 6 samples: classes angry(0), happy(3), sad(5); predictions chosen by hand.
    y_true = np.array([0, 0, 3, 3, 3, 5])
    y_pred = np.array([0, 3, 3, 3, 5, 5])
    probs = np.full((6, 7), 0.05)
    probs[np.arange(6), y_pred] = 0.7
    m = classification_metrics(y_true, probs)
    assert m["accuracy"] == pytest.approx(4 / 6)
    assert m["per_class"]["angry"] == {"precision": 1.0, "recall": 0.5, "f1": pytest.approx(2 / 3), "support": 2}
    assert m["per_class"]["happy"]["precision"] == pytest.approx(2 / 3)
    assert m["per_class"]["happy"]["recall"] == pytest.approx(2 / 3)
    assert m["per_class"]["sad"]["precision"] == pytest.approx(0.5)
    assert m["per_class"]["sad"]["recall"] == 1.0
    assert m["per_class"]["disgust"]["support"] == 0
    # macro-F1 over the 3 classes present: (2/3 + 2/3 + 2/3) / 3
    assert m["macro_f1"] == pytest.approx(2 / 3)
    assert m["confusion_matrix"][0][:4] == [1, 0, 0, 1]
    assert m["confusion_matrix"][3][3] == 2 and m["confusion_matrix"][3][5] == 1
    # every top confidence is 0.7 / (0.7 + 6 * 0.05) = 0.7, accuracy 4/6 -> ECE = |0.6667 - 0.7|
    assert m["ece"] == pytest.approx(abs(4 / 6 - 0.7), abs=1e-6)
    assert m["n"] == 6 and m["classes"] == list(EMOTIONS)


def test_metrics_reject_bad_shapes():
    with pytest.raises(ValueError, match="Received"):
        classification_metrics(np.array([0, 1]), np.zeros((3, 7)))
    with pytest.raises(ValueError, match="empty"):
        classification_metrics(np.array([], dtype=int), np.zeros((0, 7)))


def test_softmax_temperature_and_fit():
    logits = np.array([[2.0, 0, 0, 0, 0, 0, 0]])
    assert softmax(logits).sum() == pytest.approx(1.0)
    assert softmax(logits, 2.0)[0, 0] < softmax(logits)[0, 0]
    rng = np.random.default_rng(0)
    clean = rng.normal(0, 1.5, (5000, 7))
    # Labels drawn from softmax(clean) make `clean` perfectly calibrated, so 3x it needs T = 3.
    cumulative = softmax(clean).cumsum(axis=1)
    y = np.minimum((rng.random((5000, 1)) > cumulative).sum(axis=1), 6)
    overconfident = clean * 3.0
    t = fit_temperature(y, overconfident)
    assert 2.6 < t < 3.4
    before = expected_calibration_error(y, softmax(overconfident))
    after = expected_calibration_error(y, softmax(overconfident, t))
    assert after < before


def test_the_recommended_tta_mode_must_earn_its_cost_on_validation():
    from fer_core.card_text import recommended_tta

    def card(none, flip, crops):
        return {
            "metrics": {"validation": {"accuracy": none}, "test": {"accuracy": 0.99}},
            "tta": {
                "none": {"views": 1},
                "flip": {"views": 2, "validation": {"accuracy": flip}, "test": {"accuracy": 0.1}},
                "crops": {"views": 10, "validation": {"accuracy": crops}},
            },
        }

    assert recommended_tta(card(0.690, 0.692, 0.698)) == "none"  # crops: +0.8 point for 10x the cost
    assert recommended_tta(card(0.697, 0.714, 0.707)) == "flip"  # +1.7 points for 2x
    assert recommended_tta(card(0.600, 0.604, 0.640)) == "crops"  # +4 points for 10x
    assert recommended_tta({}) is None and recommended_tta(None) is None


def test_a_face_the_detector_doubts_gets_its_own_status():
    from fer_core.rows import DOUBTFUL_FACE_SCORE, STATUSES, face_rows, is_face
    from fer_core.types import Box, FaceResult

    probabilities = np.full(7, 1 / 7, np.float32)
    clock = FaceResult(Box(0, 0, 50, 50, score=0.456), (0, 0, 0, 0), probabilities, "neutral", 0.46)
    face = FaceResult(Box(60, 0, 50, 50, score=0.93), (0, 0, 0, 0), probabilities, "happy", 0.9)
    rows = face_rows("party.jpg", [clock, face])
    assert [r["status"] for r in rows] == ["doubtful_face", "ok"]
    assert f"under {DOUBTFUL_FACE_SCORE}" in rows[0]["detail"] and "doubtful_face" in STATUSES
    assert all(is_face(r) for r in rows)  # still drawn, reviewed and exported: a filterable status


def test_training_curves_give_the_loss_axis_round_ticks_of_its_own():
    from fer_core.charts import _nice_ceiling, training_curves

    epochs = [
        {"epoch": 1, "loss": 2.31, "val_loss": 1.9, "val_accuracy": 0.41, "val_macro_f1": 0.3},
        {"epoch": 2, "loss": 1.52, "val_loss": 1.4, "val_accuracy": 0.55, "val_macro_f1": 0.5},
    ]
    fig = training_curves(epochs)
    loss_axis = fig.layout.yaxis2
    assert tuple(loss_axis.range) == (0, 2.5) and loss_axis.dtick == 0.5 and loss_axis.showgrid is False
    assert fig.layout.legend.orientation == "h" and fig.layout.legend.y < 0  # below the plot, off the ticks
    assert [_nice_ceiling(v) for v in (0.57, 1.53, 2.43, 4.1, 7)] == [1.0, 2.0, 2.5, 5.0, 10.0]
