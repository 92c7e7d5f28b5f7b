"""The phone keeps a report until the service says it is stored, and a resend never stores it twice.

The page talks to the service through a real proxy on loopback (tests/faulty_proxy.py) that is
switched between answering as the service would (passing requests on), answering 503, 429 or 502
itself, resetting the connection, or losing the answer to a report the service stored. What the
person sees is read from the page; what was stored, from the database.
"""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import Iterator
from datetime import timedelta

import pytest

from mapsvc.core.roles import Role
from tests.browser.conftest import Service, served_app, shot
from tests.browser.test_phone_keeps import report
from tests.conftest import NOW
from tests.faulty_proxy import FaultyProxy
from tests.helpers import PASSWORD as STAFF_PASSWORD
from tests.helpers import make_account, stored_counts

#: Tries come again after a random wait of up to 150 ms, doubling to at most 600 ms: a few
#: seconds of failures make several tries (the service's own default is 2 s up to 5 minutes).
RETRY = {"REPORT_RETRY_BASE_MS": 150, "REPORT_RETRY_MAX_MS": 600}

QUEUED = "() => JSON.parse(localStorage.getItem('mapsvc.queue') || '[]')"
QUEUE_EMPTY = f"() => ({QUEUED})().length === 0"
WAITING_ONE = "Reports saved on this phone, waiting to be sent: 1."


@pytest.fixture(scope="module")
def served(tmp_path_factory) -> Iterator[tuple[Service, FaultyProxy]]:
    """Serve an empty map on its own database, behind the proxy."""
    app = served_app(tmp_path_factory.mktemp("queue"), 17, **RETRY)
    with Service(app) as service, FaultyProxy(service.server.server_port) as proxy:
        yield service, proxy


@pytest.fixture
def proxy(served) -> Iterator[FaultyProxy]:
    """The proxy, passing everything on and with no tries counted, at the start of each test."""
    _, faulty = served
    faulty.mode, faulty.retry_after = "pass", None
    faulty.forget_tries()
    yield faulty
    faulty.mode = "pass"


def open_map(page, proxy: FaultyProxy) -> None:
    page.goto(proxy.url + "/")
    page.wait_for_selector("#mapsvc[data-loaded]", state="attached")


def reports_stored(served) -> int:
    return stored_counts(served[0].app)[1]


def wait_for_tries(page, proxy: FaultyProxy, count: int, timeout_s: float = 15) -> None:
    """Wait until the proxy has seen ``count`` tries of reports."""
    for _ in range(int(timeout_s * 10)):
        if len(proxy.tries) >= count:
            return
        page.wait_for_timeout(100)
    raise AssertionError(f"{len(proxy.tries)} tries, not {count}")


SAID_WHEN_KEPT = {
    "503": "The service cannot take reports just now. Your report is saved on this phone and will be sent by itself.",
    "429": "The service cannot take reports just now. Your report is saved on this phone and will be sent by itself.",
    "502": "The service cannot take reports just now. Your report is saved on this phone and will be sent by itself.",
    "reset": "No connection now. Your report is saved on this phone and will be sent when you are online.",
}


@pytest.mark.parametrize("mode", list(SAID_WHEN_KEPT))
def test_a_report_the_service_cannot_take_now_waits_on_the_phone_and_is_stored_once(page, served, proxy, mode):
    open_map(page, proxy)
    before = reports_stored(served)
    proxy.mode = mode

    report(page, "raid")
    wait_for_tries(page, proxy, 4)  # the first try and three more, each after a short random wait

    assert page.inner_text("[data-message=done]") == SAID_WHEN_KEPT[mode]
    assert page.is_hidden("[data-withdraw]")
    assert page.inner_text("#outbox-waiting").startswith(WAITING_ONE)
    assert len(page.evaluate(QUEUED)) == 1
    assert reports_stored(served) == before
    shot(page, f"20-report-waiting-{mode}")

    proxy.mode = "pass"
    page.wait_for_selector(".code:not(:empty)")

    assert page.inner_text("[data-message=done]") == "Sent. Thank you: your report was received."
    assert page.evaluate(QUEUED) == []
    assert page.is_hidden("#outbox")
    assert reports_stored(served) == before + 1
    keys = {t.key for t in proxy.tries}
    assert len(keys) == 1 and re.fullmatch(r"[A-Za-z0-9_-]{22}", keys.pop() or "")
    # The status line says so too.
    assert page.inner_text("#map-status") == "Your saved report was sent."


