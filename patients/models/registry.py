from __future__ import annotations

from datetime import date

from django.conf import settings
from django.contrib.postgres.indexes import GinIndex, OpClass
from django.db import models
from django.db.models import F, Func, Q, Value
from django.db.models.functions import Concat
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from phonenumber_field.modelfields import PhoneNumberField

from mesoclinic.audit import audited


class Fold(Func):
    """Lower-case and strip accents, in the database (``mesoclinic_fold``, immutable SQL)."""

    function = "mesoclinic_fold"
    output_field = models.TextField()


class Sex(models.TextChoices):
    FEMALE = "female", _("Female")
    MALE = "male", _("Male")
    OTHER = "other", _("Other")
    UNKNOWN = "unknown", _("Not stated")


class Language(models.TextChoices):
    EN = "en", _("English")
    FR = "fr", _("French")


@audited(exclude=["search_name"])
class Patient(models.Model):
    class Status(models.TextChoices):
        ACTIVE = "active", _("Active")
        ARCHIVED = "archived", _("Archived")

    first_name = models.CharField(_("first name"), max_length=100)
    last_name = models.CharField(_("last name"), max_length=100)
    birth_date = models.DateField(_("date of birth"))
    sex = models.CharField(_("sex"), max_length=10, choices=Sex.choices, default=Sex.UNKNOWN)
    email = models.EmailField(_("email"), blank=True)
    phone = PhoneNumberField(_("phone"), blank=True)
    address_line = models.CharField(_("address"), max_length=200, blank=True)
    postal_code = models.CharField(_("postal code"), max_length=20, blank=True)
    city = models.CharField(_("city"), max_length=100, blank=True)
    country = models.CharField(_("country"), max_length=2, default="FR")
    preferred_language = models.CharField(
        _("preferred language"), max_length=2, choices=Language.choices, default=Language.FR
    )
    emergency_contact_name = models.CharField(_("emergency contact"), max_length=150, blank=True)
    emergency_contact_phone = PhoneNumberField(_("emergency contact phone"), blank=True)
    email_transactional = models.BooleanField(
        _("booking and aftercare emails"),
        default=True,
        help_text=_(
            "Booking confirmations and reminders. Aftercare and safety messages are sent unless the patient "
            "withdraws all email."
        ),
    )
    marketing_opt_in = models.BooleanField(_("news and offers by email"), default=False)
    # The patient asked for no email at all, clinical-safety messages included (recorded
    # with when; the clinic then phones for anything that matters).
    email_withdrawn_at = models.DateTimeField(_("all email withdrawn on"), null=True, blank=True)
    marketing_opt_in_at = models.DateTimeField(_("news and offers accepted on"), null=True, blank=True)
    status = models.CharField(_("status"), max_length=10, choices=Status.choices, default=Status.ACTIVE)
    archived_at = models.DateTimeField(null=True, blank=True)
    archived_reason = models.CharField(_("reason for archiving"), max_length=300, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    # "dubois helene": lower-cased, accent-free, for trigram and prefix search.
    search_name = models.GeneratedField(
        expression=Fold(Concat(F("last_name"), Value(" "), F("first_name"))),
        output_field=models.TextField(),
        db_persist=True,
    )

    class Meta:
        verbose_name = _("patient")
        ordering = ("search_name", "id")
        indexes = [
            GinIndex(OpClass("search_name", name="gin_trgm_ops"), name="patient_name_trgm"),
            models.Index(OpClass("search_name", name="text_pattern_ops"), "id", name="patient_name_keyset"),
            models.Index(fields=["birth_date"], name="patient_birth_date"),
            models.Index(fields=["phone"], name="patient_phone"),
            models.Index(Fold("email"), name="patient_email_folded"),
        ]
        constraints = [
            models.CheckConstraint(condition=Q(birth_date__gte=date(1900, 1, 1)), name="patient_birth_date_sane"),
            models.CheckConstraint(
                condition=Q(status="active", archived_at__isnull=True)
                | Q(status="archived", archived_at__isnull=False),
                name="patient_archived_has_time",
            ),
            models.CheckConstraint(
                condition=Q(marketing_opt_in=False) | Q(marketing_opt_in_at__isnull=False),
                name="patient_marketing_has_time",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.last_name.upper()} {self.first_name}"

    @property
    def full_name(self) -> str:
        return f"{self.first_name} {self.last_name}"

    @property
    def age(self) -> int:
        today = timezone.localdate()
        born = self.birth_date
        return today.year - born.year - ((today.month, today.day) < (born.month, born.day))


class Surname(models.Model):
    """Each folded surname of the register once, with how many patients bear it.

    The typo search looks a misspelt surname up here (tens of thousands of rows, with
    their own trigram index) rather than among every patient (a million rows): B2 in
    docs/benchmarks.md. Derived data, kept by statement-level triggers on the patient
    table (patients migration 0009); the application never writes it.
    """

    surname = models.TextField(primary_key=True)
    patients = models.PositiveIntegerField(default=0)

    class Meta:
        indexes = [GinIndex(OpClass("surname", name="gin_trgm_ops"), name="surname_trgm")]

    def __str__(self) -> str:
        return self.surname
