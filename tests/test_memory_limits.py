"""The "memory://" limit storage never starts its expiry timer twice from two threads."""

from __future__ import annotations

import threading
import time

import limits.storage.memory
from limits.storage import storage_from_string

from mapsvc.web.hooks.limits import MEMORY_STORAGE


def test_memory_storage_is_the_locked_one():
    assert isinstance(storage_from_string("memory://"), MEMORY_STORAGE)


def test_two_threads_counting_at_once_never_schedule_the_expiry_together(monkeypatch):
    """The library's step reads ``self.timer`` twice: two threads inside it at once can start one timer twice."""
    storage = storage_from_string("memory://")
    inside, most = 0, 0
    lock = threading.Lock()
    scheduled = limits.storage.memory.MemoryStorage._MemoryStorage__schedule_expiry

    def slow_schedule(self) -> None:
        nonlocal inside, most
        with lock:
            inside += 1
            most = max(most, inside)
        time.sleep(0.05)  # the window in which another thread would come in
        scheduled(self)
        with lock:
            inside -= 1

    monkeypatch.setattr(limits.storage.memory.MemoryStorage, "_MemoryStorage__schedule_expiry", slow_schedule)
    threads = [threading.Thread(target=lambda: storage.incr("key", expiry=1)) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(5)

    assert most == 1
    assert storage.get("key") == 4
