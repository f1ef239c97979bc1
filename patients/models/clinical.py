"""Medical history, consultations and the contraindication rules (DOMAIN.md)."""

from __future__ import annotations

from decimal import Decimal

from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from mesoclinic.audit import append_only_trigger, audited


class Condition(models.TextChoices):
    PREGNANCY = "pregnancy", _("Pregnancy")
    BREASTFEEDING = "breastfeeding", _("Breastfeeding")
    ACTIVE_CANCER = "active_cancer", _("Active cancer")
    RENAL_DISEASE = "renal_disease", _("Renal disease or failure")
    HEPATIC_DISEASE = "hepatic_disease", _("Hepatic disease or failure")
    GALLSTONES = "gallstones", _("Gallstones")
    BLEEDING_DISORDER = "bleeding_disorder", _("Bleeding disorder")
    DIABETES_TYPE1 = "diabetes_type1", _("Diabetes, insulin-dependent (type 1)")
    DIABETES_TYPE2 = "diabetes_type2", _("Diabetes, type 2")
    AUTOIMMUNE = "autoimmune_disease", _("Autoimmune disease")
    HERPES = "herpes", _("Herpes (cold sores), recurrent or active")
    KELOID = "keloid_tendency", _("Keloid or hypertrophic scarring tendency")
    SKIN_INFECTION = "active_skin_infection", _("Active skin infection at a treatment site")
    HEART_DISEASE = "heart_disease", _("Heart disease")
    EPILEPSY = "epilepsy", _("Epilepsy")


class MedicationFlag(models.TextChoices):
    ANTICOAGULANT = "anticoagulant", _("Anticoagulant")
    ANTIPLATELET = "antiplatelet", _("Antiplatelet (incl. aspirin)")
    ISOTRETINOIN = "isotretinoin_6m", _("Isotretinoin in the last 6 months")
    IMMUNOSUPPRESSANT = "immunosuppressant", _("Immunosuppressant")


class IngredientCategory(models.TextChoices):
    VITAMIN = "vitamin", _("Vitamin")
    MINERAL = "mineral", _("Mineral")
    AMINO_ACID = "amino_acid", _("Amino acid")
    ENZYME = "enzyme", _("Enzyme")
    MEDICATION = "medication", _("Medication")
    LIPOLYTIC = "lipolytic", _("Lipolytic")
    HYALURONIC_ACID = "hyaluronic_acid", _("Hyaluronic acid")
    ANAESTHETIC = "anaesthetic", _("Anaesthetic")
    PEPTIDE = "peptide", _("Peptide")
    OTHER = "other", _("Other")


class Concern(models.TextChoices):
    FAT_REDUCTION = "fat_reduction", _("Fat reduction")
    CELLULITE = "cellulite", _("Cellulite")
    SKIN_REJUVENATION = "skin_rejuvenation", _("Skin rejuvenation")
    HAIR_RESTORATION = "hair_restoration", _("Hair restoration")
    PAIN_MANAGEMENT = "pain_management", _("Pain management")


class Area(models.TextChoices):
    ABDOMEN = "abdomen", _("Abdomen")
    FLANKS = "flanks", _("Flanks")
    THIGHS = "thighs", _("Thighs")
    BUTTOCKS = "buttocks", _("Buttocks")
    ARMS = "arms", _("Arms")
    CHIN = "chin", _("Chin (submental)")
    FACE = "face", _("Face")
    NECK = "neck", _("Neck")
    DECOLLETE = "decollete", _("Décolleté")
    HANDS = "hands", _("Hands")
    SCALP = "scalp", _("Scalp")
    KNEES = "knees", _("Knees")
    JOINTS = "joints", _("Joints")
    BACK = "back", _("Back")


class Allergen(models.Model):
    """The vocabulary that patients' allergies and ingredients share (soy, egg, lidocaine …)."""

    code = models.SlugField(max_length=40, unique=True)
    name_en = models.CharField(max_length=100)
    name_fr = models.CharField(max_length=100)

    class Meta:
        ordering = ("name_en",)

    def __str__(self) -> str:
        from django.utils.translation import get_language

        return self.name_fr if (get_language() or "").startswith("fr") else self.name_en


