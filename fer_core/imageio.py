"""Reading photos safely: any common format, EXIF orientation honoured, bombs refused."""

from __future__ import annotations

import io
import os
import stat
import warnings
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

MAX_PIXELS = 40_000_000
MAX_FILE_BYTES = 256 * 1024 * 1024
"""No photo file is read past this many bytes (a link to /dev/zero would otherwise fill memory)."""
"""Images with more pixels than this are refused before they are decoded."""

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff", ".gif", ".avif")

UNSUPPORTED_SUFFIXES = {
    ".heic": "HEIC (iPhone)",
    ".heif": "HEIF",
    ".dng": "DNG raw",
    ".cr2": "Canon raw",
    ".cr3": "Canon raw",
    ".nef": "Nikon raw",
    ".arw": "Sony raw",
    ".raw": "raw",
}
"""Photo formats we cannot decode: listed so that such a file gets a row saying so, not silence."""


class ImageReadError(ValueError):
    """A file could not be read as an image; the message says why."""


def _to_bgr(img: Image.Image) -> np.ndarray:
    if img.mode in ("I;16", "I;16B", "I;16L", "I"):
        arr = np.asarray(img, dtype=np.float64)
        top = 65535.0 if arr.max() > 255 else 255.0
        gray = np.clip(arr * (255.0 / top), 0, 255).astype(np.uint8)
        return np.stack([gray] * 3, axis=-1)
    if img.mode == "F":
        arr = np.asarray(img, dtype=np.float64)
        span = max(arr.max() - arr.min(), 1e-9)
        gray = ((arr - arr.min()) * (255.0 / span)).astype(np.uint8)
        return np.stack([gray] * 3, axis=-1)
    if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
        return _on_white(img if img.mode == "RGBA" else img.convert("RGBA"))
    rgb = np.asarray(img if img.mode == "RGB" else img.convert("RGB"))
    return cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)


def _on_white(rgba: Image.Image, rows: int = 256) -> np.ndarray:
    """An RGBA image put on white, as BGR: a band of rows at a time, so no full-size RGBA copy is
    made (a 12-megapixel 16-bit RGBA PNG took 300 MB over its file this way before; measured in
    tests/benchmarks/bench_memory.py)."""
    width, height = rgba.size
    out = np.empty((height, width, 3), np.uint8)
    for top in range(0, height, rows):
        band = np.asarray(rgba.crop((0, top, width, min(height, top + rows))))
        alpha = band[..., 3:].astype(np.uint16)
        out[top : top + len(band)] = (band[..., 2::-1].astype(np.uint16) * alpha + 255 * (255 - alpha) + 127) // 255
    return out


def _decode_jpeg(data: bytes) -> np.ndarray:
    """A JPEG straight into one BGR array, turned upright by its EXIF orientation.

    OpenCV decodes into the final array with no intermediate copies, where Pillow's path
    makes several full-size ones: for a 12-megapixel photo that is 36 MB instead of ~150 MB
    while it is being read (tests/benchmarks/bench_memory.py).
    """
    import cv2

    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if image is None:
        raise ImageReadError("corrupt or truncated image: JPEG data could not be decoded")
    return image


def read_photo_bytes(path: Path, max_bytes: int = MAX_FILE_BYTES) -> bytes:
    """A photo file's bytes: only a regular file (never a FIFO, a device or a socket, which could block
    or never end), and at most `max_bytes` of it.

    Raises:
        ImageReadError: not a regular file, or larger than `max_bytes`.
        OSError: it cannot be opened.
    """
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)  # opening a FIFO must not wait for a writer
    with os.fdopen(fd, "rb") as f:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise ImageReadError("not a regular file (a pipe, a device or a socket); skipped")
        data = f.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise ImageReadError(f"file is over {max_bytes // (1024 * 1024)} MB; skipped")
    return data


def read_image(source: str | Path | bytes, max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """Decode a photo into a BGR uint8 array.

    Args:
        source: a file path or the file's bytes.
        max_pixels: refuse images larger than this without decoding them.

    Returns:
        Array of shape (H, W, 3), upright according to its EXIF orientation.

    Raises:
        ImageReadError: empty, truncated, not an image, or over the pixel limit.
    """
    data = read_photo_bytes(Path(source)) if isinstance(source, (str, Path)) else bytes(source)
    if not data:
        raise ImageReadError("empty file (0 bytes)")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            img = Image.open(io.BytesIO(data))
            width, height = img.size
            if width * height > max_pixels:
                raise ImageReadError(
                    f"image is {width}x{height} = {width * height:,} pixels, over the limit of {max_pixels:,}"
                )
            if img.format == "JPEG" and img.mode in ("RGB", "L", "CMYK"):
                return _decode_jpeg(data)
            img.load()
            ImageOps.exif_transpose(img, in_place=True)
            return _to_bgr(img)
    except ImageReadError:
        raise
    except UnidentifiedImageError as e:
        raise ImageReadError("not a recognised image format") from e
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as e:
        raise ImageReadError(f"corrupt or truncated image: {e}") from e


# The kernel's file systems: never photos, and walking them never ends (or reads forever).
SPECIAL_FILE_SYSTEMS = ("/proc", "/sys", "/dev")


def is_special_folder(folder: str | Path) -> bool:
    """Whether a folder is (or links into) the kernel's special file systems."""
    real = os.path.realpath(folder)
    return any(real == s or real.startswith(s + "/") for s in SPECIAL_FILE_SYSTEMS)


def photo_folder_problem(folder: Path) -> str | None:
    """Why `folder` cannot be walked for photos (not a folder, the whole machine, or a special file
    system), or None when it can."""
    if not folder.is_dir():
        return f"not a folder on this machine: {folder}"
    if os.path.realpath(folder) == "/":
        return "the root of the file system holds the whole machine, not a folder of photos: choose the folder"
    if is_special_folder(folder):
        return f"{folder} is one of the kernel's file systems ({', '.join(SPECIAL_FILE_SYSTEMS)}), which hold no photos"
    return None


def is_image_path(path: Path) -> bool:
    """Whether a file name has one of the image suffixes we read."""
    return path.suffix.lower() in IMAGE_SUFFIXES


def unsupported_format(path: Path) -> str | None:
    """Why a photo file cannot be read, from its suffix (None when we read that format)."""
    kind = UNSUPPORTED_SUFFIXES.get(path.suffix.lower())
    return f"unsupported format: {kind}; convert it to JPEG or PNG first" if kind else None


def encode_jpeg(image_bgr: np.ndarray, quality: int = 90) -> bytes:
    """JPEG bytes of a BGR image."""
    ok, buf = cv2.imencode(".jpg", image_bgr, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise ImageReadError("could not encode image as JPEG")
    return buf.tobytes()
