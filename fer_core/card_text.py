"""Model cards in words, for the home page and `python -m fer_core models NAME` alike."""

from __future__ import annotations


def how_made(card: dict) -> str:
    """How a registered model was made: data, epochs (best), wall time, its parent and teacher.

    For example "trained on data/train: 8 epochs (best 3), 1.2 h, fine-tuned from fer2013-resnet,
    taught by fer2013-pair (flip)"; an ensemble's says how its weights were chosen.
    """
    training = card.get("training", {})
    config = training.get("config", {})
    parts = []
    if training.get("epochs_run") is not None:
        parts.append(f"{training['epochs_run']} epochs (best {training.get('best_epoch', '?')})")
    if training.get("wall_seconds"):
        hours = training["wall_seconds"] / 3600
        parts.append(f"{hours:.1f} h" if hours >= 1 else f"{training['wall_seconds'] / 60:.0f} min")
    if config.get("finetune_from"):
        parts.append(f"fine-tuned from {config['finetune_from']}")
    if config.get("teacher"):
        parts.append(f"taught by {config['teacher']} ({config.get('teacher_tta', 'none')})")
    if training.get("weights"):
        parts.append(f"weights {training['weights']}")
    return f"trained on {training.get('data', '?')}" + (": " + ", ".join(parts) if parts else "")
