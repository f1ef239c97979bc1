"""What the web benchmarks share: the settings, one gunicorn serving the project behind the
B0 baselines, wrk against it, the same pages in-process with their queries counted, the
machine's description and the section of docs/benchmarks.md each benchmark rewrites.

Every figure is read against the hello-world baseline served by the same server in the
same run (a ratio): absolute numbers move with the machine and its load.
"""

from __future__ import annotations

import os
import platform
import re
import shutil
import socket
import statistics
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "benchmarks.md"
WRK = shutil.which("wrk") or ""
WRK_SCRIPT = """
done = function(summary, latency, requests)
  local errors = summary.errors
  io.write(string.format("BENCH %d %d %.1f %.1f %.1f %d %d\\n", summary.requests, summary.duration,
    latency:percentile(50), latency:percentile(95), latency:percentile(99), errors.status,
    errors.connect + errors.read + errors.write + errors.timeout))
end
"""
FRONT_DESK = "bench.frontdesk@bench.invalid"


@dataclass
class Target:
    key: str
    label: str
    path: str
    signed_in: bool
    # Filled in by the runs.
    status: int = 0
    size: int = 0
    rps: float = 0.0
    p50: float = 0.0
    p95: float = 0.0
    p99: float = 0.0
    requests: int = 0
    errors: int = 0
    queries: int = 0
    sql_ms: float = 0.0
    inprocess_ms: float = 0.0
    notes: list[str] = field(default_factory=list)


# Settings a benchmark can try without editing settings.py (``BENCH_OVERRIDES``, comma-
# separated), to measure a proposed change against the configuration as it is.
OVERRIDES = {
    "no_health_checks": "CONN_HEALTH_CHECKS off (no SELECT 1 before each request's first query)",
    "cached_sessions": "sessions read from Redis (cached_db engine), written to both",
}


def overrides_apply() -> list[str]:
    from django.conf import settings
    from django.db import connections

    applied = [name for name in os.environ.get("BENCH_OVERRIDES", "").split(",") if name]
    for name in applied:
        if name == "no_health_checks":
            # Every thread's connection is made from this dict.
            connections.settings["default"]["CONN_HEALTH_CHECKS"] = False
        elif name == "cached_sessions":
            if "redis" not in settings.CACHES["default"]["BACKEND"].lower():
                raise RuntimeError("cached_sessions needs REDIS_URL (a cache shared by the workers)")
            settings.SESSION_ENGINE = "django.contrib.sessions.backends.cached_db"
        else:
            raise RuntimeError(f"unknown override {name!r}; known: {', '.join(OVERRIDES)}")
    return applied


def bench_application() -> Any:
    """gunicorn's app factory: the project's WSGI app with the baselines in front of its URLs."""
    sys.path.insert(0, str(ROOT))
    import django
    from django.conf import settings

    django.setup()
    settings.ROOT_URLCONF = "mesoclinic.bench_views"
    overrides_apply()
    from django.core.wsgi import get_wsgi_application

    return get_wsgi_application()


def environment(work: Path, *, mfa_required: bool = False) -> None:
    """The same settings for this process and the server: DEBUG off, plain HTTP on loopback.

    ``mfa_required`` as in production (the default when DEBUG is off): the signed-in user
    then has a TOTP authenticator, and the MFA check's cost is in every signed-in figure.
    """
    if not os.environ.get("DATABASE_URL"):
        sys.exit("Set DATABASE_URL to the benchmark database (see the docstring); the dev database is left alone.")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mesoclinic.settings")
    os.environ.setdefault("SECRET_KEY", "bench-only-secret-key-0123456789-abcdefghijklmnopqrstuvwxyz-ABCDEF")
    os.environ["DEBUG"] = "false"
    os.environ["SECURE_SSL_REDIRECT"] = "false"
    os.environ["SECURE_COOKIES"] = "false"
    os.environ["MFA_REQUIRED"] = "true" if mfa_required else "false"
    os.environ["ALLOWED_HOSTS"] = "127.0.0.1,localhost"
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    # Nothing of the developer's var/ is touched but the database named above.
    os.environ["VAR_DIR"] = str(work / "var")
    os.environ["STATIC_ROOT"] = str(work / "static")
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command
    from django.urls import clear_url_caches

    settings.ROOT_URLCONF = "mesoclinic.bench_views"
    clear_url_caches()
    call_command("collectstatic", interactive=False, verbosity=0)


