"""The demo a fresh machine runs headless (`ganad demo`, `make demo`): the whole product on
synthetic slides, from training to a screening report.

1. draw an ALL-IDB2-like set (130 normal + 130 blast crops) and two ALL-IDB1-like fields;
2. split it as the paper does (train 100 normal; validate 5 normal + 15 blast; test the other 140);
3. train a model (TrainConfig defaults; --quick: a small step budget), register and activate it;
4. start the screening service on an inbox and deliver the test slides one by one as a scanner
   would: in chunks, some under a temporary name renamed when complete;
5. wait until every slide has its result, print the table and the AUC, and write `demo-results.csv`
   (each slide with its truth); the command then exports the PDF screening report of the run.

The demo's inbox is emptied at the start; its results database (in `<workdir>/home` unless told
otherwise) keeps every earlier run's results, and re-delivered slides are re-scored with the new
model (`rescore`), since scores are append-only.
"""

from __future__ import annotations

import csv
import os
import secrets
import shutil
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TextIO

import numpy as np
from tqdm import tqdm

from ganad_clinic.files import atomic_output
from ganad_clinic.imaging.datasets import ANOMALOUS, Sample, load_dataset, paper_split
from ganad_clinic.imaging.io import read_image
from ganad_clinic.imaging.synthetic import CROP_SIZE, FIELD_SCALE, write_dataset
from ganad_clinic.model.bundle import read_metadata, save_bundle, trained_on
from ganad_clinic.model.conformal import calibration_count, split_calibration
from ganad_clinic.model.inference import CROP_SIZE_KEY
from ganad_clinic.model.scoring import screening_metrics
from ganad_clinic.model.trainer import TrainConfig, TrainProgress, train
from ganad_clinic.screening.events import SlideRejected, SlideScored
from ganad_clinic.screening.registry import current_actor, import_bundle
from ganad_clinic.screening.service import ScreeningService, ServiceConfig, default_torch_threads
from ganad_clinic.screening.users import add_user
from ganad_clinic.store import UserRole, open_store

QUICK_STEPS = 10
"""Step budget of `--quick`: enough for a model that separates the synthetic classes a little, so
the whole demo takes about a minute on two cores."""
N_NORMAL = N_BLAST = 130
N_FIELDS = 2
CHUNK_BYTES = 64 * 1024
DELIVERY_PAUSE_S = 0.01
SCREENING_TIMEOUT_S = 900.0
RESULTS_NAME = "demo-results.csv"
DEMO_USERS = {"demo-admin": UserRole.ADMIN, "demo-supervisor": UserRole.SUPERVISOR, "demo-tech": UserRole.TECHNICIAN}
DEMO_USERS_FILE = "demo-users.txt"


@dataclass(frozen=True)
class DemoRow:
    file: str
    truth: int  # 1 = blast (anomalous)
    is_field: bool
    score: float | None
    flagged: bool | None
    threshold: float | None
    model_version: str | None
    heatmap: str | None
    rejected: str | None = None


@dataclass(frozen=True)
class DemoResult:
    rows: list[DemoRow]
    auc: float
    metrics: dict[str, float | int]
    results: Path
    home: Path
    started: datetime  # when screening began: the report's period starts here
    actor: str


