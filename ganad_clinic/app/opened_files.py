"""Files opened or dropped onto the window go through the same path as watched ones: they are
copied into the app's own inbox, where the screening service ingests and scores them (no Qt here)."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from ganad_clinic.files import atomic_copy, file_sha256
from ganad_clinic.imaging.io import SUPPORTED_SUFFIXES


def is_image_file(path: Path) -> bool:
    return path.is_file() and path.suffix.lower() in SUPPORTED_SUFFIXES


def stage_for_screening(paths: Iterable[Path], inbox: Path) -> list[Path]:
    """Copy each file into `inbox` atomically (files.atomic_copy: written under a hidden `.partial`
    name the watcher skips, then renamed, so it never sees half a copy). A name already taken by
    other content gets a number; the same content under the same name is not copied again.
    Returns the inbox paths."""
    inbox.mkdir(parents=True, exist_ok=True)
    staged = []
    for source in paths:
        destination = _free_name(inbox, source)
        if not destination.exists():
            atomic_copy(source, destination)
        staged.append(destination)
    return staged


def _free_name(inbox: Path, source: Path) -> Path:
    candidate = inbox / source.name
    number = 1
    while candidate.exists() and file_sha256(candidate) != file_sha256(source):
        number += 1
        candidate = inbox / f"{source.stem}-{number}{source.suffix}"
    return candidate
