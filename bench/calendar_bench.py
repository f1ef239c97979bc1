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
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from harness import (
    DOC,
    ROOT,
    WRK,
    Target,
    doc_update,
    environment,
    free_port,
    in_process,
    machine,
    preflight,
    rate_text,
    ratio_text,
    server_start,
    server_stop,
    session_cookie,
    wrk,
    wrk_script,
)

SECTION = "## B4 — calendar"
GOAL_RATIO = 0.2


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
Machine: {info["nproc"]} CPUs (wrk, gunicorn and PostgreSQL on the same
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

What changed to get here (the first run, 2026-11-24, gave the day view 0.00072 × and the
week 0.00022 × hello): a card shows labels and links worked out once per page, and its
move and cancel forms are fetched when asked for (*Move or cancel…*); eight columns are
shown at a time; and the appointments are loaded only for the columns on screen (one
grouped query finds the columns and the day's check-in count, so the day loads about 130
appointments instead of 800, the week about 640 instead of 4,000).
Why the goal is still missed: the closed Sunday and the empty week, with no appointment
at all, are themselves only about 0.03 × hello — the signed-in page (session, user, MFA
check, navigation, base template) costs that much on two shared CPUs — and a busy day
adds about 130 cards of template rendering. Meeting 0.2 × would need the rendered grid
cached per location and day with its forms' CSRF tokens moved out of the cached HTML;
not done.
"""


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
        cookie = session_cookie()
        in_process(targets, cookie, args.runs)
        plan = explain(next(t.path for t in targets if t.key == "day"), cookie)
        script = wrk_script(Path(work))
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
            server_stop(server)
        text = section(targets, data, machine(), args, plan)
    print(text)
    if not args.no_doc:
        doc_update(text)
        print(f"updated {DOC.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
