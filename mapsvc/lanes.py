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
main thread peeks at those bytes (``MSG_PEEK``: nothing is consumed) when the connection has
data; a new connection whose request has not arrived yet goes to the write lane too, where it
waits for its data as in gunicorn's own pool.
"""

from __future__ import annotations

import socket
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from mapsvc.serving import JsonErrorWorker

#: How requests that change something start (the method and its space).
WRITE_METHODS = (b"POST ", b"PUT ", b"PATCH ", b"DELETE ")


def is_write(sock: socket.socket) -> bool:
    """Return whether the request waiting on ``sock`` changes something, or has not arrived yet."""
    try:
        start = sock.recv(len(b"DELETE "), socket.MSG_PEEK | socket.MSG_DONTWAIT)
    except BlockingIOError:
        return True  # a new connection whose request is still on its way: it may be a report
    except (OSError, ValueError):  # closed, or TLS (which mapsvc leaves to the proxy in front)
        return False
    return start.startswith(WRITE_METHODS)


class LaneWorker(JsonErrorWorker):
    """gunicorn's threaded worker (its own errors in JSON), with a second pool for requests that change something."""

    write_threads = 16
    tpool: ThreadPoolExecutor

    def init_process(self) -> None:
        """Make the write lane, then run as gunicorn's threaded worker."""
        self.write_lane = ThreadPoolExecutor(max_workers=self.write_threads, thread_name_prefix="write")
        super().init_process()

    def enqueue_req(self, conn: Any) -> None:
        """Hand the connection to the write lane if its request changes something, else to the reads' pool.

        gunicorn calls this from the worker's main thread only, and submits to ``self.tpool``:
        the write lane stands in for it during the call.
        """
        if not is_write(conn.sock):
            super().enqueue_req(conn)
            return
        reads, self.tpool = self.tpool, self.write_lane
        try:
            super().enqueue_req(conn)
        finally:
            self.tpool = reads


def lane_worker(write_threads: int) -> type[LaneWorker]:
    """Return the worker class with ``write_threads`` threads in each worker's write lane."""
    return type("LaneWorker", (LaneWorker,), {"write_threads": write_threads})
