from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from mesoclinic.audit import append_only_trigger, audited


class OutboundMessage(models.Model):
    """The outbox: every message to a person is a row before it is anything else.

    A send claims its row with a conditional update (SCHEDULED → SENDING), so a
    second run of the same task, a second sweeper or a retried task never sends
    twice. ``dedupe_key`` makes the event that causes a message unable to cause it
    twice.
    """

    class Status(models.TextChoices):
        SCHEDULED = "scheduled", _("scheduled")
        SENDING = "sending", _("sending")
        SENT = "sent", _("sent")
        FAILED = "failed", _("failed")
        CANCELLED = "cancelled", _("cancelled")

    kind = models.CharField(_("kind"), max_length=40)
    patient = models.ForeignKey(
        "patients.Patient", on_delete=models.PROTECT, null=True, blank=True, related_name="messages"
    )
    appointment = models.ForeignKey(
        "treatments.Appointment", on_delete=models.PROTECT, null=True, blank=True, related_name="messages"
    )
    session = models.ForeignKey(
        "treatments.TreatmentSession", on_delete=models.PROTECT, null=True, blank=True, related_name="messages"
    )
    plan = models.ForeignKey(
        "treatments.TreatmentPlan", on_delete=models.PROTECT, null=True, blank=True, related_name="messages"
    )
    adverse_event = models.ForeignKey(
        "treatments.AdverseEvent", on_delete=models.PROTECT, null=True, blank=True, related_name="messages"
    )
    # A manager's resend is a new row pointing at the one it repeats (never a rewrite).
    resend_of = models.ForeignKey("self", on_delete=models.PROTECT, null=True, blank=True, related_name="resends")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    to_email = models.EmailField(_("recipient"))
    language = models.CharField(_("language"), max_length=8, default="en")
    subject = models.CharField(_("subject"), max_length=300)
    body_text = models.TextField(_("text body"))
    body_html = models.TextField(_("HTML body"), blank=True)
    # A calendar file sent with the message (booking confirmation, change, cancellation).
    ics = models.TextField(blank=True)
    dedupe_key = models.CharField(max_length=200, unique=True)
    due_at = models.DateTimeField(_("due"), default=timezone.now)
    status = models.CharField(_("status"), max_length=12, choices=Status.choices, default=Status.SCHEDULED)
    attempts = models.PositiveSmallIntegerField(default=0)
    last_error = models.TextField(blank=True)
    provider_message_id = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    claimed_at = models.DateTimeField(null=True)
    sent_at = models.DateTimeField(null=True)

    class Meta:
        ordering = ("-created_at",)
        indexes = [
            models.Index(
                fields=["due_at"],
                name="outbox_due_scheduled",
                condition=Q(status="scheduled"),
            ),
            models.Index(fields=["claimed_at"], name="outbox_sending_claimed", condition=Q(status="sending")),
            models.Index(fields=["patient", "-created_at"], name="outbox_patient_created"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=~Q(status="sent") | Q(sent_at__isnull=False),
                name="outbox_sent_has_time",
            )
        ]

    def __str__(self) -> str:
        return f"{self.kind} → {self.to_email} ({self.status})"


class PatientLink(models.Model):
    """A link in a patient's email: single-purpose, expiring, revocable.

    The token (256 random bits) is only ever in the email; the database keeps its SHA-256.
    """

    class Purpose(models.TextChoices):
        PLAN = "plan", _("view and download the plan")
        AFTERCARE = "aftercare", _("read aftercare instructions")
        BOOKING = "booking", _("confirm or cancel an appointment")
        CHECKIN = "checkin", _("report how you are after a session")
        PREFERENCES = "preferences", _("email preferences")

    patient = models.ForeignKey("patients.Patient", on_delete=models.PROTECT, related_name="links")
    purpose = models.CharField(max_length=12, choices=Purpose.choices)
    token_hash = models.CharField(max_length=64, unique=True)
    appointment = models.ForeignKey(
        "treatments.Appointment", on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    session = models.ForeignKey(
        "treatments.TreatmentSession", on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    plan = models.ForeignKey(
        "treatments.TreatmentPlan", on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()
    revoked_at = models.DateTimeField(null=True, blank=True)
    # Single-use purposes (the check-in form) are spent once submitted.
    used_at = models.DateTimeField(null=True, blank=True)
    last_seen_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["patient", "purpose"], name="patientlink_patient_purpose")]
        constraints = [
            models.CheckConstraint(condition=Q(expires_at__gt=models.F("created_at")), name="patientlink_expires_later")
        ]

    def __str__(self) -> str:
        return f"{self.purpose} link for patient {self.patient_id}"


class CheckInResponse(models.Model):
    """What a patient answered to "How are you?" after a session (append-only)."""

    link = models.OneToOneField(PatientLink, on_delete=models.PROTECT, related_name="response")
    patient = models.ForeignKey("patients.Patient", on_delete=models.PROTECT, related_name="checkins")
    session = models.ForeignKey("treatments.TreatmentSession", on_delete=models.PROTECT, related_name="checkins")
    submitted_at = models.DateTimeField(default=timezone.now)
    # {"bruising": "none|mild|moderate|severe", …, "fever": bool, "comment": str}
    answers = models.JSONField()
    # The worst answer, for triage: 0 nothing, 1 mild, 2 moderate, 3 severe.
    severity = models.PositiveSmallIntegerField()
    adverse_event = models.ForeignKey(
        "treatments.AdverseEvent", on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    photo = models.ForeignKey(
        "patients.ClinicalPhoto", on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    ip = models.GenericIPAddressField(null=True)

    class Meta:
        triggers = [append_only_trigger()]

    def __str__(self) -> str:
        return f"check-in {self.session_id} severity {self.severity}"


@audited()
class AftercareTemplate(models.Model):
    """Aftercare advice for one area or treatment kind in one language (manager-editable).

    The aftercare email is built from the templates of the areas and formulations actually
    used in the session, general advice first.
    """

    key = models.CharField(_("applies to"), max_length=40)
    language = models.CharField(_("language"), max_length=2)
    title = models.CharField(_("title"), max_length=200)
    body = models.TextField(_("advice"))
    position = models.PositiveSmallIntegerField(default=100)
    is_active = models.BooleanField(_("active"), default=True)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ("position", "key")
        constraints = [models.UniqueConstraint(fields=["key", "language"], name="aftercare_template_once")]

    def __str__(self) -> str:
        return f"{self.key} ({self.language})"
