"""Hostile input for the security tests: the strings an attacker, a broken client or a
copy-paste from a word processor sends, and hypothesis strategies built on them.

Every value is something an HTTP form can carry (a string, several strings for one name,
or no value at all), because that is all a view ever receives.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from hypothesis import strategies as st

# A field left out of the POST entirely (not an empty string).
MISSING = object()

LONG = "A" * 10_001
HUGE_INT = str(10**30)

HOSTILE_STRINGS: list[str] = [
    # Empty and blank.
    "",
    " ",
    "\u00a0\u2003",
    # NUL and control characters: PostgreSQL refuses NUL in text; the rest break logs and CSV.
    "\x00",
    "a\x00b",
    "\x01\x02\x1b[31m\x7f",
    "\r\n\r\nX-Injected: 1",
    "line\rfeed\u2028\u2029",
    # Markup and script.
    "<script>window.__xss=1</script>",
    '"><img src=x onerror="window.__xss=1">',
    "' onmouseover='window.__xss=1",
    "javascript:window.__xss=1",
    "<svg/onload=window.__xss=1>",
    "{{ 7|add:7 }}{% debug %}",
    "%s %(x)s {0} ${7*7}",
    # SQL fragments.
    "' OR '1'='1' --",
    "1; DROP TABLE patients_patient; --",
    '") UNION SELECT password FROM mesoclinic_user --',
    "%",
    "_",
    "\\",
    # Paths and URLs.
    "../../../../etc/passwd",
    "//evil.example/",
    "https://evil.example/",
    # Numbers: huge, negative, odd notations, and words where numbers belong.
    HUGE_INT,
    "-" + HUGE_INT,
    "9223372036854775808",
    "-1",
    "0",
    "1.5",
    "1e309",
    "NaN",
    "-Infinity",
    "0x1F",
    "١٢٣",
    "１２",
    # str.isdigit() is true for these, int() refuses them.
    "²",
    "①",
    "true",
    "null",
    "[]",
    '{"a": 1}',
    # Dates and times out of range or impossible.
    "0001-01-01",
    "9999-12-31",
    "2026-02-30",
    "31/12/9999",
    "9999-12-31T23:59",
    "0001-01-01T00:00",
    "24:00",
    "-01:00",
    # Unicode: right-to-left override, zero-width, combining marks, emoji, astral planes.
    "\u202egnp.exe",
    "\u200f\u200b\ufeff",
    "e" + "\u0301" * 50,
    "💉🧪👩‍⚕️",
    "𝕄𝕖𝕤𝕠",
    "Zoë Lefèvre-Dubois",
    "ﷺ" * 20,
    # Very long.
    LONG,
    "é" * 5_000,
]

# Strings whose presence in a response would mean stored markup got out unescaped.
XSS_PAYLOADS: list[str] = [
    '<img src=x onerror="window.__xss=1">',
    "<script>window.__xss=1</script>",
    '"><svg onload="window.__xss=1">',
    "' onmouseover='window.__xss=1' x='",
    "javascript:window.__xss=1",
]


def hostile_text() -> st.SearchStrategy[str]:
    """Mostly the hand-picked list, sometimes arbitrary unicode (surrogates excluded: they
    cannot be encoded into a request at all)."""
    return st.one_of(
        st.sampled_from(HOSTILE_STRINGS),
        st.sampled_from(HOSTILE_STRINGS),
        st.text(max_size=40),
        st.integers(min_value=-(10**40), max_value=10**40).map(str),
    )


def hostile_value() -> st.SearchStrategy[Any]:
    """A value for one form field: a hostile string, several values for one name, or none."""
    return st.one_of(
        hostile_text(),
        hostile_text(),
        hostile_text(),
        st.lists(st.sampled_from(HOSTILE_STRINGS), min_size=2, max_size=3),
        st.just(MISSING),
    )


def mutated(baseline: dict[str, Any], value: Any, field: str) -> dict[str, Any]:
    """The baseline with one field replaced (or removed)."""
    data = dict(baseline)
    if value is MISSING:
        data.pop(field, None)
    else:
        data[field] = value
    return data


def query_strings(names: list[str]) -> st.SearchStrategy[dict[str, Any]]:
    """One to three of a page's query parameters, each with a hostile value."""
    return st.dictionaries(st.sampled_from(names), hostile_text(), min_size=1, max_size=3)


