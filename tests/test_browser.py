"""A real browser on the Live page: headless Chromium with a fake camera showing FER-2013 faces."""

from __future__ import annotations

import os
import re
import shutil
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from fer_core.classes import EMOTIONS
from tests.helpers import compose_scene, fer_samples, launch_chromium
from tests.test_app import free_port, start_server, stop_server

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


@pytest.fixture
def live_server(shared_fer, tiny_models_dir, tmp_path):
    """The real app on a loopback port plus a fake-camera video of moving FER-2013 faces: (port, video)."""
    if CHROMIUM is None:
        pytest.skip("Chromium is not installed (apt-get install chromium); .ci/run installs it")
    video = tmp_path / "faces.y4m"
    moving_faces_video(video, n_frames=30)
    env = dict(os.environ)
    # The shipped model when there is one, else the tiny test model (labels then mean little, but flow is real).
    env["FER_MODELS_DIR"] = str(REPO / "models" if any((REPO / "models").glob("*/card.json")) else tiny_models_dir)
    port = free_port()
    server = start_server(port, env)
    ARTIFACTS.mkdir(exist_ok=True)
    yield port, video
    stop_server(server)


def test_live_page_in_chromium(live_server):
    from playwright.sync_api import sync_playwright

    port, video = live_server
    with sync_playwright() as p:
        browser = launch_chromium(p, video)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        _start_live(page, port)
        found = _wait_for_face(page)
        if not found:  # the WebRTC connection sometimes drops right after connecting: retry once
            page.screenshot(path=str(ARTIFACTS / "live-first-attempt.png"))
            _start_live(page, port)
            found = _wait_for_face(page)
        time.sleep(2)
        page.screenshot(path=str(ARTIFACTS / "live.png"), full_page=True)
        text = page.inner_text("body")
        browser.close()
    assert found, "the Live page never reported a face"
    # A deep link on a fresh server still shows the app's own menu (titles), not raw file names.
    assert "Evaluate" in text and "\napp\n" not in text
    assert re.search(r"face #\d+ (angry|disgust|fear|happy|neutral|sad|surprise) \d+%", text), text[-2000:]


def _start_live(page, port: int) -> None:
    page.goto(f"http://127.0.0.1:{port}/live", wait_until="domcontentloaded", timeout=120_000)
    frame = page.frame_locator("iframe[title*='streamlit_webrtc']").first
    frame.get_by_role("button", name=re.compile("start", re.I)).click(timeout=120_000)


def _wait_for_face(page, timeout_ms: int = 90_000) -> bool:
    try:
        page.get_by_text(re.compile(r"face #\d+")).first.wait_for(timeout=timeout_ms)
        return True
    except Exception:
        return False


def test_three_live_streams_and_a_batch_upload_at_once(live_server, tmp_path):
    """Separate browser sessions keep working side by side and never see each other's results."""
    from playwright.sync_api import expect, sync_playwright

    port, video = live_server
    photo = tmp_path / "only-mine.png"
    cv2.imwrite(str(photo), np.full((80, 80, 3), 128, np.uint8))
    with sync_playwright() as p:
        browser = launch_chromium(p, video)
        live_pages = [browser.new_context(viewport={"width": 1400, "height": 1000}).new_page() for _ in range(3)]
        logs = [[] for _ in live_pages]
        for i, page in enumerate(live_pages):
            page.on("console", lambda m, i=i: logs[i].append(f"{time.time():.1f} console {m.type}: {m.text}"))
            page.on("pageerror", lambda e, i=i: logs[i].append(f"{time.time():.1f} pageerror: {e}"))
            page.on("framenavigated", lambda f, i=i: logs[i].append(f"{time.time():.1f} nav: {f.url}"))
            page.on("crash", lambda _page, i=i: logs[i].append(f"{time.time():.1f} CRASH"))
        for page in live_pages:
            _start_live(page, port)
        # Read each session's numbers as soon as its faces show: the timeline keeps the last 60 s of
        # tracks, so every number a young stream has handed out is still on its page.
        ok, retried, first_ids = [], [], []
        for page in live_pages:
            found = _wait_for_face(page)
            retried.append(not found)
            if not found:  # one retry: the WebRTC connection sometimes drops right after connecting
                _start_live(page, port)
                found = _wait_for_face(page)
            ok.append(found)
            first_ids.append({int(m) for m in re.findall(r"face #(\d+)", page.inner_text("body"))})
        batch = browser.new_context(viewport={"width": 1400, "height": 1000}).new_page()
        batch.goto(f"http://127.0.0.1:{port}/batch", wait_until="domcontentloaded", timeout=120_000)
        # Generous waits: three streams keep both cores busy, and each step is a server round trip.
        uploader = batch.locator("input[type=file]").first
        uploader.wait_for(state="attached", timeout=180_000)
        uploader.set_input_files(str(photo), timeout=180_000)
        batch.get_by_text("only-mine.png").first.wait_for(timeout=180_000)  # the upload arrived
        start = batch.get_by_role("button", name="Label photos")
        expect(start).to_be_enabled(timeout=180_000)
        start.click(timeout=180_000)
        batch.get_by_text("Rows per status").wait_for(timeout=240_000)
        still = [_wait_for_face(page) for page in live_pages]  # the streams kept going through the batch
        for i, page in enumerate(live_pages):
            if not still[i]:  # keep the evidence, then restart once as a user would
                page.screenshot(path=str(ARTIFACTS / f"live-session-{i}-stalled.png"), full_page=True)
                (ARTIFACTS / f"live-session-{i}-stalled.txt").write_text(
                    f"{time.time():.1f} {page.url}\n" + page.content()[:3000] + "\n" + "\n".join(logs[i][-200:])
                )
                _start_live(page, port)
                still[i] = _wait_for_face(page)
        texts = [page.inner_text("body") for page in live_pages]
        for i, page in enumerate(live_pages):
            page.screenshot(path=str(ARTIFACTS / f"live-session-{i}.png"))
        batch.screenshot(path=str(ARTIFACTS / "batch-session.png"), full_page=True)
        batch_text = batch.inner_text("body")
        browser.close()
    assert all(ok), ok
    assert all(still), still
    for ids, again, text in zip(first_ids, retried, texts):
        # Each session numbers its own faces from #1 (a restarted stream's numbers go on from
        # its first try): no tracker shared between sessions.
        assert ids and (again or 1 in ids) and max(ids) <= 6, ids
        assert "only-mine.png" not in text
    assert "Cancelled" not in batch_text


