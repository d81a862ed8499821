"""The Live page's fallbacks for when WebRTC cannot connect: a camera snapshot and a video clip."""

from __future__ import annotations

import hashlib
import tempfile
from collections import Counter
from pathlib import Path

import pandas as pd
import streamlit as st

from fer_core.charts import emotion_timeline
from fer_core.imageio import MAX_PIXELS, ImageReadError, read_image
from fer_core.live import LiveSettings
from fer_core.recognizer import EmotionRecognizer, RecognizerSpec
from fer_core.render import annotate
from fer_core.video import VideoError, process_video
from fer_ui.settings import for_public


def camera_snapshot(recognizer: EmotionRecognizer, min_face: int | None = None) -> None:
    """Take one photo with the browser camera and label its faces (no smaller than `min_face` px)."""
    shot = st.camera_input("Take a snapshot", key="live_camera")
    if shot is None:
        return
    try:
        image = read_image(shot.getvalue())
    except ImageReadError as e:
        st.error(f"Could not read the snapshot: {for_public(e)}")
        return
    faces = recognizer.analyze(image, min_face=min_face)
    if not faces:  # the camera widget already shows the picture: say why there is nothing more
        st.warning(
            f"No face found in the snapshot (faces smaller than {min_face or 'the detector’s smallest'} px are "
            "not searched for): face the camera in good light, closer."
        )
        return
    st.image(annotate(image, faces, True), channels="BGR")
    st.dataframe(
        pd.DataFrame(
            [{"face": i, "emotion": f.emotion, "confidence": round(f.confidence, 3)} for i, f in enumerate(faces)]
        )
    )


CLIP_STATE = "live_clip_result"


def _smallest_face(recognizer: EmotionRecognizer) -> int:
    return int(getattr(recognizer.detector, "min_face", 20))


def _process_clip(
    data: bytes, suffix: str, recognizer: EmotionRecognizer, settings: LiveSettings, max_frames: int, max_pixels: int
):
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
                settings,
                max_frames=max_frames,
                progress=lambda done, total: bar.progress(min(1.0, done / total) if total else 0.0),
                max_pixels=max_pixels,
            )
        except VideoError as e:
            st.error(for_public(e))
            return None
        finally:
            bar.empty()
        return result, result.annotated_path.read_bytes()


BRIEF_FRAMES = 3
"""A track seen in fewer frames is a brief detection (a face turning away, a false alarm), not a face."""


def video_clip(
    recognizer: EmotionRecognizer,
    settings: LiveSettings,
    max_frames: int = 1500,
    max_upload_mb: int | None = None,
    max_pixels: int = MAX_PIXELS,
) -> None:
    """Upload a short clip; process it frame by frame into a timeline, a CSV and an annotated video."""
    upload = st.file_uploader(
        "Short video clip", type=["mp4", "mov", "avi", "mkv", "webm"], key="live_clip", max_upload_size=max_upload_mb
    )
    if upload is None:
        return
    # Faces down to the detector's own smallest size by default, as Batch finds them: a clip's faces
    # are often smaller than a webcam's, and there is no frame budget to keep.
    smallest = st.number_input(
        "Smallest face in the clip (px)",
        8,
        400,
        _smallest_face(recognizer),
        key="live_clip_min_face",
        help="Faces smaller than this are not searched for; the default is the detector's own smallest size.",
    )
    settings = LiveSettings(int(smallest), settings.smoothing, False, settings.show_probabilities)
    data = upload.getvalue()
    # One result per clip, model, TTA mode and settings: downloads and other reruns do not redo the clip.
    key = (hashlib.sha256(data).hexdigest(), RecognizerSpec.of(recognizer), settings)
    cached = st.session_state.get(CLIP_STATE)
    if cached and cached[0] == key:
        result, video_bytes = cached[1]
    else:
        outcome = _process_clip(data, Path(upload.name).suffix.lower(), recognizer, settings, max_frames, max_pixels)
        if outcome is None:
            return
        result, video_bytes = outcome
        st.session_state[CLIP_STATE] = (key, outcome)
    seen = Counter(r["track"] for r in result.rows)
    faces = sum(1 for n in seen.values() if n >= min(BRIEF_FRAMES, result.frames))
    brief = len(seen) - faces
    st.success(
        f"Processed {result.frames} frames at {result.fps:.0f} fps; {faces} faces tracked"
        + (f" (and {brief} brief detections of under {BRIEF_FRAMES} frames, kept in the CSV)." if brief else ".")
    )
    st.video(video_bytes, format="video/mp4")
    if result.rows:
        st.plotly_chart(emotion_timeline(result.rows, "Emotion per face over the clip"), key="clip_timeline")
        st.download_button(
            "Per-frame results (CSV)", pd.DataFrame(result.rows).to_csv(index=False), "clip.csv", "text/csv"
        )
    st.download_button("Annotated video (MP4, H.264)", video_bytes, "annotated.mp4", "video/mp4")
