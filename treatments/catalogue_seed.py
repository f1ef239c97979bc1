"""A realistic starting catalogue (DOMAIN.md): loaded with the demo data, editable after."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

from django.db import transaction

from patients.models import Allergen
from treatments.models import DoseLimit, Ingredient, Lot, Product, ProductComponent

INGREDIENTS = [
    # name, category, allergen codes
    ("Phosphatidylcholine", "lipolytic", ["soy"]),
    ("Sodium deoxycholate", "lipolytic", []),
    ("Deoxycholic acid", "lipolytic", []),
    ("Hyaluronic acid (non cross-linked)", "hyaluronic_acid", []),
    ("Vitamin C (ascorbic acid)", "vitamin", []),
    ("Vitamin B complex", "vitamin", []),
    ("Organic silicon", "mineral", []),
    ("Amino-acid complex", "amino_acid", []),
    ("Hyaluronidase", "enzyme", ["hyaluronidase"]),
    ("Collagenase", "enzyme", []),
    ("Minoxidil", "medication", []),
    ("Dutasteride", "medication", []),
    ("Lidocaine", "anaesthetic", ["lidocaine"]),
    ("Procaine", "anaesthetic", ["procaine"]),
    ("Caffeine", "other", ["caffeine"]),
    ("L-carnitine", "amino_acid", []),
    ("Biomimetic peptides", "peptide", []),
]

PRODUCTS = [
    # manufacturer, name, unit mL, [(ingredient, mg/mL)]
    ("Lipolab", "Lipo PC 5%", "5", [("Phosphatidylcholine", "50"), ("Sodium deoxycholate", "25")]),
    ("Dermaline", "DCA 10 mg/mL", "2", [("Deoxycholic acid", "10")]),
    ("Skinova", "HA Booster 1.35%", "3", [("Hyaluronic acid (non cross-linked)", "13.5")]),
    ("Skinova", "Vita-C 20%", "5", [("Vitamin C (ascorbic acid)", "200")]),
    ("Silicium Lab", "Organic Silicon 0.5%", "5", [("Organic silicon", "5")]),
    (
        "Capillis",
        "Hair Cocktail",
        "5",
        [("Dutasteride", "0.05"), ("Vitamin B complex", "2"), ("Biomimetic peptides", "1")],
    ),
    ("Pharmaco", "Lidocaine 1% (no adrenaline)", "5", [("Lidocaine", "10")]),
    ("Slimtech", "Cellu Caffeine 5%", "5", [("Caffeine", "50"), ("L-carnitine", "100")]),
]

LIMITS = [
    # ingredient, kind, value, face only, severity, note
    ("Phosphatidylcholine", "ml_per_point", "0.3", False, "block", "PC/DC about 0.3 mL per point"),
    ("Phosphatidylcholine", "mg_per_session", "5000", False, "block", "about 5 g PC per session"),
    ("Phosphatidylcholine", "mg_per_session", "2500", True, "block", "about half on the face"),
    ("Deoxycholic acid", "points_per_session", "50", False, "block", "at most 50 points of 0.2 mL"),
    ("Deoxycholic acid", "ml_per_session", "10", False, "block", "10 mL per session"),
    ("Deoxycholic acid", "min_days_between", "28", False, "block", "sessions at least one month apart"),
    ("Deoxycholic acid", "max_sessions", "6", False, "block", "at most 6 sessions"),
    ("Lidocaine", "mg_per_kg", "4.5", False, "block", "without adrenaline, about 4.5 mg/kg per session"),
]


@transaction.atomic
def catalogue_seed() -> None:
    allergens = {a.code: a for a in Allergen.objects.all()}
    ingredients = {}
    for name, category, codes in INGREDIENTS:
        ingredient, _ = Ingredient.objects.get_or_create(name=name, defaults={"category": category})
        ingredient.allergens.add(*[allergens[c] for c in codes if c in allergens])
        ingredients[name] = ingredient
    today = date.today()
    for index, (manufacturer, name, volume, components) in enumerate(PRODUCTS):
        product, _ = Product.objects.get_or_create(
            manufacturer=manufacturer, name=name, defaults={"unit_volume_ml": Decimal(volume)}
        )
        for ingredient, mg in components:
            ProductComponent.objects.get_or_create(
                product=product, ingredient=ingredients[ingredient], defaults={"mg_per_ml": Decimal(mg)}
            )
        code = "".join(word[0] for word in name.split() if word[0].isalnum()).upper()
        Lot.objects.get_or_create(
            product=product,
            lot_number=f"{code}-{today.year}-{index + 1:03d}",
            defaults={
                "expiry_date": today + timedelta(days=300 + 30 * index),
                "quantity_on_hand": 20,
                "supplier": manufacturer,
            },
        )
        Lot.objects.get_or_create(
            product=product,
            lot_number=f"{code}-{today.year - 1}-{index + 1:03d}",
            defaults={"expiry_date": today - timedelta(days=20), "quantity_on_hand": 2, "supplier": manufacturer},
        )
    for ingredient, kind, value, face_only, severity, note in LIMITS:
        DoseLimit.objects.get_or_create(
            ingredient=ingredients[ingredient],
            kind=kind,
            face_only=face_only,
            defaults={"value": Decimal(value), "severity": severity, "note": note},
        )
