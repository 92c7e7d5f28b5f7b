"""The gunicorn worker of ``mapsvc serve``: requests that change something have threads of their own.

gunicorn's threaded worker hands each request that has arrived to one pool of threads, first
come first served. While a city checks the map, every thread is busy with reads and a report
waits behind all the reads that came before it (Little's law: as long as the reads' own
latency). A report also holds its thread for ``INTAKE_ANSWER_MS`` (200 ms) before it answers,
so that its timing tells nothing of merges: at 50 reports a second that is 10 threads busy
sleeping, more than two workers of four threads have. Measured (bench/load.py, demo data,
2 workers, 200 readers of the map's URL and 50 reports a second, SQLite) before this worker:
reports waited 0.9 s at the median and 2.3 s at the 95th percentile.

So each worker keeps a second pool, the write lane (``--write-threads``, default 16, that is
80 reports a second per worker at 200 ms each): a request whose first bytes name a method that
changes something (POST, PUT, PATCH, DELETE) goes there, and reads never queue ahead of it. The
main thread peeks at those bytes (``MSG_PEEK``: nothing is consumed), or at the bytes gunicorn
has already read ahead of a kept-alive connection's next request.

A new connection whose request has not arrived yet waits in the worker's poller, not in a
thread of either pool, and is sorted when its first bytes come. (gunicorn's own worker gives it
a thread to wait in; sent to the write lane, the map's new connections would fill it: measured,
reports then waited 1.6 s at the median for a write thread.) It may wait as long as gunicorn's
own worker lets it (its 5 s in a thread, then the keep-alive time in the poller).

With an intake worker, one worker takes every report (``mapsvc serve`` starts it beside the
``--workers`` that read; :mod:`mapsvc.server.handover`). The other workers hand it each request that
changes something, connection and all, and hold no report themselves while it keeps up. A
report then waits for no read thread of its own process (Python runs one thread of a process at a
time): measured with bench/load.py (SQLite, 200 readers, 50 reports a second), a report's write
transaction took 13 ms at the median in a process of its own, against 4 ms with no reads running,
until the read threads ran at a lower priority (``READ_NICENESS``): then 7 ms, and reports were
answered at the fixed moment (p95 213 ms). Reads hold back for no report either
(:mod:`mapsvc.web.hooks.urgency` only matters where a worker takes reports itself). While no intake
worker takes them (its write lane is full and the small queue too), each worker takes the
reports that come to it, as above; while it restarts, they wait in the queue (a second or two).

This worker uses gunicorn's threaded worker's inner parts (its pools, poller and pending
connections), so pyproject.toml holds gunicorn to the release series it was written for.
"""

from __future__ import annotations

import contextlib
import os
import selectors
import socket
import struct
import sys
import threading
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import Any

from gunicorn.workers.gthread import DEFAULT_WORKER_DATA_TIMEOUT, TConn

from mapsvc.server.handover import Meeting
from mapsvc.server.worker import JsonErrorWorker
from mapsvc.web.hooks import urgency

#: How requests that change something start (the method and its space).
WRITE_METHODS = (b"POST ", b"PUT ", b"PATCH ", b"DELETE ")
#: The names of the write lane's threads start so.
WRITE_LANE = "write-lane"
#: As many bytes as the longest of them.
_PEEK = max(len(m) for m in WRITE_METHODS)
#: How much lower the read threads' priority is than the intake's, in nice steps (Linux: per thread).
READ_NICENESS = 10
#: How often a reading worker tries to become the intake worker while none is, in seconds.
CLAIM_EVERY_S = 1.0
#: The longest a write-lane thread waits for more of a request's bytes, in seconds.
WRITE_READ_TIMEOUT_S = 10


def request_start(sock: socket.socket) -> bytes | None:
    """Return the first bytes waiting on ``sock`` without consuming them: b"" if it is closed, None if none came yet."""
    try:
        return sock.recv(_PEEK, socket.MSG_PEEK | socket.MSG_DONTWAIT)
    except BlockingIOError:
        return None
    except (OSError, ValueError):  # closed under us, or TLS (which mapsvc leaves to the proxy in front)
        return b""


def changes_something(start: bytes) -> bool:
    """Return whether a request that starts with ``start`` names a method that changes something."""
    return start.startswith(WRITE_METHODS)


