"""The security suite's world: two patients, A and B, each with every kind of record the
app keeps, four staff members' clients and a patient-link holder of B; planted markers;
and a cheap fingerprint of the whole database.

Patient A is the one who must be protected: staff URLs are built with A's ids, and A's
names and notes carry markers that the tests look for in every response. Patient B is
the link holder: a client with B's `/p/…` links tries every URL.
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import pytest
from django.core.cache import caches
from django.core.files.base import ContentFile
from django.core.files.storage import storages
from django.db import connection
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from PIL import Image

from aftercare.links import patient_link_create
from aftercare.models import AftercareTemplate, OutboundMessage, PatientLink
from mesoclinic.access import Role
from mesoclinic.models import Location, Room, SystemJob, User
from patients.models import (
    ClinicalPhoto,
    Consent,
    ConsentText,
    Consultation,
    ContraindicationRule,
    MedicalHistory,
    Patient,
)
from patients.services.history import history_record
from tests.factories import LocationFactory, PatientFactory, RoomFactory, UserFactory
from treatments.catalogue_seed import catalogue_seed
from treatments.models import (
    AdverseEvent,
    AdverseEventNote,
    Appointment,
    DoseLimit,
    Ingredient,
    Lot,
    LotUse,
    PlanAcknowledgement,
    PlanArea,
    PlanDocument,
    PlanProduct,
    Product,
    ScheduleException,
    SessionArea,
    TreatmentPlan,
    TreatmentSession,
)
from treatments.services.calendar_files import calendar_feed_create

if TYPE_CHECKING:
    from django.http import HttpResponseBase

# --- Markers -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Markers:
    """Strings planted in one patient's record, plain letters so that HTML escaping, JSON
    and iCal folding leave them whole. Compared case-insensitively (some templates shout
    last names)."""

    first: str  # first name: demographics
    last: str  # last name: demographics
    mail: str  # email local part: demographics
    team_note: str  # the appointment's "note for the team": front desk may read it
    clinical: str  # plan goal, consultation recommendation, clinical message bodies, files
    internal: str  # staff-only notes: history, findings, session notes, side effects

    def demographic(self) -> tuple[str, ...]:
        return (self.first, self.last, self.mail, self.team_note)

    def medical(self) -> tuple[str, ...]:
        return (self.clinical, self.internal)

    def every(self) -> tuple[str, ...]:
        return (*self.demographic(), *self.medical())


A = Markers(
    first="Xaqfirst",
    last="Xaqlast",
    mail="xaqmail",
    team_note="Xaqteamnote",
    clinical="Xaqclinical",
    internal="Xaqinternal",
)
B = Markers(
    first="Ybrfirst",
    last="Ybrlast",
    mail="ybrmail",
    team_note="Ybrteamnote",
    clinical="Ybrclinical",
    internal="Ybrinternal",
)


def markers_found(body: bytes, markers: tuple[str, ...] | list[str]) -> list[str]:
    """The markers present in a response body (raw bytes: pages, JSON, PDFs, images)."""
    folded = body.lower()
    return [marker for marker in markers if marker.lower().encode() in folded]


# --- The world -----------------------------------------------------------------------------


@dataclass
class PatientWorld:
    """One patient and one of each record the app keeps about them."""

    marks: Markers
    patient: Patient
    history: MedicalHistory
    consultation: Consultation
    consent: Consent
    photo_consent: Consent
    photo: ClinicalPhoto
    plan: TreatmentPlan
    session: TreatmentSession
    adverse: AdverseEvent
    appointment: Appointment
    clinical_message: OutboundMessage
    booking_message: OutboundMessage
    document: PlanDocument
    # purpose → token of a live patient link (made for B only: B is the link holder)
    links: dict[str, str] = field(default_factory=dict)


@dataclass
class World:
    manager: User
    practitioner: User
    front_desk: User
    location: Location
    room: Room
    product: Product
    lot: Lot
    ingredient: Ingredient
    dose_limit: DoseLimit
    rule: ContraindicationRule
    closure: ScheduleException
    feed_token: str
    system_message: OutboundMessage
    system_job: SystemJob
    template: AftercareTemplate
    colleague_appointment: Appointment  # A's, with another practitioner
    a: PatientWorld
    b: PatientWorld


def _png(extra: bytes) -> bytes:
    """A small PNG with the marker appended after IEND: viewers ignore it, a leak shows it."""
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8), (200, 180, 170)).save(buffer, format="PNG")
    return buffer.getvalue() + extra


def _private_file(name: str, content: bytes) -> str:
    return storages["private"].save(name, ContentFile(content))


def _consent_text(kind: str, manager: User) -> ConsentText:
    text = ConsentText.objects.filter(kind=kind).order_by("-version").first()
    if text is None:
        text = ConsentText.objects.create(
            kind=kind,
            version=1,
            title_en=f"Consent: {kind}",
            body_en="I understand the risks.",
            title_fr=f"Consentement : {kind}",
            body_fr="Je comprends les risques.",
            published_by=manager,
        )
    return text


def _consent(patient: Patient, kind: str, marks: Markers, shared: dict[str, Any]) -> Consent:
    signature = _private_file(f"consents/{patient.pk}/{kind}.png", _png(marks.clinical.encode()))
    return Consent.objects.create(
        patient=patient,
        text=_consent_text(kind, shared["manager"]),
        language="en",
        typed_name=f"{marks.first} {marks.last}",
        signature_file=signature,
        signature_sha256=hashlib.sha256(marks.clinical.encode()).hexdigest(),
        witness=shared["practitioner"],
        ip="127.0.0.1",
    )


def _patient_world(marks: Markers, shared: dict[str, Any], *, appointment_hour: int) -> PatientWorld:
    manager, practitioner = shared["manager"], shared["practitioner"]
    location, room = shared["location"], shared["room"]
    now = timezone.now()
    patient = PatientFactory(
        first_name=marks.first,
        last_name=marks.last,
        email=f"{marks.mail}@example.test",
        preferred_language="en",
        created_by=manager,
    )
    history = history_record(
        patient=patient,
        recorded_by=practitioner,
        conditions=[],
        conditions_detail=marks.internal,
        previous_treatments=marks.internal,
        weight_kg=Decimal("70"),
        medications=[{"name": "Paracetamol", "flags": [], "note": marks.internal}],
    )
    consultation = Consultation.objects.create(
        patient=patient,
        practitioner=practitioner,
        location=location,
        history=history,
        concerns=["fat_reduction"],
        areas=["abdomen"],
        fitzpatrick=3,
        findings=marks.internal,
        recommendation=marks.clinical,
    )
    consent = _consent(patient, "lipolysis", marks, shared)
    photo_consent = _consent(patient, "photography", marks, shared)
    photo_bytes = _png(marks.clinical.encode())
    photo = ClinicalPhoto.objects.create(
        patient=patient,
        consultation=consultation,
        area="abdomen",
        view="front",
        file_name=_private_file(f"photos/{patient.pk}/front.png", photo_bytes),
        content_type="image/png",
        width=8,
        height=8,
        size_bytes=len(photo_bytes),
        sha256=hashlib.sha256(photo_bytes).hexdigest(),
        uploaded_by=practitioner,
    )
    plan = TreatmentPlan.objects.create(
        patient=patient,
        consultation=consultation,
        practitioner=practitioner,
        status=TreatmentPlan.Status.ACTIVE,
        concern="fat_reduction",
        goal=marks.clinical,
        sessions_planned=4,
        min_interval_days=21,
        review_after_days=56,
        consent=consent,
        consented_at=now - timedelta(days=10),
    )
    TreatmentPlan.objects.filter(pk=plan.pk).update(root=plan)
    plan.root_id = plan.pk
    area = PlanArea.objects.create(
        plan=plan,
        area="abdomen",
        technique="point_by_point",
        depth_mm=Decimal("6"),
        needle_gauge=30,
        needle_length_mm=Decimal("13"),
        spacing_mm=Decimal("15"),
        points=20,
        volume_per_point_ml=Decimal("0.1"),
    )
    PlanProduct.objects.create(plan_area=area, product=shared["product"], volume_ml=Decimal("2"))
    PlanAcknowledgement.objects.create(
        plan=plan,
        trigger="security:test",
        finding="a planted finding",
        reason=marks.internal,
        acknowledged_by=practitioner,
    )
    session = TreatmentSession.objects.create(
        plan=plan,
        patient=patient,
        number=1,
        practitioner=practitioner,
        location=location,
        performed_at=now - timedelta(days=2),
        status=TreatmentSession.Status.COMPLETED,
        completed_at=now - timedelta(days=2),
        immediate_reactions=marks.internal,
        notes=marks.internal,
    )
    session_area = SessionArea.objects.create(session=session, area="abdomen", technique="point_by_point", points=20)
    LotUse.objects.create(session_area=session_area, lot=shared["lot"], volume_ml=Decimal("2"))
    adverse = AdverseEvent.objects.create(
        patient=patient,
        type="bruising",
        grade=1,
        onset_at=now - timedelta(days=1),
        reported_by=AdverseEvent.Reporter.PRACTITIONER,
        recorded_by=practitioner,
        description=marks.internal,
        actions_taken=marks.internal,
        follow_up_due=timezone.localdate(),
    )
    adverse.sessions.add(session)
    AdverseEventNote.objects.create(event=adverse, by=practitioner, grade=1, note=marks.internal)
    # Three days ahead: on the calendar, and far enough for the patient to cancel online.
    zone = ZoneInfo(location.time_zone)
    starts_at = datetime.combine(timezone.localdate() + timedelta(days=3), time(appointment_hour), tzinfo=zone)
    appointment = Appointment.objects.create(
        location=location,
        practitioner=practitioner,
        room=room,
        patient=patient,
        plan=plan,
        kind=Appointment.Kind.TREATMENT,
        starts_at=starts_at,
        ends_at=starts_at + timedelta(minutes=45),
        note=marks.team_note,
        created_by=shared["front_desk"],
    )
    clinical_message = OutboundMessage.objects.create(
        kind="aftercare",
        patient=patient,
        session=session,
        to_email=patient.email,
        subject="Your aftercare advice",
        body_text=f"Dear {marks.first}, after your session: {marks.clinical}",
        dedupe_key=f"security:aftercare:{patient.pk}",
        status=OutboundMessage.Status.SENT,
        sent_at=now,
    )
    booking_message = OutboundMessage.objects.create(
        kind="appointment_booked",
        patient=patient,
        appointment=appointment,
        to_email=patient.email,
        subject="Your appointment",
        body_text=f"Dear {marks.first} {marks.last}, see you soon.",
        dedupe_key=f"security:booked:{patient.pk}",
        status=OutboundMessage.Status.SENT,
        sent_at=now,
    )
    pdf = b"%PDF-1.4\n% " + f"{marks.first} {marks.clinical}".encode() + b"\n%%EOF\n"
    document = PlanDocument.objects.create(
        plan=plan,
        language="en",
        status=PlanDocument.Status.DONE,
        file_name=_private_file(f"plans/{plan.pk}/plan-v1-en.pdf", pdf),
        sha256=hashlib.sha256(pdf).hexdigest(),
        pages=1,
        rendered_at=now,
    )
    return PatientWorld(
        marks=marks,
        patient=patient,
        history=history,
        consultation=consultation,
        consent=consent,
        photo_consent=photo_consent,
        photo=photo,
        plan=plan,
        session=session,
        adverse=adverse,
        appointment=appointment,
        clinical_message=clinical_message,
        booking_message=booking_message,
        document=document,
    )


def _links(patient_world: PatientWorld) -> dict[str, str]:
    purpose = PatientLink.Purpose
    patient = patient_world.patient
    return {
        purpose.PLAN: patient_link_create(patient=patient, purpose=purpose.PLAN, plan=patient_world.plan),
        purpose.AFTERCARE: patient_link_create(
            patient=patient, purpose=purpose.AFTERCARE, session=patient_world.session
        ),
        purpose.BOOKING: patient_link_create(
            patient=patient, purpose=purpose.BOOKING, appointment=patient_world.appointment
        ),
        purpose.CHECKIN: patient_link_create(patient=patient, purpose=purpose.CHECKIN, session=patient_world.session),
        purpose.PREFERENCES: patient_link_create(patient=patient, purpose=purpose.PREFERENCES),
    }


@pytest.fixture
def security_settings(settings: object, private_storage: object) -> Iterator[None]:
    """Rate-limit counters in a cache of this test's own (the default one may be shared
    with other test runs), and a link rate limit the crawl does not reach."""
    settings.CACHES = {  # type: ignore[attr-defined]
        "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "security-suite"}
    }
    settings.PATIENT_LINK_RATE_LIMIT = 100_000  # type: ignore[attr-defined]
    caches["default"].clear()
    yield
    storages._storages.pop("private", None)


@pytest.fixture
def world(security_settings: None, manager: User, practitioner: User, front_desk: User) -> World:
    catalogue_seed()
    location = LocationFactory(name="Security Site", address="1 rue de la Paix\n75002 Paris", phone="+33 1 00 00 00 01")
    room = RoomFactory(location=location, name="Room S")
    for user in (manager, practitioner, front_desk):
        user.default_location = location
        user.save(update_fields=["default_location"])
    lot = Lot.objects.filter(expiry_date__gte=timezone.localdate()).select_related("product").order_by("pk").first()
    assert lot is not None, "the catalogue seed has no usable lot"
    ingredient = Ingredient.objects.order_by("pk").first()
    dose_limit = DoseLimit.objects.order_by("pk").first() or DoseLimit.objects.create(
        ingredient=ingredient, kind=DoseLimit._meta.get_field("kind").choices[0][0], value=Decimal("1")
    )
    rule = ContraindicationRule.objects.order_by("pk").first()
    assert rule is not None, "the contraindication rules of the data migration are missing"
    template = AftercareTemplate.objects.order_by("pk").first()
    assert template is not None, "the aftercare templates of the data migration are missing"
    now = timezone.now()
    closure = ScheduleException.objects.create(
        location=location,
        starts_at=now + timedelta(days=20),
        ends_at=now + timedelta(days=21),
        reason="Security closure",
        created_by=manager,
    )
    system_message = OutboundMessage.objects.create(
        kind="system_test",
        to_email=manager.email,
        subject="Test email",
        body_text="A test.",
        dedupe_key="security:system-test",
        created_by=manager,
    )
    system_job = SystemJob.objects.create(
        kind=SystemJob.Kind.PDF,
        status=SystemJob.Status.DONE,
        requested_by=manager,
        finished_at=now,
        result_file=_private_file("system/test.pdf", b"%PDF-1.4\n% system test\n%%EOF\n"),
    )
    shared = {
        "manager": manager,
        "practitioner": practitioner,
        "front_desk": front_desk,
        "location": location,
        "room": room,
        "product": lot.product,
        "lot": lot,
    }
    a = _patient_world(A, shared, appointment_hour=10)
    b = _patient_world(B, shared, appointment_hour=12)
    b.links = _links(b)
    colleague = UserFactory(email="colin@example.test", full_name="Colin Colleague", role=Role.PRACTITIONER)
    colleague_start = a.appointment.starts_at + timedelta(hours=4)
    colleague_appointment = Appointment.objects.create(
        location=location,
        practitioner=colleague,
        patient=a.patient,
        kind=Appointment.Kind.REVIEW,
        starts_at=colleague_start,
        ends_at=colleague_start + timedelta(minutes=30),
        created_by=front_desk,
    )
    return World(
        manager=manager,
        practitioner=practitioner,
        front_desk=front_desk,
        location=location,
        room=room,
        product=lot.product,
        lot=lot,
        ingredient=ingredient,
        dose_limit=dose_limit,
        rule=rule,
        closure=closure,
        feed_token=calendar_feed_create(practitioner=practitioner),
        system_message=system_message,
        system_job=system_job,
        template=template,
        colleague_appointment=colleague_appointment,
        a=a,
        b=b,
    )


def link_holder_client(world: World) -> Client:
    """A browser with no account that has opened B's plan link (what "holding" a link is)."""
    client = Client()
    response = client.get(reverse("patient_link", args=[world.b.links[PatientLink.Purpose.PLAN]]))
    assert response.status_code == 200, "B's plan link does not open: the world is broken"
    return client


