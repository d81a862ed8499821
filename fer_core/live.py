"""Live video: per-face tracking with smoothed probabilities, and a thread-safe frame processor.

The processor runs in the video thread; pages read its state only through
`snapshot()` and `session_rows()`, which copy under a lock.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass, field, replace

import numpy as np

from fer_core.classes import EMOTIONS
from fer_core.recognizer import EmotionRecognizer
from fer_core.render import annotate
from fer_core.types import Box, FaceResult


@dataclass
class TrackedFace:
    """A face followed across frames.

    Attributes:
        track_id: stable id while the face stays in view.
        box: the latest box.
        probabilities: smoothed probabilities (EMA over frames).
        emotion: the displayed emotion (changes only past the hysteresis margin).
        confidence: smoothed probability of the displayed emotion.
        raw: this frame's unsmoothed result.
    """

    track_id: int
    box: Box
    probabilities: np.ndarray
    emotion: str
    confidence: float
    raw: FaceResult
    misses: int = 0


class FaceTracker:
    """Matches faces between frames by IoU (or nearby centre) and smooths their emotions.

    Args:
        smoothing: EMA weight kept from the past, 0 (none) to 0.95 (very smooth).
        switch_margin: the displayed emotion changes only when another one's smoothed
            probability beats it by this much (hysteresis against flicker).
        min_iou: IoU needed to continue a track.
        max_misses: frames a track survives without a matching face.
    """

    def __init__(self, smoothing: float = 0.6, switch_margin: float = 0.1, min_iou: float = 0.2, max_misses: int = 5):
        if not 0.0 <= smoothing < 1.0:
            raise ValueError(f"smoothing must be in [0, 1). Received: smoothing={smoothing}")
        self.smoothing = smoothing
        self.switch_margin = switch_margin
        self.min_iou = min_iou
        self.max_misses = max_misses
        self.tracks: list[TrackedFace] = []
        self._next_id = 1
        self._frame_size: tuple[int, int] | None = None

    def _rescale(self, frame_size: tuple[int, int] | None) -> None:
        """Carry the tracks' boxes over to a new frame size (WebRTC lowers the resolution under load)."""
        if frame_size is None:
            return
        old, self._frame_size = self._frame_size, frame_size
        if old is None or old == frame_size:
            return
        sx, sy = frame_size[0] / old[0], frame_size[1] / old[1]
        for i, t in enumerate(self.tracks):
            b = t.box  # its landmarks belonged to the old size
            box = replace(b, x=round(b.x * sx), y=round(b.y * sy), w=round(b.w * sx), h=round(b.h * sy), landmarks=None)
            self.tracks[i] = replace(t, box=box)

    def _affinity(self, track: TrackedFace, face: FaceResult) -> float:
        """IoU when it is high enough; a small score for a nearby centre (fast motion); else 0."""
        iou = track.box.iou(face.box)
        if iou >= self.min_iou:
            return iou
        dx = (track.box.x + track.box.w / 2) - (face.box.x + face.box.w / 2)
        dy = (track.box.y + track.box.h / 2) - (face.box.y + face.box.h / 2)
        near = (dx * dx + dy * dy) ** 0.5 < 0.5 * max(track.box.w, face.box.w)
        return 0.01 if near else 0.0

    def _match(self, faces: list[FaceResult]) -> dict[int, int]:
        pairs = sorted(
            ((self._affinity(t, f), ti, fi) for ti, t in enumerate(self.tracks) for fi, f in enumerate(faces)),
            reverse=True,
        )
        matched: dict[int, int] = {}
        used_faces: set[int] = set()
        for score, ti, fi in pairs:
            if score <= 0 or ti in matched or fi in used_faces:
                continue
            matched[ti] = fi
            used_faces.add(fi)
        return matched

    def _smoothed(self, track: TrackedFace, face: FaceResult) -> TrackedFace:
        probs = self.smoothing * track.probabilities + (1.0 - self.smoothing) * face.probabilities
        best = int(np.argmax(probs))
        current = EMOTIONS.index(track.emotion)
        label = best if probs[best] > probs[current] + self.switch_margin else current
        return replace(
            track,
            box=face.box,
            probabilities=probs,
            emotion=EMOTIONS[label],
            confidence=float(probs[label]),
            raw=face,
            misses=0,
        )

    def update(self, faces: list[FaceResult], frame_size: tuple[int, int] | None = None) -> list[TrackedFace]:
        """Feed one frame's faces; returns the tracks seen in this frame.

        Args:
            faces: this frame's faces.
            frame_size: (width, height) of the frame; when it changes, tracks are rescaled so a face
                keeps its number through a resolution change.
        """
        self._rescale(frame_size)
        matched = self._match(faces)
        survivors, seen = [], []
        for ti, track in enumerate(self.tracks):
            if ti in matched:
                updated = self._smoothed(track, faces[matched[ti]])
                survivors.append(updated)
                seen.append(updated)
            elif track.misses < self.max_misses:
                survivors.append(replace(track, misses=track.misses + 1))
        taken = set(matched.values())
        for fi, face in enumerate(faces):
            if fi not in taken:
                new = TrackedFace(
                    self._next_id, face.box, face.probabilities.copy(), face.emotion, face.confidence, face
                )
                self._next_id += 1
                survivors.append(new)
                seen.append(new)
        self.tracks = survivors
        return seen


