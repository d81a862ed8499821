"""The Live page's fallbacks for when WebRTC cannot connect: a camera snapshot and a video clip."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pandas as pd
import streamlit as st

from fer_core.charts import emotion_timeline
from fer_core.imageio import ImageReadError, read_image
from fer_core.live import LiveSettings
from fer_core.recognizer import EmotionRecognizer
from fer_core.render import annotate
from fer_core.video import VideoError, process_video


def camera_snapshot(recognizer: EmotionRecognizer) -> None:
    """Take one photo with the browser camera and label its faces."""
    shot = st.camera_input("Take a snapshot", key="live_camera")
    if shot is None:
        return
    try:
        image = read_image(shot.getvalue())
    except ImageReadError as e:
        st.error(f"Could not read the snapshot: {e}")
        return
    faces = recognizer.analyze(image)
    st.image(annotate(image, faces, True), channels="BGR")
    if not faces:
        st.warning("No face found in the snapshot.")
    st.dataframe(
        pd.DataFrame(
            [{"face": i, "emotion": f.emotion, "confidence": round(f.confidence, 3)} for i, f in enumerate(faces)]
        )
    )


def video_clip(
    recognizer: EmotionRecognizer, settings: LiveSettings, max_frames: int = 1500, max_upload_mb: int | None = None
) -> None:
    """Upload a short clip; process it frame by frame into a timeline, a CSV and an annotated video."""
    upload = st.file_uploader(
        "Short video clip", type=["mp4", "mov", "avi", "mkv", "webm"], key="live_clip", max_upload_size=max_upload_mb
    )
    if upload is None:
        return
    with tempfile.TemporaryDirectory() as tmp:
        source = Path(tmp) / ("clip" + Path(upload.name).suffix.lower())
        source.write_bytes(upload.getvalue())
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
            return
        bar.empty()
        video_bytes = result.annotated_path.read_bytes()
    tracks = len({r["track"] for r in result.rows})
    st.success(f"Processed {result.frames} frames at {result.fps:.0f} fps; {tracks} faces tracked.")
    if result.rows:
        st.plotly_chart(emotion_timeline(result.rows, "Emotion per face over the clip"), key="clip_timeline")
        st.download_button(
            "Per-frame results (CSV)", pd.DataFrame(result.rows).to_csv(index=False), "clip.csv", "text/csv"
        )
    st.download_button("Annotated video (MP4)", video_bytes, "annotated.mp4", "video/mp4")
