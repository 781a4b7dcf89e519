"""Benchmark of the screening service: latency from a file's last write to its committed score,
and the throughput of a burst, with a model of the default architecture at image size 64.

    .venv/bin/python training/bench_screening.py [--files 500] [--threads 2]

The service runs as `ganad watch` in a child process, as a lab runs it, so that its peak memory is
its own; a file counts as committed when watch prints its result (after the commit). The files are
257x257 synthetic ALL-IDB2-like crops (uncompressed TIFF, as a scanner writes them). Latency is
measured on files written one at a time, `--interval` apart (the quiet period included: a file is
taken only after it has stayed unchanged that long); throughput on a burst of `--files` files
written as fast as possible. The model's weights do not matter for speed, so it is trained for one
step only.
"""

from __future__ import annotations

import argparse
import json
import re
import resource
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import replace
from io import BytesIO
from pathlib import Path

import numpy as np
from PIL import Image

from ganad_clinic.cli.common import configure_torch
from ganad_clinic.imaging.synthetic import crop_rng, generate_cell
from ganad_clinic.model.bundle import load_bundle, save_bundle
from ganad_clinic.model.inference import Inferencer
from ganad_clinic.model.trainer import TrainConfig, train
from ganad_clinic.screening.service import DEFAULT_QUIET_SECONDS, MAX_TILES_PER_STEP
from ganad_clinic.store.engine import HEATMAPS_FOLDER


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--files", type=int, default=500, help="burst size")
    parser.add_argument("--latency-files", type=int, default=40)
    parser.add_argument("--interval", type=float, default=0.5, help="seconds between files of the latency run")
    parser.add_argument("--threads", type=int, default=2, help="torch threads of the service")
    parser.add_argument("--quiet", type=float, default=DEFAULT_QUIET_SECONDS)
    parser.add_argument("--image-size", type=int, default=64)
    parser.add_argument("--json", action="store_true", help="end with one JSON line of the figures")
    args = parser.parse_args()
    configure_torch(args.threads)  # process-wide: the entry point sets it, not the service

    with tempfile.TemporaryDirectory(prefix="ganad-bench-") as folder:
        root = Path(folder)
        print(f"drawing {args.files + args.latency_files} crops; training a {args.image_size}-px model for one step")
        payloads = [_tiff(index) for index in range(args.files + args.latency_files)]
        bundle = _bundle(root / "bundle", args.image_size)
        inbox = root / "inbox"
        inbox.mkdir()
        with _Watch(root / "home", inbox, bundle, args.quiet, args.threads) as watch:
            latency_names = [f"single-{index:04d}.tif" for index in range(args.latency_files)]
            written = {}
            for name, data in zip(latency_names, payloads[args.files:]):
                written[name] = _write(inbox / name, data)
                time.sleep(args.interval)
            watch.wait_for(latency_names)
            latencies = np.array([watch.committed[name] - written[name] for name in latency_names])

            burst_names = [f"burst-{index:04d}.tif" for index in range(args.files)]
            started = time.time()
            burst_written = {name: _write(inbox / name, data) for name, data in zip(burst_names, payloads)}
            watch.wait_for(burst_names)
            finished = max(watch.committed[name] for name in burst_names)
            burst_latencies = np.array([watch.committed[name] - burst_written[name] for name in burst_names])
            flagged = len(watch.flagged & set(burst_names))
            watch.wait_for_pictures(len(latency_names) + len(burst_names))
            service_peak_mib = watch.peak_rss() / 2**20
        model_rate = _model_rate(bundle, payloads[:args.files])

    print(f"torch threads of the service: {args.threads}; quiet period {args.quiet} s; model image size "
          f"{args.image_size}")
    print(f"latency, one file at a time ({args.latency_files} files): p50 {np.percentile(latencies, 50):.3f} s, "
          f"p95 {np.percentile(latencies, 95):.3f} s, max {latencies.max():.3f} s")
    print(f"burst of {args.files} files: {args.files / (finished - started):.1f} files/s "
          f"({finished - started:.1f} s from the first write to the last committed score); latency in the burst "
          f"p50 {np.percentile(burst_latencies, 50):.2f} s, p95 {np.percentile(burst_latencies, 95):.2f} s; "
          f"{flagged} flagged (every heat map painted once the scoring pauses, flagged slides' first)")
    burst_rate = args.files / (finished - started)
    print(f"the model alone on the same {args.files} images, decoded, in memory (cells found, tiles scored, the "
          f"service's batches): {model_rate:.1f} images/s; the burst runs at {burst_rate / model_rate:.1%} of it")
    bench_peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak resident memory of the `ganad watch` process (every heat map written): {service_peak_mib:.0f} MiB; "
          f"of this benchmark's own process (the files' bytes, the model-alone run): {bench_peak_mib:.0f} MiB")
    if args.json:
        print(json.dumps({
            "latency_p50_s": float(np.percentile(latencies, 50)), "latency_p95_s": float(np.percentile(latencies, 95)),
            "burst_files": args.files, "burst_files_per_second": burst_rate,
            "model_images_per_second": model_rate, "burst_to_model_ratio": burst_rate / model_rate,
            "burst_latency_p95_s": float(np.percentile(burst_latencies, 95)), "burst_flagged": flagged,
            "watch_peak_rss_mib": service_peak_mib, "bench_peak_rss_mib": bench_peak_mib,
            "quiet_seconds": args.quiet, "threads": args.threads,
        }))


