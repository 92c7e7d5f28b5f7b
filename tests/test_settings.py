"""Settings that are checked when the app starts: every MAPSVC_* setting, once, naming the bad one."""

from __future__ import annotations

import ast
import dataclasses
from pathlib import Path

import pytest

from mapsvc import create_app
from mapsvc.config import DEFAULTS
from mapsvc.settings import from_config

#: Enough for create_app; a refused setting stops it before the database is opened.
BASE = {"TESTING": True, "DATABASE_URL": "sqlite://"}


@pytest.mark.parametrize("value", ["False", "no", 0, None])
def test_quick_exit_wipes_must_be_true_or_false(app_config, value):
    with pytest.raises(ValueError, match="QUICK_EXIT_WIPES"):
        create_app({**app_config, "QUICK_EXIT_WIPES": value})


def test_the_defaults_are_valid():
    made = from_config({**DEFAULTS, "DATABASE_URL": "sqlite://"})

    assert made.moderation.page_size == DEFAULTS["MODERATION_PAGE_SIZE"]
    assert made.routes.alpha == DEFAULTS["ROUTE_ALPHA"]
    assert made.tiles.view.min_zoom == DEFAULTS["TILE_MIN_ZOOM"]
    assert made.limits.burst_hold == DEFAULTS["BURST_HOLD"]


@pytest.mark.parametrize("name", sorted(DEFAULTS))
def test_every_setting_is_checked_at_start_up_by_name(name):
    """A value of no setting's kind, in any one of them, stops create_app with a message naming it."""
    with pytest.raises(ValueError, match=name):
        create_app({**BASE, name: object()})


@pytest.mark.parametrize(
    ("setting", "allowed"),
    [
        # These used to pass start-up and fail (a 500, or nonsense) at the first request reading them.
        ({"MODERATION_PAGE_SIZE": 0}, "from 1 to 1000"),
        ({"MODERATION_PAGE_SIZE": "x"}, "whole number"),
        ({"MODERATION_RECENT_DAYS": "7"}, "whole number of days"),
        ({"MAP_REFRESH_S": 0}, "whole number of seconds"),
        ({"MAP_EVENT_LIMIT": 20_000}, "LAYER_LIMIT_MAX"),
        ({"REPORT_RETRY_BASE_MS": 5000, "REPORT_RETRY_MAX_MS": 1000}, "REPORT_RETRY_BASE_MS or more"),
        ({"HSTS_MAX_AGE_S": -1}, "of at least 0"),
        ({"UPLOAD_MAX_BYTES": "20 MB"}, "whole number of bytes"),
        ({"INVITATION_MAX_DAYS": 0}, "whole number of days"),
        ({"REAUTH_MINUTES": "5"}, "number of minutes above 0"),
        ({"LOGIN_SESSION_HOURS": 0}, "number of hours above 0"),
        ({"PASSWORD_MIN_LENGTH": 300}, "from 1 to 256"),
        ({"TOTP_WAIT_MINUTES": 10, "TOTP_WAIT_MAX_MINUTES": 5}, "TOTP_WAIT_MINUTES or more"),
        ({"ARGON2_PROFILE": "FASTEST"}, "argon2.profiles"),
        ({"LOGIN_RATE_LIMIT": "ten a minute"}, "Flask-Limiter syntax"),
        ({"BURST_HOLD": "8 per hour;20 per day"}, "one limit"),
        ({"TILE_MISS_RATE_LIMIT": 60}, "Flask-Limiter syntax"),
        ({"TILE_URL": "https://{s}.tile.example/{z}/{x}/{y}.png"}, "{z}, {x} and {y}"),
        ({"TILE_TIMEOUT_S": 0}, "number of seconds above 0"),
        ({"TILE_USER_AGENT": ""}, "User-Agent"),
        ({"QUICK_EXIT_URL": "javascript:history.back()"}, "https://"),
        ({"DEFAULT_LANGUAGE": "de"}, "ru, ky, en"),
        ({"SESSION_COOKIE_SECURE": "no"}, "true or false"),
        ({"STORE_DETAILS": "false"}, "true or false"),
        ({"RATELIMIT_ENABLED": "yes"}, "true or false"),
        ({"ADVOCACY_RESOLUTION": 16}, "H3 resolution"),
        ({"ROUTE_CATEGORY_WEIGHTS": [1, 0.5]}, "map categories"),
        ({"ROUTE_ALPHA": "5"}, "between 0 and ROUTE_ALPHA_MAX"),
        ({"ROUTE_WALK_SPEED_KMH": 0}, "positive"),
        ({"ROUTE_MAX_AHEAD_HOURS": 0}, "number of hours above 0"),
        ({"PRIVACY_LEVEL": "x"}, "positive number"),
        ({"LAYER_LIMIT_DEFAULT": 20_000}, "LAYER_LIMIT_MAX"),
        ({"SERVICE_AREA": "atlantis"}, "unknown city"),
        ({"CATEGORY_OVERRIDES": {"raid": 3}}, "mapping"),
        ({"MAX_CONTENT_LENGTH": 0}, "whole number of bytes"),
    ],
)
def test_a_bad_value_refuses_create_app_naming_the_setting_and_what_is_allowed(setting, allowed):
    name = list(setting)[-1]
    with pytest.raises(ValueError, match=name) as refused:
        create_app({**BASE, **setting})

    assert allowed in str(refused.value)