@pytest.fixture
def clients(
    world: World,
    anonymous_client: Client,
    front_desk_client: Client,
    practitioner_client: Client,
    manager_client: Client,
) -> dict[str, Client]:
    """A client per persona, keyed by the persona's value in ``url_expectations.Persona``."""
    from tests.security.url_expectations import Persona

    return {
        Persona.ANONYMOUS: anonymous_client,
        Persona.LINK_HOLDER: link_holder_client(world),
        Persona.FRONT_DESK: front_desk_client,
        Persona.PRACTITIONER: practitioner_client,
        Persona.MANAGER: manager_client,
    }


def response_body(response: HttpResponseBase) -> bytes:
    """The whole body, files included (read as raw bytes: a marker in a PDF or PNG counts).

    Reading a file response to its end closes it (the test client wraps it); closing it
    again here would fire ``request_finished`` and close the test's database connection.
    """
    if response.streaming:
        return b"".join(response.streaming_content)  # type: ignore[attr-defined]
    return response.content  # type: ignore[attr-defined]


# --- Database fingerprint ------------------------------------------------------------------

# Tables a GET may legitimately write, and why:
FINGERPRINT_SKIP_TABLES = {
    # The read audit: every GET that shows a patient must add a row (test_audit_count.py
    # counts them).
    "mesoclinic_readevent",
    # Session bookkeeping: the idle clock is refreshed in the session at most every 30 s.
    "django_session",
}
# Columns a GET may legitimately write, and why:
FINGERPRINT_SKIP_COLUMNS = {
    # A patient link records when it was last opened (shown to staff, no clinical data).
    "aftercare_patientlink": ("last_seen_at",),
    # A calendar feed records its last use, at most once per resolution period.
    "treatments_calendarfeed": ("last_used_at",),
}


