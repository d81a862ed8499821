"""The Dockerfile's install steps, replayed here (no Docker engine on CI): clean venv, same files, boot."""

from __future__ import annotations

import fnmatch
import json
import os
import re
import shutil
import subprocess
import urllib.request
from pathlib import Path

import pytest

from tests.test_app import free_port, stop_server

REPO = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow


def dockerfile_steps() -> dict:
    text = (REPO / "Dockerfile").read_text()
    run = re.search(r"^RUN (python -m venv .*)$", text, re.M).group(1)
    cmd = json.loads(re.search(r"^CMD (\[.*\])$", text, re.M).group(1))
    health = re.search(r"urlopen\('([^']+)'", text).group(1)
    return {"run": run, "cmd": cmd, "health": health}


def copy_context(target: Path) -> None:
    """Copy the build context the way `COPY . .` does, leaving out what .dockerignore lists."""
    patterns = [p.strip() for p in (REPO / ".dockerignore").read_text().splitlines() if p.strip()]

    def ignored(rel: str) -> bool:
        return any(
            fnmatch.fnmatch(rel, p)
            or fnmatch.fnmatch(rel, p.removeprefix("**/"))
            or rel.split("/")[0] == p
            or fnmatch.fnmatch(rel.split("/")[-1], p.removeprefix("**/"))
            for p in patterns
        )

    for path in REPO.rglob("*"):
        rel = path.relative_to(REPO).as_posix()
        if (
            path.is_file()
            and not ignored(rel)
            and not any(ignored("/".join(rel.split("/")[: i + 1])) for i in range(rel.count("/")))
        ):
            (target / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, target / rel)


def test_dockerfile_install_and_boot(tmp_path):
    steps = dockerfile_steps()
    app, venv = tmp_path / "app", tmp_path / "venv"
    app.mkdir()
    copy_context(app)
    assert (app / "app.py").is_file() and (app / "models").is_dir()
    assert not (app / ".venv").exists() and not (app / "tests").exists()
    env = {**os.environ, "VENV": str(venv)}
    env.pop("FER_MODELS_DIR", None)
    install = steps["run"].replace("--no-cache-dir ", "")  # reuse the pip cache here; the image build cannot
    subprocess.run(["bash", "-c", install], cwd=app, env=env, check=True, timeout=1500)
    port = free_port()
    cmd = [str(venv / "bin" / "streamlit") if c == "/opt/venv/bin/streamlit" else c for c in steps["cmd"]]
    cmd = [f"--server.port={port}" if c.startswith("--server.port") else c for c in cmd]
    cmd = ["--server.address=127.0.0.1" if c.startswith("--server.address") else c for c in cmd]
    proc = subprocess.Popen(
        cmd, cwd=app, env={**env, "FER_DEMO_MODE": "1"}, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    try:
        import time

        deadline = time.time() + 120
        body = b""
        while time.time() < deadline and body != b"ok":
            try:
                body = urllib.request.urlopen(steps["health"].replace("8501", str(port)), timeout=3).read()
            except OSError:
                time.sleep(1)
        assert body == b"ok"
        page = urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5).read()
        assert b"<html" in page.lower()
    finally:
        stop_server(proc)