def test_retry_after_is_waited_for(page, served, proxy):
    open_map(page, proxy)
    proxy.mode, proxy.retry_after = "429", 1

    report(page, "patrol")
    wait_for_tries(page, proxy, 3)
    proxy.mode = "pass"
    page.wait_for_function(QUEUE_EMPTY)

    tries = proxy.tries
    gaps = [later.at - earlier.at for earlier, later in itertools.pairwise(tries)]
    # Without Retry-After the waits would be under 0.6 s.
    assert min(gaps) >= 0.95, gaps


def test_a_report_whose_answer_was_lost_is_stored_once(page, served, proxy):
    open_map(page, proxy)
    before = reports_stored(served)
    proxy.mode = "lost"  # the service stores the report, and the phone never hears

    report(page, "checkpoint")
    wait_for_tries(page, proxy, 3)

    assert "saved on this phone" in page.inner_text("[data-message=done]")
    assert reports_stored(served) == before + 1  # stored by the first try, not by the others
    proxy.mode = "pass"
    page.wait_for_selector(".code:not(:empty)")

    assert reports_stored(served) == before + 1
    assert page.evaluate(QUEUED) == []
    assert len({t.key for t in proxy.tries}) == 1
    # The receipt the phone got is the stored report's: withdrawing it removes it.
    receipt = json.loads(page.evaluate("() => localStorage.getItem('mapsvc.mine')"))[-1]
    page.click("[data-withdraw]")
    page.wait_for_function("() => !document.querySelector('.code').textContent")
    assert reports_stored(served) == before
    assert receipt["category"] == "checkpoint"


def test_waiting_reports_outlast_the_page_and_old_ones_get_a_key(page, served, proxy):
    open_map(page, proxy)
    before = reports_stored(served)
    proxy.mode = "503"
    report(page, "raid")
    # Before it, a report an earlier version of the page saved: without a key of its own.
    [raid] = page.evaluate(QUEUED)
    old = {k: v for k, v in raid.items() if k != "key"} | {"category": "patrol"}
    page.goto(proxy.url + "/api/health")  # the service's origin, without the map's scripts and their waits
    page.evaluate("(q) => localStorage.setItem('mapsvc.queue', JSON.stringify(q))", [old, raid])
    proxy.forget_tries()

    page.goto(proxy.url + "/")
    page.wait_for_function("() => !document.getElementById('outbox-waiting').hidden")

    assert page.inner_text("#outbox-waiting").startswith("Reports saved on this phone, waiting to be sent: 2.")
    queued = page.evaluate(QUEUED)
    assert [q["category"] for q in queued] == ["patrol", "raid"]
    assert all(re.fullmatch(r"[A-Za-z0-9_-]{22}", q["key"]) for q in queued)
    assert len({q["key"] for q in queued}) == 2 and queued[1]["key"] == raid["key"]
    wait_for_tries(page, proxy, 1)  # the page tried as it loaded
    proxy.mode = "pass"
    page.wait_for_function(QUEUE_EMPTY)

    assert reports_stored(served) == before + 2
    assert {t.key for t in proxy.tries} == {q["key"] for q in queued}
    assert page.is_hidden("#outbox")


