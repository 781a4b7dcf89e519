"""Procedural blood-smear images in the style of ALL-IDB, for the demo and the tests.

Real ALL-IDB data cannot be shipped, so this module draws a stand-in: ALL-IDB2-like 257x257 crops
with one centred white cell (a mature lymphocyte = normal, a lymphoblast = anomalous) among red
blood cells, and ALL-IDB1-like full fields holding several white cells.

Colour follows Beer-Lambert: each stain (haemoglobin/eosin in red cells, azure-purple chromatin,
basophilic blue cytoplasm) has an optical density per RGB channel, densities add where objects
overlap, and the light reaching the sensor is `illumination * exp(-sum of densities)`. Stain hue
and strength, illumination, red-cell density, focus and noise vary per image so that the classes
differ in the white cell itself (size, nucleus shape, chromatin texture, nucleoli) and not in a
global statistic such as mean colour.

Every image is drawn from its own `numpy.random.default_rng((seed, stream, index))`, so a seed
always gives the same bytes and image k does not depend on how many images are asked for.

`stain_shift` simulates another lab's or another dye batch's staining, for testing the drift
alarm: every stain's optical density is multiplied by 1 + stain_shift (0.5: half as strong again,
-0.3: 30 % weaker), beyond the per-image variation above. The random draws are the same, so a
shifted image shows the very cells of its unshifted twin, and 0 (the default) changes no byte.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageFilter

from ganad_clinic.imaging.cells import chromatin_mask

CROP_SIZE = 257
FIELD_WIDTH = 1296
FIELD_HEIGHT = 972
# ALL-IDB1 fields (2592x1944) share the ALL-IDB2 crop scale; fields are drawn at half that resolution.
FIELD_SCALE = 0.5

# Optical densities (natural log) per RGB channel at unit stain density.
_OD_RBC = np.array([0.07, 0.46, 0.38])
_OD_NUCLEUS = np.array([0.95, 1.55, 0.55])
_OD_CYTOPLASM = np.array([0.42, 0.22, 0.05])
_OD_BACKGROUND = np.array([0.03, 0.05, 0.04])

# Lengths at crop scale 1 (a 257x257 crop), in pixels.
_RBC_RADIUS = 30.0
_NORMAL_CELL_RADIUS = (37.0, 3.5, 30.0, 47.0)  # mean, sd, min, max
_BLAST_CELL_RADIUS = (51.0, 5.0, 40.0, 64.0)
# Red cells keep their centres this far (in cell radii, plus 0.6 red-cell radii) from a white cell.
_KEEP_OUT = 1.1

# Streams of the per-image random generators, so crops of one class never shift another's.
_STREAM_NORMAL = 0
_STREAM_BLAST = 1
_STREAM_FIELD = 2


@dataclass(frozen=True)
class FieldCell:
    """A white cell drawn in a field or crop: its centre (row, column), radius in pixels and class."""

    row: float
    col: float
    radius: float
    blast: bool


@dataclass(frozen=True)
class SyntheticSet:
    """What `write_dataset` wrote: crop files in ALL-IDB2 order (blasts first), field files, and
    for each field its ground truth: the white cells drawn in it and the `.xyc` file beside it."""

    out_dir: Path
    crop_paths: tuple[Path, ...]
    field_paths: tuple[Path, ...]
    n_normal: int
    n_blast: int
    n_blast_fields: int
    field_cells: tuple[tuple[FieldCell, ...], ...]
    xyc_paths: tuple[Path, ...]

    @property
    def n_fields(self) -> int:
        return len(self.field_paths)


@dataclass(frozen=True)
class _Stains:
    """One image's stain colours and strengths, drawn once so all cells in it share them."""

    rbc: np.ndarray
    nucleus: np.ndarray
    cytoplasm: np.ndarray
    background: np.ndarray


