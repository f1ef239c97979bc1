"""Markup stored in every free text of a clinic (names, notes, products and lots, the
manager's aftercare advice and consent text, a patient's check-in words) never runs: the
staff pages and the patients' link pages are opened in Chromium, and nothing the payloads
carry becomes an element, an event handler, a dialog or a script that ran.

The content security policy would block inline handlers even if escaping failed, so the
test does not rely on it: it looks for the injected elements and attributes in the DOM,
which only escaping keeps out, and also listens for CSP violations reported in the console.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from django.conf import settings as django_settings
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from playwright.sync_api import Browser, Page

from mesoclinic.models import User
from tests.security.fuzz_inputs import TaintedClinic, tainted_clinic

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

# What a payload that got out would leave behind: an element or attribute of its own, or the
# flag its script sets. The app's templates have no inline script and no on* attribute.
SNIFF = """() => ({
  ran: typeof window.__xss !== "undefined",
  injected: Array.from(document.querySelectorAll("*"))
    .filter((e) =>
      Array.from(e.attributes).some((a) => a.name.startsWith("on")) ||
      (e.tagName === "SCRIPT" && !e.src) ||
      (e.tagName === "IMG" && e.getAttribute("src") === "x"))
    .map((e) => e.outerHTML.slice(0, 120)),
})"""


@pytest.fixture(autouse=True)
def fast_password_hashing(settings: Any) -> None:
    # The personas' passwords are hashed once per test; PBKDF2 would cost a second each.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def _page_for(browser: Browser, live_server: Any, user: User | None, alarms: list[str]) -> Page:
    """A browser context signed in as ``user`` (a session made server-side, no login form)."""
    context = browser.new_context()
    if user is not None:
        client = Client()
        client.force_login(user)
        cookie = client.cookies[django_settings.SESSION_COOKIE_NAME].value
        context.add_cookies([{"name": django_settings.SESSION_COOKIE_NAME, "value": cookie, "url": live_server.url}])
    page = context.new_page()
    page.on("dialog", lambda dialog: (alarms.append(f"dialog {dialog.message!r} on {page.url}"), dialog.dismiss()))
    page.on(
        "console",
        lambda message: (
            alarms.append(f"console {message.text!r} on {page.url}")
            if "Content Security Policy" in message.text
            else None
        ),
    )
    return page


def _staff_pages(clinic: TaintedClinic) -> dict[str, list[str]]:
    patient, plan = clinic.patient, clinic.plan
    day = timezone.localdate(clinic.appointment.starts_at).isoformat()
    events = list(patient.adverse_events.values_list("pk", flat=True))
    return {
        "practitioner": [
            reverse("patient_list"),
            reverse("patient_detail", args=[patient.pk]),
            reverse("history_detail", args=[patient.pk]),
            reverse("consultation_detail", args=[patient.pk, plan.consultation_id]),
            reverse("plan_detail", args=[plan.pk]),
            reverse("plan_builder", args=[plan.pk]),
            reverse("session_detail", args=[clinic.session.pk]),
            *[reverse("adverse_detail", args=[pk]) for pk in events],
            reverse("followups_due") + "?show=all",
            reverse("photo_list", args=[patient.pk]),
            reverse("calendar_day") + f"?day={day}",
            reverse("calendar_week") + f"?week={day}",
            reverse("appointment_detail", args=[clinic.appointment.pk]),
        ],
        "manager": [
            reverse("catalogue"),
            reverse("lot_recall_detail", args=[clinic.lot.pk]),
            reverse("outbox_list") + "?status=scheduled",
            reverse("aftercare_templates"),
            reverse("audit_log"),
            reverse("staff_list"),
            reverse("closure_list"),
        ],
        "front_desk": [
            reverse("patient_detail", args=[patient.pk]),
            reverse("appointment_new") + f"?patient={patient.pk}",
        ],
        "anonymous": [reverse("patient_link", args=[token]) for token in clinic.links.values()],
    }


def test_stored_payloads_never_run(
    live_server: Any,
    browser: Browser,
    manager: User,
    practitioner: User,
    front_desk: User,
    private_storage: Path,
    settings: Any,
) -> None:
    settings.PATIENT_LINK_RATE_LIMIT = 1_000_000
    clinic = tainted_clinic(manager=manager, practitioner=practitioner, front_desk=front_desk)
    users: dict[str, User | None] = {
        "practitioner": practitioner,
        "manager": manager,
        "front_desk": front_desk,
        "anonymous": None,
    }
    alarms: list[str] = []
    # The detector itself: a payload that does get into a page is seen.
    probe = _page_for(browser, live_server, None, [])
    probe.set_content('<p>x</p><img src=x onerror="window.__xss=1">')
    probe.wait_for_function("() => window.__xss === 1")
    assert probe.evaluate(SNIFF)["injected"]
    probe.context.close()

    visited, shown = 0, set()
    for persona, paths in _staff_pages(clinic).items():
        page = _page_for(browser, live_server, users[persona], alarms)
        for path in paths:
            response = page.goto(f"{live_server.url}{path}")
            assert response is not None and response.status in {200, 410}, (persona, path, response and response.status)
            # Hover what a mouse would: an injected onmouseover would fire now.
            page.mouse.move(200, 200)
            page.mouse.move(400, 300)
            found = page.evaluate(SNIFF)
            assert not found["ran"] and not found["injected"], (persona, path, found)
            text = page.inner_text("body")
            shown |= {tag for tag, payload in clinic.payloads.items() if payload in text}
            visited += 1
        page.context.close()
    assert not alarms, alarms
    assert visited >= 25
    # The payloads were on the pages, as text a person reads.
    expected = {"Patient.first_name", "Product.name", "Lot.lot_number", "TreatmentSession.notes"}
    expected |= {"AftercareTemplate.body", "CheckInResponse.comment", "Location.name", "Consultation.findings"}
    assert expected <= shown, sorted(expected - shown)
