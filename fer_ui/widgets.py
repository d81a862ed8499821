"""Small shared widgets: the model card, the responsible-use note, the face-detector and TTA pickers."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from fer_core.card_text import data_terms, describe, how_made, recommended_tta
from fer_core.classes import EMOTIONS
from fer_core.detect import DETECTOR_NOTES, available_detectors
from fer_core.registry import ModelInfo
from fer_core.tta import TTA_MODES

RESPONSIBLE_USE = (
    "Emotion labels describe **facial expressions**, not what a person feels. Expressions vary with "
    "culture, context and individual; the model was trained on posed and web-scraped faces (FER-2013) "
    "and makes mistakes, more so on rare expressions such as disgust. Do not use it to make decisions "
    "about people (hiring, policing, health, education) and ask for consent before analysing someone's face."
)


def responsible_use_note() -> None:
    """The responsible-use note, shown on the home page and in the sidebar."""
    st.info(RESPONSIBLE_USE, icon="⚖️")


def model_card(info: ModelInfo) -> None:
    """A readable summary of a model card, with the full JSON in an expander."""
    card = info.card
    metrics = card.get("metrics", {})
    test = metrics.get("test") or {}
    val = metrics.get("validation") or {}
    shown = test or val
    st.markdown(f"**{info.name}** · {describe(card)}")
    if shown:
        a, b, c = st.columns(3)
        label = "test" if test else "validation"
        a.metric(f"Accuracy ({label})", f"{shown['accuracy']:.1%}")
        b.metric(f"Macro-F1 ({label})", f"{shown['macro_f1']:.3f}")
        c.metric("Images evaluated", f"{shown['n']:,}")
        st.caption("Recall per class: " + ", ".join(f"{e} {shown['per_class'][e]['recall']:.0%}" for e in EMOTIONS))
    training = card.get("training", {})
    made = how_made(card)
    st.caption(f"{made[0].upper()}{made[1:]}. Created {card.get('created', '?')}. {data_terms(card)}")
    history = training.get("history") or []
    if history:
        from fer_core.charts import recall_curves, training_curves  # plotly: only where a curve is shown

        with st.expander(f"Learning curve ({len(history)} epochs, best {training.get('best_epoch', '?')})"):
            left, right = st.columns(2)
            left.plotly_chart(training_curves(history), key=f"card_curves_{info.name}")
            if all("per_class_recall" in e for e in history):
                right.plotly_chart(recall_curves(history), key=f"card_recall_{info.name}")
    with st.expander("Full model card (JSON)"):
        st.json(card, expanded=False)


def detector_picker(key: str, live: bool = False) -> str:
    """Sidebar choice of face detector (the default first), each with a one-line note."""
    note = (
        "In live video yunet looks at a 320 px copy of each frame (about 10 ms a frame on 2 cores); "
        "blazeface is faster still but misses faces that are not near the camera."
        if live
        else "yunet finds the most faces in photos; mtcnn is a slow second opinion."
    )
    names = available_detectors()
    # short entries (a sidebar cuts long ones); what each does goes in the help
    help_text = note + "\n\n" + "\n".join(f"- **{n}**: {DETECTOR_NOTES[n]}" for n in names)
    return st.sidebar.selectbox("Face detector", names, key=key, help=help_text)


def tta_label(mode: str, card: dict | None) -> str:
    """A TTA mode with what the model's card measured for it: accuracy on test (else validation), cost."""
    entry = ((card or {}).get("tta") or {}).get(mode) or {}
    figures = ((card or {}).get("metrics") if mode == "none" else entry) or {}
    split = "test" if figures.get("test") else "validation"
    parts = []
    if figures.get(split):
        parts.append(f"{figures[split]['accuracy']:.1%}" + ("" if split == "test" else " val."))
    if entry.get("ms_per_face_batch64"):
        parts.append(f"{entry['ms_per_face_batch64']:.1f} ms")
    mark = "★ " if mode == recommended_tta(card) else ""
    return f"{mark}{mode}: {', '.join(parts)}" if parts else f"{mark}{mode}"  # short: it fits the sidebar


def tta_picker(key: str, card: dict | None, where=st.sidebar) -> str:
    """Choice of test-time augmentation, each mode labelled with the model card's figures for it."""
    return where.selectbox(
        "Test-time augmentation",
        list(TTA_MODES),
        key=key,
        format_func=lambda mode: tta_label(mode, card),
        help="; ".join(f"{k}: {v}" for k, v in TTA_MODES.items())
        + ". Beside each mode, from the model card: accuracy on its test set (else validation) and "
        "milliseconds per face, measured where the model was made. ★ marks the mode the card recommends: "
        "a costlier mode only where its validation accuracy gains half a point per doubling of cost.",
    )


def shown_table(rows: list[dict] | pd.DataFrame):
    """A table for the page with empty cells left blank (Streamlit draws None as a grey "None")
    and figures to 4 decimals; the columns keep their types."""
    frame = rows if isinstance(rows, pd.DataFrame) else pd.DataFrame(rows)
    return frame.style.format(na_rep="", precision=4)
