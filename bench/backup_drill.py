"""Backup and restore drill: pg_dump → pg_restore into a fresh database → same rows, same
checksums, the app works on the copy, and how long the restore took.

    # a fresh database seeded with the demo clinic, dumped, restored and compared
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres .venv/bin/python bench/backup_drill.py
    # or an existing database, read only (e.g. last night's production copy)
    .venv/bin/python bench/backup_drill.py --source-db mesoclinic

Steps:
1. Source: ``--source-db NAME`` is dumped as it is (only read). Without it, a fresh database
   ``<prefix>drill_src`` is created, migrated and seeded (``manage.py demo_seed``).
2. ``pg_dump -Fc`` of the source, timed, size reported.
3. ``pg_restore --exit-on-error`` into a fresh ``<source>_drill_restored`` database, timed:
   that is the figure to plan an outage with.
4. Per table of the ``public`` schema: row count and md5 of every row's text in primary-key
   order, source against copy; sequences' positions (new rows must not collide with
   restored ones); triggers per table (the audit tables' append-only protection is a
   trigger: a copy without it would silently accept edits of history); extensions.
5. Smoke test of the app against the copy, in a child process: ``manage.py check``,
   ``migrate --check`` (no migration missing), the sign-in page, and as a manager the
   patient list, a patient's page and the audit log.

The client programs must be of the server's major version (a newer pg_dump writes
archives an older pg_restore cannot read, and its SET commands fail on an older server):
the drill asks the server its version and takes pg_dump/pg_restore from ``PG_BINDIR``, the
embedded server's wheel (PostgreSQL 18), ``/usr/lib/postgresql/<major>/bin`` or ``PATH``,
the first whose ``--version`` matches. Only databases with "drill" in their name are ever
dropped. Exit status 0 only if everything matched and the smoke test passed; the report
(``--report``, JSON) holds the timings and each table's figures.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

ROOT = Path(__file__).resolve().parent.parent
DRILL = "drill"

# The app as the copy's users would meet it, without TLS or MFA in the way.
SMOKE_SCRIPT = r"""
import json, sys
import django
django.setup()
from django.conf import settings
from django.contrib.staticfiles.storage import staticfiles_storage
from django.core.management import call_command
from django.db.models import Q
from django.test import Client
from mesoclinic.access import Role
from mesoclinic.models import User
from patients.models import Patient

results = {}
call_command("check", fail_level="ERROR", verbosity=0)
results["check"] = "ok"
try:
    call_command("migrate", check_unapplied=True, verbosity=0)
    results["migrate_check"] = "ok"
except SystemExit:
    # The copy is older than this code: its pages would fail for that reason alone.
    results["migrate_check"] = "migrations not applied on the copy (older than this code?)"
    print(json.dumps(results))
    sys.exit(0)
if not settings.DEBUG and not (settings.STATIC_ROOT / staticfiles_storage.manifest_name).exists():
    call_command("collectstatic", interactive=False, verbosity=0)
pages = results["pages"] = {}


def visit(name, client, path):
    try:
        pages[name] = client.get(path).status_code
    except Exception as error:
        pages[name] = f"{type(error).__name__}: {str(error)[:300]}"


# The first manager, or a superuser made for the drill (in the copy only).
manager = User.objects.filter(Q(groups__name=Role.MANAGER.value) | Q(is_superuser=True), is_active=True).first()
if manager is None:
    manager = User.objects.create_user(email="drill-manager@example.test", password=None, is_superuser=True)
anonymous, signed_in = Client(raise_request_exception=True), Client(raise_request_exception=True)
signed_in.force_login(manager)
visit("login", anonymous, "/accounts/login/")
visit("patient_list", signed_in, "/patients/")
patient = Patient.objects.order_by("pk").first()
if patient is not None:
    visit("patient_detail", signed_in, f"/patients/{patient.pk}/")
