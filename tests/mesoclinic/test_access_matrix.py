"""Role × URL for every page this app adds."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

MANAGER_ONLY = [
    ("system_status", {}),
    ("audit_log", {}),
    ("staff_list", {}),
    ("staff_create", {}),
]


@pytest.mark.django_db
@pytest.mark.parametrize(("name", "kwargs"), MANAGER_ONLY)
def test_anonymous_is_sent_to_login(anonymous_client: Client, name: str, kwargs: dict) -> None:
    response = anonymous_client.get(reverse(name, kwargs=kwargs))
    assert response.status_code == 302
    assert response.url.startswith(reverse("account_login"))


@pytest.mark.parametrize(("name", "kwargs"), MANAGER_ONLY)
@pytest.mark.parametrize("persona", ["practitioner_client", "front_desk_client"])
def test_other_roles_are_refused(request: pytest.FixtureRequest, persona: str, name: str, kwargs: dict) -> None:
    client = request.getfixturevalue(persona)
    response = client.get(reverse(name, kwargs=kwargs))
    assert response.status_code == 403
    assert "not part of your role" in response.content.decode()


@pytest.mark.parametrize(("name", "kwargs"), MANAGER_ONLY)
def test_manager_gets_the_page(manager_client: Client, name: str, kwargs: dict) -> None:
    assert manager_client.get(reverse(name, kwargs=kwargs)).status_code == 200


@pytest.mark.parametrize("persona", ["practitioner_client", "front_desk_client", "manager_client"])
def test_every_role_reaches_the_dashboard(request: pytest.FixtureRequest, persona: str) -> None:
    client = request.getfixturevalue(persona)
    assert client.get(reverse("dashboard")).status_code == 200


def test_manager_posts_are_refused_to_other_roles(practitioner_client: Client, front_desk_client: Client) -> None:
    for client in (practitioner_client, front_desk_client):
        assert client.post(reverse("system_test_email")).status_code == 403
        assert client.post(reverse("system_test_pdf")).status_code == 403
        assert client.post(reverse("staff_create"), {"email": "x@y.test"}).status_code == 403


def test_dashboard_navigation_follows_the_role(front_desk_client: Client, manager_client: Client) -> None:
    assert reverse("audit_log") not in front_desk_client.get(reverse("dashboard")).content.decode()
    assert reverse("audit_log") in manager_client.get(reverse("dashboard")).content.decode()


@pytest.mark.django_db
def test_unknown_page_is_a_friendly_404(anonymous_client: Client) -> None:
    response = anonymous_client.get("/no-such-page/")
    assert response.status_code == 404
    assert "could not find that page" in response.content.decode()


def test_an_unexpected_error_shows_the_friendly_500_page(manager_client: Client, monkeypatch) -> None:
    from mesoclinic import views

    def explode(*args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(views, "role_of", explode)
    manager_client.raise_request_exception = False
    response = manager_client.get(reverse("dashboard"))
    assert response.status_code == 500
    page = response.content.decode()
    assert "Something went wrong on our side" in page and "boom" not in page and "Traceback" not in page
