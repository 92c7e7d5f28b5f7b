"""The staff pages on a phone: every control has a name, and text meets WCAG AA contrast."""

from __future__ import annotations

import pytest

from mapsvc.core.roles import Role
from tests.browser.test_accessibility import LOW_CONTRAST_JS, unnamed_controls
from tests.helpers import PASSWORD, make_account

PAGES = [
    "/login",
    "/account",
    "/account/tokens",
    "/account/confirm",
    "/account/totp",
    "/moderate/",
    "/plan",
    "/advocacy/",
    "/advocacy/data",
    "/admin/",
    "/admin/invitations",
    "/admin/audit",
]


@pytest.fixture(scope="module")
def admin(service) -> str:  # type: ignore[no-untyped-def]
    """Return the username of an admin (who may open every staff page) of the served demo."""
    make_account(service.app, Role.ADMIN, "a11y-admin")
    return "a11y-admin"


def sign_in(page, service, username: str) -> None:  # type: ignore[no-untyped-def]
    page.goto(service.url + "/login?lang=en")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", PASSWORD)
    page.click("main button[type=submit]")
    page.wait_for_url("**/account**")


@pytest.mark.parametrize("path", PAGES)
def test_staff_pages_name_every_control_and_meet_contrast(page, service, admin, path):
    if path != "/login":
        sign_in(page, service, admin)
    page.goto(service.url + path)
    page.wait_for_load_state("networkidle")

    assert unnamed_controls(page) == []
    assert page.evaluate(LOW_CONTRAST_JS) == []
