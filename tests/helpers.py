"""Synthetic test data: pattern images per class, scenes with real faces, a tiny model."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from fer_core.classes import EMOTIONS

SHARED = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "fer2013"


def pattern_face(label: int, rng: np.random.Generator, size: int = 48) -> np.ndarray:
    """A 48x48 uint8 image whose class is learnable: a class-specific stripe texture plus noise."""
    yy, xx = np.mgrid[0:size, 0:size]
    textures = [
        (yy // 3) % 2,  # thin horizontal stripes
        (xx // 3) % 2,  # thin vertical stripes
        (yy // 8) % 2,  # wide horizontal stripes
        (xx // 8) % 2,  # wide vertical stripes
        ((xx + yy) // 4) % 2,  # diagonal stripes
        ((xx // 6) + (yy // 6)) % 2,  # checkerboard
        np.zeros((size, size), int),  # flat
    ]
    img = textures[label] * 140 + 50 + rng.integers(0, 50, (size, size))
    return img.astype(np.uint8)


def write_class_folders(root: Path, per_class: int = 20, seed: int = 0, names: dict[int, str] | None = None) -> Path:
    """Write `root/<class>/<i>.png` pattern images for every class; returns root."""
    rng = np.random.default_rng(seed)
    for label, emotion in enumerate(EMOTIONS):
        folder = root / ((names or {}).get(label, emotion))
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            cv2.imwrite(str(folder / f"{i:03d}.png"), pattern_face(label, rng))
    return root


def fer_samples(split: str = "test", per_class: int = 3) -> list[tuple[Path, str]]:
    """A few real FER-2013 crops (path, emotion) from ../shared; [] when it is absent."""
    out = []
    for emotion in EMOTIONS:
        folder = SHARED / split / emotion
        if folder.is_dir():
            out.extend((p, emotion) for p in sorted(folder.glob("*.jpg"))[:per_class])
    return out


def compose_scene(
    faces: list[np.ndarray],
    size: tuple[int, int] = (640, 480),
    face_px: int = 150,
    seed: int = 0,
    offsets: list[tuple[int, int]] | None = None,
) -> tuple[np.ndarray, list[tuple[int, int, int, int]]]:
    """Paste gray face crops, enlarged to `face_px`, onto a textured BGR background.

    Returns:
        (image, boxes) with each face's (x, y, w, h) in pixels.
    """
    width, height = size
    rng = np.random.default_rng(seed)
    background = cv2.GaussianBlur(rng.integers(60, 200, (height, width, 3), dtype=np.uint8), (31, 31), 0)
    boxes = []
    slots = offsets or [(40 + i * (face_px + 50), 60 + (i % 2) * 80) for i in range(len(faces))]
    for face, (x, y) in zip(faces, slots):
        big = cv2.resize(face, (face_px, face_px), interpolation=cv2.INTER_CUBIC)
        background[y : y + face_px, x : x + face_px] = cv2.cvtColor(big, cv2.COLOR_GRAY2BGR)
        boxes.append((x, y, face_px, face_px))
    return background, boxes


def write_two_face_clip(path: Path, frames: int = 8, fps: int = 10) -> Path | None:
    """An MP4 of one still scene with two real FER-2013 test faces of 120 px; None without ../shared."""
    samples = fer_samples("test", per_class=1)[:2]
    if len(samples) < 2:
        return None
    scene, _ = compose_scene([cv2.imread(str(p), cv2.IMREAD_GRAYSCALE) for p, _ in samples], face_px=120)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (scene.shape[1], scene.shape[0]))
    for _ in range(frames):
        writer.write(scene)
    writer.release()
    return path


def launch_chromium(playwright, video: Path | None = None):
    """Headless Debian Chromium with a fake camera (fed from a .y4m file when given)."""
    import shutil

    args = [
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--use-fake-ui-for-media-stream",
        "--use-fake-device-for-media-stream",
    ]
    if video is not None:
        args.append(f"--use-file-for-fake-video-capture={video}")
    return playwright.chromium.launch(executable_path=shutil.which("chromium"), args=args)


def keras_multiply_adds(model) -> int:
    """Multiply-adds per face counted from a Keras model's layers (a model or its `.keras` path).

    Convolutions (plain, depthwise and separable) and dense layers: the same ops the LiteRT count
    of `Classifier.multiply_adds` sees.
    """
    import keras

    if not isinstance(model, keras.Model):
        model = keras.saving.load_model(model, compile=False)
    total = 0
    for layer in model.layers:
        if isinstance(layer, (keras.layers.SeparableConv2D, keras.layers.DepthwiseConv2D)):
            kh, kw = layer.kernel_size
            height, width, channels = layer.output.shape[1:]
            inputs = layer.input.shape[-1]
            total += height * width * inputs * kh * kw  # the depthwise part
            if isinstance(layer, keras.layers.SeparableConv2D):
                total += height * width * inputs * channels  # the pointwise part
        elif isinstance(layer, keras.layers.Conv2D):
            total += int(np.prod(layer.output.shape[1:])) * int(np.prod(layer.kernel.shape[:-1]))
        elif isinstance(layer, keras.layers.Dense):
            total += int(np.prod(layer.kernel.shape))
    return total
