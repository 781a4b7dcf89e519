"""`ganad score`: score image files with a bundle; bad files are reported and skipped."""

from __future__ import annotations

import argparse
import json
import sys
import warnings
from pathlib import Path

import numpy as np
from PIL import Image

from ganad_clinic.cli.common import add_device_threads, apply_threads
from ganad_clinic.imaging.io import ImageReadError, MultiPageWarning, read_image, read_image_info
from ganad_clinic.model.bundle import BundleError, load_bundle
from ganad_clinic.model.inference import NonFiniteScoreError, Scorer
from ganad_clinic.screening.heatmaps import write_heatmap
from ganad_clinic.screening.service import score_warning


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("score", help="score image files with a model bundle",
                                   description="Print one line (or JSON object) per file: score, the three "
                                               "terms and the flag. Exit status 1 if any file failed.")
    parser.add_argument("--bundle", required=True)
    parser.add_argument("files", nargs="+", metavar="FILE")
    parser.add_argument("--json", action="store_true", help="one JSON object per line")
    parser.add_argument("--heatmap-dir", type=Path, help="write FILE-stem_heatmap.png overlays here")
    add_device_threads(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    apply_threads(args)
    try:
        bundle = load_bundle(args.bundle, device=args.device)
    except BundleError as error:
        print(f"ganad score: {error}", file=sys.stderr)
        return 2
    scorer = Scorer(bundle)
    failed = 0
    for name in args.files:
        try:
            warning = score_warning(read_image_info(name), bundle.channels)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", MultiPageWarning)  # said in `warning`
                result = scorer.score_images([read_image(name)])[0]
        except (ImageReadError, NonFiniteScoreError) as error:
            failed += 1
            reason = error.reason if isinstance(error, ImageReadError) else str(error)
            print(json.dumps({"file": name, "error": reason}) if args.json else f"{name}\tERROR\t{reason}")
            continue
        heatmap = None
        if args.heatmap_dir:
            heatmap = args.heatmap_dir / f"{Path(name).stem}_heatmap.png"
            display = np.asarray(Image.fromarray((result.model_input * 255).round().astype(np.uint8)).resize((256, 256)))
            write_heatmap(heatmap, display, result.heat)
        row = {"file": name, "score": result.score, "l_d": result.l_d, "l_r": result.l_r, "l_l": result.l_l,
               "flagged": result.flagged, "threshold": bundle.threshold.value,
               "heatmap": str(heatmap) if heatmap else None, "warning": warning}
        if args.json:
            print(json.dumps(row))
        else:
            flag = "FLAGGED" if result.flagged else "normal"
            caution = f"\tWARNING: {warning}" if warning else ""
            print(f"{name}\t{result.score:.4f}\t{flag}\tL_D {result.l_d:.4g}  L_R {result.l_r:.4g}  L_L {result.l_l:.4g}"
                  f"{caution}")
    return 1 if failed else 0
