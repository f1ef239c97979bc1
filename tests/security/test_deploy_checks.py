"""Production settings pass Django's deployment checklist, every page carries the security
headers and the content security policy, and bandit finds nothing unjustified.

tests/mesoclinic/test_security_headers.py checks one page and the default production
settings; here the settings are the ones an operator sets explicitly, a weakened setting
is shown to fail the checklist, and the headers are checked on every page a manager can
open, found through the URL resolver.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings as django_settings
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, reverse

from mesoclinic.models import SystemJob, User
from patients.models import ContraindicationRule
from tests.security.fuzz_inputs import TaintedClinic, tainted_clinic
from treatments.models import DoseLimit, Ingredient, ScheduleException

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ["mesoclinic", "patients", "treatments", "aftercare"]


# --- manage.py check --deploy ---------------------------------------------------------------


def production_env(**overrides: str) -> dict[str, str]:
    """The environment of a production web process, as docs/deployment.md sets it."""
    env = {
        key: value
        for key, value in os.environ.items()
        # The test run's own relaxations (pytest-env) must not leak into "production".
        if not key.startswith(("SECURE_", "MFA_", "DJANGO_")) and key not in {"DEBUG", "SECRET_KEY", "BEHIND_PROXY"}
    }
    db = django_settings.DATABASES["default"]
    env.update(
        DEBUG="false",
        SECRET_KEY="prod-9f8e7d6c5b4a3f2e1d0c9b8a7f6e5d4c3b2a1f0e9d8c7b6a5f4e3d2c1b0a9f8e7d6c5b4a3",
        ALLOWED_HOSTS="clinic.example.org",
        CSRF_TRUSTED_ORIGINS="https://clinic.example.org",
        SITE_URL="https://clinic.example.org",
        SECURE_SSL_REDIRECT="true",
        SECURE_COOKIES="true",
        SECURE_HSTS_SECONDS="31536000",
        SECURE_HSTS_PRELOAD="true",
        MFA_REQUIRED="true",
        DATABASE_URL=f"postgres://{db['USER']}:{db['PASSWORD']}@{db['HOST']}:{db['PORT'] or 5432}/{db['NAME']}",
    )
    env.update(overrides)
    return env


def check_deploy(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )


@pytest.mark.parametrize("behind_proxy", ["false", "true"])
def test_check_deploy_is_clean_with_production_settings(behind_proxy: str) -> None:
    result = check_deploy(production_env(BEHIND_PROXY=behind_proxy))
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "WARNINGS" not in output and "ERRORS" not in output, output


def test_check_deploy_catches_a_weakened_setting() -> None:
    """The check above can fail: insecure cookies and no HSTS are reported."""
    result = check_deploy(production_env(SECURE_COOKIES="false", SECURE_HSTS_SECONDS="0"))
    output = result.stdout + result.stderr
    assert result.returncode != 0, output
    for check in ("security.W004", "security.W012", "security.W016"):
        assert check in output, output


# --- security headers and CSP on every page --------------------------------------------------


def _named_routes() -> list[tuple[str, Any]]:
    """(name, pattern) of every named URL, the Django admin's included."""
    found: list[tuple[str, Any]] = []

    def walk(patterns: list[Any], namespace: str | None) -> None:
        for entry in patterns:
            if isinstance(entry, URLResolver):
                walk(entry.url_patterns, entry.namespace or namespace)
            elif isinstance(entry, URLPattern) and entry.name:
                found.append((f"{namespace}:{entry.name}" if namespace else entry.name, entry.pattern))

    walk(get_resolver().url_patterns, None)
    return found


def _arguments(clinic: TaintedClinic, manager: User) -> dict[str, Any]:
    """A real object for every URL argument, so that detail pages are checked too."""
    patient = clinic.patient
    return {
        "patient_id": patient.pk,
        "consultation_id": clinic.plan.consultation_id,
        "consent_id": clinic.plan.consent_id,
        "photo_id": patient.photos.values_list("pk", flat=True).first(),
        "plan_id": clinic.plan.pk,
        "session_id": clinic.session.pk,
        "event_id": clinic.event.pk,
        "appointment_id": clinic.appointment.pk,
        "message_id": clinic.patient.messages.values_list("pk", flat=True).first(),
        "user_id": clinic.practitioner.pk,
        "location_id": clinic.location.pk,
        "lot_id": clinic.lot.pk,
        "product_id": clinic.lot.product_id,
        "ingredient_id": Ingredient.objects.values_list("pk", flat=True).first(),
        "limit_id": DoseLimit.objects.create(
            ingredient_id=Ingredient.objects.values_list("pk", flat=True).first(), kind="ml_per_session", value=5
        ).pk,
        "rule_id": ContraindicationRule.objects.values_list("pk", flat=True).first(),
        "exception_id": ScheduleException.objects.values_list("pk", flat=True).first(),
        "job_id": SystemJob.objects.create(kind="pdf", requested_by=manager).pk,
        "kind": clinic.plan.consent.text.kind,
        "key": "general",
        "language": "en",
        "token": clinic.links["plan"],
        # allauth's emailed keys (with "key" above): unknown ones get allauth's "bad link" page.
        "uidb36": "1",
        # The Django admin's object pages (a manager who is not staff is sent to its sign-in).
        "app_label": "auth",
        "object_id": str(patient.pk),
        "content_type_id": "1",
    }


