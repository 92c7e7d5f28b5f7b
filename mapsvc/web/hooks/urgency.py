"""Within a worker, a request that changes something runs before reads that have not started.

Python runs one thread of a process at a time. While 200 phones read the map, every read thread
wants to run, and a report's thread waits its turn at every step: a report's write that takes
6 ms alone took 60 ms at the 95th percentile, and the reports behind it queued for their turn to
write (measured with bench/load.py: intake p95 1.4 s on SQLite). So while a report is being
taken, reads that have not started yet wait (at most :data:`READ_WAIT_S`, so that a stream of
reports never starves them); the reads already under way go on.

A request is urgent from the moment a write-lane thread takes it (:mod:`mapsvc.server.lanes`) until
it has done its work: intake calls :func:`calm` before it waits for its fixed answer time, as
there is nothing left for it to run.

Reads see writes a little later, never differently: nothing here changes what is answered.
"""

from __future__ import annotations

import threading

#: The longest a read that has not started waits for urgent requests, in seconds.
READ_WAIT_S = 0.05

_changed = threading.Condition()
_urgent = 0
_thread = threading.local()


def begin() -> None:
    """Mark this thread's request urgent until :func:`calm`."""
    global _urgent
    if getattr(_thread, "urgent", False):
        return
    _thread.urgent = True
    with _changed:
        _urgent += 1


def calm() -> None:
    """End the urgency of this thread's request (if it was urgent)."""
    global _urgent
    if not getattr(_thread, "urgent", False):
        return
    _thread.urgent = False
    with _changed:
        _urgent -= 1
        if _urgent == 0:
            _changed.notify_all()


def wait_for_calm(limit_s: float = READ_WAIT_S) -> bool:
    """Wait until no request of this process is urgent, for ``limit_s`` at most; return whether none is."""
    with _changed:
        return _changed.wait_for(lambda: _urgent == 0, timeout=limit_s)


def urgent_now() -> int:
    """Return how many requests of this process are urgent now."""
    return _urgent
