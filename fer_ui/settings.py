"""App settings: local mode (default, every feature) or demo mode (public link, read-only)."""

from __future__ import annotations

import os
from dataclasses import dataclass

import streamlit as st

_TRUE = ("1", "true", "yes", "on")


def _secret(name: str):
    try:
        return st.secrets.get(name)
    except Exception:  # no secrets.toml at all: Streamlit raises rather than returning None
        return None


@dataclass(frozen=True)
class AppSettings:
    """What this server allows.

    Attributes:
        demo: public demo mode: uploads only, nothing written on the server.
        max_upload_files: photos per batch.
        max_zip_bytes: total uncompressed size allowed from one zip.
        max_pixels: largest photo accepted, in pixels.
        max_upload_mb: per-file upload cap in MB (None: `.streamlit/config.toml`'s maxUploadSize).
    """

    demo: bool
    max_upload_files: int
    max_zip_bytes: int
    max_pixels: int
    max_upload_mb: int | None


def get_settings() -> AppSettings:
    """Settings from the environment (FER_DEMO_MODE) or `.streamlit/secrets.toml` (demo_mode)."""
    env = os.environ.get("FER_DEMO_MODE")
    demo = env.lower() in _TRUE if env is not None else str(_secret("demo_mode") or "").lower() in _TRUE
    if demo:
        settings = AppSettings(
            demo=True, max_upload_files=50, max_zip_bytes=100 << 20, max_pixels=12_000_000, max_upload_mb=50
        )
        _lock_down_server(settings)
        return settings
    return AppSettings(
        demo=False, max_upload_files=5000, max_zip_bytes=2 << 30, max_pixels=40_000_000, max_upload_mb=None
    )


def demo_notice(what: str) -> None:
    """Show that a feature is switched off in demo mode."""
    st.info(f"{what} is switched off on this public demo. Run the app locally to use it.", icon="🔒")


def _lock_down_server(settings: AppSettings) -> None:
    """Make the server itself refuse what the demo does not allow, not only the browser.

    The upload handler reads `server.maxUploadSize` on every request, so lowering it here
    makes the server reject a larger upload (HTTP 413) before reading its body, even one
    sent without the page. Streamlit offers no public call for server options, hence the
    internal `streamlit.config.set_option`. Tracebacks and server paths are not shown to
    the public (`client.showErrorDetails = "none"`).
    """
    from streamlit import config

    if config.get_option("server.maxUploadSize") > settings.max_upload_mb:
        config.set_option("server.maxUploadSize", settings.max_upload_mb)
    if config.get_option("client.showErrorDetails") != "none":
        st.set_option("client.showErrorDetails", "none")
