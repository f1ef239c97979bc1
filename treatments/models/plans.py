"""Treatment plans: formulations per area, the course schedule, safety acknowledgements."""

from __future__ import annotations

import pghistory
from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from mesoclinic.audit import append_only_trigger, audited
from patients.models import Area, Concern


class Technique(models.TextChoices):
    PAPULE = "papule", _("Papule (1–2 mm)")
    NAPPAGE = "nappage", _("Nappage (2–4 mm)")
    POINT_BY_POINT = "point_by_point", _("Point by point (4–12 mm)")
    MICROPAPULES = "micropapules", _("Micropapules (1.5–2 mm)")
    LINEAR_RETROGRADE = "linear_retrograde", _("Linear retrograde")


FACE_AREAS = frozenset({Area.FACE, Area.NECK, Area.DECOLLETE, Area.CHIN})


@audited()
class ProtocolTemplate(models.Model):
    """A common protocol the practitioner starts from and adapts (DOMAIN.md, "Courses")."""

    name = models.CharField(_("name"), max_length=120, unique=True)
    concern = models.CharField(_("concern"), max_length=30, choices=Concern.choices)
    sessions = models.PositiveSmallIntegerField(_("sessions"), validators=[MinValueValidator(1), MaxValueValidator(30)])
    min_interval_days = models.PositiveSmallIntegerField(_("minimum days between sessions"))
    maintenance_interval_days = models.PositiveSmallIntegerField(_("maintenance every (days)"), null=True, blank=True)
    review_after_days = models.PositiveSmallIntegerField(
        _("review after the last session (days)"), null=True, blank=True
    )
    # [{"area": "abdomen", "technique": "point_by_point", "depth_mm": 6, "needle_gauge": 30,
    #   "needle_length_mm": 6, "spacing_mm": 15, "points": 20, "volume_per_point_ml": 0.2,
    #   "products": [{"product": "Lipo PC 5%", "volume_ml": 4}]}]
    areas = models.JSONField(default=list, blank=True)
    is_active = models.BooleanField(_("active"), default=True)

    class Meta:
        ordering = ("name",)

    def __str__(self) -> str:
        return self.name


