"""Live pipeline: tracking, smoothing, the frame processor, dropping frames, video clips."""

from __future__ import annotations

import asyncio
import time

import cv2
import numpy as np
import pytest

from fer_core.classes import EMOTIONS
from fer_core.live import FaceTracker, LiveProcessor, LiveSettings
from fer_core.models import load_classifier
from fer_core.recognizer import EmotionRecognizer
from fer_core.registry import get_model
from fer_core.types import Box, FaceResult


def face(x: int, y: int, emotion: str, p: float = 0.8, size: int = 100) -> FaceResult:
    probs = np.full(7, (1 - p) / 6, np.float32)
    probs[EMOTIONS.index(emotion)] = p
    return FaceResult(Box(x, y, size, size), (0, 0, 0, 0), probs, emotion, p)


def test_tracks_keep_ids_across_small_motion():
    tracker = FaceTracker(smoothing=0.5)
    first = tracker.update([face(10, 10, "happy"), face(300, 10, "sad")])
    ids = {t.track_id for t in first}
    for step in range(1, 10):
        seen = tracker.update([face(10 + 4 * step, 10 + step, "happy"), face(300 - 3 * step, 10, "sad")])
        assert {t.track_id for t in seen} == ids
    by_x = sorted(seen, key=lambda t: t.box.x)
    assert [t.emotion for t in by_x] == ["happy", "sad"]


def test_faces_keep_their_numbers_when_the_stream_resolution_drops():
    """WebRTC lowers the resolution under CPU or network load; the same faces must keep their tracks."""
    tracker = FaceTracker()
    before = tracker.update([face(60, 120, "happy", size=170), face(380, 140, "sad", size=170)], (640, 480))
    after = tracker.update([face(45, 90, "happy", size=128), face(285, 105, "sad", size=128)], (480, 360))
    assert sorted(t.track_id for t in after) == sorted(t.track_id for t in before) == [1, 2]
    # Without the frame size the second face (centre moved 116 px) would have started a new track.
    blind = FaceTracker()
    blind.update([face(60, 120, "happy", size=170), face(380, 140, "sad", size=170)])
    smaller = blind.update([face(45, 90, "happy", size=128), face(285, 105, "sad", size=128)])
    assert max(t.track_id for t in smaller) == 3


def test_smoothing_damps_a_one_frame_flip():
    tracker = FaceTracker(smoothing=0.6, switch_margin=0.1)
    for _ in range(5):
        tracker.update([face(50, 50, "happy", 0.9)])
    flipped = tracker.update([face(52, 50, "angry", 0.9)])
    assert flipped[0].emotion == "happy"  # one odd frame does not change the label
    for _ in range(4):
        steady = tracker.update([face(52, 50, "angry", 0.9)])
    assert steady[0].emotion == "angry"  # a lasting change does


def test_new_faces_get_new_ids_and_lost_tracks_expire():
    tracker = FaceTracker(max_misses=2)
    a = tracker.update([face(0, 0, "happy")])[0].track_id
    b = tracker.update([face(0, 0, "happy"), face(400, 300, "sad")])[1].track_id
    assert b != a
    for _ in range(3):
        tracker.update([face(400, 300, "sad")])
    assert [t.track_id for t in tracker.tracks] == [b]
    with pytest.raises(ValueError, match="smoothing"):
        FaceTracker(smoothing=1.0)


class StillBoxes:
    name = "still"
    min_face = 20

    def __init__(self, boxes, delay: float = 0.0, fail: bool = False):
        self.boxes, self.delay, self.fail = boxes, delay, fail

    def detect(self, image, min_face=None):
        if self.fail:
            raise RuntimeError("camera glitch")
        time.sleep(self.delay)
        return list(self.boxes)


@pytest.fixture
def recognizer_factory(tiny_models_dir):
    info = get_model("tiny-test", tiny_models_dir)
    classifier = load_classifier(info)
    return lambda detector: EmotionRecognizer(classifier, detector, info.preprocessing, model_name=info.name)


def test_processor_annotates_records_and_survives_errors(recognizer_factory):
    processor = LiveProcessor(recognizer_factory(StillBoxes([Box(20, 20, 100, 100)])), LiveSettings(mirror=True))
    frame = np.random.default_rng(0).integers(0, 255, (240, 320, 3), dtype=np.uint8)
    for _ in range(5):
        out = processor.process(frame)
    assert out.shape == frame.shape and not np.array_equal(out, frame[:, ::-1])  # something was drawn
    snap = processor.snapshot()
    assert snap.frames == 5 and snap.faces == 1 and snap.ms_per_frame > 0
    rows = processor.session_rows()
    assert len(rows) == 5 and {r["track"] for r in rows} == {1}
    assert set(rows[0]) >= {"time", "track", "emotion", "confidence", "x", "y", "w", "h", "p_happy"}
    broken = LiveProcessor(recognizer_factory(StillBoxes([], fail=True)))
    assert broken.process(frame).shape == frame.shape
    assert "camera glitch" in broken.snapshot().error


