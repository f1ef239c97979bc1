"""Demo patients for `make run`: varied, realistic records in every state (idempotent)."""

from __future__ import annotations

import base64
import io
import math
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal

from django.db import transaction
from django.utils import timezone
from PIL import Image, ImageDraw

from mesoclinic.models import Location, User
from patients.models import Allergen, ConsentText, Patient
from patients.services.consent import consent_record, consent_text_publish
from patients.services.consultation import consultation_create
from patients.services.history import history_record
from patients.services.photos import photo_upload
from patients.services.registry import patient_archive, patient_create

CONSENT_TEXTS = {
    "mesotherapy": (
        "Consent to mesotherapy injections",
        "I have been informed of the nature of mesotherapy: micro-injections of a blend of "
        "active ingredients into the middle layer of the skin.\n\nExpected effects, the number "
        "of sessions and the alternatives have been explained to me. I know the common side "
        "effects (bruising, swelling, redness, irritation, usually resolving within days) and "
        "the rare ones (allergic reaction, infection, nodules, uneven result). I will follow "
        "the aftercare advice and report any lump, heat, fever or increasing pain at once.\n\n"
        "I have declared my medical history truthfully and will report any change.",
        "Consentement aux injections de mésothérapie",
        "J'ai été informé(e) de la nature de la mésothérapie : des micro-injections d'un mélange "
        "d'actifs dans la couche moyenne de la peau.\n\nLes effets attendus, le nombre de séances "
        "et les alternatives m'ont été expliqués. Je connais les effets indésirables fréquents "
        "(ecchymoses, gonflement, rougeur, irritation, qui disparaissent en quelques jours) et "
        "rares (réaction allergique, infection, nodules, résultat irrégulier). Je suivrai les "
        "conseils après la séance et signalerai sans délai toute grosseur, chaleur, fièvre ou "
        "douleur croissante.\n\nJ'ai déclaré mes antécédents médicaux avec sincérité et "
        "signalerai tout changement.",
    ),
    "lipolysis": (
        "Consent to injection lipolysis",
        "Injection lipolysis uses phosphatidylcholine and/or deoxycholate to reduce localised "
        "fat. Several sessions at least four weeks apart are usually needed. Swelling, "
        "tenderness and bruising for a few days are expected; nodules and uneven results are "
        "possible. Phosphatidylcholine is derived from soy.",
        "Consentement à la lipolyse par injection",
        "La lipolyse par injection utilise la phosphatidylcholine et/ou le désoxycholate pour "
        "réduire des amas graisseux localisés. Plusieurs séances espacées d'au moins quatre "
        "semaines sont habituellement nécessaires. Gonflement, sensibilité et ecchymoses pendant "
        "quelques jours sont attendus ; nodules et résultat irrégulier sont possibles. La "
        "phosphatidylcholine est dérivée du soja.",
    ),
    "photography": (
        "Consent to clinical photographs",
        "I agree that standardised photographs of the treated areas are taken before and during "
        "my treatment, kept in my medical record, and seen only by the clinic's practitioners. "
        "They will not be published or shared without my separate written agreement.",
        "Consentement aux photographies cliniques",
        "J'accepte que des photographies standardisées des zones traitées soient prises avant et "
        "pendant mon traitement, conservées dans mon dossier médical et vues uniquement par les "
        "praticiens de la clinique. Elles ne seront ni publiées ni partagées sans mon accord écrit "
        "distinct.",
    ),
}


@dataclass
class DemoPatient:
    first_name: str
    last_name: str
    born: date
    sex: str
    email: str
    phone: str
    city: str
    language: str = "fr"
    conditions: list[str] = field(default_factory=list)
    medications: list[dict] = field(default_factory=list)
    allergies: list[str] = field(default_factory=list)
    weight: str | None = None
    history_days_ago: int | None = 0  # None: no history recorded
    consultation: dict | None = None
    consents: list[str] = field(default_factory=list)
    archived: str = ""


PATIENTS = [
    DemoPatient(
        "Hélène",
        "Dubois",
        date(1984, 3, 12),
        "female",
        "helene.dubois@example.fr",
        "+33612345678",
        "Paris",
        weight="64",
        consultation={
            "concerns": ["fat_reduction"],
            "areas": ["abdomen", "flanks"],
            "fitzpatrick": 3,
            "measure": ("abdomen", "88.5", "umbilicus"),
        },
        consents=["mesotherapy", "lipolysis", "photography"],
    ),
    DemoPatient(
        "François",
        "Lefèvre",
        date(1975, 7, 1),
        "male",
        "f.lefevre@example.fr",
        "+33623456789",
        "Lyon",
        medications=[{"name": "Apixaban 5 mg", "flags": ["anticoagulant"], "note": "twice daily"}],
        weight="82",
        consultation={"concerns": ["hair_restoration"], "areas": ["scalp"], "fitzpatrick": 2, "measure": None},
        consents=["mesotherapy"],
    ),
    DemoPatient(
        "Camille",
        "Rousseau",
        date(1991, 11, 23),
        "female",
        "camille.rousseau@example.fr",
        "+33634567890",
        "Paris",
        conditions=["pregnancy"],
        weight="61",
        history_days_ago=3,
    ),
    DemoPatient(
        "Sophie",
        "Martin",
        date(1988, 5, 4),
        "female",
        "sophie.martin@example.com",
        "+33645678901",
        "Paris",
        language="en",
        allergies=["soy"],
        weight="58",
        history_days_ago=75,
        consultation={
            "concerns": ["cellulite"],
            "areas": ["thighs", "buttocks"],
            "fitzpatrick": 2,
            "measure": ("thighs", "56", "mid-thigh"),
        },
        consents=["mesotherapy"],
    ),
    DemoPatient(
        "Inès",
        "Garcia",
        date(1979, 9, 15),
        "female",
        "ines.garcia@example.fr",
        "+33656789012",
        "Lyon",
        conditions=["herpes"],
        weight="67",
        history_days_ago=200,
        consultation={
            "concerns": ["skin_rejuvenation"],
            "areas": ["face", "neck", "decollete"],
            "fitzpatrick": 4,
            "glogau": 2,
            "measure": None,
        },
    ),
    DemoPatient(
        "Marc",
        "Lefebvre",
        date(1969, 2, 28),
        "male",
        "marc.lefebvre@example.fr",
        "+33667890123",
        "Paris",
        conditions=["diabetes_type2"],
        weight="91",
        history_days_ago=None,
    ),
    DemoPatient(
        "Zoé",
        "Moreau",
        date(2000, 6, 9),
        "female",
        "zoe.moreau@example.fr",
        "+33678901234",
        "Paris",
        conditions=["gallstones"],
        weight="55",
        consultation={"concerns": ["fat_reduction"], "areas": ["chin"], "fitzpatrick": 2, "measure": None},
    ),
    DemoPatient(
        "Jean-Pierre",
        "Lambert",
        date(1958, 12, 1),
        "male",
        "jp.lambert@example.fr",
        "+33689012345",
        "Lyon",
        conditions=["autoimmune_disease"],
        medications=[{"name": "Méthotrexate", "flags": ["immunosuppressant"]}],
        weight="77",
        archived="Moved abroad; record kept.",
    ),
]


