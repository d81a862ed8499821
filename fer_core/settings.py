"""Every setting that comes from the environment, and the limits on what users upload, in one place.

Environment variables (each optional):

- `FER_MODELS_DIR`: the model registry (default: the repository's `models/`).
- `FER_DATA_DIR`: saved datasets and unpacked uploads (default: `data/` in the repository).
- `FER_RUNS_DIR`: training run folders (default: `runs/` in the repository).
- `FER_YUNET_MODEL`: a YuNet ONNX file instead of the shipped one.
- `FER_DEMO_MODE`: `1`/`true`/`yes`/`on` for a public, read-only demo (else the app's secrets decide).
- `FER_ICE_SERVERS`: JSON list of WebRTC ICE (STUN/TURN) servers for the Live page.

`Environment.read()` reads them all at once; callers read it when they need a value, so a
test (or a user) that changes a variable is followed without restarting anything.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from fer_core.imageio import MAX_PIXELS

REPO_ROOT = Path(__file__).resolve().parent.parent

_TRUE = ("1", "true", "yes", "on")


@dataclass(frozen=True)
class Environment:
    """The FER_* environment variables, parsed (None where unset)."""

    models_dir: Path
    data_dir: Path
    runs_dir: Path
    yunet_model: Path | None
    demo_mode: bool | None
    ice_servers: str | None

    @classmethod
    def read(cls) -> Environment:
        env = os.environ
        demo = env.get("FER_DEMO_MODE")
        return cls(
            models_dir=Path(env.get("FER_MODELS_DIR") or REPO_ROOT / "models"),
            data_dir=Path(env.get("FER_DATA_DIR") or REPO_ROOT / "data"),
            runs_dir=Path(env.get("FER_RUNS_DIR") or REPO_ROOT / "runs"),
            yunet_model=Path(env["FER_YUNET_MODEL"]) if env.get("FER_YUNET_MODEL") else None,
            demo_mode=None if demo is None else is_true(demo),
            ice_servers=env.get("FER_ICE_SERVERS") or None,
        )


def is_true(text: object) -> bool:
    """Whether a setting's text means yes ("1", "true", "yes", "on", any case)."""
    return str(text or "").strip().lower() in _TRUE


@dataclass(frozen=True)
class UploadLimits:
    """Caps on what one batch or labelled set may unpack and decode.

    Attributes:
        max_files: files per batch.
        max_total_bytes: uncompressed bytes per batch (zips included).
        max_pixels: largest photo decoded, in pixels (larger ones are refused unread).
        max_upload_mb: per-file upload cap in MB (None: `.streamlit/config.toml`'s maxUploadSize).
        max_session_upload_bytes: what the server holds of one browser session's uploads at once
            (every page's uploaders together; None: no cap).
        max_server_upload_bytes: what it holds of all sessions' uploads at once (None: no cap).
    """

    max_files: int = 5000
    max_total_bytes: int = 2 << 30
    max_pixels: int = MAX_PIXELS
    max_upload_mb: int | None = None
    max_session_upload_bytes: int | None = None
    max_server_upload_bytes: int | None = None


LOCAL_LIMITS = UploadLimits()
"""On your own machine."""

DEMO_LIMITS = UploadLimits(
    max_files=50,
    max_total_bytes=100 << 20,
    max_pixels=12_000_000,
    max_upload_mb=50,
    max_session_upload_bytes=200 << 20,  # a full batch, and a zip or a clip on another page
    max_server_upload_bytes=1 << 30,
)
"""On a public demo: a shared server, strangers' uploads."""