class MedicalHistory(models.Model):
    """One confirmed version of a patient's history. Versions are never edited: a change,
    or a confirmation that nothing changed, is a new version."""

    class Smoking(models.TextChoices):
        NEVER = "never", _("Never")
        FORMER = "former", _("Former smoker")
        CURRENT = "current", _("Current smoker")

    patient = models.ForeignKey("patients.Patient", on_delete=models.PROTECT, related_name="histories")
    version = models.PositiveIntegerField()
    recorded_at = models.DateTimeField(default=timezone.now)
    recorded_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    conditions = ArrayField(models.CharField(max_length=40, choices=Condition.choices), default=list, blank=True)
    conditions_detail = models.TextField(_("details on conditions"), blank=True)
    weight_kg = models.DecimalField(
        _("weight (kg)"),
        max_digits=5,
        decimal_places=1,
        null=True,
        blank=True,
        validators=[MinValueValidator(Decimal("20")), MaxValueValidator(Decimal("350"))],
    )
    height_cm = models.PositiveSmallIntegerField(
        _("height (cm)"), null=True, blank=True, validators=[MinValueValidator(100), MaxValueValidator(250)]
    )
    smoking = models.CharField(_("smoking"), max_length=10, choices=Smoking.choices, blank=True)
    previous_treatments = models.TextField(_("previous aesthetic treatments"), blank=True)
    allergies_other = models.CharField(_("other allergies (free text)"), max_length=300, blank=True)
    no_known_allergies = models.BooleanField(_("no known allergies"), default=False)
    is_confirmation_only = models.BooleanField(default=False)

    class Meta:
        ordering = ("-version",)
        triggers = [append_only_trigger()]
        constraints = [
            models.UniqueConstraint(fields=["patient", "version"], name="history_unique_version"),
            models.CheckConstraint(
                condition=Q(weight_kg__isnull=True) | Q(weight_kg__gte=20, weight_kg__lte=350),
                name="history_weight_sane",
            ),
            models.CheckConstraint(
                condition=Q(height_cm__isnull=True) | Q(height_cm__gte=100, height_cm__lte=250),
                name="history_height_sane",
            ),
        ]

    def __str__(self) -> str:
        return f"history v{self.version} of patient {self.patient_id}"


class HistoryMedication(models.Model):
    history = models.ForeignKey(MedicalHistory, on_delete=models.PROTECT, related_name="medications")
    name = models.CharField(_("medication"), max_length=150)
    flags = ArrayField(models.CharField(max_length=30, choices=MedicationFlag.choices), default=list, blank=True)
    note = models.CharField(_("dose or note"), max_length=200, blank=True)

    class Meta:
        ordering = ("id",)
        triggers = [append_only_trigger()]

    def __str__(self) -> str:
        return self.name


class HistoryAllergy(models.Model):
    history = models.ForeignKey(MedicalHistory, on_delete=models.PROTECT, related_name="allergies")
    allergen = models.ForeignKey(Allergen, on_delete=models.PROTECT, related_name="+")
    reaction = models.CharField(_("reaction"), max_length=200, blank=True)

    class Meta:
        ordering = ("id",)
        triggers = [append_only_trigger()]
        constraints = [models.UniqueConstraint(fields=["history", "allergen"], name="history_allergy_once")]

    def __str__(self) -> str:
        return str(self.allergen)


