"""Read and validate one image file into the RGB arrays every other layer expects.

Everything that can go wrong with a file on disk (missing, empty, not an image, truncated,
unsupported, too large, damaged so that the decoder fails) surfaces as a single `ImageReadError`
with a plain reason, so callers such as the folder watcher need one `except` clause and can show
the user which file failed and why.

Two readers give the same pixels: `read_pixels` keeps the file's integers (HxWx3 uint8, or uint16
for 16-bit gray: 3 or 6 bytes a pixel), `read_image` their float32 values in [0, 1] (12 bytes a
pixel). The screening service reads with `read_pixels` and converts tile by tile
(`pixels_to_float`), so a field near the pixel cap never exists as floats; `read_image(path)` is
`pixels_to_float(read_pixels(path))`, value for value.
"""

from __future__ import annotations

import struct
import warnings
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImagePalette, UnidentifiedImageError

from ganad_clinic.errors import GanadError
from ganad_clinic.imaging.completeness import tiff_page_end

SUPPORTED_SUFFIXES: frozenset[str] = frozenset({".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp"})
"""Lower-case file extensions accepted as images (the folder watcher reuses this)."""

ALLOWED_FORMATS: frozenset[str] = frozenset({"PNG", "JPEG", "MPO", "TIFF", "BMP"})
"""Pillow format names accepted from the file content; MPO is Pillow's name for camera JPEGs."""

DECODE_BYTES_PER_PIXEL = 8
"""Most memory a pixel takes while `read_pixels` decodes it: Pillow's decoded page (4 bytes a
pixel for colour and alpha modes, 2 for 16-bit gray) beside our array (3 bytes, or 6 for 16-bit
gray). Conversion goes strip by strip, so no whole-image temporary adds to it."""

DEFAULT_MAX_PIXELS = 100_000_000
"""Largest width x height decoded by default; checked from the header, before decoding.

It is what the screening service's memory budget allows for one image: (1.5 GB resident in all
- 0.5 GB for Python, torch and a model - 0.2 GB working set for the cell search, the model's
batches and the heat map) / DECODE_BYTES_PER_PIXEL = 1e8 pixels, and 20 times an ALL-IDB1 field
(2592 x 1944 = 5 Mpx). training/bench_large_images.py measures it."""

_EXIF_ORIENTATION_TAG = 0x0112
_ORIENTATIONS_SWAPPING_AXES = frozenset({5, 6, 7, 8})
_SIXTEEN_BIT_GRAY_MODES = frozenset({"I;16", "I;16L", "I;16B"})
_GRAY_MODES = _SIXTEEN_BIT_GRAY_MODES | {"1", "L", "LA", "La"}
_ALPHA_MODES = frozenset({"RGBA", "RGBa", "LA", "La", "PA"})
_PLAIN_MODES = frozenset({"1", "L", "P", "RGB", "RGBX", "CMYK", "YCbCr", "LAB", "HSV"})
_SUPPORTED_MODES = _SIXTEEN_BIT_GRAY_MODES | _ALPHA_MODES | _PLAIN_MODES
STRIP_PIXELS = 1 << 20
"""Pixels of a large image handled at a time (converted from Pillow, shrunk, made displayable), so
that no whole-image copy in a wider type is ever made."""

_DECODE_DAMAGE = (OSError, SyntaxError, ValueError, EOFError, TypeError, KeyError, IndexError,
                  struct.error, zlib.error)
"""What Pillow raises on a damaged or crafted file, as its decoders report it: a TIFF cut inside a
later page raises TypeError("Missing dimensions") from a KeyError; a broken PNG chunk, SyntaxError;
a bad palette, ValueError; truncated data, OSError. Caught only around Pillow's reading, and named
in the reason."""


class ImageReadError(GanadError, ValueError):
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
    grayscale: bool
    """The file stores gray pixels (a gray mode, or a palette of grays): a colour model sees no stain."""
    format: str


