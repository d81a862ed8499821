"""Cached, shared classifiers and detectors, and each session's model choice."""

from __future__ import annotations

import streamlit as st

from fer_core.detect import DEFAULT_DETECTOR, make_detector, yunet_model_path
from fer_core.models import Classifier, load_classifier
from fer_core.recognizer import EmotionRecognizer
from fer_core.registry import ModelError, ModelInfo, active_model_name, get_model, list_models
from fer_ui.settings import for_public

MODEL_KEY = "selected_model"
"""The sidebar's model menu (a widget: Streamlit drops its state whenever a page without it runs)."""
CHOICE_KEY = "chosen_model"
"""This browser session's model choice, kept in a key of our own so it holds across pages."""


@st.cache_resource(max_entries=8, show_spinner="Loading model…")
def _classifier(name: str, weights_hash: str, tta: str, temperature: float) -> Classifier:
    # Hash and temperature are part of the key: a re-registered or re-calibrated model loads afresh.
    return load_classifier(get_model(name), tta=tta)


def get_classifier(name: str, weights_hash: str, tta: str = "none") -> Classifier:
    """The shared classifier of a registered model (thread-safe; cached)."""
    info = get_model(name)
    return _classifier(name, weights_hash, tta, info.temperature_for(tta))


@st.cache_resource(show_spinner="Loading the face detector…")
def _shared_detector(name: str, live: bool, model_file: str):
    # model_file is part of the key only, so a changed FER_YUNET_MODEL builds a new detector.
    # Shared by every session: detectors are never changed after construction (per-call
    # options such as min_face are arguments) and guard their networks with a lock.
    return make_detector(name, live=live)


def selected_model() -> str | None:
    """The name of the model this browser session uses (its choice, else the active one), unchecked."""
    return st.session_state.get(CHOICE_KEY) or active_model_name()


def current_model() -> ModelInfo:
    """The model this browser session uses: its own choice, else the registry's active model.

    Raises:
        ModelError: no model installed, or the chosen one is broken.
    """
    return get_model(selected_model())


def current_card() -> dict | None:
    """The card of the model this browser session uses, or None when there is no usable one (pages say why)."""
    try:
        return current_model().card
    except ModelError:
        return None


def get_recognizer(
    detector: str = DEFAULT_DETECTOR, model: ModelInfo | None = None, tta: str = "none", live: bool = False
) -> EmotionRecognizer:
    """A recognizer for this browser session (classifier and detector shared by all sessions and cached).

    `live` picks the detector's settings for video (see fer_core.detect.LIVE_OPTIONS).
    """
    info = model or current_model()
    classifier = _classifier(info.name, info.weights_hash, tta, info.temperature_for(tta))
    face_detector = _shared_detector(detector, live, str(yunet_model_path()[0]) if detector == "yunet" else "")
    return EmotionRecognizer(classifier, face_detector, info.preprocessing, model_name=info.name)


def require_recognizer(
    detector: str = DEFAULT_DETECTOR, tta: str = "none", live: bool = False
) -> EmotionRecognizer | None:
    """Like get_recognizer, but shows the problem on the page and returns None on failure."""
    try:
        return get_recognizer(detector, tta=tta, live=live)
    except ModelError as e:
        st.error(f"No usable model: {for_public(e)}")
        st.caption("Train one on the Train page or with `python -m fer_core train`, or pick another model.")
    except Exception as e:  # a detector or runtime failure must not take the page down
        st.error(f"Could not start the recognizer: {type(e).__name__}: {for_public(e)}")
    return None


def model_picker(where=st.sidebar) -> None:
    """Sidebar select box of registered models; the choice holds for this browser session.

    When the active model is unusable the page says so and nothing is chosen for the user:
    another model is used only when the user picks it.
    """
    every = list_models()
    rows = [r for r in every if r["ok"]]
    for row in (r for r in every if not r["ok"]):
        where.warning(f"Model {row['name']} is unusable: {for_public(row['error'])}")
    if not rows:
        where.warning("No trained model is installed.")
        return
    names = [r["name"] for r in rows]
    active = active_model_name()
    if active not in names:
        where.error(
            f"The active model {active!r} (models/active.txt) is not usable. Pick a model below, or set "
            "another with `python -m fer_core models --activate NAME`."
        )
    current = st.session_state.get(CHOICE_KEY) or active

    def remember() -> None:
        st.session_state[CHOICE_KEY] = st.session_state[MODEL_KEY]

    where.selectbox(
        "Model",
        names,
        index=names.index(current) if current in names else None,
        placeholder="Choose a model",
        key=MODEL_KEY,
        on_change=remember,
        format_func=lambda n: n + (" (active)" if n == active else ""),
    )
