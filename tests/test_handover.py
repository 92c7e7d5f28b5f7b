"""One worker takes the reports: connections handed over whole, the intake claimed by one process at a time."""

from __future__ import annotations

import contextlib
import http.client
import json
import multiprocessing
import os
import re
import select
import signal
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from mapsvc.server.handover import Meeting
from mapsvc.server.lanes import READ_NICENESS, WRITE_READ_TIMEOUT_S, _lower_priority
from tests.conftest import BISHKEK
from tests.servers import NO_PER_WORKER_COUNTS, serving, start, stop


def _claim_in_a_child(meeting: Meeting, claimed: Any, go: Any) -> None:
    claimed.put(meeting.claim())
    go.wait(10)
    os._exit(0)  # no clean-up of any kind: as a worker killed with SIGKILL


@contextlib.contextmanager
def _another_worker(meeting: Meeting) -> Iterator[bool]:
    """Fork a process that tries to claim the intake; yield whether it did, while it lives (it ends after)."""
    context = multiprocessing.get_context("fork")
    claimed, go = context.Queue(), context.Event()
    child = context.Process(target=_claim_in_a_child, args=(meeting, claimed, go))
    child.start()
    try:
        yield claimed.get(timeout=10)
    finally:
        go.set()
        child.join(10)


def test_one_process_at_a_time_is_the_intake_until_it_ends_however_it_ends():
    meeting = Meeting()
    with _another_worker(meeting) as claimed:
        assert claimed is True
        assert meeting.claim() is False  # the child is the intake

    assert meeting.claim() is True
    meeting.close()


def test_a_stopping_intake_lets_the_next_take_over():
    meeting = Meeting()
    assert meeting.claim() is True
    meeting.let_go()
    with _another_worker(meeting) as claimed:
        assert claimed is True
    meeting.close()


def test_a_handed_connection_is_the_same_connection_in_the_taker_and_waits_for_one():
    meeting = Meeting()
    ours, client = socket.socketpair()
    with client:
        client.sendall(b"POST /api/reports HTTP/1.1\r\n")

        assert meeting.send(ours) is True  # no process takes them yet: it waits in the queue
        ours.close()  # the sender lets go of it: the connection stays open in the queue
        [taken] = meeting.received()
        with taken:
            assert taken.recv(100) == b"POST /api/reports HTTP/1.1\r\n"  # unread by the sender
            taken.sendall(b"HTTP/1.1 201 Created\r\n")
            assert client.recv(100) == b"HTTP/1.1 201 Created\r\n"
        assert meeting.received() == []
    meeting.close()


def test_a_full_queue_refuses_at_once_and_the_sender_keeps_the_connection():
    meeting = Meeting()
    ours, client = socket.socketpair()
    with ours, client:
        sent = 0
        while meeting.send(ours):  # nobody takes them
            sent += 1
            assert sent < 100_000
        for taken in meeting.received(most=10**6):
            taken.close()
        client.sendall(b"still ours")
        assert ours.recv(100) == b"still ours"
    assert 0 < sent <= 64  # a few: the rest the senders answer themselves
    meeting.close()


def test_read_threads_run_at_a_lower_priority_than_the_thread_that_made_them():
    seen: list[int] = []

    def read_thread() -> None:
        _lower_priority()
        seen.append(os.getpriority(os.PRIO_PROCESS, threading.get_native_id()))

    ours = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
    thread = threading.Thread(target=read_thread)
    thread.start()
    thread.join()

    assert seen == [min(ours + READ_NICENESS, 19)]
    assert os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) == ours  # this thread's is unchanged


def _workers(server: int) -> list[int]:
    return [int(pid) for pid in Path(f"/proc/{server}/task/{server}/children").read_text().split()]


def _nice_values(pid: int) -> dict[int, int]:
    """Return the nice value of each thread of process ``pid``."""
    values = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(FileNotFoundError):
            values[int(task.name)] = int((task / "stat").read_text().rsplit(")", 1)[1].split()[16])
    return values


def _intake_pids(log: Path) -> list[int]:
    """Return the pids of the workers that said they became the intake worker, in order."""
    return [int(m) for m in re.findall(r"\[(\d+)\] \[INFO\] intake worker", log.read_text())]


