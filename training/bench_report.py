"""Time a 1,000-slide screening report and measure its peak memory.

Builds a results database in a temporary home through the Store API: N slides, a fraction of them
flagged with a real slide image and heat-map overlay on disk (a few of them full field images),
reviews with long notes, rejected files with long reasons, maximal-length names with markup and
Unicode. Then builds the report (PDF + CSV) in a fresh child process, so that process's peak
resident memory (getrusage) is the report's alone, not the data generation's.

    python training/bench_report.py [--slides 1000] [--flagged 0.1] [--keep DIR]
"""

from __future__ import annotations

import argparse
import hashlib
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

from ganad_clinic.imaging.overlay import overlay
from ganad_clinic.imaging.synthetic import crop_rng, field_rng, generate_cell, generate_field
from ganad_clinic.report import build_report
from ganad_clinic.store import ModelVersion, Store, open_store

THRESHOLD = 0.7
FIELD_EVERY = 20  # every 20th flagged slide is a full field image, not a crop
LONG_TEXT = "Nucleoli visible, chromatin fine; <compare> with slide & \"reference\" é ü ß Ω 漢 – " * 40


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--slides", type=int, default=1000)
    parser.add_argument("--flagged", type=float, default=0.1, help="fraction of slides flagged")
    parser.add_argument("--keep", type=Path, help="build in this folder and keep it (default: a temporary one)")
    parser.add_argument("--build-only", type=Path, metavar="DIR", help=argparse.SUPPRESS)  # the child process
    args = parser.parse_args()
    if args.build_only:
        return build(args.build_only)
    with tempfile.TemporaryDirectory() as temporary:
        root = args.keep or Path(temporary)
        root.mkdir(parents=True, exist_ok=True)
        started = time.perf_counter()
        with open_store(database_url(root)) as store:
            flagged = fill(store, root, args.slides, args.flagged)
        print(f"database: {args.slides} slides, {flagged} flagged, built in {time.perf_counter() - started:.1f} s")
        subprocess.run([sys.executable, __file__, "--build-only", str(root)], check=True)
        print(f"peak resident memory of the report process: {peak_rss_mib(resource.RUSAGE_CHILDREN):.0f} MiB")
        if args.keep:
            print(f"kept in {root}")
    return 0


def build(root: Path) -> int:
    """Build the report of the database in `root` and print its time and size."""
    with open_store(database_url(root)) as store:
        started = time.perf_counter()
        summary = build_report(store, root / "report.pdf", lab="Benchmark lab", operator="bench",
                               csv_path=root / "report.csv")
        seconds = time.perf_counter() - started
    size_mib = summary.pdf_path.stat().st_size / 2**20
    print(f"report: {summary.pages} pages, {size_mib:.1f} MiB, {summary.counts.slides} slides, "
          f"built in {seconds:.1f} s (PDF and CSV)")
    return 0


def database_url(root: Path) -> str:
    return f"sqlite:///{root / 'bench.db'}"


def fill(store: Store, root: Path, count: int, flagged_fraction: float) -> int:
    """Write `count` slides; return how many are flagged."""
    model = register_model(store, root)
    inbox, heatmaps = root / "inbox", root / "heatmaps"
    inbox.mkdir(exist_ok=True)
    heatmaps.mkdir(exist_ok=True)
    rng = np.random.default_rng(0)
    flag_every = max(1, round(1 / flagged_fraction)) if flagged_fraction > 0 else count + 1
    flagged = 0
    for index in range(count):
        name = f"Im{index:04d}_{int(index % flag_every == 0)}.tif"
        if index % 97 == 5:
            # under the 255-byte file-name limit
            name = f"{'Très_long <nom> & fichier 漢字 ' * 9}"[:150] + f"{index}.tif"
        path = inbox / name
        sha256 = hashlib.sha256(name.encode()).hexdigest()
        slide = store.record_slide(path, sha256, 1000, inbox).slide
        if index % 53 == 7:
            store.mark_rejected(slide.id, f"the file is truncated or corrupt ({LONG_TEXT[:1500]})")
            continue
        is_flagged = index % flag_every == 0
        heatmap = None
        if is_flagged:
            heatmap = write_images(path, heatmaps / f"heat-{slide.id}.png", flagged)
            flagged += 1
        score = float(rng.uniform(0.72, 1.4) if is_flagged else rng.uniform(0.1, 0.69))
        store.add_score(slide.id, model.id, score=score, l_d=score * 0.5, l_r=score * 0.3, l_l=score * 0.2,
                        threshold=THRESHOLD, flagged=is_flagged, duration_seconds=0.2, heatmap_path=heatmap)
        if is_flagged and flagged % 3:
            decision = "anomaly_confirmed" if flagged % 3 == 1 else "normal"
            store.add_review(slide.id, "Dr. Bench", decision, LONG_TEXT if flagged % 7 == 1 else "checked")
    return flagged


def write_images(slide_path: Path, heatmap_path: Path, number: int) -> Path:
    """A slide image (a crop, or every FIELD_EVERY-th a whole field) and its heat-map overlay."""
    if number % FIELD_EVERY == 0:
        image, _ = generate_field(field_rng(0, number))
    else:
        image = generate_cell(crop_rng(0, True, number), blast=True)
    Image.fromarray(image).save(slide_path)
    height, width = image.shape[:2]
    yy, xx = np.mgrid[0:height, 0:width]
    heat = np.exp(-((yy - height / 2) ** 2 + (xx - width / 2) ** 2) / (2 * (min(height, width) / 6) ** 2))
    Image.fromarray(overlay(image, heat)).save(heatmap_path)
    return heatmap_path


def register_model(store: Store, root: Path) -> ModelVersion:
    bundle = root / "bundle" / "configs"
    bundle.mkdir(parents=True, exist_ok=True)
    (bundle / "metadata.json").write_text(
        '{"version": "1.0.0", "ganad": {"bundle_format": 1, '
        '"threshold": {"value": 0.7, "rule": "95th percentile of 20 validation-normal scores"}, '
        '"score": {"lambda": 0.8, "beta": 1.0, "mode": "normalised"}}}', encoding="utf-8")
    return store.register_model_version("1.0.0", bundle.parent, "0" * 64, actor="bench")


def peak_rss_mib(who: int) -> float:
    peak = resource.getrusage(who).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 2**10  # bytes on macOS, KiB elsewhere


if __name__ == "__main__":
    sys.exit(main())
