"""Stored markup comes out as text: in every page, in the emails (HTML and text parts, as
sent), in the calendar files, and in the HTML the PDF is rendered from.

The clinic of ``tainted_clinic`` has a payload in each free text (names, addresses, notes,
product and lot names, the manager's aftercare advice and consent text, what a patient
typed at check-in); each payload names the field it sits in, so a failure says which
field leaked where.
"""

from __future__ import annotations

import email
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from django.core import mail
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from django.utils.html import escape
from icalendar import Calendar

from aftercare.models import OutboundMessage
from aftercare.services import message_send
from mesoclinic.models import User
from patients.models import ContraindicationRule
from tests.security.fuzz_inputs import TaintedClinic, tainted_clinic
from treatments.services import documents

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def fast_password_hashing(settings: Any) -> None:
    # The personas' passwords are hashed once per test; PBKDF2 would cost a second each.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def clinic(manager: User, practitioner: User, front_desk: User, private_storage: Path, settings: Any) -> TaintedClinic:
    settings.PATIENT_LINK_RATE_LIMIT = 1_000_000
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    return tainted_clinic(manager=manager, practitioner=practitioner, front_desk=front_desk)


def leaked(text: str, clinic: TaintedClinic) -> list[str]:
    """The fields whose payload is in ``text`` as markup (not escaped)."""
    return sorted(tag for tag, payload in clinic.payloads.items() if payload in text)


def shown(text: str, clinic: TaintedClinic) -> set[str]:
    """The fields whose payload is in ``text`` as escaped text (also upper-cased, as last names are)."""
    return {
        tag
        for tag, payload in clinic.payloads.items()
        if escape(payload) in text or escape(payload.upper()) in text or escape(payload)[:40] in text
    }


# --- emails ------------------------------------------------------------------------------------


def test_emails_carry_stored_markup_as_text(clinic: TaintedClinic) -> None:
    rows = list(OutboundMessage.objects.order_by("pk"))
    kinds = {row.kind for row in rows}
    # The messages that carry stored texts: to the patient, to the staff.
    assert {"appointment_booked", "aftercare", "adverse_alert", "checkin_alert", "lot_recall"} <= kinds, kinds
    reached: set[str] = set()
    for row in rows:
        where = f"message {row.pk} ({row.kind})"
        assert not leaked(row.body_html, clinic), f"{where}: HTML part: {leaked(row.body_html, clinic)}"
        assert "\n" not in row.subject and "\r" not in row.subject, f"{where}: subject {row.subject!r}"
        reached |= shown(row.body_html, clinic)
    # Not a vacuous pass: what each message is about is in it, as text.
    for tag in (
        "Patient.first_name",
        "Location.name",
        "Location.address",
        "User.full_name",
        "AftercareTemplate.title",
        "AftercareTemplate.body",
        "Product.name",
        "Lot.lot_number",
    ):
        assert tag in reached, f"{tag} is in no email's HTML part: the test no longer covers it"


def test_text_parts_and_subjects_are_not_html_escaped(clinic: TaintedClinic) -> None:
    """A text/plain part and a subject are not HTML: they carry the words as typed."""
    escaped = {tag: escape(payload) for tag, payload in clinic.payloads.items()}
    wrong = [
        (row.kind, part, tag)
        for row in OutboundMessage.objects.order_by("pk")
        for part, text in (("text", row.body_text), ("subject", row.subject))
        for tag, value in escaped.items()
        if value in text
    ]
    assert not wrong, wrong


