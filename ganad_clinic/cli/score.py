"""`ganad score`: score image files with a bundle, as the screening service does (crops whole,
fields one tile per white cell); bad files are reported and skipped."""

from __future__ import annotations

import argparse
import json
import sys
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ganad_clinic.cli.common import add_device_threads, add_field_scale, apply_threads, rate
from ganad_clinic.errors import GanadError

if TYPE_CHECKING:
    from ganad_clinic.model.inference import SlideResult


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("score", help="score image files with a model bundle",
                                   description="Print one line (or JSON object) per file: score, flag, the "
                                               "three terms of its highest-scoring cell and how the file was "
                                               "tiled. Exit status 1 if any file failed.")
    parser.add_argument("--bundle", required=True)
    parser.add_argument("files", nargs="+", metavar="FILE")
    parser.add_argument("--json", action="store_true",
                        help="one JSON object per line, with its cells (boxes in the file's pixels)")
    parser.add_argument("--cells", action="store_true", help="also print one line per cell under its file")
    parser.add_argument("--heatmap-dir", type=Path, help="write FILE-stem_heatmap.png overlays here")
    parser.add_argument("--target-fpr", type=rate, metavar="RATE",
                        help="judge at this slide false-positive rate (default: the one the bundle was trained for)")
    add_field_scale(parser)
    add_device_threads(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ganad_clinic.imaging.io import ImageReadError, MultiPageWarning, read_image_info, read_pixels
    from ganad_clinic.model.bundle import load_bundle
    from ganad_clinic.model.inference import Inferencer, NonFiniteScoreError, score_warning
    from ganad_clinic.screening.heatmaps import write_heatmap

    apply_threads(args)
    try:
        bundle = load_bundle(args.bundle, device=args.device)
        inferencer = Inferencer(bundle, args.field_scale, target_fpr=args.target_fpr)
    except GanadError as error:
        print(f"ganad score: {error}", file=sys.stderr)
        return 2
    failed = 0
    for name in args.files:
        try:
            warning = score_warning(read_image_info(name), bundle.channels)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", MultiPageWarning)  # said in `warning`
                pixels = read_pixels(name)
            result = inferencer.score([pixels])[0]
        except (ImageReadError, NonFiniteScoreError) as error:
            failed += 1
            reason = error.reason if isinstance(error, ImageReadError) else str(error)
            print(json.dumps({"file": name, "error": reason}) if args.json else f"{name}\tERROR\t{reason}")
            continue
        heatmap = None
        if args.heatmap_dir:
            heatmap = write_heatmap(args.heatmap_dir / f"{Path(name).stem}_heatmap.png", pixels, result.heat)
        if args.json:
            print(json.dumps(_row(name, result, heatmap, warning)))
        else:
            _print_plain(name, result, warning, args.cells)
        shortfall = inferencer.operating_point.shortfall(len(result.cells))
        if shortfall is not None:
            print(f"ganad score: {name}: {shortfall}", file=sys.stderr)
    return 1 if failed else 0


def _row(name: str, result: SlideResult, heatmap: Path | None, warning: str | None) -> dict[str, Any]:
    return {
        "file": name, "score": result.score, "flagged": result.flagged, "threshold": result.threshold,
        "p_value": result.p_value, "target_fpr": result.target_fpr, "kept_fpr": result.decision.kept_rate,
        "calibration_n": result.calibration_n, "l_d": result.l_d, "l_r": result.l_r, "l_l": result.l_l,
        "tiling": {"rule": result.plan.rule, "how": result.tiling, "crop_size": result.rule.crop_size,
                   "field_scale": result.rule.field_scale, "overlap": result.rule.overlap},
        "cells": [
            {"index": cell.index, "x": cell.tile.left, "y": cell.tile.top, "width": cell.tile.width,
             "height": cell.tile.height, "found_by": cell.found_by, "score": cell.score, "l_d": cell.l_d,
             "l_r": cell.l_r, "l_l": cell.l_l, "p_value": cell.p_value, "flagged": cell.flagged}
            for cell in result.cells
        ],
        "heatmap": str(heatmap) if heatmap else None, "warning": warning,
    }


def _print_plain(name: str, result: SlideResult, warning: str | None, cells: bool) -> None:
    flag = "FLAGGED" if result.flagged else "normal"
    caution = f"\tWARNING: {warning}" if warning else ""
    print(f"{name}\t{result.score:.4f}\t{flag}\tp {result.p_value:.4g}\tL_D {result.l_d:.4g}  L_R {result.l_r:.4g}  "
          f"L_L {result.l_l:.4g}\t{result.tiling}{caution}")
    if cells:
        for cell in result.cells:
            tile = cell.tile
            print(f"  cell {cell.index + 1}\t{cell.score:.4f}\t{'FLAGGED' if cell.flagged else 'normal'}\t"
                  f"p {cell.p_value:.4g}\t"
                  f"x {tile.left} y {tile.top} {tile.width}x{tile.height} ({cell.found_by})")
