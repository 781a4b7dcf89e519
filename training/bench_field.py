"""Benchmark of ALL-IDB1-size fields (2592x1944): from a field's last write to its committed score,
through `ganad watch` as a lab runs it, and the split of one field's work between its steps.

    .venv/bin/python -m training.bench_field [--fields 20] [--threads 2] [--json]

The fields are synthetic smears with six white cells each, drawn at half ALL-IDB1 resolution and
doubled (bilinear) to 2592x1944, saved as JPEG (quality 90) as ALL-IDB1's fields are. The model is
the default architecture at 64 px, trained for one step (its weights do not matter for speed), and
records 257-px training crops, so a field is tiled as an ALL-IDB1 field is: a 257-px tile on each
white cell found. A field's latency includes the quiet period (a file is taken only once it has
stayed unchanged that long); its heat map is written after the commit, so it is timed apart.
The split is measured in this process on the same files, with the calls the service makes: read
(hash, header, pixels), find cells (Inferencer.plan), score (Inferencer.score), commit (record the
slide, add its score and cells), heat map (write_heatmap).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from io import BytesIO
from pathlib import Path

import numpy as np
from PIL import Image

from ganad_clinic.cli.common import configure_torch
from ganad_clinic.files import file_sha256
from ganad_clinic.imaging.io import read_image_info, read_pixels
from ganad_clinic.imaging.synthetic import draw_field, field_rng
from ganad_clinic.model.bundle import load_bundle
from ganad_clinic.model.inference import Inferencer
from ganad_clinic.screening.heatmaps import heatmap_name, write_heatmap
from ganad_clinic.screening.registry import import_bundle
from ganad_clinic.screening.service import DEFAULT_QUIET_SECONDS
from ganad_clinic.screening.slide_records import cell_rows, judgement, tiling_record
from ganad_clinic.store import NewScore, open_store
from training.bench_large_images import _bundle, _machine
from training.bench_screening import _Watch

FIELD_SIZE = (2592, 1944)  # ALL-IDB1's fields, width x height
STEPS = ("read", "find_cells", "score", "commit", "heatmap")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--fields", type=int, default=20)
    parser.add_argument("--interval", type=float, default=2.0, help="seconds between fields written")
    parser.add_argument("--threads", type=int, default=2, help="torch threads")
    parser.add_argument("--quiet", type=float, default=DEFAULT_QUIET_SECONDS)
    parser.add_argument("--json", action="store_true", help="end with one JSON line of the figures")
    args = parser.parse_args()
    configure_torch(args.threads)

    with tempfile.TemporaryDirectory(prefix="ganad-field-") as folder:
        root = Path(folder)
        print(_machine(args.threads))
        print(f"drawing {args.fields} fields of {FIELD_SIZE[0]}x{FIELD_SIZE[1]}; training a 64-px model for one step")
        payloads = [_field(index) for index in range(args.fields)]
        bundle = _bundle(root / "bundle", "default")
        split = _split(bundle, root, payloads)
        inbox = root / "inbox"
        inbox.mkdir()
        with _Watch(root / "home", inbox, bundle, args.quiet, args.threads) as watch:
            names = [f"field-{index:03d}.jpg" for index in range(args.fields)]
            written, pictured = {}, {}
            for name, data in zip(names, payloads):
                path = inbox / name
                path.write_bytes(data)
                written[name] = path.stat().st_mtime
                watch.wait_for([name])
                watch.wait_for_pictures(len(pictured) + 1, timeout=120, poll=0.01)
                pictured[name] = time.time()
                time.sleep(args.interval)
        committed = np.array([watch.committed[name] - written[name] for name in names])
        painted = np.array([pictured[name] - written[name] for name in names])

    figures = {
        "fields": args.fields, "field_width": FIELD_SIZE[0], "field_height": FIELD_SIZE[1],
        "field_seconds_p50": float(np.percentile(committed, 50)),
        "field_seconds_p95": float(np.percentile(committed, 95)),
        "field_heatmap_seconds_p95": float(np.percentile(painted, 95)),
        "quiet_seconds": args.quiet, "threads": args.threads,
        "cells_per_field": split.pop("cells"),
        "split_seconds": split,
    }
    print(f"fields through `ganad watch` ({args.fields}, one at a time): last write to committed score p50 "
          f"{figures['field_seconds_p50']:.3f} s, p95 {figures['field_seconds_p95']:.3f} s (the quiet period of "
          f"{args.quiet} s included); to its heat map written p95 {figures['field_heatmap_seconds_p95']:.3f} s")
    print(f"one field's steps in this process (medians, {figures['cells_per_field']:.1f} cells a field): "
          + ", ".join(f"{step} {split[step]:.3f} s" for step in STEPS))
    if args.json:
        print(json.dumps(figures))


def _field(index: int) -> bytes:
    """A 2592x1944 JPEG smear with six white cells, each field its own (never a duplicate)."""
    half, _ = draw_field(field_rng(11, index), n_cells=6)
    buffer = BytesIO()
    Image.fromarray(half).resize(FIELD_SIZE, Image.Resampling.BILINEAR).save(buffer, format="JPEG", quality=90)
    return buffer.getvalue()


def _split(bundle_path: Path, root: Path, payloads: list[bytes]) -> dict[str, float]:
    """Median seconds of each step of one field's work, in this process (after a warm-up field of its own)."""
    scorer = Inferencer(load_bundle(bundle_path))
    home = root / "split-home"
    times: dict[str, list[float]] = {step: [] for step in STEPS}
    cells: list[int] = []
    folder = root / "split"
    folder.mkdir()
    with open_store(home=home) as store:
        model = import_bundle(store, bundle_path, home, actor="bench").model
        for index, data in enumerate([_field(len(payloads))] + payloads):
            path = folder / f"field-{index:03d}.jpg"
            path.write_bytes(data)
            started = time.perf_counter()
            sha256 = file_sha256(path)
            info = read_image_info(path)
            image = read_pixels(path)
            read = time.perf_counter()
            plan = scorer.plan(image)
            found = time.perf_counter()
            result = scorer.score([image], [plan])[0]
            scored = time.perf_counter()
            slide = store.record_slide(path, sha256, len(data), path.parent, width=info.width, height=info.height,
                                       accession=f"field-{index:03d}").slide
            heatmap = home / heatmap_name(slide.id, model.id)
            store.add_scores([NewScore(slide.id, model.id, score=result.score, l_d=result.l_d, l_r=result.l_r,
                                       l_l=result.l_l, threshold=result.threshold, flagged=result.flagged,
                                       duration_seconds=scored - started, heatmap_path=heatmap,
                                       tiling=tiling_record(result), cells=cell_rows(result),
                                       judgement=judgement(result))])
            committed = time.perf_counter()
            write_heatmap(heatmap, image, result.heat)
            painted = time.perf_counter()
            if index == 0:
                continue
            cells.append(len(result.cells))
            for step, seconds in zip(STEPS, (read - started, found - read, scored - found, committed - scored,
                                              painted - committed)):
                times[step].append(seconds)
    return {**{step: float(np.median(values)) for step, values in times.items()}, "cells": float(np.mean(cells))}


if __name__ == "__main__":
    main()
