"""Settings choose the configured services, or the embedded ones."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest

from mesoclinic.settings import database_settings

ROOT = Path(__file__).resolve().parents[2]


def test_database_url_is_used_when_set(tmp_path: Path) -> None:
    config = database_settings("postgres://clinic:s3cret@db.internal:5433/meso", tmp_path)
    assert (config["HOST"], config["PORT"], config["NAME"], config["USER"]) == ("db.internal", 5433, "meso", "clinic")
    assert not (tmp_path / "pgdata").exists()


def test_other_databases_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="PostgreSQL only"):
        database_settings("sqlite:///db.sqlite3", tmp_path)


def test_embedded_postgres_starts_under_var_when_no_url(tmp_path: Path) -> None:
    var = tmp_path / "var"
    config = database_settings("", var)
    assert (var / "pgdata" / "PG_VERSION").exists()
    with psycopg.connect(host=config["HOST"], user=config["USER"], dbname=config["NAME"]) as conn:
        version = conn.execute("SHOW server_version_num").fetchone()[0]
        available = {
            row[0]
            for row in conn.execute("SELECT name FROM pg_available_extensions WHERE name IN ('pg_trgm','btree_gist')")
        }
    assert int(version) >= 180000
    assert available == {"pg_trgm", "btree_gist"}
    # A second start attaches to the running server and keeps the data.
    assert database_settings("", var)["HOST"] == config["HOST"]
    from mesoclinic.embedded import embedded_database_stop

    embedded_database_stop(var / "pgdata")


def _settings_value(expr: str, **env: str) -> str:
    base = {k: v for k, v in os.environ.items() if k not in {"REDIS_URL"}}
    base.update(env)
    result = subprocess.run(
        [sys.executable, "-c", f"import django;django.setup();from django.conf import settings as s;print({expr})"],
        cwd=ROOT,
        env={**base, "DJANGO_SETTINGS_MODULE": "mesoclinic.settings", "DATABASE_URL": "postgres://u@localhost/x"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def test_broker_is_redis_when_redis_url_set() -> None:
    assert _settings_value("s.CELERY_BROKER_URL", REDIS_URL="redis://127.0.0.1:6379/3") == "redis://127.0.0.1:6379/3"


def test_broker_is_the_filesystem_under_var_without_redis(tmp_path: Path) -> None:
    out = _settings_value(
        "s.CELERY_BROKER_URL, s.CELERY_BROKER_TRANSPORT_OPTIONS['data_folder_in']", VAR_DIR=str(tmp_path)
    )
    assert out == f"filesystem:// {tmp_path}/celery/queue"


def test_email_goes_to_smtp_when_configured_else_to_files() -> None:
    assert _settings_value("s.EMAIL_BACKEND", EMAIL_HOST="") == "mesoclinic.mail.FolderEmailBackend"
    assert (
        _settings_value("s.EMAIL_BACKEND", EMAIL_HOST="smtp.example.org")
        == "django.core.mail.backends.smtp.EmailBackend"
    )
