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
    protocols_seed()
    for ingredient, kind, value, face_only, severity, note in LIMITS:
        DoseLimit.objects.get_or_create(
            ingredient=ingredients[ingredient],
            kind=kind,
            face_only=face_only,
            defaults={"value": Decimal(value), "severity": severity, "note": note},
        )


PROTOCOLS = [
    {
        "name": "Lipolysis — abdomen (4 × 4 weeks)",
        "concern": "fat_reduction",
        "sessions": 4,
        "min_interval_days": 28,
        "maintenance_interval_days": None,
        "review_after_days": 56,
        "areas": [
            {
                "area": "abdomen",
                "technique": "point_by_point",
                "depth_mm": 6,
                "needle_gauge": 30,
                "needle_length_mm": 6,
                "spacing_mm": 15,
                "points": 20,
                "volume_per_point_ml": 0.2,
                "products": [{"product": "Lipo PC 5%", "volume_ml": 4}],
            },
        ],
    },
    {
        "name": "Skin booster — face, neck (3 × 3 weeks)",
        "concern": "skin_rejuvenation",
        "sessions": 3,
        "min_interval_days": 14,
        "maintenance_interval_days": 180,
        "review_after_days": 30,
        "areas": [
            {
                "area": "face",
                "technique": "micropapules",
                "depth_mm": 1.5,
                "needle_gauge": 32,
                "needle_length_mm": 4,
                "spacing_mm": 10,
                "points": 40,
                "volume_per_point_ml": 0.05,
                "products": [{"product": "HA Booster 1.35%", "volume_ml": 2}],
            },
            {
                "area": "neck",
                "technique": "nappage",
                "depth_mm": 2,
                "needle_gauge": 32,
                "needle_length_mm": 4,
                "spacing_mm": 3,
                "points": 60,
                "volume_per_point_ml": 0.02,
                "products": [{"product": "HA Booster 1.35%", "volume_ml": 1}],
            },
        ],
    },
    {
        "name": "Cellulite — thighs (10 × weekly)",
        "concern": "cellulite",
        "sessions": 10,
        "min_interval_days": 7,
        "maintenance_interval_days": 60,
        "review_after_days": 30,
        "areas": [
            {
                "area": "thighs",
                "technique": "nappage",
                "depth_mm": 4,
                "needle_gauge": 30,
                "needle_length_mm": 6,
                "spacing_mm": 4,
                "points": 80,
                "volume_per_point_ml": 0.05,
                "products": [{"product": "Cellu Caffeine 5%", "volume_ml": 4}],
            },
        ],
    },
    {
        "name": "Hair — scalp (monthly × 6)",
        "concern": "hair_restoration",
        "sessions": 6,
        "min_interval_days": 28,
        "maintenance_interval_days": 90,
        "review_after_days": 90,
        "areas": [
            {
                "area": "scalp",
                "technique": "papule",
                "depth_mm": 1.5,
                "needle_gauge": 32,
                "needle_length_mm": 4,
                "spacing_mm": 10,
                "points": 50,
                "volume_per_point_ml": 0.05,
                "products": [{"product": "Hair Cocktail", "volume_ml": 2.5}],
            },
        ],
    },
]


def protocols_seed() -> None:
    from treatments.models import ProtocolTemplate

    for protocol in PROTOCOLS:
        ProtocolTemplate.objects.get_or_create(
            name=protocol["name"], defaults={k: v for k, v in protocol.items() if k != "name"}
        )
