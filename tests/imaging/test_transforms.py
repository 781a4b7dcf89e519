from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
from monai.transforms import CenterSpatialCrop, Compose, EnsureChannelFirst, Lambda, Resize, ScaleIntensityRange
from PIL import Image

from ganad_clinic.imaging.io import read_image
from ganad_clinic.imaging.transforms import (
    default_resize_size,
    eval_transform,
    to_display,
    to_luminance,
    train_transform,
)


def wide_image_with_top_left_marker() -> np.ndarray:
    """40 rows x 80 columns, dark, with a bright 20x20 square in the top-left corner."""
    pixels = np.zeros((40, 80, 3), dtype=np.float32)
    pixels[:20, :20] = 1.0
    return pixels


def assert_model_tensor(tensor: torch.Tensor, channels: int, size: int) -> None:
    assert type(tensor) is torch.Tensor
    assert tensor.shape == (channels, size, size)
    assert tensor.dtype == torch.float32
    assert tensor.min() >= -1.0 and tensor.max() <= 1.0


def test_default_resize_keeps_the_papers_ratio() -> None:
    assert default_resize_size(220) == 256
    assert default_resize_size(64) == 74


def test_eval_output_shape_dtype_and_range() -> None:
    image = np.random.default_rng(0).random((50, 60, 3), dtype=np.float32)
    assert_model_tensor(eval_transform(32)(image), 3, 32)


def test_eval_maps_intensities_to_minus_one_one() -> None:
    transform = eval_transform(16)
    for value, expected in ((0.0, -1.0), (0.5, 0.0), (1.0, 1.0)):
        output = transform(np.full((20, 20, 3), value, dtype=np.float32))
        assert torch.allclose(output, torch.full((3, 16, 16), expected), atol=1e-4)


def test_eval_is_deterministic() -> None:
    image = np.random.default_rng(1).random((40, 40, 3), dtype=np.float32)
    transform = eval_transform(32)
    assert torch.equal(transform(image), transform(image))
    assert torch.equal(transform(image), eval_transform(32)(image))


def test_eval_without_resizing_is_undone_by_to_display() -> None:
    image = np.random.default_rng(2).random((32, 32, 3), dtype=np.float32)
    tensor = eval_transform(32, resize_size=32)(image)
    np.testing.assert_allclose(to_display(tensor), image, atol=1e-5)


def test_non_square_image_keeps_its_orientation() -> None:
    output = eval_transform(32)(wide_image_with_top_left_marker())[0]
    # both sides are stretched to 37 then centre-cropped to 32: the marker becomes a tall strip
    # of about 16 rows x 7 columns in the top-left corner; a transposed image would make it wide.
    assert output[12, 3] > 0.99
    assert output[3, 12] < -0.99
    assert output[25:, :].max() < -0.99
    assert output[:, 12:].max() < -0.99


def test_non_square_file_keeps_its_orientation_from_disk(tmp_path: Path) -> None:
    path = tmp_path / "wide.png"
    Image.fromarray((wide_image_with_top_left_marker() * 255).astype(np.uint8)).save(path)
    from_file = eval_transform(32)(read_image(path))
    from_array = eval_transform(32)(wide_image_with_top_left_marker())
    assert torch.equal(from_file, from_array)


def test_one_channel_output_is_luminance() -> None:
    red = np.zeros((20, 20, 3), dtype=np.float32)
    red[..., 0] = 1.0
    output = eval_transform(16, channels=1)(red)
    assert_model_tensor(output, 1, 16)
    assert torch.allclose(output, torch.full((1, 16, 16), 2 * 0.299 - 1.0), atol=1e-4)


def test_gray_image_gives_three_equal_channels(tmp_path: Path) -> None:
    path = tmp_path / "gray.png"
    gray = np.random.default_rng(3).integers(0, 256, (30, 30), dtype=np.uint8)
    Image.fromarray(gray, mode="L").save(path)
    output = eval_transform(16)(read_image(path))
    assert torch.equal(output[0], output[1]) and torch.equal(output[0], output[2])
    assert output.std() > 0.1


def test_luminance_of_gray_is_the_gray_value() -> None:
    gray = torch.full((3, 2, 2), 0.25)
    assert torch.allclose(to_luminance(gray), torch.full((1, 2, 2), 0.25))


def test_to_display_repeats_a_single_channel() -> None:
    tensor = torch.tensor([[[-1.0, 0.0], [1.0, 3.0]]])
    shown = to_display(tensor)
    assert shown.shape == (2, 2, 3) and shown.dtype == np.float32
    np.testing.assert_allclose(shown[..., 0], [[0.0, 0.5], [1.0, 1.0]])
    assert np.array_equal(shown[..., 0], shown[..., 2])


def test_to_display_rejects_other_shapes() -> None:
    with pytest.raises(ValueError, match="CxHxW"):
        to_display(torch.zeros(1, 3, 8, 8))


