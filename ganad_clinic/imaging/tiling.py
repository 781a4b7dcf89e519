"""Large field images -> tiles, one per white cell -> one slide score and one stitched heat map.

The model learns from ALL-IDB2-style crops: one white cell centred in a square of about 257 px. A
crop is scored whole, resized by the eval transform exactly as in training. A field (ALL-IDB1:
2592x1944 with several cells) resized whole would shrink every cell to a few pixels, so it is cut
into tiles with the crops' field of view, each framing one white cell as a crop does, and each tile
is scored like a crop. A tile that frames red cells only, or half a white cell at its edge, is
unlike anything the model learnt from: on synthetic fields an overlapping grid of tiles scored every
normal field above the threshold (training/field_screening.py).

The rule (`TilingRule`):
- an image is tiled when its longer side exceeds `tile_above` = 1.5 x the crop size (386 px for
  257-px crops): crops, even slightly larger ones, stay whole; fields are tiled;
- a tile's side is the crop size times `field_scale`, the pixel scale of fields relative to the
  crops (1 for ALL-IDB1 fields at full resolution, 0.5 for our synthetic fields, drawn at half);
- a field gets one tile centred on each nucleus that imaging.cells finds, also where the cell lies
  near the field's edge: the tile then reaches beyond the field and the part outside is the field
  mirrored at its edge (reflect padding). A training crop always frames its cell in the middle; a
  tile moved inside the field instead framed a normal cell 20-30 px off-centre, and that alone
  scored it above the blasts of its field (training/cell_pointing.py: 4 of 25 synthetic blast
  fields pointed at such a cell; none with the mirror). A field where none is found, or more than
  the grid would have tiles (too dense a smear to frame cells one by one), is covered by the overlapping grid
  instead (tiles overlap by half a tile, the last of a row or column flush with the edge), so that a
  field is never passed unseen and never costs more than its grid;
- the slide's score is the MAXIMUM tile score (one anomalous cell makes an anomalous slide), and its
  terms are those of that tile;
- each tile's heat map is put back on the part of the tile the model saw (the eval transform's
  centre crop, about 86 % of each side) and overlaps keep the maximum; pixels no tile saw have heat 0.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ganad_clinic.imaging.cells import white_cell_centres
from ganad_clinic.imaging.transforms import default_resize_size

DEFAULT_CROP_SIZE = 257
"""Side of an ALL-IDB2 crop; the field of view of a model trained on such crops."""

TILE_ABOVE_FACTOR = 1.5
"""Images whose longer side exceeds this many crop sizes are tiled."""

WHOLE_IMAGE = "whole image"
WHITE_CELLS = "white cells"
GRID = "grid"
TILING_RULES = (WHOLE_IMAGE, WHITE_CELLS, GRID)
"""The rules a slide's tiles are chosen by (stored with every score)."""
FOUND_BY = {WHOLE_IMAGE: "whole image", WHITE_CELLS: "white cell", GRID: "grid"}
"""How each tile of a plan of that rule was found (stored with every cell)."""


@dataclass(frozen=True)
class Tile:
    """A rectangle of a slide, in pixels (rows from the top, columns from the left); a tile
    centred on a cell near the edge reaches beyond the slide (a negative top or left, or past
    the far side)."""

    top: int
    left: int
    height: int
    width: int

    def cut(self, image: np.ndarray) -> np.ndarray:
        """The tile's pixels; any part beyond the slide is the slide mirrored at its edge (as
        numpy's "reflect" padding of the whole slide would give it)."""
        rows, cols = image.shape[:2]
        if self.top >= 0 and self.left >= 0 and self.top + self.height <= rows and self.left + self.width <= cols:
            return image[self.top:self.top + self.height, self.left:self.left + self.width]
        if self.top >= rows or self.left >= cols or self.top + self.height <= 0 or self.left + self.width <= 0:
            raise ValueError(f"{self} lies wholly outside a {rows}x{cols} slide")
        return image[np.ix_(_mirrored(self.top, self.height, rows), _mirrored(self.left, self.width, cols))]


def _mirrored(start: int, length: int, size: int) -> np.ndarray:
    """Indices start .. start + length - 1 folded back into [0, size) by reflection at the edges."""
    if size == 1:
        return np.zeros(length, dtype=np.intp)
    period = 2 * (size - 1)
    folded = np.abs(np.arange(start, start + length)) % period
    return np.where(folded >= size, period - folded, folded)


