"""Performance benchmark: scoring against this machine's matrix-multiply rate, against a naive
reference and AnoGAN's z search; watch latency, burst throughput and memory; ALL-IDB1-size fields;
the CPU backends side by side; retraining time, memory and quality. Prints one JSON object (and
progress lines on stderr), with issue 27's targets at its top level: burst_files_per_second,
model_images_per_second, burst_to_model_ratio, latency_p95_s, field_seconds_p95, watch_peak_rss_mib.

    .venv/bin/python training/bench.py [--quick] [--threads 2] [--json FILE]

Scoring is measured on the ALL architecture at 3x220x220 with latent 200 (Table 5's sizes, random
weights: speed does not depend on them) and on the default model at 64 px. The naive reference
runs the five forward passes of one image (E(x), G(z), E(x̂), D(x), D(x̂)) eagerly, with autograd
on and no batching, as a first implementation would. The watch, field, backend and retraining
figures run in child processes (training/bench_screening.py, bench_field.py, bench_backends.py,
synthetic_protocol.py) so that their memory and torch settings are their own.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from torch.nn.utils import parametrize
from torch.utils.flop_counter import FlopCounterMode

from ganad_clinic.cli.common import configure_torch
from ganad_clinic.model.ganad.torch_model import GanAutoencoder
from ganad_clinic.model.inference import batch_size_for
from ganad_clinic.model.methods import arch_of
from ganad_clinic.model.networks import SPECS
from ganad_clinic.model.scoring import ScoreConfig, score_batch
from ganad_clinic.model.trainer import recommended_config

HERE = Path(__file__).resolve().parent
CPU_FLAGS = ("avx2", "avx512f", "avx512_bf16", "avx512_vnni", "amx_bf16", "amx_tile")
"""The CPU features the figures depend on (vector width, bf16 and int8 units): reported, never assumed."""


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def best_seconds(run: Callable[[], object], repeats: int, warmup: int = 1) -> float:
    """Median wall time of `repeats` runs after `warmup` untimed ones."""
    for _ in range(warmup):
        run()
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        run()
        times.append(time.perf_counter() - started)
    return float(np.median(times))


def matmul_rate(size: int, repeats: int) -> float:
    """fp32 FLOP/s of a square matrix product, the machine's practical compute ceiling."""
    a, b = torch.randn(size, size), torch.randn(size, size)
    seconds = best_seconds(lambda: torch.mm(a, b), repeats, warmup=2)
    return 2 * size**3 / seconds


def scoring_flops(model: GanAutoencoder, x: torch.Tensor, config: ScoreConfig) -> int:
    """FLOPs of one scoring pass, counted on a fresh model of the same architecture whose
    spectral-norm parametrisations are removed (the counter cannot trace them; the convolutions are
    the same). Fresh, not a deep copy: a copy shares its parametrised classes with the original, and
    removing the parametrisation there would strip the original's weights too."""
    plain = GanAutoencoder(model.spec, model.image_size, model.channels, model.latent).eval()
    for module in plain.modules():
        if parametrize.is_parametrized(module, "weight"):
            parametrize.remove_parametrizations(module, "weight")
    with FlopCounterMode(display=False) as counter:
        score_batch(plain, x, config)
    return counter.get_total_flops()


def naive_pass(model: GanAutoencoder, x: torch.Tensor) -> None:
    """Five separate forward passes of one image, autograd on."""
    z = model.encoder(x)
    reconstruction = model.generator(z)
    model.encoder(reconstruction)
    model.critic.feature_maps(x)
    model.critic.feature_maps(reconstruction)


def anogan_seconds_per_image(model: GanAutoencoder, x: torch.Tensor, steps: int) -> float:
    """AnoGAN's test-time search (Schlegl et al.): `steps` Adam steps on z through G and D's features."""
    for p in model.parameters():
        p.requires_grad_(False)
    z = torch.zeros(1, model.latent, requires_grad=True)
    optimiser = torch.optim.Adam([z], lr=0.01)
    target = model.critic.feature_maps(x)[-1]
    started = time.perf_counter()
    for _ in range(steps):
        generated = model.generator(z)
        residual = (x - generated).abs().sum()
        discrimination = (model.critic.feature_maps(generated)[-1] - target).abs().sum()
        loss = 0.9 * residual + 0.1 * discrimination
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    seconds = time.perf_counter() - started
    for p in model.parameters():
        p.requires_grad_(True)
    return seconds


