"""Train: start, watch, stop and resume training runs; register and activate their models."""

import streamlit as st

import fer_ui
from fer_core.train.jobs import JobManager
from fer_ui.settings import demo_notice, get_settings
from fer_ui.train import new_run_form, show_runs

fer_ui.use_router()

settings = get_settings()
st.title("Train")
if settings.demo:
    demo_notice("Training")
    st.stop()
manager = JobManager()
job = manager.active()
runs = manager.runs()
if runs:
    show_runs(manager, runs, job)
else:
    st.info("No runs yet: start one below.")
with st.expander("New run", expanded=job is None):
    new_run_form(manager)