def run_demo(workdir: str | os.PathLike[str], *, home: str | os.PathLike[str] | None = None, quick: bool = False,
             threads: int | None = None, seed: int = 0, out: TextIO | None = None) -> DemoResult:
    """Run the demo; `threads` is the screening service's torch thread count (default
    `default_torch_threads()`; on a machine that is busy with other work, 1 is much faster). Torch's
    thread count is process-wide: the entry point (`ganad demo`) sets it before calling this."""
    threads = threads or default_torch_threads()
    workdir = Path(workdir).absolute()
    home = Path(home).absolute() if home is not None else workdir / "home"
    say = _printer(out or sys.stdout)

    say(f"1/5 drawing {N_NORMAL} normal + {N_BLAST} blast synthetic crops and {N_FIELDS} fields "
        f"in {workdir / 'slides'}")
    synthetic = write_dataset(workdir / "slides", N_NORMAL, N_BLAST, seed=seed, n_fields=N_FIELDS)
    split = paper_split(load_dataset(synthetic.out_dir), seed=seed)
    held = calibration_count(len(split.train))
    say(f"2/5 paper split: train {len(split.train) - held} normal, calibrate {held} normal, validate "
        f"{_counts(split.val)}, test {_counts(split.test)}")

    config = replace(TrainConfig(seed=seed), steps=QUICK_STEPS) if quick else TrainConfig(seed=seed)
    say(f"3/5 training ({config.steps} steps{', --quick' if quick else ''}; {config.image_size} px)")
    bundle_path = _train(config, split.train, split.val, workdir / "bundle")
    say(f"    threshold: {read_metadata(bundle_path)['ganad']['threshold']['rule']}")

    with open_store(home=home) as store:
        actor = current_actor()
        imported = import_bundle(store, bundle_path, home, actor=actor)
        model = store.activate_model_version(imported.model.version, actor=actor)
        say(f"    model {model.version} registered and active (database in {home})")
        users = _demo_users(store, workdir)
        if users is not None:
            say(f"    demo users {', '.join(DEMO_USERS)} made; their passwords are in {users}")

        inbox = workdir / "inbox"
        shutil.rmtree(inbox, ignore_errors=True)
        inbox.mkdir(parents=True)
        deliveries = [(sample.path, sample.path.name, sample.label, False) for sample in split.test]
        deliveries += [(path, f"field-{path.name}", _label(path), True) for path in synthetic.field_paths]
        say(f"4/5 screening: delivering {len(deliveries)} slides into {inbox} as a scanner would")
        service_config = ServiceConfig((inbox,), home=home, rescore=True, field_scale=FIELD_SCALE,
                                       torch_threads=threads)
        started = datetime.now(UTC)
        results = _screen(store, service_config, inbox, deliveries)

    rows = [_row(name, label, is_field, results[name]) for _, name, label, is_field in deliveries]
    crops = [row for row in rows if not row.is_field and row.score is not None]
    threshold = crops[0].threshold
    assert threshold is not None  # a scored crop has its model's threshold
    metrics = screening_metrics(np.array([row.score for row in crops]), np.array([row.truth for row in crops]),
                                np.array([bool(row.flagged) for row in crops]))
    results_csv = workdir / RESULTS_NAME
    _write_results(results_csv, rows)
    say("5/5 results")
    _print_table(rows, say)
    say(f"test crops: AUC {metrics['auc']:.3f}; at threshold {crops[0].threshold:.4g}: sensitivity "
        f"{metrics['sensitivity']:.3f}, specificity {metrics['specificity']:.3f} "
        f"({metrics['n_normal']} normal, {metrics['n_anomalous']} blast; fields are not in the AUC)")
    say(f"results with truth: {results_csv}")
    return DemoResult(rows, float(metrics["auc"]), metrics, results_csv, home, started, actor)


def _demo_users(store, workdir: Path) -> Path | None:
    """A database without users gets one of each role, with passwords kept in a file only its owner
    reads (the app asks a database without users for its first admin instead)."""
    if store.list_users():
        return None
    path = workdir / DEMO_USERS_FILE
    lines = []
    for name, role in DEMO_USERS.items():
        password = secrets.token_urlsafe(12)
        add_user(store, name, f"Demo {role.value.title()}", role, password, actor=current_actor())
        lines.append(f"{name}\t{role.value}\t{password}")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    path.chmod(0o600)
    return path


def _train(config: TrainConfig, normal_samples: tuple[Sample, ...], val_samples: tuple[Sample, ...],
           out: Path) -> Path:
    train_samples, calibration_samples = split_calibration(normal_samples, seed=config.seed)
    train_images = [read_image(sample.path) for sample in train_samples]
    val_images = [read_image(sample.path) for sample in val_samples]
    calibration_images = [read_image(sample.path) for sample in calibration_samples]
    labels = [sample.label for sample in val_samples]
    with tqdm(total=config.steps, unit="step", desc="training", file=sys.stderr) as bar:
        def report(progress: TrainProgress) -> None:
            bar.update(progress.step - bar.n)
            figure = "-" if progress.validation is None else f"{progress.validation:.3f}"
            bar.set_postfix_str(f"ae {progress.losses['ae']:.4f} {progress.validation_name} {figure}")

        result = train(config, train_images, val_images, labels, calibration_images, progress=report)
    training = {"config": config.to_dict(), "data": "synthetic (ganad demo)", CROP_SIZE_KEY: CROP_SIZE,
                "n_train": len(train_images), "n_val_normal": labels.count(0),
                "n_val_anomalous": labels.count(1), "n_calibration": len(calibration_images),
                **result.record(),
                **trained_on(*([sample.path for sample in part] for part in (train_samples, val_samples,
                                                                             calibration_samples)))}
    return save_bundle(out, result.model, result.score_config, result.operating_point, training=training,
                       validation_metrics=result.validation_metrics, changelog="trained by ganad demo")