def test_sent_emails_keep_the_escaping(clinic: TaintedClinic) -> None:
    """What leaves through the mail backend is the row as stored: both parts, same escaping."""
    rows = list(OutboundMessage.objects.filter(status=OutboundMessage.Status.SCHEDULED, due_at__lte=timezone.now()))
    assert rows
    mail.outbox.clear()
    for row in rows:
        message_send(message_id=row.pk)
    assert mail.outbox
    for sent in mail.outbox:
        parsed = email.message_from_bytes(sent.message().as_bytes())
        for part in parsed.walk():
            if part.get_content_type() == "text/html":
                html = part.get_payload(decode=True).decode(part.get_content_charset() or "utf-8")
                assert not leaked(html, clinic), (sent.subject, leaked(html, clinic))
        assert "\n" not in sent.subject and "\r" not in sent.subject


def test_calendar_files_keep_stored_text_inside_their_property(clinic: TaintedClinic) -> None:
    rows = [row for row in OutboundMessage.objects.exclude(ics="") if row.appointment_id]
    assert rows
    for row in rows:
        events = list(Calendar.from_ical(row.ics).walk("VEVENT"))
        assert len(events) == 1, row.ics
        assert str(events[0]["LOCATION"]).startswith(clinic.payloads["Location.name"]), events[0]["LOCATION"]


# --- the PDF -------------------------------------------------------------------------------------


def test_plan_pdf_is_rendered_from_escaped_html(clinic: TaintedClinic, monkeypatch: pytest.MonkeyPatch) -> None:
    rendered: list[tuple[str, bytes]] = []
    real = documents.pdf_render_paged

    def capture(html: str) -> tuple[bytes, int]:
        pdf, pages = real(html)
        rendered.append((html, pdf))
        return pdf, pages

    monkeypatch.setattr(documents, "pdf_render_paged", capture)
    document = documents.plan_document_request(plan=clinic.plan)
    documents.plan_document_render(document_id=document.pk)
    assert len(rendered) == 1
    html, pdf = rendered[0]
    assert not leaked(html, clinic), leaked(html, clinic)
    reached = shown(html, clinic)
    for tag in (
        "Patient.last_name",
        "Patient.first_name",
        "Patient.address_line",
        "Location.name",
        "Location.address",
        "User.full_name",
        "Consultation.findings",
        "Consultation.recommendation",
        "TreatmentPlan.goal",
        "Product.name",
        "Product.manufacturer",
        "Lot.lot_number",
        "PlanAcknowledgement.reason",
        "ConsentText.title_en",
    ):
        assert tag in reached, f"{tag} is not in the PDF's HTML: the test no longer covers it"
    if shutil.which("pdftotext"):
        # In the PDF itself the payload is printed as characters, not interpreted.
        text = subprocess.run(["pdftotext", "-", "-"], input=pdf, capture_output=True, check=True).stdout.decode()
        assert "onerror" in " ".join(text.split()) or "window.__xss" in " ".join(text.split()), text[:500]


# --- pages -------------------------------------------------------------------------------------


