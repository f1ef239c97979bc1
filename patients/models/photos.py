from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from mesoclinic.audit import audited


@audited()
class ClinicalPhoto(models.Model):
    """A standardised clinical photograph, stored privately under a generated name."""

    patient = models.ForeignKey("patients.Patient", on_delete=models.PROTECT, related_name="photos")
    consultation = models.ForeignKey(
        "patients.Consultation", on_delete=models.PROTECT, null=True, blank=True, related_name="photos"
    )
    session = models.ForeignKey(
        "treatments.TreatmentSession", on_delete=models.PROTECT, null=True, blank=True, related_name="photos"
    )
    area = models.CharField(_("area"), max_length=20, blank=True)
    view = models.CharField(_("view"), max_length=60, blank=True, help_text=_("e.g. front, left profile"))
    taken_at = models.DateTimeField(_("taken"), default=timezone.now)
    file_name = models.CharField(max_length=300, unique=True)
    content_type = models.CharField(max_length=40)
    width = models.PositiveIntegerField()
    height = models.PositiveIntegerField()
    size_bytes = models.PositiveIntegerField()
    sha256 = models.CharField(max_length=64)

    class Source(models.TextChoices):
        STAFF = "staff", _("taken by the clinic")
        PATIENT = "patient", _("sent by the patient")

    source = models.CharField(max_length=10, choices=Source.choices, default=Source.STAFF)
    # Empty only for a photo the patient sent with a check-in: patients have no account,
    # and naming a practitioner who never saw the picture would be a false record.
    uploaded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+", null=True, blank=True
    )
    # Never deleted: hidden with a reason (e.g. wrong patient), kept for the record.
    hidden_at = models.DateTimeField(null=True, blank=True)
    hidden_reason = models.CharField(max_length=200, blank=True)

    class Meta:
        ordering = ("-taken_at",)
        constraints = [
            models.CheckConstraint(
                condition=models.Q(source="patient") | models.Q(uploaded_by__isnull=False),
                name="photo_staff_upload_names_uploader",
            ),
        ]

    def __str__(self) -> str:
        return f"photo {self.pk} of patient {self.patient_id}"
