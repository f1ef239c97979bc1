"""A member of staff signs in, sees the dashboard and switches the interface to French."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from mesoclinic.access import Role
from tests.factories import PASSWORD, UserFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_sign_in_see_dashboard_switch_to_french(live_server, page: Page) -> None:
    UserFactory(email="claire@example.test", full_name="Claire Dubois", role=Role.MANAGER)
    page.goto(f"{live_server.url}/")
    expect(page).to_have_url(re.compile(r"/accounts/login/"))
    page.get_by_label("Email").fill("claire@example.test")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign In").click()
    expect(page.get_by_role("heading", name="Welcome, Claire")).to_be_visible()
    expect(page.get_by_role("link", name="System status").first).to_be_visible()

    page.get_by_test_id("lang-fr").click()
    expect(page.get_by_role("heading", name="Bienvenue, Claire")).to_be_visible()
    expect(page.locator("html")).to_have_attribute("lang", "fr")
    expect(page.get_by_role("link", name="État du système").first).to_be_visible()


def test_wrong_password_is_explained_on_the_form(live_server, page: Page) -> None:
    UserFactory(email="paula@example.test", role=Role.PRACTITIONER)
    page.goto(f"{live_server.url}/accounts/login/")
    page.get_by_label("Email").fill("paula@example.test")
    page.get_by_label("Password").fill("not-the-password")
    page.get_by_role("button", name="Sign In").click()
    expect(page.get_by_text("not correct")).to_be_visible()
