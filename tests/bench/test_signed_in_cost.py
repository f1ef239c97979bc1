"""What every signed-in request pays before its view runs (B0's signed-in hello).

With MFA_REQUIRED on, the enrolment check used to read the authenticators on every request;
a session now remembers that its user passed it. These tests pin that cost and show that
the enforcement still holds.
"""

from __future__ import annotations

from allauth.mfa.models import Authenticator
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from mesoclinic.middleware import SESSION_MFA_CONFIRMED
from mesoclinic.models import User
from tests.factories import PASSWORD


def _authenticator_reads(client: Client, url: str) -> tuple[int, int]:
    with CaptureQueriesContext(connection) as captured:
        status = client.get(url).status_code
    reads = sum(1 for q in captured.captured_queries if "mfa_authenticator" in q["sql"])
    return status, reads


def test_mfa_check_reads_the_database_once_per_session(front_desk_client: Client, front_desk: User, settings) -> None:
    settings.MFA_REQUIRED = True
    Authenticator.objects.create(user=front_desk, type=Authenticator.Type.TOTP, data={"secret": "x"})
    url = reverse("patient_list")
    assert _authenticator_reads(front_desk_client, url) == (200, 1)
    assert front_desk_client.session[SESSION_MFA_CONFIRMED] == front_desk.pk
    assert _authenticator_reads(front_desk_client, url) == (200, 0)
    assert _authenticator_reads(front_desk_client, url) == (200, 0)


def test_without_totp_every_request_is_still_sent_to_enrolment(front_desk_client: Client, settings) -> None:
    settings.MFA_REQUIRED = True
    for _ in range(2):
        response = front_desk_client.get(reverse("patient_list"))
        assert response.status_code == 302 and response.url == reverse("mfa_activate_totp")
    assert SESSION_MFA_CONFIRMED not in front_desk_client.session


def test_another_users_mark_does_not_count(
    front_desk_client: Client, front_desk: User, manager: User, settings
) -> None:
    settings.MFA_REQUIRED = True
    session = front_desk_client.session
    session[SESSION_MFA_CONFIRMED] = manager.pk  # e.g. a session that changed hands at login
    session.save()
    response = front_desk_client.get(reverse("patient_list"))
    assert response.status_code == 302 and response.url == reverse("mfa_activate_totp")


def test_removing_the_authenticator_asks_for_enrolment_again(front_desk: User, settings) -> None:
    settings.MFA_REQUIRED = True
    Authenticator.objects.create(user=front_desk, type=Authenticator.Type.TOTP, data={"secret": "x"})
    client = Client()
    client.force_login(front_desk)
    assert client.get(reverse("patient_list")).status_code == 200
    assert client.session[SESSION_MFA_CONFIRMED] == front_desk.pk
    # allauth asks for the password again before removing a factor.
    response = client.get(reverse("mfa_deactivate_totp"))
    if response.status_code == 302 and response.url.startswith(reverse("account_reauthenticate")):
        client.post(response.url, {"password": PASSWORD})
    response = client.post(reverse("mfa_deactivate_totp"))
    assert response.status_code == 302
    assert not Authenticator.objects.filter(user=front_desk, type=Authenticator.Type.TOTP).exists()
    assert SESSION_MFA_CONFIRMED not in client.session
    response = client.get(reverse("patient_list"))
    assert response.status_code == 302 and response.url == reverse("mfa_activate_totp")