@audited()
class Consultation(models.Model):
    patient = models.ForeignKey("patients.Patient", on_delete=models.PROTECT, related_name="consultations")
    practitioner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    location = models.ForeignKey(
        "mesoclinic.Location", on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    held_at = models.DateTimeField(_("date"), default=timezone.now)
    history = models.ForeignKey(
        MedicalHistory,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        help_text=_("The history version reviewed at this consultation."),
    )
    concerns = ArrayField(models.CharField(max_length=30, choices=Concern.choices), default=list)
    areas = ArrayField(models.CharField(max_length=20, choices=Area.choices), default=list)
    fitzpatrick = models.PositiveSmallIntegerField(
        _("Fitzpatrick skin type"), null=True, blank=True, validators=[MinValueValidator(1), MaxValueValidator(6)]
    )
    glogau = models.PositiveSmallIntegerField(
        _("Glogau photo-ageing type"), null=True, blank=True, validators=[MinValueValidator(1), MaxValueValidator(4)]
    )
    findings = models.TextField(_("findings"), blank=True)
    recommendation = models.TextField(_("recommendation"), blank=True)
    screening = models.JSONField(default=list, blank=True, help_text="findings of the screening at the time")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ("-held_at",)
        constraints = [
            models.CheckConstraint(
                condition=Q(fitzpatrick__isnull=True) | Q(fitzpatrick__gte=1, fitzpatrick__lte=6),
                name="consultation_fitzpatrick_range",
            ),
            models.CheckConstraint(
                condition=Q(glogau__isnull=True) | Q(glogau__gte=1, glogau__lte=4), name="consultation_glogau_range"
            ),
        ]

    def __str__(self) -> str:
        return f"consultation {self.held_at:%Y-%m-%d} · patient {self.patient_id}"

    @property
    def concern_labels(self) -> list[str]:
        labels = dict(Concern.choices)
        return [str(labels.get(code, code)) for code in self.concerns]

    @property
    def area_labels(self) -> list[str]:
        labels = dict(Area.choices)
        return [str(labels.get(code, code)) for code in self.areas]


@audited()
class Measurement(models.Model):
    class Kind(models.TextChoices):
        CIRCUMFERENCE = "circumference", _("Circumference (cm)")
        WEIGHT = "weight", _("Weight (kg)")
        HAIR_DENSITY = "hair_density", _("Hair density (hairs/cm²)")

    consultation = models.ForeignKey(Consultation, on_delete=models.PROTECT, related_name="measurements")
    patient = models.ForeignKey("patients.Patient", on_delete=models.PROTECT, related_name="+")
    kind = models.CharField(_("measurement"), max_length=20, choices=Kind.choices)
    area = models.CharField(_("area"), max_length=20, choices=Area.choices, blank=True)
    landmark = models.CharField(_("landmark"), max_length=120, blank=True)
    value = models.DecimalField(_("value"), max_digits=6, decimal_places=1)
    measured_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ("kind", "area")
        constraints = [
            models.CheckConstraint(condition=Q(value__gt=0, value__lt=1000), name="measurement_value_range"),
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.area} {self.value}"


@audited()
class ContraindicationRule(models.Model):
    """Editable data: condition, medication or allergen → block or warn."""

    class Trigger(models.TextChoices):
        CONDITION = "condition", _("Condition")
        MEDICATION = "medication", _("Medication")
        ALLERGEN = "allergen", _("Allergy")

    class Severity(models.TextChoices):
        BLOCK = "block", _("Block")
        WARN = "warn", _("Warn")

    trigger = models.CharField(_("when the history has"), max_length=12, choices=Trigger.choices)
    condition = models.CharField(max_length=40, choices=Condition.choices, blank=True)
    medication_flag = models.CharField(max_length=30, choices=MedicationFlag.choices, blank=True)
    allergen = models.ForeignKey(Allergen, on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    category = models.CharField(
        _("only for ingredients of category"),
        max_length=20,
        choices=IngredientCategory.choices,
        blank=True,
        help_text=_("Empty: applies to all mesotherapy."),
    )
    severity = models.CharField(_("severity"), max_length=5, choices=Severity.choices)
    reason_en = models.CharField(_("reason (English)"), max_length=300)
    reason_fr = models.CharField(_("reason (French)"), max_length=300)
    is_active = models.BooleanField(_("active"), default=True)

    class Meta:
        ordering = ("trigger", "condition", "medication_flag", "allergen__code")
        constraints = [
            models.CheckConstraint(
                condition=(Q(trigger="condition") & ~Q(condition="") & Q(medication_flag="") & Q(allergen__isnull=True))
                | (Q(trigger="medication") & Q(condition="") & ~Q(medication_flag="") & Q(allergen__isnull=True))
                | (Q(trigger="allergen") & Q(condition="") & Q(medication_flag="") & Q(allergen__isnull=False)),
                name="rule_trigger_matches_field",
            )
        ]

    def __str__(self) -> str:
        return f"{self.trigger}:{self.condition or self.medication_flag or self.allergen_id} → {self.severity}"

    @property
    def reason(self) -> str:
        from django.utils.translation import get_language

        return self.reason_fr if (get_language() or "").startswith("fr") else self.reason_en