class _DensityMaps:
    """Per-stain density images that cells are drawn into; rendered to RGB at the end."""

    def __init__(self, height: int, width: int) -> None:
        self.height = height
        self.width = width
        self.rbc = np.zeros((height, width), np.float32)
        self.nucleus = np.zeros((height, width), np.float32)
        self.cytoplasm = np.zeros((height, width), np.float32)

    def window(self, cx: float, cy: float, reach: float) -> tuple[tuple[slice, slice], np.ndarray, np.ndarray] | None:
        """The clipped box around (cx, cy) and its column/row offsets from the centre (broadcastable).

        None when the box lies entirely outside the image.
        """
        x0, x1 = max(int(np.floor(cx - reach)), 0), min(int(np.ceil(cx + reach)) + 1, self.width)
        y0, y1 = max(int(np.floor(cy - reach)), 0), min(int(np.ceil(cy + reach)) + 1, self.height)
        if x0 >= x1 or y0 >= y1:
            return None
        dx = np.arange(x0, x1, dtype=np.float32)[None, :] - np.float32(cx)
        dy = np.arange(y0, y1, dtype=np.float32)[:, None] - np.float32(cy)
        return (slice(y0, y1), slice(x0, x1)), dx, dy


def _draw_stains(rng: np.random.Generator) -> _Stains:
    strength = rng.uniform(0.8, 1.2)

    def vary(od: np.ndarray, spread: float) -> np.ndarray:
        return (od * strength * rng.uniform(0.85, 1.15) * np.exp(rng.normal(0.0, spread, 3))).astype(np.float32)

    return _Stains(
        rbc=vary(_OD_RBC, 0.12),
        nucleus=vary(_OD_NUCLEUS, 0.10),
        cytoplasm=vary(_OD_CYTOPLASM, 0.1),
        background=(_OD_BACKGROUND * np.exp(rng.normal(0.0, 0.4, 3))).astype(np.float32),
    )


def _shift_stains(stains: _Stains, stain_shift: float) -> _Stains:
    """The stains made 1 + stain_shift times as dense (the glass's background is left as it is)."""
    if stain_shift <= -1.0:
        raise ValueError(f"stain_shift must be above -1 (no stain at all), got {stain_shift}")
    if stain_shift == 0.0:
        return stains
    factor = np.float32(1.0 + stain_shift)
    return _Stains(rbc=stains.rbc * factor, nucleus=stains.nucleus * factor, cytoplasm=stains.cytoplasm * factor,
                   background=stains.background)


def _soft_inside(boundary: np.ndarray | float, distance: np.ndarray, edge: float) -> np.ndarray:
    """1 inside, 0 outside, with a linear ramp `edge` pixels wide so outlines are anti-aliased."""
    return np.clip((boundary - distance) / edge + 0.5, 0.0, 1.0)


def _smooth_noise(rng: np.random.Generator, height: int, width: int, grain: float) -> np.ndarray:
    """Zero-mean, unit-sd noise with blobs about `grain` pixels across (bicubic upsampled)."""
    grain = max(grain, 1.0)
    low = rng.standard_normal((max(int(height / grain) + 2, 2), max(int(width / grain) + 2, 2)))
    image = Image.fromarray(low.astype(np.float32))  # mode "F"
    field = np.asarray(image.resize((width, height), Image.Resampling.BICUBIC), np.float32)
    return (field - field.mean()) / (field.std() + 1e-6)


def _harmonic_radius(rng: np.random.Generator, angle: np.ndarray, wobble: float) -> np.ndarray:
    """A closed outline as a radius factor around 1: a few random low harmonics of the angle."""
    factor = np.ones_like(angle)
    for k in (2, 3, 4, 5):
        factor += rng.uniform(0.3, 1.0) * wobble / k * np.cos(k * angle + rng.uniform(0, 2 * np.pi))
    return factor


def _add_rbc(maps: _DensityMaps, rng: np.random.Generator, cx: float, cy: float, radius: float) -> None:
    """A biconcave red cell: a slightly elliptic disc, denser at the rim than in its central pallor."""
    stretch = rng.uniform(0.0, 0.09)
    tilt = rng.uniform(0, np.pi)
    box = maps.window(cx, cy, radius * (1 + stretch) + 2)
    if box is None:
        return
    region, dx, dy = box
    u = dx * np.cos(tilt) + dy * np.sin(tilt)
    v = -dx * np.sin(tilt) + dy * np.cos(tilt)
    distance = np.sqrt((u / (1 + stretch)) ** 2 + (v / (1 - stretch)) ** 2)
    inside = _soft_inside(radius, distance, 1.2)
    pallor = rng.uniform(0.35, 0.65) * np.exp(-((distance / (0.45 * radius)) ** 2))
    rim = 0.15 * np.exp(-(((distance - 0.85 * radius) / (0.12 * radius)) ** 2))
    maps.rbc[region] += inside * rng.uniform(0.85, 1.15) * (1.0 - pallor + rim)


