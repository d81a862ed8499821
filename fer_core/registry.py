"""The model registry: `models/<name>/` folders with weights and a model card.

A model folder holds `card.json` and its weights: `model.tflite` (this project's models, LiteRT)
and `model.keras` (fine-tuning), or `model.onnx` (models made elsewhere, ONNX Runtime) with the
`LICENSE` they ship under. The card lists the classes, runtime, preprocessing, training details,
metrics and the sha256 of each weights file; loading checks all of them. `models/active.txt`
names the active model.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from fer_core.classes import EMOTIONS
from fer_core.names import UnsafeNameError, check_name
from fer_core.preprocess import CompositePreprocessing, Preprocessing
from fer_core.settings import REPO_ROOT, Environment

# Architectures whose weights have the same shapes (only strides differ), so a model of one can be
# fine-tuned as the other: `resnet-fast` starts from a trained `resnet`.
_WEIGHT_LAYOUT = {"resnet-fast": "resnet"}
IMPORTED = "imported"
"""The architecture of a network rebuilt from an ONNX model made elsewhere (fer_core.train.onnx_import),
and of the models fine-tuned from one: it crops faces as its source's card says."""


def same_weights(a: str, b: str) -> bool:
    """Whether architectures `a` and `b` share their weights' shapes (one can start from the other)."""
    return _WEIGHT_LAYOUT.get(a, a) == _WEIGHT_LAYOUT.get(b, b)


CARD_FILE = "card.json"
TFLITE_FILE = "model.tflite"
KERAS_FILE = "model.keras"
ONNX_FILE = "model.onnx"
LICENSE_FILE = "LICENSE"
WEIGHTS_FILES = {"litert": TFLITE_FILE, "onnx": ONNX_FILE}
"""The weights file each runtime (a card's `runtime`, "litert" when absent) loads."""
# How a LiteRT file stores and runs its model (a card's `tflite_weights`). New models are
# "dynamic" (int8 weights, activations quantized as it runs): 2.5-3.5x faster than float16 at the
# same accuracy; full "int8" is 2x faster again in batches but lost 0.1-0.3 points
# (tests/benchmarks/BENCHMARKS.md, "Quantized LiteRT files").
WEIGHT_MODES = ("dynamic", "int8", "float16", "float32")
TFLITE_WEIGHTS = "dynamic"
ACTIVE_FILE = "active.txt"
MODEL_FILES = frozenset({CARD_FILE, TFLITE_FILE, KERAS_FILE, ONNX_FILE, LICENSE_FILE})
"""Everything a registered model folder may hold; a folder with anything else is never replaced."""


class ModelError(RuntimeError):
    """A registered model cannot be used; the message names the file and the problem."""


class ModelExistsError(ModelError):
    """Registering would replace an existing model without the user's consent."""


def default_models_dir() -> Path:
    """`$FER_MODELS_DIR`, else the repository's `models/` folder."""
    return Environment.read().models_dir


def is_repository_registry(folder: Path) -> bool:
    """Whether `folder` is the repository's own `models/` (where git ignores all but the shipped models)."""
    return folder.resolve() == (REPO_ROOT / "models").resolve()


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file's bytes."""
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


