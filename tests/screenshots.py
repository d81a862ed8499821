"""Screenshots of every page for the README, taken from the real app in headless Chromium.

Starts the app on a loopback port with the shipped models, feeds the Live page a fake camera of
moving FER-2013 faces, labels two real group photos on Batch, evaluates the shipped default on
20 FER-2013 test faces per class, and writes small PNGs (960 px wide) to docs/screenshots/.

    .venv/bin/python -m tests.screenshots
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

from tests.helpers import SHARED, launch_chromium
from tests.test_app import free_port, start_server, stop_server
from tests.test_browser import moving_faces_video

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "docs" / "screenshots"
PHOTOS = SHARED.parent / "faces_in_photos"
WIDTH = 960


def small_set(folder: Path, per_class: int = 20) -> Path:
    """A labelled set of the first FER-2013 test faces of each class."""
    for emotion_dir in sorted((SHARED / "test").iterdir()):
        target = folder / emotion_dir.name
        target.mkdir(parents=True)
        for path in sorted(emotion_dir.glob("*.jpg"))[:per_class]:
            shutil.copy(path, target / path.name)
    return folder


def save(page, name: str) -> Path:
    """A screenshot of the page's viewport, scaled to WIDTH px and stored as PNG."""
    raw = page.screenshot()
    image = cv2.imdecode(np.frombuffer(raw, np.uint8), cv2.IMREAD_COLOR)
    scale = WIDTH / image.shape[1]
    image = cv2.resize(image, (WIDTH, round(image.shape[0] * scale)), interpolation=cv2.INTER_AREA)
    path = OUT / f"{name}.png"
    cv2.imwrite(str(path), image, [cv2.IMWRITE_PNG_COMPRESSION, 9])
    print(f"{path.relative_to(REPO)}: {path.stat().st_size / 1e3:.0f} KB")
    return path


def main() -> None:
    from playwright.sync_api import expect, sync_playwright

    OUT.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        video = tmp / "faces.y4m"
        moving_faces_video(video, n_frames=30)
        labelled = small_set(tmp / "fer2013-test-sample")
        env = dict(os.environ, FER_MODELS_DIR=str(REPO / "models"), FER_DATA_DIR=str(tmp / "data"))
        port = free_port()
        server = start_server(port, env)
        try:
            with sync_playwright() as p:
                browser = launch_chromium(p, video)
                page = browser.new_page(viewport={"width": 1280, "height": 860})
                url = f"http://127.0.0.1:{port}"

                page.goto(url, wait_until="domcontentloaded", timeout=120_000)
                page.get_by_text("Model in use").wait_for(timeout=180_000)
                time.sleep(2)
                save(page, "home")

                page.goto(f"{url}/live", wait_until="domcontentloaded", timeout=120_000)
                frame = page.frame_locator("iframe[title*='streamlit_webrtc']").first
                for _ in range(2):  # the WebRTC connection sometimes drops once right after connecting
                    frame.get_by_role("button", name=re.compile("start", re.I)).click(timeout=120_000)
                    try:
                        page.get_by_text(re.compile(r"face #\d+")).first.wait_for(timeout=90_000)
                        break
                    except Exception:
                        continue
                time.sleep(4)
                save(page, "live")

                page.goto(f"{url}/batch", wait_until="domcontentloaded", timeout=120_000)
                uploader = page.locator("input[type=file]").first
                uploader.wait_for(state="attached", timeout=120_000)
                uploader.set_input_files([str(PHOTOS / "2008_001322.jpg"), str(PHOTOS / "2009_004587.jpg")])
                start = page.get_by_role("button", name="Label photos")
                expect(start).to_be_enabled(timeout=120_000)
                start.click()
                page.get_by_text("Rows per status").wait_for(timeout=180_000)
                page.get_by_text("Results: review the labels").scroll_into_view_if_needed()
                time.sleep(2)
                save(page, "batch")

                page.goto(f"{url}/evaluate", wait_until="domcontentloaded", timeout=120_000)
                path_box = page.get_by_label("Path (class folders or fer2013.csv)")
                path_box.fill(str(labelled))
                path_box.press("Enter")
                page.get_by_text("Macro-F1").first.wait_for(timeout=300_000)
                time.sleep(3)
                save(page, "evaluate")

                page.goto(f"{url}/train", wait_until="domcontentloaded", timeout=120_000)
                page.get_by_role("button", name=re.compile("Start training")).wait_for(timeout=180_000)
                time.sleep(2)
                save(page, "train")
                browser.close()
        finally:
            stop_server(server)


if __name__ == "__main__":
    main()