visit("audit_log", signed_in, "/manage/audit/")
print(json.dumps(results))
"""


@dataclass
class Server:
    """Where the drill talks to: libpq keywords, without a database name."""

    host: str
    port: str
    user: str
    password: str

    @classmethod
    def from_url(cls, url: str) -> Server:
        parsed = urlparse(url)
        return cls(
            host=unquote(parsed.hostname or "") or "localhost",
            port=str(parsed.port or ""),
            user=unquote(parsed.username or "") or "postgres",
            password=unquote(parsed.password or ""),
        )

    def conninfo(self, dbname: str) -> str:
        parts = {"host": self.host, "port": self.port, "user": self.user, "dbname": dbname}
        return " ".join(f"{key}='{value}'" for key, value in parts.items() if value)

    def url(self, dbname: str) -> str:
        from urllib.parse import quote

        password = f":{quote(self.password, safe='')}" if self.password else ""
        port = f":{self.port}" if self.port else ""
        return f"postgres://{quote(self.user, safe='')}{password}@{quote(self.host, safe='')}{port}/{dbname}"

    def env(self) -> dict[str, str]:
        return {**os.environ, "PGPASSWORD": self.password} if self.password else dict(os.environ)


@dataclass
class TableFigures:
    rows: int
    md5: str


@dataclass
class DrillReport:
    server_version: str
    source: str
    restored: str
    pg_dump: str
    pg_restore: str
    seed_seconds: float | None = None
    dump_seconds: float = 0.0
    dump_bytes: int = 0
    restore_seconds: float = 0.0
    tables: dict[str, dict[str, Any]] = field(default_factory=dict)
    mismatches: list[str] = field(default_factory=list)
    smoke: dict[str, Any] = field(default_factory=dict)
    ok: bool = False


def _connect(server: Server, dbname: str) -> Any:
    import psycopg

    return psycopg.connect(server.conninfo(dbname), password=server.password or None, autocommit=True)


def server_major(server: Server) -> tuple[int, str]:
    with _connect(server, "postgres") as conn:
        number = int(conn.execute("SHOW server_version_num").fetchone()[0])
        text = conn.execute("SHOW server_version").fetchone()[0]
    return number // 10000, text


def _bin_dirs(major: int) -> list[Path]:
    dirs = [Path(os.environ["PG_BINDIR"])] if os.environ.get("PG_BINDIR") else []
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # platformdirs, about XDG_RUNTIME_DIR
            from pgserver._commands import POSTGRES_BIN_PATH

        dirs.append(Path(POSTGRES_BIN_PATH))
    except ImportError:  # the embedded server's wheel is optional here
        pass
    dirs.append(Path(f"/usr/lib/postgresql/{major}/bin"))
    return dirs


def client_program(tool: str, major: int) -> str:
    """The path of ``tool`` (pg_dump, pg_restore, …) whose major version is ``major``."""
    candidates = [str(folder / tool) for folder in _bin_dirs(major)]
    found = shutil.which(tool)
    if found:
        candidates.append(found)
    for candidate in candidates:
        if not Path(candidate).is_file():
            continue
        output = subprocess.run([candidate, "--version"], capture_output=True, text=True, check=False).stdout  # noqa: S603
        version = re.search(r"(\d+)(?:\.\d+)?", output)
        if version and int(version.group(1)) == major:
            return candidate
    raise SystemExit(f"no {tool} of PostgreSQL {major} found (tried {', '.join(candidates)}); set PG_BINDIR")


def database_create(server: Server, name: str) -> None:
    """A fresh database ``name`` (dropped first if it exists: only a drill's own)."""
    from psycopg import sql

    if DRILL not in name:
        raise SystemExit(f"refusing to recreate {name!r}: the drill only drops databases named *{DRILL}*")
    with _connect(server, "postgres") as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))


def database_drop(server: Server, name: str) -> None:
    from psycopg import sql

    if DRILL not in name:
        raise SystemExit(f"refusing to drop {name!r}")
    with _connect(server, "postgres") as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def _primary_key(conn: Any, table: str) -> list[str]:
    rows = conn.execute(
        "SELECT a.attname FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey) "
        "WHERE i.indrelid = %s::regclass AND i.indisprimary ORDER BY array_position(i.indkey, a.attnum)",
        [f'public."{table}"'],
    ).fetchall()
    return [row[0] for row in rows]


