"""One training run: its folder, the Keras loop, checkpoints and stop/resume (registration: registration.py).

A run folder holds config.json, events.jsonl, state.json, checkpoints/last.keras and
checkpoints/best.keras. Creating a file named STOP in it (or SIGTERM / Ctrl-C) makes the
run finish its current batch, keep the best checkpoint and end as "stopped".
"""

from __future__ import annotations

import json
import math
import os
import signal
import threading
import time
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from fer_core.classes import EMOTIONS
from fer_core.datasets import (
    DatasetError,
    LabeledFaces,
    concat_labelled,
    load_unlabelled_faces,
    summarize_labelled,
    train_val_split,
)
from fer_core.metrics import classification_metrics, softmax
from fer_core.models import EnsembleClassifier, load_classifier
from fer_core.preprocess import Preprocessing, combine_specs, convert_crops
from fer_core.registry import (
    KERAS_FILE,
    ModelError,
    ModelInfo,
    default_models_dir,
    finetune_problem,
    get_model,
    registration_folder,
)
from fer_core.train.architectures import build_model
from fer_core.train.config import IMPORTED, TrainConfig
from fer_core.train.data import DistillationLoss, class_weights, predict_logits, training_dataset
from fer_core.train.events import Reporter, append_event
from fer_core.train.folder_lock import FolderBusy, hold_folder
from fer_core.train.onnx_import import OnnxImportError, import_onnx_classifier
from fer_core.train.registration import register_best_checkpoint

STOP_FILE = "STOP"
STATE_FILE = "state.json"
TEACHER_FILE = "teacher_logits.npy"
TEACHER_MODES = ("fixed", "consistent")
CONFIG_FILE = "config.json"
RUN_FILES = frozenset(
    {CONFIG_FILE, STATE_FILE, STOP_FILE, TEACHER_FILE, "events.jsonl", "checkpoints", "log.txt", ".lock"}
)
"""What a run folder holds: a new run goes only into a new, empty or unfinished run folder."""


class TrainingError(RuntimeError):
    """A run cannot start or continue; the message says why."""


def cpu_supports_bfloat16() -> bool:
    """Whether this CPU has native bfloat16 arithmetic (AVX512-BF16 or AMX)."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def choose_policy(precision: str) -> str:
    """Keras dtype policy for the config's `precision` setting."""
    if precision == "auto":
        return "mixed_bfloat16" if cpu_supports_bfloat16() else "float32"
    if precision in ("bfloat16", "mixed_bfloat16"):
        return "mixed_bfloat16"
    if precision == "float32":
        return "float32"
    raise TrainingError(f"precision must be 'auto', 'bfloat16' or 'float32'. Received: {precision!r}")


def learning_rate_at(config: TrainConfig, epoch: int, plateau_cuts: int) -> float:
    """Learning rate for a 0-based epoch under the config's schedule."""
    base = config.learning_rate
    if config.schedule == "plateau":
        return base * (0.5**plateau_cuts)
    if epoch < config.warmup_epochs:
        return base * (epoch + 1) / (config.warmup_epochs + 1)
    span = max(1, config.epochs - config.warmup_epochs)
    progress = min(1.0, (epoch - config.warmup_epochs) / span)
    return base * (0.01 + 0.99 * 0.5 * (1.0 + math.cos(math.pi * progress)))


class _StopRequest:
    """A stop flag set by a STOP file, SIGTERM or Ctrl-C."""

    def __init__(self, run_dir: Path):
        self.run_dir = run_dir
        self.signalled = threading.Event()

    def __call__(self) -> bool:
        return self.signalled.is_set() or (self.run_dir / STOP_FILE).exists()


def _save_atomically(model: keras.Model, path: Path) -> None:
    """Save a checkpoint whole or not at all: a process killed mid-save leaves the previous one."""
    partial = path.with_name(f"{path.stem}-partial.keras")
    model.save(partial)
    partial.replace(path)