@dataclass(frozen=True)
class ModelInfo:
    """A registered model as found on disk (its card parsed and checked)."""

    name: str
    folder: Path
    card: dict

    @property
    def preprocessing(self) -> Preprocessing | CompositePreprocessing:
        """How the model crops faces (the card's `preprocessing`).

        Raises:
            ModelError: the card's preprocessing is malformed.
        """
        try:
            return Preprocessing.from_dict(self.card.get("preprocessing", {}))
        except (ValueError, TypeError, AttributeError) as e:
            raise ModelError(f"{self.folder / CARD_FILE}: bad preprocessing ({e})") from e

    @property
    def runtime(self) -> str:
        """ "litert" or "onnx" (what runs the weights file); "ensemble" for an ensemble card."""
        return "ensemble" if self.is_ensemble else str(self.card.get("runtime", "litert"))

    @property
    def weights_file(self) -> str:
        """The name of the file the runtime loads (the card file for an ensemble).

        Raises:
            ModelError: an unknown runtime.
        """
        if self.is_ensemble:
            return CARD_FILE
        if self.runtime not in WEIGHTS_FILES:
            raise ModelError(
                f"{self.folder / CARD_FILE}: unknown runtime {self.runtime!r}; expected one of {sorted(WEIGHTS_FILES)}"
            )
        return WEIGHTS_FILES[self.runtime]

    @property
    def temperature(self) -> float:
        """The softmax temperature of plain predictions (no test-time augmentation)."""
        return self.temperature_for("none")

    def temperature_for(self, tta: str) -> float:
        """The temperature fitted for a TTA mode; modes without their own use the plain one.

        A temperature is fitted on one kind of logits: averaging views changes how sharp the
        logits are, so one fitted on TTA logits is stored for that mode only.
        """
        calibration = self.card.get("calibration", {})
        own = calibration.get("by_tta", {}).get(tta) if tta != "none" else None
        return float((own or calibration).get("temperature", 1.0))

    @property
    def tflite_path(self) -> Path:
        return self.folder / TFLITE_FILE

    @property
    def keras_path(self) -> Path:
        return self.folder / KERAS_FILE

    @property
    def is_ensemble(self) -> bool:
        """Whether this card averages other registered models (no weights of its own)."""
        return self.card.get("kind") == "ensemble"

    @property
    def weights_hash(self) -> str:
        if self.is_ensemble:  # changes whenever a member or a weight changes
            parts = [f"{m.name}:{m.weights_hash}:{w}" for m, w in self.members()]
            return hashlib.sha256("|".join(parts).encode()).hexdigest()
        return self.card.get("files", {}).get(self.weights_file, "")

    def members(self) -> list[tuple[ModelInfo, float]]:
        """An ensemble's member models (from the same registry folder) and their weights.

        Raises:
            ModelError: not an ensemble, a member missing or unusable, or a bad weight.
        """
        listed = self.card.get("members") if self.is_ensemble else None
        if not isinstance(listed, list) or not listed:
            raise ModelError(f"{self.folder / CARD_FILE}: not an ensemble card (no members)")
        out = []
        for entry in listed:
            if not isinstance(entry, dict) or not isinstance(entry.get("name"), str):
                raise ModelError(
                    f'{self.folder / CARD_FILE}: each member must be {{"name": ..., "weight": ...}}. '
                    f"Received: {entry!r}"
                )
            name, weight = entry["name"], entry.get("weight", 1.0)
            temperature = entry.get("temperature", 1.0)
            if not isinstance(weight, (int, float)) or isinstance(weight, bool) or not weight >= 0:
                raise ModelError(f"{self.folder / CARD_FILE}: member weight must be >= 0. Received: {weight!r}")
            if not isinstance(temperature, (int, float)) or not temperature > 0:
                raise ModelError(
                    f"{self.folder / CARD_FILE}: member temperature must be > 0. Received: {temperature!r}"
                )
            if name == self.name:
                raise ModelError(f"{self.folder / CARD_FILE}: ensemble {self.name!r} lists itself as a member")
            try:
                member = get_model(name, self.folder.parent)
            except ModelError as e:
                raise ModelError(f"ensemble {self.name!r}: member {name!r} is not usable: {e}") from e
            if member.is_ensemble:
                raise ModelError(f"ensemble {self.name!r}: member {name!r} is itself an ensemble")
            out.append((member, float(weight)))
        if sum(w for _, w in out) <= 0:
            raise ModelError(f"{self.folder / CARD_FILE}: member weights are all 0")
        return out

    def verify(self, filename: str | None = None) -> Path:
        """Check a weights file exists and matches the card's sha256 (for an ensemble: every member's).

        Returns:
            The checked weights file (an ensemble's card file).

        Raises:
            ModelError: the file is missing or its bytes differ from the card.
        """
        if self.is_ensemble:
            for member, _ in self.members():
                member.verify(filename)
            return self.folder / CARD_FILE
        path = self.folder / (filename or self.weights_file)
        if not path.is_file():
            raise ModelError(f"{path}: weights file is missing")
        expected = self.card.get("files", {}).get(path.name)
        if not expected:
            raise ModelError(f"{self.folder / CARD_FILE}: card has no sha256 for {path.name}")
        actual = sha256_file(path)
        if actual != expected:
            raise ModelError(
                f"{path}: sha256 {actual[:12]}... does not match the card's {expected[:12]}... (corrupt or replaced)"
            )
        return path


