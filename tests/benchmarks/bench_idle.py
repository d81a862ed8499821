"""Server CPU while a tab is open and nobody does anything (issue: flows, the server).

Starts the real server twice in one run, opens the home page in headless Chromium and, once
it has rendered, reads the server's CPU time from /proc over a quiet interval:

- as shipped (`.streamlit/config.toml`: `fileWatcherType = "none"`);
- the baseline: Streamlit's default file watcher (`STREAMLIT_SERVER_FILE_WATCHER_TYPE=auto`),
  which watches the repository and the `.venv` inside it.

    .venv/bin/python -m tests.benchmarks.bench_idle [--seconds 30]
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

from tests.helpers import launch_chromium
from tests.test_app import free_port, start_server, stop_server

TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process and its reaped children, in seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    utime, stime, cutime, cstime = (int(v) for v in fields[11:15])
    return (utime + stime + cutime + cstime) / TICKS


def idle_share(env: dict, seconds: float) -> float:
    """Share of one core the server uses while one rendered tab stays open and idle."""
    from playwright.sync_api import sync_playwright

    server = start_server(free_port(), env)
    port = int(server.args[server.args.index("--server.port") + 1])
    try:
        with sync_playwright() as p:
            browser = launch_chromium(p)
            page = browser.new_page()
            page.goto(f"http://127.0.0.1:{port}/")
            page.get_by_text("Model in use").wait_for(timeout=120_000)
            time.sleep(5)  # let start-up work settle
            before, start = cpu_seconds(server.pid), time.perf_counter()
            time.sleep(seconds)
            share = (cpu_seconds(server.pid) - before) / (time.perf_counter() - start)
            browser.close()
    finally:
        stop_server(server)
    return share


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=30)
    args = parser.parse_args()
    shipped = idle_share(dict(os.environ), args.seconds)
    watching = idle_share({**os.environ, "STREAMLIT_SERVER_FILE_WATCHER_TYPE": "auto"}, args.seconds)
    print(f"idle server CPU, as shipped (no file watcher): {shipped:.1%} of a core")
    print(f"idle server CPU, Streamlit's default watcher:  {watching:.1%} of a core")


if __name__ == "__main__":
    main()
