"""Moving handled files out of the inbox, only after their result is committed.

The destination is written to the database first and the file moved second: if the process dies
in between, the next rescan finds the file still in the inbox, recognises its slide and finishes
the move to the recorded place. Rejected files go to a `rejected/` subfolder, so a technician can
find them; subfolders of a recursive inbox are kept.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from ganad_clinic.screening.names import path_text, stored_path
from ganad_clinic.store import Slide, Store

REJECTED_FOLDER = "rejected"


class Archiver:
    def __init__(self, folder: str | os.PathLike[str], store: Store) -> None:
        self.folder = Path(folder).absolute()
        self.store = store

    def archive(self, slide: Slide, path: Path, inbox: Path, *, rejected: bool = False) -> Path:
        """Move `path` (the file of `slide`, whose result is committed) into the archive. Where the
        slide was archived is recorded once: a later copy of the same file goes beside it."""
        destination = self._destination(slide, path, inbox, rejected)
        if slide.archived_path is None:
            self.store.mark_archived(slide.id, path_text(destination))
        destination.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(path, destination)
        return destination

    def _destination(self, slide: Slide, path: Path, inbox: Path, rejected: bool) -> Path:
        if slide.archived_path and not stored_path(slide.archived_path).exists():
            return stored_path(slide.archived_path)
        base = self.folder / REJECTED_FOLDER if rejected else self.folder
        relative = path.relative_to(inbox) if path.is_relative_to(inbox) else Path(path.name)
        candidate = base / relative
        number = 0
        while candidate.exists():
            number += 1
            suffix = f"-{slide.id}" if number == 1 else f"-{slide.id}-{number}"
            candidate = candidate.with_name(f"{relative.stem}{suffix}{relative.suffix}")
        return candidate
