"""SQLite's writers take turns here, woken at once, instead of in SQLite's busy handler.

SQLite lets one transaction write at a time. A writer that finds the lock taken sleeps in
SQLite's busy handler, 1 ms at first and then up to 100 ms at a time, and tries again; writers
that try while it sleeps go first. Under load that is a lottery: measured with bench/load.py
(two workers, 200 readers of the map, 50 reports a second), ``BEGIN IMMEDIATE`` waited 1 ms at
the median and 1.8 s at the 95th percentile, for transactions that write in 6 ms.

So a store on a SQLite file queues its writers before ``BEGIN IMMEDIATE``: the threads of a
process on a lock of their own (woken in turn by the operating system), then one thread of each
process on an advisory lock of a file beside the database (``<database>-writers``), tried every
millisecond. The transaction then finds SQLite's lock free, unless a program outside mapsvc
holds it. Waiting is bounded: after ``timeout_s`` the writer gives up with
:class:`WritersBusy`, as SQLite's own busy timeout would.

The lock file stays empty; it is opened for reading only and made readable by all, so that a
command run as another user (root, from cron) first does not lock the service out of it.

A lock file's advisory lock belongs to its open file, which a forked child shares with its
parent: each process opens the file for itself, on its first write (``mapsvc serve`` makes the
store before it forks its workers).
"""

from __future__ import annotations

import fcntl
import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

#: How often a process's waiting writer tries the file lock again, in seconds.
POLL_S = 0.001


class WritersBusy(Exception):
    """Another writer held the database for longer than a writer may wait."""


class NoLockFile(Exception):
    """The lock file cannot be opened or made (the database's directory is gone, or not writable)."""


class WriterTurns:
    """One writer at a time among the threads of every process that uses one SQLite file."""

    def __init__(self, database: Path | None, timeout_s: float) -> None:
        """``database``: the SQLite file, or None for a store in memory (one process only)."""
        self.lock_path = None if database is None else database.with_name(database.name + "-writers")
        self.timeout_s = timeout_s
        self._threads = threading.Lock()
        self._holder = threading.local()
        self._fd: int | None = None
        self._pid = 0

    @contextmanager
    def turn(self) -> Iterator[None]:
        """Wait for this thread's turn to write, and hold it until the block ends.

        A thread that holds the turn already (a write inside a write) keeps it.
        """
        if getattr(self._holder, "depth", 0):
            self._holder.depth += 1
            try:
                yield
            finally:
                self._holder.depth -= 1
            return
        deadline = time.monotonic() + self.timeout_s
        if not self._threads.acquire(timeout=self.timeout_s):
            raise WritersBusy
        try:
            fd = self._file_lock(deadline)
            self._holder.depth = 1
            try:
                yield
            finally:
                self._holder.depth = 0
                if fd is not None:
                    fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            self._threads.release()

    def _file_lock(self, deadline: float) -> int | None:
        """Take the file lock (the caller holds the threads' lock); return its descriptor."""
        if self.lock_path is None:
            return None
        if self._pid != os.getpid():  # a forked child: its own open file, so its own lock
            try:
                self._fd = os.open(self.lock_path, os.O_RDONLY | os.O_CREAT | os.O_CLOEXEC, 0o644)
            except OSError as error:
                raise NoLockFile(str(error.strerror)) from error
            self._pid = os.getpid()
        assert self._fd is not None
        while True:
            try:
                fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return self._fd
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise WritersBusy from None
                time.sleep(POLL_S)
