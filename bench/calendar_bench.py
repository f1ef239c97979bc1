"""B4 — calendar: the day and week views at 1M appointments / 50 practitioners, as ratios
to the B0 baselines (a hello-world view, a primary-key lookup) served in the same run.

    createdb -h 127.0.0.1 -U postgres mesoclinic_bench1m
    export DATABASE_URL=postgres://postgres@127.0.0.1:5432/mesoclinic_bench1m
    .venv/bin/python manage.py migrate && .venv/bin/python manage.py bench_seed_calendar
    .venv/bin/python bench/calendar_bench.py [--duration 10] [--connections 8] [--no-doc]

One gunicorn (gthread, DEBUG off, the production middleware) serves every target on
loopback; wrk drives it, with the front desk's session cookie for the signed-in pages.
The baselines are mounted by ``mesoclinic/bench_views.py`` (this script's URLconf), never
in production. SQL time and query counts come from the same views run in-process through
the test client with the queries captured. The figures go into the "B4 — calendar"
section of docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "benchmarks.md"
SECTION = "## B4 — calendar"
GOAL_RATIO = 0.2
WRK = shutil.which("wrk") or ""
WRK_SCRIPT = """
done = function(summary, latency, requests)
  local errors = summary.errors
  io.write(string.format("BENCH %d %d %.1f %.1f %.1f %d %d\\n", summary.requests, summary.duration,
    latency:percentile(50), latency:percentile(95), latency:percentile(99), errors.status,
    errors.connect + errors.read + errors.write + errors.timeout))
end
"""


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


def bench_application() -> Any:
    """gunicorn's app factory: the project's WSGI app with the baselines in front of its URLs."""
    sys.path.insert(0, str(ROOT))
    import django
    from django.conf import settings

    django.setup()
    settings.ROOT_URLCONF = "mesoclinic.bench_views"
    from django.core.wsgi import get_wsgi_application

    return get_wsgi_application()


def environment(work: Path) -> None:
    """The same settings for this process and the server: DEBUG off, plain HTTP on loopback."""
    if not os.environ.get("DATABASE_URL"):
        sys.exit("Set DATABASE_URL to the benchmark database (see the docstring); the dev database is left alone.")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mesoclinic.settings")
    os.environ.setdefault("SECRET_KEY", "bench-only-secret-key-0123456789-abcdefghijklmnopqrstuvwxyz-ABCDEF")
    os.environ["DEBUG"] = "false"
    os.environ["SECURE_SSL_REDIRECT"] = "false"
    os.environ["SECURE_COOKIES"] = "false"
    os.environ["MFA_REQUIRED"] = "false"
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


def targets_build(seed: bool) -> tuple[list[Target], dict[str, Any]]:
    from django.urls import NoReverseMatch, reverse

    from mesoclinic.models import Location
    from patients.models import Patient
    from treatments.management.commands.bench_seed_calendar import LOCATION
    from treatments.models import Appointment

    location = Location.objects.filter(name=LOCATION).first()
    if location is None or not Appointment.objects.filter(location=location).exists():
        if not seed:
            sys.exit("No benchmark data: run `manage.py bench_seed_calendar` first (or pass --seed).")
        from django.core.management import call_command

        call_command("bench_seed_calendar")
        location = Location.objects.get(name=LOCATION)
    # A busy day: the Tuesday of the week before last, in the past, fully booked like every weekday.
    today = date.today()
    monday = today - timedelta(days=today.weekday() + 14)
    busy, sunday, empty_week = monday + timedelta(days=1), monday + timedelta(days=6), monday - timedelta(days=3650)
    patient_id = Patient.objects.order_by("pk").values_list("pk", flat=True).first()
    targets = [
        Target("hello", "hello world (B0, anonymous)", reverse("bench_hello"), signed_in=False),
        Target("hello_in", "hello world, signed in", reverse("bench_hello"), signed_in=True),
        Target("pk", "primary-key lookup (B0, anonymous)", reverse("bench_pk_lookup", args=[patient_id]), False),
    ]
    day_url = reverse("calendar_day")
    targets += [
        Target("day", f"day view, {busy:%a %Y-%m-%d}", f"{day_url}?location={location.pk}&day={busy}", True),
        Target(
            "day_empty",
            f"day view, {sunday:%a %Y-%m-%d} (closed)",
            f"{day_url}?location={location.pk}&day={sunday}",
            True,
        ),
    ]
    try:
        week_url = reverse("calendar_week")
    except NoReverseMatch:
        print("calendar_week is not a URL name yet: the week view is skipped.")
    else:
        targets += [
            Target(
                "week", f"week view, week of {monday:%Y-%m-%d}", f"{week_url}?location={location.pk}&week={busy}", True
            ),
            Target(
                "week_empty",
                f"week view, week of {empty_week - timedelta(days=empty_week.weekday()):%Y-%m-%d} (no data)",
                f"{week_url}?location={location.pk}&week={empty_week}",
                True,
            ),
        ]
    data = {
        "location": location,
        "appointments": Appointment.objects.count(),
        "practitioners": Appointment.objects.values("practitioner").distinct().count(),
        "busy_day": Appointment.objects.filter(location=location, starts_at__date=busy).count(),
        "busy_week": Appointment.objects.filter(
            location=location, starts_at__date__gte=monday, starts_at__date__lt=monday + timedelta(days=7)
        ).count(),
    }
    return targets, data


def front_desk_cookie() -> tuple[str, str]:
    from django.conf import settings
    from django.test import Client

    from mesoclinic.models import User

    user = User.objects.get(email="bench.frontdesk@bench.invalid")
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


def server_start(port: int, workers: int, threads: int) -> subprocess.Popen[bytes]:
    command = [
        sys.executable, "-m", "gunicorn", "calendar_bench:bench_application()",
        "--pythonpath", f"{ROOT},{ROOT / 'bench'}",
        "--bind", f"127.0.0.1:{port}",
        "--worker-class", "gthread", "--workers", str(workers), "--threads", str(threads),
        "--log-level", "warning",
    ]  # fmt: skip
    server = subprocess.Popen(command, cwd=ROOT, env=os.environ.copy())  # noqa: S603 - our own command line
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
        server.terminate()
        server.wait(timeout=30)
        raise


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


def explain(path_day: str, cookie: tuple[str, str]) -> str:
    """The plan of the day view's appointment query, the one that grows with the data."""
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    from treatments.models import Appointment

    client = Client()
    client.cookies[cookie[0]] = cookie[1]
    with CaptureQueriesContext(connection) as captured:
        client.get(path_day, HTTP_HOST="127.0.0.1")
    table = Appointment._meta.db_table
    candidates = [q["sql"] for q in captured.captured_queries if f'FROM "{table}"' in q["sql"]]
    if not candidates:
        return "(no appointment query captured)"
    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN (ANALYZE, BUFFERS) " + candidates[0])
        lines = [row[0] for row in cursor.fetchall()]
    scans = [line.strip().split("  (")[0].lstrip("-> ") for line in lines if "Scan" in line]
    execution = next((line.split(":", 1)[1].strip() for line in lines if line.startswith("Execution Time")), "?")
    return f"{'; '.join(scans)} — execution {execution}"


