"""Streamlit-aware helpers shared by the pages (the only package besides pages/ that imports streamlit).

libsrtp (used by aiortc, behind streamlit-webrtc) must be loaded before TensorFlow: once
TensorFlow's bundled BoringSSL is in the process, `pylibsrtp`'s initialisation crashes the
interpreter (measured: segmentation fault on `import tensorflow; import aiortc`). Loading it
here, first, costs about 30 ms and makes any later order safe.
"""

import pylibsrtp  # noqa: F401
