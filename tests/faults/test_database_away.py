"""While PostgreSQL is away, pages answer 503 with Retry-After and a friendly page, never a
500 or a traceback; when it is back, the same app process answers 200 again.

The first tests exercise the middleware in this process (a database error raised by the
view, and one raised by an inner middleware: the session load); the last ones run the
app under gunicorn against our own PostgreSQL and really stop and start it.
"""

from __future__ import annotations

import http.client
import re
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from unittest.mock import patch

import pytest
from django.conf import settings
from django.db import OperationalError, connection
from django.test import Client
from django.urls import reverse

from mesoclinic.db_unavailable import RETRY_AFTER_SECONDS
from mesoclinic.models import User
from tests.aftercare.smtp_sink import free_port
from tests.faults.conftest import PrivatePostgres, django_run
from tests.worker_process import ROOT, django_env, wait_for

MIDDLEWARE = "mesoclinic.db_unavailable.DatabaseUnavailableMiddleware"
FRIENDLY = "MesoClinic is briefly unavailable"


@pytest.fixture
def with_middleware(settings: object) -> None:
    """The middleware in place (right after SecurityMiddleware) for in-process tests."""
    middleware = [name for name in settings.MIDDLEWARE if name != MIDDLEWARE]  # type: ignore[attr-defined]
    settings.MIDDLEWARE = [middleware[0], MIDDLEWARE, *middleware[1:]]  # type: ignore[attr-defined]


def _refused(*args: object, **kwargs: object) -> None:
    raise OperationalError("connection to server at 127.0.0.1 failed: Connection refused")


def _database_gone(error: Callable[..., None] = _refused) -> AbstractContextManager:
    """Every new query fails as it does when the server has gone away (undone before the
    test database's own teardown, which queries)."""
    return patch.object(connection, "create_cursor", error)


def _assert_friendly_503(status: int, headers: dict[str, str], body: str) -> None:
    assert status == 503, body[:2000]
    assert headers.get("retry-after") == str(RETRY_AFTER_SECONDS)
    assert "no-store" in headers.get("cache-control", "")
    assert FRIENDLY in body
    assert "Traceback" not in body and "OperationalError" not in body and "Connection refused" not in body


def _client_result(response: object) -> tuple[int, dict[str, str], str]:
    headers = {key.lower(): value for key, value in response.headers.items()}  # type: ignore[attr-defined]
    return response.status_code, headers, response.content.decode()  # type: ignore[attr-defined]


def _quiet_client(user: User | None = None) -> Client:
    # The test client re-raises what reached got_request_exception; a browser gets the page.
    client = Client(raise_request_exception=False)
    if user is not None:
        client.force_login(user)
    return client


def test_a_signed_in_page_answers_503_when_the_session_cannot_be_read(manager: User, with_middleware: None) -> None:
    client = _quiet_client(manager)
    # The first query of a signed-in request is the session's, in a middleware, not the view.
    with _database_gone():
        status, headers, body = _client_result(client.get(reverse("patient_list")))
    _assert_friendly_503(status, headers, body)
    # The visitor stays signed in: the session cookie is not cleared by the failed read.
    assert settings.SESSION_COOKIE_NAME not in client.cookies or client.cookies[settings.SESSION_COOKIE_NAME].value


def test_a_patient_link_answers_503_when_the_view_cannot_query(db: None, with_middleware: None) -> None:
    with _database_gone():
        response = _quiet_client().get("/p/some-token-from-an-email/")
    _assert_friendly_503(*_client_result(response))


def test_other_errors_stay_500(db: None, with_middleware: None) -> None:
    # Only an unreachable database is "try again later"; a bug must still look like one.
    def broken(*args: object, **kwargs: object) -> None:
        raise ZeroDivisionError("a bug")

    with _database_gone(broken):
        assert _quiet_client().get("/p/some-token-from-an-email/").status_code == 500


def test_the_503_page_speaks_french(db: None, with_middleware: None) -> None:
    with _database_gone():
        response = _quiet_client().get("/p/some-token/", HTTP_ACCEPT_LANGUAGE="fr")
    assert response.status_code == 503
    body = response.content.decode()
    assert '<html lang="fr">' in body
    assert "MesoClinic est momentanément indisponible" in body


def test_the_middleware_is_installed_outside_everything_that_queries() -> None:
    # Sessions, authentication, axes and pghistory all query: they must be inside it.
    assert settings.MIDDLEWARE[0] == "django.middleware.security.SecurityMiddleware"
    assert settings.MIDDLEWARE[1] == MIDDLEWARE


# --- the real thing: gunicorn, our own PostgreSQL stopped and started -----------------


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: str


GUNICORN = [sys.executable, "-m", "gunicorn", "mesoclinic.wsgi:application", "-w", "1", "--timeout", "60"]


