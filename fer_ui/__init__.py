"""Streamlit-aware helpers shared by the pages (the only package besides pages/ that imports streamlit).

libsrtp (used by aiortc, behind streamlit-webrtc) must be loaded before TensorFlow: once
TensorFlow's bundled BoringSSL is in the process, `pylibsrtp`'s initialisation crashes the
interpreter (measured: segmentation fault on `import tensorflow; import aiortc`). Loading it
here, first, costs about 30 ms and makes any later order safe.
"""

import pylibsrtp  # noqa: F401


def use_router() -> None:
    """Make sure the page runs under app.py's `st.navigation` router.

    Streamlit treats a `pages/` folder as its older multipage mode until `st.navigation` has
    run once in the server process, so a fresh server's first deep link (e.g. /live) would run
    the page file alone, with an automatic menu of raw file names. Switching the mode off and
    rerunning sends the request through app.py, which keeps the same page. Streamlit's AppTest
    resets that mode before every run (it behaves like a fresh server each time), where a rerun
    would only drop the run's button clicks, so it is left alone there.
    """
    from unittest.mock import Mock

    import streamlit as st
    from streamlit.runtime import Runtime
    from streamlit.runtime.pages_manager import PagesManager

    if PagesManager.uses_pages_directory and not isinstance(Runtime.instance(), Mock):
        PagesManager.uses_pages_directory = False
        st.rerun()