def _route_url(name: str, pattern: Any, arguments: dict[str, Any]) -> str | None:
    regex = getattr(pattern, "regex", None)
    parameters = set(getattr(pattern, "converters", {}) or {}) | set(regex.groupindex if regex is not None else {})
    if not parameters <= set(arguments):
        return None
    return reverse(name, kwargs={parameter: arguments[parameter] for parameter in parameters})


def _csp(response: Any) -> dict[str, str]:
    header = response.get("Content-Security-Policy", "")
    directives = (part.strip().split(None, 1) for part in header.split(";") if part.strip())
    return {parts[0]: parts[1] if len(parts) > 1 else "" for parts in directives}


def assert_security_headers(response: Any, where: str, *, signed_in: bool) -> None:
    assert response.get("X-Content-Type-Options") == "nosniff", where
    assert response.get("Strict-Transport-Security", "").startswith("max-age=31536000"), where
    if "html" not in response.get("Content-Type", ""):
        return
    csp = _csp(response)
    assert csp, f"{where}: no Content-Security-Policy"
    assert csp.get("script-src") == "'self'", f"{where}: script-src {csp.get('script-src')!r}"
    assert "unsafe" not in response["Content-Security-Policy"], where
    assert csp.get("frame-ancestors") == "'none'", where
    assert csp.get("object-src") == "'none'", where
    assert csp.get("base-uri") == "'self'" and csp.get("form-action") == "'self'", where
    assert csp.get("default-src") == "'self'", where
    assert response.get("X-Frame-Options") == "DENY", where
    assert response.get("Referrer-Policy") in {"same-origin", "no-referrer"}, where
    assert response.get("Cross-Origin-Opener-Policy") == "same-origin", where
    if signed_in:
        assert "no-store" in response.get("Cache-Control", ""), f"{where}: a signed-in page may be cached"


@pytest.fixture(autouse=True)
def fast_password_hashing(settings: Any) -> None:
    # The personas' passwords are hashed once per test; PBKDF2 would cost a second each.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def clinic(manager: User, practitioner: User, front_desk: User, private_storage: Path, settings: Any) -> TaintedClinic:
    settings.PATIENT_LINK_RATE_LIMIT = 1_000_000
    return tainted_clinic(manager=manager, practitioner=practitioner, front_desk=front_desk)


def test_every_page_carries_the_security_headers(
    clinic: TaintedClinic, manager: User, manager_client: Client, anonymous_client: Client
) -> None:
    arguments = _arguments(clinic, manager)
    opened, unresolved, manager_pages = [], [], 0
    for name, pattern in _named_routes():
        url = _route_url(name, pattern, arguments)
        if url is None:
            unresolved.append(name)
            continue
        for persona, client in (("manager", manager_client), ("anonymous", anonymous_client)):
            response = client.get(url, secure=True)
            assert response.status_code < 500, (persona, name, url, response.status_code)
            where = f"{persona} GET {url} ({name}) {response.status_code}"
            assert_security_headers(response, where, signed_in=persona == "manager")
            manager_pages += persona == "manager" and response.status_code == 200
        opened.append(name)
    assert not unresolved, f"URL arguments the walk cannot fill: {unresolved}"
    assert len(opened) >= 100, opened
    # Not only redirects and refusals: most of them are pages the manager really sees.
    assert manager_pages >= 60, manager_pages


# --- bandit ------------------------------------------------------------------------------------


def test_bandit_is_clean() -> None:
    """Every bandit finding is fixed, or justified once: in the config for a whole class of
    check, or by a ``# nosec Bxxx`` on the line with the reason beside it."""
    result = subprocess.run(
        [sys.executable, "-m", "bandit", "-c", "pyproject.toml", "-q", "-f", "json", "-r", *PACKAGES],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    report = json.loads(result.stdout)
    assert not report["errors"], report["errors"]
    findings = [f"{r['filename']}:{r['line_number']} {r['test_id']} {r['issue_text']}" for r in report["results"]]
    assert not findings, "\n".join(findings)