def _signature_data_url(name: str) -> str:
    """A drawn-looking signature, so that demo consents carry a real PNG."""
    image = Image.new("RGBA", (600, 160), (255, 255, 255, 0))
    draw = ImageDraw.Draw(image)
    seed = sum(map(ord, name))
    points = [(30 + x * 5, 90 + 35 * math.sin((x + seed) / 7) * math.cos(x / 13)) for x in range(0, 100)]
    draw.line(points, fill=(20, 30, 90, 255), width=4, joint="curve")
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


def _demo_photo(view: str) -> io.BytesIO:
    """A neutral placeholder picture (a skin-tone gradient with a landmark line)."""
    image = Image.new("RGB", (800, 600), (224, 182, 160))
    draw = ImageDraw.Draw(image)
    for y in range(600):
        shade = 200 - y // 8
        draw.line([(0, y), (800, y)], fill=(shade + 30, shade - 10, shade - 30))
    draw.line([(400, 80), (400, 520)] if view == "front" else [(250, 80), (250, 520)], fill=(90, 60, 60), width=3)
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=85)
    buffer.seek(0)
    buffer.name = f"{view}.jpg"
    return buffer


@transaction.atomic
def patients_demo_seed(*, practitioners: list[User], manager: User, location: Location | None) -> int:
    """Create the demo patients that do not exist yet; return how many were created."""
    for kind, (title_en, body_en, title_fr, body_fr) in CONSENT_TEXTS.items():
        if not ConsentText.objects.filter(kind=kind).exists():
            consent_text_publish(
                kind=kind, title_en=title_en, body_en=body_en, title_fr=title_fr, body_fr=body_fr, published_by=manager
            )
    allergens = {a.code: a for a in Allergen.objects.all()}
    created = 0
    for index, demo in enumerate(PATIENTS):
        if Patient.objects.filter(email=demo.email).exists():
            continue
        practitioner = practitioners[index % len(practitioners)]
        patient = patient_create(
            created_by=manager,
            first_name=demo.first_name,
            last_name=demo.last_name,
            birth_date=demo.born,
            sex=demo.sex,
            email=demo.email,
            phone=demo.phone,
            city=demo.city,
            country="FR",
            preferred_language=demo.language,
            email_transactional=True,
            marketing_opt_in=index % 3 == 0,
        )
        created += 1
        if demo.history_days_ago is not None:
            history_record(
                patient=patient,
                recorded_by=practitioner,
                conditions=demo.conditions,
                medications=demo.medications,
                allergies=[allergens[c] for c in demo.allergies],
                no_known_allergies=not demo.allergies,
                weight_kg=Decimal(demo.weight) if demo.weight else None,
                smoking="never",
                # Some histories date from earlier visits: their consultation prompts re-confirmation.
                recorded_at=timezone.now() - timedelta(days=demo.history_days_ago),
            )
        consultation = None
        if demo.consultation:
            c = demo.consultation
            measure = c.get("measure")
            consultation = consultation_create(
                patient=patient,
                practitioner=practitioner,
                location=location,
                held_at=timezone.now() - timedelta(days=2 + index),
                concerns=c["concerns"],
                areas=c["areas"],
                fitzpatrick=c.get("fitzpatrick"),
                glogau=c.get("glogau"),
                findings="Good skin quality; expectations discussed."
                if demo.language == "en"
                else "Bonne qualité de peau ; attentes discutées.",
                recommendation="Course of sessions as per protocol.",
                measurements=[
                    {"kind": "circumference", "area": measure[0], "value": Decimal(measure[1]), "landmark": measure[2]}
                ]
                if measure
                else [],
            )
        for kind in demo.consents:
            consent_record(
                patient=patient,
                kind=kind,
                typed_name=f"{demo.first_name} {demo.last_name}",
                signature_data_url=_signature_data_url(demo.last_name + kind),
                witness=practitioner,
                ip="127.0.0.1",
            )
        if "photography" in demo.consents and consultation is not None:
            for view in ("front", "left profile"):
                photo_upload(
                    patient=patient,
                    uploaded_file=_demo_photo(view),
                    uploaded_by=practitioner,
                    area=consultation.areas[0],
                    view=view,
                    consultation=consultation,
                )
        if demo.archived:
            patient_archive(patient=patient, reason=demo.archived)
    return created
