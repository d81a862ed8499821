"""Batch: label uploaded photos (files, a folder or a zip), review, correct and export."""

from datetime import datetime

import streamlit as st

import fer_ui
from fer_core.charts import count_bars
from fer_core.classes import EMOTIONS
from fer_core.corrections import save_corrections_dataset
from fer_core.exports import annotated_zip, rows_to_csv, rows_to_json, sorted_zip
from fer_core.names import UnsafeNameError, new_child_folder
from fer_core.paths import corrections_dir
from fer_core.rows import FACE_STATUSES
from fer_ui.batch import (
    EDITOR_KEY,
    current_batch,
    fold_review,
    gallery,
    local_folder_form,
    results_frame,
    review_applied,
    run_batch,
    run_folder,
    status_summary,
)
from fer_ui.resources import current_card, model_picker, require_recognizer, selected_model
from fer_ui.settings import demo_notice, for_public, get_settings
from fer_ui.widgets import detector_picker, tta_picker

fer_ui.use_router()

settings = get_settings()
st.title("Batch")
model_picker()
detector = detector_picker("batch_detector")
tta = tta_picker("batch_tta", current_card())
LOCAL = "A folder on this machine"
choices = ["Photos", "A folder", "A zip of folders"] + ([] if settings.demo else [LOCAL])
how = st.radio("Upload", choices, horizontal=True, key="batch_how")
limits = settings.limits
if how == LOCAL:
    local = local_folder_form(selected_model(), detector, tta)
    start = st.button("Label folder", type="primary", disabled=local is None, key="batch_start_folder")
else:
    mode = {"Photos": True, "A folder": "directory", "A zip of folders": False}[how]
    uploaded = st.file_uploader(
        "Photos",
        accept_multiple_files=mode,
        key=f"batch_upload_{how}",
        type=["zip"] if how == "A zip of folders" else None,
        max_upload_size=settings.limits.max_upload_mb,
    )
    uploaded = [uploaded] if uploaded and not isinstance(uploaded, list) else (uploaded or [])
    per_file = f", {limits.max_upload_mb} MB per file" if limits.max_upload_mb else ""
    st.caption(
        f"Up to {limits.max_files:,} photos and {limits.max_total_bytes / 2**20:,.0f} MB per batch (zips unpacked)"
        f"{per_file}; photos up to {limits.max_pixels / 1e6:.0f} megapixels."
    )
    start = st.button("Label photos", type="primary", disabled=not uploaded, key="batch_start")

if start:
    recognizer = require_recognizer(detector, tta=tta)
    if recognizer is not None:
        cancel = st.empty()
        cancel.button("Cancel", key="batch_cancel", help="Stops after the current photos; finished results stay")
        if how == LOCAL:
            try:
                state = run_folder(local.folder, local.out, recognizer, local.workers)
            except ValueError as e:  # the output is locked by another run, or has other columns
                st.error(for_public(e))
                st.stop()
        else:
            state = run_batch(uploaded, recognizer, limits)
        cancel.empty()
        st.toast(f"Labelled {state['done']} photos in {state['seconds']:.1f} s")

state = current_batch()
if not state or not state["rows"]:
    st.stop()
if not state["finished"]:
    st.warning(f"Cancelled after {state['done']} of {state['total']} photos; results so far are below.")
if state.get("out"):
    shown = len(state["rows"])
    st.info(
        f"All {state['rows_in_output']} rows are in `{state['out']}`"
        + (f"; the first {shown} are shown for review." if shown < state["rows_in_output"] else ".")
        + " Running the same folder again resumes it."
    )
df = results_frame(state)
if (df["status"] == "unreadable").all():  # nothing to review: one message saying why
    reasons = df.groupby("detail")["file"].count().sort_values(ascending=False)
    st.error(
        f"None of the {df['file'].nunique()} files could be read as a photo: "
        + "; ".join(f"{for_public(why)} ({n})" for why, n in reasons.head(3).items())
    )
    st.stop()
status_summary(df, detector)

st.subheader("Results: review the labels")
st.caption(
    "`emotion` and `confidence` are the model's answer. Change `label` where it is wrong, tick `reviewed` "
    "for the faces you checked; charts, gallery and exports follow the labels."
)
table = st.data_editor(
    df,
    key=EDITOR_KEY,
    hide_index=True,
    disabled=[c for c in df.columns if c not in ("label", "reviewed")],
    column_config={
        "label": st.column_config.SelectboxColumn("label", options=list(EMOTIONS)),
        "reviewed": st.column_config.CheckboxColumn("reviewed"),
    },
)
if fold_review(state, df):  # new edits: redraw the table from the review state (corrections ticked)
    st.rerun()
edited = review_applied(table)
st.caption(f"{int(edited['corrected'].sum())} corrected, {int(edited['reviewed'].sum())} reviewed faces.")
left, right = st.columns(2)
faces = edited[edited["status"].isin(FACE_STATUSES)]
if faces.empty:
    left.info("No faces found in these photos.")
else:
    left.plotly_chart(count_bars(faces["label"].value_counts().to_dict(), "Faces per label"), key="batch_emotions")
right.plotly_chart(count_bars(edited["status"].value_counts().to_dict(), "Rows per status"), key="batch_statuses")
rows = edited.to_dict("records")
files = state["files"]

st.subheader("Downloads")
d1, d2, d3, d4 = st.columns(4)
d1.download_button("CSV", rows_to_csv(rows), "results.csv", "text/csv", key="dl_csv")
d2.download_button("JSON", rows_to_json(rows), "results.json", "application/json", key="dl_json")
if d3.button("Annotate (zip)", key="prep_annotated", help="Prepare a zip of the photos with their faces drawn"):
    st.session_state["annotated_zip"] = annotated_zip(rows, files)
if "annotated_zip" in st.session_state:
    d3.download_button("Annotated images", st.session_state["annotated_zip"], "annotated.zip", "application/zip")
if d4.button("Sort (zip)", key="prep_sorted", help="Prepare a zip of the photos in a folder per emotion"):
    st.session_state["sorted_zip"] = sorted_zip(rows, files)
if "sorted_zip" in st.session_state:
    d4.download_button("Sorted photos", st.session_state["sorted_zip"], "sorted.zip", "application/zip")

st.subheader("Save reviewed faces as a training set")
if settings.demo:
    demo_notice("Saving datasets on the server")
else:
    name = st.text_input("Dataset name", f"corrections-{datetime.now():%Y%m%d-%H%M%S}", key="ds_name")
    which = st.radio(
        "Faces to save",
        ["Reviewed faces only", "All faces (unreviewed ones keep the model's label)"],
        key="ds_which",
        horizontal=True,
    )
    if not which.startswith("Reviewed"):
        st.warning(
            "Unreviewed faces carry the model's own answers: a model trained or evaluated on them learns or "
            "scores agreement with this model, not the truth. They are marked in the manifest."
        )
    if st.button("Save as a dataset", key="save_ds"):
        try:
            out = new_child_folder(corrections_dir(), name, "dataset name")
        except UnsafeNameError as e:
            st.error(for_public(e))
        else:
            counts = save_corrections_dataset(rows, files, out, state["spec"], which.startswith("Reviewed"))
            st.success(f"Saved {sum(counts.values())} face crops to {out} — pick it on the Train page to fine-tune.")

st.subheader("Gallery")
gallery(edited, files)
