"""Processing a short video clip frame by frame: per-track rows and an annotated copy."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np

from fer_core.imageio import MAX_PIXELS
from fer_core.live import LiveProcessor, LiveSettings
from fer_core.recognizer import EmotionRecognizer

# Frames larger than this are scaled down as they are decoded (faces stay findable, and an 8K clip
# costs what a full-HD one does).
FRAME_PIXELS = 1920 * 1080


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
    max_pixels: int = MAX_PIXELS,
    frame_pixels: int = FRAME_PIXELS,
) -> VideoResult:
    """Run the live pipeline (tracking, smoothing) over every frame of a clip.

    Args:
        source: the video file.
        out_path: where to write the annotated video: H.264 in MP4, which every browser plays.
        max_frames: stop after this many frames.
        max_pixels: a clip whose frames are larger is refused before any is decoded (the photo cap).
        frame_pixels: larger frames are scaled down to this many pixels as they are decoded.

    Raises:
        VideoError: the file is not a readable video, or its frames are over `max_pixels`.
    """
    cap = cv2.VideoCapture(str(source))
    if not cap.isOpened():
        raise VideoError(f"{source.name}: not a readable video")
    width, height = int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT))
    if width * height > max_pixels:
        cap.release()
        raise VideoError(
            f"{source.name}: frames of {width}x{height} pixels are over the limit of {max_pixels / 1e6:.0f} MP"
        )
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
            if frame.shape[0] * frame.shape[1] > max_pixels:  # a header that lied about the size
                raise VideoError(
                    f"{source.name}: a frame of {frame.shape[1]}x{frame.shape[0]} pixels is over the limit"
                )
            annotated = processor.process(_fit(frame, frame_pixels), timestamp=frames / fps)
            if writer is None:
                writer = H264Writer(out_path, fps, annotated.shape[1], annotated.shape[0])
            writer.write(annotated)
            frames += 1
            if progress:
                progress(frames, min(total, max_frames) if total else 0)
    finally:
        cap.release()
        if writer is not None:
            writer.close()
    if frames == 0:
        raise VideoError(f"{source.name}: no frames could be decoded")
    return VideoResult(processor.session_rows(), out_path, frames, fps)


def _fit(frame: np.ndarray, pixels: int) -> np.ndarray:
    """The frame, scaled down to at most `pixels` pixels."""
    height, width = frame.shape[:2]
    if width * height <= pixels:
        return frame
    scale = (pixels / (width * height)) ** 0.5
    return cv2.resize(frame, (max(1, int(width * scale)), max(1, int(height * scale))), interpolation=cv2.INTER_AREA)


class H264Writer:
    """Writes BGR frames as an H.264 MP4 that browsers play (yuv420p, index at the start).

    OpenCV's own writer here makes MPEG-4 Part 2, which browsers do not play; PyAV (installed
    with streamlit-webrtc) carries libx264. Odd frame sizes lose their last row or column, as
    yuv420p needs even ones.
    """

    def __init__(self, path: Path, fps: float, width: int, height: int):
        self._file = av.open(str(path), mode="w", format="mp4", options={"movflags": "+faststart"})
        self._stream = self._file.add_stream("libx264", rate=Fraction(fps).limit_denominator(1001))
        self._stream.width, self._stream.height = max(2, width - width % 2), max(2, height - height % 2)
        self._stream.pix_fmt = "yuv420p"
        self._stream.options = {"preset": "veryfast", "crf": "23"}

    def write(self, frame_bgr: np.ndarray) -> None:
        frame = np.ascontiguousarray(frame_bgr[: self._stream.height, : self._stream.width])
        for packet in self._stream.encode(av.VideoFrame.from_ndarray(frame, format="bgr24")):
            self._file.mux(packet)

    def close(self) -> None:
        for packet in self._stream.encode(None):
            self._file.mux(packet)
        self._file.close()
