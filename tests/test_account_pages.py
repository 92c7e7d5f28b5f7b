"""The account page leads each role to the pages it may use, and to no other."""

from __future__ import annotations

import pytest
from flask import url_for

from mapsvc.core.roles import CAPABILITIES, Capability, Role
from tests.helpers import sign_in

PAGES = {
    "moderate.queue": Capability.MODERATE,
    "planner.page": Capability.PLAN_ROUTES,
    "advocacy.index": Capability.ADVOCACY,
    "admin.index": Capability.MANAGE_ACCOUNTS,
}


@pytest.mark.parametrize("role", [r for r in Role if r is not Role.ANONYMOUS])
def test_the_account_page_links_the_roles_pages(app, client, role):
    sign_in(client, app, role)
    with app.test_request_context():
        paths = {url_for(endpoint): capability for endpoint, capability in PAGES.items()}

    page = client.get("/account").get_data(as_text=True)
    nav = page.split('class="account-pages"', 1)[1].split("</nav>", 1)[0]

    linked = {path for path in paths if f'href="{path}"' in nav}
    assert linked == {path for path, capability in paths.items() if capability in CAPABILITIES[role]}
    for path in linked:
        assert client.get(path).status_code == 200
