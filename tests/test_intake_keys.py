"""Idempotency keys of reports: a resend stores nothing and gets the first answer; the rows tell nothing."""

from __future__ import annotations

import re
import secrets
import threading
import time
from datetime import date, timedelta

import pytest
from sqlalchemy import text

from mapsvc.services import intake
from tests.conftest import BISHKEK, NOW
from tests.helpers import stored_counts

BODY = {"category": "checkpoint", "lat": BISHKEK[0], "lon": BISHKEK[1], "fuzzed_on_device": True}


def new_key() -> str:
    """Return a key as the phone makes one: 128 random bits in URL-safe base64."""
    return secrets.token_urlsafe(16)


def send(client, key: str | None, body: dict | None = None):
    headers = {} if key is None else {"Idempotency-Key": key}
    return client.post("/api/reports", json=body or BODY, headers=headers)


def key_rows(app) -> list[tuple[str, str, str]]:
    """Return every row of the keys' table as text: (key hash, sealed receipt, expiry)."""
    with app.extensions["mapsvc.store"].reader() as session:
        rows = session.execute(text("SELECT key_hash, sealed_receipt, CAST(expires_on AS TEXT) FROM intake_keys"))
        return [tuple(row) for row in rows]


def test_a_resend_with_the_same_key_stores_once_and_gets_the_same_answer(app, client):
    key = new_key()

    first, second = send(client, key), send(client, key)

    assert (first.status_code, second.status_code) == (201, 201)
    assert second.get_json() == first.get_json()
    assert second.headers["Cache-Control"] == "no-store"
    assert stored_counts(app) == (1, 1)


def test_reports_with_other_keys_or_none_are_each_stored(app, client):
    answers = [send(client, new_key()), send(client, new_key()), send(client, None), send(client, None)]

    assert [a.status_code for a in answers] == [201] * 4
    assert len({a.get_json()["id"] for a in answers}) == 4
    assert stored_counts(app) == (1, 4)  # one place and bucket: four reports merged into one event


def test_a_resend_is_answered_even_once_its_body_would_be_refused(app, client, clock):
    key = new_key()
    first = send(client, key, {**BODY, "occurred_at": "2026-06-15T21:00:00Z"})
    clock.now = NOW + timedelta(days=366)  # the report's time is now too old to be taken

    resent = send(client, key, {**BODY, "occurred_at": "2026-06-15T21:00:00Z"})

    assert send(client, None, {**BODY, "occurred_at": "2026-06-15T21:00:00Z"}).status_code == 422
    assert resent.status_code == 201 and resent.get_json() == first.get_json()
    assert stored_counts(app) == (1, 1)


def test_a_resend_of_a_withdrawn_report_does_not_bring_it_back(app, client):
    key = new_key()
    first = send(client, key).get_json()
    withdrawn = client.delete(f"/api/reports/{first['id']}", headers={"X-Withdrawal-Code": first["withdrawal_code"]})

    resent = send(client, key)

    assert withdrawn.status_code == 204
    assert resent.status_code == 201 and resent.get_json() == first
    assert stored_counts(app) == (0, 0)


def test_concurrent_sends_of_one_key_store_once(app):
    key, tries = new_key(), 8
    start, answers = threading.Barrier(tries), [None] * tries

    def one(i: int) -> None:
        client = app.test_client()
        start.wait()
        answers[i] = send(client, key)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(tries)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)

    assert [a.status_code for a in answers] == [201] * tries
    assert len({(a.get_json()["id"], a.get_json()["withdrawal_code"]) for a in answers}) == 1
    assert stored_counts(app) == (1, 1)
    assert len(key_rows(app)) == 1


def test_the_loser_of_a_race_rolls_back_and_answers_the_winners_receipt(app, client, monkeypatch):
    """The second send found no row before storing (the first had not committed yet): the key's row collides."""
    key = new_key()
    first = send(client, key).get_json()
    monkeypatch.setattr(intake, "recall", _misses_once(intake.recall))

    second = send(client, key)

    assert second.status_code == 201 and second.get_json() == first
    assert stored_counts(app) == (1, 1)  # the loser's report went with its transaction


def _misses_once(recall):
    """Return ``recall`` that finds nothing the first time, as a send racing another does."""
    calls = []

    def recalled(session, key):
        calls.append(key)
        return None if len(calls) == 1 else recall(session, key)

    return recalled


@pytest.mark.parametrize(
    "key",
    ["", "short-key-15chr", "k" * 129, "has a space 1234567", "plus+and/slash=0123", "tab\tkey-0123456789", "é" * 20],
    ids=["empty", "15 characters", "129 characters", "space", "base64 with + / =", "tab", "not ASCII"],
)
def test_a_malformed_key_is_refused_naming_the_header(app, client, key):
    response = send(client, key)

    assert response.status_code == 400
    assert response.get_json()["field"] == "Idempotency-Key"
    assert "Idempotency-Key" in response.get_json()["error"]
    assert stored_counts(app) == (0, 0)


@pytest.mark.parametrize("key", ["0123456789abcdef", "A-_z" * 32, secrets.token_hex(16)], ids=["16", "128", "hex"])
def test_keys_of_16_to_128_url_safe_characters_are_taken(app, client, key):
    assert send(client, key).status_code == 201
    assert send(client, key).status_code == 201
    assert stored_counts(app) == (1, 1)


