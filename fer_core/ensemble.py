"""Ensembles: several registered models whose logits are averaged, used like any one model.

An ensemble is a model folder holding only a card with `"kind": "ensemble"` and its members
(names of models in the same registry, each with a weight). Members keep their own files, so
an ensemble costs no disk space; its cost per face is the sum of its members'.

Members must crop faces alike (margin, alignment) but may take different crop sizes: the
ensemble crops at the smallest and resizes that crop for each larger member (equal to the
member's own crop only where the source image is no larger than the smallest size; FER-2013's
224 px files are not, and the larger member then sees a softer crop than it was trained on).
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from fer_core.classes import NUM_CLASSES
from fer_core.classifier import EmotionClassifier
from fer_core.metrics import softmax
from fer_core.preprocess import Preprocessing, resize_crops
from fer_core.registry import (
    ModelError,
    ModelInfo,
    get_model,
    install_model_folder,
    registration_folder,
    remove_model_files,
    write_card,
)
from fer_core.tta import check_tta_mode


class EnsembleClassifier:
    """Weighted average of member classifiers' logits (each member applies the TTA mode itself).

    Args:
        members: classifiers; crops of the smallest input size are resized for the others.
        weights: one non-negative weight per member (not all zero).
        temperature: softmax temperature of the averaged logits.
        tta: test-time augmentation for every member.
    """

    def __init__(
        self, members: list[EmotionClassifier], weights: list[float], temperature: float = 1.0, tta: str = "none"
    ):
        if not members or len(weights) != len(members) or sum(weights) <= 0 or min(weights) < 0:
            raise ValueError(f"Expected one weight >= 0 per member, not all 0. Received: weights={weights}")
        self.members = members
        self.weights = np.asarray(weights, np.float64) / float(sum(weights))
        self.temperature = float(temperature)
        self.tta = check_tta_mode(tta)
        self.input_size = min(m.input_size for m in members)

    @classmethod
    def from_registry(cls, info: ModelInfo, tta: str = "none") -> EnsembleClassifier:
        """Load an ensemble card's members, checking each member's files.

        Raises:
            ModelError: a member is missing or fails its checks, or they crop faces differently.
        """
        members = info.members()
        try:
            shared_preprocessing([m for m, _ in members])
        except ModelError as e:
            raise ModelError(f"ensemble {info.name!r}: {e}") from e
        classifiers = [EmotionClassifier(m.verify(), tta=tta) for m, _ in members]
        return cls(classifiers, [w for _, w in members], info.temperature_for(tta), tta)

    def logits(self, crops: np.ndarray) -> np.ndarray:
        """Weighted mean of the members' logits (N, 7)."""
        parts = [w * member_logits(m, crops) for m, w in zip(self.members, self.weights) if w > 0]
        if not parts:
            return np.empty((0, NUM_CLASSES), np.float32)
        return np.sum(parts, axis=0).astype(np.float32)

    def predict_proba(self, crops: np.ndarray) -> np.ndarray:
        """Calibrated probabilities (N, 7) in EMOTIONS order."""
        return softmax(self.logits(crops), self.temperature)

    def multiply_adds(self) -> int:
        """Multiply-adds for one view of one face: every member's that has a weight."""
        return sum(m.multiply_adds() for m, w in zip(self.members, self.weights) if w > 0)


def member_logits(member: EmotionClassifier, crops: np.ndarray) -> np.ndarray:
    """One member's logits for the ensemble's crops, resized to the member's input size."""
    return member.logits(resize_crops(crops, member.input_size))


def shared_preprocessing(members: list[ModelInfo]) -> Preprocessing:
    """The crops an ensemble of these members takes: their shared margin and alignment, the smallest size.

    Raises:
        ModelError: members crop faces with different margins or alignment.
    """
    specs = [m.preprocessing for m in members]
    if len({(s.margin, s.align) for s in specs}) != 1:
        found = ", ".join(f"{m.name}: margin {s.margin}, align {s.align}" for m, s in zip(members, specs))
        raise ModelError(
            f"ensemble members must crop faces alike (margin and alignment; sizes may differ). Received: {found}"
        )
    return min(specs, key=lambda s: s.size)


def fit_weights(member_logits: list[np.ndarray], labels: np.ndarray, steps: int = 300) -> list[float]:
    """Non-negative member weights (summing to 1) that minimise the log-loss of the averaged logits.

    Fitted on a validation split, never on a test set. Plain gradient descent on softmax-
    parametrised weights: few parameters, so no optimiser library is needed.
    """
    stack = np.stack([np.asarray(x, np.float64) for x in member_logits])  # (M, N, 7)
    onehot = np.eye(NUM_CLASSES)[labels]
    theta = np.zeros(len(member_logits))
    for _ in range(steps):
        w = np.exp(theta - theta.max())
        w /= w.sum()
        mixed = np.tensordot(w, stack, axes=1)
        probs = softmax(mixed)
        grad_mixed = (probs - onehot) / len(labels)  # d loss / d mixed logits
        grad_w = np.einsum("mnk,nk->m", stack, grad_mixed)
        theta -= 5.0 * w * (grad_w - np.dot(w, grad_w))  # chain rule through the softmax of theta
    w = np.exp(theta - theta.max())
    return [round(float(v), 4) for v in w / w.sum()]


