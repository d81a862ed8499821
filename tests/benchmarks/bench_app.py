"""App start-up and memory: time to the first rendered page, and server RSS with the Live page streaming.

Starts the real server, opens it in headless Chromium (fake camera fed by FER-2013 faces),
streams for a while and reads the server's resident memory from /proc.

    .venv/bin/python -m tests.benchmarks.bench_app [--stream-seconds 20]
"""

from __future__ import annotations

import argparse
import os
import re
import tempfile
import time
from pathlib import Path

from tests.helpers import launch_chromium
from tests.test_app import free_port, start_server, stop_server
from tests.test_browser import moving_faces_video

REPO = Path(__file__).resolve().parents[2]


def rss_mb(pid: int) -> float:
    """Resident memory of a process and its children, in MB."""
    total = 0
    pids = [pid] + [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    for p in pids:
        for line in Path(f"/proc/{p}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                total += int(line.split()[1])
    return total / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stream-seconds", type=float, default=20)
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    video = Path(tempfile.mkdtemp()) / "faces.y4m"
    moving_faces_video(video)
    port = free_port()
    launched = time.perf_counter()
    server = start_server(port, dict(os.environ))
    healthy = time.perf_counter() - launched
    figures = {"health_ok_s": healthy, "rss_idle_mb": rss_mb(server.pid)}
    try:
        with sync_playwright() as p:
            browser = launch_chromium(p, video)
            page = browser.new_page()
            start = time.perf_counter()
            page.goto(f"http://127.0.0.1:{port}/")
            page.get_by_text("Model in use").wait_for(timeout=120_000)
            figures["first_page_render_s"] = time.perf_counter() - start
            figures["first_page_render_from_launch_s"] = time.perf_counter() - launched
            figures["rss_after_home_mb"] = rss_mb(server.pid)
            page.get_by_role("link", name="Live").click()
            frame = page.frame_locator("iframe[title*='streamlit_webrtc']").first
            frame.get_by_role("button", name=re.compile("start", re.I)).click(timeout=60_000)
            page.get_by_text(re.compile(r"face #\d+")).first.wait_for(timeout=60_000)
            peak = 0.0
            end = time.time() + args.stream_seconds
            while time.time() < end:
                peak = max(peak, rss_mb(server.pid))
                time.sleep(1)
            figures["rss_live_streaming_peak_mb"] = peak
            figures["live_panel"] = page.inner_text("body").split("Frames/s")[1][:60].replace("\n", " ")
            browser.close()
    finally:
        stop_server(server)
    for key, value in figures.items():
        print(f"{key:<36} {value:.2f}" if isinstance(value, float) else f"{key:<36} {value}")


if __name__ == "__main__":
    main()