class _RunCallback(keras.callbacks.Callback):
    """Writes progress events, evaluates on validation, checkpoints, schedules and stops."""

    def __init__(self, run: TrainingRun, val: LabeledFaces, steps: int, state: dict):
        super().__init__()
        self.run, self.val, self.steps, self.state = run, val, steps, state
        self.stop = _StopRequest(run.run_dir)
        self._last_batch_event = 0.0
        self._epoch_start = 0.0
        self.clock = time.time()  # wall time is added to the state up to here
        self.stopped_early = False
        self.stopped_by_user = False

    def on_epoch_begin(self, epoch, logs=None):
        lr = learning_rate_at(self.run.config, epoch, self.state["plateau_cuts"])
        self.model.optimizer.learning_rate.assign(lr)
        self._epoch_start = time.time()

    def on_train_batch_end(self, batch, logs=None):
        if self.stop() and not self.stopped_by_user:
            self.model.stop_training = True
            self.stopped_by_user = True
            self.run.event("stopping", epoch=self.state["epoch"] + 1)
        now = time.time()
        if now - self._last_batch_event >= 2.0 or batch + 1 == self.steps:
            self._last_batch_event = now
            done = batch + 1
            rate = done * self.run.config.batch_size / max(now - self._epoch_start, 1e-6)
            self.run.event(
                "batch",
                epoch=self.state["epoch"] + 1,
                batch=done,
                batches=self.steps,
                loss=float(logs.get("loss", float("nan"))),
                images_per_s=rate,
                eta_s=self._eta(done),
            )

    def add_wall_time(self) -> None:
        now = time.time()
        self.state["wall_seconds"] += now - self.clock
        self.clock = now

    def _eta(self, batches_done: int) -> float:
        """Seconds left: the median of the last five epochs' times (an epoch during which the
        machine slept or the process was paused would otherwise inflate every later estimate)."""
        per_epoch = self.state["epoch_seconds"] or [
            (time.time() - self._epoch_start) * self.steps / max(batches_done, 1)
        ]
        typical = float(np.median(per_epoch[-5:]))
        remaining_in_epoch = typical * (1 - batches_done / self.steps) if batches_done else typical
        return remaining_in_epoch + typical * (self.run.config.epochs - self.state["epoch"] - 1)

    def on_epoch_end(self, epoch, logs=None):
        if self.stopped_by_user:
            # Keras still calls this for the interrupted epoch; it is not a finished one.
            return
        metrics = self.run.validate(self.model, self.val)
        state = self.state
        state["epoch"] = epoch + 1
        state["epoch_seconds"].append(time.time() - self._epoch_start)
        score = metrics["score"]
        improved = state["best_score"] is None or score > state["best_score"]
        if improved:
            state.update(best_score=score, best_epoch=epoch + 1, since_best=0)
            _save_atomically(self.model, self.run.checkpoint_dir / "best.keras")
        else:
            state["since_best"] += 1
            if self.run.config.schedule == "plateau" and state["since_best"] % self.run.config.plateau_patience == 0:
                state["plateau_cuts"] += 1
        _save_atomically(self.model, self.run.checkpoint_dir / "last.keras")
        self.add_wall_time()  # saved each epoch: a killed process keeps the time it ran
        self.run.save_state(state)
        self.run.event(
            "epoch",
            epoch=epoch + 1,
            epochs=self.run.config.epochs,
            loss=float(logs.get("loss", float("nan"))),
            lr=float(self.model.optimizer.learning_rate.numpy()),
            seconds=state["epoch_seconds"][-1],
            eta_s=self._eta(0),  # the epoch just counted as done: the next one has not begun
            best=improved,
            best_epoch=state["best_epoch"],
            **{k: v for k, v in metrics.items() if k != "score"},
        )
        patience = self.run.config.patience
        if patience and state["since_best"] >= patience:
            self.stopped_early = True
            self.model.stop_training = True


