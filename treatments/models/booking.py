"""Appointments: double booking is impossible in the database, not just in a form."""

from __future__ import annotations

import pghistory
from django.conf import settings
from django.contrib.postgres.constraints import ExclusionConstraint
from django.contrib.postgres.fields import RangeBoundary, RangeOperators
from django.db import models
from django.db.models import Func, Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from mesoclinic.audit import append_only_trigger, audited

# Statuses that hold their slot: a cancelled or missed appointment frees it.
ACTIVE_STATUSES = ("booked", "checked_in", "completed")


class TsTzRange(Func):
    function = "TSTZRANGE"
    output_field = models.Field()  # only used inside the exclusion constraint


@audited()
class Appointment(models.Model):
    class Kind(models.TextChoices):
        CONSULTATION = "consultation", _("Consultation")
        TREATMENT = "treatment", _("Treatment session")
        REVIEW = "review", _("Review")
        BLOCKED = "blocked", _("Blocked time")

    class Status(models.TextChoices):
        BOOKED = "booked", _("Booked")
        CHECKED_IN = "checked_in", _("Checked in")
        COMPLETED = "completed", _("Completed")
        CANCELLED = "cancelled", _("Cancelled")
        NO_SHOW = "no_show", _("No-show")

    location = models.ForeignKey("mesoclinic.Location", on_delete=models.PROTECT, related_name="appointments")
    practitioner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="appointments")
    room = models.ForeignKey(
        "mesoclinic.Room", on_delete=models.PROTECT, null=True, blank=True, related_name="appointments"
    )
    patient = models.ForeignKey(
        "patients.Patient", on_delete=models.PROTECT, null=True, blank=True, related_name="appointments"
    )
    plan = models.ForeignKey(
        "treatments.TreatmentPlan", on_delete=models.PROTECT, null=True, blank=True, related_name="appointments"
    )
    kind = models.CharField(_("kind"), max_length=15, choices=Kind.choices)
    starts_at = models.DateTimeField(_("starts"))
    ends_at = models.DateTimeField(_("ends"))
    status = models.CharField(_("status"), max_length=12, choices=Status.choices, default=Status.BOOKED)
    note = models.CharField(_("note for the team"), max_length=300, blank=True)
    cancel_reason = models.CharField(_("reason"), max_length=300, blank=True)
    cancelled_late = models.BooleanField(default=False)
    # The patient confirmed through the link in their reminder or confirmation email.
    patient_confirmed_at = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)
    revision = models.PositiveIntegerField(default=1)
    # The session record that completed this appointment (set by ``session_record``).
    session = models.OneToOneField(
        "treatments.TreatmentSession", on_delete=models.PROTECT, null=True, blank=True, related_name="appointment"
    )

    class Meta:
        ordering = ("starts_at",)
        indexes = [
            models.Index(fields=["location", "starts_at"], name="appointment_location_start"),
            models.Index(fields=["practitioner", "starts_at"], name="appointment_practitioner_start"),
            models.Index(fields=["patient", "-starts_at"], name="appointment_patient_start"),
        ]
        constraints = [
            models.CheckConstraint(condition=Q(ends_at__gt=models.F("starts_at")), name="appointment_ends_after_start"),
            models.CheckConstraint(
                condition=Q(kind="blocked") | Q(patient__isnull=False), name="appointment_patient_unless_blocked"
            ),
            ExclusionConstraint(
                name="appointment_no_practitioner_overlap",
                expressions=[
                    (TsTzRange("starts_at", "ends_at", RangeBoundary()), RangeOperators.OVERLAPS),
                    ("practitioner", RangeOperators.EQUAL),
                ],
                condition=Q(status__in=ACTIVE_STATUSES),
            ),
            ExclusionConstraint(
                name="appointment_no_room_overlap",
                expressions=[
                    (TsTzRange("starts_at", "ends_at", RangeBoundary()), RangeOperators.OVERLAPS),
                    ("room", RangeOperators.EQUAL),
                ],
                condition=Q(status__in=ACTIVE_STATUSES, room__isnull=False),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.starts_at:%Y-%m-%d %H:%M} ({self.get_status_display()})"


def _hours_trackers() -> tuple[object, ...]:
    # Hours are replaced when a manager edits them: the removed rows stay in the history.
    return (pghistory.InsertEvent(), pghistory.UpdateEvent(), pghistory.DeleteEvent())


class Weekday(models.IntegerChoices):
    MONDAY = 0, pgettext_lazy("weekday", "Monday")
    TUESDAY = 1, pgettext_lazy("weekday", "Tuesday")
    WEDNESDAY = 2, pgettext_lazy("weekday", "Wednesday")
    THURSDAY = 3, pgettext_lazy("weekday", "Thursday")
    FRIDAY = 4, pgettext_lazy("weekday", "Friday")
    SATURDAY = 5, pgettext_lazy("weekday", "Saturday")
    SUNDAY = 6, pgettext_lazy("weekday", "Sunday")


@audited(*_hours_trackers())
class OpeningHours(models.Model):
    """When a location is open, in its own time zone; several rows a day for a lunch break.

    A location with no rows at all is taken as open 08:00–20:00 every day (and says so)."""

    location = models.ForeignKey("mesoclinic.Location", on_delete=models.CASCADE, related_name="opening_hours")
    weekday = models.PositiveSmallIntegerField(_("day"), choices=Weekday.choices)
    opens = models.TimeField(_("opens"))
    closes = models.TimeField(_("closes"))

    class Meta:
        ordering = ("location", "weekday", "opens")
        verbose_name = _("opening hours")
        verbose_name_plural = _("opening hours")
        constraints = [
            models.CheckConstraint(condition=Q(closes__gt=models.F("opens")), name="opening_closes_after_opens"),
        ]

    def __str__(self) -> str:
        return f"{self.get_weekday_display()} {self.opens:%H:%M}–{self.closes:%H:%M}"


@audited(*_hours_trackers())
class WorkingHours(models.Model):
    """When a practitioner works at a location. A practitioner with no rows at all works
    whenever the location is open."""

    practitioner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="working_hours")
    location = models.ForeignKey("mesoclinic.Location", on_delete=models.CASCADE, related_name="working_hours")
    weekday = models.PositiveSmallIntegerField(_("day"), choices=Weekday.choices)
    starts = models.TimeField(_("from"))
    ends = models.TimeField(_("until"))

    class Meta:
        ordering = ("practitioner", "weekday", "starts")
        verbose_name = _("working hours")
        verbose_name_plural = _("working hours")
        constraints = [
            models.CheckConstraint(condition=Q(ends__gt=models.F("starts")), name="working_ends_after_starts"),
        ]

    def __str__(self) -> str:
        return f"{self.practitioner} {self.get_weekday_display()} {self.starts:%H:%M}–{self.ends:%H:%M}"


