"""Train: start, watch, stop and resume training runs; register and activate their models."""

import streamlit as st

import fer_ui
from fer_core.train.jobs import JobManager
from fer_ui.settings import demo_notice, get_settings
from fer_ui.train import new_run_form, runs_section, storage_caption

fer_ui.use_router()

settings = get_settings()
st.title("Train")
if settings.demo:
    demo_notice("Training")
    st.stop()
manager = JobManager()
storage_caption(manager)
runs_section(manager)
with st.expander("New run", expanded=manager.active() is None):
    new_run_form(manager)