def _fingerprint_sql() -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY tablename")
        tables = [row[0] for row in cursor.fetchall() if row[0] not in FINGERPRINT_SKIP_TABLES]
    parts = []
    for table in tables:
        skip = FINGERPRINT_SKIP_COLUMNS.get(table, ())
        row = "(to_jsonb(t)" + "".join(f" - '{column}'" for column in skip) + ")::text" if skip else "t::text"
        # A sum of 64-bit row hashes: independent of row order (an UPDATE to the same values
        # moves a row without changing what the table holds), and cheap enough to take
        # after every request; any changed, added or removed row changes it.
        parts.append(
            f"SELECT '{table}', count(*), coalesce(sum(hashtextextended({row}, 0)), 0)::text "  # noqa: S608
            f"FROM {connection.ops.quote_name(table)} t"
        )
    return " UNION ALL ".join(parts)


class Fingerprint:
    """Row count and content hash of every table in the public schema (bar the exclusions
    above), in one prepared query: a few milliseconds, so it can be taken per request."""

    def __init__(self) -> None:
        self.statement = f"security_fingerprint_{id(self)}"
        with connection.cursor() as cursor:
            cursor.execute(f"PREPARE {self.statement} AS {_fingerprint_sql()}")

    def take(self) -> dict[str, tuple[int, str]]:
        with connection.cursor() as cursor:
            cursor.execute(f"EXECUTE {self.statement}")
            return {name: (count, digest) for name, count, digest in cursor.fetchall()}

    @staticmethod
    def changed(before: dict[str, tuple[int, str]], after: dict[str, tuple[int, str]]) -> list[str]:
        names = sorted(set(before) | set(after))
        return [
            f"{name} ({before.get(name, (0, ''))[0]} → {after.get(name, (0, ''))[0]} rows)"
            for name in names
            if before.get(name) != after.get(name)
        ]


@pytest.fixture
def fingerprint(db: None) -> Iterator[Fingerprint]:
    taker = Fingerprint()
    yield taker
    with connection.cursor() as cursor:
        cursor.execute(f"DEALLOCATE {taker.statement}")
