from __future__ import annotations

import io
import struct
import warnings
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageFile, ImageOps

from ganad_clinic.imaging.io import (
    DEFAULT_MAX_PIXELS,
    SUPPORTED_SUFFIXES,
    ImageInfo,
    ImageReadError,
    MultiPageWarning,
    pixels_to_float,
    read_image,
    read_image_info,
    read_pixels,
)


def quadrant_rgb(height: int = 24, width: int = 32) -> np.ndarray:
    """An 8-bit RGB image with a distinct flat colour in each quadrant, so orientation is visible."""
    pixels = np.zeros((height, width, 3), dtype=np.uint8)
    pixels[: height // 2, : width // 2] = (255, 0, 0)
    pixels[: height // 2, width // 2 :] = (0, 255, 0)
    pixels[height // 2 :, : width // 2] = (0, 0, 255)
    pixels[height // 2 :, width // 2 :] = (255, 255, 255)
    return pixels


def noise_rgb(height: int = 64, width: int = 64) -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, (height, width, 3), dtype=np.uint8)


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_header_only(width: int, height: int) -> bytes:
    """A PNG whose header declares `width` x `height` but whose data is a few bytes: a bomb stand-in."""
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + png_chunk(b"IHDR", header)
        + png_chunk(b"IDAT", zlib.compress(b"\x00" * 16))
        + png_chunk(b"IEND", b"")
    )


def tiff_rgb16(pixels: np.ndarray) -> bytes:
    """A minimal little-endian, uncompressed 16-bit-per-sample RGB TIFF (Pillow cannot write one)."""
    height, width, _ = pixels.shape
    data = pixels.astype("<u2").tobytes()
    entries = [
        (256, 3, 1, width),  # ImageWidth
        (257, 3, 1, height),  # ImageLength
        (258, 3, 3, None),  # BitsPerSample -> offset to (16, 16, 16)
        (259, 3, 1, 1),  # Compression: none
        (262, 3, 1, 2),  # PhotometricInterpretation: RGB
        (273, 4, 1, None),  # StripOffsets -> pixel data
        (277, 3, 1, 3),  # SamplesPerPixel
        (278, 3, 1, height),  # RowsPerStrip
        (279, 4, 1, len(data)),  # StripByteCounts
    ]
    ifd_offset = 8
    ifd_size = 2 + 12 * len(entries) + 4
    bits_offset = ifd_offset + ifd_size
    data_offset = bits_offset + 6
    ifd = struct.pack("<H", len(entries))
    for tag, kind, count, value in entries:
        if tag == 258:
            value = bits_offset
        if tag == 273:
            value = data_offset
        packed_value = struct.pack("<HH", value, 0) if kind == 3 and tag != 258 else struct.pack("<I", value)
        ifd += struct.pack("<HHI", tag, kind, count) + packed_value
    ifd += struct.pack("<I", 0)
    return b"II*\x00" + struct.pack("<I", ifd_offset) + ifd + struct.pack("<HHH", 16, 16, 16) + data


def assert_valid_rgb(pixels: np.ndarray, height: int, width: int) -> None:
    assert pixels.shape == (height, width, 3)
    assert pixels.dtype == np.float32
    assert pixels.min() >= 0.0 and pixels.max() <= 1.0


def read_error(path: Path, **kwargs) -> ImageReadError:
    with pytest.raises(ImageReadError) as caught:
        read_image(path, **kwargs)
    assert caught.value.path == path
    assert str(path) in str(caught.value)
    assert caught.value.reason in str(caught.value)
    return caught.value


# --- formats and modes ------------------------------------------------------------------------


@pytest.mark.parametrize("suffix", [".png", ".bmp", ".tif", ".tiff"])
def test_lossless_rgb_formats_round_trip_exactly(tmp_path: Path, suffix: str) -> None:
    pixels = quadrant_rgb()
    path = tmp_path / f"cell{suffix}"
    Image.fromarray(pixels).save(path)

    result = read_image(path)

    assert_valid_rgb(result, 24, 32)
    np.testing.assert_allclose(result, pixels / 255.0, atol=1e-6)


@pytest.mark.parametrize("suffix", [".jpg", ".jpeg", ".JPG"])
def test_jpeg_is_read_close_to_the_original(tmp_path: Path, suffix: str) -> None:
    pixels = quadrant_rgb(32, 32)
    path = tmp_path / f"cell{suffix}"
    Image.fromarray(pixels).save(path, format="JPEG", quality=95)

    result = read_image(path)

    assert_valid_rgb(result, 32, 32)
    assert np.abs(result[4:12, 4:12] - pixels[4:12, 4:12] / 255.0).max() < 0.1


def test_gray_image_gives_three_equal_channels(tmp_path: Path) -> None:
    gray = np.tile(np.arange(0, 256, 8, dtype=np.uint8), (5, 1))
    path = tmp_path / "gray.png"
    Image.fromarray(gray, mode="L").save(path)

    result = read_image(path)

    assert_valid_rgb(result, 5, 32)
    np.testing.assert_allclose(result[:, :, 0], gray / 255.0, atol=1e-6)
    assert np.array_equal(result[:, :, 0], result[:, :, 1])
    assert np.array_equal(result[:, :, 0], result[:, :, 2])


@pytest.mark.parametrize("suffix", [".tif", ".png"])
def test_sixteen_bit_gray_keeps_its_full_range(tmp_path: Path, suffix: str) -> None:
    values = np.array([[0, 257, 32768, 65535]], dtype=np.uint16)
    path = tmp_path / f"gray16{suffix}"
    Image.fromarray(values).save(path)
    assert Image.open(path).mode == "I;16"

    result = read_image(path)

    assert_valid_rgb(result, 1, 4)
    np.testing.assert_allclose(result[0, :, 1], values[0] / 65535.0, atol=1e-6)


def test_sixteen_bit_rgb_tiff_is_read(tmp_path: Path) -> None:
    pixels16 = quadrant_rgb().astype(np.uint16) * 257
    path = tmp_path / "rgb16.tif"
    path.write_bytes(tiff_rgb16(pixels16))

    result = read_image(path)

    assert_valid_rgb(result, 24, 32)
    np.testing.assert_allclose(result, pixels16 / 65535.0, atol=1 / 255)


def test_rgba_is_composited_on_white(tmp_path: Path) -> None:
    pixels = np.zeros((2, 2, 4), dtype=np.uint8)
    pixels[0, 0] = (255, 0, 0, 255)  # opaque red stays red
    pixels[0, 1] = (255, 0, 0, 0)  # fully transparent becomes white
    pixels[1, 0] = (0, 0, 0, 128)  # half-transparent black becomes mid gray
    pixels[1, 1] = (0, 0, 255, 255)
    path = tmp_path / "alpha.png"
    Image.fromarray(pixels, mode="RGBA").save(path)

    result = read_image(path)

    assert_valid_rgb(result, 2, 2)
    np.testing.assert_allclose(result[0, 0], (1, 0, 0), atol=1e-6)
    np.testing.assert_allclose(result[0, 1], (1, 1, 1), atol=1e-6)
    np.testing.assert_allclose(result[1, 0], (0.5, 0.5, 0.5), atol=0.01)
    np.testing.assert_allclose(result[1, 1], (0, 0, 1), atol=1e-6)


def test_gray_with_alpha_is_composited_on_white(tmp_path: Path) -> None:
    pixels = np.array([[[0, 255], [0, 0]]], dtype=np.uint8)
    path = tmp_path / "la.png"
    Image.fromarray(pixels, mode="LA").save(path)

    result = read_image(path)

    np.testing.assert_allclose(result[0], [(0, 0, 0), (1, 1, 1)], atol=1e-6)


def test_palette_image_is_expanded_to_rgb(tmp_path: Path) -> None:
    pixels = quadrant_rgb()
    path = tmp_path / "palette.png"
    Image.fromarray(pixels).quantize(colors=4).save(path)
    assert Image.open(path).mode == "P"

    result = read_image(path)

    assert_valid_rgb(result, 24, 32)
    np.testing.assert_allclose(result, pixels / 255.0, atol=1e-6)


def test_palette_transparency_is_composited_on_white(tmp_path: Path) -> None:
    image = Image.new("P", (2, 1))
    image.putpalette([0, 0, 0, 255, 0, 0])
    image.putdata([0, 1])
    path = tmp_path / "palette_alpha.png"
    image.save(path, transparency=0)

    result = read_image(path)

    np.testing.assert_allclose(result[0], [(1, 1, 1), (1, 0, 0)], atol=1e-6)


def test_cmyk_jpeg_is_converted_to_rgb(tmp_path: Path) -> None:
    path = tmp_path / "cmyk.jpg"
    Image.new("CMYK", (16, 16), (0, 255, 255, 0)).save(path, quality=95)
    assert Image.open(path).mode == "CMYK"

    result = read_image(path)

    assert_valid_rgb(result, 16, 16)
    np.testing.assert_allclose(result.mean(axis=(0, 1)), (1, 0, 0), atol=0.05)


def test_exif_orientation_is_applied(tmp_path: Path) -> None:
    stored = quadrant_rgb(32, 64)  # wide as stored; orientation 6 means "rotate 90 degrees clockwise"
    exif = Image.Exif()
    exif[0x0112] = 6
    path = tmp_path / "rotated.jpg"
    Image.fromarray(stored).save(path, quality=95, exif=exif)

    result = read_image(path)

    assert_valid_rgb(result, 64, 32)
    upright = np.rot90(stored, k=-1) / 255.0
    assert np.abs(result - upright).mean() < 0.03
    assert read_image_info(path) == ImageInfo(width=32, height=64, frames=1, grayscale=False, format="JPEG")


def test_multi_page_tiff_uses_first_page_and_warns(tmp_path: Path) -> None:
    pages = [Image.new("RGB", (8, 6), colour) for colour in ((255, 0, 0), (0, 255, 0), (0, 0, 255))]
    path = tmp_path / "stack.tif"
    pages[0].save(path, save_all=True, append_images=pages[1:])

    with pytest.warns(MultiPageWarning, match=r"stack\.tif.*3 pages"):
        result = read_image(path)

    assert_valid_rgb(result, 6, 8)
    np.testing.assert_allclose(result.mean(axis=(0, 1)), (1, 0, 0), atol=1e-6)
    assert read_image_info(path) == ImageInfo(width=8, height=6, frames=3, grayscale=False, format="TIFF")


def test_single_page_image_does_not_warn(tmp_path: Path) -> None:
    path = tmp_path / "single.tif"
    Image.fromarray(quadrant_rgb()).save(path)

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        read_image(path)


def test_image_info_reads_the_header(tmp_path: Path) -> None:
    path = tmp_path / "cell.bmp"
    Image.fromarray(quadrant_rgb(24, 32)).save(path)

    assert read_image_info(path) == ImageInfo(width=32, height=24, frames=1, grayscale=False, format="BMP")


@pytest.mark.parametrize("mode", ["1", "L", "LA", "I;16"])
def test_image_info_says_a_gray_mode_is_grayscale(tmp_path: Path, mode: str) -> None:
    path = tmp_path / "gray.png"
    Image.new(mode, (8, 6)).save(path)

    assert read_image_info(path).grayscale


def test_image_info_says_a_palette_of_grays_is_grayscale(tmp_path: Path) -> None:
    gray, colour = tmp_path / "gray.png", tmp_path / "colour.png"
    Image.new("L", (8, 6), 90).convert("P").save(gray)
    Image.fromarray(quadrant_rgb()).convert("P").save(colour)

    assert read_image_info(gray).grayscale
    assert not read_image_info(colour).grayscale


@pytest.mark.parametrize("suffix", [".jpg", ".tif", ".bmp"])
def test_image_info_says_a_colour_image_is_not_grayscale(tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"cell{suffix}"
    Image.fromarray(quadrant_rgb()).save(path)

    assert not read_image_info(path).grayscale


def test_supported_suffixes_are_lower_case_and_dotted() -> None:
    assert SUPPORTED_SUFFIXES == {".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp"}


# --- bad input ---------------------------------------------------------------------------------


def test_missing_file(tmp_path: Path) -> None:
    error = read_error(tmp_path / "absent.png")
    assert "does not exist" in error.reason


def test_directory_is_not_a_file(tmp_path: Path) -> None:
    folder = tmp_path / "folder.png"
    folder.mkdir()
    assert "not a file" in read_error(folder).reason


def test_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "empty.png"
    path.touch()
    assert "empty" in read_error(path).reason


def test_text_file_renamed_png_is_not_an_image(tmp_path: Path) -> None:
    path = tmp_path / "notes.png"
    path.write_text("patient notes, not pixels\n")
    assert "not an image" in read_error(path).reason


def test_unsupported_extension(tmp_path: Path) -> None:
    path = tmp_path / "cell.gif"
    Image.fromarray(quadrant_rgb()).save(path)
    error = read_error(path)
    assert "unsupported file type '.gif'" in error.reason
    with pytest.raises(ImageReadError):
        read_image_info(path)


def test_unsupported_format_behind_a_supported_extension(tmp_path: Path) -> None:
    path = tmp_path / "really_a_gif.png"
    Image.fromarray(quadrant_rgb()).save(path, format="GIF")
    assert "unsupported image format GIF" in read_error(path).reason


def test_png_content_behind_a_jpg_extension_is_accepted(tmp_path: Path) -> None:
    path = tmp_path / "misnamed.jpg"
    Image.fromarray(quadrant_rgb()).save(path, format="PNG")
    np.testing.assert_allclose(read_image(path), quadrant_rgb() / 255.0, atol=1e-6)


def test_float_tiff_is_refused_not_guessed(tmp_path: Path) -> None:
    path = tmp_path / "float.tif"
    Image.fromarray(np.full((4, 4), 0.5, dtype=np.float32)).save(path)
    assert "unsupported pixel mode F" in read_error(path).reason


@pytest.mark.parametrize("suffix, fmt", [(".png", "PNG"), (".jpg", "JPEG")])
def test_truncated_file_is_refused_not_padded(tmp_path: Path, suffix: str, fmt: str) -> None:
    buffer = io.BytesIO()
    Image.fromarray(noise_rgb()).save(buffer, format=fmt)
    path = tmp_path / f"truncated{suffix}"
    path.write_bytes(buffer.getvalue()[: len(buffer.getvalue()) // 2])

    assert ImageFile.LOAD_TRUNCATED_IMAGES is False
    assert "truncated or corrupt" in read_error(path).reason


def test_corrupt_png_data_is_refused(tmp_path: Path) -> None:
    data = bytearray(png_header_only(4, 4))
    data[-20] ^= 0xFF  # flip a byte inside the IDAT chunk; its checksum no longer matches
    path = tmp_path / "corrupt.png"
    path.write_bytes(bytes(data))
    assert "truncated or corrupt" in read_error(path).reason


def test_decompression_bomb_is_refused_from_the_header(tmp_path: Path) -> None:
    path = tmp_path / "bomb.png"
    path.write_bytes(png_header_only(50_000, 50_000))  # 2.5 gigapixels declared in 60 bytes

    error = read_error(path)
    assert "too many pixels" in error.reason
    with pytest.raises(ImageReadError, match="too many pixels"):
        read_image_info(path)


def test_image_over_our_cap_but_under_pillows_hard_limit_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "large.png"
    path.write_bytes(png_header_only(12_000, 10_000))  # 120 megapixels: Pillow only warns

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        error = read_error(path)
    assert f"more than the limit of {DEFAULT_MAX_PIXELS}" in error.reason


def test_pixel_cap_is_configurable(tmp_path: Path) -> None:
    path = tmp_path / "small.png"
    Image.fromarray(quadrant_rgb(24, 32)).save(path)

    error = read_error(path, max_pixels=100)
    assert "24 = 768 pixels, more than the limit of 100" in error.reason
    assert read_image(path, max_pixels=768).shape == (24, 32, 3)


def test_error_is_a_value_error(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        read_image(tmp_path / "absent.png")


# --- damaged multi-page files and crafted headers -----------------------------------------------


def three_page_tiff() -> bytes:
    rng = np.random.default_rng(3)
    pages = [Image.fromarray(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)) for _ in range(3)]
    buffer = io.BytesIO()
    pages[0].save(buffer, format="TIFF", save_all=True, append_images=pages[1:])
    return buffer.getvalue()


@pytest.mark.parametrize("fraction", [0.35, 0.6, 0.9])
def test_truncated_multi_page_tiff_is_an_image_read_error(tmp_path: Path, fraction: float) -> None:
    # Cut inside page 2's header (Pillow raised TypeError "Missing dimensions"), or inside page 3's
    # pixels (page 1 decoded and was scored as if the file were whole).
    data = three_page_tiff()
    path = tmp_path / "stack.tif"
    path.write_bytes(data[: int(len(data) * fraction)])

    assert "truncated" in read_error(path).reason
    with pytest.raises(ImageReadError, match="truncated"):
        read_image_info(path)


def test_whole_multi_page_tiff_still_reads(tmp_path: Path) -> None:
    path = tmp_path / "stack.tif"
    path.write_bytes(three_page_tiff())

    with pytest.warns(MultiPageWarning):
        assert read_image(path).shape == (64, 64, 3)
    assert read_image_info(path).frames == 3


def test_every_cut_of_a_multi_page_tiff_is_read_or_refused_in_words(tmp_path: Path) -> None:
    data = three_page_tiff()
    path = tmp_path / "cut.tif"
    for end in range(8, len(data), 257):
        path.write_bytes(data[:end])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for read in (read_image_info, read_image):
                with pytest.raises(ImageReadError):
                    read(path)


def test_png_whose_image_data_breaks_off_into_garbage_is_an_image_read_error(tmp_path: Path) -> None:
    # The IDAT chunk's declared length is cut short, so Pillow reads on into the compressed data as
    # if it were the next chunk's header, and raises SyntaxError("broken PNG file").
    buffer = io.BytesIO()
    Image.fromarray(noise_rgb()).save(buffer, format="PNG")
    data = bytearray(buffer.getvalue())
    length = data.find(b"IDAT") - 4
    data[length:length + 4] = struct.pack(">I", 100)
    path = tmp_path / "broken.png"
    path.write_bytes(bytes(data))

    error = read_error(path)
    assert "truncated or corrupt (SyntaxError: broken PNG file" in error.reason
    assert read_image_info(path).width == 64  # the header alone is sound: ingest records the slide


def test_bmp_with_a_palette_larger_than_its_bits_is_refused(tmp_path: Path) -> None:
    buffer = io.BytesIO()
    Image.fromarray(noise_rgb(40, 48)).convert("P").save(buffer, format="BMP")
    data = bytearray(buffer.getvalue())
    data[46:50] = struct.pack("<I", 206 * 256 + 226)  # colours used: far more than 8 bits can index
    path = tmp_path / "palette.bmp"
    path.write_bytes(bytes(data))

    with pytest.raises(ImageReadError, match="invalid palette size"):
        read_image_info(path)
    assert "truncated or corrupt (ValueError: invalid palette size)" in read_error(path).reason


def test_a_memory_error_while_decoding_is_an_image_read_error(tmp_path: Path, monkeypatch) -> None:
    path = tmp_path / "cell.png"
    Image.fromarray(quadrant_rgb()).save(path)

    def no_memory(self) -> None:
        raise MemoryError

    monkeypatch.setattr(ImageFile.ImageFile, "load", no_memory)
    assert "not enough memory to decode its 32x24 pixels" in read_error(path).reason


# --- integer pixels for large fields ------------------------------------------------------------


@pytest.mark.parametrize("mode", ["RGB", "RGBA", "L", "P", "I;16", "CMYK", "1"])
def test_read_pixels_gives_read_images_values_as_integers(tmp_path: Path, mode: str) -> None:
    rgb = Image.fromarray(noise_rgb(40, 50))
    picture = {
        "RGBA": lambda: Image.fromarray(np.dstack([noise_rgb(40, 50), noise_rgb(40, 50)[..., 0]])),
        "I;16": lambda: Image.fromarray(noise_rgb(40, 50)[..., 0].astype(np.uint16) * 257),
        "CMYK": lambda: rgb.convert("CMYK"),
    }.get(mode, lambda: rgb.convert(mode))()
    path = tmp_path / ("cell.jpg" if mode == "CMYK" else "cell.tif")
    picture.save(path)

    pixels = read_pixels(path)

    assert pixels.dtype == (np.uint16 if mode == "I;16" else np.uint8)
    np.testing.assert_array_equal(pixels_to_float(pixels), read_image(path))


def test_read_pixels_is_converted_strip_by_strip_exactly(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr("ganad_clinic.imaging.io.STRIP_PIXELS", 7 * 50)  # strips of 7 rows, the last shorter
    pixels = np.dstack([noise_rgb(40, 50), np.linspace(0, 255, 40 * 50).reshape(40, 50).astype(np.uint8)])
    path = tmp_path / "alpha.png"
    Image.fromarray(pixels).save(path)

    whole = Image.alpha_composite(Image.new("RGBA", (50, 40), (255, 255, 255, 255)), Image.open(path))
    np.testing.assert_array_equal(read_pixels(path), np.asarray(whole.convert("RGB")))


@pytest.mark.parametrize("orientation", range(1, 9))
def test_read_pixels_turns_as_exif_transpose_does(tmp_path: Path, orientation: int) -> None:
    stored = noise_rgb(6, 10)
    exif = Image.Exif()
    exif[0x0112] = orientation
    path = tmp_path / "turned.png"
    Image.fromarray(stored).save(path, exif=exif)

    expected = np.asarray(ImageOps.exif_transpose(Image.open(path)).convert("RGB"))
    pixels = read_pixels(path)
    np.testing.assert_array_equal(pixels, expected)
    assert pixels.flags.c_contiguous
    info = read_image_info(path)
    assert (info.height, info.width) == pixels.shape[:2]


def test_image_info_does_not_decode_a_png(tmp_path: Path, monkeypatch) -> None:
    # Pillow's PNG reader decodes the whole image to look for EXIF after the pixels: 400 MB for a
    # 10000 x 10000 field before it is even recorded.
    path = tmp_path / "field.png"
    Image.fromarray(noise_rgb(30, 40)).save(path)

    def decoding(self) -> None:
        raise AssertionError("read_image_info decoded the pixels")

    monkeypatch.setattr(ImageFile.ImageFile, "load", decoding)
    assert read_image_info(path).width == 40


def test_pixels_to_float_passes_floats_and_refuses_other_integers() -> None:
    floats = np.zeros((2, 2, 3), dtype=np.float32)
    assert pixels_to_float(floats) is floats
    with pytest.raises(ValueError, match="uint8 or uint16"):
        pixels_to_float(np.zeros((2, 2, 3), dtype=np.int32))


def test_a_camera_jpeg_with_preview_frames_is_one_page(tmp_path: Path) -> None:
    path = tmp_path / "camera.jpg"
    first = Image.fromarray(np.full((24, 32, 3), 200, dtype=np.uint8))
    preview = Image.fromarray(np.full((12, 16, 3), 90, dtype=np.uint8))
    first.save(path, format="MPO", save_all=True, append_images=[preview])
    with Image.open(path) as opened:
        assert opened.format == "MPO" and opened.n_frames == 2
    assert read_image_info(path).frames == 1
    with warnings.catch_warnings():
        warnings.simplefilter("error", MultiPageWarning)
        assert read_image(path).shape == (24, 32, 3)
