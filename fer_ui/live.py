"""Live-page helpers: the WebRTC configuration, the frame callback and the polling panel."""

from __future__ import annotations

import json

import pandas as pd
import streamlit as st

from fer_core.charts import emotion_timeline
from fer_core.imageio import encode_jpeg
from fer_core.live import LiveProcessor
from fer_core.settings import Environment
from fer_ui.settings import for_public


def rtc_configuration() -> dict:
    """ICE servers from `FER_ICE_SERVERS` (JSON list) or secrets `[webrtc] ice_servers`; none by default.

    With no servers, browser and app connect on the same machine or LAN. A hosted app
    needs a TURN server (see the README).
    """
    raw = Environment.read().ice_servers
    servers = []
    if raw:
        try:
            servers = json.loads(raw)
        except json.JSONDecodeError:
            st.warning("FER_ICE_SERVERS is not valid JSON; ignoring it.")
    else:
        try:
            servers = list(st.secrets.get("webrtc", {}).get("ice_servers", []))
        except Exception:  # no secrets file
            servers = []
    return {"iceServers": [dict(s) for s in servers]}


def make_frame_callback(processor: LiveProcessor):
    """The streamlit-webrtc video callback: av frame in, annotated av frame out (no st.* calls)."""
    import av

    def callback(frame: av.VideoFrame) -> av.VideoFrame:
        image = frame.to_ndarray(format="bgr24")
        return av.VideoFrame.from_ndarray(processor.process(image), format="bgr24")

    return callback


def start_stream(processor: LiveProcessor, key: str) -> None:
    """The WebRTC widget; if WebRTC cannot start here, say so and leave the fallbacks working."""
    try:
        from streamlit_webrtc import WebRtcMode, webrtc_streamer

        webrtc_streamer(
            key=key,
            mode=WebRtcMode.SENDRECV,
            rtc_configuration=rtc_configuration(),
            video_frame_callback=make_frame_callback(processor),
            # Ask for the camera's 640x480 (browsers otherwise may start at 320x240).
            media_stream_constraints={"video": {"width": {"ideal": 640}, "height": {"ideal": 480}}, "audio": False},
            async_processing=True,
        )
    except Exception as e:  # e.g. no Streamlit server behind the script (tests) or a broken WebRTC stack
        st.warning(
            f"Live video is unavailable here ({type(e).__name__}: {e}). Use the Snapshot or Video clip tab instead."
        )


@st.fragment(run_every=1.0)
def live_panel(processor: LiveProcessor) -> None:
    """Frames per second, ms per frame, faces and the timeline, refreshed every second."""
    snap = processor.snapshot()
    if snap.frames and not snap.streaming:
        st.info(f"No video is arriving (last frame {snap.seconds_since_frame:.0f} s ago): press START to go on.")
    a, b, c = st.columns(3)
    a.metric("Frames/s", f"{snap.fps:.1f}")
    b.metric("ms per frame", f"{snap.ms_per_frame:.1f}")
    c.metric("Faces", snap.faces)
    st.caption(f"Frames processed: {snap.frames}", help="Counted by the video thread")
    if snap.current:
        st.markdown(
            "Now: " + " · ".join(f"face #{c['track']} **{c['emotion']}** {c['confidence']:.0%}" for c in snap.current)
        )
    if snap.error:
        st.warning(f"Last processing error: {for_public(snap.error)}")
    if snap.timeline:
        st.plotly_chart(emotion_timeline(snap.timeline), key="live_timeline")
    downloads(processor)


def downloads(processor: LiveProcessor) -> None:
    """Snapshot and session CSV, prepared on request (not every second) and kept until replaced."""
    if st.button("Prepare snapshot and session CSV", key="live_prepare"):
        frame = processor.last_frame()
        rows = processor.session_rows()
        st.session_state["live_downloads"] = (
            encode_jpeg(frame) if frame is not None else None,
            pd.DataFrame(rows).to_csv(index=False) if rows else None,
        )
    if "live_downloads" not in st.session_state:
        return
    jpeg, csv_text = st.session_state["live_downloads"]
    left, right = st.columns(2)
    if jpeg:
        left.download_button("Snapshot (JPEG)", jpeg, "snapshot.jpg", "image/jpeg", key="live_snap")
    else:
        left.caption("No snapshot: no frame has arrived yet (press START above).")
    if csv_text:
        right.download_button("All rows so far (CSV)", csv_text, "live_session.csv", "text/csv", key="live_csv")
    else:
        right.caption("No session CSV: no face has been seen yet, so it would have no rows.")