@dataclass(frozen=True)
class TilePlan:
    """The tiles a slide is scored by, the rule that chose them (one of TILING_RULES), and how they
    were chosen in words a technician can check (a field scored by the grid because no white cell
    was found is likely unstained or out of focus)."""

    tiles: list[Tile]
    how: str
    rule: str

    def __post_init__(self) -> None:
        if self.rule not in TILING_RULES:
            raise ValueError(f"unknown tiling rule {self.rule!r}; expected one of {TILING_RULES}")
        if not self.tiles:
            raise ValueError("a tile plan needs at least one tile")

    @property
    def found_by(self) -> str:
        """How each of its tiles was found: "whole image", "white cell" or "grid"."""
        return FOUND_BY[self.rule]


@dataclass(frozen=True)
class TilingRule:
    """When and how an image is cut into tiles; see the module docstring."""

    crop_size: int = DEFAULT_CROP_SIZE
    field_scale: float = 1.0
    overlap: float = 0.5

    def __post_init__(self) -> None:
        if self.crop_size < 1:
            raise ValueError(f"crop_size must be positive, got {self.crop_size}")
        if self.field_scale <= 0:
            raise ValueError(f"field_scale must be positive, got {self.field_scale}")
        if not 0.0 <= self.overlap < 1.0:
            raise ValueError(f"overlap must lie in [0, 1), got {self.overlap}")

    @property
    def tile_above(self) -> int:
        """Images with a longer side above this many pixels are tiled."""
        return math.ceil(TILE_ABOVE_FACTOR * self.crop_size)

    @property
    def tile_size(self) -> int:
        return max(1, round(self.crop_size * self.field_scale))

    @property
    def stride(self) -> int:
        return max(1, round(self.tile_size * (1.0 - self.overlap)))

    def is_tiled(self, height: int, width: int) -> bool:
        return max(height, width) > self.tile_above

    def plan(self, image: np.ndarray) -> TilePlan:
        """The whole image as one tile (a crop); for a field, a tile centred on each white cell,
        or the grid when no white cell is found or more than the grid has tiles."""
        height, width = image.shape[:2]
        if not self.is_tiled(height, width):
            return TilePlan([Tile(0, 0, height, width)], "whole image", WHOLE_IMAGE)
        centres = white_cell_centres(image, self.tile_size)
        grid = self.grid(height, width)
        if not centres:
            return TilePlan(grid, f"grid of {len(grid)} tiles: no white cell found", GRID)
        if len(centres) > len(grid):
            return TilePlan(grid, f"grid of {len(grid)} tiles: more white cells ({len(centres)}) than grid tiles", GRID)
        tiles = [centred_tile(row, col, self.tile_size, height, width) for row, col in centres]
        return TilePlan(tiles, f"{len(tiles)} tile{'s' if len(tiles) > 1 else ''}, one per white cell", WHITE_CELLS)

    def grid(self, height: int, width: int) -> list[Tile]:
        """The whole image as one tile (a crop), or the overlapping grid of a field."""
        if not self.is_tiled(height, width):
            return [Tile(0, 0, height, width)]
        return tile_grid(height, width, self.tile_size, self.stride)


def centred_tile(row: float, col: float, size: int, height: int, width: int) -> Tile:
    """A `size` tile centred on (row, col), reaching beyond the image where the point lies near
    its edge; along a side shorter than `size`, the whole side."""
    top, tile_height = (round(row - size / 2), size) if size <= height else (0, height)
    left, tile_width = (round(col - size / 2), size) if size <= width else (0, width)
    return Tile(top, left, tile_height, tile_width)


def tile_grid(height: int, width: int, tile_size: int, stride: int) -> list[Tile]:
    """Tiles of `tile_size` (or the whole side, if shorter) every `stride` pixels, row by row;
    the last row and column are moved flush with the edge so the grid covers every pixel."""
    if height < 1 or width < 1:
        raise ValueError(f"image must have pixels, got {height}x{width}")
    if tile_size < 1 or stride < 1:
        raise ValueError(f"tile_size and stride must be positive, got {tile_size} and {stride}")
    tile_height, tile_width = min(tile_size, height), min(tile_size, width)
    return [
        Tile(top, left, tile_height, tile_width)
        for top in _starts(height, tile_height, stride)
        for left in _starts(width, tile_width, stride)
    ]


def _starts(length: int, tile: int, stride: int) -> list[int]:
    count = math.ceil((length - tile) / stride) + 1
    return sorted({min(i * stride, length - tile) for i in range(count)})


def seen_window(length: int, image_size: int, resize_size: int | None = None) -> tuple[float, float]:
    """The part [start, end) of a tile side of `length` pixels that the model sees: the eval
    transform resizes the side to `resize_size` and keeps the centre `image_size` (MONAI's
    CenterSpatialCrop starts at resize_size // 2 - image_size // 2)."""
    resize_size = default_resize_size(image_size) if resize_size is None else resize_size
    start = resize_size // 2 - image_size // 2
    scale = length / resize_size
    return start * scale, (start + image_size) * scale


