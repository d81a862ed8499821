"""The Live page's fallbacks for when WebRTC cannot connect: a camera snapshot and a video clip."""

from __future__ import annotations

import hashlib
import tempfile
from pathlib import Path

import pandas as pd
import streamlit as st

from fer_core.charts import emotion_timeline
from fer_core.imageio import ImageReadError, read_image
from fer_core.live import LiveSettings
from fer_core.recognizer import EmotionRecognizer, RecognizerSpec
from fer_core.render import annotate
from fer_core.video import VideoError, process_video


def camera_snapshot(recognizer: EmotionRecognizer, min_face: int | None = None) -> None:
    """Take one photo with the browser camera and label its faces (no smaller than `min_face` px)."""
    shot = st.camera_input("Take a snapshot", key="live_camera")
    if shot is None:
        return
    try:
        image = read_image(shot.getvalue())
    except ImageReadError as e:
        st.error(f"Could not read the snapshot: {e}")
        return
    faces = recognizer.analyze(image, min_face=min_face)
    st.image(annotate(image, faces, True), channels="BGR")
    if not faces:
        st.warning("No face found in the snapshot.")
    st.dataframe(
        pd.DataFrame(
            [{"face": i, "emotion": f.emotion, "confidence": round(f.confidence, 3)} for i, f in enumerate(faces)]
        )
    )


CLIP_STATE = "live_clip_result"


def _process_clip(data: bytes, suffix: str, recognizer: EmotionRecognizer, settings: LiveSettings, max_frames: int):
    """(VideoResult, annotated MP4 bytes) for a clip, with a progress bar; None after an error shown."""
    with tempfile.TemporaryDirectory() as tmp:
        source = Path(tmp) / ("clip" + suffix)
        source.write_bytes(data)
        bar = st.progress(0.0, text="Processing frames…")
        try:
            result = process_video(
                source,
                Path(tmp) / "annotated.mp4",
                recognizer,
                LiveSettings(settings.min_face, settings.smoothing, False, settings.show_probabilities),
                max_frames=max_frames,
                progress=lambda done, total: bar.progress(min(1.0, done / total) if total else 0.0),
            )
        except VideoError as e:
            st.error(str(e))
            return None
        finally:
            bar.empty()
        return result, result.annotated_path.read_bytes()


def video_clip(
    recognizer: EmotionRecognizer, settings: LiveSettings, max_frames: int = 1500, max_upload_mb: int | None = None
) -> None:
    """Upload a short clip; process it frame by frame into a timeline, a CSV and an annotated video."""
    upload = st.file_uploader(
        "Short video clip", type=["mp4", "mov", "avi", "mkv", "webm"], key="live_clip", max_upload_size=max_upload_mb
    )
    if upload is None:
        return
    data = upload.getvalue()
    # One result per clip, model, TTA mode and settings: downloads and other reruns do not redo the clip.
    key = (hashlib.sha256(data).hexdigest(), RecognizerSpec.of(recognizer), settings)
    cached = st.session_state.get(CLIP_STATE)
    if cached and cached[0] == key:
        result, video_bytes = cached[1]
    else:
        outcome = _process_clip(data, Path(upload.name).suffix.lower(), recognizer, settings, max_frames)
        if outcome is None:
            return
        result, video_bytes = outcome
        st.session_state[CLIP_STATE] = (key, outcome)
    tracks = len({r["track"] for r in result.rows})
    st.success(f"Processed {result.frames} frames at {result.fps:.0f} fps; {tracks} faces tracked.")
    if result.rows:
        st.plotly_chart(emotion_timeline(result.rows, "Emotion per face over the clip"), key="clip_timeline")
        st.download_button(
            "Per-frame results (CSV)", pd.DataFrame(result.rows).to_csv(index=False), "clip.csv", "text/csv"
        )
    st.download_button("Annotated video (MP4)", video_bytes, "annotated.mp4", "video/mp4")
