"""One worker takes the reports: connections handed over whole, the intake claimed by one process at a time."""

from __future__ import annotations

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
from pathlib import Path

import pytest

from mapsvc.handover import Handover, received
from mapsvc.lanes import READ_NICENESS, _lower_priority
from tests.conftest import BISHKEK
from tests.servers import NO_PER_WORKER_COUNTS, serving


def test_one_process_at_a_time_is_the_intake(tmp_path):
    first, second = Handover(tmp_path), Handover(tmp_path)

    inbox = first.claim()

    assert inbox is not None
    assert second.claim() is None
    inbox.close()


def _claim_and_end(directory: str, claimed: multiprocessing.synchronize.Event) -> None:
    inbox = Handover(Path(directory)).claim()
    if inbox is not None:
        claimed.set()
    os._exit(0)  # no clean-up of any kind: as a worker killed with SIGKILL


def test_the_intake_is_free_again_when_its_process_ends_however_it_ends(tmp_path):
    context = multiprocessing.get_context("fork")
    claimed = context.Event()
    child = context.Process(target=_claim_and_end, args=(str(tmp_path), claimed))
    child.start()
    child.join(10)

    assert claimed.is_set()
    inbox = Handover(tmp_path).claim()  # its socket file is still there: taken over
    assert inbox is not None
    inbox.close()


def test_a_connection_is_not_handed_over_when_no_process_takes_them(tmp_path):
    ours, theirs = socket.socketpair()
    handover = Handover(tmp_path)
    with ours, theirs:
        assert handover.send(ours) is False
    handover.close()


def test_a_handed_connection_is_the_same_connection_in_the_taker(tmp_path):
    inbox = Handover(tmp_path).claim()
    assert inbox is not None
    ours, client = socket.socketpair()
    with inbox, client:
        client.sendall(b"POST /api/reports HTTP/1.1\r\n")
        sender = Handover(tmp_path)

        assert sender.send(ours) is True
        sender.close()
        ours.close()  # the sender lets go of it: the connection stays open in the taker
        [taken] = received(inbox)
        with taken:
            assert taken.recv(100) == b"POST /api/reports HTTP/1.1\r\n"  # unread by the sender
            taken.sendall(b"HTTP/1.1 201 Created\r\n")
            assert client.recv(100) == b"HTTP/1.1 201 Created\r\n"
        assert received(inbox) == []


def test_the_meeting_directory_is_readable_by_its_user_only(migrated_template, tmp_path):
    url = migrated_template.fresh(tmp_path)
    with serving(url, tmp_path / "server.log", workers=2, **NO_PER_WORKER_COUNTS):
        log = (tmp_path / "server.log").read_text()
        meetings = [Path(d) for d in os.listdir("/tmp") if d.startswith("mapsvc-serve-")]
        ours = [d for d in meetings if (Path("/tmp") / d / "intake.lock").exists()]
        assert ours
        assert all((Path("/tmp") / d).stat().st_mode & 0o777 == 0o700 for d in ours)
    assert "intake worker" in log


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


def _post_report(port: int) -> http.client.HTTPConnection:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
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