def _draw_cell_radius(rng: np.random.Generator, blast: bool, scale: float) -> float:
    """A white cell's radius; the class distributions overlap a little at their tails."""
    mean, sd, low, high = _BLAST_CELL_RADIUS if blast else _NORMAL_CELL_RADIUS
    return float(np.clip(rng.normal(mean, sd), low, high)) * scale


def _add_white_cell(
    maps: _DensityMaps,
    rng: np.random.Generator,
    cx: float,
    cy: float,
    cell_radius: float,
    blast: bool,
    scale: float,
) -> None:
    """Draw a lymphocyte or lymphoblast over whatever red cells lie there.

    Normal: round, dense nucleus with coarse clumped chromatin and a thin pale-blue rim. Blast:
    larger cell, irregular often cleft nucleus filling most of it, fine lighter chromatin, nucleoli.
    """
    nucleus_ratio = rng.uniform(0.82, 0.9) if blast else rng.uniform(0.74, 0.84)
    box = maps.window(cx, cy, cell_radius * 1.15 + 3)
    if box is None:
        return
    region, dx, dy = box
    height, width = dy.shape[0], dx.shape[1]

    cell_angle = np.arctan2(dy, dx)
    cell_outline = cell_radius * _harmonic_radius(rng, cell_angle, 0.05 if blast else 0.03)
    cell = _soft_inside(cell_outline, np.hypot(dx, dy), 1.5)

    nucleus_radius = cell_radius * nucleus_ratio
    offset = rng.uniform(0.1, 0.5 if blast else 0.8) * (cell_radius - nucleus_radius)
    direction = rng.uniform(0, 2 * np.pi)
    ndx, ndy = dx - offset * np.cos(direction), dy - offset * np.sin(direction)
    angle = np.arctan2(ndy, ndx)
    outline = nucleus_radius * _harmonic_radius(rng, angle, 0.22 if blast else 0.08)
    if blast and rng.random() < 0.7:
        cleft_at = rng.uniform(-np.pi, np.pi)
        apart = (angle - cleft_at + np.pi) % (2 * np.pi) - np.pi
        outline *= 1.0 - rng.uniform(0.2, 0.4) * np.exp(-((apart / rng.uniform(0.2, 0.35)) ** 2))
    nucleus = np.minimum(_soft_inside(outline, np.hypot(ndx, ndy), 1.2), cell)

    if blast:
        chromatin = rng.uniform(0.62, 0.78) * (1.0 + 0.1 * _smooth_noise(rng, height, width, 1.5 * scale))
        nucleoli: np.ndarray | float = np.zeros_like(chromatin)
        for _ in range(rng.integers(1, 4)):
            reach = rng.uniform(0.0, 0.5) * nucleus_radius
            at = rng.uniform(0, 2 * np.pi)
            spot = rng.uniform(0.1, 0.15) * nucleus_radius
            spot_distance = np.hypot(ndx - reach * np.cos(at), ndy - reach * np.sin(at))
            nucleoli = np.maximum(nucleoli, _soft_inside(spot, spot_distance, 2.0))
        chromatin *= 1.0 - 0.55 * nucleoli
        cytoplasm = rng.uniform(0.7, 1.0)
    else:
        clumps = np.tanh(1.5 * _smooth_noise(rng, height, width, 5.0 * scale))
        chromatin = rng.uniform(1.0, 1.2) * (1.0 + 0.28 * clumps)
        nucleoli = 0.0
        cytoplasm = rng.uniform(0.6, 0.95)

    maps.rbc[region] *= 1.0 - cell
    maps.nucleus[region] += nucleus * chromatin
    maps.cytoplasm[region] += (cell - nucleus) * cytoplasm + 0.5 * nucleus * nucleoli


