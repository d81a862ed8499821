"""Train-page helpers: training data (via the shared picker), the dataset summary, the augmentation
preview, the runs section with live progress, and activating a new model."""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd
import streamlit as st

from fer_core.card_text import describe_crops
from fer_core.charts import confusion_heatmap, count_bars, recall_curves, training_curves
from fer_core.classes import EMOTIONS
from fer_core.datasets import CROP_MAX_SIDE, DatasetError, LabeledFaces, SetSummary, summarize_labelled
from fer_core.evaluation import compare_on_validation
from fer_core.names import name_from_text
from fer_core.paths import data_dir
from fer_core.preprocess import Preprocessing
from fer_core.registry import (
    ModelError,
    ModelExistsError,
    active_model_name,
    default_models_dir,
    finetune_problem,
    get_model,
    is_repository_registry,
    list_models,
    registration_folder,
    set_active_model,
)
from fer_core.settings import LOCAL_LIMITS
from fer_core.train.config import ARCHITECTURES, IMPORTED, Augmentation, TrainConfig
from fer_core.train.events import duration_text, finished_epochs, read_events
from fer_core.train.jobs import JobError, JobManager
from fer_core.uploads import unpack_uploads
from fer_ui.labelled_sets import FER2013, path_signature, pick_labelled_set

MIN_PER_CLASS = 20


def storage_caption(manager: JobManager) -> None:
    """Where runs and trained models go; the git hint only for the repository's own models/."""
    models_dir = default_models_dir()
    hint = " (ignored by git: `git add -f models/NAME` commits one)" if is_repository_registry(models_dir) else ""
    st.caption(f"Runs are kept in `{manager.root}`; trained models are registered in `{models_dir}`{hint}.")


def choose_data() -> str | None:
    """Widgets for the training data; returns a path (folder or CSV) or None."""
    source = pick_labelled_set("train", FER2013 / "train")
    if source is None:
        return None
    if source.kind != "upload":
        return str(source.path)
    data = source.upload.getvalue()
    # Named by content, so a corrected zip of the same name is unpacked afresh.
    stem = name_from_text(source.upload.name.removesuffix(".zip"), "dataset")
    target = data_dir() / "uploads" / f"{stem}-{hashlib.sha256(data).hexdigest()[:12]}"
    if not target.exists():
        _, rejected = unpack_uploads([(source.upload.name, data)], target, LOCAL_LIMITS)
        for row in rejected[:10]:
            st.warning(f"{row['file']}: {row['detail']}")
    return str(target)  # the class folders may sit a level or two down: the loader finds them


@st.cache_data(max_entries=8, show_spinner="Counting the training images…")
def summary_cached(path: str, signature: str) -> SetSummary:
    return summarize_labelled(path, Preprocessing())


def dataset_summary(path: str) -> SetSummary | None:
    """Counts per class (from file names: no image is decoded), sample images and warnings."""
    if not Path(path).exists():
        st.warning(f"Path not found: {path}")
        return None
    try:
        summary = summary_cached(path, path_signature(Path(path)))
    except DatasetError as e:
        st.error(str(e))
        return None
    counts = summary.counts
    st.plotly_chart(count_bars(counts, f"{summary.total:,} images in all, by class"), key="train_counts")
    few = [f"{k} ({v})" for k, v in counts.items() if v < MIN_PER_CLASS]
    if few:
        st.warning(f"Classes with fewer than {MIN_PER_CLASS} images learn poorly: {', '.join(few)}.")
    if summary.unknown_classes:
        st.warning("Folders that are not emotions are ignored: " + ", ".join(summary.unknown_classes))
    st.caption(
        f"Images over {CROP_MAX_SIDE} px are treated as photos: training crops the largest face of each "
        "and leaves out photos with no face (the run's log reports both counts)."
    )
    samples = summary.samples
    # One column per class, two samples each: 14 narrow columns wrapped names like "surprise".
    for c, col in enumerate(st.columns(len(EMOTIONS))):
        picked = np.flatnonzero(samples.labels == c)[:2]
        if len(picked):
            col.image([samples.images[i] for i in picked], caption=[EMOTIONS[c]] * len(picked), width=64)
    return summary