class TrainingRun:
    """A training run living in `run_dir`.

    Args:
        run_dir: the run's folder (created if needed).
        config: settings for a new run; None to read `config.json` (resume).
    """

    def __init__(self, run_dir: str | Path, config: TrainConfig | None = None, report: Reporter | None = None):
        self.run_dir = Path(run_dir)
        self.report = report
        self.checkpoint_dir = self.run_dir / "checkpoints"
        config_path = self.run_dir / CONFIG_FILE
        resume_config = config is None
        if config is None:
            if not config_path.is_file():
                raise TrainingError(f"{config_path}: not a training run (no config.json)")
            config = TrainConfig.load(config_path)
        else:
            progress = self.load_state()["epoch"]
            if progress or any(self.checkpoint_dir.glob("*.keras")):
                raise TrainingError(
                    f"{self.run_dir} already holds a run ({progress} epochs done): resume it with "
                    f"`train --resume {self.run_dir}`, or give another --run-dir"
                )
            check_run_folder(self.run_dir)
        self._config_to_save = config_path if not resume_config else None
        self.preflight_done = False
        self.config = config
        self.spec = student_spec(config)
        self.checkpoint_dir.mkdir(parents=True, exist_ok=True)

    @staticmethod
    def models_dir_of(config: TrainConfig) -> Path:
        return Path(config.models_dir) if config.models_dir else default_models_dir()

    def event(self, kind: str, **fields) -> dict:
        """Write a progress event to the run folder (and hand it to `report`)."""
        return append_event(self.run_dir, kind, self.report, **fields)

    # ----- state -----
    def load_state(self) -> dict:
        path = self.run_dir / STATE_FILE
        if path.is_file():
            state = json.loads(path.read_text())
            # Runs killed before this was saved every epoch kept only their last stretch: the
            # epochs' own times are a lower bound.
            state["wall_seconds"] = max(state.get("wall_seconds", 0.0), sum(state.get("epoch_seconds", [])))
            return state
        return {
            "epoch": 0,
            "best_score": None,
            "best_epoch": 0,
            "since_best": 0,
            "plateau_cuts": 0,
            "epoch_seconds": [],
            "wall_seconds": 0.0,
        }

    def save_state(self, state: dict) -> None:
        tmp = self.run_dir / (STATE_FILE + ".tmp")
        tmp.write_text(json.dumps(state))
        tmp.replace(self.run_dir / STATE_FILE)

    @property
    def models_dir(self) -> Path:
        return self.models_dir_of(self.config)

    def check_registration(self) -> None:
        """Fail before training, not after it, when the model name cannot be registered.

        Raises:
            TrainingError: an invalid name, or an existing model that may not be replaced.
        """
        if self.config.register_as is None:
            return
        try:
            registration_folder(self.config.register_as, self.models_dir, self.config.overwrite, self.run_dir)
        except ModelError as e:
            raise TrainingError(str(e)) from e

    def check_test_data(self) -> None:
        """Fail before training, not hours later at registration, when the test set is unusable.

        Only counts the set (fast); it is loaded and measured once, at the end.

        Raises:
            TrainingError: the test set is missing, not a labelled set, or holds no labelled image.
        """
        if not self.config.test_data:
            return
        try:
            counts = summarize_labelled(self.config.test_data, self.spec, per_class=0).counts
        except DatasetError as e:
            raise TrainingError(f"test set {self.config.test_data!r}: {e}") from e
        if sum(counts.values()) == 0:
            raise TrainingError(f"test set {self.config.test_data!r} holds no labelled face")  # a header-only CSV

    def finetune_source(self) -> ModelInfo:
        """The registered model a fine-tuning run starts from, checked before any data is loaded.

        Raises:
            TrainingError: no such model, or one that cannot be fine-tuned into this architecture.
        """
        cfg = self.config
        try:
            info = get_model(cfg.finetune_from, self.models_dir)
        except ModelError as e:
            raise TrainingError(f"cannot fine-tune from {cfg.finetune_from!r}: {e}") from e
        problem = finetune_problem(info, cfg.architecture)
        if problem:
            raise TrainingError(f"cannot fine-tune from {cfg.finetune_from!r}: {problem}")
        return info

    # ----- data -----
    def data_spec(self):
        """How training faces are cropped: the student's way, plus each teacher's own way where
        it labels the faces before training."""
        if not self.needs_fixed_logits():
            return self.spec
        return combine_specs([self.spec] + [info.preprocessing for info, _ in self.teacher_infos()])

    def load_data(self) -> tuple[LabeledFaces, LabeledFaces, LabeledFaces | None]:
        """(training split, validation split, unlabelled faces or None), cropped by `data_spec`.

        Raises:
            TrainingError: too few labelled images, or unusable unlabelled folders.
        """
        cfg = self.config
        spec = self.data_spec()
        train, val = train_val_split(cfg.data, cfg.val_fraction, cfg.seed, spec, cfg.max_images)
        if len(train) + len(val) < 2:
            raise TrainingError(f"{cfg.data}: need at least 2 labelled images, found {len(train) + len(val)}")
        unlabelled = None
        if cfg.unlabeled:
            try:
                unlabelled = load_unlabelled_faces(cfg.unlabeled.split(os.pathsep), spec, cfg.unlabeled_max)
            except DatasetError as e:
                raise TrainingError(str(e)) from e
            self.event("unlabelled", faces=len(unlabelled), left_out=len(unlabelled.errors))
        return train, val, unlabelled

    def student_view(self, data: LabeledFaces) -> LabeledFaces:
        """`data` (cropped by `data_spec`) with the student's own crops only."""
        if self.data_spec() == self.spec:
            return data
        return replace(data, images=convert_crops(data.images, self.data_spec(), self.spec))

    # ----- model -----
    def _new_model(self) -> keras.Model:
        cfg = self.config
        keras.utils.set_random_seed(cfg.training_seed())  # the same settings give the same starting weights
        if cfg.architecture == IMPORTED:
            model = self._imported_model()
        else:
            model = build_model(cfg.architecture, size=cfg.input_size, dropout=cfg.dropout)
        if cfg.finetune_from and cfg.architecture != IMPORTED:
            info = self.finetune_source()
            source = keras.saving.load_model(info.verify(KERAS_FILE), compile=False, safe_mode=True)
            model.set_weights(source.get_weights())
        if cfg.freeze_bn:
            for layer in model.layers:
                if isinstance(layer, keras.layers.BatchNormalization):
                    layer.trainable = False  # Keras then normalises with the layer's moving statistics
        if cfg.optimizer == "sgd":
            opt = keras.optimizers.SGD(cfg.learning_rate, momentum=0.9, nesterov=True, weight_decay=cfg.weight_decay)
        elif cfg.optimizer == "adam":
            opt = keras.optimizers.AdamW(cfg.learning_rate, weight_decay=cfg.weight_decay)
        else:
            raise TrainingError(f"optimizer must be 'sgd' or 'adam'. Received: {cfg.optimizer!r}")
        if cfg.teacher:
            loss = DistillationLoss(cfg.distill_temperature, cfg.distill_weight)
        else:
            loss = keras.losses.CategoricalCrossentropy(from_logits=True)
        model.compile(optimizer=opt, loss=loss)
        return model

    def _imported_model(self) -> keras.Model:
        """The source model's network: rebuilt from its ONNX file, or its Keras file when it was
        itself fine-tuned here."""
        info = self.finetune_source()
        if info.runtime != "onnx":
            return keras.saving.load_model(info.verify(KERAS_FILE), compile=False, safe_mode=True)
        contract = info.card.get("input", {})
        try:
            return import_onnx_classifier(
                info.verify(),
                self.spec.size,
                1 if self.spec.color == "gray" else 3,
                contract.get("mean", 0.0),
                contract.get("std", 1.0),
            )
        except (OnnxImportError, ModelError) as e:
            raise TrainingError(f"cannot fine-tune from {info.name!r}: {e}") from e

    def teacher_infos(self) -> list[tuple[ModelInfo, float]]:
        """The teachers and their shares of the mixed logits ([] without a teacher).

        Raises:
            TrainingError: bad distillation settings, a teacher that is not registered, or a
                consistent teacher that crops faces otherwise than the run.
        """
        cfg = self.config
        if not cfg.teacher:
            if cfg.second_teacher or cfg.unlabeled:
                raise TrainingError("--second-teacher and --unlabeled need a --teacher")
            return []
        if not 0.0 <= cfg.distill_weight <= 1.0 or cfg.distill_temperature <= 0:
            raise TrainingError(
                "distill_weight must be in [0, 1] and distill_temperature > 0. "
                f"Received: distill_weight={cfg.distill_weight}, distill_temperature={cfg.distill_temperature}"
            )
        if not 0.0 <= cfg.second_teacher_weight <= 1.0:
            raise TrainingError(f"second_teacher_weight must be in [0, 1]. Received: {cfg.second_teacher_weight}")
        named = [(cfg.teacher, 1.0 - (cfg.second_teacher_weight if cfg.second_teacher else 0.0))]
        if cfg.second_teacher:
            named.append((cfg.second_teacher, cfg.second_teacher_weight))
        out = []
        for name, share in named:
            try:
                out.append((get_model(name, self.models_dir), share))
            except ModelError as e:
                raise TrainingError(f"teacher {name!r} cannot be used: {e}") from e
        if cfg.teacher_mode == "consistent" and out[0][0].preprocessing != self.spec:
            raise TrainingError(
                f"teacher {cfg.teacher!r} was trained on other crops ({out[0][0].preprocessing}); "
                f"this run uses {self.spec}: set --input-size/--margin/--align to match "
                "(a consistent teacher judges the student's own crops)"
            )
        return out

    def teacher(self):
        """The run's teacher as a classifier (with its TTA; two teachers as their calibrated mix), or None.

        Raises:
            TrainingError: see `teacher_infos`; an unusable teacher.
        """
        cfg = self.config
        infos = self.teacher_infos()
        if not infos:
            return None
        try:
            loaded = [load_classifier(info, cfg.teacher_tta, os.cpu_count() or 1) for info, _ in infos]
        except (ModelError, ValueError) as e:
            raise TrainingError(f"teacher {cfg.teacher!r} cannot be used: {e}") from e
        if len(loaded) == 1:
            return loaded[0]
        temps = [info.temperature_for(cfg.teacher_tta) for info, _ in infos]
        return EnsembleClassifier(loaded, [w for _, w in infos], tta=cfg.teacher_tta, member_temperatures=temps)

    # Settings that decide which faces a run's teachers labelled, and how: a run may reuse another's
    # teachers' logits only when all of them are the same.
    SAME_TEACHER_LOGITS = (
        "data",
        "val_fraction",
        "seed",
        "max_images",
        "teacher",
        "teacher_tta",
        "second_teacher",
        "unlabeled",
        "unlabeled_max",
    )

    def check_borrowed_teacher_logits(self) -> None:
        """Before anything is written: `teacher_logits_from` names a run with the same teachers and faces.

        Raises:
            TrainingError: no such run, no logits there, or settings that differ (named).
        """
        cfg = self.config
        if not cfg.teacher_logits_from or (self.run_dir / TEACHER_FILE).is_file():
            return
        other = Path(cfg.teacher_logits_from)
        if not (other / "config.json").is_file() or not (other / TEACHER_FILE).is_file():
            raise TrainingError(f"{other}: not a run folder holding its teachers' logits ({TEACHER_FILE})")
        theirs = TrainConfig.load(other / "config.json")
        differ = [k for k in self.SAME_TEACHER_LOGITS if getattr(theirs, k) != getattr(cfg, k)]
        if not differ and self.teacher_crops(theirs) != self.teacher_crops(cfg):
            raise TrainingError(
                f"{other}: its teachers saw other crops (its student's crops, {student_spec(theirs)}, "
                f"shared a kind with a teacher's; here {self.spec})"
            )
        if differ == ["unlabeled"] and _folders_extend(theirs, cfg):
            return  # their faces come first here: only the faces of the added folders are labelled
        if differ:
            raise TrainingError(
                f"{other} labelled other faces or with other teachers: "
                + ", ".join(f"{k} {getattr(theirs, k)!r} there, {getattr(cfg, k)!r} here" for k in differ)
            )

    def teacher_crops(self, config: TrainConfig) -> frozenset:
        """The crops the teachers label under `config`: of the faces cropped for the student and the
        teachers together (the student's size can change a teacher's crops of the same kind)."""
        specs = [info.preprocessing for info, _ in self.teacher_infos()]
        kinds = {part.family for spec in specs for part in spec.parts}
        combined = combine_specs([student_spec(config)] + specs)
        return frozenset(part for part in combined.parts if part.family in kinds)

    def needs_fixed_logits(self) -> bool:
        """Whether the teachers label every training face once before training: always with a
        "fixed" teacher; with a "consistent" one when a second teacher or unlabelled faces need
        their fixed part (the second teacher's logits; the unlabelled faces' label targets)."""
        cfg = self.config
        return bool(cfg.teacher) and (cfg.teacher_mode == "fixed" or bool(cfg.second_teacher or cfg.unlabeled))

    def teacher_parts(self, faces: LabeledFaces) -> np.ndarray | None:
        """Each teacher's logits for every training face (cropped by `data_spec`), (teachers, N, 7),
        two teachers' each divided by its calibrated temperature; None when not needed.

        They are computed once per run and kept in the run folder (or borrowed from the run
        `teacher_logits_from` names), so a resumed run learns from the same targets (the teachers
        may have changed since).

        Raises:
            TrainingError: see `teacher`; borrowed logits for other faces or teachers.
        """
        cfg = self.config
        if not self.needs_fixed_logits():
            return None
        cache = self.run_dir / TEACHER_FILE
        if not cache.is_file() and cfg.teacher_logits_from:
            other = Path(cfg.teacher_logits_from)
            borrowed = np.load(other / TEACHER_FILE)
            fewer = borrowed.shape[1] < len(faces) and _folders_extend(TrainConfig.load(other / "config.json"), cfg)
            if borrowed.shape[0] != len(self.teacher_infos()) or not (borrowed.shape[1] == len(faces) or fewer):
                raise TrainingError(
                    f"{cfg.teacher_logits_from}: its teachers' logits are for {borrowed.shape[1]} faces and "
                    f"{borrowed.shape[0]} teachers, this run has {len(faces)} and {len(self.teacher_infos())}"
                )
            if fewer:  # this run added unlabelled folders after the other's: label their faces
                self.event("labelling", faces=len(faces) - borrowed.shape[1], borrowed=borrowed.shape[1])
                added = self._label(faces.images[borrowed.shape[1] :])
                borrowed = np.concatenate([borrowed, added], axis=1)
            np.save(cache, borrowed.astype(np.float32))
        parts = np.load(cache) if cache.is_file() else None
        if parts is None or parts.shape[1:] != (len(faces), len(EMOTIONS)):
            parts = self._label(faces.images)
            np.save(cache, parts)
        return parts

    def _label(self, images: np.ndarray) -> np.ndarray:
        """Each teacher's logits (teachers, N, 7) for training crops (cropped by `data_spec`)."""
        teacher = self.teacher()
        crops = convert_crops(images, self.data_spec(), teacher.spec)
        if isinstance(teacher, EnsembleClassifier) and len(self.teacher_infos()) > 1:
            chunks = [teacher.member_logits(crops[i : i + 512]) for i in range(0, len(crops), 512)]
            parts = np.stack(
                [np.concatenate([c[k] for c in chunks]) / t for k, t in enumerate(teacher.member_temperatures)]
            )
        else:
            parts = np.concatenate([teacher.logits(crops[i : i + 512]) for i in range(0, len(crops), 512)])[None]
        return parts.astype(np.float32)

    def second_teacher_shares(self, faces: int, labelled: int) -> np.ndarray:
        """The second teacher's share of each face's mix: `second_teacher_weight` on the first
        `labelled` faces, `second_teacher_weight_unlabeled` (if set) on the unlabelled ones after them."""
        cfg = self.config
        share = np.full(faces, cfg.second_teacher_weight, np.float32)
        if cfg.second_teacher_weight_unlabeled is not None:
            share[labelled:] = cfg.second_teacher_weight_unlabeled
        return share

    def teacher_logits(self, parts: np.ndarray | None, labelled: int) -> np.ndarray | None:
        """The teachers' mixed fixed logits per training face (from `teacher_parts`), or None."""
        if parts is None:
            return None
        if len(parts) == 1:
            return parts[0]
        share = self.second_teacher_shares(parts.shape[1], labelled)
        return (1.0 - share)[:, None] * parts[0] + share[:, None] * parts[1]

    def targets(
        self, train: LabeledFaces, unlabelled: LabeledFaces | None, logits: np.ndarray | None, weights: np.ndarray
    ) -> tuple[np.ndarray | None, np.ndarray | None]:
        """Label targets and sample weights of every training face, or (None, None) when all are labelled.

        Labelled faces get their smoothed one-hot label and class weight; unlabelled ones the
        teachers' probabilities (temperature 1) and `unlabeled_weight`.
        """
        cfg = self.config
        if unlabelled is None:
            return None, None
        smooth = cfg.label_smoothing
        labelled = np.eye(len(EMOTIONS), dtype=np.float32)[train.labels] * (1.0 - smooth) + smooth / len(EMOTIONS)
        taught = softmax(logits[len(train) :]).astype(np.float32)
        targets = np.concatenate([labelled, taught])
        sample_weights = np.concatenate([weights[train.labels], np.full(len(unlabelled), cfg.unlabeled_weight)])
        return targets, sample_weights.astype(np.float32)

    def consistent_teacher(self, parts: np.ndarray | None, labelled: int):
        """With a "consistent" teacher: (the function that labels each augmented batch, the fixed
        part per face it completes, or None), else (None, None).

        With a second teacher, the first (which must crop faces as the student does) judges each
        augmented batch, calibrated by its temperature, and the second teacher's share of the mix
        stays fixed: its calibrated logits on the faces as they are (it crops faces its own way).

        Raises:
            TrainingError: see `teacher_infos`; an unusable teacher.
        """
        cfg = self.config
        if not cfg.teacher or cfg.teacher_mode != "consistent":
            return None, None
        info = self.teacher_infos()[0][0]
        try:
            teacher = load_classifier(info, cfg.teacher_tta, 1)  # it runs alongside training
        except (ModelError, ValueError) as e:
            raise TrainingError(f"teacher {cfg.teacher!r} cannot be used: {e}") from e
        temperature = cfg.distill_temperature
        if not cfg.second_teacher:

            def judge(crops: np.ndarray) -> np.ndarray:
                return softmax(teacher.logits(crops), temperature).astype(np.float32)

            return judge, None
        calibrated = info.temperature_for(cfg.teacher_tta)
        share = self.second_teacher_shares(parts.shape[1], labelled)
        fixed = np.concatenate([share[:, None], share[:, None] * parts[1]], axis=1).astype(np.float32)

        def judge_with_second(crops: np.ndarray, fixed: np.ndarray) -> np.ndarray:
            mixed = (1.0 - fixed[:, :1]) * teacher.logits(crops) / calibrated + fixed[:, 1:]
            return softmax(mixed, temperature).astype(np.float32)

        return judge_with_second, fixed

    def _resume_model(self) -> keras.Model:
        path = self.checkpoint_dir / "last.keras"
        try:
            return keras.saving.load_model(path, safe_mode=True)
        except Exception as e:  # any failure to read the file means the checkpoint is unusable
            raise TrainingError(f"{path}: checkpoint cannot be loaded ({type(e).__name__}: {e})") from e

    def validate(self, model: keras.Model, val: LabeledFaces) -> dict:
        """Validation metrics of `model`, including per-class recall and the confusion matrix."""
        logits = predict_logits(model, val.images)
        probs = softmax(logits)
        m = classification_metrics(val.labels, probs)
        loss = float(-np.log(np.clip(probs[np.arange(len(val)), val.labels], 1e-12, None)).mean())
        score = {"val_accuracy": m["accuracy"], "val_macro_f1": m["macro_f1"], "val_loss": -loss}[self.config.monitor]
        return {
            "val_loss": loss,
            "val_accuracy": m["accuracy"],
            "val_macro_f1": m["macro_f1"],
            "per_class_recall": {c: m["per_class"][c]["recall"] for c in EMOTIONS},
            "confusion_matrix": m["confusion_matrix"],
            "score": score,
        }

    # ----- the run -----
    def execute(self, resume: bool = False) -> dict:
        """Train (or continue) and register the result; returns the final event.

        Raises:
            TrainingError: bad settings, unusable data or an unreadable checkpoint.
        """
        cfg = self.config
        keras.mixed_precision.set_global_policy(choose_policy(cfg.precision))
        self.check_registration()
        if cfg.teacher and cfg.teacher_mode not in TEACHER_MODES:
            raise TrainingError(f"teacher_mode must be one of {TEACHER_MODES}. Received: {cfg.teacher_mode!r}")
        state = self.load_state()
        for partial in self.checkpoint_dir.glob("*-partial.keras"):
            partial.unlink()  # a save cut off by a kill; the checkpoint it was replacing is whole
        if self.config.finetune_from and not (resume and state["epoch"] > 0):
            self.finetune_source()  # a bad source fails now, not after loading the data
        self.check_test_data()
        self.teacher_infos()  # bad distillation settings or an unknown teacher fail now
        self.check_borrowed_teacher_logits()
        if self._config_to_save is not None:
            # written once every check has passed: a refused run changes nothing in the folder;
            # a run that never finished an epoch starts again with these settings
            self.config.save(self._config_to_save)
        self.preflight_done = True
        (self.run_dir / STOP_FILE).unlink(missing_ok=True)
        train, val, unlabelled = self.load_data()
        if len(val) == 0:
            raise TrainingError("validation split is empty: raise --val-fraction or add images")
        model = self._resume_model() if resume and state["epoch"] > 0 else self._new_model()
        weights = class_weights(train.labels, cfg.class_weighting)
        faces = concat_labelled([train, unlabelled]) if unlabelled is not None else train
        parts = self.teacher_parts(faces)
        logits = self.teacher_logits(parts, len(train))
        targets, sample_weights = self.targets(train, unlabelled, logits, weights)
        train, val, faces = self.student_view(train), self.student_view(val), self.student_view(faces)
        judge, fixed = self.consistent_teacher(parts, len(train))
        if judge is None and logits is not None:
            fixed = softmax(logits, cfg.distill_temperature).astype(np.float32)
        tf.keras.utils.set_random_seed(cfg.training_seed() + state["epoch"])
        ds = training_dataset(
            faces.images,
            faces.labels,
            weights,
            cfg.batch_size,
            cfg.augmentation,
            cfg.label_smoothing,
            cfg.training_seed() + state["epoch"],
            mixup=cfg.mixup,
            soft_targets=fixed,
            teacher=judge,
            label_targets=targets,
            sample_weights=sample_weights,
        )
        steps = int(ds.cardinality().numpy())
        self.event(
            "resumed" if resume else "started",
            config=cfg.to_dict(),
            train_counts=train.class_counts(),
            val_counts=val.class_counts(),
            photos_cropped=train.photos_cropped,
            photos_without_face=train.photos_without_face,
            start_epoch=state["epoch"],
            policy=keras.mixed_precision.global_policy().name,
            params=int(model.count_params()),
            steps_per_epoch=steps,
        )
        callback = _RunCallback(self, val, steps, state)
        previous = _install_signal_handlers(callback.stop)
        try:
            if state["epoch"] < cfg.epochs:
                model.fit(ds, epochs=cfg.epochs, initial_epoch=state["epoch"], callbacks=[callback], verbose=0)
        finally:
            _restore_signal_handlers(previous)
            callback.add_wall_time()
            self.save_state(state)
        status = "stopped" if callback.stopped_by_user else "finished"
        if state["best_epoch"] == 0:
            return self.event(
                status,
                model=None,
                epochs_done=state["epoch"],
                note="no epoch finished, nothing to register",
            )
        model_name = (
            register_best_checkpoint(self.run_dir, cfg, self.spec, val, state, self.models_dir, self.report)
            if cfg.register_as
            else None
        )
        return self.event(
            status,
            model=model_name,
            epochs_done=state["epoch"],
            best_epoch=state["best_epoch"],
            early_stopped=callback.stopped_early,
            wall_seconds=state["wall_seconds"],
        )


