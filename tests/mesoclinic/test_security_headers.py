from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.test import Client
from django.urls import reverse

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.django_db
def test_public_page_carries_csp_and_security_headers(anonymous_client: Client) -> None:
    response = anonymous_client.get(reverse("account_login"))
    csp = response["Content-Security-Policy"]
    script_src = next(part for part in csp.split(";") if part.strip().startswith("script-src"))
    assert "'self'" in script_src
    assert "unsafe-inline" not in script_src and "unsafe-eval" not in script_src
    assert "frame-ancestors 'none'" in csp
    assert response["X-Frame-Options"] == "DENY"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Referrer-Policy"] == "same-origin"


def test_signed_in_pages_are_not_cached(manager_client: Client) -> None:
    response = manager_client.get(reverse("dashboard"))
    assert response["Cache-Control"] == "no-store"


def test_pages_load_no_third_party_assets(manager_client: Client) -> None:
    html = manager_client.get(reverse("dashboard")).content.decode()
    assert "/static/vendor/bootstrap/" in html and "/static/vendor/htmx/" in html
    assert "cdn" not in html.lower() and "https://" not in html


def _production_env() -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("SECURE_", "MFA_")) and k != "DJANGO_ALLOW_ASYNC_UNSAFE"
    }
    db = django_settings.DATABASES["default"]
    env.update(
        DEBUG="false",
        SECRET_KEY="prod-like-secret-6f1c2e9a8b7d4c3f2e1d0c9b8a7f6e5d4c3b2a1f0e9d8c7b6a5",
        ALLOWED_HOSTS="clinic.example.org",
        DATABASE_URL=f"postgres://{db['USER']}:{db['PASSWORD']}@{db['HOST'].replace('/', '%2F')}:{db['PORT'] or 5432}/{db['NAME']}",
    )
    return env


def test_check_deploy_is_clean_with_production_settings() -> None:
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env=_production_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "WARNINGS" not in result.stdout + result.stderr


def test_production_defaults_are_safe() -> None:
    code = (
        "from django.conf import settings as s;"
        "print(s.DEBUG, s.SESSION_COOKIE_SECURE, s.CSRF_COOKIE_SECURE, s.SECURE_SSL_REDIRECT, s.SECURE_HSTS_SECONDS>0, s.MFA_REQUIRED)"
    )
    result = subprocess.run(
        [sys.executable, "-c", f"import django;django.setup();{code}"],
        cwd=ROOT,
        env={**_production_env(), "DJANGO_SETTINGS_MODULE": "mesoclinic.settings"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.stdout.split() == ["False", "True", "True", "True", "True", "True"], result.stderr


def test_without_secret_key_a_private_random_key_is_made_once(tmp_path) -> None:
    env = {**_production_env(), "VAR_DIR": str(tmp_path), "DJANGO_SETTINGS_MODULE": "mesoclinic.settings"}
    env.pop("SECRET_KEY")
    code = "import django;django.setup();from django.conf import settings;print(settings.SECRET_KEY)"
    first, second = (
        subprocess.run(
            [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
        ).stdout.strip()
        for _ in range(2)
    )
    assert len(first) >= 50 and first == second
    key_file = tmp_path / "secret_key"
    assert key_file.read_text().strip() == first
    assert key_file.stat().st_mode & 0o777 == 0o600