def augmentation_preview(data: LabeledFaces, augmentation: Augmentation) -> None:
    """A grid of augmented training samples, made by the same layers training uses."""
    import tensorflow as tf  # only here: the preview is the one Train-page feature that needs it

    rng = np.random.default_rng(0)
    pick = rng.choice(len(data), size=min(16, len(data)), replace=False)
    batch = tf.convert_to_tensor(data.images[pick].astype(np.float32)[..., None])
    out = augmentation.build(seed=int(rng.integers(1 << 30)))(batch, training=True).numpy()
    cols = st.columns(8)
    for i, img in enumerate(out):
        cols[i % 8].image(np.clip(img[..., 0], 0, 255).astype(np.uint8))


PHASE_NOTES = {
    "running": "",
    "stopping": "Stopping: finishing the current batch; the best checkpoint is kept.",
    "exporting": "Exporting the best checkpoint to the app's model format…",
    "evaluating": "Measuring the new model (calibration, TTA modes, validation and test sets)…",
}


def progress_panel(manager: JobManager, name: str, status: str) -> None:
    """One run: status and phase, progress and ETA (while training), curves, recall, confusion matrix, log."""
    events = read_events(manager.root / name)
    epochs = finished_epochs(events)
    batches = [e for e in events if e["type"] == "batch"]
    total = next((e["config"]["epochs"] for e in events if e["type"] in ("started", "resumed")), 1)
    st.markdown(f"**Run `{name}`: {status}**")
    if PHASE_NOTES.get(status):
        st.info(PHASE_NOTES[status])
    final = next((e for e in reversed(events) if e["type"] in ("finished", "stopped")), None)
    if status in ("finished", "stopped") and final:
        st.success(f"Registered as model {final['model']}." if final.get("model") else "Ended; no model registered.")
    started = next((e for e in events if e["type"] == "started"), {})
    if started.get("photos_cropped") or started.get("photos_without_face"):
        st.caption(
            f"Training data: {started['photos_cropped']} whole photos had their largest face cropped; "
            f"{started.get('photos_without_face', 0)} photos had no face and were left out."
        )
    if batches and status == "running":
        last = batches[-1]
        st.progress(
            last["batch"] / last["batches"],
            text=f"Epoch {last['epoch']}: batch {last['batch']}/{last['batches']}"
            f" · {last['images_per_s']:.0f} images/s",
        )
        st.progress(
            min(1.0, len(epochs) / total),
            text=f"Run: {len(epochs)}/{total} epochs · ETA {duration_text(last['eta_s'])}",
        )
    if epochs:
        left, right = st.columns(2)
        left.plotly_chart(training_curves(epochs), key="train_curves")
        right.plotly_chart(recall_curves(epochs), key="train_recall")
        pick = (
            st.slider("Confusion matrix at epoch", 1, len(epochs), len(epochs), key="cm_epoch")
            if len(epochs) > 1
            else 1
        )
        st.plotly_chart(
            confusion_heatmap(
                epochs[pick - 1]["confusion_matrix"], normalize=True, title=f"Validation confusion matrix, epoch {pick}"
            ),
            key="train_cm",
        )
    failed = next((e for e in events if e["type"] == "failed"), None)
    if failed:
        st.error(f"The run failed: {failed['error']}")
    with st.expander("Log tail"):
        st.code(manager.log_tail(name) or "(empty)")


def finished_model(manager: JobManager, name: str) -> None:
    """For a finished run: compare its model with the active one on the run's validation split."""
    final = next((e for e in reversed(read_events(manager.root / name)) if e["type"] in ("finished", "stopped")), None)
    if not final or not final.get("model"):
        return
    model = final["model"]
    active = active_model_name()
    config = json.loads((manager.root / name / "config.json").read_text())
    key = f"compare:{name}:{active}"
    if key not in st.session_state and st.button("Compare with the active model on this run's validation data"):
        names = [model] + ([active] if active and active != model else [])
        st.session_state[key] = compare_on_validation(config, names)
    if key in st.session_state:
        rows = [
            {
                "model": n,
                "accuracy": round(m["accuracy"], 4),
                "macro_f1": round(m["macro_f1"], 4),
                **{f"recall {c}": round(m["per_class"][c]["recall"], 3) for c in EMOTIONS},
            }
            for n, m in st.session_state[key].items()
        ]
        st.dataframe(pd.DataFrame(rows), hide_index=True)
    if model != active:
        activation(model, active)


