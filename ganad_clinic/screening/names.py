"""Which file names in a watched folder are slides to take, and how a path is written down.

Scanners, browsers and copy tools write under a temporary or hidden name and rename the file when
it is complete; such names are skipped until the rename (the watcher follows moves). Everything
else is taken, including files that are not images: those are recorded as rejected with a reason,
so a technician sees that a dropped file was not screened instead of it being silently ignored.

Linux allows any bytes in a file name, and Python keeps those that are not UTF-8 as surrogate
escapes, which neither the database nor a terminal accepts. `path_text` writes such bytes as
`\\xNN`, the same way every time, so the same file is recognised again; `stored_path` turns the
text back into the file's path.
"""

from __future__ import annotations

import os
import re
from pathlib import Path, PurePath

TEMPORARY_SUFFIXES: frozenset[str] = frozenset({".part", ".tmp", ".crdownload", ".partial", ".download"})
"""Suffixes of files still being written by a copy tool or browser."""

HIDDEN_PREFIXES: tuple[str, ...] = (".", "~")
"""Hidden files (.DS_Store, .name.swp, rsync's .name.XXXX) and editor / Office lock files (~$x)."""

SYSTEM_FILES: frozenset[str] = frozenset({"thumbs.db", "desktop.ini"})
"""Files the operating system drops into folders by itself."""

_ESCAPED_BYTE = re.compile(rb"\\x([89a-f][0-9a-f])")
"""What `path_text` writes for a byte that is not UTF-8 (only bytes 0x80-0xff can be such)."""


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


def path_text(path: str | os.PathLike[str]) -> str:
    """The path as the database keeps it and people read it: unchanged, except that bytes of a
    name that are not UTF-8 are written `\\xNN` (b'bad\\xff.png' -> 'bad\\\\xff.png')."""
    return os.fsencode(path).decode("utf-8", "backslashreplace")


def stored_path(text: str) -> Path:
    """The file that `path_text` wrote as `text`. A name that really contains `\\xNN` reads as
    itself while that file exists; the one ambiguity is two such names in one folder."""
    if "\\x" not in text or os.path.lexists(text):
        return Path(text)
    raw = _ESCAPED_BYTE.sub(lambda match: bytes([int(match[1], 16)]), text.encode("utf-8"))
    return Path(os.fsdecode(raw))


def slide_file(archived_path: str | None, path: str) -> Path:
    """Where a slide's file is now: its archive copy when it was moved there, else where it arrived
    (also when the archive copy is gone but the original is still there: a move that failed half-way)."""
    if archived_path:
        archived = stored_path(archived_path)
        if archived.exists() or not stored_path(path).exists():
            return archived
    return stored_path(path)