def finetune_problem(info: ModelInfo, architecture: str | None = None) -> str | None:
    """Why `info` cannot be fine-tuned (into `architecture`, when given), or None when it can.

    Fine-tuning starts from the model's Keras weights, so it needs them and an architecture with
    the same weights (the same one, or `resnet-fast` from a `resnet`); architecture "imported"
    starts from an ONNX model's network (or a model fine-tuned from one).
    """
    if info.is_ensemble:
        return (
            f"{info.name!r} is an ensemble, with no weights of its own: distil it into a new model "
            "(as the teacher) or fine-tune one of its members"
        )
    if info.runtime == "onnx":
        if architecture in (None, IMPORTED):
            return None
        return (
            f"{info.name!r} is an ONNX model made elsewhere: fine-tune it with architecture '{IMPORTED}', "
            "which rebuilds its network"
        )
    if not info.keras_path.is_file():
        return f"{info.name!r} ships as a LiteRT file only (no {KERAS_FILE}), which cannot be trained further"
    own = info.card.get("architecture")
    if architecture is not None and not same_weights(str(own), architecture):
        return f"{info.name!r} is {own!r}: fine-tuning needs the same architecture, not {architecture!r}"
    return None


def read_card(folder: Path) -> dict:
    """Parse and check a model card.

    Raises:
        ModelError: missing, not JSON, or its classes differ from EMOTIONS.
    """
    path = folder / CARD_FILE
    if not path.is_file():
        raise ModelError(f"{path}: model card is missing")
    try:
        card = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ModelError(f"{path}: model card is not valid JSON ({e})") from e
    if not isinstance(card, dict):
        raise ModelError(f"{path}: model card must be a JSON object")
    if list(card.get("classes", [])) != list(EMOTIONS):
        raise ModelError(f"{path}: classes must be {list(EMOTIONS)}. Received: {card.get('classes')}")
    return card


def model_folder(name: str, models_dir: Path | None = None) -> Path:
    """The folder of model `name` in the registry (it need not exist yet).

    Raises:
        ModelError: `name` is not a valid model name (a path, `.`, `..`, empty...).
    """
    try:
        check_name(name, "model name")
    except UnsafeNameError as e:
        raise ModelError(str(e)) from e
    return (models_dir or default_models_dir()) / name


def get_model(name: str | None = None, models_dir: Path | None = None) -> ModelInfo:
    """The named model (or the active one) with its card checked.

    Raises:
        ModelError: an invalid name, no such model, no model installed, `active.txt`
            naming a model that is not there, or a bad card.
    """
    models_dir = models_dir or default_models_dir()
    if name is None:
        name = active_model_name(models_dir)
        if name is None:
            raise ModelError(
                f"No trained model is installed in {models_dir}. Train one with "
                "`python -m fer_core train ... --register-as NAME` or copy a model folder there."
            )
    folder = model_folder(name, models_dir)
    if not folder.is_dir():
        known = ", ".join(m for m in list_model_names(models_dir)) or "none"
        raise ModelError(f"{folder}: no such model. Registered models: {known}")
    return ModelInfo(name=name, folder=folder, card=read_card(folder))


def list_model_names(models_dir: Path | None = None) -> list[str]:
    """Names of the folders in the registry that hold a card (valid or not)."""
    models_dir = models_dir or default_models_dir()
    if not models_dir.is_dir():
        return []
    return sorted(p.name for p in models_dir.iterdir() if (p / CARD_FILE).is_file() and _is_valid_name(p.name))


