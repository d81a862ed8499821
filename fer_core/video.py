"""Processing a short video clip frame by frame: per-track rows and an annotated copy."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import cv2

from fer_core.live import LiveProcessor, LiveSettings
from fer_core.recognizer import EmotionRecognizer


class VideoError(ValueError):
    """A clip cannot be read; the message says why."""


@dataclass
class VideoResult:
    """What processing a clip produced."""

    rows: list[dict]
    annotated_path: Path
    frames: int
    fps: float


def process_video(
    source: Path,
    out_path: Path,
    recognizer: EmotionRecognizer,
    settings: LiveSettings | None = None,
    max_frames: int = 3000,
    progress: Callable[[int, int], None] | None = None,
) -> VideoResult:
    """Run the live pipeline (tracking, smoothing) over every frame of a clip.

    Args:
        source: the video file.
        out_path: where to write the annotated MP4.
        max_frames: stop after this many frames.

    Raises:
        VideoError: the file is not a readable video.
    """
    cap = cv2.VideoCapture(str(source))
    if not cap.isOpened():
        raise VideoError(f"{source.name}: not a readable video")
    fps = cap.get(cv2.CAP_PROP_FPS) or 25.0
    total = int(cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
    settings = settings or LiveSettings(mirror=False)
    processor = LiveProcessor(recognizer, settings, history_seconds=float("inf"))
    writer = None
    frames = 0
    try:
        while frames < max_frames:
            ok, frame = cap.read()
            if not ok:
                break
            annotated = processor.process(frame, timestamp=frames / fps)
            if writer is None:
                height, width = annotated.shape[:2]
                writer = cv2.VideoWriter(str(out_path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (width, height))
            writer.write(annotated)
            frames += 1
            if progress:
                progress(frames, min(total, max_frames) if total else 0)
    finally:
        cap.release()
        if writer is not None:
            writer.release()
    if frames == 0:
        raise VideoError(f"{source.name}: no frames could be decoded")
    return VideoResult(processor.session_rows(), out_path, frames, fps)