def read_image(path: str | Path, max_pixels: int | None = None) -> np.ndarray:
    """Decode `path` into an HxWx3 float32 array in [0, 1], upright as its EXIF orientation says.

    Transparent pixels are composited on white, because brightfield slide background is white:
    dropping alpha would turn transparent areas into arbitrary colours, usually black blobs.
    16-bit gray is scaled by 65535 (16-bit RGB TIFFs arrive as 8-bit RGB from Pillow); other modes
    (gray, palette, CMYK, ...) go through Pillow's RGB conversion; 32-bit integer or float data is
    refused rather than guessed at. Multi-page files give their first page and a `MultiPageWarning`.
    Takes 12 bytes a pixel: for large fields prefer `read_pixels`.
    """
    pixels, frames = _decode(path, max_pixels)
    _warn_if_multi_page(path, frames)
    return pixels_to_float(pixels)


def read_pixels(path: str | Path, max_pixels: int | None = None) -> np.ndarray:
    """The pixels of `read_image` as the file's integers: HxWx3 uint8, or uint16 for 16-bit gray.

    Decoding needs at most DECODE_BYTES_PER_PIXEL bytes a pixel, the result 3 (or 6); convert
    what the model sees with `pixels_to_float`.
    """
    pixels, frames = _decode(path, max_pixels)
    _warn_if_multi_page(path, frames)
    return pixels


def pixels_to_float(pixels: np.ndarray) -> np.ndarray:
    """`read_pixels` integers (or a part of them) as `read_image`'s float32 values in [0, 1];
    float arrays are returned as they are."""
    pixels = np.asarray(pixels)
    if pixels.dtype.kind == "f":
        return pixels
    if pixels.dtype not in (np.uint8, np.uint16):
        raise ValueError(f"expected uint8 or uint16 pixels, got {pixels.dtype}")
    values = pixels.astype(np.float32)
    values /= float(np.iinfo(pixels.dtype).max)
    return values


def read_image_info(path: str | Path, max_pixels: int | None = None) -> ImageInfo:
    """Width, height (as `read_image` would return them), page count, grayness and format,
    without decoding the pixels (a PNG's orientation comes from the EXIF before its image data,
    where the PNG specification puts it)."""
    with _opened(path, max_pixels) as image:
        width, height = image.size
        if _header_orientation(image) in _ORIENTATIONS_SWAPPING_AXES:
            width, height = height, width
        assert image.format is not None  # _open_checked admits only ALLOWED_FORMATS
        return ImageInfo(width, height, _count_pages(image, path), _is_grayscale(image), image.format)


def _decode(path: str | Path, max_pixels: int | None) -> tuple[np.ndarray, int]:
    """The upright first page as integers, and the number of pages. Pillow's decoded page is
    freed before the array is turned upright, so the two never coexist with a turned copy."""
    with _opened(path, max_pixels) as image:
        frames = _count_pages(image, path)
        image.load()
        orientation = image.getexif().get(_EXIF_ORIENTATION_TAG)
        pixels = _to_rgb_array(image)
    return _upright(pixels, orientation), frames


@contextmanager
def _opened(path: str | Path, max_pixels: int | None) -> Iterator[Image.Image]:
    """The checked image, closed on leaving (which frees its decoded page); Pillow's errors on a
    damaged file, raised while reading it, become ImageReadError."""
    image = _open_checked(path, max_pixels)
    try:
        yield image
    except Image.DecompressionBombError as error:  # a later page's declared size
        raise ImageReadError(path, f"the image has too many pixels ({error})") from error
    except _DECODE_DAMAGE as error:
        raise ImageReadError(path, f"the file is truncated or corrupt ({_described(error)})") from error
    except MemoryError as error:
        width, height = image.size
        raise ImageReadError(path, f"there is not enough memory to decode its {width}x{height} pixels") from error
    finally:
        image.close()


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
    except _DECODE_DAMAGE as error:
        raise ImageReadError(path, f"the file is truncated or corrupt ({_described(error)})") from error
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


def _count_pages(image: Image.Image, path: str | Path) -> int:
    """The number of pages; a TIFF whose pages' data reaches past the end of the file is
    refused, because its first page alone may decode from a file cut short or still being written.
    A camera JPEG (MPO) has one page: its other frames are the camera's previews, not slides."""
    if image.format == "MPO":
        return 1
    frames = getattr(image, "n_frames", 1)
    if image.format != "TIFF":
        return frames
    size = Path(path).stat().st_size
    for page in range(frames):
        image.seek(page)
        if tiff_page_end(image) > size:
            image.seek(0)
            raise ImageReadError(path, f"the file is truncated: page {page + 1} of {frames} "
                                       f"ends past the end of the file ({size} bytes)")
    image.seek(0)
    return frames


