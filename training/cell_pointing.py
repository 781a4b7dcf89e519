"""Do a slide's cells say where the anomaly is? Two figures on synthetic data of a fresh seed.

    python training/cell_pointing.py --bundle demo-work/bundle [--fields 60] [--crops 40] [--seed 4049]

1. Pointing, on fields: `ganad synth`'s fields (written by `write_dataset`, every other one may hold
   blasts) with their ALL-IDB1-style `.xyc` truth read back from disk; each field is scored as the
   screening service scores it (model.inference.Inferencer at the synthetic fields' pixel scale).
   On each field holding a blast: is its highest-scoring cell (the one that gives the slide its
   score) a blast, i.e. does that cell's box hold a blast centre of the `.xyc` file?
2. Heat on the cell, on blast crops (imaging.synthetic.draw_cell knows where it drew the white
   cell): of the heat above what normal cells show (heat > 0, ScoreBatch.heat), the share of its
   total (heat-weighted) and of its pixels that lies within the white cell's outline (a disk of
   the drawn radius, 10 % wider for its ragged edge), against the share of the crop that disk
   covers (what heat spread at random would give); and, for contrast, the share of a normal
   crop's pixels that carry heat.

Prints one JSON object; `--out` also writes it to a file.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np

from ganad_clinic.cli.common import configure_torch
from ganad_clinic.imaging.io import read_pixels
from ganad_clinic.imaging.synthetic import FIELD_SCALE, crop_rng, draw_cell, read_xyc, write_dataset, xyc_path
from ganad_clinic.imaging.tiling import Tile
from ganad_clinic.model.bundle import load_bundle
from ganad_clinic.model.inference import Inferencer

OUTLINE_SLACK = 1.1


def holds(tile: Tile, x: int, y: int) -> bool:
    return tile.left <= x < tile.left + tile.width and tile.top <= y < tile.top + tile.height


def pointing(inferencer: Inferencer, fields: int, seed: int) -> dict:
    with tempfile.TemporaryDirectory() as folder:
        written = write_dataset(folder, n_normal=0, n_blast=0, seed=seed, n_fields=fields)
        rows = []
        for path in written.field_paths:
            blasts = read_xyc(xyc_path(path))
            result = inferencer.score([read_pixels(path)])[0]
            rows.append({
                "file": path.name, "blasts": len(blasts), "cells": len(result.cells), "flagged": result.flagged,
                "top_is_blast": any(holds(result.top.tile, x, y) for x, y in blasts),
                "blasts_in_a_cell": sum(any(holds(cell.tile, x, y) for cell in result.cells) for x, y in blasts),
            })
    with_blast = [row for row in rows if row["blasts"]]
    normal = [row for row in rows if not row["blasts"]]
    return {
        "fields": len(rows), "fields_with_a_blast": len(with_blast),
        "top_cell_is_a_blast": sum(row["top_is_blast"] for row in with_blast),
        "pointing_fraction": sum(row["top_is_blast"] for row in with_blast) / max(1, len(with_blast)),
        "blasts_drawn": sum(row["blasts"] for row in with_blast),
        "blasts_inside_a_cell_box": sum(row["blasts_in_a_cell"] for row in with_blast),
        "blast_fields_flagged": sum(row["flagged"] for row in with_blast),
        "normal_fields_flagged": sum(row["flagged"] for row in normal), "normal_fields": len(normal),
        "misses": [row["file"] for row in with_blast if not row["top_is_blast"]],
    }


def heat_on_cell(inferencer: Inferencer, crops: int, seed: int) -> dict:
    mass_inside, pixels_inside, covers, lit = [], [], [], []
    for index in range(crops):
        image, cell = draw_cell(crop_rng(seed, True, index), True)
        heat = inferencer.score([image])[0].heat
        rows, cols = np.mgrid[0:heat.shape[0], 0:heat.shape[1]]
        inside = np.hypot(rows - cell.row, cols - cell.col) <= cell.radius * OUTLINE_SLACK
        covers.append(float(inside.mean()))
        hot = heat > 0
        lit.append(float(hot.mean()))
        if hot.any():
            mass_inside.append(float(heat[inside].sum() / heat.sum()))
            pixels_inside.append(float((hot & inside).sum() / hot.sum()))
    normal_lit = [float((inferencer.score([draw_cell(crop_rng(seed, False, index), False)[0]])[0].heat > 0).mean())
                  for index in range(crops)]
    return {
        "blast_crops": crops, "crops_with_heat": len(mass_inside),
        "heat_share_on_cell_mean": float(np.mean(mass_inside)) if mass_inside else None,
        "heat_share_on_cell_median": float(np.median(mass_inside)) if mass_inside else None,
        "hot_pixel_share_on_cell_mean": float(np.mean(pixels_inside)) if pixels_inside else None,
        "cell_share_of_crop_mean": float(np.mean(covers)),
        "hot_pixel_share_of_crop_mean": float(np.mean(lit)),
        "normal_crops_hot_pixel_share_of_crop_mean": float(np.mean(normal_lit)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bundle", required=True)
    parser.add_argument("--fields", type=int, default=60, help="fields drawn (about half hold blasts)")
    parser.add_argument("--crops", type=int, default=40, help="blast crops for the heat figure")
    parser.add_argument("--seed", type=int, default=4049, help="a data seed no choice was made on")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, help="also write the JSON here")
    args = parser.parse_args()
    configure_torch(args.threads)
    inferencer = Inferencer(load_bundle(args.bundle), FIELD_SCALE)
    started = time.perf_counter()
    result = {"bundle": args.bundle, "seed": args.seed, "threshold": inferencer.threshold,
              "field_scale": FIELD_SCALE, "pointing": pointing(inferencer, args.fields, args.seed),
              "heat": heat_on_cell(inferencer, args.crops, args.seed)}
    result["seconds"] = round(time.perf_counter() - started, 1)
    text = json.dumps(result, indent=2)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
