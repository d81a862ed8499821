"""`python -m fer_core models NAME`: one model's card as the home page shows it, in a terminal."""

from __future__ import annotations

from fer_core.card_text import describe, how_made
from fer_core.classes import EMOTIONS
from fer_core.cli.runs import print_curve
from fer_core.cli.text import percent, print_table
from fer_core.registry import ModelInfo


def print_card(info: ModelInfo, active: bool) -> None:
    """What a model is, how it was made, and what it measured: per split and class, per TTA mode."""
    card = info.card
    print(f"{info.name}{' (active)' if active else ''} · {describe(card)}")
    if info.is_ensemble:
        validation = card.get("members_validation", {})
        print("members (logits averaged): " + "; ".join(_member(m, validation) for m in card.get("members", [])))
    training = card.get("training", {})
    _print_training(card)
    _print_metrics(card.get("metrics", {}))
    _print_tta(card.get("tta", {}))
    calibration = card.get("calibration", {})
    if "temperature" in calibration:
        print(
            f"calibration: temperature {calibration['temperature']:.3f} fitted on the "
            f"{calibration.get('fitted_on', 'validation split')}"
            + (
                f" (expected calibration error {calibration['ece_before']:.3f} -> {calibration['ece_after']:.3f})"
                if "ece_before" in calibration and "ece_after" in calibration
                else ""
            )
        )
    quantization = card.get("quantization", {})
    if card.get("tflite_weights"):
        agreement = quantization.get("agreement_with_float")
        print(
            f"LiteRT weights: {card['tflite_weights']}"
            + (
                f"; labels {agreement:.1%} of {quantization.get('measured_on', '?')} validation faces "
                "as the float model does"
                if agreement is not None
                else ""
            )
        )
    history = training.get("history") or []
    if history:
        print(f"learning curve ({len(history)} epochs):")
        print_curve(history)
    print(f"created {card.get('created', '?')} · folder {info.folder}")


def _member(entry: dict, validation: dict) -> str:
    accuracy = validation.get(entry.get("name"))
    alone = f" ({percent(accuracy)} alone on validation)" if accuracy is not None else ""
    return f"{entry.get('name')} x{entry.get('weight', 1.0):.2f}{alone}"


def _print_training(card: dict) -> None:
    print(how_made(card))
    command = card.get("training", {}).get("command")
    if command:
        print(f"command: {command}")


def _print_metrics(metrics: dict) -> None:
    splits = [s for s in ("validation", "test") if metrics.get(s)]
    if not splits:
        print("no measured figures in the card")
        return
    table = [["split", "faces", "accuracy", "macro-F1", *EMOTIONS]]
    for split in splits:
        m = metrics[split]
        recalls = [percent(m.get("per_class", {}).get(c, {}).get("recall")) for c in EMOTIONS]
        table.append([split, f"{m.get('n', 0):,}", percent(m["accuracy"]), f"{m['macro_f1']:.3f}", *recalls])
    print_table(table)
    print("(the emotion columns: recall per class)")


def _print_tta(tta: dict) -> None:
    if not tta:
        return
    parts = []
    for mode, entry in tta.items():
        figures = [f"{entry.get('views', '?')} view{'s' if entry.get('views') != 1 else ''}"]
        if entry.get("ms_per_face_batch64") is not None:
            figures.append(f"{entry['ms_per_face_batch64']:.2f} ms per face")
        for split in ("validation", "test"):
            if entry.get(split):
                figures.append(f"{split} {percent(entry[split]['accuracy'])} / {entry[split]['macro_f1']:.3f}")
        parts.append(f"  {mode}: " + ", ".join(figures))
    print("test-time augmentation (ms measured where the model was made; none: the figures above):")
    print("\n".join(parts))
