"""The full set of training hyper-parameters, saved with every run."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from fer_core.registry import IMPORTED

# The architectures `train` builds (fer_core.train.architectures), each with a note for menus and --help:
# its size and its multiply-adds per 48 px face (the cost per face on any machine; tested).
ARCHITECTURES = {
    "compact": "real-time, ~0.7M params, ~101M multiply-adds",
    "resnet": "the default's, ~1.6M params, ~167M multiply-adds",
    "resnet-fast": "the resnet with a stride-2 stem: the same weights, ~42M multiply-adds",
    "vgg": "~2.7M params, ~264M multiply-adds",
    "xception": "~0.4M params, ~141M multiply-adds",
    "tiny": "tests",
    IMPORTED: "the network of the --finetune-from ONNX model (e.g. raf-mobilefacenet), rebuilt in Keras; "
    "it crops faces as that model's card says",
}


@dataclass(frozen=True)
class Augmentation:
    """Which augmentations run on training batches (0 turns one off).

    `blur`, `rescale` and `jpeg` are the shares of faces degraded as real photos degrade them
    (fer_core.train.degrade); off by default, as in every model trained before they existed.
    """

    flip: bool = True
    shift: float = 0.1
    rotation_degrees: float = 10.0
    zoom: float = 0.1
    brightness: float = 0.2
    contrast: float = 0.2
    erasing: float = 0.5
    blur: float = 0.0
    rescale: float = 0.0
    jpeg: float = 0.0

    def to_dict(self) -> dict:
        return asdict(self)

    def build(self, seed: int):
        """Keras preprocessing layers (a Sequential) that augment (N, S, S, 1) batches."""
        import keras

        steps: list[keras.layers.Layer] = []
        if self.flip:
            steps.append(keras.layers.RandomFlip("horizontal", seed=seed))
        if self.rotation_degrees:
            steps.append(keras.layers.RandomRotation(self.rotation_degrees / 360.0, seed=seed + 1))
        if self.zoom:
            steps.append(keras.layers.RandomZoom(self.zoom, seed=seed + 2))
        if self.shift:
            steps.append(keras.layers.RandomTranslation(self.shift, self.shift, seed=seed + 3))
        if self.brightness:
            steps.append(keras.layers.RandomBrightness(self.brightness, value_range=(0, 255), seed=seed + 4))
        if self.contrast:
            steps.append(keras.layers.RandomContrast(self.contrast, value_range=(0, 255), seed=seed + 5))
        if self.erasing:
            steps.append(
                keras.layers.RandomErasing(self.erasing, scale=(0.02, 0.15), value_range=(0, 255), seed=seed + 6)
            )
        if self.blur or self.rescale or self.jpeg:
            from fer_core.train.degrade import RealPhotoDegradation  # needs TensorFlow, like keras here

            steps.append(RealPhotoDegradation(self.blur, self.rescale, self.jpeg, seed=seed + 7))
        return keras.Sequential(steps, name="augment")


@dataclass
class TrainConfig:
    """Everything that defines a training run; every field is a CLI argument.

    Attributes:
        data: class-folder dataset or FER-2013 CSV to train on.
        architecture: a key of ARCHITECTURES.
        epochs: maximum epochs.
        batch_size: images per step.
        learning_rate: peak learning rate.
        optimizer: "sgd" (Nesterov momentum) or "adam".
        weight_decay: decoupled weight decay.
        schedule: "cosine" (with warm-up) or "plateau" (reduce on validation plateau).
        warmup_epochs: linear warm-up epochs for "cosine".
        plateau_patience: epochs without improvement before the rate is cut ("plateau").
        label_smoothing: smoothing of the one-hot targets.
        mixup: alpha of the Beta distribution mixing pairs of training faces (0 = off).
        class_weighting: "none", "sqrt" or "balanced".
        augmentation: the augmentation switches.
        val_fraction: share of the data held out (stratified) for checkpoint choice.
        seed: seed of the validation split (and of the run itself unless `run_seed` is set).
        run_seed: seed of the weights' initialisation, the shuffling and the augmentation; None
            uses `seed`. Another value trains another model on the same validation split (an
            ensemble member of the same architecture).
        patience: early-stopping patience in epochs (0 = off).
        monitor: "val_accuracy", "val_macro_f1" or "val_loss" picks the best epoch.
        precision: "auto" (bfloat16 when the CPU has it), "bfloat16" or "float32".
        finetune_from: registered model to start from, or None.
        freeze_bn: keep every batch-normalisation layer as it is (its statistics and scales; it
            normalises with the statistics it has), as is usual when fine-tuning on other data.
        teacher: registered model (usually an ensemble) whose soft targets the model learns
            from (distillation), or None.
        second_teacher: another registered model (of any kind, cropping faces its own way, e.g. one
            trained on real photos) whose logits, divided by its calibrated temperature, are mixed
            with the teacher's: `second_teacher_weight` of the mix (0-1).
        unlabeled: folders of face photos without labels (joined with os.pathsep), whose largest
            faces are added to training with the teachers' probabilities as their targets;
            `unlabeled_max` caps how many, `unlabeled_weight` is their loss weight.
        teacher_tta: test-time augmentation of the teacher when it labels the training faces.
        teacher_mode: "fixed": the teacher labels each training face once, as it is, before
            training; "consistent": it labels every augmented (and mixed) batch exactly as the
            student sees it, each step (slower; the teacher runs on the CPU alongside). A second
            teacher's share stays fixed (its logits on the faces as they are), as do the unlabelled
            faces' label targets.
        distill_temperature: softening temperature of the teacher's and student's logits.
        distill_weight: share of the loss given to the teacher's soft targets (the rest to
            the labels).
        dropout: override of the architecture's dropout.
        max_images: train on a stratified subset of at most this many images.
        input_size: crop side in pixels.
        margin: crop margin around detected faces (recorded for inference).
        align: turn faces found with landmarks upright (photos in the data, and at inference).
        test_data: labelled set evaluated once at the end for the card (never for choices).
        register_as: model name to register the result under, or None.
        overwrite: replace an existing model of that name (only ever a folder of model files).
        models_dir: registry folder, or None for the default.
        command: the command line that started the run.
    """

    data: str
    architecture: str = "compact"
    epochs: int = 60
    batch_size: int = 64
    learning_rate: float = 0.02
    optimizer: str = "sgd"
    weight_decay: float = 5e-4
    schedule: str = "cosine"
    warmup_epochs: int = 2
    plateau_patience: int = 4
    label_smoothing: float = 0.1
    mixup: float = 0.0
    class_weighting: str = "sqrt"
    augmentation: Augmentation = field(default_factory=Augmentation)
    val_fraction: float = 0.1
    seed: int = 42
    run_seed: int | None = None
    patience: int = 15
    monitor: str = "val_accuracy"
    precision: str = "auto"
    finetune_from: str | None = None
    freeze_bn: bool = False
    teacher: str | None = None
    second_teacher: str | None = None
    second_teacher_weight: float = 0.5
    second_teacher_weight_unlabeled: float | None = None
    unlabeled: str | None = None
    unlabeled_max: int | None = None
    unlabeled_weight: float = 1.0
    teacher_logits_from: str | None = None
    teacher_tta: str = "flip"
    teacher_mode: str = "fixed"
    distill_temperature: float = 2.0
    distill_weight: float = 0.7
    dropout: float | None = None
    max_images: int | None = None
    input_size: int = 48
    margin: float = 0.1
    align: bool = True
    test_data: str | None = None
    register_as: str | None = None
    overwrite: bool = False
    models_dir: str | None = None
    command: str = ""

    def training_seed(self) -> int:
        """Seed of initialisation, shuffling and augmentation: `run_seed`, else `seed`."""
        return self.seed if self.run_seed is None else self.run_seed

    def to_dict(self) -> dict:
        data = asdict(self)
        data["augmentation"] = self.augmentation.to_dict()
        return data

    @classmethod
    def from_dict(cls, data: dict) -> TrainConfig:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"Unknown training settings: {unknown}")
        data = dict(data)
        data["augmentation"] = Augmentation(**data.get("augmentation", {}))
        return cls(**data)

    def save(self, path: Path) -> None:
        path.write_text(json.dumps(self.to_dict(), indent=2) + "\n")

    @classmethod
    def load(cls, path: Path) -> TrainConfig:
        return cls.from_dict(json.loads(path.read_text()))