def _card_figures(name: str | None) -> dict | None:
    """Validation (and test) accuracy and macro-F1 a model's card records, or None."""
    try:
        metrics = get_model(name).card.get("metrics", {}) if name else {}
    except ModelError:
        return None
    return {split: metrics[split] for split in ("validation", "test") if split in metrics} or None


def activation(model: str, active: str | None) -> None:
    """'Make MODEL the active model' for every user, with both models' figures; a worse model needs a confirm."""
    new, old = _card_figures(model), _card_figures(active)
    lines = []
    for label, name, figures in (("New", model, new), ("Active now", active, old)):
        if name:
            shown = "; ".join(
                f"{split} accuracy {m['accuracy']:.1%}, macro-F1 {m['macro_f1']:.3f}"
                for split, m in (figures or {}).items()
            )
            lines.append(f"{label}: **{name}**: {shown or 'no figures in its card'}")
    st.markdown("  \n".join(lines))
    worse = bool(
        new
        and old
        and "validation" in new
        and "validation" in old
        and new["validation"]["accuracy"] < old["validation"]["accuracy"]
    )
    confirmed = not worse or st.checkbox(
        f"{model} is less accurate than {active}: make it the active model for every user anyway",
        key=f"confirm_activate:{model}",
    )
    if st.button(f"Make {model} the active model", key=f"activate:{model}", disabled=not confirmed):
        set_active_model(model)
        st.success(f"{model} is now the active model on every page.")


RUNS_COLUMNS = {
    "name": "run",
    "best_val_accuracy": st.column_config.NumberColumn("best validation accuracy", format="percent"),
    "best_val_macro_f1": st.column_config.NumberColumn("its macro-F1", format="%.3f"),
    "best_epoch": "at epoch",
}
"""How the runs table labels the `JobManager.runs` fields it shows differently from their keys."""


@st.fragment(run_every=2.0)
def runs_section(manager: JobManager) -> None:
    """Runs table, the chosen run's Stop/Resume and its live progress, refreshed together every 2 s.

    Table, buttons and panel read one status (`JobManager.runs`), so they never disagree.
    """
    job = manager.active()
    runs = manager.runs()
    if not runs:
        st.info("No runs yet: start one below.")
        return
    st.subheader("Runs")
    st.dataframe(pd.DataFrame(runs), hide_index=True, column_config=RUNS_COLUMNS)
    names = [r["name"] for r in runs]
    default = st.session_state.get("train_run") or (Path(job["run_dir"]).name if job else names[0])
    if st.session_state.get("t_show_next") in names:  # a run just started: show it
        st.session_state["t_show"] = st.session_state.pop("t_show_next")
    if st.session_state.get("t_show") not in names:  # the menu's state is gone after another page ran
        st.session_state["t_show"] = default if default in names else names[0]

    def remember() -> None:
        st.session_state["train_run"] = st.session_state["t_show"]

    name = st.selectbox("Show run", names, key="t_show", on_change=remember)
    status = next(r["status"] for r in runs if r["name"] == name)
    stop_col, resume_col = st.columns(2)
    if status == "running" and stop_col.button("Stop (keeps the best checkpoint)", key="t_stop"):
        manager.stop(name)
        st.rerun()
    if status in ("interrupted", "stopped") and resume_col.button("Resume from the last checkpoint", key="t_resume"):
        try:
            manager.resume(name)
            st.rerun()
        except JobError as e:
            st.error(str(e))
    progress_panel(manager, name, status)
    finished_model(manager, name)