@audited(*_hours_trackers())
class ScheduleException(models.Model):
    """Time nobody can be booked: a location closed (holiday) or a practitioner away (leave)."""

    location = models.ForeignKey(
        "mesoclinic.Location", on_delete=models.CASCADE, null=True, blank=True, related_name="closures"
    )
    practitioner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, null=True, blank=True, related_name="leave"
    )
    starts_at = models.DateTimeField(_("from"))
    ends_at = models.DateTimeField(_("until"))
    reason = models.CharField(_("reason"), max_length=200)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ("starts_at",)
        verbose_name = _("closure or leave")
        constraints = [
            models.CheckConstraint(condition=Q(ends_at__gt=models.F("starts_at")), name="exception_ends_after_start"),
            models.CheckConstraint(
                condition=Q(location__isnull=False) | Q(practitioner__isnull=False),
                name="exception_location_or_practitioner",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.reason} {self.starts_at:%Y-%m-%d}"


@audited()
class AppointmentKindSetting(models.Model):
    """Default duration per appointment kind (seeded; a manager edits them)."""

    kind = models.CharField(_("kind"), max_length=15, choices=Appointment.Kind.choices, unique=True)
    default_minutes = models.PositiveSmallIntegerField(_("default duration (minutes)"))

    class Meta:
        ordering = ("kind",)
        constraints = [
            models.CheckConstraint(
                condition=Q(default_minutes__gte=5, default_minutes__lte=480), name="kind_minutes_in_range"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()}: {self.default_minutes} min"


class AppointmentChange(models.Model):
    """The booking history a person reads: who did what to an appointment, when and why."""

    class Action(models.TextChoices):
        BOOKED = "booked", _("booked")
        MOVED = "moved", _("moved")
        CANCELLED = "cancelled", _("cancelled")
        CHECKED_IN = "checked_in", _("checked in")
        NO_SHOW = "no_show", _("marked no-show")
        COMPLETED = "completed", _("completed")

    appointment = models.ForeignKey(Appointment, on_delete=models.PROTECT, related_name="changes")
    at = models.DateTimeField(default=timezone.now)
    by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, related_name="+")
    action = models.CharField(max_length=12, choices=Action.choices)
    from_starts_at = models.DateTimeField(null=True)
    to_starts_at = models.DateTimeField(null=True)
    reason = models.CharField(max_length=300, blank=True)

    class Meta:
        ordering = ("at", "pk")
        triggers = [append_only_trigger()]

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M} {self.action}"


class CalendarFeed(models.Model):
    """A practitioner's private iCal feed. Only a hash of the token is kept; revoking
    (or making a new one) kills the old address."""

    practitioner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="calendar_feeds")
    token_hash = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(default=timezone.now)
    revoked_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["practitioner"], condition=Q(revoked_at__isnull=True), name="one_live_feed_per_practitioner"
            )
        ]

    def __str__(self) -> str:
        return f"feed {self.practitioner_id} ({'revoked' if self.revoked_at else 'live'})"