def _place_rbcs(
    maps: _DensityMaps,
    rng: np.random.Generator,
    coverage: float,
    radius: float,
    keep_out: list[tuple[float, float, float]],
) -> None:
    """Scatter red cells to about `coverage` of the area, some overlapping, some cut by the border.

    Candidates are rejected near accepted cells (a random spacing that lets a few overlap) and
    under white cells (`keep_out`: x, y, radius), which are drawn on top anyway.
    """
    area = (maps.width + 2 * radius) * (maps.height + 2 * radius)
    target = int(round(coverage * area / (np.pi * radius**2)))
    centres = np.empty((0, 2))
    blocked = np.array(keep_out, dtype=float).reshape(-1, 3)
    for _ in range(target * 4):
        if len(centres) >= target:
            break
        x = rng.uniform(-radius, maps.width + radius)
        y = rng.uniform(-radius, maps.height + radius)
        own_radius = radius * rng.uniform(0.9, 1.1)
        if np.any(np.hypot(blocked[:, 0] - x, blocked[:, 1] - y) < blocked[:, 2] + 0.6 * own_radius):
            continue
        if len(centres) and np.min(np.hypot(centres[:, 0] - x, centres[:, 1] - y)) < rng.uniform(1.5, 2.0) * radius:
            continue
        centres = np.vstack([centres, (x, y)])
        _add_rbc(maps, rng, x, y, own_radius)


def _render(maps: _DensityMaps, stains: _Stains, rng: np.random.Generator, scale: float) -> np.ndarray:
    """Turn stain densities into an 8-bit RGB photograph: light, optics, then sensor."""
    h, w = maps.height, maps.width
    ys = (np.arange(h, dtype=np.float32) / max(h - 1, 1) - 0.5)[:, None]
    xs = (np.arange(w, dtype=np.float32) / max(w - 1, 1) - 0.5)[None, :]
    centre_x, centre_y = rng.uniform(-0.3, 0.3, 2)
    vignette = 1.0 - rng.uniform(0.0, 0.35) * ((xs - centre_x) ** 2 + (ys - centre_y) ** 2)
    gradient = 1.0 + rng.uniform(-0.08, 0.08) * xs + rng.uniform(-0.08, 0.08) * ys
    level = (255.0 * rng.uniform(0.72, 1.0) * np.exp(rng.normal(0.0, 0.03, 3))).astype(np.float32)
    light = (vignette * gradient).astype(np.float32)

    # Channel by channel on contiguous planes: several times faster than broadcasting over RGB.
    channels = [
        light
        * level[c]
        * np.exp(
            -(
                maps.rbc * stains.rbc[c]
                + maps.nucleus * stains.nucleus[c]
                + maps.cytoplasm * stains.cytoplasm[c]
                + stains.background[c]
            )
        )
        for c in range(3)
    ]
    image = Image.fromarray(np.clip(np.dstack(channels), 0, 255).astype(np.uint8))
    image = image.filter(ImageFilter.GaussianBlur(rng.uniform(0.4, 1.6) * max(scale, 0.5)))
    noise = rng.standard_normal((h, w, 3), dtype=np.float32) * np.float32(rng.uniform(1.0, 4.0))
    return np.clip(np.rint(np.asarray(image, np.float32) + noise), 0, 255).astype(np.uint8)


def generate_cell(rng: np.random.Generator, blast: bool, size: int = CROP_SIZE, stain_shift: float = 0.0) -> np.ndarray:
    """One ALL-IDB2-style crop (size x size x 3, uint8): a centred white cell among red cells;
    `stain_shift` as in the module's docstring."""
    return draw_cell(rng, blast, size, stain_shift)[0]


