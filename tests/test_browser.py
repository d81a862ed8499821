"""A real browser on the Live page: headless Chromium with a fake camera showing FER-2013 faces."""

from __future__ import annotations

import os
import re
import shutil
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from tests.helpers import compose_scene, fer_samples, launch_chromium
from tests.test_app import free_port, start_server

REPO = Path(__file__).resolve().parents[1]
ARTIFACTS = REPO / "test-artifacts"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")

pytestmark = [pytest.mark.slow, pytest.mark.browser]


def write_y4m(path: Path, frames: list[np.ndarray], fps: int = 15) -> None:
    """Write BGR frames as a YUV4MPEG2 (4:2:0) file, the format Chromium's fake camera reads."""
    height, width = frames[0].shape[:2]
    with path.open("wb") as f:
        f.write(f"YUV4MPEG2 W{width} H{height} F{fps}:1 Ip A1:1 C420jpeg\n".encode())
        for frame in frames:
            f.write(b"FRAME\n")
            f.write(cv2.cvtColor(frame, cv2.COLOR_BGR2YUV_I420).tobytes())


def moving_faces_video(path: Path, n_frames: int = 45) -> None:
    """Two FER-2013 faces drifting across a textured background."""
    faces = [cv2.imread(str(p), cv2.IMREAD_GRAYSCALE) for p, _ in fer_samples("test", per_class=1)[2:4]]
    frames = []
    for i in range(n_frames):
        shift = int(20 * np.sin(i / n_frames * 2 * np.pi))
        scene, _ = compose_scene(faces, face_px=170, offsets=[(60 + shift, 120), (380 - shift, 140)], seed=1)
        frames.append(scene)
    write_y4m(path, frames)


def test_live_page_in_chromium(shared_fer, tiny_models_dir, tmp_path):
    if CHROMIUM is None:
        pytest.skip("Chromium is not installed (apt-get install chromium); .ci/run installs it")
    from playwright.sync_api import sync_playwright

    video = tmp_path / "faces.y4m"
    moving_faces_video(video)
    port = free_port()
    env = dict(os.environ)
    # The shipped model when there is one, else the tiny test model (labels then mean little, but flow is real).
    env["FER_MODELS_DIR"] = str(REPO / "models" if any((REPO / "models").glob("*/card.json")) else tiny_models_dir)
    server = start_server(port, env)
    ARTIFACTS.mkdir(exist_ok=True)
    try:
        with sync_playwright() as p:
            browser = launch_chromium(p, video)
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.goto(f"http://127.0.0.1:{port}/live", wait_until="networkidle")
            page.get_by_text("Live", exact=True).first.wait_for(timeout=60_000)
            found = False
            for attempt in range(2):  # the WebRTC connection sometimes drops right after connecting
                frame = page.frame_locator("iframe[title*='streamlit_webrtc']").first
                frame.get_by_role("button", name=re.compile("start", re.I)).click(timeout=60_000)
                try:
                    page.get_by_text(re.compile(r"face #\d+")).first.wait_for(timeout=60_000)
                    found = True
                    break
                except Exception:
                    page.screenshot(path=str(ARTIFACTS / f"live-attempt-{attempt}.png"))
                    stop = frame.get_by_role("button", name=re.compile("stop", re.I))
                    if stop.count():
                        stop.click()
            time.sleep(2)
            page.screenshot(path=str(ARTIFACTS / "live.png"), full_page=True)
            text = page.inner_text("body")
            browser.close()
    finally:
        server.terminate()
        server.wait(20)
    assert found, "the Live page never reported a face"
    # A deep link on a fresh server still shows the app's own menu (titles), not raw file names.
    assert "Evaluate" in text and "\napp\n" not in text
    assert re.search(r"face #\d+ (angry|disgust|fear|happy|neutral|sad|surprise) \d+%", text), text[-2000:]