def database_figures(server: Server, dbname: str) -> dict[str, Any]:
    """Per table rows and checksum, sequences, triggers and extensions of ``dbname``."""
    from psycopg import sql

    figures: dict[str, Any] = {"tables": {}, "sequences": {}, "triggers": {}, "extensions": []}
    with _connect(server, dbname) as conn:
        tables = [row[0] for row in conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")]
        for table in sorted(tables):
            key = _primary_key(conn, table)
            # Every row as text, in key order (the whole row where there is no key): a
            # changed value, a missing or an extra row all change the digest.
            order = sql.SQL(", ").join(sql.Identifier("t", column) for column in key) if key else sql.SQL("t::text")
            query = sql.SQL(
                "SELECT count(*), coalesce(md5(string_agg(t::text, E'\\n' ORDER BY {})), '') FROM {} AS t"
            ).format(order, sql.Identifier("public", table))
            count, digest = conn.execute(query).fetchone()
            figures["tables"][table] = asdict(TableFigures(rows=int(count), md5=digest))
        for name, last_value in conn.execute(
            "SELECT sequencename, last_value FROM pg_sequences WHERE schemaname = 'public' ORDER BY 1"
        ):
            figures["sequences"][name] = last_value
        for table, triggers in conn.execute(
            "SELECT c.relname, string_agg(t.tgname, ',' ORDER BY t.tgname) FROM pg_trigger t "
            "JOIN pg_class c ON c.oid = t.tgrelid JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = 'public' AND NOT t.tgisinternal GROUP BY c.relname ORDER BY 1"
        ):
            figures["triggers"][table] = triggers
        figures["extensions"] = [row[0] for row in conn.execute("SELECT extname FROM pg_extension ORDER BY 1")]
    return figures


def figures_compare(source: dict[str, Any], restored: dict[str, Any]) -> list[str]:
    """What differs between the two databases' figures, one line each (empty: identical)."""
    mismatches = []
    for part in ("tables", "sequences", "triggers"):
        for name in sorted(set(source[part]) | set(restored[part])):
            if source[part].get(name) != restored[part].get(name):
                mismatches.append(f"{part[:-1]} {name}: {source[part].get(name)} != {restored[part].get(name)}")
    if source["extensions"] != restored["extensions"]:
        mismatches.append(f"extensions: {source['extensions']} != {restored['extensions']}")
    return mismatches


def _manage(server: Server, dbname: str, *args: str, script: str | None = None) -> subprocess.CompletedProcess:
    env = {
        **server.env(),
        "DATABASE_URL": server.url(dbname),
        "DEBUG": os.environ.get("DEBUG", "false"),
        "SECRET_KEY": os.environ.get("SECRET_KEY", "backup-drill-secret-key-0123456789-abcdefghijklmnopqrstuvwxyz"),
        "SECURE_SSL_REDIRECT": "false",
        "SECURE_COOKIES": "false",
        "MFA_REQUIRED": "false",
        "ALLOWED_HOSTS": "testserver,localhost,127.0.0.1",
        "DJANGO_SETTINGS_MODULE": "mesoclinic.settings",
    }
    command = [sys.executable, "-c", script] if script else [sys.executable, "manage.py", *args]
    return subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600, check=False)  # noqa: S603


def smoke_test(server: Server, dbname: str) -> dict[str, Any]:
    """The app against the restored copy: system check, no missing migration, a few pages."""
    done = _manage(server, dbname, script=SMOKE_SCRIPT)
    if done.returncode != 0:
        return {"error": (done.stdout + done.stderr)[-3000:]}
    return json.loads(done.stdout.strip().splitlines()[-1])


def smoke_passed(results: dict[str, Any]) -> bool:
    pages = results.get("pages")
    return (
        results.get("check") == "ok"
        and results.get("migrate_check") == "ok"
        and isinstance(pages, dict)
        and bool(pages)
        and all(status == 200 for status in pages.values())
    )


def _run(command: Sequence[str], server: Server) -> float:
    started = time.perf_counter()
    done = subprocess.run(command, env=server.env(), capture_output=True, text=True, check=False)  # noqa: S603
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"{command[0]} failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return elapsed