def draw_cell(rng: np.random.Generator, blast: bool, size: int = CROP_SIZE,
              stain_shift: float = 0.0) -> tuple[np.ndarray, FieldCell]:
    """One ALL-IDB2-style crop (size x size x 3, uint8) and its white cell: drawn off-centre by a
    few pixels, so a test of where a cell is found needs the centre it was drawn at. `stain_shift`
    as in the module's docstring."""
    if size < 16:
        raise ValueError(f"crop size must be at least 16 pixels, got {size}")
    scale = size / CROP_SIZE
    maps = _DensityMaps(size, size)
    stains = _shift_stains(_draw_stains(rng), stain_shift)
    centre = (size - 1) / 2
    cx, cy = centre + rng.uniform(-4, 4, 2) * scale
    cell_radius = _draw_cell_radius(rng, blast, scale)
    keep_out = [(cx, cy, cell_radius * _KEEP_OUT)]
    _place_rbcs(maps, rng, rng.uniform(0.12, 0.6), _RBC_RADIUS * scale * rng.uniform(0.92, 1.08), keep_out)
    _add_white_cell(maps, rng, cx, cy, cell_radius, blast, scale)
    return _render(maps, stains, rng, scale), FieldCell(float(cy), float(cx), cell_radius, blast)


def generate_field(
    rng: np.random.Generator,
    width: int = FIELD_WIDTH,
    height: int = FIELD_HEIGHT,
    n_cells: int | None = None,
    blast_fraction: float = 0.5,
    stain_shift: float = 0.0,
) -> tuple[np.ndarray, bool]:
    """One ALL-IDB1-style field (height x width x 3, uint8, at half ALL-IDB1 resolution) and
    whether it holds any blast; see `draw_field`."""
    image, cells = draw_field(rng, width, height, n_cells, blast_fraction, stain_shift)
    return image, any(cell.blast for cell in cells)


def draw_field(
    rng: np.random.Generator,
    width: int = FIELD_WIDTH,
    height: int = FIELD_HEIGHT,
    n_cells: int | None = None,
    blast_fraction: float = 0.5,
    stain_shift: float = 0.0,
) -> tuple[np.ndarray, list[FieldCell]]:
    """One ALL-IDB1-style field (height x width x 3, uint8, at half ALL-IDB1 resolution) and the
    white cells drawn in it.

    `n_cells` white cells (2-6 at random when None; fewer if they do not fit apart), each a blast
    with probability `blast_fraction`; `stain_shift` as in the module's docstring.
    """
    if width < 64 or height < 64:
        raise ValueError(f"field must be at least 64x64 pixels, got {width}x{height}")
    if n_cells is not None and n_cells < 0:
        raise ValueError(f"n_cells must not be negative, got {n_cells}")
    if not 0.0 <= blast_fraction <= 1.0:
        raise ValueError(f"blast_fraction must lie in [0, 1], got {blast_fraction}")
    count = int(rng.integers(2, 7)) if n_cells is None else n_cells
    maps = _DensityMaps(height, width)
    stains = _shift_stains(_draw_stains(rng), stain_shift)
    margin = _BLAST_CELL_RADIUS[3] * FIELD_SCALE
    white_cells: list[tuple[float, float, float, bool]] = []
    for _ in range(count * 50):
        if len(white_cells) == count:
            break
        x, y = rng.uniform(margin, width - margin), rng.uniform(margin, height - margin)
        if all(np.hypot(x - ox, y - oy) > 2.5 * margin for ox, oy, _, _ in white_cells):
            blast = bool(rng.random() < blast_fraction)
            white_cells.append((x, y, _draw_cell_radius(rng, blast, FIELD_SCALE), blast))
    keep_out = [(x, y, radius * _KEEP_OUT) for x, y, radius, _ in white_cells]
    rbc_radius = _RBC_RADIUS * FIELD_SCALE * rng.uniform(0.92, 1.08)
    _place_rbcs(maps, rng, rng.uniform(0.3, 0.55), rbc_radius, keep_out)
    for x, y, radius, blast in white_cells:
        _add_white_cell(maps, rng, x, y, radius, blast, FIELD_SCALE)
    image = _render(maps, stains, rng, FIELD_SCALE)
    return image, [FieldCell(y, x, radius, blast) for x, y, radius, blast in white_cells]


def nucleus_fraction(image: np.ndarray) -> float:
    """Fraction of pixels coloured like stained chromatin (imaging.cells.chromatin_mask)."""
    return float(chromatin_mask(image).mean())