@dataclass
class LiveSettings:
    """User controls of the live view."""

    min_face: int = 40
    smoothing: float = 0.6
    mirror: bool = True
    show_probabilities: bool = True


@dataclass
class LiveSnapshot:
    """A copy of the processor's state for the page."""

    frames: int = 0
    fps: float = 0.0
    ms_per_frame: float = 0.0
    faces: int = 0
    timeline: list[dict] = field(default_factory=list)
    current: list[dict] = field(default_factory=list)
    error: str = ""
    seconds_since_frame: float | None = None

    @property
    def streaming(self) -> bool:
        """Whether frames are arriving (the last one under STALE_SECONDS ago)."""
        return self.seconds_since_frame is not None and self.seconds_since_frame < STALE_SECONDS


STALE_SECONDS = 2.0
"""A stream whose last frame is older than this is shown as stopped (STOP pressed or a dropped connection)."""


class LiveProcessor:
    """Processes video frames: detect, classify, track, draw; keeps stats and history.

    Args:
        recognizer: detector + classifier (the detector is used from this thread only).
        settings: initial controls; change them with `update_settings`.
        history_seconds: how much of the per-track timeline to keep.
        max_rows: cap on rows kept for the session CSV.
    """

    def __init__(
        self,
        recognizer: EmotionRecognizer,
        settings: LiveSettings | None = None,
        history_seconds: float = 60.0,
        max_rows: int = 200_000,
    ):
        self.recognizer = recognizer
        self.settings = settings or LiveSettings()
        self.tracker = FaceTracker(smoothing=self.settings.smoothing)
        self.history_seconds = history_seconds
        self._lock = threading.Lock()
        self._durations: deque[float] = deque(maxlen=60)
        self._frame_times: deque[float] = deque(maxlen=60)
        self._timeline: deque[dict] = deque()
        self._rows: deque[dict] = deque(maxlen=max_rows)
        self._frames = 0
        self._faces = 0
        self._current: list[dict] = []
        self._error = ""
        self._last_frame: np.ndarray | None = None
        self._started = time.time()

    def update_settings(self, settings: LiveSettings) -> None:
        """Apply new controls (called from the page thread)."""
        with self._lock:
            self.settings = settings
            self.tracker.smoothing = settings.smoothing

    def process(self, frame: np.ndarray, timestamp: float | None = None) -> np.ndarray:
        """Annotate one BGR frame. Errors are stored for the page, never raised into the video thread.

        Args:
            frame: BGR image.
            timestamp: seconds since the start (a clip's frame time); None uses the wall clock.
        """
        start = time.perf_counter()
        settings = self.settings
        if settings.mirror:
            frame = frame[:, ::-1]
        frame = np.ascontiguousarray(frame)
        try:
            faces = self.recognizer.analyze(frame, min_face=settings.min_face)
            with self._lock:
                tracks = self.tracker.update(faces, (frame.shape[1], frame.shape[0]))
            out = annotate(frame, tracks, settings.show_probabilities)
            error = ""
        except Exception as e:  # the video thread must survive any one bad frame
            tracks, out, error = [], frame, f"{type(e).__name__}: {e}"
        self._record(tracks, time.perf_counter() - start, out, error, timestamp)
        return out

    def _record(
        self, tracks: list[TrackedFace], seconds: float, frame: np.ndarray, error: str, timestamp: float | None
    ) -> None:
        now = time.time()
        elapsed = now - self._started if timestamp is None else timestamp
        with self._lock:
            self._frames += 1
            self._faces = len(tracks)
            self._current = [{"track": t.track_id, "emotion": t.emotion, "confidence": t.confidence} for t in tracks]
            self._durations.append(seconds)
            self._frame_times.append(now)
            self._last_frame = frame
            if error:
                self._error = error
            for t in tracks:
                record = {
                    "time": round(elapsed, 3),
                    "track": t.track_id,
                    "emotion": t.emotion,
                    "confidence": round(t.confidence, 4),
                    "x": t.box.x,
                    "y": t.box.y,
                    "w": t.box.w,
                    "h": t.box.h,
                }
                record.update({f"p_{n}": round(float(p), 4) for n, p in zip(EMOTIONS, t.probabilities)})
                self._timeline.append(record)
                self._rows.append(record)
            while self._timeline and self._timeline[0]["time"] < elapsed - self.history_seconds:
                self._timeline.popleft()

    def snapshot(self) -> LiveSnapshot:
        """A consistent copy of the current statistics and timeline."""
        with self._lock:
            times = list(self._frame_times)
            fps = (len(times) - 1) / (times[-1] - times[0]) if len(times) > 1 and times[-1] > times[0] else 0.0
            durations = sorted(self._durations)
            median = durations[len(durations) // 2] * 1000 if durations else 0.0
            age = time.time() - times[-1] if times else None
            if age is not None and age >= STALE_SECONDS:  # no video now: nothing is "current"
                return LiveSnapshot(self._frames, 0.0, median, 0, list(self._timeline), [], self._error, age)
            return LiveSnapshot(
                self._frames, fps, median, self._faces, list(self._timeline), list(self._current), self._error, age
            )

    def last_frame(self) -> np.ndarray | None:
        """The latest annotated frame (for a snapshot download)."""
        with self._lock:
            return None if self._last_frame is None else self._last_frame.copy()

    def session_rows(self) -> list[dict]:
        """Every recorded (time, track, box, probabilities, emotion) row of this browser session."""
        with self._lock:
            return list(self._rows)
