"""Train: start, watch, stop and resume training runs; register and activate their models."""

import streamlit as st

import fer_ui
from fer_core.paths import REPO_ROOT
from fer_core.registry import default_models_dir
from fer_core.train.jobs import JobManager
from fer_ui.settings import demo_notice, get_settings
from fer_ui.train import new_run_form, runs_section

fer_ui.use_router()

settings = get_settings()
st.title("Train")
if settings.demo:
    demo_notice("Training")
    st.stop()
manager = JobManager()
models_dir = default_models_dir()
in_repo = models_dir.resolve() == (REPO_ROOT / "models").resolve()
st.caption(
    f"Runs are kept in `{manager.root}`; trained models are registered in `{models_dir}`"
    + (" (ignored by git: `git add -f models/NAME` commits one)." if in_repo else ".")
)
runs_section(manager)
with st.expander("New run", expanded=manager.active() is None):
    new_run_form(manager)