# --- a clinic whose every stored text is a payload (stored XSS) --------------------------------


def xss_payload(tag: str, max_length: int | None) -> str:
    """A markup payload naming the field it was stored in, as long as the column allows:
    an image whose error handler runs, a script, an attribute break-out, a quote break-out."""
    family = sum(map(ord, tag)) % 4
    candidates = [
        f'<img src=x onerror="window.__xss=1" alt="{tag}">',
        f"<script>window.__xss=1//{tag}</script>",
        f'"><svg onload="window.__xss=1" id="{tag}">',
        f"' onmouseover='window.__xss=1' id='{tag}",
    ]
    ordered = candidates[family:] + candidates[:family]
    fitting = [c for c in ordered if max_length is None or len(c) <= max_length]
    return fitting[0] if fitting else "<svg/onload=alert()>"[: max_length or None]


@dataclass
class TaintedClinic:
    """Objects of a clinic whose free texts are payloads; ``payloads`` maps model.field → payload."""

    payloads: dict[str, str]
    location: Any
    patient: Any
    practitioner: Any
    manager: Any
    plan: Any
    session: Any
    event: Any
    appointment: Any
    lot: Any
    links: dict[str, str] = field(default_factory=dict)


def _payload(payloads: dict[str, str], model: Any, name: str) -> str:
    tag = f"{model.__name__}.{name}"
    payloads[tag] = xss_payload(tag, model._meta.get_field(name).max_length)
    return payloads[tag]


def _taint(payloads: dict[str, str], obj: Any, *names: str) -> None:
    """Store a payload in each named field with a plain UPDATE: forms would refuse markup in
    some of them, but output must be safe whatever way a text got in (import, admin, API)."""
    model = type(obj)
    values = {}
    for name in names:
        tag = f"{model.__name__}.{name}"
        values[name] = payloads[tag] = xss_payload(tag, model._meta.get_field(name).max_length)
        setattr(obj, name, values[name])
    model.objects.filter(pk=obj.pk).update(**values)