def ensemble_card(name: str, members: list[ModelInfo], weights: list[float], command: str) -> dict:
    """The card of a new ensemble, before its measurements are added."""
    spec = shared_preprocessing(members)
    return {
        "name": name,
        "kind": "ensemble",
        "architecture": "ensemble of " + ", ".join(m.card.get("architecture", "?") for m in members),
        "parameters": sum(int(m.card.get("parameters", 0)) for m in members),
        "input_size": spec.size,
        "preprocessing": spec.to_dict(),
        "members": [{"name": m.name, "weight": w} for m, w in zip(members, weights)],
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "training": {"command": command, "data": members[0].card.get("training", {}).get("data")},
    }


def shared_validation(members: list[ModelInfo]) -> dict:
    """The training settings that fix the validation split, checked to be the same for every member.

    Members trained on one set with the same seed and validation share of it hold out the same
    faces, so their validation figures (and weights fitted there) are honest for the ensemble.

    Raises:
        ModelError: members were trained on different data or splits.
    """
    keys = ("data", "val_fraction", "seed", "max_images")
    configs = [m.card.get("training", {}).get("config", {}) for m in members]
    split = {k: configs[0].get(k) for k in keys}
    for member, config in zip(members, configs):
        other = {k: config.get(k) for k in keys}
        if other != split:
            raise ModelError(
                f"member {member.name!r} was trained with another validation split ({other} vs {split}); "
                "ensemble members must share one so that weights and figures are not fitted on training faces"
            )
    if not split["data"]:
        raise ModelError(f"member {members[0].name!r} has no training data in its card")
    return split


def create_ensemble(
    name: str,
    member_names: list[str],
    fit: bool = False,
    fit_tta: str = "none",
    test_data: str | Path | None = None,
    models_dir: Path | None = None,
    overwrite: bool = False,
    command: str = "",
) -> ModelInfo:
    """Register an ensemble of registered models, measured like a trained model.

    Weights are equal, or with `fit` fitted on the members' shared validation split, on their
    logits under `fit_tta` (the test-time augmentation the ensemble will mostly run with). The card
    gets calibration, each TTA mode's cost and validation (and `test_data`) metrics, and
    each member's own validation accuracy.

    Raises:
        ModelError: fewer than two members, a member missing or unusable, members that
            crop faces differently or hold out different validation splits, the name taken (see `overwrite`), or
            `fit_tta` set without `fit`.
    """
    from fer_core.datasets import load_labeled, train_val_split
    from fer_core.evaluation import card_measurements
    from fer_core.metrics import classification_metrics

    if check_tta_mode(fit_tta) != "none" and not fit:
        raise ModelError(f"fitting on {fit_tta} logits needs the weights to be fitted (--fit-weights)")
    if len(set(member_names)) < 2:
        raise ModelError(f"an ensemble needs at least two different members. Received: {member_names}")
    members = [get_model(n, models_dir) for n in member_names]
    for member in members:
        if member.is_ensemble:
            raise ModelError(f"member {member.name!r} is itself an ensemble; list its members instead")
        member.verify()
    spec = shared_preprocessing(members)
    folder = registration_folder(name, models_dir, overwrite)
    split = shared_validation(members)
    _, val = train_val_split(split["data"], split["val_fraction"], split["seed"], spec, split["max_images"])
    plain = [EmotionClassifier(m.verify()) for m in members]
    logits = [member_logits(c, val.images) for c in plain]
    if fit and fit_tta != "none":
        logits_to_fit = [member_logits(EmotionClassifier(m.verify(), tta=fit_tta), val.images) for m in members]
    else:
        logits_to_fit = logits
    weights = fit_weights(logits_to_fit, val.labels) if fit else [1.0] * len(members)
    card = ensemble_card(name, members, weights, command)
    card["training"]["weights"] = (
        f"fitted on the members' shared validation split ({fit_tta} TTA logits)" if fit else "equal"
    )
    card["members_validation"] = {
        m.name: round(classification_metrics(val.labels, softmax(x))["accuracy"], 4) for m, x in zip(members, logits)
    }
    test = load_labeled(test_data, spec=spec) if test_data else None
    if test_data:
        card["training"]["test_data"] = str(test_data)

    def build(tta: str, temperature: float) -> EnsembleClassifier:
        classifiers = plain if tta == "none" else [EmotionClassifier(m.verify(), tta=tta) for m in members]
        return EnsembleClassifier(classifiers, weights, temperature, tta)

    card.update(card_measurements(build, val, test))
    staging = folder.with_name(f".new-{name}")
    remove_model_files(staging)
    staging.mkdir(parents=True)
    write_card(staging, card)
    install_model_folder(staging, folder)
    return get_model(name, models_dir)
