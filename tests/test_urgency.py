"""Within a worker, a request being taken (urgent) goes before reads that have not started."""

from __future__ import annotations

import threading
import time

from mapsvc.web.hooks import urgency


def test_reads_wait_while_a_request_is_urgent_and_go_on_when_it_calms():
    assert urgency.wait_for_calm(0.01)
    urgency.begin()
    urgency.begin()  # once per thread however often it is said
    try:
        assert urgency.urgent_now() == 1
        assert not urgency.wait_for_calm(0.05)
        woken = []
        reader = threading.Thread(target=lambda: woken.append(urgency.wait_for_calm(5)))
        reader.start()
        time.sleep(0.1)
        assert not woken  # still waiting
    finally:
        urgency.calm()
    reader.join(5)
    assert woken == [True]
    assert urgency.urgent_now() == 0


def test_a_read_waits_no_longer_than_its_limit():
    done = threading.Event()

    def urgent_for_a_while() -> None:
        urgency.begin()
        done.wait(5)
        urgency.calm()

    other = threading.Thread(target=urgent_for_a_while)
    other.start()
    time.sleep(0.05)
    started = time.monotonic()
    assert not urgency.wait_for_calm(0.2)
    waited = time.monotonic() - started
    done.set()
    other.join(5)
    assert 0.15 <= waited < 2


def test_calm_without_urgency_changes_nothing():
    urgency.calm()
    assert urgency.urgent_now() == 0
