"""Watch inbox folders with watchdog and rescan them, offering every candidate file to a tracker.

Events are only hints (they come early, twice, or not at all on network shares): each one offers
a path to the `StabilityTracker`, which decides when the file is complete. A full rescan on start
and at intervals catches files that arrived while the service was down and events that were lost;
it also restarts the observer if its thread has died (watchdog's polling thread can die silently
after a network outage), and notices an inbox folder deleted or replaced, whose events stop without
a word: it says so, and watches the folder again once it is back.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable, Sequence
from pathlib import Path

from watchdog.events import FileSystemEvent, FileSystemEventHandler
from watchdog.observers import Observer
from watchdog.observers.api import BaseObserver
from watchdog.observers.polling import PollingObserver

from ganad_clinic.screening.names import is_hidden_folder, is_slide_name, path_text

Offer = Callable[[Path, Path], object]
"""Called with (file path, the inbox it was found in)."""

POLLING_INTERVAL_S = 1.0
"""How often the polling observer (for network shares) lists the folders."""


class _InboxHandler(FileSystemEventHandler):
    def __init__(self, watcher: FolderWatcher, inbox: Path) -> None:
        self._watcher = watcher
        self._inbox = inbox

    def on_created(self, event: FileSystemEvent) -> None:
        self._watcher.consider(_text(event.src_path), self._inbox, event.is_directory)

    def on_modified(self, event: FileSystemEvent) -> None:
        if not event.is_directory:
            self._watcher.consider(_text(event.src_path), self._inbox, False)

    def on_closed(self, event: FileSystemEvent) -> None:
        self._watcher.consider(_text(event.src_path), self._inbox, False)

    def on_moved(self, event: FileSystemEvent) -> None:
        """A temporary name renamed to its final name, or a file moved into the folder."""
        self._watcher.consider(_text(event.dest_path), self._inbox, event.is_directory)


class FolderWatcher:
    """Inbox folders, watched by one observer (inotify & co., or polling for network shares)."""

    def __init__(
        self,
        inboxes: Sequence[str | os.PathLike[str]],
        offer: Offer,
        *,
        recursive: bool = False,
        poll: bool = False,
        exclude: Sequence[str | os.PathLike[str]] = (),
    ) -> None:
        self.inboxes = tuple(Path(inbox).absolute() for inbox in inboxes)
        self.recursive = recursive
        self.poll = poll
        self._offer = offer
        self._exclude = tuple(Path(path).absolute() for path in exclude)
        self._observer: BaseObserver | None = None
        self._identities: dict[Path, tuple[int, int] | None] = {}

    def start(self) -> None:
        for inbox in self.inboxes:
            if not inbox.is_dir():
                raise FileNotFoundError(f"inbox folder {inbox} does not exist or is not a folder")
        self._arm()

    def _arm(self) -> None:
        """Start an observer on the inboxes there are now, remembering which folder each one is."""
        self._identities = {inbox: _identity(inbox) for inbox in self.inboxes}
        observer = PollingObserver(timeout=POLLING_INTERVAL_S) if self.poll else Observer()
        for inbox, identity in self._identities.items():
            if identity is not None:
                observer.schedule(_InboxHandler(self, inbox), str(inbox), recursive=self.recursive)
        observer.daemon = True
        observer.start()
        self._observer = observer

    def stop(self) -> None:
        if self._observer is not None:
            self._observer.stop()
            self._observer.join(timeout=5)
            self._observer = None

    def is_alive(self) -> bool:
        return self._observer is not None and self._observer.is_alive()

    def restart_if_dead(self) -> bool:
        """Restart a dead observer; returns whether it had to."""
        if self._observer is None or self._observer.is_alive():
            return False
        self.stop()
        self._arm()
        return True

    def check_inboxes(self) -> list[str]:
        """Notice inbox folders deleted, replaced or back since the observer was started, and
        restart it on the folders there are now. Returns what changed, in words."""
        if self._observer is None:
            return []
        messages = []
        for inbox, known in self._identities.items():
            now = _identity(inbox)
            if now == known:
                continue
            if now is None:
                messages.append(f"the inbox folder {path_text(inbox)} has disappeared; files dropped into it "
                                "are taken once it is back")
            elif known is None:
                messages.append(f"the inbox folder {path_text(inbox)} is back; watching it again")
            else:
                messages.append(f"the inbox folder {path_text(inbox)} was replaced by a new folder; "
                                "watching the new one")
        if messages:
            self.stop()
            self._arm()
        return messages

    def consider(self, path: str, inbox: Path, is_directory: bool) -> None:
        """Offer `path` if it is a candidate slide of `inbox`; a folder moved or created inside a
        recursive inbox is scanned, since its files raise no events of their own."""
        candidate = Path(path)
        if self._excluded(candidate) or not self._belongs(candidate, inbox):
            return
        if is_directory:
            if self.recursive and not is_hidden_folder(candidate.name):
                for file in self._files_under(candidate):
                    self._offer(file, inbox)
            return
        if is_slide_name(candidate):
            self._offer(candidate, inbox)

    def scan(self) -> list[Path]:
        """Offer every candidate file in the inboxes; returns the files found (offered or not)."""
        found: list[Path] = []
        for inbox in self.inboxes:
            for file in self._files_under(inbox):
                found.append(file)
                self._offer(file, inbox)
        return found

    def _files_under(self, folder: Path) -> list[Path]:
        files: list[Path] = []
        for root, folders, names in os.walk(folder):
            root_path = Path(root)
            folders[:] = sorted(
                name for name in folders
                if self.recursive and not is_hidden_folder(name) and not self._excluded(root_path / name)
            )
            files.extend(root_path / name for name in sorted(names) if is_slide_name(name))
        return files

    def _belongs(self, path: Path, inbox: Path) -> bool:
        if self.recursive:
            return path.is_relative_to(inbox) and not any(
                is_hidden_folder(part) for part in path.relative_to(inbox).parts[:-1]
            )
        return path.parent == inbox

    def _excluded(self, path: Path) -> bool:
        return any(path == excluded or path.is_relative_to(excluded) for excluded in self._exclude)


def _text(path: str | bytes) -> str:
    return os.fsdecode(path)


def _identity(folder: Path) -> tuple[int, int] | None:
    """Which folder is at `folder` now (device, inode), or None when there is none."""
    try:
        info = os.stat(folder)
    except OSError:
        return None
    return (info.st_dev, info.st_ino) if stat.S_ISDIR(info.st_mode) else None
