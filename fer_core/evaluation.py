"""Evaluating a classifier on labelled face crops through the inference path."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import numpy as np

from fer_core.datasets import LabeledFaces
from fer_core.metrics import classification_metrics, fit_temperature, softmax
from fer_core.models import Classifier, load_classifier
from fer_core.tta import TTA_MODES, view_count


def scoring_threads() -> int:
    """Interpreter threads for scoring whole sets in one process (evaluate, cards, ensembles): every core.

    Costs per face are still timed on one thread, as cards report them and as the app runs models.
    """
    return os.cpu_count() or 1


def classifier_logits(
    classifier: Classifier,
    data: LabeledFaces,
    batch: int = 256,
    progress: Callable[[int, int], None] | None = None,
) -> np.ndarray:
    """Logits (N, 7) for every crop of `data`, reporting progress per batch.

    Raises:
        ValueError: the set is empty.
    """
    if len(data) == 0:
        raise ValueError("The labelled set holds no readable images.")
    parts = []
    for start in range(0, len(data), batch):
        parts.append(classifier.logits(data.images[start : start + batch]))
        if progress:
            progress(min(start + batch, len(data)), len(data))
    return np.concatenate(parts)


def evaluate_classifier(
    classifier: Classifier,
    data: LabeledFaces,
    batch: int = 256,
    progress: Callable[[int, int], None] | None = None,
) -> tuple[dict, np.ndarray]:
    """Metrics of `classifier` on `data` (with its calibrated temperature), and the probabilities.

    Returns:
        (metrics dict as from `classification_metrics`, probabilities (N, 7)).

    Raises:
        ValueError: the set is empty.
    """
    probs = softmax(classifier_logits(classifier, data, batch, progress), classifier.temperature)
    return classification_metrics(data.labels, probs), probs


def cell_examples(data: LabeledFaces, probs: np.ndarray, true_class: int, predicted_class: int) -> list[dict]:
    """Items whose label is `true_class` and prediction `predicted_class`, worst first.

    "Worst" is the lowest probability given to the true class.
    """
    predicted = probs.argmax(axis=1)
    index = np.flatnonzero((data.labels == true_class) & (predicted == predicted_class))
    order = index[np.argsort(probs[index, true_class])]
    return [
        {
            "index": int(i),
            "source": data.sources[i],
            "p_true": float(probs[i, true_class]),
            "p_predicted": float(probs[i, predicted_class]),
            "probabilities": probs[i].tolist(),
        }
        for i in order
    ]


MIN_CALIBRATION_SET = 200
"""Faces a set needs before a temperature is fitted on it: half fit, half check. On a few
images a fitted temperature mostly fits noise (T=0.38 on 11 images raised ECE from 0.025 to 0.209)."""


def calibration_report(data: LabeledFaces, logits: np.ndarray, current_temperature: float = 1.0, seed: int = 0) -> dict:
    """Fit a temperature on a random half of the set; on the other half compare it with the current one.

    Returns:
        {"temperature", "current_temperature", "ece_current", "ece_after", "improves",
        "bins_current", "bins_after", "n_fit", "n_eval"}; `improves` is true only when the
        fitted temperature lowers ECE on the held-out half by more than 0.005.

    Raises:
        ValueError: fewer than MIN_CALIBRATION_SET faces.
    """
    from fer_core.metrics import expected_calibration_error, reliability_bins

    if len(data) < MIN_CALIBRATION_SET:
        raise ValueError(f"Calibration needs at least {MIN_CALIBRATION_SET} labelled faces. Received: n={len(data)}")
    order = np.random.default_rng(seed).permutation(len(data))
    fit_idx, eval_idx = order[: len(order) // 2], order[len(order) // 2 :]
    temperature = fit_temperature(data.labels[fit_idx], logits[fit_idx])
    y = data.labels[eval_idx]
    now, after = softmax(logits[eval_idx], current_temperature), softmax(logits[eval_idx], temperature)
    ece_current, ece_after = expected_calibration_error(y, now), expected_calibration_error(y, after)
    return {
        "temperature": temperature,
        "current_temperature": float(current_temperature),
        "ece_current": ece_current,
        "ece_after": ece_after,
        "improves": bool(ece_after < ece_current - 0.005),
        "bins_current": reliability_bins(y, now),
        "bins_after": reliability_bins(y, after),
        "n_fit": int(len(fit_idx)),
        "n_eval": int(len(eval_idx)),
    }


def calibration_record(report: dict, data: LabeledFaces, where: str) -> dict:
    """What a model card keeps of a temperature fitted by `calibration_report` (for `save_calibration`):
    the temperature, the set it was fitted on (`where` it was done, size, fingerprint) and both errors."""
    return {
        "temperature": report["temperature"],
        "fitted_on": f"{where}: {len(data)} labelled faces (set {data.fingerprint()[:12]})",
        "n_fit": report["n_fit"],
        "n_eval": report["n_eval"],
        "ece_before": report["ece_current"],
        "ece_after": report["ece_after"],
    }


def compare_metrics(a: dict, b: dict) -> list[dict]:
    """Per-class rows of precision/recall/F1 for two models and their difference (b - a)."""
    rows = []
    for name in a["per_class"]:
        pa, pb = a["per_class"][name], b["per_class"][name]
        row = {"class": name, "support": pa["support"]}
        for key in ("precision", "recall", "f1"):
            row[f"{key} A"], row[f"{key} B"] = round(pa[key], 4), round(pb[key], 4)
            row[f"{key} Δ"] = round(pb[key] - pa[key], 4)
        rows.append(row)
    return rows


def compare_overall(a: dict, b: dict) -> list[dict]:
    """Accuracy, macro-F1 and ECE of two models on one set, and the difference (b - a)."""
    return [
        {"measure": key, "A": round(a[key], 4), "B": round(b[key], 4), "Δ (B - A)": round(b[key] - a[key], 4)}
        for key in ("accuracy", "macro_f1", "ece")
    ]


def metrics_table(metrics: dict) -> list[dict]:
    """The classification report as rows (one per class, then accuracy / macro averages)."""
    rows = [
        {"class": name, **{k: round(v, 4) if isinstance(v, float) else v for k, v in m.items()}}
        for name, m in metrics["per_class"].items()
    ]
    rows.append(
        {
            "class": "accuracy",
            "precision": None,
            "recall": None,
            "f1": round(metrics["accuracy"], 4),
            "support": metrics["n"],
        }
    )
    rows.append(
        {
            "class": "macro-F1",
            "precision": None,
            "recall": None,
            "f1": round(metrics["macro_f1"], 4),
            "support": metrics["n"],
        }
    )
    return rows


def measure_cost_ms(classifier: Classifier, crops: np.ndarray, repeats: int = 3) -> float:
    """Median milliseconds per face to classify `crops` in one batch."""
    import time

    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        classifier.logits(crops)
        times.append((time.perf_counter() - start) * 1000 / max(len(crops), 1))
    return float(sorted(times)[len(times) // 2])


def measure_single_face_ms(classifier: Classifier, crops: np.ndarray, calls: int = 200) -> float:
    """Median milliseconds of one call on one face (as Live runs), the first calls left out as warm-up."""
    import time

    times = []
    for i in range(calls):
        face = crops[i % len(crops)][None]
        start = time.perf_counter()
        classifier.logits(face)
        times.append((time.perf_counter() - start) * 1000)
    return float(np.median(times[10:]))


def compare_on_validation(config: dict, model_names: list[str]) -> dict[str, dict]:
    """Metrics of registered models on a training run's own validation split.

    Args:
        config: the run's config.json contents.
        model_names: registered models to evaluate.

    Returns:
        {model name: metrics}.
    """
    from fer_core.datasets import validation_split
    from fer_core.registry import get_model

    results = {}
    for name in model_names:
        info = get_model(name, Path(config["models_dir"]) if config.get("models_dir") else None)
        val = validation_split(
            config["data"], config["val_fraction"], config["seed"], info.preprocessing, config.get("max_images")
        )
        results[name] = evaluate_classifier(load_classifier(info, num_threads=scoring_threads()), val)[0]
    return results


def card_measurements(
    build: Callable[[str, float, int], Classifier], val: LabeledFaces, test: LabeledFaces | None = None
) -> dict:
    """What a model card records of a model: calibration, each TTA mode's cost and metrics.

    Args:
        build: makes the model's classifier for a TTA mode, temperature and number of threads (sets are
            scored on `scoring_threads`, costs timed on one).
        val: the validation split (temperature and every choice are fitted here).
        test: a held-out set measured for the card only, or None.

    Returns:
        {"calibration", "tta", "tta_note", "metrics"} entries for the card.
    """
    threads = scoring_threads()
    plain = build("none", 1.0, threads)
    val_logits = plain.logits(val.images)
    temperature = fit_temperature(val.labels, val_logits)
    metrics = {"validation": classification_metrics(val.labels, softmax(val_logits))}
    calibration = {
        "temperature": temperature,
        "fitted_on": "validation split",
        "ece_before": metrics["validation"]["ece"],
        "ece_after": classification_metrics(val.labels, softmax(val_logits, temperature))["ece"],
    }
    # "none" reuses the plain classifier (a temperature does not change the cost).
    views = {m: plain if m == "none" else build(m, 1.0, threads) for m in TTA_MODES}
    sample = val.images[:64]
    tta = {
        mode: {"views": view_count(mode), "ms_per_face_batch64": measure_cost_ms(build(mode, 1.0, 1), sample, 5)}
        for mode in views
    }
    sets = {"validation": val}
    if test is not None:
        sets["test"] = test
        metrics["test"] = classification_metrics(test.labels, softmax(plain.logits(test.images), temperature))
    calibration["by_tta"] = {}
    for mode in ("flip", "crops"):
        # Averaged views give softer logits: each mode gets a temperature fitted on its own logits.
        logits = {split: views[mode].logits(data.images) for split, data in sets.items()}
        mode_temperature = fit_temperature(val.labels, logits["validation"])
        calibration["by_tta"][mode] = {"temperature": mode_temperature, "fitted_on": "validation split"}
        for split, data in sets.items():
            m = classification_metrics(data.labels, softmax(logits[split], mode_temperature))
            tta[mode][split] = {"accuracy": m["accuracy"], "macro_f1": m["macro_f1"]}
            if split == "test":
                metrics[f"test_tta_{mode}"] = tta[mode][split]
    return {
        "calibration": calibration,
        "tta": tta,
        "tta_note": "optional: --tta MODE on the CLI or the Evaluate page; costs measured where it was made",
        "metrics": metrics,
    }


def measure_as_shipped(
    build: Callable[[str, int], Classifier],
    sets: dict[str, LabeledFaces],
    cost_faces: np.ndarray,
    scored_modes: tuple[str, ...] = ("none", "flip"),
) -> dict:
    """A model's metrics on labelled sets and each TTA mode's cost, with its calibration as it is.

    For models made elsewhere (an ONNX file): measured like the project's own, nothing fitted.

    Args:
        build: the model's classifier for a TTA mode (its own temperature) and number of threads
            (sets are scored on `scoring_threads`, costs timed on one).
        sets: {name: labelled faces}, e.g. {"validation": ..., "test": ..., "wild_dev": ...}.
        cost_faces: crops timed for the cost per face (64 is what cards report).
        scored_modes: TTA modes scored on the sets (every mode is timed).

    Returns:
        {"metrics": {name: metrics, "<name>_tta_<mode>": {...}}, "tta": {mode: {"views", cost, per set}}}.
    """
    metrics: dict = {}
    tta: dict = {}
    for mode in TTA_MODES:
        tta[mode] = {"views": view_count(mode), "ms_per_face_batch64": measure_cost_ms(build(mode, 1), cost_faces, 5)}
        if mode not in scored_modes:
            continue
        classifier = build(mode, scoring_threads())
        for name, data in sets.items():
            m, _ = evaluate_classifier(classifier, data)
            if mode == "none":
                metrics[name] = m
            else:
                tta[mode][name] = {"accuracy": m["accuracy"], "macro_f1": m["macro_f1"]}
    return {"metrics": metrics, "tta": tta}
