"""What was done at each session, side effects followed to resolution, outcomes, PDFs."""

from __future__ import annotations

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from mesoclinic.audit import append_only_trigger, audited
from patients.models import Area
from treatments.models.plans import Technique


@audited()
class TreatmentSession(models.Model):
    """One session of a plan's course, as performed."""

    class Status(models.TextChoices):
        IN_PROGRESS = "in_progress", _("In progress")
        COMPLETED = "completed", _("Completed")

    plan = models.ForeignKey("treatments.TreatmentPlan", on_delete=models.PROTECT, related_name="sessions")
    patient = models.ForeignKey("patients.Patient", on_delete=models.PROTECT, related_name="treatment_sessions")
    number = models.PositiveSmallIntegerField(_("session number"), validators=[MinValueValidator(1)])
    practitioner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    location = models.ForeignKey(
        "mesoclinic.Location", on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    performed_at = models.DateTimeField(_("performed"), default=timezone.now)
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.IN_PROGRESS)
    anaesthetic_product = models.ForeignKey(
        "treatments.Product",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("anaesthetic cream"),
    )
    anaesthetic_applied_at = models.DateTimeField(_("cream applied at"), null=True, blank=True)
    immediate_reactions = models.TextField(_("immediate reactions"), blank=True)
    notes = models.TextField(_("notes"), blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)
    # The safety findings at the session, and the warnings acknowledged (with reasons).
    screening = models.JSONField(default=list, blank=True)

    class Meta:
        ordering = ("-performed_at",)
        constraints = [
            models.UniqueConstraint(fields=["plan", "number"], name="session_number_once_per_plan"),
            models.CheckConstraint(
                condition=Q(status="in_progress", completed_at__isnull=True)
                | Q(status="completed", completed_at__isnull=False),
                name="session_completed_has_time",
            ),
        ]

    def __str__(self) -> str:
        return f"session {self.number} of plan {self.plan_id}"


@audited()
class SessionArea(models.Model):
    session = models.ForeignKey(TreatmentSession, on_delete=models.PROTECT, related_name="areas")
    area = models.CharField(_("area"), max_length=20, choices=Area.choices)
    technique = models.CharField(_("technique"), max_length=20, choices=Technique.choices)
    points = models.PositiveSmallIntegerField(_("injection points"), validators=[MaxValueValidator(500)])
    depth_mm = models.DecimalField(_("depth (mm)"), max_digits=4, decimal_places=1, null=True, blank=True)

    class Meta:
        ordering = ("id",)
        constraints = [models.UniqueConstraint(fields=["session", "area"], name="session_area_once")]

    def __str__(self) -> str:
        return f"{self.get_area_display()} ({self.points} points)"


@audited()
class LotUse(models.Model):
    """A lot administered in an area: the traceability record behind every recall."""

    session_area = models.ForeignKey(SessionArea, on_delete=models.PROTECT, related_name="lot_uses")
    lot = models.ForeignKey("treatments.Lot", on_delete=models.PROTECT, related_name="uses")
    volume_ml = models.DecimalField(
        _("volume (mL)"), max_digits=6, decimal_places=2, validators=[MinValueValidator(0.01), MaxValueValidator(100)]
    )
    units_used = models.PositiveSmallIntegerField(_("units opened"), default=1, validators=[MaxValueValidator(50)])

    class Meta:
        ordering = ("id",)
        constraints = [models.UniqueConstraint(fields=["session_area", "lot"], name="lot_use_once_per_area")]

    def __str__(self) -> str:
        return f"{self.lot} {self.volume_ml} mL"


class AdverseEventType(models.TextChoices):
    BRUISING = "bruising", _("Bruising")
    SWELLING = "swelling", _("Swelling")
    REDNESS = "redness", _("Redness")
    IRRITATION = "irritation", _("Irritation")
    ALLERGIC = "allergic_reaction", _("Allergic reaction")
    INFECTION = "infection", _("Infection")
    NODULES = "nodules", _("Nodules")
    PANNICULITIS = "panniculitis", _("Panniculitis")
    NECROSIS = "necrosis", _("Necrosis")
    UNEVEN = "uneven_result", _("Uneven result")
    PAIN = "pain", _("Pain")
    OTHER = "other", _("Other")