def student_spec(config: TrainConfig) -> Preprocessing:
    """How a run's student crops faces: the config's size, margin and alignment; an "imported"
    network crops as its source model's card says.

    Raises:
        TrainingError: an imported network without a usable source model.
    """
    if config.architecture != IMPORTED:
        return Preprocessing(size=config.input_size, margin=config.margin, align=config.align)
    if not config.finetune_from:
        raise TrainingError("architecture 'imported' needs --finetune-from: the model whose network it rebuilds")
    try:
        spec = get_model(config.finetune_from, TrainingRun.models_dir_of(config)).preprocessing
    except ModelError as e:
        raise TrainingError(f"cannot fine-tune from {config.finetune_from!r}: {e}") from e
    if not isinstance(spec, Preprocessing):
        raise TrainingError(f"cannot fine-tune from {config.finetune_from!r}: it crops faces in several ways")
    return spec


def _folders_extend(theirs: TrainConfig, mine: TrainConfig) -> bool:
    """Whether `mine` takes all of `theirs`' unlabelled folders, in the same order, before any it adds
    (neither capped): then their training faces are the first of mine, in the same order."""
    before = theirs.unlabeled.split(os.pathsep) if theirs.unlabeled else []
    now = mine.unlabeled.split(os.pathsep) if mine.unlabeled else []
    uncapped = theirs.unlabeled_max is None and mine.unlabeled_max is None
    return uncapped and len(now) > len(before) and now[: len(before)] == before


