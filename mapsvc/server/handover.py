"""Connections handed from one worker process of ``mapsvc serve`` to another, whole and unread.

A worker tells a request that changes something from a read by its first bytes, which it only
peeks at (:mod:`mapsvc.server.lanes`), so the connection can still go anywhere: it is sent, as an open
file descriptor (``SCM_RIGHTS``), to the one worker that takes reports, which reads the request
from its start and answers it. The sender closes its own descriptor; the client sees one
connection and one answer.

The workers of one server meet in a :class:`Meeting` that ``mapsvc serve`` makes before gunicorn
forks them, and that nothing outside the server can reach, as there is nothing on any file
system to find:

- a pair of connected Unix datagram sockets: the workers send on one end, the intake worker
  receives on the other. What is sent waits in the kernel's queue of that end, which every
  worker holds open, so a connection sent while no worker takes them (one died, the next is
  starting) waits for the next intake worker, and is not lost with the one that died.
- an anonymous file (a temporary file removed at once) whose POSIX lock (``lockf``) makes one
  process at a time the intake worker. Such locks belong to a process, not to the descriptor
  its workers inherit, and are let go when that process ends, however it ends; the next worker
  that tries takes it.

A send never waits: while the queue is full (a few connections, :data:`QUEUE_BYTES`: the intake
worker is stuck, or gone for longer than the queue lasts), the sender keeps the connection and
answers it itself. A stopping worker hands nothing over: it answers what it still has.
"""

from __future__ import annotations

import array
import errno
import fcntl
import os
import socket
import tempfile

#: The payload of a hand-over (the descriptor travels beside it).
_TOKEN = b"c"
#: Most connections taken from the queue at one wake-up.
_BATCH = 64
#: The send buffer of the workers' end, in bytes: it bounds the queue for every process at once. A
#: socket pair ignores the kernel's datagram queue length, so with Linux's default buffer 278
#: connections could wait there while the intake worker's threads are all held.
QUEUE_BYTES = 8192
#: Errors of a lock held by another process (anything else is a lock that cannot work here).
_HELD = (errno.EACCES, errno.EAGAIN)


class Meeting:
    """Where the workers of one server hand connections to the intake worker; made before they fork."""

    def __init__(self) -> None:
        self._outbox, self.inbox = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
        self._outbox.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, QUEUE_BYTES)
        self._outbox.setblocking(False)
        self.inbox.setblocking(False)
        self._lock = tempfile.TemporaryFile()  # noqa: SIM115 (held for the server's life; removed from its directory at once)
        self._held = False
        # A file system whose locks do not work (NFS without its lock daemon) fails here, in serve, not
        # silently in every worker.
        fcntl.lockf(self._lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        fcntl.lockf(self._lock, fcntl.LOCK_UN)

    def claim(self) -> bool:
        """Become the intake worker if no process is; return whether this process is it now."""
        if not self._held:
            try:
                fcntl.lockf(self._lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                self._held = True
            except OSError as error:
                if error.errno not in _HELD:
                    raise
        return self._held

    @property
    def held(self) -> bool:
        """Return whether this process is the intake worker."""
        return self._held

    def let_go(self) -> None:
        """Stop being the intake worker (a stopping worker): the next worker that tries becomes it."""
        if self._held:
            fcntl.lockf(self._lock, fcntl.LOCK_UN)
            self._held = False

    def send(self, conn: socket.socket) -> bool:
        """Hand the connection ``conn`` to the intake worker; return whether it was sent (then close yours)."""
        rights = (socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", [conn.fileno()]))
        try:
            self._outbox.sendmsg([_TOKEN], [rights])
        except OSError:  # the queue is full (BlockingIOError)
            return False
        return True

    def received(self, most: int = _BATCH) -> list[socket.socket]:
        """Return up to ``most`` connections waiting in the queue (without waiting), as sockets of this process."""
        taken: list[socket.socket] = []
        room = socket.CMSG_LEN(array.array("i").itemsize)
        for _ in range(min(most, _BATCH)):
            try:
                # socket.recv_fds would drop the flags (CPython 3.11 to 3.13): the descriptor must not
                # outlive this process in a program it starts.
                _, ancillary, _, _ = self.inbox.recvmsg(len(_TOKEN), room, getattr(socket, "MSG_CMSG_CLOEXEC", 0))
            except BlockingIOError:
                break
            for level, kind, data in ancillary:
                if (level, kind) == (socket.SOL_SOCKET, socket.SCM_RIGHTS):
                    fds = array.array("i")
                    fds.frombytes(data[: len(data) - len(data) % fds.itemsize])
                    for fd in fds:
                        os.set_inheritable(fd, False)  # where recvmsg could not say so (not Linux)
                        taken.append(socket.socket(fileno=fd))
        return taken

    def close(self) -> None:
        """Close this process's ends (tests; a server's meeting lasts as long as its processes)."""
        self._outbox.close()
        self.inbox.close()
        self._lock.close()
