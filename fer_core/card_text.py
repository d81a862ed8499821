"""Model cards in words, for the home page and `python -m fer_core models NAME` alike."""

from __future__ import annotations

import math


def how_made(card: dict) -> str:
    """How a registered model was made: data, epochs (best), wall time, its parent and teacher.

    For example "trained on data/train: 8 epochs (best 3), 1.2 h, fine-tuned from fer2013-resnet,
    taught by fer2013-pair (flip)"; an ensemble's says how its weights were chosen.
    """
    training = card.get("training", {})
    config = training.get("config", {})
    parts = []
    if training.get("blend"):
        mix = " + ".join(f"{m['share']:g} x {m['name']}" for m in training["blend"])
        return f"weights blended from models trained on {training.get('data', '?')}: {mix}"
    if training.get("epochs_run") is not None:
        parts.append(f"{training['epochs_run']} epochs (best {training.get('best_epoch', '?')})")
    if training.get("wall_seconds"):
        hours = training["wall_seconds"] / 3600
        parts.append(f"{hours:.1f} h" if hours >= 1 else f"{training['wall_seconds'] / 60:.0f} min")
    if config.get("finetune_from"):
        kept = " (batch-norm kept)" if config.get("freeze_bn") else ""
        parts.append(f"fine-tuned from {config['finetune_from']}{kept}")
    if config.get("teacher"):
        taught = f"taught by {config['teacher']} ({config.get('teacher_tta', 'none')})"
        if config.get("teacher_mode") == "consistent":
            taught += " on each augmented batch"
        if config.get("second_teacher"):
            taught += f" and {config['second_teacher']} (share {config.get('second_teacher_weight', 0.5):g})"
        if config.get("unlabeled"):
            taught += ", with unlabelled faces"
        parts.append(taught)
    if training.get("weights"):
        parts.append(f"weights {training['weights']}")
    return f"trained on {training.get('data', '?')}" + (": " + ", ".join(parts) if parts else "")


def describe(card: dict) -> str:
    """One line on what a model is: its members and weights (an ensemble), or its architecture,
    size and the crops it takes."""
    if card.get("kind") == "ensemble":
        members = " + ".join(f"{m.get('name')} x{float(m.get('weight', 1)):.2f}" for m in card.get("members", []))
        return f"ensemble of {members}" if members else "ensemble"
    parameters = card.get("parameters")
    size = f" · {parameters:,} parameters" if isinstance(parameters, int) else ""
    runtime = " · ONNX Runtime" if card.get("runtime") == "onnx" else ""
    crops = describe_crops(card.get("preprocessing", {}), card.get("input_size", "?"))
    return f"{card.get('architecture', '?')}{size} · input {crops}{runtime}"


def describe_crops(spec: dict, size) -> str:
    """The crops a card's `preprocessing` asks for, in words: "112 px colour, aligned on five landmarks"."""
    crop = (
        "colour, aligned on five landmarks"
        if spec.get("crop") == "five_point"
        else f"grayscale, margin {spec.get('margin', '?')}" + (", turned upright" if spec.get("align") else "")
    )
    return f"{size} px {crop}"


def data_terms(card: dict) -> str:
    """What the model's training data allows, from its card."""
    data = str(card.get("training", {}).get("data", ""))
    if "RAF-DB" in data:
        return "RAF-DB is licensed for non-commercial research; check its terms before other uses."
    return "FER-2013 was released for research within the ICML 2013 challenge; check its terms before other uses."


def recommended_tta(card: dict | None) -> str | None:
    """The test-time augmentation a card's figures favour: a costlier mode only where it gains at
    least GAIN_PER_DOUBLING of validation accuracy per doubling of the views it runs (validation
    only: the test set never chooses)."""
    card = card or {}
    modes = []
    for mode, entry in (card.get("tta") or {}).items():
        figures = (card.get("metrics") or {}) if mode == "none" else entry
        accuracy = (figures.get("validation") or {}).get("accuracy")
        if accuracy is not None:
            modes.append((entry.get("views") or 1, accuracy, mode))
    if not modes:
        return None
    modes.sort()
    views, accuracy, best = modes[0]
    for more_views, more_accuracy, mode in modes[1:]:
        if more_accuracy - accuracy >= GAIN_PER_DOUBLING * math.log2(more_views / views):
            views, accuracy, best = more_views, more_accuracy, mode
    return best


GAIN_PER_DOUBLING = 0.005