def test_clicking_a_confusion_matrix_cell_shows_its_images(live_server):
    """Plotly's point selection, clicked in a real browser, drives the Evaluate page's drill-down."""
    from playwright.sync_api import sync_playwright

    port, video = live_server
    with sync_playwright() as p:
        browser = launch_chromium(p, video)
        page = browser.new_page(viewport={"width": 1400, "height": 1400})
        page.goto(f"http://127.0.0.1:{port}/evaluate", wait_until="domcontentloaded", timeout=120_000)
        page.get_by_text("Drill down into a cell").wait_for(timeout=180_000)
        # The click layer's markers: one per cell, true class outer, predicted class inner.
        points = page.locator(".scatterlayer .trace .points path")
        points.first.wait_for(state="attached", timeout=60_000)
        true, predicted = EMOTIONS.index("happy"), EMOTIONS.index("sad")
        points.nth(true * len(EMOTIONS) + predicted).click(force=True)
        page.get_by_text(re.compile(r"images are happy and predicted sad")).wait_for(timeout=60_000)
        page.screenshot(path=str(ARTIFACTS / "evaluate-cell-click.png"), full_page=True)
        browser.close()


def test_a_closed_demo_sessions_uploads_leave_the_server(shared_fer, tiny_models_dir, tmp_path):
    """Demo mode: the batch a browser uploaded is removed from the server's disk soon after the tab
    closes (the server holds a closed session for disconnectedSessionTTL, 3 s here)."""
    from playwright.sync_api import expect, sync_playwright

    if CHROMIUM is None:
        pytest.skip("Chromium is not installed (apt-get install chromium); .ci/run installs it")
    from fer_ui.session_files import PREFIX

    env = dict(os.environ, FER_DEMO_MODE="1", FER_MODELS_DIR=str(tiny_models_dir))
    photo = tmp_path / "upload-me.png"
    cv2.imwrite(str(photo), np.full((80, 80, 3), 128, np.uint8))
    server = start_server(free_port(), env, ("--server.disconnectedSessionTTL", "3"))
    port = int(server.args[server.args.index("--server.port") + 1])
    root = Path(tempfile.gettempdir()) / f"{PREFIX}{server.pid}"
    try:
        with sync_playwright() as p:
            browser = launch_chromium(p)
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.goto(f"http://127.0.0.1:{port}/batch", wait_until="domcontentloaded", timeout=120_000)
            uploader = page.locator("input[type=file]").first
            uploader.wait_for(state="attached", timeout=120_000)
            uploader.set_input_files(str(photo), timeout=120_000)
            start = page.get_by_role("button", name="Label photos")
            expect(start).to_be_enabled(timeout=120_000)
            start.click()
            page.get_by_text("Rows per status").wait_for(timeout=120_000)
            stored = list(root.glob("*/batch/*/upload-me.png"))
            assert len(stored) == 1, sorted(root.rglob("*"))
            page.close()
            deadline = time.time() + 60
            while stored[0].parent.exists() and time.time() < deadline:
                time.sleep(0.5)
            browser.close()
        assert not stored[0].parent.exists(), "the closed session's upload is still on the server"
        assert not any(root.iterdir())
    finally:
        stop_server(server)
