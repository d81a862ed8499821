"""User-given names (models, datasets, uploaded files) made safe before they touch the disk.

Every folder or file name that comes from a person (typed in a page, given on the command
line, or sent by a browser with an upload) goes through `check_name` or `name_from_text`,
and every path built from one goes through `safe_child`, so no name can be `.`, `..`, an
absolute path or a path with separators, and nothing lands outside its known root.
"""

from __future__ import annotations

import re
from pathlib import Path, PurePosixPath, PureWindowsPath

NAME_RULE = "1-80 characters: letters, digits, '.', '_' or '-', starting with a letter or digit"
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,79}")
_UNSAFE_CHARS = re.compile(r"[^A-Za-z0-9._-]+")


class UnsafeNameError(ValueError):
    """A user-given name cannot be used as a file or folder name; the message says why."""


class NameTakenError(UnsafeNameError):
    """The name is valid but something of that name already exists."""


def check_name(text: str, what: str = "name") -> str:
    """Return `text` unchanged if it is a safe single file or folder name.

    Raises:
        UnsafeNameError: empty, `.`/`..`, a path, or characters outside NAME_RULE.
    """
    if not isinstance(text, str) or not _NAME.fullmatch(text):
        raise UnsafeNameError(f"{what} must be {NAME_RULE}. Received: {what}={text!r}")
    return text


def name_from_text(text: str, fallback: str = "upload") -> str:
    """A safe name derived from free text such as an uploaded file's name (never raises).

    Directories are dropped (a browser may send `/any/dir/photos.zip`), runs of other
    characters become `-`, and an empty result becomes `fallback`.
    """
    last = PureWindowsPath(PurePosixPath(str(text)).name).name
    cleaned = _UNSAFE_CHARS.sub("-", last).strip("-.")[:80].rstrip("-.")
    return cleaned if cleaned and _NAME.fullmatch(cleaned) else fallback


def safe_child(root: Path, text: str, what: str = "name") -> Path:
    """`root / text` after checking `text` with `check_name` and that the result stays in `root`.

    Raises:
        UnsafeNameError: the name breaks the rule, or the path resolves outside `root`
            (an existing symlink pointing elsewhere).
    """
    child = root / check_name(text, what)
    if not child.resolve().is_relative_to(root.resolve()):
        raise UnsafeNameError(f"{what} {text!r} leads outside {root}")
    return child


def new_child_folder(root: Path, text: str, what: str = "name") -> Path:
    """Like `safe_child`, for a folder that must not exist yet (nothing is ever mixed or replaced).

    Raises:
        NameTakenError: something of that name is already in `root`.
        UnsafeNameError: the name breaks the rule.
    """
    child = safe_child(root, text, what)
    if child.exists() or child.is_symlink():
        raise NameTakenError(f"{what} {text!r} already exists in {root}: choose another")
    return child


def unique_name(name: str, taken: set[str]) -> str:
    """`name`, or `stem (2).ext`, `stem (3).ext`... so that it differs from every name in `taken`.

    Comparison ignores case, so the names also stay distinct on case-insensitive disks.
    """
    folded = {t.casefold() for t in taken}
    if name.casefold() not in folded:
        return name
    path = PurePosixPath(name)
    n = 2
    while True:
        candidate = str(path.with_name(f"{path.stem} ({n}){path.suffix}"))
        if candidate.casefold() not in folded:
            return candidate
        n += 1


def inside_relative(name: str) -> str | None:
    """`name` when it is a clean relative POSIX path (no leading `/`, no `.` or `..` part, no empty
    part), else None: a path from a results file that stays inside the folder it is joined to.
    Backslashes are ordinary characters here (a Linux file name may hold them)."""
    parts = name.split("/")
    if not name or name.startswith("/") or any(p in ("", ".", "..") for p in parts):
        return None
    return name
