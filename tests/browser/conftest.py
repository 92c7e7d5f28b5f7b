"""Real-browser fixtures: the service on loopback with demo data, and Debian's Chromium at phone size."""

from __future__ import annotations

import json
import random
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from werkzeug.serving import make_server

from mapsvc import create_app
from mapsvc.store.db import Store
from tests.conftest import BISHKEK, TOTP_KEY, Clock

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
#: Where the test phone is: central Bishkek.
PHONE = {"latitude": BISHKEK[0], "longitude": BISHKEK[1], "accuracy": 10}

pytestmark = pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Chromium is not installed")


class Service:
    """The app served by werkzeug in a thread, and what it needs for assertions."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.server = make_server("127.0.0.1", 0, app, threaded=True)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> Service:
        self.thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.server.shutdown()
        self.thread.join()
        self.app.extensions["mapsvc.store"].dispose()


def served_app(directory: Path, seed: int, **config: Any) -> Flask:
    """Return an app on a new migrated SQLite store in ``directory``, without tiles (offline here)."""
    database = directory / "mapsvc.sqlite3"
    store = Store(f"sqlite:///{database}")
    store.upgrade()
    store.dispose()
    settings = {
        "TESTING": True,
        "DATABASE_URL": f"sqlite:///{database}",
        "CLOCK": Clock(),
        "FUZZ_RNG": random.Random(seed),
        "TILE_URL": "",
        "ARGON2_PROFILE": "CHEAPEST",
        "RATELIMIT_ENABLED": False,
        "TOTP_ENCRYPTION_KEY": TOTP_KEY,
    }
    return create_app({**settings, **config})


@pytest.fixture(scope="session")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    """Serve mapsvc on a free loopback port, with demo data and no tiles (this sandbox is offline).

    The page does not depend on the database engine, so these tests use SQLite only.
    """
    app = served_app(
        tmp_path_factory.mktemp("browser"), 7, QUICK_EXIT_URL="https://neutral.example/weather", RATELIMIT_ENABLED=True
    )
    # A month of a busy city: what a refresh of a city view has to carry.
    result = app.test_cli_runner().invoke(args=["demo", "--reports", "3000", "--days", "30", "--seed", "3"])
    assert result.exit_code == 0, result.output
    with Service(app) as running:
        yield running


@pytest.fixture(autouse=True)
def fresh_limits(request: pytest.FixtureRequest) -> None:
    """Give each test that uses the shared service empty rate-limit and burst-hold counts.

    The service keeps its limits on (as deployed), and every test's requests come from one
    address: without this, how many sign-ins and reports earlier tests of the same worker sent
    decided whether a later one got a 429 or had its report held. All browser tests now run on
    one xdist worker, whose 13 sign-ins stay under 10 a minute only because ~90 s of other tests
    run between the first five and the rest, and whose 10 reports pass the burst hold of 8 an
    hour only because the two held ones come last and do not look at the map.
    """
    if "service" not in request.fixturenames:
        return
    app = request.getfixturevalue("service").app
    app.extensions["mapsvc.limiter"].reset()
    for counts in (app.extensions.get("mapsvc.burst_hold"), app.extensions.get("mapsvc.password_guesses")):
        if counts is not None:
            counts.limiter.storage.reset()


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args: dict[str, Any]) -> dict[str, Any]:
    return {
        **browser_type_launch_args,
        "executable_path": CHROMIUM,
        "headless": True,
        "args": [
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
        ],
    }


@pytest.fixture(scope="session")
def browser_context_args(browser_context_args: dict[str, Any]) -> dict[str, Any]:
    """A cheap Android phone: 360 x 740 CSS pixels at device scale 2, touch, location allowed."""
    return {
        **browser_context_args,
        "viewport": {"width": 360, "height": 740},
        "device_scale_factor": 2,
        "is_mobile": True,
        "has_touch": True,
        "geolocation": PHONE,
        "permissions": ["geolocation"],
        "locale": "en-GB",
    }


@pytest.fixture
def watched(page: Any, service: Service) -> dict[str, list[Any]]:
    """Record every request the page makes and every console error, for later assertions."""
    seen: dict[str, list[Any]] = {"requests": [], "errors": []}
    page.on("request", lambda r: seen["requests"].append(r))
    page.on("console", lambda m: m.type == "error" and seen["errors"].append(m.text))
    page.on("pageerror", lambda e: seen["errors"].append(str(e)))
    return seen


def shot(page: Any, name: str) -> None:
    """Save a phone-sized screenshot into test-artifacts/."""
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"))


def record(name: str, value: Any) -> None:
    """Keep a measured figure in test-artifacts/metrics.json."""
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"metric-{name}.json"
    path.write_text(json.dumps(value, indent=1))


@pytest.fixture(scope="session")
def base_url() -> None:
    """Replace pytest-base-url's fixture (the tests use ``service.url``), which pytest now warns about."""
    return None