def _install_signal_handlers(stop: _StopRequest):
    if threading.current_thread() is not threading.main_thread():
        return None

    def handler(signum, frame):
        stop.signalled.set()

    return {sig: signal.signal(sig, handler) for sig in (signal.SIGTERM, signal.SIGINT)}


def _restore_signal_handlers(previous) -> None:
    for sig, handler in (previous or {}).items():
        signal.signal(sig, handler)


@contextmanager
def run_folder_lock(run_dir: Path, create: bool) -> Iterator[None]:
    """Hold the run folder for this process, so that two processes never train one run.

    Args:
        run_dir: the run folder.
        create: make the folder if needed (a new run); else it must exist (a resume).

    Raises:
        TrainingError: another process holds the folder, or (resume) there is no such folder.
    """
    if create:
        run_dir.mkdir(parents=True, exist_ok=True)
    elif not run_dir.is_dir():
        raise TrainingError(f"{run_dir}: not a training run (no such folder)")
    try:
        with hold_folder(run_dir):
            yield
    except FolderBusy as e:
        raise TrainingError(str(e)) from None


def run_training(
    run_dir: str | Path, config: TrainConfig | None = None, resume: bool = False, report: Reporter | None = None
) -> dict:
    """Execute a run, recording a `failed` event (with the traceback) if it crashes; `report` also
    receives every event as it is written.

    The run folder is locked for the whole run: a second process on it is refused at once,
    before it reads or writes anything there (and without a `failed` event in the running one).
    """
    run_dir = Path(run_dir)
    created = config is not None and not run_dir.exists()
    if config is not None:
        check_run_folder(run_dir)  # before the lock file is made in it
    with run_folder_lock(run_dir, create=config is not None):
        try:
            run = TrainingRun(run_dir, config, report)
        except TrainingError:
            if created:
                _remove_new_run_folder(run_dir)
            raise
        try:
            return run.execute(resume=resume)
        except BaseException as e:
            if isinstance(e, TrainingError) and not run.preflight_done and created:
                _remove_new_run_folder(run_dir)  # refused before it began: leave nothing behind
                raise
            run.event("failed", error=f"{type(e).__name__}: {e}", traceback=traceback.format_exc())
            raise


def check_run_folder(run_dir: Path) -> None:
    """Refuse a folder for a new run unless it is new, empty or holds only a run's own files.

    Raises:
        TrainingError: the folder holds other files (nothing is written into it).
    """
    if not run_dir.is_dir():
        return
    foreign = sorted(p.name for p in run_dir.iterdir() if p.name not in RUN_FILES)
    if foreign:
        raise TrainingError(
            f"{run_dir} holds files that are not a training run's ({', '.join(foreign[:5])}); "
            "give a new or empty --run-dir"
        )


def _remove_new_run_folder(run_dir: Path) -> None:
    """Delete a run folder this process made for a run that was refused (only a run's own files)."""
    for path in sorted(run_dir.rglob("*"), reverse=True):
        if path.relative_to(run_dir).parts[0] in RUN_FILES:
            path.rmdir() if path.is_dir() and not path.is_symlink() else path.unlink()
    try:
        run_dir.rmdir()
    except OSError:
        pass  # something else appeared there meanwhile: left as it is