def test_timeline_is_bounded(recognizer_factory):
    processor = LiveProcessor(recognizer_factory(StillBoxes([Box(0, 0, 60, 60)])), history_seconds=1.0, max_rows=50)
    frame = np.zeros((120, 160, 3), np.uint8)
    for i in range(100):
        processor.process(frame, timestamp=i * 0.1)
    assert len(processor.snapshot().timeline) <= 11
    assert len(processor.session_rows()) == 50


def test_slow_processing_drops_frames_instead_of_lagging(recognizer_factory):
    """Through streamlit-webrtc's async track (as the Live page uses it), lag stays bounded."""
    import av
    from aiortc.mediastreams import MediaStreamTrack
    from streamlit_webrtc.models import CallbackAttachableProcessor
    from streamlit_webrtc.process import AsyncVideoProcessTrack

    from fer_ui.live import make_frame_callback

    class Camera(MediaStreamTrack):
        kind = "video"

        def __init__(self):
            super().__init__()
            self.count = 0

        async def recv(self):
            await asyncio.sleep(1 / 100)  # a 100 fps camera: faster than processing
            image = np.zeros((120, 160, 3), np.uint8)
            image[:4, :4] = self.count % 256
            self.count += 1
            frame = av.VideoFrame.from_ndarray(image, format="bgr24")
            frame.pts, frame.time_base = self.count, __import__("fractions").Fraction(1, 100)
            return frame

    processor = LiveProcessor(recognizer_factory(StillBoxes([], delay=0.05)), LiveSettings(mirror=False))
    callback = make_frame_callback(processor)
    camera = Camera()
    track = AsyncVideoProcessTrack(camera, CallbackAttachableProcessor(callback, None, None))

    async def pump(seconds: float) -> list[int]:
        lags, end = [], time.time() + seconds
        while time.time() < end:
            out = await track.recv()
            shown = int(out.to_ndarray(format="bgr24")[0, 0, 0])
            lags.append((camera.count - 1 - shown) % 256)
        return lags

    lags = asyncio.run(pump(3.0))
    track.stop()
    processed = processor.snapshot().frames
    assert camera.count > 2 * processed  # frames were dropped, not queued
    late = lags[len(lags) // 2 :]
    assert max(late) <= 15, late  # about 50 ms of processing at 100 fps: lag stays a handful of frames


def test_video_clip_processing(recognizer_factory, tmp_path):
    from fer_core.video import VideoError, process_video

    source = tmp_path / "clip.mp4"
    writer = cv2.VideoWriter(str(source), cv2.VideoWriter_fourcc(*"mp4v"), 10, (160, 120))
    for _ in range(12):
        writer.write(np.full((120, 160, 3), 90, np.uint8))
    writer.release()
    result = process_video(source, tmp_path / "out.mp4", recognizer_factory(StillBoxes([Box(10, 10, 80, 80)])))
    assert result.frames == 12 and len(result.rows) == 12
    assert [r["time"] for r in result.rows[:3]] == [0.0, 0.1, 0.2]
    import av

    with av.open(str(tmp_path / "out.mp4")) as annotated:  # H.264, which browsers play
        assert annotated.streams.video[0].codec_context.name == "h264"
        assert sum(1 for _ in annotated.decode(video=0)) == 12
    (tmp_path / "bad.mp4").write_bytes(b"nope")
    with pytest.raises(VideoError):
        process_video(tmp_path / "bad.mp4", tmp_path / "o2.mp4", recognizer_factory(StillBoxes([])))


def test_a_huge_clip_is_refused_or_scaled_down_as_it_is_decoded(recognizer_factory, tmp_path):
    from fer_core.video import VideoError, process_video

    source = tmp_path / "big.mp4"
    writer = cv2.VideoWriter(str(source), cv2.VideoWriter_fourcc(*"mp4v"), 10, (1601, 1200))
    for _ in range(3):
        writer.write(np.full((1200, 1601, 3), 90, np.uint8))
    writer.release()
    seen = []

    class Recording(StillBoxes):
        def detect(self, image, *args, **kwargs):
            seen.append(image.shape)
            return super().detect(image, *args, **kwargs)

    with pytest.raises(VideoError, match=r"16\d\dx1200 pixels are over the limit of 1 MP"):
        process_video(source, tmp_path / "o.mp4", recognizer_factory(StillBoxes([])), max_pixels=1_000_000)
    result = process_video(source, tmp_path / "o.mp4", recognizer_factory(Recording([])), frame_pixels=400_000)
    assert result.frames == 3 and {s[0] * s[1] <= 400_000 for s in seen} == {True}
    import av

    with av.open(str(tmp_path / "o.mp4")) as annotated:  # odd sizes become even for H.264
        stream = annotated.streams.video[0]
        assert stream.codec_context.width % 2 == 0 and stream.codec_context.height % 2 == 0


def test_a_stopped_stream_shows_no_current_faces(recognizer_factory, monkeypatch):
    import time as real_time

    import fer_core.live as live

    processor = LiveProcessor(recognizer_factory(StillBoxes([Box(20, 20, 100, 100)])))
    frame = np.zeros((240, 320, 3), np.uint8)
    for _ in range(3):
        processor.process(frame)
    snap = processor.snapshot()
    assert snap.streaming and snap.faces == 1 and snap.current
    now = real_time.time()
    monkeypatch.setattr(live.time, "time", lambda: now + live.STALE_SECONDS + 1)  # STOP pressed: no more frames
    later = processor.snapshot()
    assert not later.streaming and later.faces == 0 and later.current == [] and later.fps == 0.0
    assert later.frames == 3 and later.timeline  # the history stays


def test_probability_bars_name_their_class():
    from fer_core.render import draw_face

    with_bars = np.zeros((400, 400, 3), np.uint8)
    draw_face(with_bars, Box(50, 20, 200, 200), "happy", 0.9, np.zeros(7))  # empty bars: only names are white
    without = np.zeros((400, 400, 3), np.uint8)
    draw_face(without, Box(50, 20, 200, 200), "happy", 0.9, None)
    region = (slice(224, 400), slice(50, 250))
    assert (with_bars[region] > 200).all(axis=2).sum() > 50
    assert (without[region] > 200).all(axis=2).sum() == 0


def test_probability_bars_keep_off_other_faces_and_labels():
    from fer_core.render import annotate
    from fer_core.types import FaceResult

    def face(x, y, side):
        return FaceResult(Box(x, y, side, side), (0, 0, 0, 0), np.full(7, 1 / 7, np.float32), "happy", 0.9)

    # a face right below another: bars under the upper face would cover the lower one's label
    faces = [face(100, 40, 120), face(100, 200, 120), face(300, 60, 100)]
    blank = np.zeros((480, 640, 3), np.uint8)
    plain = annotate(blank, faces, show_probabilities=False)
    drawn = annotate(blank, faces, show_probabilities=True)
    changed = (plain != drawn).any(axis=2)
    for f in faces:  # nothing of any bars lands on a face box or its label strip
        x, y, w, h = f.box.x, f.box.y, f.box.w, f.box.h
        assert not changed[max(0, y - 30) : y + h + 1, x : x + w + 1].any(), f.box
    assert changed.sum() > 3 * 7 * 50  # and every face's bars were drawn somewhere


def test_labels_in_a_crowd_never_cover_each_other_or_leave_the_image(monkeypatch):
    from fer_core import render
    from fer_core.types import FaceResult

    # a row of small faces shoulder to shoulder, the last at the right edge of the photo
    faces = [
        FaceResult(Box(x, 60, 40, 40), (0, 0, 0, 0), np.full(7, 1 / 7, np.float32), "surprise", 0.74)
        for x in range(10, 300, 42)
    ]
    drawn: list[tuple] = []
    place = render._label_place
    monkeypatch.setattr(render, "_label_place", lambda *a: drawn.append(place(*a)) or drawn[-1])
    out = render.annotate(np.zeros((240, 320, 3), np.uint8), faces)
    assert len(drawn) == len(faces)
    for i, (x, y, w, h) in enumerate(drawn):
        assert 0 <= x and x + w <= out.shape[1] and 0 <= y and y + h <= out.shape[0]  # whole, not cut
        assert not any(render._overlap((x, y, w, h), other) for other in drawn[:i])


def test_timeline_chart_colours_each_emotion_and_thins_long_tracks():
    from fer_core.charts import emotion_timeline
    from fer_core.render import COLORS_HEX

    rows = [
        {"time": i / 10, "track": t, "emotion": EMOTIONS[(i // 50 + t) % 7], "confidence": 0.5 + t / 10}
        for i in range(600)
        for t in (1, 2)
    ]
    fig = emotion_timeline(rows, max_points_per_track=100)
    assert [trace.name for trace in fig.data] == ["face #1", "face #2", *EMOTIONS]
    for emotion, key in zip(EMOTIONS, fig.data[2:]):  # the legend's colours are the points' colours
        assert key.marker.color.lower() == COLORS_HEX[emotion].lower()
    assert fig.data[0].line.color == fig.data[1].line.color and fig.data[0].line.dash != fig.data[1].line.dash
    for t, trace in zip((1, 2), fig.data):
        mine = [r for r in rows if r["track"] == t]
        assert len(trace.x) == 100 and trace.x[0] == mine[0]["time"] and trace.x[-1] == mine[-1]["time"]
        # Each point's class index sits on the colour scale's stop of that class's colour.
        scale = dict((round(stop * 6), colour) for stop, colour in trace.marker.colorscale)
        for x, y, colour_index in zip(trace.x, trace.y, trace.marker.color):
            row = next(r for r in mine if r["time"] == x)
            assert EMOTIONS[y] == row["emotion"] and scale[colour_index].lower() == COLORS_HEX[row["emotion"]].lower()
        assert abs(trace.customdata[0] - (0.5 + t / 10)) < 1e-9
    short = emotion_timeline(rows[:10])
    assert sum(len(trace.x) for trace in short.data if trace.legendgroup == "faces") == 10  # drawn whole
