"""Connections handed from one worker process of ``mapsvc serve`` to another, whole and unread.

A worker tells a request that changes something from a read by its first bytes, which it only
peeks at (:mod:`mapsvc.lanes`), so the connection can still go anywhere: it is sent, as an open
file descriptor (``SCM_RIGHTS``), over a Unix datagram socket to the one worker that takes
reports, which reads the request from its start and answers it. The sender closes its own
descriptor; the client sees one connection and one answer.

The workers of one server meet in a directory of its own, made by ``mapsvc serve`` before it
forks them and readable by its user only (so no other local user can take the connections):

- ``intake.lock``: the worker that holds its lock (``flock``) is the intake worker. The lock
  is let go when that process ends, however it ends, and the next worker that tries takes it.
- ``intake.sock``: the socket the intake worker receives connections on.

A send never waits: when no worker holds the lock (it is restarting) or its queue is full, the
sender keeps the connection and answers it itself. A connection sent to an intake worker that
dies before it takes it is closed unanswered, as a connection to a worker killed in the middle
of a request would be: the phone keeps the report and sends it again (with its idempotency key).
"""

from __future__ import annotations

import array
import contextlib
import fcntl
import os
import socket
from pathlib import Path

#: Files in the meeting directory.
LOCK_NAME = "intake.lock"
SOCKET_NAME = "intake.sock"
#: The payload of a hand-over (the descriptor travels beside it).
_TOKEN = b"c"
#: Most connections taken from the queue at one wake-up.
_BATCH = 64


class Handover:
    """One worker's end of the meeting directory ``directory``: it can claim the intake, or send to it."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.address = str(directory / SOCKET_NAME)
        self._lock: int | None = None
        self._out: socket.socket | None = None

    def claim(self) -> socket.socket | None:
        """Become the intake worker if no process is: return the socket connections arrive on, else None."""
        fd = os.open(self.directory / LOCK_NAME, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return None
        self._lock = fd  # held until this process ends
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.address)  # left by an intake worker that died
        inbox = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        inbox.bind(self.address)
        inbox.setblocking(False)
        return inbox

    def send(self, conn: socket.socket) -> bool:
        """Hand the connection ``conn`` to the intake worker; return whether it took it (then close yours)."""
        if self._out is None:
            self._out = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        try:
            # socket.send_fds would drop the flags and the address (CPython 3.11 to 3.13 pass neither on).
            rights = (socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", [conn.fileno()]))
            self._out.sendmsg([_TOKEN], [rights], socket.MSG_DONTWAIT, self.address)
        except OSError:  # no intake worker now (no socket, or nobody bound to it), or its queue is full
            return False
        return True

    def close(self) -> None:
        """Close this end's sending socket (the intake's lock stays held until the process ends)."""
        if self._out is not None:
            self._out.close()
            self._out = None


def received(inbox: socket.socket) -> list[socket.socket]:
    """Return the connections waiting on ``inbox`` (non-blocking), as sockets of this process."""
    taken: list[socket.socket] = []
    for _ in range(_BATCH):
        try:
            _, fds, _, _ = socket.recv_fds(inbox, len(_TOKEN), 1)
        except BlockingIOError:
            break
        taken += [socket.socket(fileno=fd) for fd in fds]
    return taken