def scoring_figures(name: str, model: GanAutoencoder, repeats: int, anogan_steps: int, peak: float) -> dict:
    """Per-image times at batch 1, at batch 32 and at the batch the app scores with
    (`batch_size_for`), in NCHW and channels-last; the top-level figures are the app's batch."""
    model.eval()
    config = ScoreConfig(mode="raw", feature_layers="all")
    size = model.image_size
    batch = batch_size_for(size)
    x32 = torch.rand(32, 3, size, size) * 2 - 1
    x1, xb = x32[:1], x32[:batch]
    log(f"{name}: timing batch 32, batch {batch} (the app's), batch 1, naive and AnoGAN ({anogan_steps} z steps)")
    batched_repeats = repeats * max(1, 32 // batch // 2)
    batch32 = best_seconds(lambda: score_batch(model, x32, config), repeats) / 32
    batched = best_seconds(lambda: score_batch(model, xb, config), batched_repeats) / batch
    batch1 = best_seconds(lambda: score_batch(model, x1, config), repeats * 4)
    naive = best_seconds(lambda: naive_pass(model, x1), repeats * 4)
    flops = scoring_flops(model, x1, config)
    anogan = anogan_seconds_per_image(model, x1, anogan_steps) * (500 / anogan_steps)
    model.to(memory_format=torch.channels_last)
    channels_last = best_seconds(lambda: score_batch(model, xb.contiguous(memory_format=torch.channels_last), config),
                                 batched_repeats) / batch
    model.to(memory_format=torch.contiguous_format)
    return {
        "image_size": size,
        "latent": model.latent,
        "parameters": sum(p.numel() for p in model.parameters()),
        "flops_per_image": flops,
        "batch_size_batched": batch,
        "seconds_per_image_batch1": batch1,
        "seconds_per_image_batch32": batch32,
        "seconds_per_image_batched": batched,
        "seconds_per_image_batched_channels_last": channels_last,
        "images_per_second_batch1": 1 / batch1,
        "images_per_second_batch32": 1 / batch32,
        "images_per_second_batched": 1 / batched,
        "fraction_of_matmul_rate_batch32": flops / batch32 / peak,
        "fraction_of_matmul_rate": flops / batched / peak,
        "naive_seconds_per_image": naive,
        "naive_fraction_of_matmul_rate": flops / naive / peak,
        "speedup_vs_naive_batch32": naive / batch32,
        "speedup_vs_naive": naive / batched,
        "anogan_seconds_per_image": anogan,
        "anogan_steps_timed": anogan_steps,
        "speedup_vs_anogan": anogan / batched,
    }


def child_figures(module: str, *args: str) -> dict:
    """The last line of `python -m training.<module> ... --json`, run in a child process (its own
    memory, its own torch)."""
    output = subprocess.run([sys.executable, "-m", f"training.{module}", *args, "--json"], check=True,
                            capture_output=True, text=True, cwd=HERE.parent).stdout
    return json.loads(output.strip().splitlines()[-1])


def watch_figures(files: int, threads: int) -> dict:
    """The screening benchmark: latency, burst throughput, the watch process's peak memory."""
    log(f"watch: latency and a burst of {files} files (training/bench_screening.py)")
    return child_figures("bench_screening", "--files", str(files), "--latency-files", "20", "--threads", str(threads))


def field_figures(fields: int, threads: int) -> dict:
    """ALL-IDB1-size fields through `ganad watch`, and the split of one field's steps."""
    log(f"fields: {fields} fields of 2592x1944 (training/bench_field.py)")
    return child_figures("bench_field", "--fields", str(fields), "--threads", str(threads))


def backends_figures(sizes: list[int], repeats: int, threads: int) -> dict:
    """The CPU backends of the scoring pass side by side (training/bench_backends.py)."""
    log(f"backends: torch eager, ONNX Runtime, OpenVINO, torch.compile, bf16 at {sizes} px")
    return child_figures("bench_backends", "--sizes", *map(str, sizes), "--repeats", str(repeats),
                         "--threads", str(threads))


def retrain_figures(steps: int, seeds: list[int], threads: int) -> dict:
    """training/synthetic_protocol.py in a child process: time, test AUC and peak memory of
    retraining on 100 normal crops (the three-seed figures are that script's own run)."""
    log(f"retraining: 100 normal crops at 64 px, {steps} steps, seeds {seeds}")
    with tempfile.TemporaryDirectory() as folder:
        target = Path(folder) / "protocol.json"
        started = time.monotonic()
        process = subprocess.Popen(
            [sys.executable, str(HERE / "synthetic_protocol.py"), "--steps", str(steps), "--threads", str(threads),
             "--seeds", *map(str, seeds), "--json", str(target)],
            stdout=subprocess.DEVNULL)
        peak = 0
        while process.poll() is None:
            peak = max(peak, _peak_rss(process.pid))
            time.sleep(0.5)
        if process.returncode:
            raise SystemExit(f"synthetic_protocol.py failed with exit status {process.returncode}")
        rows = json.loads(target.read_text())
    aucs = [row["auc"] for row in rows]
    return {
        "steps": steps,
        "seeds": seeds,
        "seconds_per_seed": [row["seconds"] for row in rows],
        "auc_per_seed": aucs,
        "auc_mean": float(np.mean(aucs)),
        "peak_rss_mib": peak / 2**20,
        "wall_seconds": time.monotonic() - started,
    }


def _peak_rss(pid: int) -> int:
    """VmHWM (the peak resident set) of a live process, in bytes."""
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0
    match = re.search(r"VmHWM:\s+(\d+) kB", text)
    return int(match.group(1)) * 1024 if match else 0


def cpu_flags() -> dict[str, bool]:
    """Which of CPU_FLAGS /proc/cpuinfo lists (all False where it cannot be read)."""
    try:
        line = next(line for line in Path("/proc/cpuinfo").read_text().splitlines() if line.startswith("flags"))
    except (OSError, StopIteration):
        return dict.fromkeys(CPU_FLAGS, False)
    present = set(line.split(":", 1)[1].split())
    return {flag: flag in present for flag in CPU_FLAGS}


def machine() -> dict:
    cpu = "unknown"
    try:
        cpu = next(line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                   if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return {"cpu": cpu, "cpu_flags": cpu_flags(), "logical_cpus": os.cpu_count(), "python": platform.python_version(),
            "torch": torch.__version__, "torch_threads": torch.get_num_threads()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="fewer repeats, files and training steps (minutes)")
    parser.add_argument("--threads", type=int, default=2, help="torch threads for every measurement")
    parser.add_argument("--json", type=Path, help="also write the JSON object to this file")
    args = parser.parse_args()
    configure_torch(args.threads)
    torch.manual_seed(0)
    repeats = 3 if args.quick else 7

    peak = matmul_rate(1024 if args.quick else 2048, repeats * 3)
    log(f"fp32 matrix multiply: {peak / 1e9:.1f} GFLOP/s with {args.threads} threads")
    all_220 = GanAutoencoder(SPECS["all"], 220, 3, 200)
    default = recommended_config(64)
    small = GanAutoencoder(arch_of(default), 64, 3, default.latent)
    results: dict = {"machine": machine(), "quick": args.quick, "matmul_flops": peak}
    results["all_220"] = scoring_figures("ALL 3x220x220, latent 200", all_220, repeats, 5 if args.quick else 25, peak)
    results["default_64"] = scoring_figures("default model 3x64x64", small, repeats, 50 if args.quick else 500, peak)
    results["fraction_of_matmul_rate"] = results["all_220"]["fraction_of_matmul_rate"]
    results["speedup_vs_naive"] = results["all_220"]["speedup_vs_naive"]
    results["watch"] = watch_figures(60 if args.quick else 500, args.threads)
    results["field"] = field_figures(5 if args.quick else 20, args.threads)
    results["backends"] = backends_figures([64] if args.quick else [64, 220], repeats, args.threads)
    for key in ("burst_files_per_second", "model_images_per_second", "burst_to_model_ratio", "latency_p95_s",
                "watch_peak_rss_mib"):
        results[key] = results["watch"][key]  # issue 27's targets, at the top level
    results["field_seconds_p95"] = results["field"]["field_seconds_p95"]
    results["retrain"] = retrain_figures(100 if args.quick else recommended_config(64).steps, [0], args.threads)
    text = json.dumps(results, indent=2)
    print(text)
    if args.json:
        args.json.write_text(text + "\n")


if __name__ == "__main__":
    main()
