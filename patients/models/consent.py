"""Versioned consent texts and the consents patients sign (legal records: append-only)."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from mesoclinic.audit import append_only_trigger


class ConsentText(models.Model):
    """One version of the consent for a kind of treatment, in English and French.

    Publishing a new version of a kind makes every consent to an older version of
    that kind insufficient for future sessions: the patient must consent again.
    """

    class Kind(models.TextChoices):
        MESOTHERAPY = "mesotherapy", _("Mesotherapy injections")
        LIPOLYSIS = "lipolysis", _("Injection lipolysis")
        SKIN_BOOSTER = "skin_booster", _("Skin booster")
        HAIR = "hair", _("Hair mesotherapy")
        PHOTOGRAPHY = "photography", _("Clinical photographs")

    kind = models.CharField(_("kind"), max_length=20, choices=Kind.choices)
    version = models.PositiveIntegerField(_("version"))
    title_en = models.CharField(_("title (English)"), max_length=200)
    body_en = models.TextField(_("text (English)"))
    title_fr = models.CharField(_("title (French)"), max_length=200)
    body_fr = models.TextField(_("text (French)"))
    published_at = models.DateTimeField(default=timezone.now)
    published_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")

    class Meta:
        ordering = ("kind", "-version")
        triggers = [append_only_trigger()]
        constraints = [models.UniqueConstraint(fields=["kind", "version"], name="consent_text_unique_version")]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} v{self.version}"

    def title(self, language: str) -> str:
        return self.title_fr if language.startswith("fr") else self.title_en

    def body(self, language: str) -> str:
        return self.body_fr if language.startswith("fr") else self.body_en


class Consent(models.Model):
    """A patient's signed consent to one exact text version."""

    patient = models.ForeignKey("patients.Patient", on_delete=models.PROTECT, related_name="consents")
    text = models.ForeignKey(ConsentText, on_delete=models.PROTECT, related_name="consents")
    language = models.CharField(max_length=2)
    typed_name = models.CharField(_("name typed by the patient"), max_length=200)
    # The drawn signature as a PNG (validated, size-limited) in the private storage.
    signature_file = models.CharField(max_length=300)
    signature_sha256 = models.CharField(max_length=64)
    signed_at = models.DateTimeField(default=timezone.now)
    witness = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    ip = models.GenericIPAddressField(null=True)

    class Meta:
        ordering = ("-signed_at",)
        triggers = [append_only_trigger()]

    def __str__(self) -> str:
        return f"{self.text} signed {self.signed_at:%Y-%m-%d} by patient {self.patient_id}"


class ConsentWithdrawal(models.Model):
    consent = models.OneToOneField(Consent, on_delete=models.PROTECT, related_name="withdrawal")
    withdrawn_at = models.DateTimeField(default=timezone.now)
    recorded_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    reason = models.CharField(max_length=300, blank=True)

    class Meta:
        triggers = [append_only_trigger()]

    def __str__(self) -> str:
        return f"withdrawal of consent {self.consent_id}"
