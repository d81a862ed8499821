"""Reading photos safely: any common format, EXIF orientation honoured, bombs refused."""

from __future__ import annotations

import io
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

MAX_PIXELS = 40_000_000
"""Images with more pixels than this are refused before they are decoded."""

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff", ".gif")


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
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        img = Image.alpha_composite(background, rgba)
    rgb = np.asarray(img.convert("RGB"))
    return np.ascontiguousarray(rgb[:, :, ::-1])


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
    data = Path(source).read_bytes() if isinstance(source, (str, Path)) else bytes(source)
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
            img.load()
            img = ImageOps.exif_transpose(img)
            return _to_bgr(img)
    except ImageReadError:
        raise
    except UnidentifiedImageError as e:
        raise ImageReadError("not a recognised image format") from e
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as e:
        raise ImageReadError(f"corrupt or truncated image: {e}") from e


def is_image_path(path: Path) -> bool:
    """Whether a file name has one of the image suffixes we read."""
    return path.suffix.lower() in IMAGE_SUFFIXES


def encode_jpeg(image_bgr: np.ndarray, quality: int = 90) -> bytes:
    """JPEG bytes of a BGR image."""
    import cv2

    ok, buf = cv2.imencode(".jpg", image_bgr, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise ImageReadError("could not encode image as JPEG")
    return buf.tobytes()
