"""SQLite's writers take turns (mapsvc.store.writers): one at a time across threads and processes."""

from __future__ import annotations

import fcntl
import os
import threading
import time

import pytest
from sqlalchemy import text

from mapsvc.store.db import DatabaseUnavailable, Store
from mapsvc.store.writers import WritersBusy, WriterTurns


def _overlaps(turns: WriterTurns, threads: int = 6, rounds: int = 20) -> int:
    """Run ``threads`` threads taking turns ``rounds`` times each; return the most that held a turn at once."""
    holding, most = 0, 0
    lock = threading.Lock()

    def write() -> None:
        nonlocal holding, most
        for _ in range(rounds):
            with turns.turn():
                with lock:
                    holding += 1
                    most = max(most, holding)
                time.sleep(0.001)
                with lock:
                    holding -= 1

    workers = [threading.Thread(target=write) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(30)
    return most


@pytest.mark.parametrize("in_a_file", [True, False])
def test_one_thread_writes_at_a_time(tmp_path, in_a_file):
    turns = WriterTurns(tmp_path / "mapsvc.sqlite3" if in_a_file else None, timeout_s=10)
    assert _overlaps(turns) == 1


def test_a_write_inside_a_write_keeps_the_turn(tmp_path):
    turns = WriterTurns(tmp_path / "mapsvc.sqlite3", timeout_s=0.5)
    with turns.turn(), turns.turn():
        pass
    with turns.turn():  # and it was given back
        pass


def test_another_process_holding_the_file_lock_makes_a_writer_wait_then_give_up(tmp_path):
    turns = WriterTurns(tmp_path / "mapsvc.sqlite3", timeout_s=0.3)
    other = os.open(turns.lock_path, os.O_RDONLY | os.O_CREAT, 0o644)
    fcntl.flock(other, fcntl.LOCK_EX)  # as another process's writer holds it (a lock of another open file)
    try:
        started = time.monotonic()
        with pytest.raises(WritersBusy), turns.turn():
            pass
        assert time.monotonic() - started >= 0.3
    finally:
        fcntl.flock(other, fcntl.LOCK_UN)
        os.close(other)
    with turns.turn():
        pass


def test_a_forked_child_takes_turns_with_its_parent(tmp_path):
    turns = WriterTurns(tmp_path / "mapsvc.sqlite3", timeout_s=0.3)
    with turns.turn():  # the parent's own open file, before the fork (as mapsvc serve's store)
        pass
    held, told = os.pipe(), os.pipe()
    child = os.fork()
    if child == 0:  # shares the parent's open file: it must open one of its own
        os.read(held[0], 1)
        try:
            with turns.turn():
                os.write(told[1], b"took it")
        except WritersBusy:
            os.write(told[1], b"waited")
        os._exit(0)
    with turns.turn():
        os.write(held[1], b"!")
        answer = os.read(told[0], 100)
    os.waitpid(child, 0)
    for fd in (*held, *told):
        os.close(fd)
    assert answer == b"waited"


def test_the_lock_file_lies_beside_the_database_empty_and_readable_by_another_user(tmp_path):
    turns = WriterTurns(tmp_path / "mapsvc.sqlite3", timeout_s=1)
    with turns.turn():
        pass
    assert turns.lock_path == tmp_path / "mapsvc.sqlite3-writers"
    assert turns.lock_path.stat().st_mode & 0o777 == 0o644
    assert turns.lock_path.stat().st_size == 0


@pytest.mark.engines("sqlite")
def test_a_store_whose_writers_wait_too_long_answers_busy(migrated_template, tmp_path, monkeypatch):
    store = Store(migrated_template.fresh(tmp_path))
    assert store._turns is not None
    monkeypatch.setattr(store._turns, "timeout_s", 0.2)
    other = os.open(store._turns.lock_path, os.O_RDONLY | os.O_CREAT, 0o644)
    fcntl.flock(other, fcntl.LOCK_EX)
    try:
        with pytest.raises(DatabaseUnavailable, match="busy"), store.writing() as session:
            session.execute(text("SELECT 1"))
    finally:
        fcntl.flock(other, fcntl.LOCK_UN)
        os.close(other)
        store.dispose()
