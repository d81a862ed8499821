"""Home: what the app does, the active model and the responsible-use note."""

import streamlit as st

import fer_ui
from fer_core.registry import ModelError
from fer_ui.resources import current_model, model_picker
from fer_ui.settings import for_public, get_settings
from fer_ui.widgets import model_card, responsible_use_note

fer_ui.use_router()

st.title("Facial emotion recognition")
if get_settings().demo:
    st.write(
        "Label the emotions of every face in your webcam (**Live**) and in your photos (**Batch**), and "
        "measure a model on a labelled set (**Evaluate**)."
    )
    st.info(
        "Public demo: uploads only, removed from the server a few minutes after you close the tab; training and "
        "saving datasets are off. Run the app on your own machine to train your own model."
    )
else:
    st.write(
        "Label the emotions of every face in your webcam (**Live**), in folders of photos (**Batch**), "
        "measure any model on a labelled set (**Evaluate**) and train your own (**Train**)."
    )
model_picker()
st.subheader("Model in use")
try:
    model_card(current_model())
except ModelError as e:
    st.warning(for_public(e))
responsible_use_note()