def crop_rng(seed: int, blast: bool, index: int) -> np.random.Generator:
    """The generator of the index-th (from 0) normal or blast crop of a seed, as `write_dataset` uses it."""
    return np.random.default_rng((seed, _STREAM_BLAST if blast else _STREAM_NORMAL, index))


def field_rng(seed: int, index: int) -> np.random.Generator:
    """The generator of the index-th (from 0) field of a seed, as `write_dataset` uses it."""
    return np.random.default_rng((seed, _STREAM_FIELD, index))


def xyc_path(field_path: str | Path) -> Path:
    """The ALL-IDB1 ground-truth file of a field: the same stem, `.xyc`."""
    return Path(field_path).with_suffix(".xyc")


def write_xyc(path: str | Path, cells: list[FieldCell]) -> Path:
    """Write ALL-IDB1-style ground truth: one line `x y` (column, row; whole field pixels) per blast
    centre, nothing for the other cells, so a normal field's file is empty."""
    path = Path(path)
    path.write_text("".join(f"{round(cell.col)} {round(cell.row)}\n" for cell in cells if cell.blast))
    return path


def read_xyc(path: str | Path) -> list[tuple[int, int]]:
    """The blast centres (x = column, y = row) of an ALL-IDB1-style `.xyc` file; blank lines are
    skipped, anything but two whole non-negative numbers on a line is an error naming the line."""
    centres = []
    for number, line in enumerate(Path(path).read_text().splitlines(), start=1):
        if not line.strip():
            continue
        parts = line.split()
        if len(parts) != 2 or not all(part.isascii() and part.isdigit() for part in parts):
            raise ValueError(f"{path}, line {number}: expected 'x y' (two whole pixel numbers), got {line.strip()!r}")
        centres.append((int(parts[0]), int(parts[1])))
    return centres


def write_dataset(
    out_dir: str | Path, n_normal: int = 130, n_blast: int = 130, seed: int = 0, n_fields: int = 0,
    stain_shift: float = 0.0,
) -> SyntheticSet:
    """Write an ALL-IDB2-style crop set (`ImNNN_L.tif`, blasts first) and ALL-IDB1-style fields.

    Fields go to `out_dir/fields/ImNNN_L.jpg`, each with its blast centres in `ImNNN_L.xyc` beside
    it (`write_xyc`); every other field may hold blasts, so both labels occur. `stain_shift` stains
    every image differently from the default (see the module's docstring).
    """
    for name, count in (("n_normal", n_normal), ("n_blast", n_blast), ("n_fields", n_fields)):
        if count < 0:
            raise ValueError(f"{name} must not be negative, got {count}")
    if seed < 0:
        raise ValueError(f"seed must not be negative, got {seed}")
    if stain_shift <= -1.0:
        raise ValueError(f"stain_shift must be above -1 (no stain at all), got {stain_shift}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)

    crops = [(True, i) for i in range(n_blast)] + [(False, i) for i in range(n_normal)]
    crop_paths = []
    for number, (blast, index) in enumerate(crops, start=1):
        path = out / f"Im{number:03d}_{int(blast)}.tif"
        Image.fromarray(generate_cell(crop_rng(seed, blast, index), blast, stain_shift=stain_shift)).save(path)
        crop_paths.append(path)

    field_paths, field_cells, xyc_paths = [], [], []
    n_blast_fields = 0
    if n_fields:
        (out / "fields").mkdir(exist_ok=True)
    for index in range(n_fields):
        blast_fraction = 0.5 if index % 2 else 0.0
        field, cells = draw_field(field_rng(seed, index), blast_fraction=blast_fraction, stain_shift=stain_shift)
        has_blast = any(cell.blast for cell in cells)
        path = out / "fields" / f"Im{index + 1:03d}_{int(has_blast)}.jpg"
        Image.fromarray(field).save(path, quality=90)
        field_paths.append(path)
        field_cells.append(tuple(cells))
        xyc_paths.append(write_xyc(xyc_path(path), cells))
        n_blast_fields += has_blast

    return SyntheticSet(out, tuple(crop_paths), tuple(field_paths), n_normal, n_blast, n_blast_fields,
                        tuple(field_cells), tuple(xyc_paths))
