"""The aftercare advice a new clinic starts from, in English and French.

Taken from DOMAIN.md ("Aftercare", "Side effects") and plain common sense only: no claim
a clinic would have to defend. Managers edit the rows afterwards; seeding never
overwrites an edited row. Plain strings (no model imports): a data migration uses this.
"""

from __future__ import annotations

from typing import Any

# Template keys: "general" and "warning_signs" frame every aftercare email; "area:<x>"
# and "concern:<x>" add what the treated areas and the plan's concern call for.
GENERAL = "general"
WARNING_SIGNS = "warning_signs"

# SessionArea.area codes (patients.models.Area) → the template that covers them.
AREA_KEYS: dict[str, str] = {
    "face": "area:face",
    "chin": "area:face",
    "neck": "area:neck_decollete",
    "decollete": "area:neck_decollete",
    "scalp": "area:scalp",
    "hands": "area:hands",
    "abdomen": "area:body",
    "flanks": "area:body",
    "thighs": "area:body",
    "buttocks": "area:body",
    "arms": "area:body",
    "back": "area:body",
    "knees": "area:body",
    "joints": "area:body",
}

# TreatmentPlan.concern codes (patients.models.Concern) → their template.
CONCERN_KEYS: dict[str, str] = {
    "fat_reduction": "concern:fat_reduction",
    "cellulite": "concern:cellulite",
    "skin_rejuvenation": "concern:skin_rejuvenation",
    "hair_restoration": "concern:hair_restoration",
    "pain_management": "concern:pain_management",
}

