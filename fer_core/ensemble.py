"""Registering ensembles: choosing member weights and measuring the result for its card.

An ensemble is a model folder holding only a card with `"kind": "ensemble"` and its members
(names of models in the same registry, each with a weight and the temperature its logits are
divided by). Members keep their own files, so an ensemble costs no disk space; its cost per face is
the sum of its members'. How an ensemble classifies: `fer_core.models.ensemble`.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from fer_core.datasets import LabeledFaces, concat_labelled, load_labeled, validation_split
from fer_core.evaluation import card_measurements, scoring_threads
from fer_core.metrics import classification_metrics, fit_temperature, softmax
from fer_core.models import EnsembleClassifier, load_classifier
from fer_core.models.ensemble import fit_weights, mix_logits
from fer_core.preprocess import combine_specs
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


def ensemble_card(
    name: str, members: list[ModelInfo], weights: list[float], temperatures: list[float], command: str
) -> dict:
    """The card of a new ensemble, before its measurements are added."""
    spec = combine_specs([m.preprocessing for m in members])
    counts = [m.card.get("parameters") for m in members]  # a model made elsewhere may not say
    return {
        "name": name,
        "kind": "ensemble",
        "architecture": "ensemble of " + ", ".join(f"{m.name} x{w:.2f}" for m, w in zip(members, weights)),
        "parameters": sum(counts) if all(isinstance(c, int) for c in counts) else None,
        "input_size": spec.size,
        "preprocessing": spec.to_dict(),
        "members": [
            {"name": m.name, "weight": w, "temperature": round(t, 4)} for m, w, t in zip(members, weights, temperatures)
        ],
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "training": {"command": command, "data": members[0].card.get("training", {}).get("data")},
    }


def shared_validation(members: list[ModelInfo]) -> dict:
    """The training settings that fix the validation split, checked to be the same for every member
    trained here (a model made elsewhere, such as an ONNX file, has none, and is scored on it too).

    Members trained on one set with the same seed and validation share of it hold out the same
    faces, so their validation figures (and weights fitted there) are honest for the ensemble.
    An ensemble among `members` counts as its own members (it was trained on nothing itself).

    Raises:
        ModelError: members were trained on different data or splits.
    """
    keys = ("data", "val_fraction", "seed", "max_images")
    members = [leaf for m in members for leaf in ([x for x, _ in m.members()] if m.is_ensemble else [m])]
    trained = [m for m in members if m.card.get("training", {}).get("config")]  # models made elsewhere have none
    if not trained:
        raise ModelError(f"no member was trained here, so none has a validation split: {[m.name for m in members]}")
    members = trained
    configs = [m.card["training"]["config"] for m in members]
    split = {k: configs[0].get(k) for k in keys}
    for member, config in zip(members, configs):
        other = {k: config.get(k) for k in keys}
        if other != split:
            raise ModelError(
                f"member {member.name!r} was trained with another validation split ({other} vs {split}); "
                "ensemble members must share one so that weights and figures are not fitted on training faces, "
                "or the weights are fitted on labelled sets of your own (--fit-data)"
            )
    if not split["data"]:
        raise ModelError(f"member {members[0].name!r} has no training data in its card")
    return split


def check_members(name: str, member_names: list[str], models_dir: Path | None = None) -> list[ModelInfo]:
    """The members of a new ensemble `name`, checked before anything is written.

    Raises:
        ModelError: fewer than two different members, the ensemble among its own members, a member
            that is an ensemble itself, missing or failing its checks.
    """
    if len(set(member_names)) < 2:
        raise ModelError(f"an ensemble needs at least two different members. Received: {member_names}")
    if name in member_names:
        raise ModelError(f"ensemble {name!r} cannot be one of its own members. Received: members={member_names}")
    members = [get_model(n, models_dir) for n in member_names]
    for member in members:
        if member.is_ensemble:
            raise ModelError(f"member {member.name!r} is itself an ensemble; list its members instead")
        member.verify()
    return members


def create_ensemble(
    name: str,
    member_names: list[str],
    fit: bool = False,
    fit_tta: str = "none",
    test_data: str | Path | None = None,
    models_dir: Path | None = None,
    overwrite: bool = False,
    command: str = "",
    fit_data: list[str | Path] | None = None,
) -> ModelInfo:
    """Register an ensemble of registered models of any kind, measured like a trained model.

    Each member's logits are divided by its own calibrated temperature before averaging. Weights are
    equal, or with `fit` fitted on `fit_data` (labelled sets, or "validation" for the members'
    shared validation split, each counting alike; the card then
    also gets 5-fold cross-validated figures per set, since those sets both fit and score) or else
    on the members' shared validation split, on their logits under `fit_tta`. The card gets
    calibration, each TTA mode's cost, metrics on the fitting faces (and `test_data`), and each
    member's own accuracy there.

    Raises:
        ModelError: see `check_members`; members that hold out different validation splits (without
            `fit_data`), the name taken (see `overwrite`), or `fit_tta` set without `fit`.
    """
    if check_tta_mode(fit_tta) != "none" and not fit:
        raise ModelError(f"fitting on {fit_tta} logits needs the weights to be fitted (--fit-weights)")
    members = check_members(name, member_names, models_dir)
    spec = combine_specs([m.preprocessing for m in members])
    folder = registration_folder(name, models_dir, overwrite)
    if fit_data:
        sets = [_fit_set(d, members, spec) for d in fit_data]
        val, where = concat_labelled(sets), "labelled sets " + ", ".join(str(d) for d in fit_data)
        set_of_face = np.concatenate([np.full(len(d), i) for i, d in enumerate(sets)])
    else:
        split = shared_validation(members)
        val = validation_split(split["data"], split["val_fraction"], split["seed"], spec, split["max_images"])
        where, set_of_face = "the members' shared validation split", np.zeros(len(val), int)
    sample_weight = len(val) / np.bincount(set_of_face)[set_of_face]  # every set counts alike
    temps = [m.temperature for m in members]
    threads = scoring_threads()
    plain = EnsembleClassifier(
        [load_classifier(m, num_threads=threads) for m in members], [1.0] * len(members), member_temperatures=temps
    )
    logits = plain.member_logits(val.images)
    if fit and fit_tta != "none":
        views = EnsembleClassifier(
            [load_classifier(m, fit_tta, threads) for m in members], [1.0] * len(members), tta=fit_tta
        )
        logits_to_fit = views.member_logits(val.images)
    else:
        logits_to_fit = logits
    tempered = [x / t for x, t in zip(logits_to_fit, temps)]
    weights = fit_weights(tempered, val.labels, sample_weight=sample_weight) if fit else [1.0] * len(members)
    card = ensemble_card(name, members, weights, temps, command)
    card["training"]["weights"] = f"fitted on {where} ({fit_tta} TTA logits)" if fit else "equal"
    card["members_validation"] = {
        m.name: round(classification_metrics(val.labels, softmax(x))["accuracy"], 4) for m, x in zip(members, logits)
    }
    if fit and fit_data:
        card["cross_validation"] = cross_validated(tempered, val, set_of_face, [str(d) for d in fit_data])
    test = load_labeled(test_data, spec=spec) if test_data else None
    if test_data:
        card["training"]["test_data"] = str(test_data)

    def build(tta: str, temperature: float, threads: int) -> EnsembleClassifier:
        reuse = tta == "none" and threads == scoring_threads()
        classifiers = plain.members if reuse else [load_classifier(m, tta, threads) for m in members]
        return EnsembleClassifier(classifiers, weights, temperature, tta, temps)

    card.update(card_measurements(build, val, test))
    staging = folder.with_name(f".new-{name}")
    remove_model_files(staging)
    staging.mkdir(parents=True)
    write_card(staging, card)
    install_model_folder(staging, folder)
    return get_model(name, models_dir)


VALIDATION = "validation"
"""A `fit_data` entry meaning the members' shared validation split (of those trained here)."""