@audited()
class TreatmentPlan(models.Model):
    """One version of a plan. Editing a consented plan creates the next version."""

    class Status(models.TextChoices):
        DRAFT = "draft", _("Draft")
        PROPOSED = "proposed", _("Proposed to the patient")
        CONSENTED = "consented", _("Consented")
        ACTIVE = "active", _("In progress")
        COMPLETED = "completed", _("Completed")
        CANCELLED = "cancelled", _("Cancelled")
        SUPERSEDED = "superseded", _("Replaced by a newer version")

    patient = models.ForeignKey("patients.Patient", on_delete=models.PROTECT, related_name="plans")
    consultation = models.ForeignKey(
        "patients.Consultation", on_delete=models.PROTECT, null=True, blank=True, related_name="plans"
    )
    practitioner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    root = models.ForeignKey(
        "self", on_delete=models.PROTECT, null=True, blank=True, related_name="+", help_text="the first version"
    )
    previous = models.OneToOneField(
        "self", on_delete=models.PROTECT, null=True, blank=True, related_name="next_version"
    )
    version = models.PositiveSmallIntegerField(default=1)
    # Optimistic locking: a save must carry the revision it was edited from.
    revision = models.PositiveIntegerField(default=1)
    status = models.CharField(_("status"), max_length=12, choices=Status.choices, default=Status.DRAFT)
    concern = models.CharField(_("concern"), max_length=30, choices=Concern.choices)
    goal = models.CharField(_("goal"), max_length=300, blank=True)
    protocol = models.ForeignKey(ProtocolTemplate, on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    sessions_planned = models.PositiveSmallIntegerField(
        _("sessions"), default=4, validators=[MinValueValidator(1), MaxValueValidator(30)]
    )
    min_interval_days = models.PositiveSmallIntegerField(
        _("minimum days between sessions"), default=28, validators=[MinValueValidator(1), MaxValueValidator(365)]
    )
    maintenance_interval_days = models.PositiveSmallIntegerField(
        _("maintenance every (days)"), null=True, blank=True, validators=[MaxValueValidator(730)]
    )
    review_after_days = models.PositiveSmallIntegerField(
        _("review after the last session (days)"), null=True, blank=True, validators=[MaxValueValidator(365)]
    )
    consent = models.ForeignKey("patients.Consent", on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    consented_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ("-created_at",)
        constraints = [
            models.CheckConstraint(
                condition=Q(sessions_planned__gte=1, sessions_planned__lte=30), name="plan_sessions_range"
            ),
            models.CheckConstraint(condition=Q(min_interval_days__gte=1), name="plan_interval_positive"),
            models.CheckConstraint(
                condition=~Q(status__in=["consented", "active", "completed"]) | Q(consent__isnull=False),
                name="plan_consented_has_consent",
            ),
            models.UniqueConstraint(fields=["root", "version"], name="plan_unique_version"),
        ]

    def __str__(self) -> str:
        return f"plan {self.pk} v{self.version} · patient {self.patient_id}"

    @property
    def is_editable_in_place(self) -> bool:
        return self.status in {self.Status.DRAFT, self.Status.PROPOSED}


def _draft_row_trackers() -> tuple[object, ...]:
    # Fresh instances per model: a tracker binds to the model it decorates.
    return (pghistory.InsertEvent(), pghistory.UpdateEvent(), pghistory.DeleteEvent())


@audited(*_draft_row_trackers())
class PlanArea(models.Model):
    plan = models.ForeignKey(TreatmentPlan, on_delete=models.PROTECT, related_name="areas")
    area = models.CharField(_("area"), max_length=20, choices=Area.choices)
    technique = models.CharField(_("technique"), max_length=20, choices=Technique.choices)
    depth_mm = models.DecimalField(
        _("depth (mm)"), max_digits=4, decimal_places=1, validators=[MinValueValidator(0.5), MaxValueValidator(13)]
    )
    needle_gauge = models.PositiveSmallIntegerField(
        _("needle gauge (G)"), validators=[MinValueValidator(25), MaxValueValidator(34)]
    )
    needle_length_mm = models.DecimalField(
        _("needle length (mm)"),
        max_digits=4,
        decimal_places=1,
        validators=[MinValueValidator(2), MaxValueValidator(25)],
    )
    spacing_mm = models.DecimalField(
        _("spacing (mm)"),
        max_digits=4,
        decimal_places=1,
        null=True,
        blank=True,
        validators=[MinValueValidator(1), MaxValueValidator(50)],
    )
    points = models.PositiveSmallIntegerField(
        _("injection points"), validators=[MinValueValidator(1), MaxValueValidator(500)]
    )
    volume_per_point_ml = models.DecimalField(
        _("volume per point (mL)"),
        max_digits=5,
        decimal_places=3,
        validators=[MinValueValidator(0.005), MaxValueValidator(2)],
    )
    position = models.PositiveSmallIntegerField(default=0)

    class Meta:
        ordering = ("position", "id")
        constraints = [models.UniqueConstraint(fields=["plan", "area"], name="plan_area_once")]

    def __str__(self) -> str:
        return f"{self.get_area_display()} · {self.get_technique_display()}"

    @property
    def is_face(self) -> bool:
        return self.area in FACE_AREAS


@audited(*_draft_row_trackers())
class PlanProduct(models.Model):
    """A product in an area's blend, with the volume injected per session in that area."""

    plan_area = models.ForeignKey(PlanArea, on_delete=models.PROTECT, related_name="products")
    product = models.ForeignKey("treatments.Product", on_delete=models.PROTECT, related_name="+")
    volume_ml = models.DecimalField(
        _("volume per session (mL)"),
        max_digits=6,
        decimal_places=2,
        validators=[MinValueValidator(0.01), MaxValueValidator(100)],
    )

    class Meta:
        ordering = ("id",)
        constraints = [models.UniqueConstraint(fields=["plan_area", "product"], name="plan_product_once")]

    def __str__(self) -> str:
        return f"{self.product} {self.volume_ml} mL"


class PlanAcknowledgement(models.Model):
    """A warning the practitioner read and chose to proceed with, and why."""

    plan = models.ForeignKey(TreatmentPlan, on_delete=models.PROTECT, related_name="acknowledgements")
    trigger = models.CharField(max_length=120)
    finding = models.CharField(max_length=400)
    reason = models.CharField(_("reason to proceed"), max_length=400)
    acknowledged_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    acknowledged_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ("acknowledged_at",)
        triggers = [append_only_trigger()]

    def __str__(self) -> str:
        return f"{self.trigger}: {self.reason}"