def tainted_clinic(*, manager: Any, practitioner: Any, front_desk: Any) -> TaintedClinic:
    """Build a small clinic through the services, then put payloads in every free text a
    page, an email or the PDF shows. Needs the private storage (signatures, photos)."""
    import base64
    import io
    from datetime import datetime, time, timedelta
    from decimal import Decimal
    from zoneinfo import ZoneInfo

    from django.utils import timezone
    from PIL import Image

    from aftercare.checkin import checkin_submit
    from aftercare.links import patient_link_create, patient_link_resolve
    from aftercare.models import AftercareTemplate, PatientLink
    from patients.models import Consent, ConsentText, ContraindicationRule, HistoryMedication, MedicalHistory
    from patients.services.consent import consent_record, consent_text_publish
    from patients.services.consultation import consultation_create
    from patients.services.history import history_record
    from patients.services.photos import photo_upload
    from tests.factories import LocationFactory, PatientFactory, RoomFactory
    from treatments.models import (
        AdverseEvent,
        AdverseEventNote,
        Appointment,
        Ingredient,
        Lot,
        PlanAcknowledgement,
        PlanArea,
        PlanProduct,
        Product,
        ProductComponent,
        ScheduleException,
        TreatmentPlan,
    )
    from treatments.services.adverse import adverse_event_follow_up, adverse_event_record
    from treatments.services.booking import appointment_book
    from treatments.services.catalogue import lot_recall
    from treatments.services.plans import consent_kind_for
    from treatments.services.recall import recall_notify
    from treatments.services.safety import plan_safety_check
    from treatments.services.schedule import opening_hours_replace, working_hours_replace
    from treatments.services.sessions import LotInput, SessionAreaInput, session_record

    def png() -> str:
        image = Image.new("RGBA", (200, 60), (255, 255, 255, 0))
        for x in range(20, 180):
            image.putpixel((x, 30 + (x % 7)), (0, 0, 0, 255))
        buffer = io.BytesIO()
        image.save(buffer, format="PNG")
        return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()

    def jpeg() -> io.BytesIO:
        buffer = io.BytesIO()
        Image.effect_noise((48, 32), 50).convert("RGB").save(buffer, "JPEG")
        buffer.seek(0)
        return buffer

    p: dict[str, str] = {}
    location = LocationFactory()
    _taint(p, location, "name", "address", "phone")
    _taint(p, location.clinic, "name", "phone")
    room = RoomFactory(location=location)
    _taint(p, room, "name")
    week = [(day, time(6), time(22)) for day in range(7)]
    opening_hours_replace(location=location, rows=week)
    for user in (practitioner, manager, front_desk):
        user.default_location = location
        user.save(update_fields=["default_location"])
    working_hours_replace(practitioner=practitioner, location=location, rows=week)
    _taint(p, practitioner, "full_name")

    patient = PatientFactory(preferred_language="en", created_by=manager, email="xss.patient@example.test")
    _taint(p, patient, "first_name", "last_name", "address_line", "postal_code", "city", "emergency_contact_name")
    # History versions are append-only (a database trigger): the payloads go in through the service.
    history_record(
        patient=patient,
        recorded_by=practitioner,
        conditions=["herpes"],
        weight_kg=Decimal("62"),
        conditions_detail=_payload(p, MedicalHistory, "conditions_detail"),
        previous_treatments=_payload(p, MedicalHistory, "previous_treatments"),
        allergies_other=_payload(p, MedicalHistory, "allergies_other"),
        medications=[
            {
                "name": _payload(p, HistoryMedication, "name"),
                "flags": [],
                "note": _payload(p, HistoryMedication, "note"),
            }
        ],
    )
    _taint(p, ContraindicationRule.objects.get(trigger="condition", condition="herpes"), "reason_en", "reason_fr")
    consultation = consultation_create(
        patient=patient,
        practitioner=practitioner,
        held_at=timezone.now() - timedelta(days=60),
        concerns=["fat_reduction"],
        areas=["abdomen"],
        location=location,
    )
    _taint(p, consultation, "findings", "recommendation")

    ingredient = Ingredient.objects.create(name="tmp", category="other")
    _taint(p, ingredient, "name", "notes")
    product = Product.objects.create(manufacturer="tmp", name="tmp", unit_volume_ml=Decimal("5"))
    _taint(p, product, "manufacturer", "name", "notes")
    ProductComponent.objects.create(product=product, ingredient=ingredient, mg_per_ml=Decimal("10"))
    lot = Lot.objects.create(
        product=product, lot_number="tmp", expiry_date=timezone.localdate() + timedelta(days=300), quantity_on_hand=20
    )
    _taint(p, lot, "lot_number", "supplier")

    plan = TreatmentPlan.objects.create(
        patient=patient,
        practitioner=practitioner,
        consultation=consultation,
        concern="fat_reduction",
        sessions_planned=4,
        min_interval_days=21,
    )
    TreatmentPlan.objects.filter(pk=plan.pk).update(root=plan)
    _taint(p, plan, "goal")
    area = PlanArea.objects.create(
        plan=plan,
        area="abdomen",
        technique="point_by_point",
        depth_mm=6,
        needle_gauge=30,
        needle_length_mm=13,
        points=20,
        volume_per_point_ml="0.2",
    )
    PlanProduct.objects.create(plan_area=area, product=product, volume_ml=Decimal("4"))
    for finding in plan_safety_check(plan):
        PlanAcknowledgement.objects.create(
            plan=plan,
            trigger=finding.trigger,
            finding=finding.reason,
            reason=_payload(p, PlanAcknowledgement, "reason"),
            acknowledged_by=practitioner,
        )

    # Consent texts and consents are append-only too: published and signed with the payloads.
    kind = consent_kind_for(plan)
    consent_text_publish(
        kind=kind,
        title_en=_payload(p, ConsentText, "title_en"),
        body_en=_payload(p, ConsentText, "body_en"),
        title_fr="t",
        body_fr="b",
        published_by=manager,
    )
    consent_text_publish(kind="photography", title_en="t", body_en="b", title_fr="t", body_fr="b", published_by=manager)
    consent = consent_record(
        patient=patient,
        kind=kind,
        typed_name=_payload(p, Consent, "typed_name"),
        signature_data_url=png(),
        witness=practitioner,
        ip="127.0.0.1",
    )
    consent_record(
        patient=patient, kind="photography", typed_name="x", signature_data_url=png(), witness=practitioner, ip=None
    )
    TreatmentPlan.objects.filter(pk=plan.pk).update(
        status=TreatmentPlan.Status.CONSENTED, consent=consent, consented_at=timezone.now()
    )
    plan.refresh_from_db()

    # The manager's aftercare advice is in the aftercare email of the session below.
    for template in AftercareTemplate.objects.filter(language="en", key="general"):
        _taint(p, template, "title", "body")
    session = session_record(
        plan=plan,
        number=1,
        practitioner=practitioner,
        performed_at=timezone.now() - timedelta(hours=3),
        location=location,
        areas=[
            SessionAreaInput(
                area="abdomen",
                technique="point_by_point",
                points=20,
                depth_mm=Decimal("6"),
                lots=[LotInput(lot=lot, volume_ml=Decimal("2"), units=1)],
            )
        ],
        acknowledgements={f.trigger: "ok" for f in plan_safety_check(plan)},
    )
    _taint(p, session, "notes", "immediate_reactions")
    photo = photo_upload(patient=patient, uploaded_file=jpeg(), uploaded_by=practitioner, area="abdomen", view="x")
    _taint(p, photo, "view")

    event = adverse_event_record(
        patient=patient,
        type="swelling",
        grade=3,
        onset_at=timezone.now() - timedelta(hours=1),
        reported_by=AdverseEvent.Reporter.PRACTITIONER,
        recorded_by=practitioner,
        sessions=[session],
        lots=[lot],
    )
    _taint(p, event, "description", "actions_taken")
    adverse_event_follow_up(event=event, by=practitioner, grade=3, note=_payload(p, AdverseEventNote, "note"))

    starts = datetime.combine(timezone.localdate() + timedelta(days=1), time(10), tzinfo=ZoneInfo(location.time_zone))
    appointment = appointment_book(
        location=location,
        practitioner=practitioner,
        kind=Appointment.Kind.TREATMENT,
        starts_at=starts,
        created_by=front_desk,
        patient=patient,
        room=room,
        plan=plan,
    )
    _taint(p, appointment, "note")
    closure = ScheduleException.objects.create(
        location=location,
        starts_at=starts + timedelta(days=20),
        ends_at=starts + timedelta(days=21),
        reason="tmp",
        created_by=manager,
    )
    _taint(p, closure, "reason")

    # What a patient typed in the check-in form reaches the practitioner's pages and email.
    checkin = patient_link_create(patient=patient, purpose=PatientLink.Purpose.CHECKIN, session=session)
    comment = p["CheckInResponse.comment"] = xss_payload("CheckInResponse.comment", 500)
    checkin_submit(
        link=patient_link_resolve(checkin), answers={"swelling": "moderate", "fever": False, "comment": comment}
    )
    lot_recall(lot=lot, reason="tmp")
    _taint(p, Lot.objects.get(pk=lot.pk), "recall_reason")
    recall_notify(lot=lot, by=manager)

    links = {
        "plan": patient_link_create(patient=patient, purpose=PatientLink.Purpose.PLAN, plan=plan),
        "aftercare": patient_link_create(patient=patient, purpose=PatientLink.Purpose.AFTERCARE, session=session),
        "booking": patient_link_create(patient=patient, purpose=PatientLink.Purpose.BOOKING, appointment=appointment),
        "checkin": patient_link_create(patient=patient, purpose=PatientLink.Purpose.CHECKIN, session=session),
        "preferences": patient_link_create(patient=patient, purpose=PatientLink.Purpose.PREFERENCES),
        "spent": checkin,
    }
    return TaintedClinic(
        payloads=p,
        location=location,
        patient=patient,
        practitioner=practitioner,
        manager=manager,
        plan=plan,
        session=session,
        event=event,
        appointment=appointment,
        lot=lot,
        links=links,
    )
