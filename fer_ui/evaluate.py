"""Evaluate-page helpers: loading the chosen labelled set, cached evaluations, the calibration
panel and the confusion-matrix drill-down."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import streamlit as st

from fer_core.charts import reliability_diagram
from fer_core.classes import EMOTIONS
from fer_core.corrections import unreviewed_share
from fer_core.datasets import NO_FACE, DatasetError, LabeledFaces, load_class_folders, load_labeled
from fer_core.evaluation import (
    MIN_CALIBRATION_SET,
    calibration_record,
    calibration_report,
    cell_examples,
    classifier_logits,
    measure_cost_ms,
)
from fer_core.metrics import classification_metrics, softmax
from fer_core.paths import corrections_dir
from fer_core.preprocess import Preprocessing, viewable_crop
from fer_core.registry import ModelInfo, get_model, save_calibration, undo_calibration
from fer_core.uploads import unpack_uploads
from fer_ui.labelled_sets import FER2013, WILD_DEV, corrections_names, path_signature, pick_labelled_set
from fer_ui.resources import get_classifier
from fer_ui.session_files import new_session_subfolder
from fer_ui.settings import AppSettings, demo_notice, for_public
from fer_ui.widgets import shown_table

DEFAULT_SET = FER2013 / "test"


@st.cache_resource(max_entries=4, show_spinner="Reading the labelled set…")
def load_cached(path: str, signature: str, spec_json: str) -> LabeledFaces:
    """A labelled set read once per path, content signature and preprocessing (as JSON)."""
    return load_labeled(path, spec=Preprocessing.from_dict(json.loads(spec_json)))


ZIP_STATE = "eval_zip_set"
DATA_SOURCE_KEY = "eval_data_source"
"""Session key: a description of the labelled set chosen last (path, corrections set or zip name)."""


def _load_zip(upload, info: ModelInfo, settings: AppSettings) -> LabeledFaces:
    """The labelled set of an uploaded zip, unpacked and read once per zip and model preprocessing.

    Reruns reuse it; a new zip replaces the previous one's files.
    """
    data = upload.getvalue()
    key = (hashlib.sha256(data).hexdigest(), json.dumps(info.preprocessing.to_dict(), sort_keys=True))
    cached = st.session_state.get(ZIP_STATE)
    if cached and cached["key"] == key:
        rejected, faces = cached["rejected"], cached["faces"]
    else:
        if cached:
            shutil.rmtree(cached["folder"], ignore_errors=True)
            st.session_state.pop(ZIP_STATE)
        folder = new_session_subfolder("eval-")
        limits = settings.limits
        _, rejected = unpack_uploads([(upload.name, data)], folder, limits)
        try:
            # The class folders may sit inside one top folder (load_class_folders finds them).
            faces = load_class_folders(folder, spec=info.preprocessing, max_pixels=settings.limits.max_pixels)
        except DatasetError as e:
            shutil.rmtree(folder, ignore_errors=True)
            if rejected:  # why nothing usable came out of the zip, and nothing else
                raise DatasetError("; ".join(f"{r['file']}: {r['detail']}" for r in rejected[:3])) from None
            # never a server path: the zip's own name stands for the folder it was unpacked into
            raise DatasetError(str(e).replace(str(folder), upload.name)) from None
        st.session_state[ZIP_STATE] = {"key": key, "folder": folder, "rejected": rejected, "faces": faces}
    for row in rejected[:10]:
        st.warning(f"{row['file']}: {row['detail']}")
    return faces


def pick_dataset(settings: AppSettings, info: ModelInfo) -> LabeledFaces | None:
    """Widgets to choose a labelled set; shows problems on the page and returns None then."""
    source = pick_labelled_set(
        "eval", DEFAULT_SET, not settings.demo, settings.limits.max_upload_mb, built_in=DEFAULT_SET
    )
    if source is None:
        return None
    try:
        if source.kind == "path":
            spec = info.preprocessing
            data = load_cached(
                str(source.path), path_signature(source.path), json.dumps(spec.to_dict(), sort_keys=True)
            )
        elif source.kind == "corrections":
            data = load_class_folders(source.path, spec=info.preprocessing)
            unreviewed, total = unreviewed_share(source.path)
            if unreviewed:
                st.warning(
                    f"{unreviewed} of {total} labels in this set came from a model and were never reviewed: "
                    "on those faces the figures below measure agreement with that model, not accuracy."
                )
        else:
            data = _load_zip(source.upload, info, settings)
        st.session_state[DATA_SOURCE_KEY] = source.label
    except DatasetError as e:
        st.error(for_public(e))
        return None
    if data.unknown_classes:
        st.warning(
            "Skipped folders that are not emotions: "
            + ", ".join(data.unknown_classes)
            + ". Rename them to an emotion (or an alias such as anger, happiness, sadness, surprised)."
        )
    if data.photo_note():
        st.info(data.photo_note())
    unreadable = [e for e in data.errors if e[1] != NO_FACE]
    if unreadable:
        st.warning(
            f"{len(unreadable)} files could not be read and were skipped (first: {unreadable[0][0]}: "
            f"{unreadable[0][1]})."
        )
    if len(data) == 0:
        st.error("The labelled set holds no readable images.")
        return None
    return data


@st.cache_data(max_entries=16, show_spinner=False)
def cached_logits(model_name: str, weights_hash: str, tta: str, fingerprint: str, _data: LabeledFaces) -> np.ndarray:
    """Logits of a model on a set, cached per (weights hash, set fingerprint, TTA)."""
    classifier = get_classifier(model_name, weights_hash, tta)
    bar = st.progress(0.0, text="Evaluating…")
    logits = classifier_logits(classifier, _data, progress=lambda d, t: bar.progress(d / t, text=f"{d}/{t} images"))
    bar.empty()
    return logits


def evaluate(info: ModelInfo, data: LabeledFaces, tta: str) -> tuple[dict, np.ndarray, np.ndarray]:
    """(metrics, probabilities, logits) of a registered model on a set, through the inference path."""
    logits = cached_logits(info.name, info.weights_hash, tta, data.fingerprint(), data)
    probs = softmax(logits, info.temperature_for(tta))
    return classification_metrics(data.labels, probs), probs, logits


@st.cache_data(max_entries=16, show_spinner=False)
def cost_per_face_ms(model_name: str, weights_hash: str, tta: str, _crops: np.ndarray) -> float:
    """Classifier cost per face on a batch, measured once per (model weights, TTA) rather than every rerun."""
    return measure_cost_ms(get_classifier(model_name, weights_hash, tta), _crops)


def calibration_panel(info: ModelInfo, data: LabeledFaces, logits: np.ndarray, tta: str, settings: AppSettings) -> None:
    """Fit a temperature on half of the set, judge it on the other half, and save it only if it helps."""
    if len(data) < MIN_CALIBRATION_SET:
        st.caption(f"Calibration needs at least {MIN_CALIBRATION_SET} labelled faces; this set has {len(data)}.")
        if settings.demo and settings.limits.max_files < MIN_CALIBRATION_SET:
            st.caption(
                f"This demo takes zips of at most {settings.limits.max_files} files, too few to calibrate: "
                "measure it on the built-in FER-2013 test set, or run the app on your own machine."
            )
        return
    report = calibration_report(data, logits, info.temperature_for(tta))
    now, fitted = st.columns(2)
    now.plotly_chart(
        reliability_diagram(
            report["bins_current"],
            f"Now (T={report['current_temperature']:.2f}): ECE {report['ece_current']:.3f} on the judging half",
        ),
        key="rel_now",
    )
    fitted.plotly_chart(
        reliability_diagram(
            report["bins_after"],
            f"Fitted T={report['temperature']:.2f}: ECE {report['ece_after']:.3f} on the judging half",
        ),
        key="rel_fit",
    )
    st.caption(
        f"Both measured on the same {report['n_eval']} held-out faces; the temperature was fitted on the other "
        f"{report['n_fit']}. TTA mode: {tta} (a temperature is saved for this mode only)."
    )
    if not report["improves"]:
        st.info("The fitted temperature does not lower the error on the held-out half: nothing to save.")
    elif settings.demo:
        demo_notice("Saving calibration into a model card")
    elif st.button("Save this temperature into the model card", key="save_temp"):
        save_calibration(info.name, calibration_record(report, data, "Evaluate page"), tta)
        st.success(
            f"Saved for TTA {tta}: held-out ECE {report['ece_current']:.3f} -> {report['ece_after']:.3f}. "
            "Every page now uses it; 'Undo' puts the previous one back."
        )
    if get_model(info.name).card.get("calibration_history") and not settings.demo:
        if st.button("Undo the last saved calibration", key="undo_temp"):
            mode = undo_calibration(info.name)
            st.success(f"Restored the previous calibration (TTA {mode}).")


def data_description(data: LabeledFaces) -> dict:
    """What a metrics export says about the set it was measured on."""
    return {
        "source": st.session_state.get(DATA_SOURCE_KEY, ""),
        "n": len(data),
        "fingerprint": data.fingerprint(),
        "per_class": data.class_counts(),
        "photos_cropped": data.photos_cropped,
        "photos_without_face": data.photos_without_face,
    }


CELL_KEYS = ("cell_true", "cell_pred")
PER_PAGE = 32


def cell_from_selection(points: list[dict]) -> tuple[str, str] | None:
    """(true class, predicted class) of a clicked confusion-matrix cell, or None."""
    for point in points:
        true, predicted = point.get("y"), point.get("x")
        if true in EMOTIONS and predicted in EMOTIONS:
            return true, predicted
    return None


def follow_clicked_cell(event) -> None:
    """Point the drill-down at a newly clicked cell (a click is applied once, so the menus stay usable)."""
    points = list(getattr(getattr(event, "selection", None), "points", None) or [])
    cell = cell_from_selection(points)
    if cell and st.session_state.get("cell_clicked") != cell:
        st.session_state["cell_clicked"] = cell
        st.session_state[CELL_KEYS[0]], st.session_state[CELL_KEYS[1]] = cell
        st.session_state["cell_page"] = 1


def drill_down(data: LabeledFaces, probs: np.ndarray) -> None:
    """Every image of one confusion-matrix cell, worst first, a page of PER_PAGE at a time."""
    t, p, g = st.columns([2, 2, 1])
    # defaults through the state, not `index=`: a clicked cell sets the state too, and a widget given
    # both logs a warning on every click
    st.session_state.setdefault(CELL_KEYS[0], EMOTIONS[0])
    st.session_state.setdefault(CELL_KEYS[1], EMOTIONS[1])
    true_class = t.selectbox("True class", EMOTIONS, key=CELL_KEYS[0])
    pred_class = p.selectbox("Predicted class", EMOTIONS, key=CELL_KEYS[1])
    examples = cell_examples(data, probs, EMOTIONS.index(true_class), EMOTIONS.index(pred_class))
    pages = max(1, -(-len(examples) // PER_PAGE))
    if st.session_state.get("cell_page", 1) > pages:
        st.session_state["cell_page"] = 1
    page = int(g.number_input("Page", 1, pages, key="cell_page"))
    first = (page - 1) * PER_PAGE
    shown = examples[first : first + PER_PAGE]
    if not examples:
        st.caption(f"No image is {true_class} and predicted {pred_class}.")
        return
    st.caption(
        f"{len(examples)} images are {true_class} and predicted {pred_class}; page {page} of {pages} shows "
        f"{first + 1}-{first + len(shown)}, worst first (lowest probability for the true class)."
    )
    cols = st.columns(8)
    for i, ex in enumerate(shown):
        with cols[i % 8]:
            st.image(
                viewable_crop(data.images[ex["index"]], data.spec or Preprocessing(size=data.images.shape[1])),
                caption=f"{ex['p_true']:.0%} {true_class}",
            )
            st.caption(ex["source"])


MORE_SETS_KEY = "eval_more_results"


def known_sets() -> dict[str, Path]:
    """Labelled sets on this machine worth measuring beside the chosen one, by name."""
    sets = {"FER-2013 test": DEFAULT_SET, "wild_dev (faces of real people)": WILD_DEV}
    sets.update({f"corrections: {n}": corrections_dir() / n for n in corrections_names()})
    return {name: path for name, path in sets.items() if path.exists()}


def sets_side_by_side(info: ModelInfo, data: LabeledFaces, tta: str, here: str) -> None:
    """The model on several labelled sets at once (say FER-2013 and faces of real people), one row each."""
    sets = known_sets()
    chosen = st.multiselect("Sets", list(sets), default=list(sets)[:2], key="eval_more_sets")
    extra = st.text_input("More folders (class folders; separate with ';')", key="eval_more_paths")
    paths = {name: sets[name] for name in chosen}
    paths.update({p.strip(): Path(p.strip()).expanduser() for p in extra.split(";") if p.strip()})
    key = (info.name, info.weights_hash, tta, here, tuple((n, str(p)) for n, p in paths.items()))
    if st.button("Measure on these sets too", key="eval_more_go", disabled=not paths):
        rows = [_set_row(here, data, evaluate(info, data, tta)[0])]
        spec_json = json.dumps(info.preprocessing.to_dict(), sort_keys=True)
        for name, path in paths.items():
            try:
                faces = load_cached(str(path), path_signature(path), spec_json)
            except (DatasetError, OSError) as e:
                st.warning(f"{name}: {for_public(e)}")
                continue
            rows.append(_set_row(name, faces, evaluate(info, faces, tta)[0]))
        st.session_state[MORE_SETS_KEY] = (key, rows)
    stored = st.session_state.get(MORE_SETS_KEY)
    if stored and stored[0] == key:
        st.dataframe(shown_table(stored[1]), hide_index=True, key="eval_more_table")
        st.caption(
            "Without disgust: the same figures leaving out the faces labelled disgust (often mislabelled in sets "
            "of real faces), a disgust prediction still counting as an error."
        )


def _set_row(name: str, faces: LabeledFaces, metrics: dict) -> dict:
    return {
        "set": name,
        "faces": len(faces),
        "accuracy": round(metrics["accuracy"], 4),
        "without disgust": round(metrics["without_disgust"]["accuracy"], 4) if metrics.get("without_disgust") else None,
        "macro-F1": round(metrics["macro_f1"], 4),
    }
