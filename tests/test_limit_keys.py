"""Whose count a request adds to: the address behind trusted proxies, keyed by a secret held in memory."""

from __future__ import annotations

import math
import time

import pytest
from limits import parse
from limits.storage import storage_from_string

from mapsvc import create_app
from mapsvc.settings import key_secret
from mapsvc.web.hooks import windows
from mapsvc.web.hooks.limits import UNPARSEABLE, AddressKeys, source_of
from mapsvc.web.hooks.windows import ClockWindowRateLimiter, window_of
from tests.conftest import BISHKEK, NOW
from tests.test_shared_limits import REDIS_URL

PROXY = "127.0.0.1"


@pytest.fixture
def app_config(app_config):
    return {**app_config, "RATELIMIT_ENABLED": True, "INTAKE_RATE_LIMIT": "2 per minute", "BURST_HOLD": ""}


def _report(client, forwarded: str | None = None, remote: str = PROXY) -> int:
    headers = {"X-Forwarded-For": forwarded} if forwarded is not None else {}
    body = {"category": "checkpoint", "lat": BISHKEK[0], "lon": BISHKEK[1]}
    return client.post("/api/reports", json=body, headers=headers, environ_base={"REMOTE_ADDR": remote}).status_code


def test_without_trusted_proxies_a_forwarded_address_is_ignored(client):
    statuses = [_report(client, forwarded=f"198.51.100.{i}") for i in range(3)]

    assert statuses == [201, 201, 429]


@pytest.mark.parametrize("hops", [1, 2])
def test_behind_trusted_proxies_each_forwarded_address_has_its_own_count(app_config, hops):
    app = create_app({**app_config, "TRUSTED_PROXIES": hops})
    client = app.test_client()
    chain = ", ".join(["10.0.0.9"] * (hops - 1))

    def via(address: str) -> int:
        return _report(client, forwarded=", ".join(filter(None, [address, chain])))

    first = [via("198.51.100.7") for _ in range(3)]
    other = via("203.0.113.9")
    app.extensions["mapsvc.store"].dispose()

    assert first == [201, 201, 429]
    assert other == 201


def test_only_the_entry_the_trusted_proxy_wrote_counts(app_config):
    app = create_app({**app_config, "TRUSTED_PROXIES": 1})
    client = app.test_client()
    # A client that sends its own X-Forwarded-For to a proxy that appends gets "its, real";
    # the entries left of the proxy's own are the client's word and pick nothing.
    statuses = [_report(client, forwarded=f"203.0.113.{i}, 198.51.100.7") for i in range(3)]
    app.extensions["mapsvc.store"].dispose()

    assert statuses == [201, 201, 429]


@pytest.mark.parametrize(
    ("addresses", "other"),
    [
        # One IPv6 subscriber's /64: any address in it is the same source.
        (["2001:db8:7:1::1", "2001:db8:7:1:ffff:ffff:ffff:fffe", "2001:db8:7:1:a:b:c:d"], "2001:db8:7:2::1"),
        # An IPv4-mapped IPv6 address is its IPv4 address.
        (["198.51.100.7", "::ffff:198.51.100.7", "::ffff:c633:6407"], "198.51.100.8"),
    ],
)
def test_an_ipv6_subscriber_counts_once_for_its_whole_block(client, addresses, other):
    statuses = [_report(client, remote=address) for address in addresses]

    assert statuses == [201, 201, 429]
    assert _report(client, remote=other) == 201


@pytest.mark.parametrize("hops", [-1, "1", True, 1.5])
def test_a_bad_trusted_proxies_is_named(app_config, hops):
    with pytest.raises(ValueError, match="TRUSTED_PROXIES"):
        create_app({**app_config, "TRUSTED_PROXIES": hops})


def test_keys_change_with_the_day_and_the_secret():
    secret = b"s" * 32
    keys = AddressKeys(secret)

    today = keys.key("198.51.100.7", "2026-06-15")

    assert today == AddressKeys(secret).key("198.51.100.7", "2026-06-15")
    assert today != keys.key("198.51.100.7", "2026-06-16")
    assert today != keys.key("198.51.100.8", "2026-06-15")
    assert today != AddressKeys(b"t" * 32).key("198.51.100.7", "2026-06-15")


def test_each_process_makes_its_own_secret_unless_one_is_set():
    made = {key_secret({}) for _ in range(3)}
    configured = "x" * 40

    assert len(made) == 3 and {len(s) for s in made} == {32}
    assert key_secret({"LIMIT_KEY_SECRET": configured}) == configured.encode()


@pytest.mark.parametrize("secret", ["short", 12345678901234567890123456789012345])
def test_a_weak_limit_key_secret_is_refused(app_config, secret):
    with pytest.raises(ValueError, match="LIMIT_KEY_SECRET"):
        create_app({**app_config, "LIMIT_KEY_SECRET": secret})


@pytest.mark.parametrize(
    ("limit", "now", "number", "end"),
    [
        ("8 per hour", 3600 * 500_000 + 17.25, 500_000, 3600 * 500_001),
        ("10 per minute", 60 * 7 + 59.9, 7, 480),
        ("3 per day", 86400 * 2, 2, 86400 * 3),
    ],
)
def test_windows_are_the_clocks_own(limit, now, number, end):
    assert window_of(parse(limit), now) == (number, end)