def stitch_heat(
    heats: Sequence[np.ndarray],
    tiles: Sequence[Tile],
    shape: tuple[int, int],
    resize_size: int | None = None,
    out_shape: tuple[int, int] | None = None,
) -> np.ndarray:
    """One heat map of a slide of `shape` (rows, columns) from the model-resolution heat map of
    each tile: each is sampled bilinearly back onto the part of its tile the model saw; where
    tiles overlap the larger heat wins; pixels no tile saw stay 0. The map has the slide's shape,
    or `out_shape` (see `heat_shape`): a coarser grid over the same slide, sampled at its pixels'
    centres, so that a large field's heat never takes 4 bytes for each of its pixels."""
    if len(heats) != len(tiles):
        raise ValueError(f"{len(heats)} heat maps for {len(tiles)} tiles")
    stitched = np.zeros(shape if out_shape is None else out_shape, dtype=np.float32)
    for heat, tile in zip(heats, tiles):
        paint_heat(stitched, heat, tile, shape, resize_size)
    return stitched


def heat_shape(shape: tuple[int, int], max_side: int) -> tuple[int, int]:
    """The shape of a slide's heat map with its longer side at most `max_side` (the slide's own
    shape when it is no larger)."""
    if max_side < 1:
        raise ValueError(f"max_side must be positive, got {max_side}")
    rows, cols = shape
    scale = min(1.0, max_side / max(rows, cols))
    return max(1, round(rows * scale)), max(1, round(cols * scale))


def paint_heat(stitched: np.ndarray, heat: np.ndarray, tile: Tile, shape: tuple[int, int],
               resize_size: int | None = None) -> None:
    """Put one tile's model-resolution heat on `stitched` (a map over a slide of `shape`, at the
    slide's resolution or coarser), keeping the larger heat where it is already lit."""
    heat = np.asarray(heat, dtype=np.float32)
    if heat.ndim != 2 or heat.shape[0] != heat.shape[1]:
        raise ValueError(f"expected a square model-resolution heat map, got shape {heat.shape}")
    top, rows = _heat_coordinates(tile.top, tile.height, stitched.shape[0], shape[0], heat.shape[0], resize_size)
    left, cols = _heat_coordinates(tile.left, tile.width, stitched.shape[1], shape[1], heat.shape[1], resize_size)
    if not len(rows) or not len(cols):
        return
    values = _bilinear(heat, rows, cols)
    region = stitched[top:top + values.shape[0], left:left + values.shape[1]]
    np.maximum(region, values, out=region)


def _heat_coordinates(offset: int, length: int, map_length: int, slide_length: int, image_size: int,
                      resize_size: int | None) -> tuple[int, np.ndarray]:
    """Along one side of a tile at `offset` with `length` slide pixels, on a map of `map_length`
    pixels over the slide's `slide_length`: the first map pixel the model saw, and the positions in
    the heat map of that pixel and the following ones it saw (none beyond the slide)."""
    scale = map_length / slide_length
    start, end = seen_window(length, image_size, resize_size)
    first = max(0, math.floor(offset * scale))
    candidates = np.arange(first, min(map_length, math.ceil((offset + length) * scale) + 1))
    centres = (candidates + 0.5) / scale - offset  # in the tile's pixels
    seen = candidates[(centres >= start) & (centres < end)]
    if not len(seen):
        return 0, seen.astype(np.float64)
    centres = (seen + 0.5) / scale - offset
    position = (centres - start) * image_size / (end - start) - 0.5
    return int(seen[0]), np.clip(position, 0.0, image_size - 1)


def _bilinear(heat: np.ndarray, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """`heat` sampled at (rows x cols) fractional positions: along the columns first, at the
    heat's own rows, then along the rows (the same products and sums per pixel as gathering the
    four neighbours of each, for a tenth of the gathering)."""
    r0 = np.floor(rows).astype(int)
    c0 = np.floor(cols).astype(int)
    r1 = np.minimum(r0 + 1, heat.shape[0] - 1)
    c1 = np.minimum(c0 + 1, heat.shape[1] - 1)
    fr = (rows - r0)[:, None].astype(np.float32)
    fc = (cols - c0)[None, :].astype(np.float32)
    across = heat[:, c0] * (1 - fc) + heat[:, c1] * fc
    return across[r0] * (1 - fr) + across[r1] * fr


def slide_tile_index(scores: Sequence[float]) -> int:
    """The tile that gives the slide its score: the one with the maximum score."""
    if not scores:
        raise ValueError("a slide needs at least one tile score")
    return int(np.argmax(np.asarray(scores, dtype=np.float64)))