@audited()
class AdverseEvent(models.Model):
    """A side effect, graded (CTCAE 1–5), followed until resolved."""

    class Reporter(models.TextChoices):
        PRACTITIONER = "practitioner", _("Practitioner")
        PATIENT = "patient", _("Patient")

    patient = models.ForeignKey("patients.Patient", on_delete=models.PROTECT, related_name="adverse_events")
    type = models.CharField(_("type"), max_length=20, choices=AdverseEventType.choices)
    grade = models.PositiveSmallIntegerField(
        _("grade (CTCAE)"), validators=[MinValueValidator(1), MaxValueValidator(5)]
    )
    onset_at = models.DateTimeField(_("onset"))
    reported_by = models.CharField(_("reported by"), max_length=12, choices=Reporter.choices)
    recorded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    description = models.TextField(_("description"), blank=True)
    actions_taken = models.TextField(_("actions taken"), blank=True)
    sessions = models.ManyToManyField(TreatmentSession, blank=True, related_name="adverse_events")
    lots = models.ManyToManyField("treatments.Lot", blank=True, related_name="adverse_events")
    follow_up_due = models.DateField(_("next follow-up"), null=True, blank=True)
    resolved_at = models.DateTimeField(_("resolved"), null=True, blank=True)
    resolution = models.TextField(_("resolution"), blank=True)
    needs_triage = models.BooleanField(default=False, help_text="reported by the patient, not yet graded by staff")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ("-onset_at",)
        indexes = [
            models.Index(fields=["follow_up_due"], name="adverse_followup_open", condition=Q(resolved_at__isnull=True))
        ]
        constraints = [
            models.CheckConstraint(condition=Q(grade__gte=1, grade__lte=5), name="adverse_grade_range"),
            models.CheckConstraint(
                condition=Q(resolved_at__isnull=True) | Q(resolved_at__gte=models.F("onset_at")),
                name="adverse_resolved_after_onset",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_type_display()} grade {self.grade}"


class AdverseEventNote(models.Model):
    """A follow-up contact: what was seen or said, and the grade then."""

    event = models.ForeignKey(AdverseEvent, on_delete=models.PROTECT, related_name="notes")
    at = models.DateTimeField(default=timezone.now)
    by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    grade = models.PositiveSmallIntegerField(validators=[MinValueValidator(1), MaxValueValidator(5)])
    note = models.TextField()

    class Meta:
        ordering = ("at",)
        triggers = [append_only_trigger()]

    def __str__(self) -> str:
        return f"follow-up of {self.event_id} at {self.at:%Y-%m-%d}"


@audited()
class SessionOutcome(models.Model):
    """How it went: GAIS by practitioner and by patient, satisfaction."""

    session = models.OneToOneField(TreatmentSession, on_delete=models.PROTECT, related_name="outcome")
    gais_practitioner = models.PositiveSmallIntegerField(
        _("GAIS (practitioner)"), null=True, blank=True, validators=[MinValueValidator(1), MaxValueValidator(5)]
    )
    gais_patient = models.PositiveSmallIntegerField(
        _("GAIS (patient)"), null=True, blank=True, validators=[MinValueValidator(1), MaxValueValidator(5)]
    )
    satisfaction = models.PositiveSmallIntegerField(
        _("satisfaction (0–10)"), null=True, blank=True, validators=[MaxValueValidator(10)]
    )

    def __str__(self) -> str:
        return f"outcome of session {self.session_id}"


@audited()
class SessionMeasurement(models.Model):
    session = models.ForeignKey(TreatmentSession, on_delete=models.PROTECT, related_name="measurements")
    patient = models.ForeignKey("patients.Patient", on_delete=models.PROTECT, related_name="+")
    kind = models.CharField(
        _("measurement"),
        max_length=20,
        choices=[
            ("circumference", _("Circumference (cm)")),
            ("weight", _("Weight (kg)")),
            ("hair_density", _("Hair density (hairs/cm²)")),
        ],
    )
    area = models.CharField(_("area"), max_length=20, choices=Area.choices, blank=True)
    landmark = models.CharField(_("landmark"), max_length=120, blank=True)
    value = models.DecimalField(_("value"), max_digits=6, decimal_places=1)

    class Meta:
        ordering = ("kind", "area")
        constraints = [
            models.CheckConstraint(condition=Q(value__gt=0, value__lt=1000), name="session_measurement_range")
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.area} {self.value}"


class PlanDocument(models.Model):
    """The rendered PDF of one plan version in one language (a cache, re-rendered on demand)."""

    class Status(models.TextChoices):
        PENDING = "pending", _("waiting for the worker")
        RENDERING = "rendering", _("rendering")
        DONE = "done", _("ready")
        FAILED = "failed", _("failed")

    plan = models.ForeignKey("treatments.TreatmentPlan", on_delete=models.PROTECT, related_name="documents")
    language = models.CharField(max_length=2)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    file_name = models.CharField(max_length=300, blank=True)
    sha256 = models.CharField(max_length=64, blank=True)
    pages = models.PositiveSmallIntegerField(null=True, blank=True)
    requested_at = models.DateTimeField(default=timezone.now)
    rendered_at = models.DateTimeField(null=True, blank=True)
    error = models.TextField(blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["plan", "language"], name="plan_document_once")]

    def __str__(self) -> str:
        return f"PDF of plan {self.plan_id} ({self.language}, {self.status})"


class RecallFlag(models.Model):
    """A patient who received a recalled lot: shown on their record until handled."""

    lot = models.ForeignKey("treatments.Lot", on_delete=models.PROTECT, related_name="recall_flags")
    patient = models.ForeignKey("patients.Patient", on_delete=models.PROTECT, related_name="recall_flags")
    session = models.ForeignKey(TreatmentSession, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)
    message = models.ForeignKey(
        "aftercare.OutboundMessage", on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )

    class Meta:
        constraints = [models.UniqueConstraint(fields=["lot", "session"], name="recall_flag_once")]

    def __str__(self) -> str:
        return f"recall of lot {self.lot_id} for patient {self.patient_id}"