def _pages(clinic: TaintedClinic) -> list[tuple[str, str]]:
    """(persona, address) of every page that shows the clinic's stored texts."""
    patient, plan, session, event = clinic.patient, clinic.plan, clinic.session, clinic.event
    day = timezone.localdate(clinic.appointment.starts_at).isoformat()
    rule = ContraindicationRule.objects.get(trigger="condition", condition="herpes")
    messages = [
        ("manager", reverse("message_detail", args=[pk])) for pk in OutboundMessage.objects.values_list("pk", flat=True)
    ]
    # The check-in answered in the clinic's fixture became a side effect of its own.
    events = [
        ("practitioner", reverse("adverse_detail", args=[pk]))
        for pk in patient.adverse_events.values_list("pk", flat=True)
    ]
    return [
        ("practitioner", reverse("dashboard")),
        ("practitioner", reverse("patient_list")),
        ("practitioner", reverse("patient_list") + "?q=" + patient.last_name[:5]),
        ("practitioner", reverse("patient_detail", args=[patient.pk])),
        ("practitioner", reverse("history_detail", args=[patient.pk])),
        ("practitioner", reverse("history_edit", args=[patient.pk])),
        ("practitioner", reverse("consultation_detail", args=[patient.pk, plan.consultation_id])),
        ("practitioner", reverse("consultation_new", args=[patient.pk])),
        ("practitioner", reverse("patient_plans", args=[patient.pk])),
        ("practitioner", reverse("plan_detail", args=[plan.pk])),
        ("practitioner", reverse("plan_builder", args=[plan.pk])),
        ("practitioner", reverse("session_record", args=[plan.pk])),
        ("practitioner", reverse("session_detail", args=[session.pk])),
        ("practitioner", reverse("adverse_list", args=[patient.pk])),
        ("practitioner", reverse("adverse_detail", args=[event.pk])),
        ("practitioner", reverse("adverse_create", args=[patient.pk])),
        ("practitioner", reverse("followups_due") + "?show=all"),
        ("practitioner", reverse("photo_list", args=[patient.pk])),
        ("practitioner", reverse("photo_upload", args=[patient.pk])),
        ("practitioner", reverse("consent_capture", args=[patient.pk, plan.consent.text.kind])),
        ("practitioner", reverse("calendar_day") + f"?day={day}"),
        ("practitioner", reverse("calendar_day") + f"?day={day}&by=room"),
        ("practitioner", reverse("calendar_day") + f"?day={day}&view=list"),
        ("practitioner", reverse("calendar_week") + f"?week={day}"),
        ("practitioner", reverse("appointment_detail", args=[clinic.appointment.pk])),
        ("practitioner", reverse("location_list")),
        ("practitioner", reverse("closure_list")),
        ("practitioner", reverse("working_hours_edit", args=[clinic.practitioner.pk])),
        ("front_desk", reverse("patient_detail", args=[patient.pk])),
        ("front_desk", reverse("appointment_new") + f"?patient={patient.pk}"),
        ("front_desk", reverse("no_show_report")),
        ("manager", reverse("catalogue")),
        ("manager", reverse("lot_recall_detail", args=[clinic.lot.pk])),
        ("manager", reverse("product_edit", args=[clinic.lot.product_id])),
        ("manager", reverse("outbox_list") + "?status=scheduled"),
        ("manager", reverse("aftercare_templates")),
        ("manager", reverse("aftercare_template_edit", args=["general", "en"])),
        ("manager", reverse("audit_log")),
        ("manager", reverse("audit_log") + f"?patient={patient.pk}"),
        ("manager", reverse("staff_list")),
        ("manager", reverse("staff_update", args=[clinic.practitioner.pk])),
        ("manager", reverse("rule_list")),
        ("manager", reverse("rule_edit", args=[rule.pk])),
        ("manager", reverse("consent_text_list")),
        ("manager", reverse("location_edit", args=[clinic.location.pk])),
        *messages,
        *events,
        *[("anonymous", reverse("patient_link", args=[token])) for token in clinic.links.values()],
        ("anonymous", reverse("patient_link_cancel", args=[clinic.links["booking"]])),
    ]


# Fields no page shows by design (kept for the record or the emails only).
NOT_ON_PAGES = {"Clinic.phone", "Ingredient.notes", "Product.notes", "Patient.emergency_contact_name"}


def test_pages_show_stored_markup_as_text(request: pytest.FixtureRequest, clinic: TaintedClinic) -> None:
    clients: dict[str, Client] = {}
    reached: set[str] = set()
    for persona, url in _pages(clinic):
        client = clients.setdefault(persona, request.getfixturevalue(f"{persona}_client"))
        response = client.get(url)
        assert response.status_code in {200, 410}, (persona, url, response.status_code)
        html = response.content.decode()
        assert not leaked(html, clinic), f"{persona} {url}: unescaped {leaked(html, clinic)}"
        reached |= shown(html, clinic)
    missing = set(clinic.payloads) - reached - NOT_ON_PAGES
    assert not missing, f"stored but shown on no page checked here (add the page, or NOT_ON_PAGES): {sorted(missing)}"