def new_run_form(manager: JobManager) -> None:
    """Data, architecture, hyper-parameters and augmentation; Start launches a separate process."""
    data_path = choose_data()
    data = dataset_summary(data_path) if data_path else None
    c1, c2, c3, c4 = st.columns(4)
    architecture = c1.selectbox(
        "Architecture",
        list(ARCHITECTURES),
        key="t_arch",
        help="\n".join(f"- **{name}**: {note}" for name, note in ARCHITECTURES.items()),
    )
    epochs = c2.number_input("Epochs", 1, 500, 30, key="t_epochs")
    batch_size = c3.selectbox("Batch size", [32, 64, 128], index=1, key="t_batch")
    learning_rate = c4.number_input("Learning rate", 0.0001, 1.0, 0.02, format="%.4f", key="t_lr")
    c5, c6, c7, c8 = st.columns(4)
    weighting = c5.selectbox("Class weighting", ["sqrt", "balanced", "none"], key="t_weight")
    tunable, teachers = model_sources()
    finetune = c6.selectbox(
        "Fine-tune from",
        ["—", *tunable],
        format_func=lambda n: n if n == "—" else f"{n} ({tunable[n]})",
        key="t_ft",
        help="Start from a registered model's weights (same architecture, or a resnet for resnet-fast; "
        "architecture 'imported' for an ONNX model made elsewhere, whose network is rebuilt). "
        "Ensembles and models shipped as LiteRT only are not listed: they have no Keras weights to train further.",
    )
    freeze_bn = finetune != "—" and c6.checkbox(
        "Keep batch-norm statistics",
        key="t_freeze_bn",
        help="The batch-normalisation layers keep the source model's statistics and scales; the rest learns. "
        "Usual when fine-tuning on other faces (see docs/models.md for what it did here).",
    )
    teacher = c7.selectbox(
        "Distil from (teacher)",
        ["—", *teachers],
        key="t_teacher",
        help="Learn from a registered model's (e.g. an ensemble's) soft predictions on the training faces "
        "as well as from the labels; the teacher labels the faces once, with flip test-time augmentation.",
    )
    consistent = teacher != "—" and c7.checkbox(
        "Teacher judges each augmented batch",
        key="t_teacher_consistent",
        help="The teacher labels every augmented, mixed batch exactly as the student sees it, instead of "
        "each face once before training: closer teaching, about 25% slower.",
    )
    register_as = c8.text_input("Register model as", f"my-model-{datetime.now():%Y%m%d-%H%M}", key="t_name")
    overwrite, problem = model_name_check(register_as, c8)
    if finetune != "—" and not problem:
        source = get_model(finetune)
        problem = finetune_problem(source, architecture)
        if architecture == IMPORTED and not problem:
            crops = describe_crops(source.card.get("preprocessing", {}), source.preprocessing.size)
            st.caption(f"The imported network takes {finetune}'s own crops: {crops}.")
    augmentation = augmentation_switches()
    advanced = advanced_settings()
    if advanced.get("test_data") and not Path(advanced["test_data"]).exists():
        problem = problem or f"Test set not found: {advanced['test_data']}"
    if data is not None and st.button("Preview augmentation", key="t_preview"):
        augmentation_preview(data.samples, augmentation)
    if problem:
        st.error(problem)
    if st.button("Start training", type="primary", disabled=data is None or bool(problem), key="t_start"):
        config = TrainConfig(
            data=data_path,
            architecture=architecture,
            epochs=int(epochs),
            batch_size=int(batch_size),
            learning_rate=float(learning_rate),
            class_weighting=weighting,
            augmentation=augmentation,
            finetune_from=None if finetune == "—" else finetune,
            freeze_bn=freeze_bn,
            teacher=None if teacher == "—" else teacher,
            teacher_mode="consistent" if consistent else "fixed",
            register_as=register_as or None,
            overwrite=overwrite,
            **advanced,
        )
        try:
            job = manager.start(config, f"{datetime.now():%Y%m%d-%H%M%S}-{architecture}")
        except JobError as e:
            st.error(str(e))
        else:
            # the runs section above shows the new run at once (its menu too, not the one shown before)
            st.session_state["train_run"] = st.session_state["t_show_next"] = Path(job["run_dir"]).name
            st.rerun()


def model_sources() -> tuple[dict[str, str], list[str]]:
    """Usable registered models: {name: architecture} of those that can be fine-tuned, and all of them
    (any usable model, an ensemble included, can teach)."""
    tunable, usable = {}, []
    for row in list_models():
        if not row["ok"]:
            continue
        usable.append(row["name"])
        info = get_model(row["name"])
        if finetune_problem(info) is None:
            tunable[row["name"]] = info.card.get("architecture", "")
    return tunable, usable


