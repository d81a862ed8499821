"""Live: webcam over WebRTC with tracked, smoothed emotion labels; snapshot and clip fallbacks."""

import streamlit as st

import fer_ui
from fer_core.live import LiveProcessor, LiveSettings
from fer_ui.live import live_panel, start_stream
from fer_ui.live_fallbacks import camera_snapshot, video_clip
from fer_ui.resources import current_card, model_picker, require_recognizer
from fer_ui.settings import get_settings
from fer_ui.widgets import detector_picker, tta_picker

fer_ui.use_router()

st.title("Live")
model_picker()
with st.sidebar:
    detector = detector_picker("live_detector", live=True)
    tta = tta_picker("live_tta", current_card())
    settings = LiveSettings(
        min_face=st.slider("Minimum face size (px)", 20, 200, 40, key="live_min_face"),
        smoothing=st.slider("Smoothing", 0.0, 0.9, 0.6, 0.05, key="live_smoothing"),
        mirror=st.toggle("Mirror view", True, key="live_mirror"),
        show_probabilities=st.toggle("Show probabilities", True, key="live_probs"),
    )

recognizer = require_recognizer(detector, tta=tta, live=True)
if recognizer is None:
    st.stop()
state_key = f"live_processor:{recognizer.model_name}:{detector}:{tta}"
if state_key not in st.session_state:
    st.session_state[state_key] = LiveProcessor(recognizer, settings)
processor: LiveProcessor = st.session_state[state_key]
processor.update_settings(settings)

webcam, snapshot, clip = st.tabs(["Webcam (WebRTC)", "Snapshot", "Video clip"])
with webcam:
    left, right = st.columns([3, 2])
    with left:
        start_stream(processor, key=f"live-{recognizer.model_name}-{detector}-{tta}")
        st.caption(
            "If the stream never starts, your network may need a TURN server: see the README. "
            "The Snapshot and Video clip tabs work without WebRTC."
        )
    with right:
        live_panel(processor)
with snapshot:
    camera_snapshot(recognizer, settings.min_face)
with clip:
    limits = get_settings().limits
    video_clip(recognizer, settings, max_upload_mb=limits.max_upload_mb, max_pixels=limits.max_pixels)
