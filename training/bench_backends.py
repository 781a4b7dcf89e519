"""CPU backends for the scoring pass, side by side in one run (issue 27): torch eager fp32 (the
reference), ONNX Runtime, OpenVINO, torch.compile and bf16 autocast, each timed at the app's batch
size (`batch_size_for`) and at batch 1, and each checked against torch on the same crops.

    flock /tmp/ganad-bench.lock .venv/bin/python -m training.bench_backends [--threads 2] [--sizes 64 220] [--json]

Subjects: at 64 px the default architecture as a real bundle (trained one step, as
training/bench_screening.py makes it: its own normalised score and fitted feature units); at 220 px
the ALL spec at latent 200 with random weights and the raw all-layer score, as training/bench.py
times it. Every backend runs the same graph: E(x), G(z), E(x̂), D(x) and D(x̂), the three terms,
the combined score and the residual map (`ScoringPass`). ONNX Runtime and OpenVINO run an ONNX
export with spectral norm folded into plain weights (`plain_model`); OpenVINO is held to f32, since
on a CPU with bf16 units its default precision is bf16, which is reported beside it.

Agreement is measured on CROPS synthetic crops, half blast, half normal: per image |a - b| / |b|
against torch eager, with |b| floored at FLOOR so that a score of exactly 0 cannot divide by 0, the
largest over the images (for the terms, over the three). Not relative to the spread of the scores:
that would hide an error that moves a score near the threshold. A backend `matches` when every
such difference is within TOLERANCE and its AUC on the crops equals torch's; it is `default_worthy`
when it matches and scores at least DEFAULT_SPEEDUP times as many images per second as torch.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from collections.abc import Callable
from importlib import metadata
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn.utils import parametrize

from ganad_clinic.cli.common import configure_torch
from ganad_clinic.imaging.synthetic import crop_rng, generate_cell
from ganad_clinic.imaging.transforms import eval_transform
from ganad_clinic.model.bundle import load_bundle
from ganad_clinic.model.ganad.torch_model import GanAutoencoder
from ganad_clinic.model.inference import batch_size_for
from ganad_clinic.model.networks import SPECS
from ganad_clinic.model.scoring import ScoreConfig, combine, model_terms, residual_map, roc_auc, score_batch
from training.bench import best_seconds, cpu_flags, log
from training.bench_screening import _bundle

CROPS = 64
TOLERANCE = 1e-4
FLOOR = 1e-6
DEFAULT_SPEEDUP = 1.3
OUTPUTS = ("score", "l_d", "l_r", "l_l", "residual")

Runner = Callable[[torch.Tensor], tuple[np.ndarray, ...]]  # a batch -> OUTPUTS as arrays


class ScoringPass(nn.Module):
    """The scoring pass as one module: forward(x) -> OUTPUTS, computed as `score_batch` computes them."""

    def __init__(self, model: GanAutoencoder, config: ScoreConfig) -> None:
        super().__init__()
        self.model = model
        self.config = config

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        terms, reconstruction = model_terms(self.model, x, self.config.feature_layers)
        return combine(terms, self.config), terms["l_d"], terms["l_r"], terms["l_l"], residual_map(x, reconstruction)


def plain_model(model: GanAutoencoder) -> GanAutoencoder:
    """A fresh model of the same architecture without spectral-norm parametrisations, holding the
    original's effective weights (in eval mode spectral norm divides by the stored u/v's sigma
    without a power iteration, so `module.weight` there is the weight the model scores with)."""
    model.eval()
    plain = GanAutoencoder(model.spec, model.image_size, model.channels, model.latent).eval()
    for module in plain.modules():
        if parametrize.is_parametrized(module, "weight"):
            parametrize.remove_parametrizations(module, "weight")
    state = {key: value for key, value in model.state_dict().items() if ".parametrizations." not in key}
    with torch.no_grad():
        for name, module in model.named_modules():
            if parametrize.is_parametrized(module, "weight"):
                state[f"{name}.weight"] = module.weight.detach().clone()
    plain.load_state_dict(state)
    return plain


def versions() -> dict[str, str]:
    """The installed versions of the backends' packages ("not installed" where one is missing)."""
    found = {}
    for package in ("torch", "onnx", "onnxruntime", "openvino"):
        try:
            found[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            found[package] = "not installed"
    return found


def subject(image_size: int, folder: Path) -> tuple[GanAutoencoder, ScoreConfig, str]:
    """The model scored at `image_size` (64 or 220, see the module's docstring), its score and a name."""
    if image_size == 64:
        bundle = load_bundle(_bundle(folder / "bundle", image_size))
        if not isinstance(bundle.model, GanAutoencoder):
            raise TypeError(f"the default bundle holds a {type(bundle.model).__name__}, not the paper's model")
        return bundle.model.eval(), bundle.score_config, "default model 3x64x64, one-step bundle"
    if image_size == 220:
        torch.manual_seed(0)
        return (GanAutoencoder(SPECS["all"], 220, 3, 200).eval(), ScoreConfig(mode="raw", feature_layers="all"),
                "ALL 3x220x220, latent 200, random weights")
    raise ValueError(f"no subject at {image_size} px; choose 64 or 220")


def crops(image_size: int) -> tuple[torch.Tensor, np.ndarray]:
    """CROPS synthetic crops through the eval transform, normal and blast alternating, and their labels."""
    labels = np.arange(CROPS) % 2
    images = [generate_cell(crop_rng(0, bool(blast), index), bool(blast)) for index, blast in enumerate(labels)]
    return eval_transform(image_size, 3).batch(images), labels


def torch_runner(module: Callable[[torch.Tensor], tuple[torch.Tensor, ...]], bf16: bool = False) -> Runner:
    """Run a module (eager or compiled) under inference mode, optionally in bf16 autocast."""
    def run(x: torch.Tensor) -> tuple[np.ndarray, ...]:
        with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            return tuple(value.float().numpy() for value in module(x))
    return run


def eager_runner(model: GanAutoencoder, config: ScoreConfig) -> Runner:
    """The reference: `score_batch` itself, as the app calls it."""
    def run(x: torch.Tensor) -> tuple[np.ndarray, ...]:
        scores = score_batch(model, x, config)
        return tuple(getattr(scores, name).numpy() for name in OUTPUTS)
    return run


def export_onnx(model: GanAutoencoder, config: ScoreConfig, path: Path) -> Path:
    """`ScoringPass` of the folded model as ONNX (the legacy exporter), with a dynamic batch axis."""
    example = torch.zeros(2, model.channels, model.image_size, model.image_size)
    with torch.no_grad():
        torch.onnx.export(ScoringPass(plain_model(model), config).eval(), (example,), str(path), dynamo=False,
                          input_names=["x"], output_names=list(OUTPUTS), opset_version=17,
                          dynamic_axes={name: {0: "batch"} for name in ("x", *OUTPUTS)})
    return path


def onnxruntime_runner(path: Path, threads: int) -> Runner:
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
    session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    return lambda x: tuple(session.run(list(OUTPUTS), {"x": x.numpy()}))


def openvino_runner(path: Path, threads: int, precision: str | None, hint: str = "LATENCY") -> Runner:
    """The ONNX file compiled for OpenVINO's CPU plugin; `precision` None keeps the plugin's default.
    A batch is split over the plugin's optimal number of infer requests (1 under LATENCY; under
    THROUGHPUT one per stream), run asynchronously and put back together in order."""
    import openvino

    settings = {"INFERENCE_NUM_THREADS": threads, "PERFORMANCE_HINT": hint}
    if precision:
        settings["INFERENCE_PRECISION_HINT"] = precision
    compiled = openvino.Core().compile_model(str(path), "CPU", settings)
    requests = int(compiled.get_property("OPTIMAL_NUMBER_OF_INFER_REQUESTS"))
    queue = openvino.AsyncInferQueue(compiled, requests)
    outputs = [compiled.output(name) for name in OUTPUTS]
    results: dict[int, tuple[np.ndarray, ...]] = {}

    def done(request: openvino.InferRequest, index: int) -> None:
        results[index] = tuple(np.array(request.get_tensor(output).data) for output in outputs)

    queue.set_callback(done)

    def run(x: torch.Tensor) -> tuple[np.ndarray, ...]:
        results.clear()
        chunks = np.array_split(x.numpy(), min(requests, len(x)))
        for index, chunk in enumerate(chunks):
            queue.start_async({"x": chunk}, index)
        queue.wait_all()
        return tuple(np.concatenate(parts) for parts in zip(*(results[index] for index in range(len(chunks)))))
    return run


def outputs_of(run: Runner, x: torch.Tensor, batch: int) -> list[np.ndarray]:
    """OUTPUTS of all of `x`, `batch` images at a time, concatenated."""
    parts = [run(x[start:start + batch]) for start in range(0, len(x), batch)]
    return [np.concatenate([part[index] for part in parts]).astype(np.float64) for index in range(len(OUTPUTS))]


def max_rel_diff(values: np.ndarray, reference: np.ndarray) -> float:
    """The largest |a - b| / max(|b|, FLOOR) over the elements."""
    return float((np.abs(values - reference) / np.maximum(np.abs(reference), FLOOR)).max())


def measure(run: Runner, x: torch.Tensor, batch: int, repeats: int) -> dict[str, float]:
    """Images per second at `batch` (the first `batch` crops) and at batch 1."""
    batched = best_seconds(lambda: run(x[:batch]), repeats) / batch
    single = best_seconds(lambda: run(x[:1]), repeats * 4)
    return {"images_per_second": 1 / batched, "images_per_second_batch1": 1 / single}


def compare(outputs: list[np.ndarray], reference: list[np.ndarray], labels: np.ndarray) -> dict[str, float]:
    """A backend's deviation from torch's outputs and its AUC on the crops."""
    score, *terms, residual = outputs
    return {
        "max_rel_diff_score": max_rel_diff(score, reference[0]),
        "max_rel_diff_terms": max(max_rel_diff(mine, theirs) for mine, theirs in zip(terms, reference[1:4])),
        "max_abs_diff_residual": float(np.abs(residual - reference[4]).max()),
        "auc": roc_auc(score, labels),
    }


def backend_figures(threads: int, image_size: int = 64, repeats: int = 7) -> dict:
    """Every backend's speed and agreement with torch eager fp32 on one subject (`subject`)."""
    flags = cpu_flags()
    batch = batch_size_for(image_size)
    with tempfile.TemporaryDirectory(prefix="ganad-backends-") as folder:
        model, config, name = subject(image_size, Path(folder))
        x, labels = crops(image_size)
        log(f"{name}: {CROPS} crops, batch {batch} and 1, {threads} threads")
        reference = outputs_of(eager_runner(model, config), x, batch)
        figures: dict = {"subject": name, "image_size": image_size, "batch_size": batch, "threads": threads,
                         "crops": CROPS, "score_mode": config.mode, "cpu_flags": flags}
        backends: dict[str, dict] = {}

        def record(backend: str, make: Callable[[], Runner], extra: dict | None = None) -> None:
            log(f"  {backend}")
            try:
                run = make()
                row = {**measure(run, x, batch, repeats), **compare(outputs_of(run, x, batch), reference, labels)}
            except Exception as error:  # any failure of a backend is a figure, not a crash
                backends[backend] = {"skipped": f"{type(error).__name__}: {error}"}
                return
            backends[backend] = {**row, **(extra or {})}

        record("torch_eager_fp32", lambda: eager_runner(model, config))
        onnx_path = Path(folder) / "scoring.onnx"
        try:
            started = time.perf_counter()
            export_onnx(model, config, onnx_path)
            export = {"export_seconds": time.perf_counter() - started}
        except Exception as error:
            export = {"skipped": f"ONNX export failed: {type(error).__name__}: {error}"}
        for backend, make in (
            ("onnxruntime", lambda: onnxruntime_runner(onnx_path, threads)),
            ("openvino_f32_latency", lambda: openvino_runner(onnx_path, threads, "f32", "LATENCY")),
            ("openvino_f32_throughput", lambda: openvino_runner(onnx_path, threads, "f32", "THROUGHPUT")),
            ("openvino_default_precision", lambda: openvino_runner(onnx_path, threads, None, "LATENCY")),
        ):
            if "skipped" in export:
                backends[backend] = dict(export)
            else:
                record(backend, make, export)

        compiled = torch.compile(ScoringPass(model, config))
        compile_run = torch_runner(compiled)
        started = time.perf_counter()
        try:
            for size in (batch, 1):
                compile_run(x[:size])
            compile_extra = {"compile_seconds": time.perf_counter() - started}
        except Exception as error:
            backends["torch_compile"] = {"skipped": f"torch.compile failed: {type(error).__name__}: {error}"}
        else:
            record("torch_compile", lambda: compile_run, compile_extra)

        if flags["avx512_bf16"] or flags["amx_bf16"]:
            record("torch_bf16_autocast", lambda: torch_runner(ScoringPass(model, config), bf16=True))
        else:
            backends["torch_bf16_autocast"] = {"skipped": "no bf16 in the CPU flags (avx512_bf16, amx_bf16)"}

    base = backends["torch_eager_fp32"]
    for row in backends.values():
        if "skipped" in row:
            continue
        row["speedup_vs_torch"] = row["images_per_second"] / base["images_per_second"]
        row["matches"] = (max(row["max_rel_diff_score"], row["max_rel_diff_terms"]) <= TOLERANCE
                          and row["auc"] == base["auc"])
        row["default_worthy"] = row["matches"] and row["speedup_vs_torch"] >= DEFAULT_SPEEDUP
    figures["backends"] = backends
    return figures


def table(figures: dict) -> str:
    """The figures of one subject as a text table."""
    lines = [f"{figures['subject']}: batch {figures['batch_size']}, {figures['threads']} threads, "
             f"{figures['crops']} crops, score {figures['score_mode']}",
             f"{'backend':28} {'img/s':>8} {'img/s b1':>9} {'speedup':>8} {'rel score':>10} {'rel terms':>10} "
             f"{'abs resid':>10} {'auc':>6} {'matches':>8} {'default':>8}"]
    for backend, row in figures["backends"].items():
        if "skipped" in row:
            lines.append(f"{backend:28} skipped: {row['skipped']}")
            continue
        lines.append(f"{backend:28} {row['images_per_second']:8.1f} {row['images_per_second_batch1']:9.1f} "
                     f"{row['speedup_vs_torch']:8.2f} {row['max_rel_diff_score']:10.2e} "
                     f"{row['max_rel_diff_terms']:10.2e} {row['max_abs_diff_residual']:10.2e} {row['auc']:6.3f} "
                     f"{row['matches']!s:>8} {row['default_worthy']!s:>8}")
        notes = {key: row[key] for key in ("export_seconds", "compile_seconds") if key in row}
        if notes:
            lines.append(" " * 29 + ", ".join(f"{key} {value:.1f}" for key, value in notes.items()))
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=2, help="threads of every backend")
    parser.add_argument("--sizes", type=int, nargs="+", default=[64], choices=[64, 220], help="subjects to run")
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--json", action="store_true", help="end with one JSON line of the figures")
    args = parser.parse_args()
    configure_torch(args.threads)
    results: dict = {"cpu_flags": cpu_flags(), "versions": versions(), "threads": args.threads}
    print(f"CPU flags: {results['cpu_flags']}; versions: {results['versions']}")
    for size in args.sizes:
        figures = backend_figures(args.threads, size, args.repeats)
        print(table(figures), flush=True)
        results[f"size_{size}"] = figures
    if args.json:
        print(json.dumps(results))


if __name__ == "__main__":
    main()
