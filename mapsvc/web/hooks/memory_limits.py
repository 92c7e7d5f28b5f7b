"""The limits library's "memory://" storage, with its expiry timer started by one thread at a time.

``limits`` (5.8) starts a new expiry timer whenever the last one has run out, from whichever
thread counts a hit, without a lock: two threads of one worker can both find it run out, and
then both start the second one's timer (each reads ``self.timer`` again after the other set
it). A thread started twice fails in the threading module (``KeyError`` in ``_bootstrap_inner``
or "threads can only be started once"), in the middle of a request. This storage takes the place
of the library's own under the same scheme, and serialises that one step.
"""

from __future__ import annotations

import threading
from typing import Any

from limits.storage import MemoryStorage


class LockedMemoryStorage(MemoryStorage):
    """``memory://``: the library's storage, its expiry timer scheduled under a lock."""

    STORAGE_SCHEME = ["memory"]  # noqa: RUF012 (the library's attribute) registered in place of its class

    def __init__(self, uri: str | None = None, wrap_exceptions: bool = False, **options: Any) -> None:
        self._timer_lock = threading.Lock()
        super().__init__(uri, wrap_exceptions=wrap_exceptions, **options)

    def _MemoryStorage__schedule_expiry(self) -> None:
        with self._timer_lock:
            super()._MemoryStorage__schedule_expiry()  # type: ignore[misc]
