"""One process per run folder: the process training a run holds an advisory lock (flock) on
`<run>/.lock` for as long as it runs; the kernel frees it when that process ends, even killed.

Pages use `folder_held` to see a run trained by any process (the CLI's too) as running.
This module imports no TensorFlow.
"""

from __future__ import annotations

import fcntl
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

LOCK_FILE = ".lock"
ATTEMPTS = 20
"""Tries, 50 ms apart, before a held folder is reported busy: a page's `folder_held` probe holds
the lock for microseconds, and must never make a starting run give up."""


class FolderBusy(RuntimeError):
    """Another process is training the run in this folder.

    Attributes:
        holder: the pid that process wrote into the lock file ("" when unknown).
    """

    def __init__(self, run_dir: Path, holder: str):
        self.holder = holder
        who = f" (pid {holder})" if holder else ""
        super().__init__(f"{run_dir} is being trained by another process{who}: wait for it to end, or stop it first")


@contextmanager
def hold_folder(run_dir: Path) -> Iterator[None]:
    """Hold `run_dir` (which must exist) for this process until the block ends.

    Raises:
        FolderBusy: another process holds it.
    """
    handle = (run_dir / LOCK_FILE).open("a+")
    try:
        for attempt in range(ATTEMPTS):
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if attempt == ATTEMPTS - 1:
                    handle.seek(0)
                    raise FolderBusy(run_dir, handle.read().strip()) from None
                time.sleep(0.05)
        handle.seek(0)
        handle.truncate()
        handle.write(str(os.getpid()))
        handle.flush()
        yield
    finally:
        handle.close()


def process_alive(pid: int) -> bool:
    """Whether `pid` is a running (not zombie) process; reaps it if it is our finished child."""
    try:
        finished, _ = os.waitpid(pid, os.WNOHANG)
        if finished == pid:
            return False
    except ChildProcessError:
        pass  # not our child: fall through to the other checks
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    stat = Path(f"/proc/{pid}/stat")
    if stat.is_file():
        try:
            return stat.read_text().rsplit(")", 1)[1].split()[0] != "Z"
        except (OSError, IndexError):
            return True
    return True


def folder_held(run_dir: Path) -> bool:
    """Whether a process (this one included) is training the run in `run_dir` now.

    A process that is exiting (a zombie whose threads still hold its files for a moment after a
    kill) no longer counts.
    """
    path = run_dir / LOCK_FILE
    if not path.is_file():
        return False
    with path.open("a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip()
            return not holder.isdigit() or process_alive(int(holder))
        fcntl.flock(handle, fcntl.LOCK_UN)
        return False
