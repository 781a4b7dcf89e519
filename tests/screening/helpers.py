"""Builders shared by the screening, command-line and end-to-end tests."""

from __future__ import annotations

import struct
import threading
import time
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from io import BytesIO
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from ganad_clinic.imaging.synthetic import crop_rng, generate_cell
from ganad_clinic.model.bundle import load_bundle, save_bundle
from ganad_clinic.model.trainer import TrainConfig, train
from ganad_clinic.screening import ScreeningService, ServiceConfig, SlideRejected, SlideScored
from ganad_clinic.screening.registry import import_bundle
from ganad_clinic.store import ModelVersion, Store, open_store

TINY_CROP = 48


def train_tiny_bundle(out: Path, seed: int = 0) -> Path:
    """A tiny model (32 px, 4 steps) trained on 48-px synthetic crops; its bundle records that
    crop size, so images up to 72 px are scored whole and larger ones are tiled."""
    def cells(n: int, blast: bool, start: int = 0) -> list[np.ndarray]:
        return [generate_cell(crop_rng(seed, blast, start + i), blast, size=TINY_CROP).astype(np.float32) / 255
                for i in range(n)]

    config = TrainConfig(spec="all", image_size=32, width=0.125, latent=16, batch_size=4, steps=4,
                         eval_every=2, seed=seed)
    result = train(config, cells(8, False), cells(3, False, 8) + cells(3, True), [0, 0, 0, 1, 1, 1],
                   cells(12, False, 11))
    return save_bundle(out, result.model, result.score_config, result.operating_point,
                       training={"crop_size": TINY_CROP, "n_train": 8}, validation_metrics=result.validation_metrics)


def nudged_model(store: Store, bundle_path: Path, home: Path, folder: Path) -> ModelVersion:
    """The tiny model with one weight nudged, registered: another sha256 and the same version
    string and calibration size."""
    bundle = load_bundle(bundle_path)
    with torch.no_grad():
        next(bundle.model.parameters()).add_(0.01)
    path = save_bundle(folder / "other", bundle.model, bundle.score_config, bundle.operating_point(),
                       training=bundle.metadata["ganad"]["training"])
    return import_bundle(store, path, home, actor="tester").model


_TINY_BUNDLES: dict[int, Path] = {}


def tiny_bundle_once(factory: pytest.TempPathFactory, seed: int = 0) -> Path:
    """Train each tiny model once per test session, whichever test folder asks for it first."""
    if seed not in _TINY_BUNDLES:
        _TINY_BUNDLES[seed] = train_tiny_bundle(factory.mktemp("bundle") / f"tiny-{seed}", seed)
    return _TINY_BUNDLES[seed]


def noise_image(seed: int, height: int = 40, width: int = 40) -> np.ndarray:
    """A unique little RGB image (uint8): distinct seeds give distinct files."""
    return np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)


def write_png(path: Path, seed: int, height: int = 40, width: int = 40) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(noise_image(seed, height, width)).save(path)
    return path


def png_bytes(seed: int, height: int = 40, width: int = 40) -> bytes:
    buffer = BytesIO()
    Image.fromarray(noise_image(seed, height, width)).save(buffer, format="PNG")
    return buffer.getvalue()


def image_bytes(seed: int, kind: str = "PNG", height: int = 40, width: int = 40, pages: int = 1,
                gray: bool = False) -> bytes:
    """A unique little image file's bytes in any format Pillow writes; `pages` > 1 for a multi-page TIFF."""
    images = [Image.fromarray(noise_image(seed + page, height, width)) for page in range(pages)]
    if gray:
        images = [image.convert("L") for image in images]
    buffer = BytesIO()
    images[0].save(buffer, format=kind, **({"save_all": True, "append_images": images[1:]} if pages > 1 else {}))
    return buffer.getvalue()


def write_slowly(path: Path, data: bytes, chunks: int = 3, pause: float = 0.04) -> None:
    """Write `data` as a scanner might: in chunks, flushed, with a pause after each."""
    size = max(1, -(-len(data) // chunks))
    with open(path, "wb") as handle:
        for start in range(0, len(data), size):
            handle.write(data[start:start + size])
            handle.flush()
            time.sleep(pause)


def wait_until(condition: Callable[[], object], timeout: float = 30.0, interval: float = 0.05) -> None:
    """Poll `condition` until it is true; fail the test after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s")
        time.sleep(interval)


class Collector:
    """Collects a service's events (from its worker thread) for assertions."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.scored: list[SlideScored] = []
        self.rejected: list[SlideRejected] = []
        self.errors: list[str] = []
        self.threads: set[str] = set()

    def on_scored(self, event: SlideScored) -> None:
        with self.lock:
            self.scored.append(event)
            self.threads.add(threading.current_thread().name)

    def on_rejected(self, event: SlideRejected) -> None:
        with self.lock:
            self.rejected.append(event)

    def on_error(self, message: str) -> None:
        with self.lock:
            self.errors.append(message)

    def names(self) -> set[str]:
        with self.lock:
            return {event.path.name for event in self.scored + self.rejected}

    def listeners(self) -> dict[str, Callable]:
        return {"on_scored": self.on_scored, "on_rejected": self.on_rejected, "on_error": self.on_error}


def bomb_png_bytes(width: int = 100_000, height: int = 100_000) -> bytes:
    """A small PNG whose header declares an enormous image (a decompression bomb)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 64)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


@contextmanager
def screening(bundle: Path, config: ServiceConfig, collector: Collector,
              **listeners: Callable) -> Iterator[ScreeningService]:
    """A service screening with `config`, its store at `config.home` with `bundle` active, running
    for the with-block; stop it inside the block to look at `service.store` once it has stopped."""
    with open_store(home=config.home) as store:
        import_bundle(store, bundle, config.home, actor="tester")
        service = ScreeningService(store, config, **collector.listeners(), **listeners)
        service.start()
        try:
            yield service
        finally:
            assert service.stop(30)
