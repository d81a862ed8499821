"""Batch: label uploaded photos (files, a folder or a zip), review, correct and export."""

from datetime import datetime

import streamlit as st

import fer_ui
from fer_core.batch import UploadLimits, annotated_zip, rows_to_csv, rows_to_json, save_corrections_dataset, sorted_zip
from fer_core.charts import count_bars
from fer_core.classes import EMOTIONS
from fer_core.names import UnsafeNameError, new_child_folder
from fer_core.paths import corrections_dir
from fer_ui.batch import STATE, gallery, results_frame, run_batch
from fer_ui.resources import model_picker, require_recognizer
from fer_ui.settings import demo_notice, get_settings
from fer_ui.widgets import detector_picker

fer_ui.use_router()

settings = get_settings()
st.title("Batch")
model_picker()
detector = detector_picker("batch_detector")
how = st.radio("Upload", ["Photos", "A folder", "A zip of folders"], horizontal=True, key="batch_how")
mode = {"Photos": True, "A folder": "directory", "A zip of folders": False}[how]
uploaded = st.file_uploader(
    "Photos",
    accept_multiple_files=mode,
    key=f"batch_upload_{how}",
    type=["zip"] if how == "A zip of folders" else None,
    max_upload_size=settings.max_upload_mb,
)
uploaded = [uploaded] if uploaded and not isinstance(uploaded, list) else (uploaded or [])
limits = UploadLimits(settings.max_upload_files, settings.max_zip_bytes, settings.max_pixels)

if st.button("Label photos", type="primary", disabled=not uploaded, key="batch_start"):
    recognizer = require_recognizer(detector)
    if recognizer is not None:
        cancel = st.empty()
        cancel.button("Cancel", key="batch_cancel", help="Stops after the current photos; finished results stay")
        state = run_batch(uploaded, recognizer, limits)
        cancel.empty()
        st.toast(f"Labelled {state['done']} photos in {state['seconds']:.1f} s")

state = st.session_state.get(STATE)
if not state or not state["rows"]:
    st.stop()
if not state["finished"]:
    st.warning(f"Cancelled after {state['done']} of {state['total']} photos; results so far are below.")
df = results_frame(state)
left, right = st.columns(2)
faces = df[df["status"].isin(["ok", "low_confidence"])]
if faces.empty:
    left.info("No faces found in these photos.")
else:
    left.plotly_chart(count_bars(faces["emotion"].value_counts().to_dict(), "Faces per emotion"), key="batch_emotions")
right.plotly_chart(count_bars(df["status"].value_counts().to_dict(), "Rows per status"), key="batch_statuses")

st.subheader("Results — change any label in the emotion column")
edited = st.data_editor(
    df,
    key="batch_editor",
    hide_index=True,
    disabled=[c for c in df.columns if c != "emotion"],
    column_config={"emotion": st.column_config.SelectboxColumn("emotion", options=list(EMOTIONS))},
)
edited["corrected"] = (edited["emotion"] != edited["predicted"]) & edited["x"].astype(str).ne("")
st.caption(f"{int(edited['corrected'].sum())} corrected rows.")
rows = edited.drop(columns=["predicted"]).to_dict("records")
files = state["files"]

st.subheader("Downloads")
d1, d2, d3, d4 = st.columns(4)
d1.download_button("CSV", rows_to_csv(rows), "results.csv", "text/csv", key="dl_csv")
d2.download_button("JSON", rows_to_json(rows), "results.json", "application/json", key="dl_json")
if d3.button("Prepare annotated images (zip)", key="prep_annotated"):
    st.session_state["annotated_zip"] = annotated_zip(rows, files)
if "annotated_zip" in st.session_state:
    d3.download_button("Annotated images", st.session_state["annotated_zip"], "annotated.zip", "application/zip")
if d4.button("Prepare photos sorted by emotion (zip)", key="prep_sorted"):
    st.session_state["sorted_zip"] = sorted_zip(rows, files)
if "sorted_zip" in st.session_state:
    d4.download_button("Sorted photos", st.session_state["sorted_zip"], "sorted.zip", "application/zip")

st.subheader("Save corrections as a training set")
label_rows = edited.to_dict("records")
if settings.demo:
    demo_notice("Saving datasets on the server")
else:
    name = st.text_input("Dataset name", f"corrections-{datetime.now():%Y%m%d-%H%M%S}", key="ds_name")
    if st.button("Save corrections as a dataset", key="save_ds"):
        try:
            out = new_child_folder(corrections_dir(), name, "dataset name")
        except UnsafeNameError as e:
            st.error(str(e))
        else:
            counts = save_corrections_dataset(label_rows, files, out, state["spec"])
            st.success(f"Saved {sum(counts.values())} face crops to {out} — pick it on the Train page to fine-tune.")

st.subheader("Gallery")
gallery(df, files)