def model_name_check(name: str, where) -> tuple[bool, str]:
    """(replace the existing model?, what is wrong with the name or "") for "Register model as"."""
    if not name:
        return False, ""
    try:
        registration_folder(name)
    except ModelExistsError:
        if where.checkbox(f"Replace the existing model {name}", key="t_overwrite"):
            return True, ""
        return False, f"A model named {name} already exists: choose another name or tick 'Replace'."
    except ModelError as e:
        return False, str(e)
    return False, ""


def advanced_settings() -> dict:
    """The rest of the training recipe (TrainConfig fields), folded away; defaults are TrainConfig's."""
    default = TrainConfig(data="")
    with st.expander("Advanced settings"):
        a1, a2, a3, a4 = st.columns(4)
        mixup = a1.number_input(
            "Mixup alpha",
            0.0,
            1.0,
            default.mixup,
            step=0.1,
            key="t_mixup",
            help="Trains on blends of two faces and their labels (0 = off). 0.2 helped every FER-2013 model here.",
        )
        smoothing = a2.number_input("Label smoothing", 0.0, 0.5, default.label_smoothing, step=0.05, key="t_smoothing")
        warmup = a3.number_input(
            "Warm-up epochs",
            0,
            20,
            default.warmup_epochs,
            key="t_warmup",
            help="The learning rate rises linearly over these epochs, then follows a cosine down to zero.",
        )
        patience = a4.number_input(
            "Early-stopping patience",
            0,
            500,
            default.patience,
            key="t_patience",
            help="Stop after this many epochs without a better validation score (0 = run every epoch; "
            "long cosine schedules often improve late).",
        )
        b1, b2, b3, b4 = st.columns([1, 1, 1, 2])
        val_fraction = b1.number_input(
            "Validation share", 0.05, 0.5, default.val_fraction, step=0.05, key="t_val_fraction"
        )
        monitors = ["val_accuracy", "val_macro_f1", "val_loss"]
        monitor = b2.selectbox(
            "Best epoch by",
            monitors,
            index=monitors.index(default.monitor),
            key="t_monitor",
            help="The validation figure that picks the checkpoint the run registers.",
        )
        run_seed = b3.number_input(
            "Run seed",
            0,
            2**31 - 1,
            default.seed,
            key="t_run_seed",
            help="Seed of the starting weights, shuffling and augmentation. The same settings and seed start "
            "from the same weights; another seed trains another one on the same validation split (a member for an "
            "ensemble of one architecture).",
        )
        test_data = b4.text_input(
            "Test set (optional)",
            "",
            key="t_test_data",
            help="Class folders or a FER-2013 CSV, measured once at the end for the model card; never used "
            "for any choice during training.",
        ).strip()
    return {
        "mixup": float(mixup),
        "label_smoothing": float(smoothing),
        "warmup_epochs": int(warmup),
        "patience": int(patience),
        "val_fraction": float(val_fraction),
        "monitor": monitor,
        "run_seed": None if int(run_seed) == default.seed else int(run_seed),
        "test_data": test_data or None,
    }


def augmentation_switches() -> Augmentation:
    """One toggle per augmentation (defaults from Augmentation)."""
    default = Augmentation()
    cols = st.columns(7)
    return Augmentation(
        flip=cols[0].toggle("Flip", default.flip, key="a_flip"),
        shift=default.shift if cols[1].toggle("Shift", True, key="a_shift") else 0,
        rotation_degrees=default.rotation_degrees if cols[2].toggle("Rotate", True, key="a_rot") else 0,
        zoom=default.zoom if cols[3].toggle("Zoom", True, key="a_zoom") else 0,
        brightness=default.brightness if cols[4].toggle("Brightness", True, key="a_bright") else 0,
        contrast=default.contrast if cols[5].toggle("Contrast", True, key="a_contrast") else 0,
        erasing=default.erasing if cols[6].toggle("Erasing", True, key="a_erase") else 0,
    )
