"""The README's Python example runs exactly as printed; the repository speaks of the project only."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.helpers import SHARED

REPO = Path(__file__).resolve().parents[1]
PHOTOS = SHARED.parent / "faces_in_photos"


def _python_example() -> str:
    readme = (REPO / "README.md").read_text()
    section = readme[readme.index("## In Python") :]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


def test_the_readme_python_example_runs_as_printed(tmp_path, monkeypatch, capsys):
    if not PHOTOS.is_dir():
        pytest.skip(f"photos not present at {PHOTOS}")
    shutil.copy(PHOTOS / "2008_001322.jpg", tmp_path / "photo.jpg")
    (tmp_path / "photos" / "more").mkdir(parents=True)
    shutil.copy(PHOTOS / "2009_004587.jpg", tmp_path / "photos" / "a.jpg")
    shutil.copy(PHOTOS / "2008_001009.jpg", tmp_path / "photos" / "more" / "b.jpg")
    monkeypatch.chdir(tmp_path)
    exec(compile(_python_example(), "README.md", "exec"), {"__name__": "readme"})
    printed = capsys.readouterr().out.splitlines()
    faces, counts = printed[:-1], printed[-1]
    assert len(faces) == 3 and all(
        line.split()[0] in ("angry", "disgust", "fear", "happy", "neutral", "sad", "surprise") for line in faces
    )
    assert "'ok'" in counts or "'low_confidence'" in counts
    assert (tmp_path / "results.csv").read_text().count("\n") == 1 + 4  # header + the 2 + 2 faces


# "this session" is a browser's session in the app's code; numbered and neighbouring sessions are work
SESSION_TALK = re.compile(r"\bsessions? \d+|\b(next|previous|earlier|later) session\b", re.I)
ABOUT_BROWSERS = re.compile(r"browser|streamlit|session_state|per session|each session|viewer", re.I)


def test_no_tracked_file_speaks_of_how_the_work_was_organised():
    files = subprocess.run(["git", "ls-files"], cwd=REPO, capture_output=True, text=True, check=True).stdout.split()
    found = []
    for name in files:
        path = REPO / name
        if path.suffix not in (".md", ".py", ".sh", ".toml", ".txt", ".json") or not path.is_file():
            continue
        for number, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
            if SESSION_TALK.search(line) and not ABOUT_BROWSERS.search(line):
                found.append(f"{name}:{number}: {line.strip()[:100]}")
    assert not found, "\n".join(found[:20])