def _screen(store, config: ServiceConfig, inbox: Path,
            deliveries: list[tuple[Path, str, int, bool]]) -> dict[str, SlideScored | SlideRejected]:
    """Run the service while delivering the files; return each file's event, by name."""
    results: dict[str, SlideScored | SlideRejected] = {}
    lock = threading.Lock()
    done = threading.Event()
    bar = tqdm(total=len(deliveries), unit="slide", desc="screening", file=sys.stderr)

    def collect(event: SlideScored | SlideRejected) -> None:
        with lock:
            if event.path.name not in results:
                bar.update(1)
            results[event.path.name] = event
            if len(results) == len(deliveries):
                done.set()

    service = ScreeningService(store, config, on_scored=collect, on_rejected=collect,
                               on_stopped=lambda error: done.set())
    service.start()
    try:
        for index, (source, name, _, _) in enumerate(deliveries):
            _deliver(source, inbox / name, index)
        done.wait(SCREENING_TIMEOUT_S)
    finally:
        service.stop()
        bar.close()
    if service.error is not None:
        raise RuntimeError(f"the screening service stopped: {service.error}") from service.error
    missing = [name for _, name, _, _ in deliveries if name not in results]
    if missing:
        raise RuntimeError(f"{len(missing)} slides were not screened within {SCREENING_TIMEOUT_S:g} s, "
                           f"e.g. {missing[0]}")
    return results


def _deliver(source: Path, destination: Path, index: int) -> None:
    """Write `source` to `destination` in chunks; every third file under a temporary name that is
    renamed when complete, every fifth slowly, as a scanner or a network copy would."""
    data = source.read_bytes()
    target = destination.with_name(destination.name + ".part") if index % 3 == 0 else destination
    with open(target, "wb") as handle:
        for start in range(0, len(data), CHUNK_BYTES):
            handle.write(data[start:start + CHUNK_BYTES])
            handle.flush()
            if index % 5 == 0:
                time.sleep(DELIVERY_PAUSE_S)
    if target != destination:
        os.replace(target, destination)
    time.sleep(DELIVERY_PAUSE_S)


def _row(name: str, truth: int, is_field: bool, event: SlideScored | SlideRejected) -> DemoRow:
    if isinstance(event, SlideRejected):
        return DemoRow(name, truth, is_field, None, None, None, None, None, rejected=event.reason)
    return DemoRow(name, truth, is_field, event.score, event.flagged, event.threshold, event.model_version,
                   str(event.heatmap_path) if event.heatmap_path else None)


def _write_results(path: Path, rows: list[DemoRow]) -> None:
    with atomic_output(path) as partial, open(partial, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["file", "kind", "truth", "score", "threshold", "flagged", "model_version", "heatmap",
                         "rejected"])
        for row in rows:
            writer.writerow([row.file, "field" if row.is_field else "crop", "blast" if row.truth else "normal",
                             "" if row.score is None else f"{row.score:.6f}",
                             "" if row.threshold is None else f"{row.threshold:.6f}",
                             "" if row.flagged is None else int(row.flagged), row.model_version or "",
                             row.heatmap or "", row.rejected or ""])


def _print_table(rows: list[DemoRow], say: Callable[[str], None]) -> None:
    say(f"    {'FILE':<22} {'SCORE':>9}  {'FLAG':<8} TRUTH")
    for row in rows:
        score = "-" if row.score is None else f"{row.score:9.4f}"
        flag = "rejected" if row.rejected else ("FLAGGED" if row.flagged else "normal")
        say(f"    {row.file:<22} {score:>9}  {flag:<8} {'blast' if row.truth else 'normal'}")


def _counts(samples: tuple[Sample, ...]) -> str:
    anomalous = sum(sample.label == ANOMALOUS for sample in samples)
    return f"{len(samples) - anomalous} normal + {anomalous} blast"


def _label(path: Path) -> int:
    return int(path.stem.rsplit("_", 1)[1])


def _printer(out: TextIO) -> Callable[[str], None]:
    def say(line: str) -> None:
        print(line, file=out, flush=True)

    return say
