"""Router: page config and navigation over pages/ (no logic here)."""

import streamlit as st

import fer_ui  # noqa: F401  (loads libsrtp before TensorFlow can load; see fer_ui)

st.set_page_config(page_title="Facial emotion recognition", page_icon="🙂", layout="wide")

navigation = st.navigation(
    [
        st.Page("pages/home.py", title="Home", icon="🏠", default=True),
        st.Page("pages/live.py", title="Live", icon="🎥"),
        st.Page("pages/batch.py", title="Batch", icon="🗂️"),
        st.Page("pages/evaluate.py", title="Evaluate", icon="📊"),
        st.Page("pages/train.py", title="Train", icon="🏋️"),
    ]
)
navigation.run()
