"""Several people on the Live page at once: frames each stream gets processed, and dropped streams.

Starts the real server once per configuration, opens N headless Chromium sessions (fake camera
fed by FER-2013 faces), presses START in each and, after a warm-up, counts the frames each
session's panel reports over a window. The baseline is Streamlit's default of a forced
`gc.collect(2)` after every script run (`runner.postScriptGC = true`); the app ships with it off.

    .venv/bin/python -m tests.benchmarks.bench_viewers [--viewers 3] [--seconds 60]
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import tempfile
import time
from pathlib import Path

from tests.helpers import launch_chromium
from tests.test_app import free_port, start_server, stop_server
from tests.test_browser import moving_faces_video

REPO = Path(__file__).resolve().parents[2]
FRAMES = re.compile(r"Frames processed: (\d+)")


def _frames(page) -> int | None:
    try:
        found = FRAMES.search(page.inner_text("body", timeout=10_000))
    except Exception:  # a crashed or closed page
        return None
    return int(found.group(1)) if found else None


def measure(video: Path, viewers: int, seconds: float, post_script_gc: bool) -> dict:
    """Frames/s per viewer over `seconds` after all streams run, and how many streams dropped."""
    from playwright.sync_api import sync_playwright

    port = free_port()
    env = {**os.environ, "STREAMLIT_RUNNER_POST_SCRIPT_GC": str(post_script_gc).lower()}
    env.setdefault("FER_MODELS_DIR", str(REPO / "models"))
    server = start_server(port, env)
    dropped = [False] * viewers
    try:
        with sync_playwright() as p:
            browser = launch_chromium(p, video)
            pages = [browser.new_context(viewport={"width": 1400, "height": 1000}).new_page() for _ in range(viewers)]
            for i, page in enumerate(pages):

                def watch(message, i=i):
                    text = message.text
                    if "connectionstatechange" in text and ("disconnected" in text or "failed" in text):
                        dropped[i] = True

                page.on("console", watch)
                page.on("pageerror", lambda e, i=i: dropped.__setitem__(i, True))
            for page in pages:
                page.goto(f"http://127.0.0.1:{port}/live", wait_until="domcontentloaded", timeout=120_000)
                frame = page.frame_locator("iframe[title*='streamlit_webrtc']").first
                frame.get_by_role("button", name=re.compile("start", re.I)).click(timeout=120_000)
            for page in pages:
                page.get_by_text(re.compile(r"face #\d+")).first.wait_for(timeout=120_000)
            time.sleep(5)
            before = [_frames(page) for page in pages]
            start = time.perf_counter()
            time.sleep(seconds)
            after = [_frames(page) for page in pages]
            elapsed = time.perf_counter() - start
            browser.close()
    finally:
        stop_server(server)
    rates = [(b - a) / elapsed if a is not None and b is not None else 0.0 for a, b in zip(before, after)]
    return {"rates": rates, "dropped": sum(dropped)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--viewers", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=60)
    args = parser.parse_args()
    video = Path(tempfile.mkdtemp()) / "faces.y4m"
    moving_faces_video(video, n_frames=30)
    print(f"{args.viewers} viewers, {args.seconds:.0f} s window; frames/s processed per viewer")
    print(f"{'configuration':<44} {'per viewer':<22} {'median':>7} {'total':>6} {'dropped':>8}")
    configurations = [("postScriptGC = true (Streamlit's default)", True), ("postScriptGC = false (shipped)", False)]
    for label, gc_on in configurations:
        result = measure(video, args.viewers, args.seconds, gc_on)
        rates = result["rates"]
        per = " ".join(f"{r:.1f}" for r in rates)
        print(
            f"{label:<44} {per:<22} {statistics.median(rates):>7.1f} {sum(rates):>6.1f} "
            f"{result['dropped']:>5}/{args.viewers}"
        )


if __name__ == "__main__":
    main()