class _Watch:
    """`ganad watch` in a child process, as a lab runs it: the time each file's result is printed
    (after its commit), and the process's own peak memory."""

    def __init__(self, home: Path, inbox: Path, bundle: Path, quiet: float, threads: int) -> None:
        self.command = [sys.executable, "-m", "ganad_clinic", "watch", "--home", str(home), "--inbox", str(inbox),
                        "--bundle", str(bundle), "--quiet", str(quiet), "--threads", str(threads),
                        "--station", "bench"]
        self.heatmaps = home / HEATMAPS_FOLDER
        self.committed: dict[str, float] = {}
        self.flagged: set[str] = set()
        self._lock = threading.Lock()
        self._ready = threading.Event()

    def __enter__(self) -> _Watch:
        self.process = subprocess.Popen(self.command, stdout=subprocess.PIPE, text=True, bufsize=1)
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        if not self._ready.wait(120):
            raise SystemExit("ganad watch did not start within 120 s")
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.process.send_signal(signal.SIGTERM)
        self.process.wait(60)

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            now = time.time()
            if line.startswith("watching "):
                self._ready.set()
            elif line.startswith("scored "):
                path = line.split(None, 1)[1].split("\t", 1)[0]
                with self._lock:
                    self.committed[Path(path).name] = now
                    if "\tFLAGGED" in line:
                        self.flagged.add(Path(path).name)

    def wait_for(self, names: list[str], timeout: float = 600) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                if all(name in self.committed for name in names):
                    return
            if self.process.poll() is not None:
                raise SystemExit(f"ganad watch stopped with exit status {self.process.returncode}")
            time.sleep(0.05)
        raise SystemExit(f"not all files were scored within {timeout} s")

    def wait_for_pictures(self, count: int, timeout: float = 600, poll: float = 0.2) -> None:
        """Until every score's heat map is written (the unflagged ones once the service is idle),
        looking every `poll` seconds."""
        deadline = time.monotonic() + timeout
        while len(list(self.heatmaps.glob("*.png"))) < count:
            if time.monotonic() > deadline:
                raise SystemExit(f"fewer than {count} heat maps were written within {timeout} s")
            time.sleep(poll)

    def peak_rss(self) -> int:
        """VmHWM (the peak resident set) of the watch process, in bytes."""
        match = re.search(r"VmHWM:\s+(\d+) kB", Path(f"/proc/{self.process.pid}/status").read_text())
        return int(match.group(1)) * 1024 if match else 0


def _model_rate(bundle: Path, payloads: list[bytes]) -> float:
    """Images per second of the model's own work on decoded images held in memory, batched as the
    service batches them: what the pipeline around it (reading, hashing, the quiet period, the
    database, the heat maps) is measured against."""
    scorer = Inferencer(load_bundle(bundle))
    images = [np.asarray(Image.open(BytesIO(data)).convert("RGB")) for data in payloads]
    started = time.perf_counter()
    for first in range(0, len(images), MAX_TILES_PER_STEP):
        batch = images[first:first + MAX_TILES_PER_STEP]
        scorer.score(batch, [scorer.plan(image) for image in batch])
    return len(images) / (time.perf_counter() - started)


def _tiff(index: int) -> bytes:
    buffer = BytesIO()
    Image.fromarray(generate_cell(crop_rng(0, index % 2 == 1, index), index % 2 == 1)).save(buffer, format="TIFF")
    return buffer.getvalue()


def _bundle(path: Path, image_size: int) -> Path:
    images = [generate_cell(crop_rng(1, False, index), False).astype(np.float32) / 255 for index in range(8)]
    val = [generate_cell(crop_rng(1, blast, 100 + index), blast).astype(np.float32) / 255
           for index in range(3) for blast in (False, True)]
    result = train(replace(TrainConfig(image_size=image_size), steps=1, batch_size=4), images, val, [0, 1] * 3,
                   val[::2])
    return save_bundle(path, result.model, result.score_config, result.operating_point)


def _write(path: Path, data: bytes) -> float:
    """Write the file and return the wall-clock time of its last write."""
    with open(path, "wb") as handle:
        handle.write(data)
    return path.stat().st_mtime


if __name__ == "__main__":
    main()