AFTERCARE_SEED: list[dict[str, Any]] = [
    {
        "key": GENERAL,
        "position": 10,
        "en": (
            "After your session",
            "For 8 hours, do not shower or wet the treated areas.\n"
            "For 48 hours, avoid saunas, hot baths, intense exercise and sun or UV light "
            "(including tanning beds).\n"
            "Bruising, swelling, redness or irritation where the needle went in are common and "
            "usually go away within a few days. Arnica or a soothing cream can help with bruising.",
        ),
        "fr": (
            "Après votre séance",
            "Pendant 8 heures, ne prenez pas de douche et ne mouillez pas les zones traitées.\n"
            "Pendant 48 heures, évitez le sauna, les bains chauds, l'effort physique intense et "
            "le soleil ou les UV (y compris les cabines de bronzage).\n"
            "Des bleus, un gonflement, des rougeurs ou une irritation aux points d'injection sont "
            "fréquents et disparaissent en général en quelques jours. L'arnica ou une crème "
            "apaisante peuvent aider en cas de bleus.",
        ),
    },
    {
        "key": "area:face",
        "position": 20,
        "en": (
            "Face",
            "Do not put make-up on the treated skin for 24 to 48 hours. Clean your face gently, "
            "without rubbing the treated areas, and protect it from the sun.",
        ),
        "fr": (
            "Visage",
            "Ne vous maquillez pas sur la peau traitée pendant 24 à 48 heures. Nettoyez votre "
            "visage en douceur, sans frotter les zones traitées, et protégez-le du soleil.",
        ),
    },
    {
        "key": "area:neck_decollete",
        "position": 21,
        "en": (
            "Neck and décolleté",
            "Do not put make-up on the treated skin for 24 to 48 hours. Keep the neck and "
            "décolleté out of the sun, and wear loose clothing that does not rub the treated skin.",
        ),
        "fr": (
            "Cou et décolleté",
            "Ne vous maquillez pas sur la peau traitée pendant 24 à 48 heures. Protégez le cou et "
            "le décolleté du soleil et portez des vêtements amples qui ne frottent pas la peau traitée.",
        ),
    },
    {
        "key": "area:scalp",
        "position": 22,
        "en": (
            "Scalp",
            "Wait 8 hours before washing your hair, then wash it gently. For 48 hours, protect "
            "your scalp from the sun, for example with a hat.",
        ),
        "fr": (
            "Cuir chevelu",
            "Attendez 8 heures avant de vous laver les cheveux, puis lavez-les en douceur. Pendant "
            "48 heures, protégez votre cuir chevelu du soleil, par exemple avec un chapeau.",
        ),
    },
    {
        "key": "area:hands",
        "position": 23,
        "en": ("Hands", "Protect your hands from the sun for 48 hours; gloves help."),
        "fr": ("Mains", "Protégez vos mains du soleil pendant 48 heures ; des gants peuvent aider."),
    },
    {
        "key": "area:body",
        "position": 24,
        "en": (
            "Treated body areas",
            "Wear loose, comfortable clothing over the treated areas for the first days. They may "
            "feel tender or swollen and bruise easily; this usually settles within a few days.",
        ),
        "fr": (
            "Zones du corps traitées",
            "Portez des vêtements amples et confortables sur les zones traitées les premiers jours. "
            "Elles peuvent être sensibles, gonflées ou marquer facilement ; cela passe en général "
            "en quelques jours.",
        ),
    },
    {
        "key": "concern:fat_reduction",
        "position": 50,
        "en": (
            "Fat reduction",
            "Results build up gradually in the weeks after each session, not straight away. Your "
            "practitioner reviews them after the last session of the course.",
        ),
        "fr": (
            "Réduction des graisses",
            "Les résultats apparaissent progressivement dans les semaines qui suivent chaque "
            "séance, pas immédiatement. Votre praticien les évalue après la dernière séance.",
        ),
    },
    {
        "key": "concern:cellulite",
        "position": 51,
        "en": (
            "Cellulite",
            "A cellulite course has many sessions close together: keeping to the schedule matters for the result.",
        ),
        "fr": (
            "Cellulite",
            "Un traitement de la cellulite comporte de nombreuses séances rapprochées : respecter "
            "le calendrier compte pour le résultat.",
        ),
    },
    {
        "key": "concern:skin_rejuvenation",
        "position": 52,
        "en": (
            "Skin rejuvenation",
            "Redness at the injection points is common and fades within a few days. Protect the "
            "treated skin from the sun.",
        ),
        "fr": (
            "Rajeunissement de la peau",
            "Des rougeurs aux points d'injection sont fréquentes et s'estompent en quelques jours. "
            "Protégez la peau traitée du soleil.",
        ),
    },
    {
        "key": "concern:hair_restoration",
        "position": 53,
        "en": (
            "Hair",
            "Hair grows slowly: results are judged over several months, so keep to your session schedule.",
        ),
        "fr": (
            "Cheveux",
            "Les cheveux poussent lentement : les résultats s'apprécient sur plusieurs mois, d'où "
            "l'importance de respecter le calendrier des séances.",
        ),
    },
    {
        "key": "concern:pain_management",
        "position": 54,
        "en": (
            "Pain treatment",
            "The injection points may be sore for a day or two. Rest the treated area for 48 hours.",
        ),
        "fr": (
            "Traitement de la douleur",
            "Les points d'injection peuvent être sensibles pendant un jour ou deux. Ménagez la zone "
            "traitée pendant 48 heures.",
        ),
    },
    {
        "key": WARNING_SIGNS,
        "position": 90,
        "en": (
            "When to call us at once",
            "Call the clinic straight away if you notice a lump, heat, fever or pain that gets "
            "worse at a treated area, even several weeks after the session. If you cannot reach "
            "us, see a doctor.",
        ),
        "fr": (
            "Quand nous appeler sans attendre",
            "Appelez la clinique sans attendre si vous remarquez une grosseur, une sensation de "
            "chaleur, de la fièvre ou une douleur qui augmente sur une zone traitée, même plusieurs "
            "semaines après la séance. Si vous ne pouvez pas nous joindre, consultez un médecin.",
        ),
    },
]

SEED_LANGUAGES = ("en", "fr")


def aftercare_seed_text(key: str, language: str) -> tuple[str, str] | None:
    """The built-in (title, body) for a key, for when the table holds no row for it."""
    for entry in AFTERCARE_SEED:
        if entry["key"] == key:
            return entry.get(language) or entry["en"]
    return None


def aftercare_templates_seed(apps: Any = None) -> int:
    """Create the missing rows (never touching a manager's edits). Returns how many were made."""
    if apps is None:
        from aftercare.models import AftercareTemplate
    else:
        AftercareTemplate = apps.get_model("aftercare", "AftercareTemplate")
    created = 0
    for entry in AFTERCARE_SEED:
        for language in SEED_LANGUAGES:
            title, body = entry[language]
            _row, made = AftercareTemplate.objects.get_or_create(
                key=entry["key"],
                language=language,
                defaults={"title": title, "body": body, "position": entry["position"], "is_active": True},
            )
            created += made
    return created
