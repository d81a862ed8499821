"""Train: start, watch, stop and resume training runs; register and activate their models."""

from datetime import datetime

import pandas as pd
import streamlit as st

import fer_ui
from fer_core.registry import list_models
from fer_core.train.config import Augmentation, TrainConfig
from fer_core.train.jobs import JobError, JobManager
from fer_ui.settings import demo_notice, get_settings
from fer_ui.train import augmentation_preview, choose_data, dataset_summary, finished_model, progress_panel

fer_ui.use_router()

settings = get_settings()
st.title("Train")
if settings.demo:
    demo_notice("Training")
    st.stop()
manager = JobManager()
job = manager.active()

with st.expander("New run", expanded=job is None):
    data_path = choose_data()
    data = dataset_summary(data_path) if data_path else None
    c1, c2, c3, c4 = st.columns(4)
    architecture = c1.selectbox("Architecture", ["compact", "vgg", "tiny"], key="t_arch")
    epochs = c2.number_input("Epochs", 1, 500, 30, key="t_epochs")
    batch_size = c3.selectbox("Batch size", [32, 64, 128], index=1, key="t_batch")
    learning_rate = c4.number_input("Learning rate", 0.0001, 1.0, 0.02, format="%.4f", key="t_lr")
    c5, c6, c7 = st.columns(3)
    weighting = c5.selectbox("Class weighting", ["sqrt", "balanced", "none"], key="t_weight")
    finetune = c6.selectbox("Fine-tune from", ["—", *[r["name"] for r in list_models() if r["ok"]]], key="t_ft")
    register_as = c7.text_input("Register model as", f"my-model-{datetime.now():%Y%m%d-%H%M}", key="t_name")
    a = st.columns(7)
    augmentation = Augmentation(
        flip=a[0].toggle("Flip", True, key="a_flip"),
        shift=0.1 if a[1].toggle("Shift", True, key="a_shift") else 0,
        rotation_degrees=10.0 if a[2].toggle("Rotate", True, key="a_rot") else 0,
        zoom=0.1 if a[3].toggle("Zoom", True, key="a_zoom") else 0,
        brightness=0.2 if a[4].toggle("Brightness", True, key="a_bright") else 0,
        contrast=0.2 if a[5].toggle("Contrast", True, key="a_contrast") else 0,
        erasing=0.5 if a[6].toggle("Erasing", True, key="a_erase") else 0,
    )
    if data is not None and st.button("Preview augmentation", key="t_preview"):
        augmentation_preview(data, augmentation)
    if st.button("Start training", type="primary", disabled=data is None, key="t_start"):
        config = TrainConfig(
            data=data_path,
            architecture=architecture,
            epochs=int(epochs),
            batch_size=int(batch_size),
            learning_rate=float(learning_rate),
            class_weighting=weighting,
            augmentation=augmentation,
            finetune_from=None if finetune == "—" else finetune,
            register_as=register_as or None,
        )
        try:
            job = manager.start(config, f"{datetime.now():%Y%m%d-%H%M%S}-{architecture}")
            st.session_state["train_run"] = job["run_dir"].rsplit("/", 1)[-1]
            st.success(f"Started run {st.session_state['train_run']} (process {job['pid']}).")
        except JobError as e:
            st.error(str(e))

runs = manager.runs()
if not runs:
    st.info("No runs yet.")
    st.stop()
st.subheader("Runs")
st.dataframe(pd.DataFrame(runs), hide_index=True)
names = [r["name"] for r in runs]
default = st.session_state.get("train_run") or (job["run_dir"].rsplit("/", 1)[-1] if job else names[0])
name = st.selectbox("Show run", names, index=names.index(default) if default in names else 0, key="t_show")
status = next(r["status"] for r in runs if r["name"] == name)
b1, b2 = st.columns(2)
if status == "running" and b1.button("Stop (keeps the best checkpoint)", key="t_stop"):
    manager.stop()
    st.info("Stopping after the current batch…")
if status in ("interrupted", "stopped") and b2.button("Resume from the last checkpoint", key="t_resume"):
    try:
        manager.resume(name)
        st.rerun()
    except JobError as e:
        st.error(str(e))
progress_panel(manager, name)
finished_model(manager, name, settings.demo)
