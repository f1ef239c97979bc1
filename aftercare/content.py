"""What patient messages say: aftercare built from the session, preparation advice, branding.

The aftercare advice lives in manager-editable rows (``AftercareTemplate``), one per area
or treatment kind and language; the email takes the general advice first, then what the
treated areas and the plan's concern add, then the warning signs. Nothing here reads a
dose, a product or a lot: the email carries what the patient must do, not the record.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone, translation
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from aftercare.models import AftercareTemplate, OutboundMessage
from aftercare.seed import AFTERCARE_SEED, AREA_KEYS, CONCERN_KEYS, GENERAL, WARNING_SIGNS, aftercare_seed_text
from mesoclinic.models import Clinic

if TYPE_CHECKING:
    from django.utils.functional import Promise

    from mesoclinic.models import Location
    from treatments.models import Appointment, TreatmentSession

# Messages whose body speaks of a treatment: the front desk sees that they were sent, not
# what they say.
CLINICAL_KINDS = frozenset(
    {"aftercare", "checkin", "adverse_followup", "lot_recall", "course_complete", "maintenance_recall", "plan_link"}
)

KIND_LABELS: dict[str, Promise] = {
    "appointment_booked": _("Booking confirmation"),
    "appointment_moved": _("Booking change"),
    "appointment_cancelled": _("Booking cancellation"),
    "appointment_reminder": _("Appointment reminder"),
    "aftercare": _("Aftercare instructions"),
    "checkin": _("Check-in after a session"),
    "course_complete": _("Course completed"),
    "maintenance_recall": _("Maintenance recall"),
    "adverse_followup": _("Side-effect follow-up"),
    "lot_recall": _("Lot recall"),
    "plan_link": _("Treatment plan link"),
}

# Personal links in a message as sent (the patient's /p/ links, a colleague's "set your
# password" link): staff read a body to know what was said, never to act as its recipient
# (the audit would then name the link, not them).
_PERSONAL_LINK = re.compile(r"(/p/|/accounts/password/reset/key/)[^\s\"'<>]+")


def message_body_for_staff(text: str) -> str:
    """A message's text as staff may read it: its personal links cut after their path."""
    return _PERSONAL_LINK.sub(r"\1…", text)


TEMPLATE_LABELS: dict[str, Promise] = {
    GENERAL: _("Every session (general advice)"),
    "area:face": _("Face and chin"),
    "area:neck_decollete": _("Neck and décolleté"),
    "area:scalp": _("Scalp"),
    "area:hands": _("Hands"),
    "area:body": _("Body areas (abdomen, flanks, thighs, buttocks, arms, back, joints)"),
    "concern:fat_reduction": _("Fat reduction (lipolysis)"),
    "concern:cellulite": _("Cellulite"),
    "concern:skin_rejuvenation": _("Skin rejuvenation (skin boosters)"),
    "concern:hair_restoration": _("Hair restoration"),
    "concern:pain_management": _("Pain management"),
    WARNING_SIGNS: _("Warning signs (always last, followed by the clinic's phone)"),
}
TEMPLATE_KEYS: tuple[str, ...] = tuple(entry["key"] for entry in AFTERCARE_SEED)
FACE_AREA_CODES = frozenset({"face", "chin", "neck", "decollete"})


def kind_label(kind: str) -> str:
    return str(KIND_LABELS.get(kind, kind))


def message_language(preferred: str) -> str:
    """The patient's language if the app speaks it, else the clinic's default."""
    known = {code for code, _name in settings.LANGUAGES}
    return preferred if preferred in known else settings.LANGUAGE_CODE


def clinic_branding(location: Location | None = None) -> dict[str, str]:
    """Clinic name and the phone a patient should call (the location's first)."""
    clinic = location.clinic if location is not None else Clinic.objects.order_by("pk").first()
    name = clinic.name if clinic is not None else settings.CLINIC_NAME
    phone = (location.phone if location is not None else "") or (clinic.phone if clinic is not None else "")
    return {"clinic_name": name, "phone": phone}


def aftercare_keys(*, areas: list[str], concern: str) -> list[str]:
    """General first, then each treated area's template, the concern's, warning signs last."""
    keys = [GENERAL]
    for area in areas:
        key = AREA_KEYS.get(area)
        if key is not None and key not in keys:
            keys.append(key)
    concern_key = CONCERN_KEYS.get(concern)
    if concern_key is not None:
        keys.append(concern_key)
    keys.append(WARNING_SIGNS)
    return keys


