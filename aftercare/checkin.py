"""The check-in after a session: what the patient answers becomes a graded side effect.

48 hours after a session the patient gets "How are you?" with a single-use link to a
short form. The answers are stored as they were given (append-only); anything but "no
symptom" becomes a side-effect report waiting for triage, graded from the patient's
words; anything beyond mild also alerts the practitioner, without clinical details in
the email (they open the follow-ups list).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import IO, TYPE_CHECKING, Any

import pghistory
from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.files.storage import storages
from django.db import transaction
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import formats, timezone, translation
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from aftercare.links import LinkRefused, patient_link_spend
from aftercare.models import CheckInResponse, OutboundMessage, PatientLink
from aftercare.services import message_queue
from mesoclinic.access import Role
from mesoclinic.models import User
from patients.selectors import consent_current
from treatments.models import AdverseEvent, AdverseEventType, TreatmentSession
from treatments.services.adverse import ALERT_GRADE, adverse_event_report_by_patient

if TYPE_CHECKING:
    from patients.models import ClinicalPhoto, Patient

# The symptoms asked about, in the order the form shows them, with the side-effect type
# each one is reported as. Fever is a yes/no question: after an injection it means a
# possible infection until a clinician says otherwise.
SYMPTOMS: dict[str, tuple[Any, str]] = {
    "bruising": (gettext_lazy("Bruising"), AdverseEventType.BRUISING),
    "swelling": (gettext_lazy("Swelling"), AdverseEventType.SWELLING),
    "redness": (gettext_lazy("Redness"), AdverseEventType.REDNESS),
    "pain": (gettext_lazy("Pain"), AdverseEventType.PAIN),
    "lumps": (gettext_lazy("Lumps under the skin"), AdverseEventType.NODULES),
}
FEVER_TYPE = AdverseEventType.INFECTION
LEVELS = {"none": 0, "mild": 1, "moderate": 2, "severe": 3}
LEVEL_WORDS = {1: "mild", 2: "moderate", 3: "severe"}
# Fever and lumps are never "mild" for triage: both may mean an infection or a nodule
# that needs a clinician's look.
AT_LEAST_MODERATE = 2
# When two symptoms are equally bad, the report's type is the one that matters most.
TYPE_PRIORITY = ["fever", "lumps", "swelling", "redness", "pain", "bruising"]
ALERT_SEVERITY = 2  # "beyond mild"
COMMENT_MAX = 1000
PHOTO_VIEW = "patient check-in"


@dataclass(frozen=True)
class Triage:
    severity: int
    main: str | None  # the answer key of the worst symptom (None when nothing to report)
    scores: dict[str, int]


def checkin_answers_clean(raw: dict[str, Any]) -> dict[str, Any]:
    """The answers as stored: every symptom a known level ("none" when not answered),
    fever a boolean, the comment stripped and bounded."""
    answers: dict[str, Any] = {}
    for key in SYMPTOMS:
        value = (raw.get(key) or "none").strip().lower()
        if value not in LEVELS:
            raise ValidationError({key: _("Choose one of the answers.")})
        answers[key] = value
    answers["fever"] = bool(raw.get("fever"))
    comment = (raw.get("comment") or "").strip()
    if len(comment) > COMMENT_MAX:
        raise ValidationError({"comment": _("Keep this under %(max)s characters.") % {"max": COMMENT_MAX}})
    answers["comment"] = comment
    return answers


def checkin_triage(answers: dict[str, Any]) -> Triage:
    """Severity = the worst answer (0 none, 1 mild, 2 moderate, 3 severe)."""
    scores = {key: LEVELS[answers.get(key, "none")] for key in SYMPTOMS}
    if scores["lumps"]:
        scores["lumps"] = max(scores["lumps"], AT_LEAST_MODERATE)
    scores["fever"] = AT_LEAST_MODERATE if answers.get("fever") else 0
    severity = max(scores.values())
    if severity == 0:
        return Triage(severity=0, main=None, scores=scores)
    main = next(key for key in TYPE_PRIORITY if scores[key] == severity)
    return Triage(severity=severity, main=main, scores=scores)


def checkin_photo_allowed(patient: Patient) -> bool:
    """A photo is only taken with the patient's current consent to clinical photographs."""
    return consent_current(patient, "photography") is not None


def _type_of(key: str) -> str:
    return FEVER_TYPE if key == "fever" else SYMPTOMS[key][1]


def _description(session: TreatmentSession, answers: dict[str, Any]) -> str:
    # Staff read this: in the clinic's language, every answer, not just the worst.
    with translation.override(settings.LANGUAGE_CODE):
        day = formats.date_format(timezone.localtime(session.performed_at), "SHORT_DATE_FORMAT")
        levels = {
            "none": _("none"),
            "mild": _("mild"),
            "moderate": _("moderate"),
            "severe": _("severe"),
        }
        lines = [
            _("Reported by the patient at the check-in after session %(number)s of %(day)s:")
            % {"number": session.number, "day": day}
        ]
        lines += [f"- {label}: {levels[answers[key]]}" for key, (label, _type) in SYMPTOMS.items()]
        lines.append(f"- {_('Fever')}: {_('yes') if answers['fever'] else _('no')}")
        if answers["comment"]:
            lines.append(_("Patient's words: %(comment)s") % {"comment": answers["comment"]})
    return "\n".join(str(line) for line in lines)