def machine() -> dict[str, str]:
    import django
    import gunicorn
    import psycopg
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SHOW server_version")
        postgres = cursor.fetchone()[0]
    wrk_version = subprocess.run([WRK, "-v"], capture_output=True, text=True).stdout.split()[1]  # noqa: S603
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


def section(
    targets: list[Target], data: dict[str, Any], info: dict[str, str], args: argparse.Namespace, plan: str
) -> str:
    by_key = {t.key: t for t in targets}
    hello = by_key["hello"]
    rows = []
    for t in targets:
        if not t.rps:
            why = "; ".join(t.notes) or "no request completed during the run"
            rows.append(
                f"| {t.label} | 0 | 0 | — | — | {t.queries} | {t.sql_ms:.1f} "
                f"| {t.inprocess_ms:,.0f} ms in-process, {t.size / 1024:,.0f} KiB; {why} |"
            )
            continue
        notes = "; ".join([f"{t.requests:,} requests", *t.notes, *([f"{t.errors} errors"] if t.errors else [])])
        rows.append(
            f"| {t.label} | {rate_text(t.rps)} | {ratio_text(t.rps / hello.rps)} | {t.p50:.1f} | {t.p95:.1f} | {t.queries} "
            f"| {t.sql_ms:.1f} | {t.inprocess_ms:,.1f} ms in-process, {t.size / 1024:,.0f} KiB{'; ' + notes if notes else ''} |"
        )
    goals = []
    for key in ("day", "week"):
        t = by_key.get(key)
        if t is None:
            goals.append(f"{key} view: not measured (no URL)")
        else:
            ratio = t.rps / hello.rps
            goals.append(f"{key} view {ratio_text(ratio)} × hello — {'met' if ratio >= GOAL_RATIO else '**not met**'}")
    constant = []
    for key in ("day", "week"):
        full, empty = by_key.get(key), by_key.get(f"{key}_empty")
        if full and empty:
            same = full.queries == empty.queries
            constant.append(
                f"{key} view {full.queries} queries with "
                f"{data['busy_day'] if key == 'day' else data['busy_week']:,} appointments, "
                f"{empty.queries} with none — {'constant' if same else '**not constant**'}"
            )
    shares = [
        f"{key} view: SQL {t.sql_ms:.0f} ms of {t.inprocess_ms:,.0f} ms ({t.sql_ms / t.inprocess_ms:.0%})"
        for key in ("day", "week")
        if (t := by_key.get(key)) is not None and t.inprocess_ms
    ]
    return f"""{SECTION}

`.venv/bin/python bench/calendar_bench.py` against a database seeded by
`manage.py bench_seed_calendar`: {data["appointments"]:,} appointments, {data["practitioners"]} practitioners,
one location with 10 rooms; the busy day holds {data["busy_day"]:,} appointments at that location,
its week {data["busy_week"]:,}. Run {time.strftime("%Y-%m-%d")}.
Server: gunicorn {info["gunicorn"]} gthread, {args.workers} workers × {args.threads} threads, DEBUG off, the
production middleware (sessions, CSRF, CSP, MFA check, history context, axes), on loopback.
Load: wrk {info["wrk"]}, {args.wrk_threads} threads, {args.connections} connections, {args.duration} s per target after a
2 s warm-up; signed-in pages with the front desk's session cookie. Query counts and SQL time:
the same requests in-process through the test client, queries captured, median of {args.runs}.
Machine: {info["nproc"]} CPUs (shared with other work; wrk, gunicorn and PostgreSQL on the same
CPUs), Python {info["python"]}, Django {info["django"]}, psycopg {info["psycopg"]}, PostgreSQL {info["postgres"]},
{info["platform"]}, load average {info["load"]} when it finished.

| target | requests/s | ratio to hello | p50 ms | p95 ms | queries | SQL ms | notes |
| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |
{chr(10).join(rows)}

Goal (benchmark issue): day and week views at least {GOAL_RATIO} × hello — {"; ".join(goals)}.
Query counts: {"; ".join(constant) or "not compared"}.
Where the time goes, in-process: {"; ".join(shares)}; the rest is Python, chiefly the
template rendering one card per appointment.
Appointment query plan (busy day): {plan}.
"""


