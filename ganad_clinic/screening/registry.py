"""The model registry's file side: importing bundles into the home folder, loading registered ones.

Import verifies the bundle (`load_bundle` checks its seal, weights and settings) and copies it to
a new folder `<home>/models/<registry version>/`, so the registry never points at a folder the user
may delete. Import never deletes or overwrites anything but its own temporary copy: the folder name
comes from the bundle's checked version and must be a new child of `<home>/models`. The same bundle
(same seal) is one registry entry, however often it is imported. Bundles made by `ganad train` all
say version 1.0.0, so a version already registered with another bundle is registered as
`<version>+<first 8 hex digits of its seal>` (PEP 440's local-version form).
"""

from __future__ import annotations

import getpass
import math
import os
import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ganad_clinic.errors import GanadError
from ganad_clinic.files import atomic_folder
from ganad_clinic.model.bundle import METADATA, WEIGHTS, Bundle, BundleError, load_bundle
from ganad_clinic.store import ModelVersion, Store, resolve_home
from ganad_clinic.store.engine import MODELS_FOLDER

SHA_PREFIXES = (8, 12, 16, 24, 32)


class RegistryError(GanadError):
    """The registry cannot give a usable model; the message says what to do."""


@dataclass(frozen=True)
class ImportedModel:
    model: ModelVersion
    created: bool  # False: these weights were registered already


def current_actor() -> str:
    """Who is doing this, for the audit trail: the operating-system user."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def registry_version(version: str, sha256: str, taken: set[str]) -> str:
    """`version`, or `version+<sha prefix>` when another model already uses that version."""
    if version not in taken:
        return version
    for length in SHA_PREFIXES:
        candidate = f"{version}+{sha256[:length]}"
        if candidate not in taken:
            return candidate
    raise RegistryError(f"cannot find a free registry version for {version} ({sha256})")


def import_bundle(
    store: Store, bundle_path: str | os.PathLike[str], home: str | os.PathLike[str] | None, *, actor: str
) -> ImportedModel:
    """Verify, copy and register a bundle; the first model of an empty registry becomes active.

    Raises BundleError when the bundle cannot be used.
    """
    bundle = load_bundle(bundle_path)
    registered = store.list_model_versions()
    for model in registered:
        if model.sha256 == bundle.sha256:
            return ImportedModel(model, created=False)
    version = registry_version(bundle.version, bundle.sha256, {model.version for model in registered})
    destination = _copy_into_home(bundle, version, home, {Path(model.bundle_path) for model in registered})
    try:
        metrics = _finite(bundle.metadata["ganad"].get("validation_metrics") or {})
        model = store.register_model_version(version, destination, bundle.sha256, actor=actor, metrics=metrics)
        store.audit(actor, "model.imported", {"version": version, "source": str(Path(bundle_path).absolute()),
                                              "bundle_version": bundle.version, "copied_to": str(destination)})
    except BaseException:
        shutil.rmtree(destination, ignore_errors=True)
        raise
    return ImportedModel(model, created=True)


def _copy_into_home(bundle: Bundle, version: str, home: str | os.PathLike[str] | None, in_use: set[Path]) -> Path:
    """Copy the bundle's two files (its metadata and weights, the seal's whole content) to a new
    folder under `<home>/models/`, via a temporary name, and verify the copy."""
    models = resolve_home(home) / MODELS_FOLDER
    models.mkdir(parents=True, exist_ok=True)
    destination = _new_model_folder(models, version, bundle.sha256, in_use)
    with atomic_folder(destination, replace=False) as staging:
        for part in (METADATA, WEIGHTS):  # nothing else: a bundle folder may hold links to anything
            (staging / part).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(bundle.path / part, staging / part)
        copied = load_bundle(staging)
        if copied.sha256 != bundle.sha256:
            raise BundleError(f"model bundle {bundle.path}: the copy in {models} does not match the original")
    return destination


def _new_model_folder(models: Path, version: str, sha256: str, in_use: set[Path]) -> Path:
    """A folder name for `version` that is a direct child of `models` and exists nowhere yet: a
    left-over of an interrupted import, or a folder the user made, is never replaced."""
    for name in (version, f"{version}-{sha256[:12]}", f"{version}-{sha256[:12]}-{uuid.uuid4().hex[:8]}"):
        candidate = models / name
        if name in (".", "..") or os.sep in name or (os.altsep and os.altsep in name) \
                or candidate.resolve().parent != models.resolve():
            raise RegistryError(f"model version {version!r} cannot name a folder under {models}")
        if candidate not in in_use and not os.path.lexists(candidate):
            return candidate
    raise RegistryError(f"cannot find a free folder for model version {version} under {models}")


def _finite(metrics: dict[str, Any]) -> dict[str, Any]:
    """Metrics fit for JSON on every database: NaN (e.g. an AUC without anomalies) becomes null."""
    return {key: None if isinstance(value, float) and not math.isfinite(value) else value
            for key, value in metrics.items()}


def find_model_version(store: Store, version: str | None) -> ModelVersion:
    """The registered model `version`, or the active one when `version` is None."""
    if version is None:
        active = store.active_model_version()
        if active is None:
            raise RegistryError("no model is active in the registry: import one with "
                                "`ganad models import BUNDLE` (or pass --bundle)")
        return active
    for model in store.list_model_versions():
        if model.version == version:
            return model
    raise RegistryError(f"model version {version} is not registered; see `ganad models list`")


def load_registered(model: ModelVersion, device: str = "cpu") -> Bundle:
    """Load a registered bundle and check that it still holds the weights that were registered."""
    try:
        bundle = load_bundle(model.bundle_path, device)
    except BundleError as error:
        raise RegistryError(f"registered model {model.version} cannot be loaded: {error}") from None
    if bundle.sha256 != model.sha256:
        raise RegistryError(f"registered model {model.version}: the bundle at {model.bundle_path} holds other "
                            "weights or settings than were registered; re-import the model")
    return bundle
