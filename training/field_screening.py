"""Whole fields through a crop-trained bundle: tiles centred on white cells against the overlapping
grid, on synthetic ALL-IDB1-style fields with and without blasts. Prints one JSON object.

    python training/field_screening.py --bundle demo-work/bundle [--fields 20] [--seed 7] [--threads 2]

Half the fields hold normal white cells only, the other half at least one blast (each cell a blast
with probability 0.5, redrawn until one is). Both tilings score a field as its highest tile and
flag it at the bundle's threshold, as the screening service does. Also reported: how many of the
drawn white cells got a tile centred on them (within 0.4 of the cell's radius), and how many tiles of
the normal fields pass the threshold on their own.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Iterator

import numpy as np
from sklearn.metrics import roc_auc_score

from ganad_clinic.cli.common import configure_torch
from ganad_clinic.imaging.synthetic import FIELD_SCALE, FieldCell, draw_field, field_rng
from ganad_clinic.imaging.tiling import GRID, Tile, TilePlan, centred_tile
from ganad_clinic.model.bundle import load_bundle
from ganad_clinic.model.inference import Inferencer


def drawn_fields(count: int, seed: int) -> Iterator[tuple[np.ndarray, list[FieldCell], int]]:
    """`count` normal fields, then `count` fields with at least one blast: each as drawn (uint8
    pixels), its cells and its label."""
    index = 0
    for blast in (False, True):
        made = 0
        while made < count:
            image, drawn = draw_field(field_rng(seed, index), blast_fraction=0.5 if blast else 0.0)
            index += 1
            if any(cell.blast for cell in drawn) == blast:
                made += 1
                yield image, drawn, int(blast)


def synthetic_fields(count: int, seed: int) -> tuple[list[np.ndarray], list[list[FieldCell]], list[int]]:
    """`drawn_fields` as float images in [0, 1], with their cells and labels."""
    images, cells, labels = [], [], []
    for image, drawn, label in drawn_fields(count, seed):
        images.append(image.astype(np.float32) / 255)
        cells.append(drawn)
        labels.append(label)
    return images, cells, labels


def found(cell: FieldCell, tiles: list[Tile], shape: tuple[int, int]) -> bool:
    """Whether a tile lies where `centred_tile` would put one for the cell, within 0.4 radius."""
    for tile in tiles:
        expected = centred_tile(cell.row, cell.col, tile.height, *shape)
        if np.hypot(tile.top - expected.top, tile.left - expected.left) < 0.4 * cell.radius:
            return True
    return False


def screen(scorer: Inferencer, images: list[np.ndarray], plans: list[TilePlan], labels: list[int]) -> dict:
    """Both tilings through the one slide-level scorer, a field at a time."""
    threshold = scorer.threshold
    started = time.perf_counter()
    tile_scores = [np.array([cell.score for cell in scorer.score([image], [plan])[0].cells])
                   for image, plan in zip(images, plans)]
    seconds = time.perf_counter() - started
    scores = np.array([own.max() for own in tile_scores])
    truth = np.array(labels)
    normal_tiles = np.concatenate([own for own, label in zip(tile_scores, labels) if label == 0])
    return {
        "auc": float(roc_auc_score(truth, scores)),
        "normal_fields_flagged": int((scores[truth == 0] >= threshold).sum()),
        "blast_fields_flagged": int((scores[truth == 1] >= threshold).sum()),
        "median_score_normal": float(np.median(scores[truth == 0])),
        "median_score_blast": float(np.median(scores[truth == 1])),
        "tiles_per_field": float(np.mean([len(plan.tiles) for plan in plans])),
        "normal_field_tiles": len(normal_tiles),
        "normal_field_tiles_flagged": int((normal_tiles >= threshold).sum()),
        "seconds_per_field": seconds / len(images),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bundle", required=True)
    parser.add_argument("--fields", type=int, default=20, help="fields of each kind")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    configure_torch(args.threads)
    scorer = Inferencer(load_bundle(args.bundle), FIELD_SCALE)
    rule = scorer.rule
    images, cells, labels = synthetic_fields(args.fields, args.seed)
    started = time.perf_counter()
    cell_plans = [scorer.plan(image) for image in images]
    finding = (time.perf_counter() - started) / len(images)
    grid_plans = [TilePlan(grid, f"grid of {len(grid)} tiles", GRID)
                  for grid in (rule.grid(*image.shape[:2]) for image in images)]
    drawn = [cell for field in cells for cell in field]
    hits = sum(found(cell, plan.tiles, image.shape[:2]) for image, field, plan in zip(images, cells, cell_plans)
               for cell in field)
    result = {
        "bundle": args.bundle, "threshold": scorer.threshold, "fields_per_kind": args.fields, "seed": args.seed,
        "threads": args.threads, "tile_size": rule.tile_size,
        "white_cells_drawn": len(drawn), "white_cells_given_a_tile": int(hits),
        "seconds_finding_cells_per_field": finding,
        "cells": screen(scorer, images, cell_plans, labels),
        "grid": screen(scorer, images, grid_plans, labels),
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
