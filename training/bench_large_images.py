"""Peak memory and time of screening large images: each case in a fresh process, as the service runs it.

    .venv/bin/python -m training.bench_large_images [--model tiny|default] [--mode pipeline|service]

Cases: a 10000 x 10000 PNG (a flat background, 120 KB on disk: no white cell, so the whole grid of
tiles is scored), an 8000 x 8000 JPEG (a synthetic smear, many white cells), an ALL-IDB1-size
field (2592 x 1944 PNG), and a 12000 x 10000 PNG over the pixel cap (refused from its header).

`--mode pipeline` runs the service's steps on the file: read_image_info, read_pixels,
Inferencer.plan and score, write_heatmap. `--mode service` drops the file into the inbox of a
ScreeningService and waits for its result, so it measures whatever the service calls.
Peak resident memory is the measuring process's high-water mark (VmHWM); "model loaded" is the resident
memory just before the file is read (Python, torch, the model: the part no image choice changes).

The tiny model (32 px, width 0.125) is for speed; `--model default` trains the default
architecture (64 px, width 0.25) for one step: its weights do not matter for memory or speed.
Both record 257-px training crops, so fields are tiled as ALL-IDB1 fields are.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
from PIL import Image

from ganad_clinic.cli.common import configure_torch
from ganad_clinic.imaging.synthetic import crop_rng, draw_field, field_rng, generate_cell
from training.bench import cpu_flags

CASES = ("png_10000", "jpeg_8000", "allidb1_field", "png_over_cap")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", choices=("tiny", "default"), default="tiny")
    parser.add_argument("--mode", choices=("pipeline", "service"), default="pipeline")
    parser.add_argument("--threads", type=int, default=1, help="torch threads")
    parser.add_argument("--cases", nargs="+", choices=CASES, default=list(CASES))
    parser.add_argument("--child", nargs=2, metavar=("BUNDLE", "FILE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _child(Path(args.child[0]), Path(args.child[1]), args.mode, args.threads)
        return
    with tempfile.TemporaryDirectory(prefix="ganad-large-") as folder:
        root = Path(folder)
        bundle = _bundle(root / "bundle", args.model)
        print(_machine(args.threads))
        print(f"model: {args.model}; mode: {args.mode}; load average at start: {os.getloadavg()[0]:.2f}")
        print(f"{'case':<15} {'pixels':>12} {'on disk':>9} {'outcome':<48} {'model loaded':>12} {'peak RSS':>9} "
              f"{'seconds':>8}")
        for case in args.cases:
            path = _image(root, case)
            figures = _run_child(bundle, path, args)
            print(f"{case:<15} {figures['pixels']:>12,} {path.stat().st_size / 1e6:>7.2f}MB "
                  f"{figures['outcome'][:48]:<48} {figures['baseline_mib']:>9.0f}MiB {figures['peak_mib']:>6.0f}MiB "
                  f"{figures['seconds']:>8.1f}")
        print(f"load average at the end: {os.getloadavg()[0]:.2f}")


def _machine(threads: int) -> str:
    import torch

    flags = cpu_flags()
    present = " ".join(flag for flag, found in flags.items() if found) or f"none of {', '.join(flags)}"
    return (f"CPU: {os.cpu_count()} cores, {present}; torch {torch.__version__}, threads {threads} "
            f"(default would be {torch.get_num_threads()})")


def _run_child(bundle: Path, path: Path, args: argparse.Namespace) -> dict:
    command = [sys.executable, "-m", "training.bench_large_images", "--mode", args.mode, "--threads",
               str(args.threads), "--child", str(bundle), str(path)]
    done = subprocess.run(command, capture_output=True, text=True, check=False, cwd=Path(__file__).parent.parent)
    if done.returncode != 0:
        raise SystemExit(f"{path.name}: the measuring process failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def _child(bundle_path: Path, path: Path, mode: str, threads: int) -> None:

    from ganad_clinic.imaging.io import ImageReadError
    from ganad_clinic.model.bundle import load_bundle

    configure_torch(threads)
    bundle = load_bundle(bundle_path, device="cpu")
    with Image.open(path) as image:
        pixels = image.width * image.height
    baseline = _status_mib("VmRSS")
    started = time.monotonic()
    try:
        outcome = _pipeline(bundle, path) if mode == "pipeline" else _service(bundle_path, path, threads)
    except ImageReadError as error:
        outcome = f"refused: {error.reason}"
    seconds = time.monotonic() - started
    peak = _status_mib("VmHWM")
    print(json.dumps({"pixels": pixels, "outcome": outcome, "baseline_mib": baseline, "peak_mib": peak,
                      "seconds": seconds}))


def _pipeline(bundle, path: Path) -> str:
    """The service's steps on one file, with the calls it is to make."""
    from ganad_clinic.imaging.io import read_image_info, read_pixels
    from ganad_clinic.model.inference import Inferencer
    from ganad_clinic.screening.heatmaps import write_heatmap

    read_image_info(path)
    image = read_pixels(path)
    scorer = Inferencer(bundle)
    plan = scorer.plan(image)
    result = scorer.score([image], [plan])[0]
    write_heatmap(path.with_name(f"{path.stem}-heat.png"), image, result.heat)
    return f"scored {result.score:.3g} ({plan.how})"