def _is_valid_name(name: str) -> bool:
    try:
        check_name(name)
    except UnsafeNameError:
        return False
    return True


def list_models(models_dir: Path | None = None) -> list[dict]:
    """One row per registered model: name, active, ok, error, and card highlights."""
    models_dir = models_dir or default_models_dir()
    active = active_model_name(models_dir)
    rows = []
    for name in list_model_names(models_dir):
        row = {"name": name, "active": name == active, "ok": True, "error": ""}
        try:
            info = get_model(name, models_dir)
            info.verify()
            all_metrics = info.card.get("metrics", {})
            split = "test" if "test" in all_metrics else "validation" if "validation" in all_metrics else None
            metrics = all_metrics.get(split) or {}
            row.update(
                architecture=info.card.get("architecture", ""),
                parameters=info.card.get("parameters"),
                accuracy=metrics.get("accuracy"),
                macro_f1=metrics.get("macro_f1"),
                split=split,
                ms_per_face=info.card.get("tta", {}).get("none", {}).get("ms_per_face_batch64"),
                weights=info.card.get("tflite_weights", ""),
                fine_tunable=finetune_problem(info) is None,
                created=info.card.get("created", ""),
            )
        except ModelError as e:
            row.update(ok=False, error=str(e))
        rows.append(row)
    return rows


def active_model_name(models_dir: Path | None = None) -> str | None:
    """The name `active.txt` gives; without that file, the first registered model, else None.

    The name is returned even when no such model is usable, so that loading it fails loudly
    (`get_model` says what is wrong) instead of quietly using another model.
    """
    models_dir = models_dir or default_models_dir()
    marker = models_dir / ACTIVE_FILE
    if marker.is_file():
        return marker.read_text(errors="replace").strip()
    names = list_model_names(models_dir)
    return names[0] if names else None


def set_active_model(name: str, models_dir: Path | None = None) -> None:
    """Make `name` the active model for every page and command.

    Raises:
        ModelError: the model is not registered or fails its checks.
    """
    models_dir = models_dir or default_models_dir()
    get_model(name, models_dir).verify()
    tmp = models_dir / (ACTIVE_FILE + ".tmp")
    tmp.write_text(name + "\n")
    tmp.replace(models_dir / ACTIVE_FILE)


def registration_folder(
    name: str, models_dir: Path | None = None, overwrite: bool = False, run_dir: Path | None = None
) -> Path:
    """The folder to register model `name` into, once it is sure that nothing would be lost.

    An existing model is replaced only with `overwrite` (the user's explicit consent) or when
    the same training run registered it (a stopped run that was resumed), and never when the
    folder holds anything but a model's files.

    Raises:
        ModelExistsError: the model exists and replacing it was not allowed.
        ModelError: an invalid name, or a folder that is not a model folder.
    """
    folder = model_folder(name, models_dir)
    if not folder.exists() and not folder.is_symlink():
        return folder
    if folder.is_symlink() or not folder.is_dir():
        raise ModelError(f"{folder} exists and is not a model folder; choose another model name")
    foreign = sorted(p.name for p in folder.iterdir() if p.name not in MODEL_FILES or not p.is_file())
    if foreign:
        raise ModelError(
            f"{folder} holds files that are not a model's ({', '.join(foreign[:5])}); "
            "it is never replaced: choose another model name"
        )
    if not (overwrite or (run_dir is not None and _registered_by(folder) == Path(run_dir).resolve())):
        raise ModelExistsError(
            f"model {name!r} already exists in {folder.parent}; choose another name, or replace it "
            "with --overwrite (on the Train page: tick 'Replace the existing model')"
        )
    return folder


def _registered_by(folder: Path) -> Path | None:
    """The run folder that registered a model, from its card (None when unknown)."""
    try:
        run_dir = json.loads((folder / CARD_FILE).read_text()).get("training", {}).get("run_dir")
    except (OSError, ValueError, AttributeError):
        return None
    return Path(run_dir).resolve() if run_dir else None


