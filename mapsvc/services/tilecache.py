"""The tile proxy's disk cache: bounded in size, the deepest tiles evicted first, no precise time kept.

A tile lives at ``<folder>/<z>/<x>/<y>.png``. The workers of one host share a running total of
the cache's bytes in ``<folder>/.size``, changed under an exclusive ``flock``, so no request
walks the tree; a store that takes the total past ``TILE_CACHE_MAX_MB`` prunes (one worker at a
time, under ``.prune``): it measures the tree, deletes tiles until it holds at most
:data:`LOW_WATER` of the bound, and sets the total to what it found.

What a prune deletes: the deepest zoom level first (a zoom-18 tile serves a few streets, a
zoom-12 tile the whole city; a crawler's tiles are mostly deep), the oldest fetch day first
within a level; never a tile of the overview (zoom ``overview_max_zoom`` and shallower), so that
no crawl can push out the map everyone zooms in from.

A tile is fetched by one worker at a time: the fetch holds an exclusive ``flock`` on one of
:data:`FETCH_LOCKS` lock files in ``<folder>/.locks`` (chosen by the tile's numbers), and a worker
that waited reads the cache again before it asks the upstream. The lock files are made all at
once, the first time one is needed, and dated to the day; taking a lock changes no file time.

File times: a tile fetched at zoom 18 over someone's home at 03:12 would be a trace of who looked
where, and when. So every tile, the directories that hold it and the total's file get the start
of their UTC day as modification and access time (``os.utime``), and tiles are read with
``O_NOATIME`` so that a read does not set the access time (``relatime`` would). Eviction goes by
zoom level and that day, never by the access time. The inode change time (``ctime``) still says
when a file was last written, to the second, and no program can set it: put the cache on a
``tmpfs`` (nothing on disk; ``TILE_CACHE_DIR``) where that matters.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import tempfile
import time
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from mapsvc.core.tilegrid import LOW_WATER  # a prune leaves at most this share of the bound: prunes are rare

DAY_S = 86400

#: A temporary file this old was left by a worker that died while writing it.
ABANDONED_S = 3600

log = logging.getLogger(__name__)

SIZE_FILE = ".size"
PRUNE_LOCK = ".prune"
FETCH_LOCKS_FOLDER = ".locks"

#: Lock files the fetches share: two tiles of one lock are fetched one after the other.
FETCH_LOCKS = 64

#: Reads that leave the access time alone, where the system knows the flag.
_NOATIME = getattr(os, "O_NOATIME", 0)


def coarse_time(now: float | None = None) -> float:
    """Return the start of the UTC day of ``now`` (default: the wall clock), in Unix seconds."""
    moment = time.time() if now is None else now
    return float(int(moment) // DAY_S * DAY_S)


@dataclass(frozen=True)
class Kept:
    """A cached tile: its bytes, and the day it was fetched (Unix seconds)."""

    body: bytes
    fetched: float


@dataclass(frozen=True)
class _Entry:
    """A tile file as a prune sees it."""

    day: float
    zoom: int
    size: int
    path: Path


class TileCache:
    """The tiles under ``folder``, at most ``max_bytes`` of them (give or take one prune's worth).

    Tiles of zoom ``overview_max_zoom`` and shallower (the overview) are never evicted.
    """

    def __init__(self, folder: Path, max_bytes: int, overview_max_zoom: int = -1) -> None:
        self.folder = folder
        self.max_bytes = max_bytes
        self.overview_max_zoom = overview_max_zoom

    def path(self, z: int, x: int, y: int) -> Path:
        """Return where tile ``z/x/y`` is kept."""
        return self.folder / str(z) / str(x) / f"{y}.png"

    def read(self, z: int, x: int, y: int) -> Kept | None:
        """Return the kept tile, or None; the read leaves the file's access time as it was."""
        try:
            fd = _open_quietly(self.path(z, x, y))
        except OSError:
            return None
        with os.fdopen(fd, "rb") as source:
            fetched = os.fstat(source.fileno()).st_mtime
            return Kept(source.read(), fetched)

    @contextlib.contextmanager
    def fetching(self, z: int, x: int, y: int) -> Iterator[None]:
        """Hold tile ``z/x/y``'s lock, across this host's workers, while it is fetched and stored."""
        fd = os.open(self._fetch_lock(z, x, y), os.O_RDONLY)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # and with it the lock

    def _fetch_lock(self, z: int, x: int, y: int) -> Path:
        """Return the lock file of tile ``z/x/y``, making the lock files if there are none yet."""
        folder = self.folder / FETCH_LOCKS_FOLDER
        path = folder / str(zlib.crc32(f"{z}/{x}/{y}".encode()) % FETCH_LOCKS)
        if not path.exists():
            folder.mkdir(parents=True, exist_ok=True)
            day = coarse_time()
            for number in range(FETCH_LOCKS):  # all at once: when one was first needed tells of no tile
                lock = folder / str(number)
                os.close(os.open(lock, os.O_RDONLY | os.O_CREAT, 0o600))
                os.utime(lock, (day, day))
            self._coarsen_folders(folder, day)
        return path

    def store(self, z: int, x: int, y: int, body: bytes) -> None:
        """Keep a tile (atomically: a reader never sees half of it), then prune if over the bound."""
        path = self.path(z, x, y)
        path.parent.mkdir(parents=True, exist_ok=True)
        day = coarse_time()
        try:
            replaced = path.stat().st_size
        except OSError:
            replaced = 0
        fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".part")
        with os.fdopen(fd, "wb") as out:
            out.write(body)
        os.utime(tmp, (day, day))
        os.replace(tmp, path)
        total = self._add(len(body) - replaced)
        self._coarsen_folders(path.parent, day)
        if total > self.max_bytes:
            self.prune(keep=path)

    def size(self) -> int:
        """Return the running total of the cache's bytes (measured when there is none yet)."""
        return self._add(0)

    def _add(self, delta: int) -> int:
        """Add ``delta`` to the shared total under its lock; return the new total."""
        self.folder.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.folder / SIZE_FILE, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            text = os.pread(fd, 32, 0).strip()
            # No total yet: the tree as it is, the tile just stored included.
            total = max(0, int(text) + delta) if text.isdigit() else sum(e.size for e in self._entries())
            _rewrite(fd, total)
        finally:
            os.close(fd)
        return total

    def prune(self, keep: Path | None = None) -> None:
        """Delete tiles until the cache holds at most LOW_WATER of its bound (one worker at a time).

        The deepest zoom goes first (a deep tile serves fewer views), the oldest fetch day first
        within a zoom; the overview and ``keep``, the tile just stored, stay.
        """
        lock = os.open(self.folder / PRUNE_LOCK, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return  # another worker is pruning
            before = self._add(0)
            entries = list(self._entries())
            kept = sum(e.size for e in entries)
            kept = self._evict(self._evictable(entries, keep), kept)
            if kept > self.max_bytes * LOW_WATER:
                log.warning("tile cache: the overview's zoom levels alone fill the cache; raise TILE_CACHE_MAX_MB")
            # What other workers stored while this one measured stays counted.
            self._add(kept - before)
        finally:
            os.close(lock)
            self._coarsen_folders(self.folder, coarse_time())

    def _evictable(self, entries: list[_Entry], keep: Path | None) -> list[_Entry]:
        """Return the tiles a prune may delete, in the order it deletes them: deepest, then oldest."""
        deep = [e for e in entries if e.zoom > self.overview_max_zoom and e.path != keep]
        return sorted(deep, key=lambda e: (-e.zoom, e.day))

    def _evict(self, entries: list[_Entry], kept: int) -> int:
        """Delete ``entries`` in order until ``kept`` bytes are at most LOW_WATER of the bound; return what is left."""
        target = int(self.max_bytes * LOW_WATER)
        day = coarse_time()
        for entry in entries:
            if kept <= target:
                break
            with contextlib.suppress(FileNotFoundError):
                entry.path.unlink()
                kept -= entry.size
                self._coarsen_folders(entry.path.parent, day)
        return kept

    def _entries(self) -> Iterator[_Entry]:
        """Yield every kept tile; delete temporary files that a dead worker left behind."""
        now = time.time()
        for zoom_dir in _folders(self.folder):
            for column_dir in _folders(zoom_dir):
                for item in os.scandir(column_dir):
                    with contextlib.suppress(FileNotFoundError):
                        info = item.stat()
                        if item.name.endswith(".png"):
                            yield _Entry(info.st_mtime, int(zoom_dir.name), info.st_size, Path(item.path))
                        elif item.name.endswith(".part") and now - info.st_mtime > ABANDONED_S:
                            os.unlink(item.path)

    def _coarsen_folders(self, folder: Path, day: float) -> None:
        """Give ``folder`` and those above it, up to the cache's own, the day instead of the moment of a change."""
        for each in (folder, *folder.parents):
            with contextlib.suppress(OSError):
                os.utime(each, (day, day))
            if each == self.folder or self.folder not in each.parents:
                return


def _open_quietly(path: Path) -> int:
    """Open ``path`` for reading without touching its access time (where this process may ask that)."""
    try:
        return os.open(path, os.O_RDONLY | _NOATIME)
    except PermissionError:
        if not _NOATIME:
            raise
        return os.open(path, os.O_RDONLY)  # O_NOATIME needs the file's owner; relatime may then note the read


def _rewrite(fd: int, total: int) -> None:
    """Write the total into the locked file, dated to the day."""
    os.ftruncate(fd, 0)
    os.pwrite(fd, str(total).encode(), 0)
    day = coarse_time()
    os.utime(fd, (day, day))


def _folders(parent: Path) -> Iterator[Path]:
    """Yield the numbered folders in ``parent`` (zoom levels, columns)."""
    try:
        found = list(os.scandir(parent))
    except FileNotFoundError:
        return
    for item in found:
        if item.name.isdigit() and item.is_dir(follow_symlinks=False):
            yield Path(item.path)