def session_cookie(email: str = FRONT_DESK, *, with_totp: bool = False) -> tuple[str, str]:
    """A signed-in session for a seeded user (the benchmark databases only)."""
    from django.conf import settings
    from django.test import Client

    from mesoclinic.models import User

    user = User.objects.get(email=email)
    if with_totp:
        from allauth.mfa.models import Authenticator

        Authenticator.objects.get_or_create(
            user=user, type=Authenticator.Type.TOTP, defaults={"data": {"secret": "bench-not-a-real-secret"}}
        )
    client = Client()
    client.force_login(user)
    return settings.SESSION_COOKIE_NAME, client.cookies[settings.SESSION_COOKIE_NAME].value


def in_process(targets: list[Target], cookie: tuple[str, str], runs: int) -> None:
    """Each view through the test client: query count, SQL time (each query timed around the
    driver call, fetch included) and the whole request's time; medians of ``runs`` after a
    warm-up request."""
    from django.db import connection
    from django.test import Client

    timings: list[float] = []

    def timed(execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
        start = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            timings.append((time.perf_counter() - start) * 1000)

    signed_in = Client()
    signed_in.cookies[cookie[0]] = cookie[1]
    anonymous = Client()
    for target in targets:
        client = signed_in if target.signed_in else anonymous
        client.get(target.path, HTTP_HOST="127.0.0.1")
        counts, sql, wall = [], [], []
        for _ in range(runs):
            timings.clear()
            with connection.execute_wrapper(timed):
                start = time.perf_counter()
                response = client.get(target.path, HTTP_HOST="127.0.0.1")
                wall.append((time.perf_counter() - start) * 1000)
            counts.append(len(timings))
            sql.append(sum(timings))
        target.status, target.size = response.status_code, len(response.content)
        # The session's idle clock is written at most every 30 s: a slow page's runs meet
        # that extra UPDATE now and then. The page's own count is the smallest.
        target.queries = min(counts)
        if min(counts) != max(counts):
            target.notes.append(f"{max(counts) - min(counts)} extra query in some runs (session refresh)")
        target.sql_ms, target.inprocess_ms = statistics.median(sql), statistics.median(wall)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def server_start(port: int, workers: int, threads: int, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    command = [
        sys.executable, "-m", "gunicorn", "harness:bench_application()",
        "--pythonpath", f"{ROOT},{ROOT / 'bench'}",
        "--bind", f"127.0.0.1:{port}",
        "--worker-class", "gthread", "--workers", str(workers), "--threads", str(threads),
        "--log-level", "warning",
    ]  # fmt: skip
    server = subprocess.Popen(command, cwd=ROOT, env=os.environ | (env or {}))  # noqa: S603 - our own command line
    try:
        for _ in range(120):
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/bench/hello/", timeout=10).read()
                return server
            except OSError:  # refused while it boots, or a timeout on the first slow request
                if server.poll() is not None:
                    raise RuntimeError("gunicorn did not start") from None
                time.sleep(0.25)
        raise RuntimeError("gunicorn did not answer within 30 s")
    except BaseException:
        server_stop(server)
        raise


def server_stop(server: subprocess.Popen[bytes]) -> None:
    server.terminate()
    server.wait(timeout=30)


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


def preflight(target: Target, base: str, cookie: str) -> bool:
    """A page that answers a redirect (signed out) or an error would measure nothing useful."""
    headers = {"Cookie": cookie} if target.signed_in else {}
    request = urllib.request.Request(base + target.path, headers=headers)  # noqa: S310 - http://127.0.0.1 only
    try:
        with urllib.request.build_opener(_NoRedirect).open(request, timeout=30) as response:
            ok = response.status == 200
    except urllib.error.HTTPError as error:
        ok = False
        target.notes.append(f"server answered {error.code}")
    return ok


def wrk(target: Target, base: str, cookie: str, *, duration: int, connections: int, threads: int, script: Path) -> None:
    header = ["-H", f"Cookie: {cookie}"] if target.signed_in else []
    common = [WRK, f"-t{threads}", f"-c{connections}", "--timeout", "30s", "-s", str(script), *header]
    # Our own command lines, to our own loopback server.
    subprocess.run([*common, "-d2s", base + target.path], check=True, capture_output=True)  # noqa: S603 - warm-up
    output = subprocess.run(  # noqa: S603
        [*common, f"-d{duration}s", base + target.path], check=True, capture_output=True, text=True
    ).stdout
    line = next(line for line in output.splitlines() if line.startswith("BENCH "))
    requests, micros, p50, p95, p99, status_errors, socket_errors = line.split()[1:]
    target.requests = int(requests)
    target.rps = int(requests) / (int(micros) / 1e6)
    target.p50, target.p95, target.p99 = float(p50) / 1000, float(p95) / 1000, float(p99) / 1000
    target.errors = int(status_errors) + int(socket_errors)


def wrk_script(work: Path) -> Path:
    script = work / "report.lua"
    script.write_text(WRK_SCRIPT)
    return script


def machine() -> dict[str, str]:
    import django
    import gunicorn
    import psycopg
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SHOW server_version")
        postgres = cursor.fetchone()[0]
    wrk_version = (
        subprocess.run([WRK, "-v"], capture_output=True, text=True).stdout.split()[1] if WRK else "(not installed)"  # noqa: S603
    )
    return {
        "nproc": str(os.cpu_count()),
        "python": platform.python_version(),
        "django": django.__version__,
        "gunicorn": gunicorn.__version__,
        "psycopg": psycopg.__version__,
        "postgres": postgres.split()[0],
        "wrk": wrk_version,
        "platform": platform.platform(terse=True),
        "load": "{:.1f} / {:.1f} / {:.1f}".format(*os.getloadavg()),
    }


def ratio_text(value: float) -> str:
    return f"{value:.2f}" if value >= 0.1 else f"{value:.2g}"


def rate_text(value: float) -> str:
    return f"{value:,.0f}" if value >= 10 else f"{value:.2f}"


def target_row(target: Target, hello: Target) -> str:
    """One table row: | label | req/s | ratio | p50 | p95 | queries | SQL ms | notes |."""
    t = target
    if not t.rps:
        why = "; ".join(t.notes) or "not run"
        return (
            f"| {t.label} | — | — | — | — | {t.queries} | {t.sql_ms:.1f} "
            f"| {t.inprocess_ms:,.1f} ms in-process, {t.size / 1024:,.0f} KiB; {why} |"
        )
    notes = "; ".join([f"{t.requests:,} requests", *t.notes, *([f"{t.errors} errors"] if t.errors else [])])
    return (
        f"| {t.label} | {rate_text(t.rps)} | {ratio_text(t.rps / hello.rps)} | {t.p50:.1f} | {t.p95:.1f} "
        f"| {t.queries} | {t.sql_ms:.1f} | {t.inprocess_ms:,.1f} ms in-process, {t.size / 1024:,.0f} KiB; {notes} |"
    )


TABLE_HEAD = """| target | requests/s | ratio to hello | p50 ms | p95 ms | queries | SQL ms | notes |
| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |"""


def section_number(title: str) -> int:
    found = re.match(r"## B(\d+)", title)
    return int(found.group(1)) if found else 999


def doc_update(text: str, doc: Path = DOC) -> None:
    """Replace the section that ``text`` starts with (its ``## Bn — …`` line), or insert it
    before the first section with a higher number."""
    title = text.splitlines()[0]
    number = section_number(title)
    current = doc.read_text()
    pattern = re.compile(rf"^## B{number}\b.*?(?=^## |\Z)", re.S | re.M)
    if pattern.search(current):
        current = pattern.sub(lambda _: text.rstrip("\n") + "\n\n", current, count=1)
    else:
        later = [m for m in re.finditer(r"^## B(\d+)", current, re.M) if int(m.group(1)) > number]
        if later:
            at = later[0].start()
            current = current[:at] + text.rstrip("\n") + "\n\n" + current[at:]
        else:
            current = current.rstrip("\n") + "\n\n" + text
    doc.write_text(current.rstrip("\n") + "\n")
