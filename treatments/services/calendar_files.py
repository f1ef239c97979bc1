"""Calendar files: the ``.ics`` sent with booking emails and each practitioner's private feed.

Neither ever carries clinical details: no notes (not even the appointment's team note),
no plan content, no cancellation reason. A practitioner's feed names the patient by first
name and last-name initial only, because a synced phone calendar is outside our walls.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from email.utils import parseaddr
from typing import TYPE_CHECKING, Literal
from urllib.parse import urlsplit

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext as _
from icalendar import Calendar, Event, vCalAddress

from mesoclinic.access import Role, has_role
from mesoclinic.models import User
from mesoclinic.secret_tokens import secret_token_hash, secret_token_new, secret_token_plausible
from treatments.models import Appointment, CalendarFeed

if TYPE_CHECKING:
    from mesoclinic.models import Location

logger = logging.getLogger("mesoclinic.security")

Method = Literal["REQUEST", "CANCEL"]
Audience = Literal["patient", "practitioner"]

PRODID = "-//MesoClinic//Appointments//EN"
FEED_PAST = timedelta(days=30)
FEED_AHEAD = timedelta(days=180)
# A feed's "last used" is a hint for the practitioner, not a log: one write an hour is plenty.
LAST_USED_RESOLUTION = timedelta(hours=1)
FEED_ROLES = (Role.PRACTITIONER, Role.MANAGER)


def _uid_domain() -> str:
    return urlsplit(settings.SITE_URL).hostname or "mesoclinic"


def appointment_uid(appointment: Appointment) -> str:
    """The same for every version of an appointment, so a calendar replaces rather than adds."""
    return f"appointment-{appointment.pk}@{_uid_domain()}"


def _utc(moment: datetime) -> datetime:
    return moment.astimezone(UTC)


def _location_text(location: Location) -> str:
    address = ", ".join(line.strip() for line in location.address.splitlines() if line.strip())
    return f"{location.name}, {address}" if address else location.name


def _patient_short_name(appointment: Appointment) -> str:
    patient = appointment.patient
    if patient is None:
        return ""
    initial = patient.last_name.strip()[:1].upper()
    return f"{patient.first_name} {initial}." if initial else patient.first_name


def _summary(appointment: Appointment, audience: Audience) -> str:
    kind = appointment.get_kind_display()
    if audience == "patient":
        return f"{kind} — {appointment.location.clinic.name}"
    name = _patient_short_name(appointment)
    return f"{kind} — {name}" if name else str(kind)


def _event(appointment: Appointment, *, audience: Audience, cancelled: bool, stamp: datetime) -> Event:
    event = Event()
    event.add("uid", appointment_uid(appointment))
    event.add("sequence", appointment.revision)
    event.add("dtstamp", stamp)
    event.add("dtstart", _utc(appointment.starts_at))
    event.add("dtend", _utc(appointment.ends_at))
    event.add("status", "CANCELLED" if cancelled else "CONFIRMED")
    summary = _summary(appointment, audience)
    if cancelled:
        summary = _("Cancelled: %(summary)s") % {"summary": summary}
    event.add("summary", summary)
    event.add("location", _location_text(appointment.location))
    event.add("transp", "TRANSPARENT" if cancelled else "OPAQUE")
    return event


def _organizer(appointment: Appointment) -> vCalAddress:
    clinic = appointment.location.clinic
    email = clinic.email or parseaddr(settings.DEFAULT_FROM_EMAIL)[1] or f"no-reply@{_uid_domain()}"
    organizer = vCalAddress(f"mailto:{email}")
    organizer.params["CN"] = clinic.name
    return organizer


def appointment_ics(appointment: Appointment, *, method: Method = "REQUEST", audience: Audience = "patient") -> str:
    """One appointment as an iTIP calendar (REQUEST to add or update, CANCEL to remove).

    UID is stable and SEQUENCE is the appointment's revision, so a client that received
    the booking replaces it with the change and removes it on the cancellation."""
    if method not in ("REQUEST", "CANCEL"):
        raise ValueError(f"unknown iTIP method {method!r}")
    cancelled = method == "CANCEL" or appointment.status == Appointment.Status.CANCELLED
    calendar = Calendar()
    calendar.add("prodid", PRODID)
    calendar.add("version", "2.0")
    calendar.add("method", method)
    event = _event(appointment, audience=audience, cancelled=cancelled, stamp=timezone.now())
    event.add("organizer", _organizer(appointment))
    if audience == "patient":
        patient = appointment.patient
        if patient is not None and patient.email:
            attendee = vCalAddress(f"mailto:{patient.email}")
            attendee.params["CN"] = patient.first_name
            attendee.params["ROLE"] = "REQ-PARTICIPANT"
            attendee.params["PARTSTAT"] = "ACCEPTED"
            attendee.params["RSVP"] = "FALSE"
            event.add("attendee", attendee)
        phone = appointment.location.phone or appointment.location.clinic.phone
        description = _("With %(practitioner)s.") % {"practitioner": appointment.practitioner.full_name}
        if phone and not cancelled:
            description += " " + _("To change or cancel, call %(phone)s.") % {"phone": phone}
        event.add("description", description)
    calendar.add_component(event)
    return calendar.to_ical().decode()


def feed_appointments(practitioner: User) -> list[Appointment]:
    """The feed's window of a practitioner's appointments, in one query, without notes."""
    now = timezone.now()
    return list(
        Appointment.objects.filter(
            practitioner=practitioner, starts_at__gte=now - FEED_PAST, starts_at__lt=now + FEED_AHEAD
        )
        .select_related("location", "patient")
        .only(
            "id",
            "kind",
            "status",
            "starts_at",
            "ends_at",
            "revision",
            "location__id",
            "location__name",
            "location__address",
            "patient__id",
            "patient__first_name",
            "patient__last_name",
        )
        .order_by("starts_at", "pk")
    )


def feed_ics(practitioner: User) -> str:
    """A practitioner's subscribed calendar: 30 days back, 180 ahead, cancellations included
    as STATUS:CANCELLED so that subscribed calendars drop them."""
    calendar = Calendar()
    calendar.add("prodid", PRODID)
    calendar.add("version", "2.0")
    calendar.add("method", "PUBLISH")
    calendar.add("x-wr-calname", f"{settings.CLINIC_NAME} — {practitioner.full_name}")
    calendar.add("refresh-interval", timedelta(hours=1), parameters={"VALUE": "DURATION"})
    calendar.add("x-published-ttl", timedelta(hours=1))
    stamp = timezone.now()
    for appointment in feed_appointments(practitioner):
        cancelled = appointment.status == Appointment.Status.CANCELLED
        calendar.add_component(_event(appointment, audience="practitioner", cancelled=cancelled, stamp=stamp))
    return calendar.to_ical().decode()


def calendar_feed_create(*, practitioner: User) -> str:
    """Make a practitioner's feed address (replacing the live one) and return its token.

    The issue asks for a "signed token": the token is 256 random bits shown once and kept
    only as its SHA-256, which gives what a signature would (nobody can forge one, and a
    database leak reveals none) and, unlike a signature, can be revoked one by one."""
    if not practitioner.is_active or not has_role(practitioner, *FEED_ROLES):
        raise ValidationError(_("Only practitioners and managers have a calendar feed."))
    token = secret_token_new()
    with transaction.atomic():
        # Serialise two clicks on "create": the second waits, then replaces the first.
        User.objects.select_for_update().filter(pk=practitioner.pk).values_list("pk").first()
        now = timezone.now()
        CalendarFeed.objects.filter(practitioner=practitioner, revoked_at__isnull=True).update(revoked_at=now)
        CalendarFeed.objects.create(practitioner=practitioner, token_hash=secret_token_hash(token))
    logger.info("calendar feed created for user %s", practitioner.pk)
    return token


def calendar_feed_revoke(*, practitioner: User, by: User) -> bool:
    """Kill a practitioner's feed address. Returns whether there was a live one."""
    revoked = CalendarFeed.objects.filter(practitioner=practitioner, revoked_at__isnull=True).update(
        revoked_at=timezone.now()
    )
    if revoked:
        logger.info("calendar feed of user %s revoked by user %s", practitioner.pk, by.pk)
    return bool(revoked)


def calendar_feed_live(practitioner: User) -> CalendarFeed | None:
    return CalendarFeed.objects.filter(practitioner=practitioner, revoked_at__isnull=True).first()


def calendar_feed_lookup(token: str) -> CalendarFeed | None:
    """The live feed a token opens, or None (unknown, revoked, or its owner no longer staff).

    Looked up by hash, so the comparison never walks the secret character by character."""
    if not secret_token_plausible(token):
        return None
    feed = (
        CalendarFeed.objects.select_related("practitioner")
        .filter(token_hash=secret_token_hash(token), revoked_at__isnull=True, practitioner__is_active=True)
        .filter(Q(practitioner__is_superuser=True) | Q(practitioner__groups__name__in=[r.value for r in FEED_ROLES]))
        .first()
    )
    if feed is None:
        return None
    now = timezone.now()
    if feed.last_used_at is None or now - feed.last_used_at >= LAST_USED_RESOLUTION:
        CalendarFeed.objects.filter(pk=feed.pk).filter(
            Q(last_used_at__isnull=True) | Q(last_used_at__lte=now - LAST_USED_RESOLUTION)
        ).update(last_used_at=now)
        feed.last_used_at = now
    return feed
