"""The Live panel's timeline chart: server time to build it and its size, as it is redrawn every second.

A minute of a two-face stream at 10 frames/s (1,200 rows). The baseline, in the same run, is the
earlier construction: one list of colour strings and one of hover texts per track, no thinning.

    .venv/bin/python -m tests.benchmarks.bench_timeline [--frames-per-s 10] [--seconds 60]
"""

from __future__ import annotations

import argparse
import time

import plotly.graph_objects as go

from fer_core.charts import _layout, emotion_timeline
from fer_core.classes import EMOTIONS
from fer_core.render import COLORS_HEX


def earlier_timeline(rows: list[dict], title: str = "Smoothed emotion per face") -> go.Figure:
    """The construction used until 2026-12-01 (kept as the baseline)."""
    fig = go.Figure()
    for track in sorted({r["track"] for r in rows}):
        mine = [r for r in rows if r["track"] == track]
        fig.add_scatter(
            x=[r["time"] for r in mine],
            y=[EMOTIONS.index(r["emotion"]) for r in mine],
            mode="markers+lines",
            name=f"face #{track}",
            marker=dict(color=[COLORS_HEX[r["emotion"]] for r in mine], size=6),
            line=dict(width=1),
            text=[f"{r['emotion']} {r['confidence']:.0%}" for r in mine],
        )
    fig.update_yaxes(tickvals=list(range(len(EMOTIONS))), ticktext=list(EMOTIONS), range=[-0.5, len(EMOTIONS) - 0.5])
    fig.update_xaxes(title="seconds")
    return _layout(fig, title, height=320)


def best_ms(build, rows: list[dict], repeats: int = 5, inner: int = 5) -> tuple[float, int]:
    """Best-of-repeats milliseconds to build the figure and serialise it (what st.plotly_chart sends)."""
    build(rows).to_json()  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(inner):
            text = build(rows).to_json()
        times.append((time.perf_counter() - start) / inner * 1000)
    return min(times), len(text)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames-per-s", type=float, default=10)
    parser.add_argument("--seconds", type=float, default=60)
    args = parser.parse_args()
    n = int(args.frames_per_s * args.seconds)
    rows = [
        {"time": i / args.frames_per_s, "track": t, "emotion": EMOTIONS[(i // 50 + t) % 7], "confidence": 0.7}
        for i in range(n)
        for t in (1, 2)
    ]
    print(f"{len(rows)} timeline rows (2 faces, {args.seconds:.0f} s at {args.frames_per_s:g} frames/s)")
    builds = [("earlier construction (baseline)", earlier_timeline), ("emotion_timeline (shipped)", emotion_timeline)]
    for label, build in builds:
        ms, size = best_ms(build, rows)
        print(f"{label:<34} {ms:7.1f} ms per redraw  {size / 1024:6.1f} KB sent")


if __name__ == "__main__":
    main()