def _fit_set(source: str | Path, members: list[ModelInfo], spec) -> LabeledFaces:
    """A labelled set to fit weights on: a folder or CSV, or VALIDATION (the members' shared split)."""
    if str(source) != VALIDATION:
        return load_labeled(source, spec=spec)
    split = shared_validation(members)
    return validation_split(split["data"], split["val_fraction"], split["seed"], spec, split["max_images"])


def cross_validated(
    tempered: list[np.ndarray], data: LabeledFaces, set_of_face: np.ndarray, set_names: list[str], folds: int = 5
) -> dict:
    """Accuracy and macro-F1 per set when weights are fitted on 4/5 of the faces and scored on the rest.

    Folds are drawn per set (seeded), so each set is split alike; the figures are an honest estimate
    of the fitted ensemble on faces like these that it did not fit on.
    """
    rng = np.random.default_rng(0)
    fold = np.empty(len(data), int)
    for s in np.unique(set_of_face):
        index = np.flatnonzero(set_of_face == s)
        fold[index] = rng.permutation(len(index)) % folds
    probs = np.zeros((len(data), tempered[0].shape[1]))
    weight = len(data) / np.bincount(set_of_face)[set_of_face]
    for k in range(folds):
        fit_on, score_on = fold != k, fold == k
        w = fit_weights([x[fit_on] for x in tempered], data.labels[fit_on], sample_weight=weight[fit_on])
        mixed = mix_logits(tempered, w, [1.0] * len(w))
        t = fit_temperature(data.labels[fit_on], mixed[fit_on])
        probs[score_on] = softmax(mixed[score_on], t)
    out = {"folds": folds}
    for s, name in enumerate(set_names):
        m = classification_metrics(data.labels[set_of_face == s], probs[set_of_face == s])
        out[name] = {"accuracy": round(m["accuracy"], 4), "macro_f1": round(m["macro_f1"], 4), "n": m["n"]}
    return out