def test_the_row_holds_no_key_no_receipt_and_no_time_finer_than_a_day(app, client, migrated_template):
    key = new_key()
    receipt = send(client, key).get_json()

    [(hashed, sealed, expires)] = key_rows(app)
    dump = migrated_template.dump(app.config["DATABASE_URL"])

    assert re.fullmatch(r"[0-9a-f]{64}", hashed) and hashed in dump
    assert re.fullmatch(r"\d{4}-\d\d-\d\d", expires)
    for plain in (key, receipt["withdrawal_code"]):
        assert plain not in dump and plain not in sealed
    assert sealed not in receipt["id"] and receipt["id"] not in sealed
    # The table has these three columns and no other.
    with app.extensions["mapsvc.store"].reader() as session:
        columns = session.execute(text("SELECT * FROM intake_keys")).keys()
    assert list(columns) == ["key_hash", "sealed_receipt", "expires_on"]


def test_the_row_expires_once_no_resend_could_be_taken(app, client):
    send(client, new_key(), {**BODY, "occurred_at": "2026-06-15T22:10:00Z"})  # the 22:00 hour's bucket

    [(_, _, expires)] = key_rows(app)

    # 22:00 + the hour + 5 minutes of clock skew + 365 days is 2027-06-15 23:05: the next day.
    assert date.fromisoformat(expires) == date(2027, 6, 16)


def test_a_row_outlives_the_last_resend_that_would_be_taken(app, client, clock):
    """A report of the future (within the clock skew) near midnight is filed under the last hour of the day before."""
    clock.now = NOW.replace(hour=23, minute=58)
    body = {**BODY, "occurred_at": "2026-06-16T00:02:00Z"}
    send(client, new_key(), body)
    [(_, _, expires)] = key_rows(app)
    last_taken = NOW.replace(day=16, hour=0, minute=2) + timedelta(days=365)

    clock.now = last_taken
    assert send(client, None, body).status_code == 201  # a resend would still be taken here
    clock.now = last_taken + timedelta(seconds=1)
    assert send(client, None, body).status_code == 422  # and from here on never
    assert date.fromisoformat(expires) > last_taken.date()


def test_prune_deletes_expired_rows_only(app, client, clock, runner):
    send(client, new_key(), {**BODY, "occurred_at": "2026-06-14T22:00:00Z"})  # a day older: expires a day sooner
    send(client, new_key())
    clock.now = NOW.replace(hour=0, minute=0) + timedelta(days=365)  # the older one's day has come

    result = runner.invoke(args=["prune"])

    assert result.exit_code == 0, result.output
    assert "1 expired idempotency keys" in result.output
    assert [date.fromisoformat(row[2]) for row in key_rows(app)] == [date(2027, 6, 16)]


def test_a_report_with_a_key_deletes_expired_rows_as_it_goes(app, client, clock):
    send(client, new_key())
    clock.now = NOW + timedelta(days=367)

    send(client, new_key(), {**BODY, "occurred_at": None})

    assert [date.fromisoformat(row[2]) for row in key_rows(app)] == [date(2028, 6, 17)]


@pytest.fixture
def answer_after_150_ms(app_config):
    app_config["INTAKE_ANSWER_MS"] = 150


def test_a_resend_takes_the_same_fixed_answer_time(answer_after_150_ms, app, client):
    key = new_key()
    send(client, key)

    started = time.monotonic()
    resent = send(client, key)
    elapsed = time.monotonic() - started

    assert resent.status_code == 201 and stored_counts(app) == (1, 1)  # answered from the key, not stored
    assert elapsed >= 0.150


def test_the_plain_form_sent_twice_stores_once(app, client):
    page = client.get("/report").get_data(as_text=True)
    key = re.search(r'name="key" value="([^"]+)"', page).group(1)
    form = {"category": "patrol", "lat": str(BISHKEK[0]), "lon": str(BISHKEK[1]), "key": key}

    first, second = client.post("/report", data=form), client.post("/report", data=form)

    assert (first.status_code, second.status_code) == (201, 201)
    code = re.search(r"<dt>Withdrawal code</dt><dd><code>([^<]+)</code>", first.get_data(as_text=True)).group(1)
    assert code in second.get_data(as_text=True)
    assert stored_counts(app) == (1, 1)
    said = "This form was sent before: the report is stored once, and this is its receipt."
    assert said not in first.get_data(as_text=True) and said in second.get_data(as_text=True)


def test_the_form_is_not_kept_by_the_browser(client):
    """Going back to it fetches a new one, with a new key, rather than a copy with a sent report's key."""
    response = client.get("/report")

    assert response.headers["Cache-Control"] == "no-store"
    assert re.search(
        r'<input type="hidden" name="key" value="[^"]+" autocomplete="off">', response.get_data(as_text=True)
    )


def test_each_showing_of_the_form_has_a_new_key(client):
    keys = {re.search(r'name="key" value="([^"]+)"', client.get("/report").get_data(as_text=True)).group(1)}
    keys.add(re.search(r'name="key" value="([^"]+)"', client.get("/report").get_data(as_text=True)).group(1))

    assert len(keys) == 2 and all(re.fullmatch(r"[A-Za-z0-9_-]{22}", k) for k in keys)
