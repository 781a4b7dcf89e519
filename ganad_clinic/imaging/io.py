"""Read and validate one image file into the RGB float array every other layer expects.

Everything that can go wrong with a file on disk (missing, empty, not an image, truncated,
unsupported, too large) surfaces as a single `ImageReadError`, so callers such as the folder
watcher need one `except` clause and can show the user which file failed and why.
"""

from __future__ import annotations

import struct
import warnings
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

SUPPORTED_SUFFIXES: frozenset[str] = frozenset({".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp"})
"""Lower-case file extensions accepted as images (the folder watcher reuses this)."""

ALLOWED_FORMATS: frozenset[str] = frozenset({"PNG", "JPEG", "MPO", "TIFF", "BMP"})
"""Pillow format names accepted from the file content; MPO is Pillow's name for camera JPEGs."""

DEFAULT_MAX_PIXELS = 100_000_000
"""Largest width x height decoded by default; checked from the header, before decoding."""

_EXIF_ORIENTATION_TAG = 0x0112
_ORIENTATIONS_SWAPPING_AXES = frozenset({5, 6, 7, 8})
_SIXTEEN_BIT_GRAY_MODES = frozenset({"I;16", "I;16L", "I;16B"})
_ALPHA_MODES = frozenset({"RGBA", "RGBa", "LA", "La", "PA"})
_PLAIN_MODES = frozenset({"1", "L", "P", "RGB", "RGBX", "CMYK", "YCbCr", "LAB", "HSV"})
_SUPPORTED_MODES = _SIXTEEN_BIT_GRAY_MODES | _ALPHA_MODES | _PLAIN_MODES
_DECODE_ERRORS = (OSError, SyntaxError, ValueError, EOFError, struct.error, zlib.error)


class ImageReadError(ValueError):
    """A file could not be read as an image; `reason` says why in words a technician understands."""

    def __init__(self, path: str | Path, reason: str) -> None:
        self.path = Path(path)
        self.reason = reason
        super().__init__(f"Cannot read image {self.path}: {reason}")


class MultiPageWarning(UserWarning):
    """A multi-page file was read; only its first page is used."""


@dataclass(frozen=True)
class ImageInfo:
    """What the header says about an image, as displayed (EXIF orientation applied)."""

    width: int
    height: int
    frames: int
    format: str


def read_image(path: str | Path, max_pixels: int | None = None) -> np.ndarray:
    """Decode `path` into an HxWx3 float32 array in [0, 1], upright as its EXIF orientation says.

    Transparent pixels are composited on white, because brightfield slide background is white:
    dropping alpha would turn transparent areas into arbitrary colours, usually black blobs.
    16-bit gray is scaled by 65535 (16-bit RGB TIFFs arrive as 8-bit RGB from Pillow); other modes
    (gray, palette, CMYK, ...) go through Pillow's RGB conversion; 32-bit integer or float data is
    refused rather than guessed at. Multi-page files give their first page and a `MultiPageWarning`.
    """
    with _open_checked(path, max_pixels) as image:
        frames = getattr(image, "n_frames", 1)
        try:
            image.load()
            upright = ImageOps.exif_transpose(image)
            pixels = _to_rgb_float(upright)
        except _DECODE_ERRORS as error:
            raise ImageReadError(path, f"the file is truncated or corrupt ({error})") from error
    if frames > 1:
        warnings.warn(
            f"{path} has {frames} pages; only the first page is used",
            MultiPageWarning,
            stacklevel=2,
        )
    return pixels


def read_image_info(path: str | Path, max_pixels: int | None = None) -> ImageInfo:
    """Width, height (as `read_image` would return them), page count and format, without decoding."""
    with _open_checked(path, max_pixels) as image:
        width, height = image.size
        orientation = image.getexif().get(_EXIF_ORIENTATION_TAG)
        if orientation in _ORIENTATIONS_SWAPPING_AXES:
            width, height = height, width
        return ImageInfo(width, height, getattr(image, "n_frames", 1), image.format)


def _open_checked(path: str | Path, max_pixels: int | None) -> Image.Image:
    """Open `path` lazily after checking the file, its format and its pixel count from the header.

    Pillow's DecompressionBombWarning is silenced here because our own cap, checked right after
    opening, replaces it; its DecompressionBombError (twice Pillow's limit) still ends the read.
    """
    path = Path(path)
    cap = DEFAULT_MAX_PIXELS if max_pixels is None else max_pixels
    if not path.exists():
        raise ImageReadError(path, "the file does not exist")
    if not path.is_file():
        raise ImageReadError(path, "the path is not a file")
    if path.suffix.lower() not in SUPPORTED_SUFFIXES:
        raise ImageReadError(
            path, f"unsupported file type {path.suffix!r}; expected one of {_suffix_list()}"
        )
    if path.stat().st_size == 0:
        raise ImageReadError(path, "the file is empty (0 bytes)")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = Image.open(path)
    except Image.DecompressionBombError as error:
        raise ImageReadError(path, f"the image has too many pixels ({error})") from error
    except UnidentifiedImageError as error:
        raise ImageReadError(path, "the file is not an image or its format is not recognised") from error
    except _DECODE_ERRORS as error:
        raise ImageReadError(path, f"the file is truncated or corrupt ({error})") from error
    width, height = image.size
    if image.format not in ALLOWED_FORMATS:
        image.close()
        raise ImageReadError(
            path, f"unsupported image format {image.format}; expected PNG, JPEG, TIFF or BMP"
        )
    if width * height > cap:
        image.close()
        raise ImageReadError(
            path, f"the image has {width}x{height} = {width * height} pixels, more than the limit of {cap}"
        )
    if image.mode not in _SUPPORTED_MODES:
        image.close()
        raise ImageReadError(path, f"unsupported pixel mode {image.mode} (e.g. 32-bit integer or float data)")
    return image


def _to_rgb_float(image: Image.Image) -> np.ndarray:
    if image.mode in _SIXTEEN_BIT_GRAY_MODES:
        gray = np.clip(np.asarray(image, dtype=np.float32) / 65535.0, 0.0, 1.0)
        return np.repeat(gray[:, :, np.newaxis], 3, axis=2)
    if image.mode == "P" and "transparency" in image.info:
        image = image.convert("RGBA")
    if image.mode in _ALPHA_MODES:
        image = image.convert("RGBA")
        white = Image.new("RGBA", image.size, (255, 255, 255, 255))
        image = Image.alpha_composite(white, image)
    return np.asarray(image.convert("RGB"), dtype=np.float32) / 255.0


def _suffix_list() -> str:
    return ", ".join(sorted(SUPPORTED_SUFFIXES))
