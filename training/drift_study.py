"""Does the drift alarm keep quiet on normal slides and fire on a stain change? Issue 22's measurement.

    nice -n 10 python training/drift_study.py --threads 1 [--bundle DIR | --steps N] [--out training/results/drift.json]

Without --bundle, `ganad synth` writes 120 normal crops (seed 7101) and `ganad train` trains on them
with its defaults (its own validation and calibration normals held out), or with a step budget of
--steps, to keep a CPU run short. A `DriftMonitor` on the
bundle's calibration, as the screening service keeps one per model, is then fed the cell p-values
of 1,000 fresh normal crops of the training stain (seed 7102), one slide each: the false alarms
are counted (target 0). From where that run left it (its window full of normal slides, as in a lab
that has screened for a while), it is fed crops of the same seed drawn with a stain shift
(`imaging.synthetic`: every stain's density times 1 + shift), and the number of shifted slides
until the alarm fires is reported per strength, with the share of them that exceed and the share
the operating point flags. Crops are drawn at the bundle's training crop size.

Writes one JSON object (`--out`) and prints it.
"""

from __future__ import annotations

import argparse
import copy
import json
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from ganad_clinic.cli import main as ganad
from ganad_clinic.cli.common import configure_torch
from ganad_clinic.imaging.synthetic import CROP_SIZE, crop_rng, generate_cell
from ganad_clinic.model.bundle import load_bundle
from ganad_clinic.model.inference import Inferencer, SlideResult
from ganad_clinic.screening.drift import ALARM_ALPHA, BOUND_QUANTILE, CLEAR_ALPHA, WINDOW, DriftMonitor

TRAIN_SEED = 7101
TEST_SEED = 7102
TRAIN_NORMALS = 120
NORMAL_SLIDES = 1000
SHIFTS = (0.25, 0.5, 1.0)
MAX_SHIFTED = 3 * WINDOW  # shifted slides fed at most, per strength
BATCH = 32


def train_bundle(work: Path, threads: int, steps: int | None) -> tuple[Path, list[str]]:
    """A bundle trained by `ganad train` with its defaults (but `steps`) on `ganad synth` normal crops."""
    data, bundle = work / "train-crops", work / "bundle"
    commands = [["synth", "--out", str(data), "--normal", str(TRAIN_NORMALS), "--blast", "0",
                 "--seed", str(TRAIN_SEED)],
                ["train", "--data", str(data), "--out", str(bundle), "--threads", str(threads),
                 *([] if steps is None else ["--steps", str(steps)])]]
    for command in commands:
        if ganad(command) != 0:
            raise SystemExit(f"ganad {' '.join(command)} failed")
    return bundle, [f"ganad {' '.join(command)}" for command in commands]


def scored(scorer: Inferencer, size: int, shift: float, count: int) -> Iterator[SlideResult]:
    """The first `count` normal crops of TEST_SEED drawn with `shift`, scored in batches, one by one."""
    for start in range(0, count, BATCH):
        images = [generate_cell(crop_rng(TEST_SEED, False, index), False, size, stain_shift=shift)
                  for index in range(start, min(count, start + BATCH))]
        yield from scorer.score(images, [scorer.plan(image) for image in images])


def watch(monitor: DriftMonitor, results: Iterator[SlideResult]) -> dict:
    """Feed `monitor` the slides until they run out (or the alarm fires, when asked to stop there)."""
    slides = exceeding = flagged = alarms = 0
    first_alarm = None
    for result in results:
        slides += 1
        exceeding += min(result.decision.p_values) <= monitor.level + 1e-9  # crops: one cell each
        flagged += result.flagged
        state = monitor.observe(result.decision.p_values)
        if state is not None and state.alarm:
            alarms += 1
            if first_alarm is None:
                first_alarm = {"after_slides": slides, "exceeding": state.exceeding, "window": state.window,
                               "p_value": state.p_value, "message": state.message}
    return {"slides": slides, "exceeding": exceeding, "exceeding_share": exceeding / max(1, slides),
            "flagged_share": flagged / max(1, slides), "alarms": alarms, "first_alarm": first_alarm}


def until_alarm(monitor: DriftMonitor, results: Iterator[SlideResult]) -> Iterator[SlideResult]:
    """The results, up to and including the one that raises `monitor`'s alarm."""
    for result in results:
        yield result
        if monitor.alarm:
            return


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bundle", type=Path, help="a trained bundle (default: train one as described above)")
    parser.add_argument("--steps", type=int, help="`ganad train`'s step budget (default: its own)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads, here and in `ganad train`")
    parser.add_argument("--out", type=Path, default=Path("training/results/drift.json"))
    args = parser.parse_args()
    configure_torch(args.threads)
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="drift-study-") as work:
        commands: list[str] = []
        bundle_path = args.bundle
        if bundle_path is None:
            bundle_path, commands = train_bundle(Path(work), args.threads, args.steps)
        trained_at = time.monotonic()
        bundle = load_bundle(bundle_path, "cpu")
        scorer = Inferencer(bundle, 1.0)
        size = int(bundle.metadata["ganad"]["training"].get("crop_size", CROP_SIZE))
        monitor = DriftMonitor(bundle.calibration.n)
        normal = watch(monitor, scored(scorer, size, 0.0, NORMAL_SLIDES))
        shifted = {}
        for shift in SHIFTS:
            watched = copy.deepcopy(monitor)  # each strength starts where the normal run left the window
            shifted[str(shift)] = watch(watched, until_alarm(watched, scored(scorer, size, shift, MAX_SHIFTED)))
    result = {
        "command": " ".join(["nice -n 10 python training/drift_study.py", "--threads", str(args.threads),
                             *([] if args.bundle is None else ["--bundle", str(args.bundle)]),
                             *([] if args.steps is None else ["--steps", str(args.steps)])]),
        "bundle": {"path": str(args.bundle) if args.bundle else "trained here", "commands": commands,
                   "calibration_n": bundle.calibration.n, "target_fpr": bundle.target_fpr, "crop_size": size},
        "seeds": {"training_crops": TRAIN_SEED, "test_crops": TEST_SEED},
        "monitor": {"level": monitor.level, "expected_rate_bound": monitor.expected_rate,
                    "bound_quantile": BOUND_QUANTILE, "window_slides": WINDOW, "alarm_alpha": ALARM_ALPHA,
                    "clear_alpha": CLEAR_ALPHA},
        "normal": {**normal, "false_alarms": normal["alarms"]},
        "stain_shift": {"max_slides_fed": MAX_SHIFTED, "by_strength": shifted},
        "seconds": {"training": round(trained_at - started), "total": round(time.monotonic() - started)},
        "threads": args.threads,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
