"""Sign-in, lockout, MFA, session lifetime."""

from __future__ import annotations

from datetime import timedelta

import pytest
import time_machine
from allauth.mfa.models import Authenticator
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from mesoclinic.models import User
from tests.factories import PASSWORD


def _login(client: Client, email: str, password: str, ip: str = "10.0.0.1"):
    return client.post(reverse("account_login"), {"login": email, "password": password}, REMOTE_ADDR=ip)


def test_login_rotates_the_session_key_and_logout_kills_it(manager: User) -> None:
    client = Client()
    client.get(reverse("account_login"))
    client.session.save()
    before = client.session.session_key
    response = _login(client, manager.email, PASSWORD)
    assert response.status_code == 302
    assert client.session.session_key != before
    session_key = client.session.session_key
    client.post(reverse("account_logout"))
    from django.contrib.sessions.models import Session

    assert not Session.objects.filter(session_key=session_key).exists()
    assert client.get(reverse("dashboard")).status_code == 302


def test_public_signup_is_closed(db: None) -> None:
    client = Client()
    response = client.post(
        reverse("account_signup"), {"email": "intruder@example.test", "password1": "a-long-password-123"}
    )
    assert not User.objects.filter(email="intruder@example.test").exists()
    assert response.status_code in (200, 403)


def test_lockout_after_repeated_failures_is_per_account_and_ip(practitioner: User, settings) -> None:
    settings.AXES_FAILURE_LIMIT = 3
    attacker = Client()
    for _ in range(3):
        _login(attacker, practitioner.email, "wrong-password", ip="203.0.113.9")
    locked = _login(attacker, practitioner.email, PASSWORD, ip="203.0.113.9")
    assert locked.status_code == 429
    assert "Too many failed sign-in attempts" in locked.content.decode()
    # The practitioner on the clinic's own network still gets in.
    clinic = Client()
    ok = _login(clinic, practitioner.email, PASSWORD, ip="192.0.2.20")
    assert ok.status_code == 302
    assert clinic.get(reverse("dashboard")).status_code == 200


def test_wrong_password_shows_an_error_next_to_the_form(practitioner: User) -> None:
    response = _login(Client(), practitioner.email, "nope")
    assert response.status_code == 200
    assert "not correct" in response.content.decode()


def test_mfa_is_enforced_when_the_setting_is_on(manager: User, settings) -> None:
    settings.MFA_REQUIRED = True
    manager_client = Client()
    assert _login(manager_client, manager.email, PASSWORD).status_code == 302
    response = manager_client.get(reverse("audit_log"))
    assert response.status_code == 302
    assert response.url == reverse("mfa_activate_totp")
    # The enrolment pages stay reachable: allauth asks for the password again first.
    response = manager_client.get(reverse("mfa_activate_totp"))
    assert response.url.startswith(reverse("account_reauthenticate"))
    response = manager_client.post(response.url, {"password": PASSWORD})
    assert response.status_code == 302
    page = manager_client.get(reverse("mfa_activate_totp"))
    assert page.status_code == 200
    assert "Authenticator" in page.content.decode()
    Authenticator.objects.create(user=manager, type=Authenticator.Type.TOTP, data={"secret": "x"})
    assert manager_client.get(reverse("audit_log")).status_code == 200


def test_mfa_not_enforced_when_off(manager_client: Client, settings) -> None:
    settings.MFA_REQUIRED = False
    assert manager_client.get(reverse("audit_log")).status_code == 200


def test_idle_timeout_ends_the_session(manager: User, settings) -> None:
    settings.SESSION_IDLE_TIMEOUT = timedelta(minutes=15)
    with time_machine.travel(timezone.now(), tick=False) as traveller:
        client = Client()
        assert _login(client, manager.email, PASSWORD).status_code == 302
        assert client.get(reverse("dashboard")).status_code == 200
        traveller.shift(timedelta(minutes=14))
        assert client.get(reverse("dashboard")).status_code == 200
        traveller.shift(timedelta(minutes=16))
        response = client.get(reverse("dashboard"))
        assert response.status_code == 302
        assert response.url.startswith(reverse("account_login"))


def test_absolute_cap_ends_an_active_session(manager: User, settings) -> None:
    settings.SESSION_IDLE_TIMEOUT = timedelta(minutes=15)
    settings.SESSION_ABSOLUTE_TIMEOUT = timedelta(hours=1)
    with time_machine.travel(timezone.now(), tick=False) as traveller:
        client = Client()
        assert _login(client, manager.email, PASSWORD).status_code == 302
        for _ in range(5):
            traveller.shift(timedelta(minutes=10))
            assert client.get(reverse("dashboard")).status_code == 200
        traveller.shift(timedelta(minutes=11))
        assert client.get(reverse("dashboard")).status_code == 302


@pytest.mark.django_db
def test_inactive_staff_cannot_sign_in(practitioner: User) -> None:
    practitioner.is_active = False
    practitioner.save()
    client = Client()
    _login(client, practitioner.email, PASSWORD)
    assert client.get(reverse("dashboard")).status_code == 302
