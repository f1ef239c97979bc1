"""Reference data every clinic starts with: the allergen vocabulary and the
contraindication rules from DOMAIN.md. Loaded by migration ``patients/0003``; a manager
edits the rules afterwards. ``vocabulary_seed`` takes an app registry so that the
migration (historical models) and the test suite (after a flush) share it.
"""

from __future__ import annotations

from typing import Any

ALLERGENS = [
    ("soy", "Soy (phosphatidylcholine)", "Soja (phosphatidylcholine)"),
    ("egg", "Egg", "Œuf"),
    ("lidocaine", "Lidocaine", "Lidocaïne"),
    ("procaine", "Procaine", "Procaïne"),
    ("hyaluronidase", "Hyaluronidase", "Hyaluronidase"),
    ("chlorhexidine", "Chlorhexidine (antiseptic)", "Chlorhexidine (antiseptique)"),
    ("latex", "Latex", "Latex"),
    ("caffeine", "Caffeine", "Caféine"),
]

# (trigger, code, category, severity, reason_en, reason_fr)
RULES = [
    (
        "condition",
        "pregnancy",
        "",
        "block",
        "Pregnancy: no mesotherapy injections.",
        "Grossesse : pas d'injections de mésothérapie.",
    ),
    (
        "condition",
        "breastfeeding",
        "",
        "block",
        "Breastfeeding: no mesotherapy injections.",
        "Allaitement : pas d'injections de mésothérapie.",
    ),
    (
        "condition",
        "active_cancer",
        "",
        "block",
        "Active cancer: treatment contraindicated.",
        "Cancer évolutif : traitement contre-indiqué.",
    ),
    (
        "condition",
        "renal_disease",
        "",
        "block",
        "Renal disease or failure: injected actives are cleared by the kidneys.",
        "Maladie ou insuffisance rénale : les actifs injectés sont éliminés par les reins.",
    ),
    (
        "condition",
        "hepatic_disease",
        "",
        "block",
        "Hepatic disease or failure: injected actives are metabolised by the liver.",
        "Maladie ou insuffisance hépatique : les actifs injectés sont métabolisés par le foie.",
    ),
    (
        "condition",
        "gallstones",
        "lipolytic",
        "block",
        "Gallstones: no lipolytic injections (phosphatidylcholine / deoxycholate).",
        "Calculs biliaires : pas d'injections lipolytiques (phosphatidylcholine / désoxycholate).",
    ),
    (
        "condition",
        "active_skin_infection",
        "",
        "block",
        "Active infection at a treatment site: treat the infection first.",
        "Infection active sur une zone à traiter : traiter l'infection d'abord.",
    ),
    (
        "condition",
        "herpes",
        "",
        "warn",
        "Herpes: never inject over an active lesion; consider antiviral prophylaxis for the face.",
        "Herpès : ne jamais injecter sur une lésion active ; envisager une prophylaxie antivirale pour le visage.",
    ),
    (
        "condition",
        "bleeding_disorder",
        "",
        "warn",
        "Bleeding disorder: high risk of bruising and haematoma.",
        "Trouble de la coagulation : risque élevé d'ecchymoses et d'hématomes.",
    ),
    (
        "condition",
        "diabetes_type1",
        "",
        "warn",
        "Insulin-dependent diabetes: higher infection risk, slower healing.",
        "Diabète insulinodépendant : risque infectieux accru, cicatrisation plus lente.",
    ),
    (
        "condition",
        "autoimmune_disease",
        "",
        "warn",
        "Autoimmune disease: risk of exaggerated inflammatory reaction.",
        "Maladie auto-immune : risque de réaction inflammatoire exagérée.",
    ),
    (
        "condition",
        "keloid_tendency",
        "",
        "warn",
        "Keloid tendency: risk of abnormal scarring at injection points.",
        "Tendance chéloïde : risque de cicatrisation anormale aux points d'injection.",
    ),
    (
        "medication",
        "anticoagulant",
        "",
        "warn",
        "Anticoagulant treatment: bruising risk; record the reason to proceed.",
        "Traitement anticoagulant : risque d'ecchymoses ; noter la raison de poursuivre.",
    ),
    (
        "medication",
        "antiplatelet",
        "",
        "warn",
        "Antiplatelet treatment (incl. aspirin): bruising risk.",
        "Antiagrégant plaquettaire (dont aspirine) : risque d'ecchymoses.",
    ),
    (
        "medication",
        "isotretinoin_6m",
        "",
        "block",
        "Isotretinoin in the last 6 months: wait 6 months after the last dose.",
        "Isotrétinoïne dans les 6 derniers mois : attendre 6 mois après la dernière prise.",
    ),
    (
        "medication",
        "immunosuppressant",
        "",
        "warn",
        "Immunosuppressant treatment: higher infection risk.",
        "Traitement immunosuppresseur : risque infectieux accru.",
    ),
    (
        "allergen",
        "soy",
        "",
        "block",
        "Soy allergy: no phosphatidylcholine (soy-derived).",
        "Allergie au soja : pas de phosphatidylcholine (dérivée du soja).",
    ),
    (
        "allergen",
        "egg",
        "",
        "block",
        "Egg allergy: no egg-derived ingredients.",
        "Allergie à l'œuf : pas d'ingrédients dérivés de l'œuf.",
    ),
    (
        "allergen",
        "lidocaine",
        "",
        "block",
        "Lidocaine allergy: no lidocaine in formulations or anaesthetic creams.",
        "Allergie à la lidocaïne : pas de lidocaïne dans les mélanges ni les crèmes anesthésiantes.",
    ),
    (
        "allergen",
        "procaine",
        "",
        "block",
        "Procaine allergy: no procaine.",
        "Allergie à la procaïne : pas de procaïne.",
    ),
    ("allergen", "hyaluronidase", "", "block", "Hyaluronidase allergy.", "Allergie à la hyaluronidase."),
    ("allergen", "caffeine", "", "block", "Caffeine allergy.", "Allergie à la caféine."),
    (
        "allergen",
        "chlorhexidine",
        "",
        "warn",
        "Chlorhexidine allergy: use another antiseptic.",
        "Allergie à la chlorhexidine : utiliser un autre antiseptique.",
    ),
    ("allergen", "latex", "", "warn", "Latex allergy: latex-free gloves.", "Allergie au latex : gants sans latex."),
]


def vocabulary_seed(apps: Any) -> None:
    Allergen = apps.get_model("patients", "Allergen")
    Rule = apps.get_model("patients", "ContraindicationRule")
    allergens = {}
    for code, en, fr in ALLERGENS:
        allergens[code], _ = Allergen.objects.get_or_create(code=code, defaults={"name_en": en, "name_fr": fr})
    for trigger, code, category, severity, reason_en, reason_fr in RULES:
        fields = {"condition": "", "medication_flag": "", "allergen": None}
        if trigger == "condition":
            fields["condition"] = code
        elif trigger == "medication":
            fields["medication_flag"] = code
        else:
            fields["allergen"] = allergens[code]
        Rule.objects.get_or_create(
            trigger=trigger,
            category=category,
            **fields,
            defaults={"severity": severity, "reason_en": reason_en, "reason_fr": reason_fr},
        )