def _service(bundle_path: Path, path: Path, threads: int) -> str:
    """The file through a real ScreeningService: whatever it reads and scores with."""
    from ganad_clinic.screening import ScreeningService, ServiceConfig, SlideRejected, SlideScored
    from ganad_clinic.screening.registry import import_bundle
    from ganad_clinic.store import open_store

    work = Path(tempfile.mkdtemp(prefix="service-", dir=path.parent))
    home, inbox = work / "home", work / "inbox"
    inbox.mkdir()
    outcomes: list[str] = []

    def scored(event: SlideScored) -> None:
        outcomes.append(f"scored {event.score:.3g}")

    def rejected(event: SlideRejected) -> None:
        outcomes.append(f"refused: {event.reason}")

    with open_store(home=home) as store:
        import_bundle(store, bundle_path, home, actor="bench")
        config = ServiceConfig((inbox,), home=home, quiet_seconds=0.2, torch_threads=threads, device="cpu")
        service = ScreeningService(store, config, on_scored=scored, on_rejected=rejected)
        service.start()
        try:
            os.link(path, inbox / path.name)
            deadline = time.monotonic() + 3600
            while not outcomes and time.monotonic() < deadline:
                time.sleep(0.1)
        finally:
            service.stop()
    return outcomes[0] if outcomes else "no result within an hour"


def _status_mib(field: str) -> float:
    """VmRSS (resident now) or VmHWM (its high-water mark) of this process. Unlike getrusage's
    ru_maxrss, VmHWM starts afresh at exec, so it excludes the parent that forked us."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(f"{field}:"):
                return int(line.split()[1]) / 1024
    raise OSError(f"no {field} in /proc/self/status")


def _image(root: Path, case: str) -> Path:
    if case == "png_10000":
        path = root / "flat-10000.png"
        Image.new("RGB", (10000, 10000), (236, 224, 226)).save(path)
    elif case == "png_over_cap":
        path = root / "flat-12000x10000.png"
        Image.new("RGB", (12000, 10000), (236, 224, 226)).save(path)
    elif case == "jpeg_8000":
        path = root / "smear-8000.jpg"
        Image.fromarray(_smear(8000, 8000)).save(path, quality=90)
    else:
        path = root / "allidb1-field.png"
        Image.fromarray(_smear(1944, 2592)).save(path)
    return path


def _smear(height: int, width: int) -> np.ndarray:
    """Synthetic fields at ALL-IDB1 scale (drawn at half scale, doubled), mirrored to fill the size."""
    field, _ = draw_field(field_rng(7, 0))
    field = np.asarray(Image.fromarray(field).resize((field.shape[1] * 2, field.shape[0] * 2), Image.BILINEAR))
    rows = -(-height // field.shape[0])
    cols = -(-width // field.shape[1])
    row_band = np.concatenate([field if i % 2 == 0 else field[::-1] for i in range(rows)], axis=0)
    return np.ascontiguousarray(np.concatenate([row_band if j % 2 == 0 else row_band[:, ::-1]
                                                for j in range(cols)], axis=1)[:height, :width])


def _bundle(path: Path, model: str) -> Path:
    from ganad_clinic.model.bundle import save_bundle
    from ganad_clinic.model.trainer import TrainConfig, train

    images = [generate_cell(crop_rng(1, False, index), False).astype(np.float32) / 255 for index in range(8)]
    val = [generate_cell(crop_rng(1, blast, 100 + index), blast).astype(np.float32) / 255
           for index in range(3) for blast in (False, True)]
    config = TrainConfig() if model == "default" else TrainConfig(image_size=32, width=0.125, latent=16)
    result = train(replace(config, steps=1, batch_size=4, eval_every=1), images, val, [0, 1] * 3, val[::2])
    return save_bundle(path, result.model, result.score_config, result.operating_point, training={"crop_size": 257})


if __name__ == "__main__":
    main()