def test_the_settings_cannot_be_changed_once_made(app):
    made = app.extensions["mapsvc.settings"]

    with pytest.raises(dataclasses.FrozenInstanceError):
        made.moderation.page_size = 5  # type: ignore[misc]


def test_the_secrets_stay_out_of_the_settings_repr(app_config, tmp_path):
    database = f"sqlite:///{tmp_path / 'pw-in-the-url.sqlite3'}"
    app = create_app(
        {
            **app_config,
            "DATABASE_URL": database,
            "LIMIT_KEY_SECRET": "s" * 40,
            "DEVICE_COOKIE_SECRET": "d" * 40,
            "TILE_URL": "https://tiles.example/{z}/{x}/{y}.png?key=tile-key-secret",
        }
    )
    try:
        made = app.extensions["mapsvc.settings"]
        text = repr(made)
        shown = repr(app.jinja_env.globals["settings"])
    finally:
        app.extensions["mapsvc.store"].dispose()

    assert "s" * 40 not in text and "d" * 40 not in text
    assert "totp_keys" not in text and "key_secret" not in text
    assert "pw-in-the-url" not in text and "tile-key-secret" not in text and "memory://" not in text
    assert made.database.url == database and "tile-key-secret" in made.tiles.url  # kept, only not shown
    assert "password_min_length" in shown and "accounts" not in shown and "limits" not in shown


def test_a_bad_limits_store_uri_is_refused_without_echoing_it(app_config):
    with pytest.raises(ValueError, match="RATELIMIT_STORAGE_URI") as refused:
        create_app({**app_config, "RATELIMIT_STORAGE_URI": "redis:/:hunter2@localhost"})
    assert "hunter2" not in str(refused.value)


def test_a_numeric_limits_key_prefix_from_the_environment_is_taken_as_text(app_config):
    app = create_app({**app_config, "RATELIMIT_KEY_PREFIX": 123})
    try:
        assert app.extensions["mapsvc.settings"].limits.key_prefix == "123"
    finally:
        app.extensions["mapsvc.store"].dispose()


# --- nothing reads the configuration but the settings -------------------------------------------

PACKAGE = Path(__file__).resolve().parent.parent / "mapsvc"
#: create_app fills the configuration in; mapsvc.settings reads it, once.
CONFIG_READERS = {"__init__.py", "settings.py"}


def config_reads(source: str) -> list[str]:
    """Return where a module's source reads ``app.config`` (or ``current_app.config``), as ``line: text``.

    Writing Flask's and its extensions' own keys (``app.config[k] = v``, ``setdefault``) is no read.
    """
    tree = ast.parse(source)
    parents = {child: node for node in ast.walk(tree) for child in ast.iter_child_nodes(node)}
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Attribute) and node.attr == "config"):
            continue
        parent = parents.get(node)
        written = isinstance(parent, ast.Subscript) and isinstance(parent.ctx, ast.Store)
        if written or (isinstance(parent, ast.Attribute) and parent.attr == "setdefault"):
            continue
        found.append((node.lineno, f"{node.lineno}: {ast.unparse(parent or node)}"))
    return [text for _line, text in sorted(found)]


def test_the_reader_finds_each_way_of_reading_the_configuration():
    source = 'x = app.config["A"]\ny = current_app.config.get("B")\nf(app.config)\napp.config["C"] = 1\n'
    assert config_reads(source) == ["1: app.config['A']", "2: current_app.config.get", "3: f(app.config)"]
    assert config_reads('app.config.setdefault("RATELIMIT_HEADERS_ENABLED", False)\n') == []


@pytest.mark.parametrize(
    "path",
    sorted(p for p in PACKAGE.rglob("*.py") if str(p.relative_to(PACKAGE)) not in CONFIG_READERS),
    ids=lambda p: str(p.relative_to(PACKAGE)),
)
def test_no_module_reads_the_configuration_but_the_settings(path: Path):
    assert config_reads(path.read_text()) == []