def aftercare_sections(*, session: TreatmentSession, language: str) -> list[tuple[str, str]]:
    """The (title, advice) sections of a session's aftercare email, in ``language``.

    A missing translation falls back to English; a row a manager turned off is left out;
    a key with no row at all (an empty table after a flush) uses the built-in advice.
    """
    areas = list(session.areas.order_by("id").values_list("area", flat=True))
    keys = aftercare_keys(areas=areas, concern=session.plan.concern)
    rows = {
        (row.key, row.language): row
        for row in AftercareTemplate.objects.filter(key__in=keys, language__in={language, "en"})
    }
    sections: list[tuple[str, str]] = []
    for key in keys:
        row = rows.get((key, language)) or rows.get((key, "en"))
        if row is not None:
            if row.is_active:
                sections.append((row.title.strip(), row.body.strip()))
            continue
        builtin = aftercare_seed_text(key, language)
        if builtin is not None:
            sections.append(builtin)
    return sections


def reminder_preparation(appointment: Appointment, language: str) -> list[str]:
    """What to do before the appointment, in plain words (DOMAIN.md: contraindications are
    checked again at every session, the area is cleaned, aftercare limits the next 48 h)."""
    from treatments.models import Appointment, PlanArea

    with translation.override(language):
        if appointment.kind == Appointment.Kind.CONSULTATION:
            return [
                gettext("Bring the list of the medicines you take, and any recent test results or prescriptions."),
                gettext("Tell us if you are pregnant or breastfeeding, or have any allergy."),
            ]
        if appointment.kind != Appointment.Kind.TREATMENT:
            return []
        advice = [
            gettext(
                "Tell us before the session if anything has changed since your last visit: a new medicine "
                "(especially one that thins the blood), a pregnancy, breastfeeding, an infection or a cold "
                "sore near the area to be treated."
            )
        ]
        if (
            appointment.plan_id is not None
            and PlanArea.objects.filter(plan_id=appointment.plan_id, area__in=FACE_AREA_CODES).exists()
        ):
            advice.append(gettext("Please come without make-up on the area to be treated."))
        advice.append(
            gettext(
                "For 48 hours after the session you should avoid saunas, hot baths, intense exercise and "
                "the sun: plan your days accordingly."
            )
        )
        return advice


@transaction.atomic
def aftercare_template_save(
    *,
    key: str,
    language: str,
    title: str,
    body: str,
    is_active: bool,
    template: AftercareTemplate | None = None,
) -> AftercareTemplate:
    """Create or change one aftercare template row (history kept by the audit triggers)."""
    if key not in TEMPLATE_KEYS:
        raise ValidationError(gettext("Unknown aftercare template."))
    if language not in {code for code, _name in settings.LANGUAGES}:
        raise ValidationError({"language": gettext("Choose a language the clinic writes in.")})
    title, body = title.strip(), body.strip()
    errors = {}
    if not title:
        errors["title"] = gettext("Give the section a title.")
    if not body:
        errors["body"] = gettext("Write the advice; to stop using it, untick Active instead.")
    if errors:
        raise ValidationError(errors)
    if template is None:
        template = AftercareTemplate.objects.filter(key=key, language=language).first() or AftercareTemplate(
            key=key, language=language, position=_position(key)
        )
    template.title = title
    template.body = body
    template.is_active = is_active
    template.updated_at = timezone.now()
    template.full_clean()
    template.save()
    return template


def _position(key: str) -> int:
    return next((entry["position"] for entry in AFTERCARE_SEED if entry["key"] == key), 100)


def patient_messages_recent(patient_id: int, *, clinical: bool, limit: int = 20) -> list[OutboundMessage]:
    """The patient's latest messages for the communications log, in one query.

    ``body_visible`` says whether this reader may see what a message said: the front desk
    sees that an aftercare email went out, not its content."""
    rows = list(
        OutboundMessage.objects.filter(patient_id=patient_id)
        .only("pk", "kind", "status", "subject", "body_text", "created_at", "due_at", "sent_at", "last_error")
        .order_by("-created_at", "-pk")[:limit]
    )
    for row in rows:
        row.kind_label = kind_label(row.kind)  # type: ignore[attr-defined]
        row.body_visible = clinical or row.kind not in CLINICAL_KINDS  # type: ignore[attr-defined]
        row.body_shown = message_body_for_staff(row.body_text)  # type: ignore[attr-defined]
    return rows
