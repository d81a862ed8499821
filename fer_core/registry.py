"""The model registry: `models/<name>/` folders with weights and a model card.

A model folder holds `model.tflite` (inference), `model.keras` (fine-tuning) and
`card.json`. The card lists the classes, preprocessing, training details, metrics and
the sha256 of each weights file; loading checks all of them. `models/active.txt` names
the active model.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

from fer_core.classes import EMOTIONS
from fer_core.preprocess import Preprocessing

CARD_FILE = "card.json"
TFLITE_FILE = "model.tflite"
KERAS_FILE = "model.keras"
ACTIVE_FILE = "active.txt"


class ModelError(RuntimeError):
    """A registered model cannot be used; the message names the file and the problem."""


def default_models_dir() -> Path:
    """`$FER_MODELS_DIR`, else the repository's `models/` folder."""
    env = os.environ.get("FER_MODELS_DIR")
    return Path(env) if env else Path(__file__).resolve().parent.parent / "models"


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
    def preprocessing(self) -> Preprocessing:
        return Preprocessing.from_dict(self.card.get("preprocessing", {}))

    @property
    def temperature(self) -> float:
        return float(self.card.get("calibration", {}).get("temperature", 1.0))

    @property
    def tflite_path(self) -> Path:
        return self.folder / TFLITE_FILE

    @property
    def keras_path(self) -> Path:
        return self.folder / KERAS_FILE

    @property
    def weights_hash(self) -> str:
        return self.card.get("files", {}).get(TFLITE_FILE, "")

    def verify(self, filename: str = TFLITE_FILE) -> Path:
        """Check a weights file exists and matches the card's sha256.

        Raises:
            ModelError: the file is missing or its bytes differ from the card.
        """
        path = self.folder / filename
        if not path.is_file():
            raise ModelError(f"{path}: weights file is missing")
        expected = self.card.get("files", {}).get(filename)
        if not expected:
            raise ModelError(f"{self.folder / CARD_FILE}: card has no sha256 for {filename}")
        actual = sha256_file(path)
        if actual != expected:
            raise ModelError(
                f"{path}: sha256 {actual[:12]}... does not match the card's {expected[:12]}... (corrupt or replaced)"
            )
        return path


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


def get_model(name: str | None = None, models_dir: Path | None = None) -> ModelInfo:
    """The named model (or the active one) with its card checked.

    Raises:
        ModelError: no such model, no model installed, or a bad card.
    """
    models_dir = models_dir or default_models_dir()
    if name is None:
        name = active_model_name(models_dir)
        if name is None:
            raise ModelError(
                f"No trained model is installed in {models_dir}. Train one with "
                "`python -m fer_core train ... --register NAME` or copy a model folder there."
            )
    folder = models_dir / name
    if not folder.is_dir():
        known = ", ".join(m for m in list_model_names(models_dir)) or "none"
        raise ModelError(f"{folder}: no such model. Registered models: {known}")
    return ModelInfo(name=name, folder=folder, card=read_card(folder))


def list_model_names(models_dir: Path | None = None) -> list[str]:
    """Names of the folders in the registry that hold a card (valid or not)."""
    models_dir = models_dir or default_models_dir()
    if not models_dir.is_dir():
        return []
    return sorted(p.name for p in models_dir.iterdir() if (p / CARD_FILE).is_file())


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
            metrics = info.card.get("metrics", {}).get("test") or info.card.get("metrics", {}).get("validation") or {}
            row.update(
                architecture=info.card.get("architecture", ""),
                accuracy=metrics.get("accuracy"),
                macro_f1=metrics.get("macro_f1"),
                created=info.card.get("created", ""),
            )
        except ModelError as e:
            row.update(ok=False, error=str(e))
        rows.append(row)
    return rows


def active_model_name(models_dir: Path | None = None) -> str | None:
    """The active model's name from `active.txt`, else the only or first valid model, else None."""
    models_dir = models_dir or default_models_dir()
    marker = models_dir / ACTIVE_FILE
    names = list_model_names(models_dir)
    if marker.is_file():
        chosen = marker.read_text().strip()
        if chosen in names:
            return chosen
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


def write_card(folder: Path, card: dict) -> None:
    """Write a card, filling in the sha256 of every weights file present."""
    card = dict(card)
    card["classes"] = list(EMOTIONS)
    card["files"] = {
        fname: sha256_file(folder / fname) for fname in (TFLITE_FILE, KERAS_FILE) if (folder / fname).is_file()
    }
    tmp = folder / (CARD_FILE + ".tmp")
    tmp.write_text(json.dumps(card, indent=2, sort_keys=False) + "\n")
    tmp.replace(folder / CARD_FILE)


def save_calibration(name: str, calibration: dict, models_dir: Path | None = None) -> None:
    """Store a fitted temperature (and its before/after figures) in a model's card.

    Raises:
        ModelError: the model is missing or its card is bad.
    """
    info = get_model(name, models_dir)
    card = dict(info.card)
    card["calibration"] = calibration
    write_card(info.folder, card)