def _alert_recipients(session: TreatmentSession) -> list[User]:
    """The session's practitioner; if they can no longer be reached, the managers, so
    that a report never waits in nobody's inbox."""
    practitioner = session.practitioner
    if practitioner.is_active and practitioner.email:
        return [practitioner]
    managers = User.objects.filter(groups__name=Role.MANAGER.value, is_active=True).exclude(email="")
    return list(managers.distinct().order_by("pk"))


def checkin_alert_queue(*, response: CheckInResponse) -> list[OutboundMessage]:
    """Tell the practitioner a patient reported symptoms (no clinical details in the email)."""
    link = f"{settings.SITE_URL}{reverse('followups_due')}"
    messages = []
    for user in _alert_recipients(response.session):
        context = {"user": user, "link": link, "clinic_name": settings.CLINIC_NAME}
        # Staff have no language of their own: the clinic's language.
        with translation.override(settings.LANGUAGE_CODE):
            subject = render_to_string("aftercare/email/checkin_alert_subject.txt", context)
            body_text = render_to_string("aftercare/email/checkin_alert.txt", context)
            body_html = render_to_string("aftercare/email/checkin_alert.html", context)
        messages.append(
            message_queue(
                kind="checkin_alert",
                to_email=user.email,
                subject=" ".join(subject.split())[:300],
                body_text=body_text,
                body_html=body_html,
                dedupe_key=f"checkin-alert:{response.pk}:{user.pk}",
                language=settings.LANGUAGE_CODE,
                session=response.session,
                adverse_event=response.adverse_event,
            )
        )
    return messages


def _photo_store(*, link: PatientLink, session: TreatmentSession, photo_file: IO[bytes]) -> ClinicalPhoto:
    from patients.services.photos import photo_upload

    if not checkin_photo_allowed(link.patient):
        raise ValidationError({"photo": [_("Photos are only accepted when you agreed to clinical photographs.")]})
    try:
        # The patient has no account: the photo is marked as sent by them (no staff
        # uploader), and the change history records the link it came by.
        with pghistory.context(uploaded_via="patient_link", patient_link_id=link.pk):
            return photo_upload(
                patient=link.patient,
                uploaded_file=photo_file,
                uploaded_by=None,
                session=session,
                view=PHOTO_VIEW,
            )
    except ValidationError as error:
        messages = error.message_dict.get("uploaded_file") if hasattr(error, "error_dict") else error.messages
        raise ValidationError({"photo": messages or error.messages}) from error


def checkin_submit(
    *,
    link: PatientLink,
    answers: dict[str, Any],
    photo_file: IO[bytes] | None = None,
    ip: str | None = None,
) -> CheckInResponse:
    """Store a patient's check-in answers and report what they describe.

    In one transaction: the link is spent (a replay or a double click is refused with
    :class:`LinkRefused`), the answers are stored, and any symptom becomes a side effect
    linked to the session, graded from the patient's words and waiting for triage.
    Beyond mild, the practitioner is alerted (a severe report already alerts them and
    the managers through the side-effect alert). Raises ``ValidationError`` for bad
    answers or a refused photo, with nothing saved.
    """
    if link.purpose != PatientLink.Purpose.CHECKIN or link.session_id is None:
        raise LinkRefused("unknown")
    clean = checkin_answers_clean(answers)
    triage = checkin_triage(clean)
    stored_file: str | None = None
    try:
        with transaction.atomic():
            patient_link_spend(link)
            session = TreatmentSession.objects.select_related("practitioner", "patient").get(pk=link.session_id)
            if session.patient_id != link.patient_id:
                raise LinkRefused("unknown")
            photo = None
            if photo_file is not None:
                photo = _photo_store(link=link, session=session, photo_file=photo_file)
                stored_file = photo.file_name
            event: AdverseEvent | None = None
            if triage.severity and triage.main is not None:
                event = adverse_event_report_by_patient(
                    patient=session.patient,
                    type=_type_of(triage.main),
                    severity_word=LEVEL_WORDS[triage.severity],
                    onset_at=timezone.now(),
                    description=_description(session, clean),
                    session=session,
                )
            response = CheckInResponse.objects.create(
                link=link,
                patient_id=link.patient_id,
                session=session,
                answers=clean,
                severity=triage.severity,
                adverse_event=event,
                photo=photo,
                ip=ip,
            )
            # Grade 3 or more has just alerted the practitioner and managers (side-effect alert).
            if event is not None and ALERT_SEVERITY <= event.grade < ALERT_GRADE:
                checkin_alert_queue(response=response)
    except BaseException:
        if stored_file:
            # The row that named the file was rolled back: the file must not stay.
            storages["private"].delete(stored_file)
        raise
    link.used_at = link.used_at or timezone.now()
    return response