def test_train_output_shape_dtype_and_range() -> None:
    image = np.random.default_rng(4).random((45, 45, 3), dtype=np.float32)
    for channels in (1, 3):
        transform = train_transform(32, channels=channels).set_random_state(0)
        assert_model_tensor(transform(image), channels, 32)


def test_train_is_reproducible_with_a_seed_and_random_across_draws() -> None:
    image = np.random.default_rng(5).random((45, 45, 3), dtype=np.float32)
    first = train_transform(32).set_random_state(7)
    second = train_transform(32).set_random_state(7)
    first_draws = [first(image) for _ in range(6)]
    second_draws = [second(image) for _ in range(6)]
    assert all(torch.equal(a, b) for a, b in zip(first_draws, second_draws))
    assert any(not torch.equal(first_draws[0], other) for other in first_draws[1:])


def test_train_flips_and_rotates() -> None:
    # a horizontal bar in the top-left corner: flips move it between corners but keep it horizontal;
    # only a 90 degree turn makes it vertical.
    image = np.zeros((32, 32, 3), dtype=np.float32)
    image[:4, :16] = 1.0
    transform = train_transform(32, resize_size=32).set_random_state(0)
    corners, orientations = set(), set()
    for _ in range(40):
        bright = transform(image)[0] > 0
        rows, columns = torch.nonzero(bright, as_tuple=True)
        corners.add((rows.min().item() == 0, columns.min().item() == 0))
        tall = rows.max() - rows.min() > columns.max() - columns.min()
        orientations.add("vertical" if tall else "horizontal")
    assert corners == {(True, True), (True, False), (False, True), (False, False)}
    assert orientations == {"vertical", "horizontal"}


def test_train_crop_position_varies() -> None:
    image = np.random.default_rng(6).random((64, 64, 3), dtype=np.float32)
    transform = train_transform(16, resize_size=64).set_random_state(1)
    crops = {transform(image).sum().item() for _ in range(5)}
    assert len(crops) > 1


def test_upright_geometries_never_flip_or_turn() -> None:
    # a horizontal bar in the upper left, clear of the edges: "shift" moves it a little, "none" not at all
    image = np.zeros((32, 32, 3), dtype=np.float32)
    image[8:12, 6:22] = 1.0
    fixed = train_transform(28, geometry="none").set_random_state(0)
    assert all(torch.equal(fixed(image), eval_transform(28)(image)) for _ in range(5))
    shifted = train_transform(28, geometry="shift").set_random_state(0)
    draws = [shifted(image)[0] > 0 for _ in range(20)]
    for bright in draws:
        rows, columns = torch.nonzero(bright, as_tuple=True)
        assert rows.max() - rows.min() < columns.max() - columns.min()  # still horizontal
        assert rows.min() <= 10 and columns.min() <= 8  # still in the upper left (a flip or turn moves it away)
    assert len({tuple(torch.nonzero(b)[0].tolist()) for b in draws}) > 1
    with pytest.raises(ValueError, match="geometry"):
        train_transform(28, geometry="mirror")


def test_pipelines_can_be_sent_to_data_loader_workers() -> None:
    restored = pickle.loads(pickle.dumps(train_transform(16, channels=1)))
    assert restored(np.ones((20, 20, 3), dtype=np.float32)).shape == (1, 16, 16)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"image_size": 0}, "image_size"),
        ({"image_size": 32, "channels": 2}, "channels"),
        ({"image_size": 32, "resize_size": 16}, "resize_size"),
    ],
)
def test_invalid_arguments_are_refused(kwargs: dict, message: str) -> None:
    for factory in (eval_transform, train_transform):
        with pytest.raises(ValueError, match=message):
            factory(**kwargs)


@pytest.mark.parametrize("channels", [3, 1])
def test_a_batch_gives_each_image_its_own_values_whatever_the_mix(channels: int) -> None:
    # what MONAI gives one image at a time, channel first: the reference the batch must equal exactly
    reference = Compose([EnsureChannelFirst(channel_dim=-1), *([Lambda(to_luminance)] if channels == 1 else []),
                         Resize((19, 19), mode="bilinear", anti_aliasing=True), CenterSpatialCrop((16, 16)),
                         ScaleIntensityRange(a_min=0.0, a_max=1.0, b_min=-1.0, b_max=1.0, clip=True)])
    rng = np.random.default_rng(3)
    pixels = [rng.integers(0, 256, shape, dtype=np.uint8) for shape in [(40, 40, 3), (57, 33, 3), (40, 40, 3)]]
    images = [pixels[0], pixels[1].astype(np.float32) / 255, pixels[2], pixels[0].astype(np.float32) / 255]
    batch = eval_transform(16, channels).batch(images)
    assert batch.shape == (4, channels, 16, 16)
    for image, out in zip(images, batch):
        expected = torch.as_tensor(reference(image if image.dtype.kind == "f" else image.astype(np.float32) / 255))
        assert torch.equal(out, expected.float())
    assert torch.equal(batch[0], batch[3])  # integers and their floats are the same image
    assert eval_transform(16, channels).batch([]).shape == (0, channels, 16, 16)
