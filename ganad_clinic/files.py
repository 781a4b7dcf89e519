"""File helpers every layer uses: the sha256 of a file, and writes that readers see whole or not at all.

A leaf module: it imports nothing of the package, so imaging, model, store, screening and report may
all use it. Every write goes to a temporary name beside its target (a name the folder watcher skips:
hidden, ending in `.partial`), is flushed to disk, then renamed onto the target in one step; if the
block fails (an error, a crash, Ctrl-C) the temporary file or folder is removed and the target is
left as it was.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

PARTIAL_SUFFIX = ".partial"
CHUNK_BYTES = 1 << 20


def file_sha256(path: str | os.PathLike[str]) -> str:
    """The hex sha256 of a file's bytes, read in chunks (a large slide is never held whole)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(CHUNK_BYTES), b""):
            digest.update(chunk)
    return digest.hexdigest()


def partial_name(path: str | os.PathLike[str]) -> Path:
    """A temporary name beside `path`, unique to this writer (two processes sharing a home may
    write the same file at once: each has its own temporary file, and the last to finish wins)."""
    path = Path(path)
    return path.with_name(f".{path.name}.{os.getpid()}-{uuid.uuid4().hex[:12]}{PARTIAL_SUFFIX}")


def fsync_file(path: str | os.PathLike[str]) -> None:
    """Flush a written file's bytes to the disk. Opened for writing: on Windows `os.fsync`
    (FlushFileBuffers) refuses a read-only handle."""
    with open(path, "r+b") as handle:
        os.fsync(handle.fileno())


def _fsync_folder(path: Path) -> None:
    """Flush a folder's entries (a rename into it) to the disk, where the platform allows it."""
    try:
        descriptor = os.open(path, os.O_RDONLY)
    except OSError:  # Windows cannot open a folder; its renames are durable without it
        return
    try:
        os.fsync(descriptor)
    except OSError:
        pass
    finally:
        os.close(descriptor)


@contextmanager
def atomic_output(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path beside `path` to write to; when the block ends normally the file is
    flushed to disk and renamed onto `path`, otherwise it is removed and `path` is left as it was."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = partial_name(path)
    try:
        yield partial
        fsync_file(partial)
        os.replace(partial, path)
        _fsync_folder(path.parent)
    finally:
        partial.unlink(missing_ok=True)


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> Path:
    """Write `data` to `path` atomically; returns `path`."""
    path = Path(path)
    with atomic_output(path) as partial:
        partial.write_bytes(data)
    return path


def atomic_copy(source: str | os.PathLike[str], destination: str | os.PathLike[str]) -> Path:
    """Copy `source` (its bytes and times) to `destination` atomically; returns `destination`."""
    destination = Path(destination)
    with atomic_output(destination) as partial:
        shutil.copy2(source, partial)
    return destination


@contextmanager
def atomic_folder(path: str | os.PathLike[str], *, replace: bool = True) -> Iterator[Path]:
    """Yield a new, empty temporary folder beside `path` to fill; when the block ends normally every
    file in it is flushed to disk and the folder is renamed onto `path`, otherwise it is removed.

    An existing `path` is replaced when `replace` is true (moved aside, the new folder moved in, the
    old one removed: a reader sees the old folder or the new one); otherwise it is refused with
    FileExistsError and left as it was."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    staging = partial_name(path)
    staging.mkdir()  # the folder's permissions are the umask's, as for any folder the program makes
    try:
        yield staging
        for folder, _, names in os.walk(staging):
            for name in names:
                if not os.path.islink(os.path.join(folder, name)):
                    fsync_file(os.path.join(folder, name))
        if not os.path.lexists(path):
            os.replace(staging, path)
        elif not replace:
            raise FileExistsError(f"{path} exists already")
        else:
            retired = path.with_name(f".{path.name}.{uuid.uuid4().hex[:12]}.retired")
            os.replace(path, retired)
            os.replace(staging, path)
            shutil.rmtree(retired, ignore_errors=True)
        _fsync_folder(path.parent)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
