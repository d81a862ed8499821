"""App settings: local mode (default, every feature) or demo mode (public link, read-only)."""

from __future__ import annotations

import re
from dataclasses import dataclass

import streamlit as st
from streamlit.runtime import Runtime
from streamlit.runtime.memory_uploaded_file_manager import MemoryUploadedFileManager

from fer_core.settings import DEMO_LIMITS, LOCAL_LIMITS, Environment, UploadLimits, is_true
from fer_ui.session_files import bound_uploads


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
        limits: caps on uploads (fer_core.settings: LOCAL_LIMITS or DEMO_LIMITS).
    """

    demo: bool
    limits: UploadLimits


def get_settings() -> AppSettings:
    """Settings from the environment (FER_DEMO_MODE) or `.streamlit/secrets.toml` (demo_mode)."""
    env = Environment.read().demo_mode
    demo = env if env is not None else is_true(_secret("demo_mode"))
    if demo:
        settings = AppSettings(demo=True, limits=DEMO_LIMITS)
        _lock_down_server(settings)
        return settings
    return AppSettings(demo=False, limits=LOCAL_LIMITS)


# An absolute path of two or more parts (its last part kept): "/srv/app/models/x/model.tflite"
_SERVER_PATH = re.compile(r"(?<![\w.:/])/(?:[^\s'\"(),;:/]+/)+([^\s'\"(),;:/]*)")


def for_public(text: object) -> str:
    """A message as the page may show it: on the public demo, server paths become their last part
    ("model.tflite"); on your own machine it is left whole."""
    text = str(text)
    if not get_settings().demo:
        return text
    return _SERVER_PATH.sub(lambda m: m.group(1) or "…", text)


def demo_notice(what: str) -> None:
    """Show that a feature is switched off in demo mode."""
    st.info(f"{what} is switched off on this public demo. Run the app locally to use it.", icon="🔒")


def _lock_down_server(settings: AppSettings) -> None:
    """Make the server itself refuse what the demo does not allow, not only the browser.

    The upload handler reads `server.maxUploadSize` on every request, so lowering it here
    makes the server reject a larger upload (HTTP 413) before reading its body, even one
    sent without the page. Streamlit offers no public call for server options, hence the
    internal `streamlit.config.set_option`. Tracebacks and server paths are not shown to
    the public (`client.showErrorDetails = "none"`). What the server holds of uploads at once is
    bounded per session and in all (`session_files.bound_uploads`).
    """
    from streamlit import config

    if config.get_option("server.maxUploadSize") > settings.limits.max_upload_mb:
        config.set_option("server.maxUploadSize", settings.limits.max_upload_mb)
    if config.get_option("client.showErrorDetails") != "none":
        st.set_option("client.showErrorDetails", "none")
    limits = settings.limits
    if limits.max_session_upload_bytes and limits.max_server_upload_bytes and Runtime.exists():
        manager = Runtime.instance().uploaded_file_mgr
        if isinstance(manager, MemoryUploadedFileManager):  # the store `streamlit run` uses
            bound_uploads(
                manager, limits.max_files + 10, limits.max_session_upload_bytes, limits.max_server_upload_bytes
            )
