"""Which file names in a watched folder are slides to take, and which are not (yet).

Scanners, browsers and copy tools write under a temporary or hidden name and rename the file when
it is complete; such names are skipped until the rename (the watcher follows moves). Everything
else is taken, including files that are not images: those are recorded as rejected with a reason,
so a technician sees that a dropped file was not screened instead of it being silently ignored.
"""

from __future__ import annotations

from pathlib import PurePath

TEMPORARY_SUFFIXES: frozenset[str] = frozenset({".part", ".tmp", ".crdownload", ".partial", ".download"})
"""Suffixes of files still being written by a copy tool or browser."""

HIDDEN_PREFIXES: tuple[str, ...] = (".", "~")
"""Hidden files (.DS_Store, .name.swp, rsync's .name.XXXX) and editor / Office lock files (~$x)."""

SYSTEM_FILES: frozenset[str] = frozenset({"thumbs.db", "desktop.ini"})
"""Files the operating system drops into folders by itself."""


def is_slide_name(path: str | PurePath) -> bool:
    """True when the file at `path` should be taken now (its name is final and not a system file)."""
    name = PurePath(path).name
    lowered = name.lower()
    if not name or name.startswith(HIDDEN_PREFIXES) or lowered in SYSTEM_FILES:
        return False
    return PurePath(lowered).suffix not in TEMPORARY_SUFFIXES


def is_hidden_folder(name: str) -> bool:
    """Folders skipped by recursive scans: hidden ones, where sync tools keep their state."""
    return name.startswith(HIDDEN_PREFIXES)