class App:
    """The app under gunicorn (one sync worker), on our own database."""

    def __init__(self, database_url: str, folder: Path) -> None:
        self.port = free_port()
        self.log_path = folder / "gunicorn.log"
        log = self.log_path.open("w")
        self.process = subprocess.Popen(
            [*GUNICORN, "-b", f"127.0.0.1:{self.port}"],
            cwd=ROOT,
            env=django_env(database_url),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()

    def request(self, method: str, path: str, cookies: dict[str, str] | None = None, body: str = "") -> Answer:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        headers = {"Host": "127.0.0.1"}
        if cookies:
            headers["Cookie"] = "; ".join(f"{key}={value}" for key, value in cookies.items())
        if body:
            headers["Content-Type"] = "application/x-www-form-urlencoded"
            headers["Referer"] = f"http://127.0.0.1:{self.port}{path}"
        try:
            conn.request(method, path, body=body or None, headers=headers)
            response = conn.getresponse()
            return Answer(response.status, {k.lower(): v for k, v in response.getheaders()}, response.read().decode())
        finally:
            conn.close()

    def ready(self) -> bool:
        try:
            return self.request("GET", "/accounts/login/").status == 200
        except OSError:
            return False

    def log(self) -> str:
        return self.log_path.read_text()[-4000:]

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()


SETUP = """
from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
from django.contrib.sessions.backends.db import SessionStore
from aftercare.links import patient_link_create
from mesoclinic.access import Role
from tests.factories import PatientFactory, UserFactory

import secrets
unique = secrets.token_hex(4)
manager = UserFactory(email=f"manager-{unique}@example.test", role=Role.MANAGER)
patient = PatientFactory(created_by=manager, email=f"patient-{unique}@example.test", phone=f"+33612{secrets.randbelow(10**6):06d}")
token = patient_link_create(patient=patient, purpose="preferences")
session = SessionStore()
session[SESSION_KEY] = str(manager.pk)
session[BACKEND_SESSION_KEY] = "allauth.account.auth_backends.AuthenticationBackend"
session[HASH_SESSION_KEY] = manager.get_session_auth_hash()
session.create()
print(json.dumps({"session": session.session_key, "token": token, "patient": patient.pk}))
"""


@pytest.fixture
def app(private_database: PrivatePostgres, tmp_path: Path) -> Iterator[tuple[App, dict[str, str]]]:
    data = django_run(private_database.url(), SETUP)
    app = App(private_database.url(), tmp_path)
    try:
        assert wait_for(app.ready, timeout=60, every=0.25), app.log()
        yield app, data
    finally:
        app.stop()


def _assert_answer_503(answer: Answer) -> None:
    _assert_friendly_503(answer.status, answer.headers, answer.body)


def test_pages_answer_503_while_postgresql_is_stopped_and_200_once_it_is_back(
    app: tuple[App, dict[str, str]], private_database: PrivatePostgres
) -> None:
    server, data = app
    signed_in = {settings.SESSION_COOKIE_NAME: data["session"]}
    staff_pages = [reverse("patient_list"), reverse("patient_detail", args=[data["patient"]]), reverse("dashboard")]
    link = f"/p/{data['token']}/"
    login = server.request("GET", "/accounts/login/")
    csrf_cookie = re.search(r"csrftoken=([^;]+)", login.headers.get("set-cookie", ""))
    csrf_field = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', login.body)
    assert csrf_cookie and csrf_field
    for path in [*staff_pages, link]:
        assert server.request("GET", path, signed_in).status == 200, path

    private_database.stop("fast")
    pid = server.process.pid
    for path in staff_pages:
        _assert_answer_503(server.request("GET", path, signed_in))
    _assert_answer_503(server.request("GET", link))
    # Signing in needs the database (the account, the lockout counter): 503, not a 500.
    form = f"csrfmiddlewaretoken={csrf_field.group(1)}&login=someone%40example.test&password=wrong-password"
    _assert_answer_503(server.request("POST", "/accounts/login/", {"csrftoken": csrf_cookie.group(1)}, form))
    # A page that needs no database (an anonymous visitor sent to sign in) still works.
    assert server.request("GET", reverse("patient_list")).status == 302
    assert "database unavailable for GET" in server.log()

    private_database.start()
    # The same process, no restart: Django's health check replaces the dead connection.
    for path in [*staff_pages, link]:
        answer = server.request("GET", path, signed_in)
        assert answer.status == 200, (path, answer.status, server.log())
    assert server.process.poll() is None and server.process.pid == pid


def test_connections_killed_under_the_app_are_replaced_without_an_error(
    app: tuple[App, dict[str, str]], private_database: PrivatePostgres
) -> None:
    # A failover or an administrator ending sessions: the app's kept connection is dead,
    # the next request must notice before using it (CONN_HEALTH_CHECKS), not fail.
    server, data = app
    signed_in = {settings.SESSION_COOKIE_NAME: data["session"]}
    for _round in range(3):
        assert server.request("GET", reverse("patient_list"), signed_in).status == 200
        assert private_database.terminate_sessions() >= 1  # the app keeps one (CONN_MAX_AGE)
    assert server.request("GET", reverse("patient_list"), signed_in).status == 200, server.log()
