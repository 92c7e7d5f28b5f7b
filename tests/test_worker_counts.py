"""``mapsvc serve --workers N`` refuses counts that each worker would keep apart in its memory."""

from __future__ import annotations

import os
import signal
import subprocess

import pytest

from mapsvc.config import DEFAULTS
from mapsvc.server.worker_counts import PASSWORD_SETTINGS, counted_per_worker, refusal
from mapsvc.settings import LimitSettings
from tests.servers import MAPSVC, free_port

REDIS = "redis://127.0.0.1:6379/0"
PASSWORDS_OFF = dict.fromkeys(PASSWORD_SETTINGS, "")


def limits(**config: object) -> LimitSettings:
    """Return the limit settings of the defaults changed by ``config``, checked as at start-up."""
    return LimitSettings.from_config({**DEFAULTS, **config})


@pytest.mark.engines("sqlite")
def test_serve_with_several_workers_and_limits_in_memory_refuses_to_start(migrated_template, tmp_path):
    """The real command, on a database it could serve: exit 1, naming the setting and what to do."""
    env = {**os.environ, "MAPSVC_DATABASE_URL": migrated_template.fresh(tmp_path)}
    command = [str(MAPSVC), "serve", "--port", str(free_port()), "--workers", "3"]
    with subprocess.Popen(command, env=env, stderr=subprocess.PIPE, text=True, start_new_session=True) as server:
        try:
            stderr = server.communicate(timeout=60)[1]
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            pytest.fail("mapsvc serve started with three workers counting apart")

    assert server.returncode == 1
    message = " ".join(stderr.split())
    assert 'RATELIMIT_STORAGE_URI "memory://"' in message
    assert "3 times" in message
    for setting in ("INTAKE_RATE_LIMIT", "BURST_HOLD", "LOGIN_FAILURE_LIMIT", "redis://", "--workers 1"):
        assert setting in message


@pytest.mark.parametrize(
    ("config", "workers"),
    [
        ({}, 1),
        ({"RATELIMIT_STORAGE_URI": REDIS}, 4),
        ({"RATELIMIT_ENABLED": False, **PASSWORDS_OFF}, 4),
    ],
    ids=["one-worker", "redis", "nothing-counted"],
)
def test_serve_may_start_when_no_count_is_kept_apart(config, workers):
    assert refusal(limits(**config), workers) is None


def test_every_limit_burst_hold_and_password_budget_is_named_by_default():
    assert counted_per_worker(limits()) == [
        "INTAKE_RATE_LIMIT",
        "BURST_HOLD",
        "LOGIN_RATE_LIMIT",
        "READ_RATE_LIMIT",
        "TILE_OVERVIEW_RATE_LIMIT",
        "TILE_MISS_RATE_LIMIT",
        "TILE_DEEP_MISS_RATE_LIMIT",
        "TILE_UPSTREAM_RATE_LIMIT",
        *PASSWORD_SETTINGS,
    ]


def test_the_password_budgets_count_even_with_rate_limits_off():
    """They do not follow RATELIMIT_ENABLED (mapsvc.web.auth.guessing), so several workers still multiply them."""
    assert counted_per_worker(limits(RATELIMIT_ENABLED=False)) == list(PASSWORD_SETTINGS)


def test_the_known_devices_budget_unset_counts_only_with_the_accounts_budget():
    config = {"RATELIMIT_ENABLED": False, **PASSWORDS_OFF, "LOGIN_KNOWN_DEVICE_FAILURE_LIMIT": None}
    assert counted_per_worker(limits(**config)) == []
    with_account = limits(**{**config, "LOGIN_ACCOUNT_FAILURE_LIMIT": "10 per hour"})
    assert counted_per_worker(with_account) == ["LOGIN_ACCOUNT_FAILURE_LIMIT", "LOGIN_KNOWN_DEVICE_FAILURE_LIMIT"]


def test_one_worker_and_the_intake_worker_with_limits_in_memory_are_refused_by_name():
    """The intake worker is a second process: with counts in memory, each of the two would count apart."""
    message = refusal(limits(), 1, intake=True)

    assert message is not None
    assert "--workers 1 --intake-worker" in message
    assert "2 times" in message
    assert "no intake worker" in message
    assert refusal(limits(RATELIMIT_STORAGE_URI=REDIS), 1, intake=True) is None