def test_a_refusal_says_when_the_window_ends(client, monkeypatch):
    monkeypatch.setattr(time, "time", lambda: 60 * 28_000_000 + 45.5)  # 45.5 s into a minute
    for _ in range(2):
        _report(client)

    body = {"category": "checkpoint", "lat": BISHKEK[0], "lon": BISHKEK[1]}
    refused = client.post("/api/reports", json=body)

    assert refused.status_code == 429
    assert refused.headers["Retry-After"] == "15"


# --- second review of #12: what an address counts as, at the edges -----------------------------------


@pytest.mark.parametrize(
    ("addresses", "other"),
    [
        # A port or brackets that a proxy wrote beside the address.
        (["198.51.100.7:5678", "198.51.100.7", "198.51.100.7:443"], "198.51.100.8:5678"),
        (["[2001:db8:7:1::1]:443", "2001:db8:7:1::2", "[2001:db8:7:1::3]"], "[2001:db8:7:2::1]:443"),
        # NAT64, IPv4-translated and IPv4-compatible addresses carry their IPv4 address in the last 32 bits.
        (["64:ff9b::198.51.100.7", "::ffff:0:198.51.100.7", "::198.51.100.7"], "64:ff9b::198.51.100.8"),
        # 6to4: each IPv4 address has a /48, 65,536 /64s, and replies reach it alone.
        (["2002:c633:6407::1", "2002:c633:6407:1::1", "2002:c633:6407:ffff::1"], "2002:c633:6408::1"),
        # Teredo: the client's IPv4 address (bits 96-127, inverted) counts; the server's (bits 32-63) is
        # whatever the sender writes there, and 2^32 of them would each have been a /64 of their own.
        (
            [
                "2001:0:4136:e378:8000:63bf:3fff:fdd2",
                "2001:0:102:304:8000:63bf:3fff:fdd2",
                "2001:0:4136:e378::3fff:fdd2",
            ],
            "2001:0:4136:e378:8000:63bf:3fff:fdd3",
        ),
    ],
)
def test_an_address_counts_as_the_ipv4_address_or_block_it_stands_for(client, addresses, other):
    statuses = [_report(client, remote=address) for address in addresses]

    assert statuses == [201, 201, 429]
    assert _report(client, remote=other) == 201


def test_text_that_is_no_address_shares_one_count_and_is_logged_without_its_text(client, caplog):
    texts = ["unknown", "not-an-address-1", "", "198.51.100.7:80:80"]

    statuses = [_report(client, remote=text) for text in texts]

    assert statuses == [201, 201, 429, 429]
    assert _report(client, remote="198.51.100.7") == 201
    warnings = [r.getMessage() for r in caplog.records if r.name == "mapsvc.web.hooks.limits"]
    assert len(warnings) == len(texts) and all("no IP address" in w for w in warnings)
    assert not any(text and text in w for text in texts for w in warnings)
    assert source_of("unknown") == source_of("") == UNPARSEABLE


# --- second review of #12: an attempt is given back to the window it was counted in, never below 0 --------

QUARTER = parse("5 per 15 minutes")
#: The end of the quarter hour that the tests' pinned clock (conftest) lies in.
BOUNDARY = math.ceil(NOW.timestamp() / 900) * 900


def test_a_give_back_after_the_windows_end_uncounts_the_window_it_was_counted_in(monkeypatch):
    limiter = ClockWindowRateLimiter(storage_from_string("memory://"))
    monkeypatch.setattr(windows.time, "now", BOUNDARY - 0.05)
    _within, counted_in = limiter.hit_window(QUARTER, "k")  # 50 ms before the quarter hour ends
    monkeypatch.setattr(windows.time, "now", BOUNDARY + 0.05)  # argon2 took 100 ms
    full = [limiter.hit(QUARTER, "k") for _ in range(QUARTER.amount)]

    limiter.give_back(counted_in)

    assert full == [True] * QUARTER.amount
    assert limiter.storage.get(counted_in) == 0
    assert not limiter.test(QUARTER, "k")  # the new window stays full: no guess more in it


@pytest.fixture(params=["memory://", REDIS_URL], ids=["memory", "redis"])
def limiter(request, worker_id):
    """Return a clock-window limiter on process memory, or on the tests' Redis (keys of this test worker)."""
    limiter = ClockWindowRateLimiter(storage_from_string(request.param))
    yield limiter, f"give-back-{worker_id}"
    limiter.storage.clear(limiter._key(QUARTER, (f"give-back-{worker_id}",))[0])


def test_a_give_back_racing_a_forget_never_takes_a_count_below_zero(limiter, monkeypatch):
    limiter, key = limiter
    _within, window = limiter.hit_window(QUARTER, key)
    read = limiter.storage.get

    def forgotten_after_reading(name: str) -> int:
        count = read(name)
        limiter.storage.clear(name)  # a right password forgets the count just after it was read
        return count

    monkeypatch.setattr(limiter.storage, "get", forgotten_after_reading)
    limiter.give_back(window)
    monkeypatch.setattr(limiter.storage, "get", read)

    assert read(window) == 0
    assert [limiter.hit(QUARTER, key) for _ in range(QUARTER.amount + 1)] == [True] * QUARTER.amount + [False]