def install_model_folder(staging: Path, folder: Path) -> None:
    """Move a completely written model folder into place, replacing the model there.

    Only a model's own files are ever deleted (see `registration_folder` for when
    replacing is allowed); a folder that also holds anything else is left on disk.
    """
    old = folder.with_name(f".old-{folder.name}")
    remove_model_files(old)
    if folder.exists():
        folder.rename(old)
    staging.rename(folder)
    remove_model_files(old)


def remove_model_files(folder: Path) -> None:
    """Delete a model folder's own files and then the folder, if it is left empty."""
    if not folder.is_dir() or folder.is_symlink():
        return
    for name in (*MODEL_FILES, CARD_FILE + ".tmp"):
        (folder / name).unlink(missing_ok=True)
    try:
        folder.rmdir()
    except OSError as e:
        raise ModelError(f"{folder}: holds other files, left in place ({e})") from e


def write_card(folder: Path, card: dict, hash_files: bool = True) -> None:
    """Write a card; with `hash_files`, fill in the sha256 of every weights file present.

    Only a folder whose weights were just produced is hashed: a card rewritten for another reason
    (calibration) keeps the checksums it had, so a weights file changed since still fails its check.
    """
    card = dict(card)
    card["classes"] = list(EMOTIONS)
    if hash_files:
        card["files"] = {
            fname: sha256_file(folder / fname)
            for fname in (TFLITE_FILE, KERAS_FILE, ONNX_FILE)
            if (folder / fname).is_file()
        }
    tmp = folder / (CARD_FILE + ".tmp")
    tmp.write_text(json.dumps(card, indent=2, sort_keys=False) + "\n")
    tmp.replace(folder / CARD_FILE)


def save_calibration(name: str, calibration: dict, tta: str = "none", models_dir: Path | None = None) -> None:
    """Store a fitted temperature (with its set, size and figures) for one TTA mode of a model.

    The calibration it replaces is kept in `calibration_history`, so `undo_calibration`
    can put it back.

    Raises:
        ModelError: the model is missing or its card is bad.
    """
    info = get_model(name, models_dir)
    info.verify()
    card = dict(info.card)
    current = dict(card.get("calibration", {}))
    by_tta = dict(current.get("by_tta", {}))
    previous = by_tta.get(tta) if tta != "none" else {k: v for k, v in current.items() if k != "by_tta"}
    card.setdefault("calibration_history", []).append({"tta": tta, "calibration": previous or None})
    if tta == "none":
        card["calibration"] = {**calibration, **({"by_tta": by_tta} if by_tta else {})}
    else:
        by_tta[tta] = calibration
        card["calibration"] = {**current, "by_tta": by_tta}
    write_card(info.folder, card, hash_files=False)


def undo_calibration(name: str, models_dir: Path | None = None) -> str | None:
    """Put back the calibration that the last `save_calibration` replaced.

    Returns:
        The TTA mode restored, or None when there was nothing to undo.
    """
    info = get_model(name, models_dir)
    info.verify()
    card = dict(info.card)
    history = list(card.get("calibration_history", []))
    if not history:
        return None
    last = history.pop()
    tta, previous = last["tta"], last["calibration"]
    current = dict(card.get("calibration", {}))
    by_tta = dict(current.get("by_tta", {}))
    if tta == "none":
        card["calibration"] = {**(previous or {}), **({"by_tta": by_tta} if by_tta else {})}
    else:
        if previous:
            by_tta[tta] = previous
        else:
            by_tta.pop(tta, None)
        card["calibration"] = {**current, "by_tta": by_tta}
    if not card["calibration"]:
        del card["calibration"]  # the card had none before the save
    if history:
        card["calibration_history"] = history
    else:
        card.pop("calibration_history", None)  # a save and its undo leave the card as it was
    write_card(info.folder, card, hash_files=False)
    return tta
