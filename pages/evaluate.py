"""Evaluate: per-class metrics, confusion matrix with drill-down, calibration, model comparison."""

import json

import pandas as pd
import streamlit as st

import fer_ui
from fer_core.charts import confusion_heatmap, per_class_bars
from fer_core.classes import EMOTIONS
from fer_core.evaluation import compare_metrics, compare_overall, metrics_table
from fer_core.registry import ModelError, get_model, list_models
from fer_ui.evaluate import (
    DATA_SOURCE_KEY,
    calibration_panel,
    cost_per_face_ms,
    data_description,
    drill_down,
    evaluate,
    follow_clicked_cell,
    pick_dataset,
    sets_side_by_side,
)
from fer_ui.resources import current_model, model_picker
from fer_ui.settings import for_public, get_settings
from fer_ui.widgets import shown_table, tta_picker

fer_ui.use_router()

settings = get_settings()
st.title("Evaluate")
model_picker()  # the sidebar's model, as on every page: this browser session's choice, else the active one
names = [r["name"] for r in list_models() if r["ok"]]
if not names:
    st.warning("No usable model is registered (the sidebar says why). Train one on the Train page.")
    st.stop()
try:
    info = current_model()
except ModelError as e:
    st.error(for_public(e))
    st.stop()
name_a = info.name
c2, c3 = st.columns([3, 1])
name_b = c2.selectbox("Compare with (optional)", ["—", *[n for n in names if n != name_a]], key="eval_compare")
tta = tta_picker("eval_tta", info.card, where=c3)
st.caption(f"Model: **{name_a}** (change it in the sidebar)")
data = pick_dataset(settings, info)
if data is None:
    st.stop()
st.caption(
    f"{len(data):,} labelled faces · per class: " + ", ".join(f"{k} {v}" for k, v in data.class_counts().items())
)
try:
    metrics, probs, logits = evaluate(info, data, tta)
except ModelError as e:
    st.error(for_public(e))
    st.stop()

a, b, c, d = st.columns(4)
a.metric("Accuracy", f"{metrics['accuracy']:.1%}")
b.metric("Macro-F1", f"{metrics['macro_f1']:.3f}")
c.metric(
    f"ECE (all {metrics['n']:,} faces)",
    f"{metrics['ece']:.3f}",
    help=f"Expected calibration error: how far the shown confidences are from how often they are right, "
    f"on this whole set, as the model runs now (temperature {info.temperature_for(tta):.2f} for TTA {tta}). "
    "Calibration below measures it on half the set, the half the fitted temperature did not see.",
)
cost = cost_per_face_ms(info.name, info.weights_hash, tta, data.images[:64])
d.metric("Cost per face", f"{cost:.2f} ms", help=f"Batch of 64, this machine, TTA: {tta}")

if name_b != "—":  # right under the figures it compares with, near its selector
    st.subheader(f"Compare: A = {name_a}, B = {name_b}")
    try:
        metrics_b = evaluate(get_model(name_b), data, tta)[0]
    except ModelError as e:
        st.error(f"Cannot compare with {name_b}: {for_public(e)}")
    else:
        st.dataframe(shown_table(compare_overall(metrics, metrics_b)), hide_index=True, key="cmp_overall")
        st.dataframe(shown_table(compare_metrics(metrics, metrics_b)), hide_index=True, key="cmp_classes")

left, right = st.columns(2)
left.plotly_chart(per_class_bars(metrics), key="eval_bars")
normalize = right.toggle("Row-normalised", key="eval_norm")
clicked = right.plotly_chart(
    confusion_heatmap(metrics["confusion_matrix"], normalize, clickable=True),
    key="eval_cm",
    on_select="rerun",
    selection_mode="points",
)
follow_clicked_cell(clicked)
st.dataframe(shown_table(metrics_table(metrics)), hide_index=True)

if not settings.demo:
    st.subheader("Across labelled sets")
    st.caption(
        "The same model on several sets side by side, for instance FER-2013 and faces of real people: a model "
        "tuned to one kind of face can rank differently on the other."
    )
    sets_side_by_side(info, data, tta, st.session_state.get(DATA_SOURCE_KEY, "this set"))

st.subheader("Drill down into a cell")
st.caption("Click a cell of the confusion matrix, or choose one here.")
drill_down(data, probs)

st.subheader("Calibration")
calibration_panel(info, data, logits, tta, settings)


st.subheader("Downloads")
st.caption("Each chart has a camera button (top right of the chart) that saves it as PNG.")
x, y, z = st.columns(3)
report = {"model": info.name, "tta": tta, "dataset": data_description(data), **metrics}
x.download_button("Metrics (JSON)", json.dumps(report, indent=1), "metrics.json", key="dl_mj")
y.download_button("Metrics (CSV)", pd.DataFrame(metrics_table(metrics)).to_csv(index=False), "metrics.csv", key="dl_mc")
z.download_button(
    "Confusion matrix (CSV)",
    pd.DataFrame(metrics["confusion_matrix"], index=EMOTIONS, columns=EMOTIONS).to_csv(),
    "confusion_matrix.csv",
    key="dl_cm",
)