def _wait_until_gone(pid: int) -> None:
    """Wait until process ``pid`` has ended (a zombie, or reaped)."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            if Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z":
                return
        except FileNotFoundError:
            return
        time.sleep(0.01)
    raise AssertionError(f"process {pid} did not end")


def _post_report(port: int, timeout: float = 30) -> http.client.HTTPConnection:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    body = json.dumps({"category": "checkpoint", "lat": BISHKEK[0], "lon": BISHKEK[1]})
    connection.request("POST", "/api/reports", body, {"Content-Type": "application/json"})
    return connection


@pytest.mark.engines("sqlite")
def test_reports_are_answered_by_the_intake_worker_and_by_the_others_while_it_is_gone(migrated_template, tmp_path):
    url = migrated_template.fresh(tmp_path)
    log = tmp_path / "server.log"
    with serving(url, log, workers=2, **NO_PER_WORKER_COUNTS) as port:
        [intake] = _intake_pids(log)

        os.kill(intake, signal.SIGSTOP)  # the intake worker holds a report it takes, unanswered
        try:
            waiting = _post_report(port)
            assert select.select([waiting.sock], [], [], 1.5)[0] == []  # nothing came back meanwhile
            read = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            read.request("GET", "/api/health")
            health = read.getresponse().status  # reads go on in the other workers
            read.close()
        finally:
            os.kill(intake, signal.SIGCONT)
        held = waiting.getresponse().status
        waiting.close()

        os.kill(intake, signal.SIGKILL)
        _wait_until_gone(intake)  # a report handed to it as it dies is closed unanswered (the phone resends)
        statuses = []
        deadline = time.monotonic() + 20
        while len(_intake_pids(log)) < 2:  # until a worker has taken the intake over
            connection = _post_report(port)
            statuses.append(connection.getresponse().status)
            connection.close()
            assert time.monotonic() < deadline, log.read_text()
        after = _post_report(port)
        statuses.append(after.getresponse().status)
        after.close()

    assert (health, held) == (200, 201)
    assert set(statuses) == {201}  # no report refused or lost while no worker was the intake
    assert _intake_pids(log)[-1] != intake


@pytest.mark.engines("sqlite")
def test_the_read_threads_of_a_server_run_below_its_other_threads(migrated_template, tmp_path):
    url = migrated_template.fresh(tmp_path)
    log = tmp_path / "server.log"
    process, port = start(url, log, workers=2, **NO_PER_WORKER_COUNTS)
    try:
        deadline = time.monotonic() + 20
        while len(_workers(process.pid)) < 3:  # two readers and the intake: a loaded machine forks slowly
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.1)
        for _ in range(20):  # the reads' threads start with the first reads
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            connection.request("GET", "/api/health")
            connection.getresponse().read()
            connection.close()
        [intake] = _intake_pids(log)
        readers = [pid for pid in _workers(process.pid) if pid != intake]
        nice = {pid: _nice_values(pid) for pid in readers}
    finally:
        stop(process, log)

    assert len(readers) == 2
    assert all(values[pid] == 0 for pid, values in nice.items())  # the main thread (the poller)
    assert any(READ_NICENESS in values.values() for values in nice.values())


@pytest.mark.engines("sqlite")
def test_no_report_is_lost_while_the_workers_are_replaced(migrated_template, tmp_path):
    """A reload (HUP): a reading worker still finishing a request must not become an intake that nobody reaches."""
    url = migrated_template.fresh(tmp_path)
    log = tmp_path / "server.log"
    process, port = start(url, log, workers=2, **NO_PER_WORKER_COUNTS)
    try:
        unfinished = []
        for _ in range(6):  # half-sent reads keep old workers stopping for a while
            connection = socket.create_connection(("127.0.0.1", port), timeout=10)
            connection.sendall(b"GET /api/health HTTP/1.1\r\nHost: mapsvc\r\n")
            unfinished.append(connection)
        time.sleep(0.5)
        process.send_signal(signal.SIGHUP)
        statuses = []
        for _ in range(30):
            connection = _post_report(port, timeout=8)
            try:
                statuses.append(connection.getresponse().status)
            except OSError as error:
                statuses.append(type(error).__name__)
            connection.close()
            time.sleep(0.15)
        for connection in unfinished:
            connection.close()
    finally:
        stop(process, log)

    assert statuses == [201] * 30, log.read_text()


@pytest.mark.engines("sqlite")
def test_a_slow_client_holds_the_intake_workers_thread_for_a_bounded_time(migrated_template, tmp_path):
    url = migrated_template.fresh(tmp_path)
    log = tmp_path / "server.log"
    with serving(url, log, workers=1, args=("--write-threads", "1"), **NO_PER_WORKER_COUNTS) as port:
        slow = socket.create_connection(("127.0.0.1", port), timeout=30)
        slow.sendall(b"POST /api/reports HTTP/1.1\r\nHost: mapsvc\r\n")  # and then nothing more
        time.sleep(1)  # handed over: it holds the intake worker's only write thread
        began = time.monotonic()
        report = _post_report(port, timeout=30)
        status = report.getresponse().status
        took = time.monotonic() - began
        report.close()
        slow.close()

    assert status == 201
    assert took < WRITE_READ_TIMEOUT_S + 5  # not for as long as the slow client likes
