"""Each browser session's files on the server, removed once the server has let the session go.

Uploaded batches and unpacked zips live in one folder per session, under one folder per server
process (`<temp>/fer-sessions-<pid>/<session id>~<token>/`). A daemon thread looks every
`sweep_interval()` seconds at which sessions the server still holds (a closed tab is held for
`server.disconnectedSessionTTL`, 120 s by default, so a reconnecting browser finds its files) and
removes the folders of the others, and the folders of server processes that are gone (a crash,
a kill). Nothing waits for Python's garbage collector, which could keep a closed session's
uploads on disk for half an hour.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import threading
import time
import uuid
from pathlib import Path

import streamlit as st
from streamlit.runtime import Runtime
from streamlit.runtime.scriptrunner_utils.script_run_context import get_script_run_ctx

SWEEP_SECONDS = 60.0
PREFIX = "fer-sessions-"
TOKEN_KEY = "session_files_token"

_started = threading.Lock()
_sweeper: threading.Thread | None = None


def sessions_root() -> Path:
    """This server process's folder of session folders."""
    return Path(tempfile.gettempdir()) / f"{PREFIX}{os.getpid()}"


def session_folder() -> Path:
    """The current browser session's folder (made on first use; the sweeper is started then)."""
    ctx = get_script_run_ctx()
    token = st.session_state.setdefault(TOKEN_KEY, uuid.uuid4().hex[:12])
    # The session's id (for the sweep) and a token of its own state: Streamlit's AppTest gives
    # every session one id, and two sessions must never share a folder.
    folder = sessions_root() / f"{ctx.session_id if ctx else 'no-session'}~{token}"
    folder.mkdir(parents=True, exist_ok=True)
    _start_sweeper()
    return folder


def new_session_subfolder(prefix: str) -> Path:
    """A new empty folder inside the current session's folder."""
    return Path(tempfile.mkdtemp(prefix=prefix, dir=session_folder()))


def live_session_ids() -> set[str] | None:
    """Ids of the sessions the server holds (connected or waiting for their browser), or None where
    that cannot be known (no server runtime, as under Streamlit's AppTest): then nothing is swept."""
    if not Runtime.exists():
        return None
    try:
        # Streamlit offers no public list of sessions; its session manager has one.
        return {info.session.id for info in Runtime.instance()._session_mgr.list_sessions()}
    except Exception:
        return None


def sweep(live: set[str] | None, root: Path | None = None) -> list[Path]:
    """Remove the folders of sessions not in `live` and those of server processes that are gone.

    Returns:
        The folders removed.
    """
    root = root or sessions_root()
    removed = []
    if live is not None and root.is_dir():
        for folder in root.iterdir():
            if folder.name.split("~")[0] not in live and folder.is_dir() and not folder.is_symlink():
                shutil.rmtree(folder, ignore_errors=True)
                removed.append(folder)
    for other in root.parent.glob(f"{PREFIX}*"):
        pid = other.name[len(PREFIX) :]
        if pid.isdigit() and int(pid) != os.getpid() and not _running(int(pid)) and not other.is_symlink():
            shutil.rmtree(other, ignore_errors=True)
            removed.append(other)
    return removed


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # another user's process
    return True


def sweep_interval() -> float:
    """Seconds between sweeps: SWEEP_SECONDS, or half the time the server holds a closed session."""
    from streamlit import config

    return max(1.0, min(SWEEP_SECONDS, float(config.get_option("server.disconnectedSessionTTL")) / 2))


def _sweep_forever() -> None:
    while True:
        time.sleep(sweep_interval())
        try:
            sweep(live_session_ids())
        except OSError:
            pass  # a folder that vanished meanwhile: the next round sees the rest


def _start_sweeper() -> None:
    global _sweeper
    with _started:
        if _sweeper is None and live_session_ids() is not None:
            sweep(live_session_ids())  # folders left by earlier server processes
            _sweeper = threading.Thread(target=_sweep_forever, name="fer-session-files", daemon=True)
            _sweeper.start()


def bound_uploads(manager, per_session_files: int, per_session_bytes: int, server_bytes: int) -> None:
    """Make the server's store of uploaded files refuse a file beyond the caps (HTTP 413).

    Streamlit keeps every uploaded file in memory until its widget drops it; its only cap is per
    file (`server.maxUploadSize`), so one session could hold gigabytes. Its upload route stores a
    file with `manager.add_file(session_id=..., file=...)`, which this wraps (once) on the
    instance: the sizes are summed from the manager's own table under its lock.
    """
    if getattr(manager, "_fer_bounded", False):
        return
    original = manager.add_file

    def add_file(session_id: str, file) -> None:
        with manager._lock:
            mine = manager.file_storage.get(session_id, {})
            replaced = mine.get(file.file_id)
            files = len(mine) + (replaced is None)
            held = sum(len(f.data) for f in mine.values()) - (len(replaced.data) if replaced else 0)
            everyone = sum(len(f.data) for s in manager.file_storage.values() for f in s.values())
        why = None
        if files > per_session_files:
            why = f"this browser tab already holds {files - 1} uploaded files (at most {per_session_files})"
        elif held + len(file.data) > per_session_bytes:
            why = f"this browser tab's uploads would pass {per_session_bytes >> 20} MB: remove some first"
        elif everyone + len(file.data) > server_bytes:
            why = "the server holds as many uploads as it can right now: try again in a few minutes"
        if why:
            from starlette.exceptions import HTTPException

            raise HTTPException(status_code=413, detail=why)
        original(session_id=session_id, file=file)

    manager.add_file = add_file
    manager._fer_bounded = True