class LaneWorker(JsonErrorWorker):
    """gunicorn's threaded worker (its own errors in JSON), with a second pool for requests that change something."""

    write_threads = 16
    #: Where the server's workers hand reports to the intake worker (None: each takes its own reports).
    meeting: Meeting | None = None
    tpool: ThreadPoolExecutor
    poller: selectors.BaseSelector
    sockets: list[Any]
    nr_conns: int
    max_keepalived: int
    _accepting: bool

    def init_process(self) -> None:
        """Make the write lane, become the intake worker if none is, then run as gunicorn's threaded worker."""
        self.write_lane = ThreadPoolExecutor(max_workers=self.write_threads, thread_name_prefix=WRITE_LANE)
        self.arriving: deque[Any] = deque()  # new connections waiting for their first bytes, by deadline
        self.intake = False  # whether this is the intake worker
        self._in_lane = 0  # handed connections in the write lane (intake worker)
        self._inbox_on = False  # whether the poller watches the meeting's inbox (intake worker)
        self._claimed_at = 0.0
        self._claim()
        super().init_process()

    def get_thread_pool(self) -> ThreadPoolExecutor:
        """Return the reads' pool; beside an intake worker, its threads run at a lower priority than reports."""
        lower = self.meeting is not None and sys.platform == "linux"  # elsewhere nice() is the whole process's
        return ThreadPoolExecutor(max_workers=self.cfg.threads, initializer=_lower_priority if lower else None)

    def _claim(self) -> None:
        """Become the intake worker if no worker is (tried at most every ``CLAIM_EVERY_S``; never while stopping)."""
        if self.meeting is None or self.intake or not self.alive or time.monotonic() - self._claimed_at < CLAIM_EVERY_S:
            return
        self._claimed_at = time.monotonic()
        if not self.meeting.claim():
            return
        accepting = getattr(self, "_accepting", False)
        if accepting:
            super().set_accept_enabled(False)  # from the listeners
        self.intake = True
        self.max_keepalived = 0  # one request per handed connection: the next may be a read
        if accepting:
            self.set_accept_enabled(True)  # from the inbox
        self.log.info("intake worker: takes the requests that change something")

    def set_accept_enabled(self, enabled: bool) -> None:
        """Take new connections from the listeners, or in the intake worker from the other workers.

        A stopping intake worker takes what is queued (fewer than a batch: the queue is small), then
        lets the intake go: what is sent from then on waits for the next intake worker.
        """
        if not self.intake:
            super().set_accept_enabled(enabled)
            return
        assert self.meeting is not None
        if not enabled and not self.alive and self.meeting.held:  # still the intake: take what is queued
            for sock in self.meeting.received():
                self._take(sock)
            self.meeting.let_go()
        self._accepting = enabled
        self._pace_inbox()

    def _pace_inbox(self) -> None:
        """Watch the inbox while this intake worker accepts and has a free write thread; else leave it be.

        A connection left in the queue waits for a thread; once the queue is full, the other
        workers answer their reports themselves (a few slow clients must not stop every report).
        """
        assert self.meeting is not None
        want = self._accepting and self._in_lane < self.write_threads
        if want != self._inbox_on:
            if want:
                self.poller.register(self.meeting.inbox, selectors.EVENT_READ, self._take_handed)
            else:
                self.poller.unregister(self.meeting.inbox)
            self._inbox_on = want

    def _take_handed(self, _inbox: socket.socket) -> None:
        """Give connections handed over by the other workers to the write lane's free threads (their requests wait)."""
        assert self.meeting is not None
        for sock in self.meeting.received(self.write_threads - self._in_lane):
            self._take(sock)
        self._pace_inbox()

    def _take(self, sock: socket.socket) -> None:
        """Give one handed connection to the write lane."""
        try:
            peer, local = sock.getpeername(), sock.getsockname()
        except OSError:  # the client left meanwhile
            sock.close()
            return
        self.nr_conns += 1
        self._in_lane += 1
        conn = TConn(self.cfg, sock, peer, local)
        conn.data_ready = True
        conn.handed = True
        self._to_write_lane(conn)

    def finish_request(self, conn: Any, fs: Any) -> None:
        """Finish as gunicorn does; a handed connection's thread is free again."""
        if getattr(conn, "handed", False):
            conn.handed = False
            self._in_lane -= 1
        super().finish_request(conn, fs)
        if self.intake:
            self._pace_inbox()

    def enqueue_req(self, conn: Any) -> None:
        """Hand the connection to the pool its request belongs to, or wait in the poller for the request.

        gunicorn calls this from the worker's main thread only, and submits to ``self.tpool``:
        the write lane stands in for it during the call.
        """
        buffered = conn.parser.unreader.buf.getvalue() if conn.parser is not None else b""
        start = buffered or request_start(conn.sock)
        if start is None and not (conn.initialized or conn.data_ready):
            self._wait_for_request(conn)
            return
        if not (start and changes_something(start)):
            super().enqueue_req(conn)
            return
        meeting = None if self.intake or not self.alive or buffered or self.cfg.is_ssl else self.meeting
        if meeting is not None and meeting.send(conn.sock):
            self.nr_conns -= 1
            conn.sock.close()  # the intake worker has the connection now
            return
        self._to_write_lane(conn)

    def _to_write_lane(self, conn: Any) -> None:
        """Hand the connection to the write lane, whose reads of it time out (no slow client holds a thread long)."""
        with contextlib.suppress(OSError):
            # SO_RCVTIMEO survives gunicorn's setblocking(True), which only clears Python's own timeout.
            conn.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, _timeval(WRITE_READ_TIMEOUT_S))
        reads, self.tpool = self.tpool, self.write_lane
        try:
            super().enqueue_req(conn)
        finally:
            self.tpool = reads

    def handle(self, conn: Any) -> Any:
        """Handle a request: in the write lane (urgent once read), in the reads' pool once nothing is urgent.

        A client that sends half a request holds a write thread, but makes nothing urgent.
        """
        if threading.current_thread().name.startswith(WRITE_LANE):
            try:
                return super().handle(conn)
            finally:
                urgency.calm()
        urgency.wait_for_calm()
        return super().handle(conn)

    def handle_request(self, req: Any, conn: Any) -> Any:
        """Run the application; a request of the write lane is urgent from now (its head has been read)."""
        if threading.current_thread().name.startswith(WRITE_LANE):
            urgency.begin()
        return super().handle_request(req, conn)

    def _wait_for_request(self, conn: Any) -> None:
        """Keep a new connection in the poller until its first bytes come (or its time runs out)."""
        conn.sock.setblocking(False)
        conn.timeout = time.monotonic() + DEFAULT_WORKER_DATA_TIMEOUT + self.cfg.keepalive
        self.arriving.append(conn)
        self.poller.register(conn.sock, selectors.EVENT_READ, partial(self._request_came, conn))

    def _request_came(self, conn: Any, client: socket.socket) -> None:
        self.poller.unregister(client)
        self.arriving.remove(conn)
        conn.data_ready = True
        self.enqueue_req(conn)

    def murder_pending(self) -> None:
        """Close pending connections past their time, gunicorn's and the ones still waiting for a request.

        gunicorn calls this at every turn of the worker's loop, so a worker that reads also tries
        here, now and then, to become the intake worker while none is.
        """
        self._claim()
        super().murder_pending()
        now = time.monotonic()
        while self.arriving and self.arriving[0].timeout <= now:
            conn = self.arriving.popleft()
            with contextlib.suppress(OSError, KeyError, ValueError):
                self.poller.unregister(conn.sock)
            self.nr_conns -= 1
            conn.close()


def _timeval(seconds: float) -> bytes:
    """Return ``seconds`` as a C ``struct timeval`` (for SO_RCVTIMEO)."""
    return struct.pack("@ll", int(seconds), int(seconds % 1 * 1_000_000))


def _lower_priority() -> None:
    """Lower this thread's scheduling priority by ``READ_NICENESS`` (Linux: the calling thread only)."""
    with contextlib.suppress(OSError):
        os.nice(READ_NICENESS)


def lane_worker(write_threads: int, meeting: Meeting | None = None) -> type[LaneWorker]:
    """Return the worker class with ``write_threads`` threads in each worker's write lane.

    ``meeting``: made before the workers fork (:mod:`mapsvc.server.handover`), when one worker takes the reports.
    """
    return type("LaneWorker", (LaneWorker,), {"write_threads": write_threads, "meeting": meeting})