def test_a_report_refused_for_good_leaves_the_queue_and_the_reason_stays(page, served, proxy):
    open_map(page, proxy)
    before = reports_stored(served)
    # A report that waited on the phone for more than a year: the service refuses it as too old.
    too_old = {
        "key": "k" * 22,
        "category": "patrol",
        "lat": 42.8746,
        "lon": 74.5698,
        "fuzzed_on_device": True,
        "perpetrator": "unknown",
        "occurred_at": (NOW - timedelta(days=400)).strftime("%Y-%m-%dT%H:00:00Z"),
    }
    page.evaluate("(q) => localStorage.setItem('mapsvc.queue', JSON.stringify(q))", [too_old])

    page.reload()
    page.wait_for_selector("#outbox-refused:not([hidden])")
    said = "A report (Patrol) was not accepted and will not be sent again: occurred_at is more than 365 days ago"

    assert page.inner_text("#outbox-refused-list") == said
    assert page.evaluate(QUEUED) == []
    assert reports_stored(served) == before
    # Refreshes of the map (a move, the timer) leave it where it is.
    page.evaluate("() => window.mapsvcMap.refresh()")
    page.wait_for_function("() => document.getElementById('map-status').textContent.startsWith('Updated')")
    assert page.inner_text("#outbox-refused-list") == said
    shot(page, "21-report-refused")
    page.reload()
    page.wait_for_selector("#mapsvc[data-loaded]", state="attached")
    assert page.inner_text("#outbox-refused-list") == said  # until the person has read it

    page.click("#outbox-dismiss")

    assert page.is_hidden("#outbox")
    assert page.evaluate("() => localStorage.getItem('mapsvc.refused')") is None


def test_a_new_report_clears_the_refusals_it_follows(page, served, proxy):
    open_map(page, proxy)
    refused = [{"category": "raid", "error": "lat/lon lie outside the service area"}]
    page.evaluate("(r) => localStorage.setItem('mapsvc.refused', JSON.stringify(r))", refused)
    page.reload()
    page.wait_for_selector("#outbox-refused:not([hidden])")

    report(page, "raid")

    assert page.inner_text("[data-message=done]") == "Sent. Thank you: your report was received."
    assert page.is_hidden("#outbox")


def test_a_phone_that_cannot_keep_anything_still_sends_its_report(page, served, proxy):
    """A private window, or a full storage: the queue lives in the page's memory, and still waits out a 503."""
    page.add_init_script("Storage.prototype.setItem = () => { throw new DOMException('full', 'QuotaExceededError'); };")
    open_map(page, proxy)
    before = reports_stored(served)
    proxy.mode = "503"

    report(page, "patrol")
    wait_for_tries(page, proxy, 2)
    assert page.inner_text("#outbox-waiting").startswith(WAITING_ONE)
    proxy.mode = "pass"
    page.wait_for_selector(".code:not(:empty)")

    assert page.inner_text("[data-message=done]") == "Sent. Thank you: your report was received."
    assert reports_stored(served) == before + 1
    assert page.evaluate("() => localStorage.length") == 0


def test_a_signed_in_peer_reports_from_the_map(page, served, proxy):
    """Writes with a session need its CSRF token: the phone sends the page's, else every try is refused (403)."""
    make_account(served[0].app, Role.PEER, "reed-phone")
    page.goto(proxy.url + "/login?lang=en")
    page.fill("input[name=username]", "reed-phone")
    page.fill("input[name=password]", STAFF_PASSWORD)
    page.click("main button[type=submit]")
    page.wait_for_url("**/account")
    open_map(page, proxy)
    before = reports_stored(served)

    report(page, "raid")

    assert page.inner_text("[data-message=done]") == "Sent. Thank you: your report was received."
    assert reports_stored(served) == before + 1
    assert page.is_hidden("#outbox")
    page.click("[data-withdraw]")  # a withdrawal with the session is a write too
    page.wait_for_function("() => !document.querySelector('.code').textContent")
    assert reports_stored(served) == before


def test_a_report_refused_for_a_stale_csrf_token_waits_for_the_page_to_be_loaded_again(page, served, proxy):
    """The map was opened before signing in (in another tab): its token is not the session's, nor the report's fault."""
    make_account(served[0].app, Role.PEER, "sedge-phone")
    open_map(page, proxy)
    before = reports_stored(served)
    page.request.post(proxy.url + "/login", form={"username": "sedge-phone", "password": STAFF_PASSWORD})

    report(page, "raid")
    wait_for_tries(page, proxy, 2)

    assert "saved on this phone" in page.inner_text("[data-message=done]")
    assert len(page.evaluate(QUEUED)) == 1
    assert page.is_hidden("#outbox-refused")
    page.reload()  # a page with the session's token sends it
    page.wait_for_function(QUEUE_EMPTY)
    assert reports_stored(served) == before + 1
