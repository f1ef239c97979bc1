"""The catalogue a clinic manager keeps: ingredients, products, lots and dose limits."""

from __future__ import annotations

from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from mesoclinic.audit import audited
from patients.models import IngredientCategory


@audited()
class Ingredient(models.Model):
    name = models.CharField(_("name"), max_length=120, unique=True)
    category = models.CharField(_("category"), max_length=20, choices=IngredientCategory.choices)
    allergens = models.ManyToManyField(
        "patients.Allergen", blank=True, related_name="ingredients", verbose_name=_("allergens")
    )
    notes = models.CharField(_("notes"), max_length=300, blank=True)

    class Meta:
        ordering = ("name",)

    def __str__(self) -> str:
        return self.name


@audited()
class Product(models.Model):
    manufacturer = models.CharField(_("manufacturer"), max_length=120)
    name = models.CharField(_("name"), max_length=160)
    unit_volume_ml = models.DecimalField(_("unit volume (mL)"), max_digits=6, decimal_places=2)
    is_active = models.BooleanField(_("active"), default=True)
    notes = models.CharField(_("notes"), max_length=300, blank=True)

    class Meta:
        ordering = ("name",)
        constraints = [
            models.UniqueConstraint(fields=["manufacturer", "name"], name="product_unique_name"),
            models.CheckConstraint(condition=Q(unit_volume_ml__gt=0), name="product_volume_positive"),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.manufacturer})"


@audited()
class ProductComponent(models.Model):
    """One active in a product, at a concentration (mg per mL, or % w/v = 10 mg/mL)."""

    product = models.ForeignKey(Product, on_delete=models.PROTECT, related_name="components")
    ingredient = models.ForeignKey(Ingredient, on_delete=models.PROTECT, related_name="components")
    mg_per_ml = models.DecimalField(_("concentration (mg/mL)"), max_digits=9, decimal_places=3, null=True, blank=True)

    class Meta:
        ordering = ("ingredient__name",)
        constraints = [
            models.UniqueConstraint(fields=["product", "ingredient"], name="component_once_per_product"),
            models.CheckConstraint(
                condition=Q(mg_per_ml__isnull=True) | Q(mg_per_ml__gte=0), name="component_concentration_positive"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.ingredient} {self.mg_per_ml or ''} mg/mL"


@audited()
class Lot(models.Model):
    product = models.ForeignKey(Product, on_delete=models.PROTECT, related_name="lots")
    lot_number = models.CharField(_("lot number"), max_length=60)
    expiry_date = models.DateField(_("expiry date"))
    quantity_on_hand = models.IntegerField(_("units on hand"), default=0)
    supplier = models.CharField(_("supplier"), max_length=120, blank=True)
    received_at = models.DateField(_("received"), default=timezone.localdate)
    recalled_at = models.DateTimeField(_("recalled"), null=True, blank=True)
    recall_reason = models.CharField(_("recall reason"), max_length=300, blank=True)

    class Meta:
        ordering = ("expiry_date", "lot_number")
        constraints = [
            models.UniqueConstraint(fields=["product", "lot_number"], name="lot_unique_number"),
            models.CheckConstraint(condition=Q(quantity_on_hand__gte=0), name="lot_stock_not_negative"),
        ]

    def __str__(self) -> str:
        return f"{self.product.name} · {self.lot_number} (exp. {self.expiry_date:%m/%Y})"

    def usable_on(self, day: object) -> bool:
        return self.recalled_at is None and self.expiry_date >= day  # type: ignore[operator]


@audited()
class DoseLimit(models.Model):
    """A limit seen in practice, as data the clinic edits (DOMAIN.md, "Limits")."""

    class Kind(models.TextChoices):
        ML_PER_POINT = "ml_per_point", _("mL per injection point")
        ML_PER_SESSION = "ml_per_session", _("mL per session")
        MG_PER_SESSION = "mg_per_session", _("mg per session")
        MG_PER_KG = "mg_per_kg", _("mg per kg body weight per session")
        POINTS_PER_SESSION = "points_per_session", _("injection points per session")
        MIN_DAYS_BETWEEN = "min_days_between", _("minimum days between sessions")
        MAX_SESSIONS = "max_sessions", _("maximum sessions in a course")

    class Severity(models.TextChoices):
        BLOCK = "block", _("Block")
        WARN = "warn", _("Warn")

    ingredient = models.ForeignKey(Ingredient, on_delete=models.PROTECT, related_name="dose_limits")
    kind = models.CharField(_("limit"), max_length=20, choices=Kind.choices)
    value = models.DecimalField(_("value"), max_digits=9, decimal_places=3)
    face_only = models.BooleanField(_("face only"), default=False, help_text=_("Applies to face, neck and décolleté."))
    severity = models.CharField(_("severity"), max_length=5, choices=Severity.choices, default=Severity.BLOCK)
    note = models.CharField(_("note"), max_length=300, blank=True)

    class Meta:
        ordering = ("ingredient__name", "kind")
        constraints = [
            models.UniqueConstraint(fields=["ingredient", "kind", "face_only"], name="dose_limit_once"),
            models.CheckConstraint(condition=Q(value__gt=0), name="dose_limit_positive"),
        ]

    def __str__(self) -> str:
        return f"{self.ingredient}: {self.get_kind_display()} ≤ {self.value}"
