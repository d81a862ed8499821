"""Router: page config and navigation over pages/ (no logic here)."""

import streamlit as st

import fer_ui  # noqa: F401  (loads libsrtp before TensorFlow can load; see fer_ui)

st.set_page_config(page_title="Facial emotion recognition", page_icon="🙂", layout="wide")

navigation = st.navigation(
    [
        st.Page("pages/home.py", title="Home", icon=":material/home:", default=True),
        st.Page("pages/live.py", title="Live", icon=":material/videocam:"),
        st.Page("pages/batch.py", title="Batch", icon=":material/photo_library:"),
        st.Page("pages/evaluate.py", title="Evaluate", icon=":material/analytics:"),
        st.Page("pages/train.py", title="Train", icon=":material/model_training:"),
    ]
)
navigation.run()
