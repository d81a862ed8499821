"""Reading bad and unusual photos: every case gives an image or a clear ImageReadError."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from fer_core.imageio import ImageReadError, read_image


def _encode(img: Image.Image, fmt: str, **kwargs) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format=fmt, **kwargs)
    return buf.getvalue()


def test_rgb_jpeg_becomes_bgr():
    rgb = Image.new("RGB", (20, 10), (255, 0, 0))
    out = read_image(_encode(rgb, "PNG"))
    assert out.shape == (10, 20, 3) and out.dtype == np.uint8
    assert tuple(out[0, 0]) == (0, 0, 255)


def test_grayscale_rgba_16bit_and_cmyk(tmp_path):
    gray = read_image(_encode(Image.new("L", (8, 8), 77), "PNG"))
    assert gray.shape == (8, 8, 3) and gray[0, 0, 0] == 77
    rgba = read_image(_encode(Image.new("RGBA", (8, 8), (0, 0, 0, 0)), "PNG"))
    assert tuple(rgba[0, 0]) == (255, 255, 255)  # transparent composited on white
    deep = Image.fromarray(np.full((8, 8), 65535, dtype=np.uint16))
    assert read_image(_encode(deep, "PNG"))[0, 0, 0] == 255
    cmyk = read_image(_encode(Image.new("CMYK", (8, 8), (0, 0, 0, 0)), "JPEG"))
    assert cmyk.shape == (8, 8, 3) and cmyk.mean() > 240
    path = tmp_path / "g.png"
    path.write_bytes(_encode(Image.new("L", (3, 2), 5), "PNG"))
    assert read_image(path).shape == (2, 3, 3)


def test_exif_orientation_is_honoured():
    img = Image.new("RGB", (40, 20), (0, 0, 0))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise when shown
    out = read_image(_encode(img, "JPEG", exif=exif))
    assert out.shape[:2] == (40, 20)


@pytest.mark.parametrize(
    "data, reason",
    [
        (b"", "empty"),
        (b"this is a text file, not a photo", "not a recognised image"),
        (_encode(Image.new("RGB", (64, 64)), "JPEG")[:120], "corrupt or truncated"),
    ],
)
def test_bad_files_raise_with_reason(data, reason):
    with pytest.raises(ImageReadError, match=reason):
        read_image(data)


def test_pixel_limit_refuses_before_decoding():
    big = _encode(Image.new("L", (3000, 3000)), "PNG")
    with pytest.raises(ImageReadError, match="over the limit"):
        read_image(big, max_pixels=1_000_000)


def test_tiny_image_reads():
    assert read_image(_encode(Image.new("RGB", (1, 1)), "PNG")).shape == (1, 1, 3)


def test_a_16_bit_rgba_png_lands_on_white_band_by_band():
    import cv2

    image = np.zeros((700, 300, 4), np.uint16)  # taller than one band of rows
    image[..., 0], image[..., 3] = 30000, 40000  # blue, 61% opaque
    image[600:, :, 3] = 0  # fully transparent at the bottom
    image[:100, :, :] = 65535  # opaque white at the top
    ok, data = cv2.imencode(".png", image)
    out = read_image(data.tobytes())
    assert out.shape == (700, 300, 3) and out.dtype == np.uint8
    assert tuple(out[300, 10]) == (171, 99, 99)  # 117 blue at alpha 156 on white
    assert tuple(out[650, 10]) == (255, 255, 255) and tuple(out[50, 10]) == (255, 255, 255)
