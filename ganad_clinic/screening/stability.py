"""Files seen in a watched folder, each held back until it has stopped changing.

watchdog reports a file when it is created, before it is fully written, and reports it again on
every write; network shares may report nothing at all. So events and rescans only *offer* a path,
and a path is taken once its size, modification time and inode have stayed the same for a quiet
period. A path already handled is remembered with the signature it had, so repeated events and
periodic rescans of the same unchanged file cost one `stat` and nothing more. A path may be offered
with a longer quiet period of its own: ingest asks for that when a file looks unfinished.
"""

from __future__ import annotations

import os
import stat
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple


class FileSignature(NamedTuple):
    """What must stay the same for a file to count as completely written."""

    size: int
    mtime_ns: int
    inode: int


class StableFile(NamedTuple):
    """A file taken from the tracker: unchanged for `unchanged_for` seconds (at least the quiet period)."""

    path: Path
    inbox: Path
    signature: FileSignature
    unchanged_for: float


REFUSED = FileSignature(-1, -1, -1)
"""The signature of a path whose `stat` is refused (in a folder the service may not enter): it
stays the same while refused, so such a path is taken, rejected with its reason and settled like
any other, and looked at again once it can be seen."""


def file_signature(path: str | os.PathLike[str]) -> FileSignature | None:
    """The file's signature, or None when it does not exist or is not a regular file (nor a link
    to one).

    A symbolic link has its own signature, not its target's: a link is settled by its own identity,
    so one leading outside the inbox (never followed) is not offered again whenever its target
    changes, and one leading nowhere (a loop, a missing target) is taken and rejected with its
    reason instead of waited for forever. A link inside the inbox is looked at again when the link
    changes; its target, in the inbox too, is screened on its own. Other errors propagate.
    """
    try:
        info = os.lstat(path)
    except (FileNotFoundError, NotADirectoryError):
        return None
    except PermissionError:
        return REFUSED
    if stat.S_ISLNK(info.st_mode):
        try:
            target = os.stat(path)
        except OSError:
            return FileSignature(info.st_size, info.st_mtime_ns, info.st_ino)
        if not stat.S_ISREG(target.st_mode):
            return None
    elif not stat.S_ISREG(info.st_mode):
        return None
    return FileSignature(info.st_size, info.st_mtime_ns, info.st_ino)


@dataclass
class _Watched:
    inbox: Path
    signature: FileSignature | None
    unchanged_since: float
    quiet_seconds: float


class StabilityTracker:
    """Thread-safe: watchdog threads offer paths, the service's worker takes the stable ones."""

    def __init__(
        self,
        quiet_seconds: float,
        *,
        clock: Callable[[], float] = time.monotonic,
        on_offer: Callable[[], None] | None = None,
    ) -> None:
        if quiet_seconds < 0:
            raise ValueError(f"quiet_seconds must not be negative, got {quiet_seconds}")
        self.quiet_seconds = quiet_seconds
        self._clock = clock
        self._on_offer = on_offer
        self._lock = threading.Lock()
        self._watched: dict[Path, _Watched] = {}
        self._settled: dict[Path, FileSignature] = {}

    def __len__(self) -> int:
        with self._lock:
            return len(self._watched)

    def offer(self, path: str | os.PathLike[str], inbox: str | os.PathLike[str], *,
              quiet_seconds: float | None = None) -> bool:
        """Start watching `path` unless it is watched already or was handled in its current state;
        it is taken once unchanged for `quiet_seconds` (default: the tracker's quiet period), or
        for the quiet period after it changes again. Returns whether the path is (now) watched."""
        path = Path(path)
        try:
            signature = file_signature(path)
        except OSError:
            signature = None
        with self._lock:
            if path in self._watched:
                return True
            if signature is not None and self._settled.get(path) == signature:
                return False
            self._settled.pop(path, None)
            quiet = self.quiet_seconds if quiet_seconds is None else quiet_seconds
            self._watched[path] = _Watched(Path(inbox), signature, self._clock(), quiet)
        if self._on_offer is not None:
            self._on_offer()
        return True

    def take_stable(self, limit: int | None = None) -> list[StableFile]:
        """Stat every watched path; return those unchanged for their quiet period, oldest first,
        and stop watching them. Vanished paths are dropped."""
        now = self._clock()
        with self._lock:
            candidates = list(self._watched.items())
        stable: list[StableFile] = []
        vanished: list[Path] = []
        for path, watched in candidates:
            try:
                signature = file_signature(path)
            except OSError:  # e.g. locked by its writer: still changing
                watched.signature, watched.unchanged_since = None, now
                continue
            if signature is None:
                vanished.append(path)
            elif signature != watched.signature:
                watched.signature, watched.unchanged_since = signature, now
                watched.quiet_seconds = self.quiet_seconds  # it moved: judge it afresh once it rests
            elif now - watched.unchanged_since >= watched.quiet_seconds:
                stable.append(StableFile(path, watched.inbox, signature, now - watched.unchanged_since))
        stable.sort(key=lambda item: item.unchanged_for, reverse=True)
        taken = stable if limit is None else stable[:limit]
        with self._lock:
            for path in vanished:
                self._watched.pop(path, None)
            for item in taken:
                self._watched.pop(item.path, None)
        return taken

    def settle(self, path: str | os.PathLike[str], signature: FileSignature) -> None:
        """Remember that `path` was handled while it had `signature`. An offer made while it was
        being handled (its writer's closing event, a rescan) is dropped when the file is still as
        it was handled, so that the same content is not taken, and reported, a second time."""
        path = Path(path)
        try:
            current = file_signature(path)
        except OSError:
            current = None
        with self._lock:
            self._settled[path] = signature
            if current == signature:
                self._watched.pop(path, None)

    def accounted_for(self, path: str | os.PathLike[str], signature: FileSignature) -> bool:
        """Whether `path` is watched again or was handled with `signature`: a batch retried after
        a database error skips it, so that no result is reported twice."""
        with self._lock:
            return Path(path) in self._watched or self._settled.get(Path(path)) == signature

    def forget(self, path: str | os.PathLike[str]) -> None:
        """Drop everything known about `path` (it was moved away, or must be looked at afresh)."""
        with self._lock:
            self._settled.pop(Path(path), None)
            self._watched.pop(Path(path), None)

    def keep_settled_only(self, existing: Iterable[Path]) -> None:
        """Forget handled paths that are no longer on disk, so memory follows the inbox."""
        present = set(existing)
        with self._lock:
            for path in [path for path in self._settled if path not in present]:
                del self._settled[path]