def doc_update(text: str) -> None:
    current = DOC.read_text()
    pattern = re.compile(rf"^{re.escape(SECTION)}\n.*?(?=^## |\Z)", re.S | re.M)
    if pattern.search(current):
        current = pattern.sub(lambda _: text + "\n", current, count=1)
    elif "\n## B7" in current:
        # Sections in number order: B4 before B7.
        head, tail = current.split("\n## B7", 1)
        current = head.rstrip("\n") + "\n\n" + text + "\n## B7" + tail
    else:
        current = current.rstrip("\n") + "\n\n" + text
    DOC.write_text(current.rstrip("\n") + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=int, default=15, help="seconds of load per target")
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--wrk-threads", type=int, default=2)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 2, help="gunicorn workers")
    parser.add_argument("--threads", type=int, default=4, help="gunicorn threads per worker")
    parser.add_argument("--runs", type=int, default=20, help="in-process runs per target")
    parser.add_argument("--seed", action="store_true", help="seed the database first if it has no benchmark data")
    parser.add_argument("--no-doc", action="store_true", help="print only; leave docs/benchmarks.md alone")
    args = parser.parse_args()
    if not WRK:
        sys.exit("wrk is not installed (apt-get install wrk).")
    with tempfile.TemporaryDirectory(prefix="calendar-bench-") as work:
        environment(Path(work))
        targets, data = targets_build(args.seed)
        cookie = front_desk_cookie()
        in_process(targets, cookie, args.runs)
        plan = explain(next(t.path for t in targets if t.key == "day"), cookie)
        script = Path(work) / "report.lua"
        script.write_text(WRK_SCRIPT)
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        header = f"{cookie[0]}={cookie[1]}"
        server = server_start(port, args.workers, args.threads)
        try:
            for target in targets:
                if not preflight(target, base, header):
                    if target.key == "hello":
                        sys.exit("the hello-world baseline does not answer 200: no ratio can be computed")
                    print(f"skipped {target.label}: {'; '.join(target.notes) or 'not a 200'}")
                    continue
                wrk(target, base, header, duration=args.duration, connections=args.connections,
                    threads=args.wrk_threads, script=script)  # fmt: skip
                if target.key == "hello" and not target.rps:
                    sys.exit("the hello-world baseline answered nothing: no ratio can be computed")
                print(
                    f"{target.label}: {rate_text(target.rps)} req/s, p95 {target.p95:.1f} ms, {target.queries} queries"
                )
        finally:
            server.terminate()
            server.wait(timeout=30)
        text = section(targets, data, machine(), args, plan)
    print(text)
    if not args.no_doc:
        doc_update(text)
        print(f"updated {DOC.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
