"""Reads for the manager pages: system status, audit trail, staff."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any

from django.conf import settings
from django.db import connection
from django.db.models import Count, Prefetch, Q, QuerySet
from django.utils import timezone
from pghistory.models import Events

from aftercare.services import outbox_pending_count
from mesoclinic.access import Role
from mesoclinic.models import Heartbeat, ReadEvent, User

logger = logging.getLogger(__name__)

AUDIT_PAGE_SIZE = 50
HEARTBEAT_STALE = timedelta(minutes=2)


@dataclass(frozen=True)
class Check:
    ok: bool
    detail: str


@dataclass(frozen=True)
class SystemStatus:
    database: Check
    broker: Check
    worker: Check
    beat: Check
    outbox_pending: int


def _heartbeat_check(beats: dict[str, datetime], component: str) -> Check:
    seen = beats.get(component)
    if seen is None:
        return Check(False, "never")
    return Check(timezone.now() - seen < HEARTBEAT_STALE, timezone.localtime(seen).isoformat(timespec="seconds"))


def system_status() -> SystemStatus:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT version()")
            version = cursor.fetchone()[0].split(" on ")[0]
        database = Check(True, f"{version} · {settings.DATABASES['default']['NAME']}")
    except Exception as error:  # noqa: BLE001 - a status page reports, it does not fail
        database = Check(False, type(error).__name__)
    broker = broker_check()
    beats = dict(Heartbeat.objects.values_list("component", "seen_at"))
    return SystemStatus(
        database=database,
        broker=broker,
        worker=_heartbeat_check(beats, "worker"),
        beat=_heartbeat_check(beats, "beat"),
        outbox_pending=outbox_pending_count(),
    )


def broker_check() -> Check:
    from mesoclinic.celery import app

    transport = app.conf.broker_url.split("://", 1)[0]
    try:
        with app.connection_for_write() as conn:
            conn.ensure_connection(max_retries=1, timeout=2)
        return Check(True, transport)
    except Exception as error:  # noqa: BLE001
        logger.warning("broker check failed: %s", error)
        return Check(False, f"{transport}: {type(error).__name__}")


@dataclass(frozen=True)
class AuditFilters:
    patient_id: int | None = None
    user: User | None = None
    date_from: date | None = None
    date_to: date | None = None
    before: datetime | None = None


def _day_start(day: date) -> datetime:
    return timezone.make_aware(datetime.combine(day, time.min))


def audit_change_events(filters: AuditFilters) -> list[Any]:
    """Change history across every audited model, newest first (one page)."""
    events = Events.objects.order_by("-pgh_created_at")
    if filters.patient_id is not None:
        pid = filters.patient_id
        events = events.filter(Q(pgh_obj_model="patients.Patient", pgh_obj_id=str(pid)) | Q(pgh_data__patient=pid))
    if filters.user is not None:
        events = events.filter(pgh_context__user=filters.user.pk)
    if filters.date_from:
        events = events.filter(pgh_created_at__gte=_day_start(filters.date_from))
    if filters.date_to:
        events = events.filter(pgh_created_at__lt=_day_start(filters.date_to + timedelta(days=1)))
    if filters.before:
        events = events.filter(pgh_created_at__lt=filters.before)
    return list(events[:AUDIT_PAGE_SIZE])


def audit_read_events(filters: AuditFilters) -> list[ReadEvent]:
    """Reads of patient records, newest first (one page, keyset on time)."""
    reads = ReadEvent.objects.select_related("user").order_by("-at")
    if filters.patient_id is not None:
        reads = reads.filter(patient_id=filters.patient_id)
    if filters.user is not None:
        reads = reads.filter(user=filters.user)
    if filters.date_from:
        reads = reads.filter(at__gte=_day_start(filters.date_from))
    if filters.date_to:
        reads = reads.filter(at__lt=_day_start(filters.date_to + timedelta(days=1)))
    if filters.before:
        reads = reads.filter(at__lt=filters.before)
    return list(reads[:AUDIT_PAGE_SIZE])


def audit_user_names(user_ids: set[int]) -> dict[int, str]:
    return {pk: str(u) for pk, u in User.objects.in_bulk(user_ids).items()}


def staff_list() -> QuerySet[User]:
    from django.contrib.auth.models import Group

    return (
        User.objects.select_related("default_location")
        .prefetch_related(Prefetch("groups", queryset=Group.objects.filter(name__in=[r.value for r in Role])))
        # Through the reverse relation: the staff page offers to revoke a live iCal feed.
        .annotate(live_feeds=Count("calendar_feeds", filter=Q(calendar_feeds__revoked_at__isnull=True)))
        .order_by("-is_active", "full_name")
    )
