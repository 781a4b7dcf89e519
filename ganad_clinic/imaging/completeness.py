"""Whether an image file is complete, from its bytes: a scanner or a copy may still be writing it.

Decoders accept some prefixes of a file (a PNG without its IEND chunk, a multi-page TIFF cut after
a page), so "it decodes" does not mean "it is all there". Each format says where its end is: PNG's
IEND chunk, JPEG's end-of-image marker, the size in a BMP header, the byte after each TIFF page's
last strip or tile.
"""

from __future__ import annotations

import os
import struct
import warnings
from pathlib import Path
from typing import cast

from PIL import Image, TiffImagePlugin

PNG_START, PNG_END = b"\x89PNG\r\n\x1a\n", b"IEND\xaeB`\x82"
JPEG_START, JPEG_END = b"\xff\xd8\xff", b"\xff\xd9"
TIFF_STARTS = (b"II*\x00", b"MM\x00*")
BMP_START = b"BM"
IMAGE_STARTS = (PNG_START, JPEG_START, *TIFF_STARTS, BMP_START)
HEAD_BYTES = 16  # every complete PNG, JPEG, TIFF or BMP is longer
TIFF_DATA_TAGS = ((273, 279), (324, 325))  # (strip offsets, strip byte counts), the same for tiles
TAIL_BYTES = 64 * 1024
"""Where a PNG's IEND or a JPEG's end-of-image marker is looked for: cameras and some writers add
bytes after it (maker notes, padding), and a complete file must not wait for the grace period."""


def tiff_page_end(image: Image.Image) -> int:
    """The byte just past the current TIFF page's last strip or tile (0 when it lists none)."""
    tags = cast(TiffImagePlugin.TiffImageFile, image).tag_v2  # callers pass TIFF pages
    end = 0
    for offsets_tag, counts_tag in TIFF_DATA_TAGS:
        offsets, counts = _as_tuple(tags.get(offsets_tag)), _as_tuple(tags.get(counts_tag))
        end = max([end] + [offset + count for offset, count in zip(offsets, counts)])
    return end


def looks_unfinished(path: Path) -> bool:
    """Whether the file could be an image still being written: its bytes begin like a PNG, JPEG,
    TIFF or BMP file (or there are too few to tell) and its end is missing."""
    with open(path, "rb") as handle:
        head = handle.read(HEAD_BYTES)
        size = os.fstat(handle.fileno()).st_size
        handle.seek(max(0, size - TAIL_BYTES))
        tail = handle.read(TAIL_BYTES)
    if not any(head[:len(start)] == start[:len(head)] for start in IMAGE_STARTS):
        return False  # no image begins like this: nothing written later can make it one
    if len(head) < HEAD_BYTES:
        return True
    if head.startswith(PNG_START):
        return PNG_END not in tail
    if head.startswith(JPEG_START):
        return JPEG_END not in tail
    if head.startswith(BMP_START):
        return size < struct.unpack("<I", head[2:6])[0]
    return not _tiff_data_present(path, size)


def _tiff_data_present(path: Path, size: int) -> bool:
    """Whether every page of the TIFF file lists its pixel data and all of it lies in the file."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # Pillow warns about the very damage looked for here
            with Image.open(path) as image:
                for page in range(getattr(image, "n_frames", 1)):
                    image.seek(page)
                    end = tiff_page_end(image)
                    if end == 0 or end > size:
                        return False
    except Exception:  # a header that cannot be followed to its end is not complete yet
        return False
    return True


def _as_tuple(value: object) -> tuple:
    if value is None:
        return ()
    return value if isinstance(value, tuple) else (value,)
