"""Plotly figures built from plain results (metrics dicts, rows, events); no Streamlit here."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go

from fer_core.classes import EMOTIONS
from fer_core.render import COLORS_HEX


def _layout(fig: go.Figure, title: str, height: int = 360) -> go.Figure:
    fig.update_layout(title=title, height=height, margin=dict(l=10, r=10, t=40, b=10), legend_title_text="")
    return fig


def per_class_bars(metrics: dict, title: str = "Per-class precision, recall and F1") -> go.Figure:
    """Grouped bars of precision, recall and F1 per class, with support in the hover and labels."""
    per = metrics["per_class"]
    names = [f"{c} (n={per[c]['support']})" for c in EMOTIONS]
    fig = go.Figure()
    for key in ("precision", "recall", "f1"):
        fig.add_bar(name=key, x=names, y=[per[c][key] for c in EMOTIONS])
    fig.update_layout(barmode="group", yaxis_range=[0, 1])
    return _layout(fig, title)


def confusion_heatmap(
    matrix: Sequence[Sequence[int]], normalize: bool = False, title: str = "Confusion matrix", clickable: bool = False
) -> go.Figure:
    """Heatmap with true classes as rows and predictions as columns; counts or row shares.

    With `clickable`, a layer of nearly transparent square markers covers the cells, so a
    click selects a cell (point selection does not reach heatmap traces); its point has the
    predicted class as `x` and the true class as `y`.
    """
    cm = np.asarray(matrix, dtype=float)
    if normalize:
        totals = cm.sum(axis=1, keepdims=True)
        cm = np.divide(cm, totals, out=np.zeros_like(cm), where=totals > 0)
        text = [[f"{v:.0%}" for v in row] for row in cm]
    else:
        text = [[f"{int(v)}" for v in row] for row in cm]
    fig = go.Figure(
        go.Heatmap(
            z=cm,
            x=list(EMOTIONS),
            y=list(EMOTIONS),
            text=text,
            texttemplate="%{text}",
            colorscale="Blues",
            showscale=False,
        )
    )
    if clickable:
        cells = [(p, t) for t in EMOTIONS for p in EMOTIONS]
        fig.add_trace(
            go.Scatter(
                x=[p for p, _ in cells],
                y=[t for _, t in cells],
                mode="markers",
                marker={"symbol": "square", "size": 40, "opacity": 0.01, "color": "black"},
                hovertemplate="true %{y}, predicted %{x}: click to see the images<extra></extra>",
                showlegend=False,
            )
        )
        fig.update_layout(clickmode="event+select")
    fig.update_yaxes(autorange="reversed", title="true")
    fig.update_xaxes(title="predicted")
    return _layout(fig, title, height=430)


def reliability_diagram(bins: list[dict], title: str = "Reliability") -> go.Figure:
    """Accuracy against mean confidence per confidence bin, with the diagonal of perfect calibration."""
    used = [b for b in bins if b["count"]]
    fig = go.Figure()
    fig.add_scatter(x=[0, 1], y=[0, 1], mode="lines", name="perfect", line=dict(dash="dash", color="gray"))
    fig.add_scatter(
        x=[b["confidence"] for b in used],
        y=[b["accuracy"] for b in used],
        mode="lines+markers",
        name="model",
        text=[f"n={b['count']}" for b in used],
    )
    fig.update_xaxes(title="confidence", range=[0, 1])
    fig.update_yaxes(title="accuracy", range=[0, 1])
    return _layout(fig, title)


# Emotion index k sits exactly on stop k/6 of this scale, so numeric marker colours give each class its colour.
_EMOTION_SCALE = [[k / (len(EMOTIONS) - 1), COLORS_HEX[e]] for k, e in enumerate(EMOTIONS)]


def emotion_timeline(
    rows: list[dict], title: str = "Smoothed emotion per face", max_points_per_track: int = 200
) -> go.Figure:
    """Per-track line of the displayed emotion over time, coloured by emotion.

    The Live panel redraws this every second for each viewer, so it is built from numeric arrays
    (plotly validates lists of colours and texts point by point) and each track is thinned to at
    most `max_points_per_track` evenly spaced points, its first and last kept
    (`python -m tests.benchmarks.bench_timeline` measures it against the earlier construction).
    """
    fig = go.Figure()
    by_track: dict[int, list[dict]] = {}
    for r in rows:
        by_track.setdefault(r["track"], []).append(r)
    index = {e: k for k, e in enumerate(EMOTIONS)}
    for n, track in enumerate(sorted(by_track)):
        mine = by_track[track]
        if len(mine) > max_points_per_track:
            keep = np.linspace(0, len(mine) - 1, max_points_per_track).round().astype(int)
            mine = [mine[i] for i in keep]
        classes = np.array([index[r["emotion"]] for r in mine])
        fig.add_scatter(
            x=np.array([r["time"] for r in mine]),
            y=classes,
            mode="markers+lines",
            name=f"face #{track}",
            # points in their emotion's colour; the line (what the legend shows of a face) grey, a dash per face
            marker=dict(color=classes, colorscale=_EMOTION_SCALE, cmin=0, cmax=len(EMOTIONS) - 1, size=6),
            line=dict(width=1, color="#9a9a9a", dash=_DASHES[n % len(_DASHES)]),
            legendgroup="faces",
            customdata=np.array([r["confidence"] for r in mine]),
            hovertemplate=f"face #{track}<br>%{{x:.1f}} s<br>confidence %{{customdata:.0%}}<extra></extra>",
        )
    for emotion in EMOTIONS:  # the colour key: one legend entry per emotion shown
        if any(r["emotion"] == emotion for r in rows):
            fig.add_scatter(
                x=[None],
                y=[None],
                mode="markers",
                name=emotion,
                marker=dict(color=COLORS_HEX[emotion], size=8),
                legendgroup="emotions",
                hoverinfo="skip",
            )
    fig.update_yaxes(tickvals=list(range(len(EMOTIONS))), ticktext=list(EMOTIONS), range=[-0.5, len(EMOTIONS) - 0.5])
    fig.update_xaxes(title="seconds")
    return _layout(fig, title, height=320)


_DASHES = ("solid", "dot", "dash", "dashdot", "longdash")


def count_bars(counts: dict[str, int], title: str) -> go.Figure:
    """Bars of counts per label (emotions get their colours)."""
    labels = list(counts)
    fig = go.Figure(
        go.Bar(x=labels, y=[counts[k] for k in labels], marker_color=[COLORS_HEX.get(k, "#888888") for k in labels])
    )
    return _layout(fig, title, height=300)


def training_curves(epochs: list[dict]) -> go.Figure:
    """Loss and validation accuracy / macro-F1 per epoch."""
    x = [e["epoch"] for e in epochs]
    fig = go.Figure()
    for key, name, axis in (
        ("loss", "train loss", "y2"),
        ("val_loss", "val loss", "y2"),
        ("val_accuracy", "val accuracy", "y"),
        ("val_macro_f1", "val macro-F1", "y"),
    ):
        if all(key in e for e in epochs):  # a model card may keep fewer figures than a live run
            fig.add_scatter(x=x, y=[e[key] for e in epochs], name=name, yaxis=axis)
    losses = [e[k] for e in epochs for k in ("loss", "val_loss") if isinstance(e.get(k), (int, float))]
    top = _nice_ceiling(max(losses, default=1.0) * 1.05)
    fig.update_layout(
        yaxis=dict(title="accuracy / F1", range=[0, 1], dtick=0.2),
        # loss ticks of their own (round numbers from 0), not placed on the accuracy grid
        yaxis2=dict(title="loss", overlaying="y", side="right", range=[0, top], dtick=top / 5, showgrid=False),
        xaxis_title="epoch",
    )
    _layout(fig, "Training curves")
    fig.update_layout(legend=dict(orientation="h", yanchor="top", y=-0.18), margin=dict(b=60))  # off the ticks
    return fig


def _nice_ceiling(value: float) -> float:
    """The smallest of 1, 2, 2.5 or 5 times a power of ten at or above `value` (a round axis top)."""
    if value <= 0:
        return 1.0
    power = 10 ** np.floor(np.log10(value))
    return float(next(m * power for m in (1, 2, 2.5, 5, 10) if m * power >= value))


def recall_curves(epochs: list[dict]) -> go.Figure:
    """Validation recall per class per epoch."""
    x = [e["epoch"] for e in epochs]
    fig = go.Figure()
    for c in EMOTIONS:
        fig.add_scatter(x=x, y=[e["per_class_recall"][c] for e in epochs], name=c, line=dict(color=COLORS_HEX[c]))
    fig.update_layout(yaxis_range=[0, 1], xaxis_title="epoch")
    return _layout(fig, "Validation recall per class")