def _header_orientation(image: Image.Image) -> int | None:
    """The EXIF (or XMP) orientation known without decoding: Pillow's PNG reader decodes the
    whole image to look for EXIF after the pixels, so PNGs use the base reader's look at the header."""
    exif = Image.Image.getexif(image) if image.format == "PNG" else image.getexif()
    return exif.get(_EXIF_ORIENTATION_TAG)


def _is_grayscale(image: Image.Image) -> bool:
    """Gray from the header alone: a gray mode, or a palette whose every colour is a gray."""
    if image.mode in _GRAY_MODES:
        return True
    if image.mode in ("P", "PA") and image.palette is not None:
        palette = _palette_rgb(image.palette)
        triples = range(0, len(palette) - 2, 3)
        return bool(palette) and all(palette[i] == palette[i + 1] == palette[i + 2] for i in triples)
    return False


def _palette_rgb(palette: ImagePalette.ImagePalette) -> list[int]:
    """A file's palette as R, G, B values, without decoding the image (Image.getpalette would):
    the raw palette is put on a 1-pixel image, which unpacks it."""
    probe = Image.new("P", (1, 1))
    probe.putpalette(palette.palette, palette.rawmode or palette.mode)
    return probe.getpalette("RGB") or []


def _to_rgb_array(image: Image.Image) -> np.ndarray:
    """The loaded page as HxWx3 integers, converted a strip of rows at a time so that no
    whole-image copy (RGBA, composited, converted) ever exists beside Pillow's own."""
    width, height = image.size
    dtype = np.uint16 if image.mode in _SIXTEEN_BIT_GRAY_MODES else np.uint8
    pixels = np.empty((height, width, 3), dtype=dtype)
    rows = max(1, STRIP_PIXELS // width)
    for top in range(0, height, rows):
        bottom = min(top + rows, height)
        pixels[top:bottom] = _strip_rgb(image.crop((0, top, width, bottom)))
    return pixels


def _strip_rgb(strip: Image.Image) -> np.ndarray:
    if strip.mode in _SIXTEEN_BIT_GRAY_MODES:
        return np.asarray(strip)[:, :, np.newaxis]
    if strip.mode == "P" and "transparency" in strip.info:
        strip = strip.convert("RGBA")
    if strip.mode in _ALPHA_MODES:
        strip = strip.convert("RGBA")
        white = Image.new("RGBA", strip.size, (255, 255, 255, 255))
        strip = Image.alpha_composite(white, strip)
    return np.asarray(strip.convert("RGB"))


def _upright(pixels: np.ndarray, orientation: int | None) -> np.ndarray:
    """Turn and mirror as EXIF orientation 2-8 says, as Pillow's ImageOps.exif_transpose does."""
    turn = None if orientation is None else _EXIF_TURNS.get(orientation)
    return pixels if turn is None else np.ascontiguousarray(turn(pixels))


_EXIF_TURNS = {
    2: lambda pixels: pixels[:, ::-1],
    3: lambda pixels: pixels[::-1, ::-1],
    4: lambda pixels: pixels[::-1],
    5: lambda pixels: pixels.transpose(1, 0, 2),
    6: lambda pixels: np.rot90(pixels, k=-1),
    7: lambda pixels: pixels[::-1, ::-1].transpose(1, 0, 2),
    8: lambda pixels: np.rot90(pixels, k=1),
}


def _warn_if_multi_page(path: str | Path, frames: int) -> None:
    if frames > 1:
        warnings.warn(f"{path} has {frames} pages; only the first page is used", MultiPageWarning, stacklevel=3)


def _described(error: BaseException) -> str:
    return f"{type(error).__name__}: {error}" if str(error) else type(error).__name__


def _suffix_list() -> str:
    return ", ".join(sorted(SUPPORTED_SUFFIXES))