def drill(
    server: Server,
    *,
    source_db: str | None,
    prefix: str,
    seed: bool,
    jobs: int,
    keep: bool,
    workdir: Path,
) -> DrillReport:
    major, version = server_major(server)
    pg_dump, pg_restore = client_program("pg_dump", major), client_program("pg_restore", major)
    source = source_db or f"{prefix}{DRILL}_src"
    restored = f"{source}_{DRILL}_restored" if source_db else f"{prefix}{DRILL}_restored"
    report = DrillReport(
        server_version=version, source=source, restored=restored, pg_dump=pg_dump, pg_restore=pg_restore
    )
    created_source = source_db is None
    try:
        if created_source:
            database_create(server, source)
            started = time.perf_counter()
            for args in (("migrate", "--no-input", "-v", "0"), ("demo_seed",) if seed else ()):
                if args:
                    done = _manage(server, source, *args)
                    if done.returncode != 0:
                        raise SystemExit(f"seeding failed: {(done.stdout + done.stderr)[-3000:]}")
            report.seed_seconds = round(time.perf_counter() - started, 2)

        dump = workdir / f"{source}.pgc"
        report.dump_seconds = round(_run([pg_dump, "-Fc", "-f", str(dump), "-d", server.conninfo(source)], server), 3)
        report.dump_bytes = dump.stat().st_size

        # The restore as an operator would run it after losing the server: an empty
        # database, the archive, nothing else (extensions and triggers come from the dump).
        started = time.perf_counter()
        database_create(server, restored)
        command = [pg_restore, "--exit-on-error", "--no-owner", "-j", str(jobs), "-d", server.conninfo(restored)]
        _run([*command, str(dump)], server)
        report.restore_seconds = round(time.perf_counter() - started, 3)

        source_figures = database_figures(server, source)
        restored_figures = database_figures(server, restored)
        report.mismatches = figures_compare(source_figures, restored_figures)
        report.tables = source_figures["tables"]
        report.smoke = smoke_test(server, restored)
        report.ok = not report.mismatches and smoke_passed(report.smoke)
    finally:
        if not keep:
            database_drop(server, restored)
            if created_source:
                database_drop(server, source)
    return report


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", default=os.environ.get("DATABASE_URL", ""), help="the server (any database)")
    parser.add_argument("--source-db", help="dump this existing database instead of seeding a fresh one")
    parser.add_argument("--prefix", default="mesoclinic_", help="name prefix of the databases the drill creates")
    parser.add_argument("--no-seed", action="store_true", help="migrate the fresh source but load no demo data")
    parser.add_argument("--jobs", type=int, default=2, help="parallel pg_restore jobs")
    parser.add_argument("--keep", action="store_true", help="keep the drill's databases afterwards")
    parser.add_argument("--report", type=Path, default=ROOT / "var" / "backup-drill.json")
    options = parser.parse_args(argv)
    if not options.database_url:
        # The embedded server, as the app itself would start it.
        sys.path.insert(0, str(ROOT))
        from mesoclinic.embedded import embedded_database_settings

        config = embedded_database_settings(ROOT / "var" / "pgdata")
        server = Server(host=config["HOST"], port=config["PORT"], user=config["USER"], password="")
    else:
        server = Server.from_url(options.database_url)
    with tempfile.TemporaryDirectory(prefix="backup-drill-") as folder:
        report = drill(
            server,
            source_db=options.source_db,
            prefix=options.prefix,
            seed=not options.no_seed,
            jobs=options.jobs,
            keep=options.keep,
            workdir=Path(folder),
        )
    rows = sum(table["rows"] for table in report.tables.values())
    print(f"PostgreSQL {report.server_version}; {report.pg_dump}, {report.pg_restore}")
    if report.seed_seconds is not None:
        print(f"seed (migrate + demo data): {report.seed_seconds:.1f} s")
    print(f"dump: {report.dump_seconds:.2f} s, {report.dump_bytes / 1024:.0f} KiB")
    print(f"restore: {report.restore_seconds:.2f} s ({len(report.tables)} tables, {rows} rows)")
    print("tables, sequences, triggers, extensions: " + ("identical" if not report.mismatches else "DIFFERENT"))
    for line in report.mismatches[:50]:
        print(f"  {line}")
    print(f"smoke test: {'passed' if smoke_passed(report.smoke) else 'FAILED'} {json.dumps(report.smoke)[:2000]}")
    options.report.parent.mkdir(parents=True, exist_ok=True)
    options.report.write_text(json.dumps(asdict(report), indent=2))
    print(f"report: {options.report}")
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
