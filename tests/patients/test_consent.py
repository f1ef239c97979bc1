from __future__ import annotations

import base64
import hashlib
import io
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.core.exceptions import ValidationError
from django.core.files.storage import storages
from django.db import connection, transaction
from django.template.loader import render_to_string
from django.test import Client, RequestFactory
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from PIL import Image, ImageDraw

from mesoclinic.models import ReadEvent, User
from patients.models import Consent, ConsentText, ConsentWithdrawal, Patient
from patients.selectors import consent_current
from patients.services.consent import (
    consent_record,
    consent_rows_for_patient,
    consent_text_publish,
    consent_withdraw,
)
from tests.factories import PatientFactory

KIND = "mesotherapy"
TEXT = {
    "title_en": "Consent to mesotherapy",
    "body_en": "I understand the risks of injections.",
    "title_fr": "Consentement à la mésothérapie",
    "body_fr": "Je comprends les risques des injections.",
}


def png_bytes(size: tuple[int, int] = (400, 150), *, ink: bool = True, mode: str = "RGBA") -> bytes:
    background = (0, 0, 0, 0) if mode == "RGBA" else "white"
    image = Image.new(mode, size, background)
    if ink:
        ImageDraw.Draw(image).line([(20, 100), (120, 30), (250, 110), (380, 40)], fill="black", width=4)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def noise_png() -> bytes:
    """About 480 KB: random pixels do not compress."""
    buffer = io.BytesIO()
    Image.frombytes("RGB", (400, 400), os.urandom(400 * 400 * 3)).save(buffer, format="PNG")
    return buffer.getvalue()


def data_url(raw: bytes, mime: str = "image/png") -> str:
    return f"data:{mime};base64,{base64.b64encode(raw).decode()}"


SIGNATURE = data_url(png_bytes())


@pytest.fixture(autouse=True)
def private_storage(tmp_path: Path, settings) -> Iterator[Path]:
    storages._storages.pop("private", None)
    settings.STORAGES = {
        **settings.STORAGES,
        "private": {**settings.STORAGES["private"], "OPTIONS": {"location": str(tmp_path)}},
    }
    yield tmp_path
    storages._storages.pop("private", None)


@pytest.fixture
def patient(manager: User) -> Patient:
    return PatientFactory(first_name="Léa", last_name="Bernard", preferred_language="en", created_by=manager)


@pytest.fixture
def text_v1(manager: User) -> ConsentText:
    return consent_text_publish(kind=KIND, published_by=manager, **TEXT)


@pytest.fixture
def consent(patient: Patient, practitioner: User, text_v1: ConsentText) -> Consent:
    return consent_record(
        patient=patient,
        kind=KIND,
        typed_name="Léa Bernard",
        signature_data_url=SIGNATURE,
        witness=practitioner,
        ip=None,
    )


def capture_url(patient: Patient, kind: str = KIND) -> str:
    return reverse("consent_capture", args=[patient.pk, kind])


def stored_files(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file()]


# --- role × URL -------------------------------------------------------------------------

MANAGER_ONLY = 403
URLS = {
    # name: (method, expected status for practitioner)
    "consent_text_list": ("get", MANAGER_ONLY),
    "consent_text_publish": ("get", MANAGER_ONLY),
    "consent_capture": ("get", 200),
    "consent_signature": ("get", 200),
    "consent_withdraw": ("post", 302),
}


def url_for(name: str, patient: Patient, consent: Consent) -> str:
    return {
        "consent_text_list": lambda: reverse(name),
        "consent_text_publish": lambda: reverse(name, args=[KIND]),
        "consent_capture": lambda: capture_url(patient),
        "consent_signature": lambda: reverse(name, args=[patient.pk, consent.pk]),
        "consent_withdraw": lambda: reverse(name, args=[patient.pk, consent.pk]),
    }[name]()


@pytest.mark.parametrize("name", URLS)
def test_anonymous_is_sent_to_login(anonymous_client: Client, name: str, patient, consent) -> None:
    method, _status = URLS[name]
    response = getattr(anonymous_client, method)(url_for(name, patient, consent))
    assert response.status_code == 302 and "/accounts/login/" in response.url


@pytest.mark.parametrize("name", URLS)
def test_front_desk_is_refused(front_desk_client: Client, name: str, patient, consent) -> None:
    method, _status = URLS[name]
    response = getattr(front_desk_client, method)(url_for(name, patient, consent))
    assert response.status_code == 403
    assert not ConsentWithdrawal.objects.exists()
    assert not ReadEvent.objects.filter(patient_id=patient.pk).exists()


@pytest.mark.parametrize("name", URLS)
def test_practitioner(practitioner_client: Client, name: str, patient, consent) -> None:
    method, status = URLS[name]
    assert getattr(practitioner_client, method)(url_for(name, patient, consent)).status_code == status


@pytest.mark.parametrize("name", URLS)
def test_manager(manager_client: Client, name: str, patient, consent) -> None:
    method, status = URLS[name]
    expected = 200 if status == MANAGER_ONLY else status
    assert getattr(manager_client, method)(url_for(name, patient, consent)).status_code == expected


def test_unknown_kind_is_404(manager_client: Client, patient) -> None:
    assert manager_client.get(capture_url(patient, "tattoo")).status_code == 404
    assert manager_client.get(reverse("consent_text_publish", args=["tattoo"])).status_code == 404
    assert manager_client.post(capture_url(patient, "tattoo"), {"typed_name": "x"}).status_code == 404


def test_unknown_patient_is_404(practitioner_client: Client, text_v1) -> None:
    assert practitioner_client.get(reverse("consent_capture", args=[999999, KIND])).status_code == 404


def test_signature_of_another_patient_is_404(practitioner_client: Client, consent, manager) -> None:
    other = PatientFactory(created_by=manager)
    response = practitioner_client.get(reverse("consent_signature", args=[other.pk, consent.pk]))
    assert response.status_code == 404


# --- texts -------------------------------------------------------------------------------


def test_publish_numbers_versions_per_kind(manager_client: Client, manager: User) -> None:
    url = reverse("consent_text_publish", args=[KIND])
    assert manager_client.post(url, TEXT).status_code == 302
    assert manager_client.post(url, {**TEXT, "body_en": "New risks listed."}).status_code == 302
    assert manager_client.post(reverse("consent_text_publish", args=["hair"]), TEXT).status_code == 302
    versions = sorted(ConsentText.objects.values_list("kind", "version"))
    assert versions == [("hair", 1), (KIND, 1), (KIND, 2)]
    latest = ConsentText.objects.get(kind=KIND, version=2)
    assert latest.body_en == "New risks listed." and latest.published_by == manager


def test_publish_form_starts_from_the_current_version(manager_client: Client, text_v1) -> None:
    consent_text_publish(kind=KIND, published_by=text_v1.published_by, **{**TEXT, "title_fr": "Version deux"})
    page = manager_client.get(reverse("consent_text_publish", args=[KIND])).content.decode()
    assert 'value="Version deux"' in page and "Je comprends les risques des injections." in page
    assert "Saving publishes version 3" in page


def test_text_list_shows_current_version_and_date(manager_client: Client, text_v1) -> None:
    page = manager_client.get(reverse("consent_text_list")).content.decode()
    assert "version 1" in page and "none published" in page
    assert reverse("consent_text_publish", args=[KIND]) in page


@pytest.mark.parametrize("field", ["title_en", "body_en", "title_fr", "body_fr"])
def test_publish_requires_every_field(manager_client: Client, field: str) -> None:
    response = manager_client.post(reverse("consent_text_publish", args=[KIND]), {**TEXT, field: "  "})
    assert response.status_code == 400
    assert "This field is required." in response.content.decode()
    assert not ConsentText.objects.exists()


def test_publishing_the_same_text_again_is_refused(manager_client: Client, text_v1) -> None:
    response = manager_client.post(reverse("consent_text_publish", args=[KIND]), TEXT)
    assert response.status_code == 400
    assert "unchanged" in response.content.decode()
    assert ConsentText.objects.count() == 1


@pytest.mark.django_db(transaction=True)
def test_concurrent_publishers_get_consecutive_versions(manager: User) -> None:
    """The second publisher waits for the first to commit, then takes the next version."""
    first_published = threading.Event()
    release_first = threading.Event()
    results: dict[str, object] = {}

    def publish(name: str, hold: bool) -> None:
        try:
            with transaction.atomic():
                text = consent_text_publish(kind=KIND, published_by=manager, **{**TEXT, "body_en": name})
                if hold:
                    first_published.set()
                    release_first.wait(10)
            results[name] = text.version
        except Exception as error:  # noqa: BLE001 - the assertion below reports it
            results[name] = error
        finally:
            connection.close()

    first = threading.Thread(target=publish, args=("first", True))
    first.start()
    assert first_published.wait(10)
    second = threading.Thread(target=publish, args=("second", False))
    second.start()
    time.sleep(0.5)
    assert second.is_alive(), "the second publisher did not wait for the first"
    release_first.set()
    first.join(10)
    second.join(10)
    assert results == {"first": 1, "second": 2}


# --- capture -----------------------------------------------------------------------------


def test_capture_page_shows_the_text_in_the_patient_language(practitioner_client: Client, patient, text_v1) -> None:
    page = practitioner_client.get(capture_url(patient)).content.decode()
    assert "Consent to mesotherapy" in page and "Consentement" not in page
    assert 'lang="en"' in page
    assert "data-signature-pad" in page and "data-signature-clear" in page and "js/signature" in page
    assert "<script>" not in page and " style=" not in page and "onclick" not in page

    french = PatientFactory(preferred_language="fr", created_by=patient.created_by)
    page = practitioner_client.get(capture_url(french)).content.decode()
    assert "Consentement à la mésothérapie" in page and "Je comprends les risques" in page
    assert 'lang="fr"' in page


def test_capture_records_the_exact_version_name_witness_ip_and_signature(
    practitioner_client: Client, practitioner: User, patient, text_v1, private_storage: Path
) -> None:
    raw = png_bytes()
    response = practitioner_client.post(
        capture_url(patient),
        {"typed_name": "  Léa   Bernard ", "signature": data_url(raw), "version": "1"},
        REMOTE_ADDR="203.0.113.7",
    )
    assert response.status_code == 302 and response.url == reverse("patient_detail", args=[patient.pk])
    consent = Consent.objects.get()
    assert consent.patient == patient
    assert consent.text == text_v1 and consent.text.version == 1
    assert consent.typed_name == "Léa Bernard"
    assert consent.witness == practitioner
    assert consent.ip == "203.0.113.7"
    assert consent.language == "en"
    assert consent.signature_file.startswith(f"consents/{patient.pk}/") and consent.signature_file.endswith(".png")
    stored = (private_storage / consent.signature_file).read_bytes()
    assert stored == raw
    assert hashlib.sha256(stored).hexdigest() == consent.signature_sha256
    assert consent_current(patient, KIND) == consent
    assert ReadEvent.objects.filter(patient_id=patient.pk, action="edit", user=practitioner).exists()


def test_capture_without_a_published_text(practitioner_client: Client, patient, private_storage: Path) -> None:
    response = practitioner_client.get(capture_url(patient))
    assert response.status_code == 200 and "No consent text is published" in response.content.decode()
    response = practitioner_client.post(
        capture_url(patient), {"typed_name": "Léa Bernard", "signature": SIGNATURE, "version": "1"}
    )
    assert response.status_code == 400
    assert not Consent.objects.exists() and not stored_files(private_storage)


def test_a_version_published_while_signing_is_not_signed_unread(
    practitioner_client: Client, manager: User, patient, text_v1, private_storage: Path
) -> None:
    consent_text_publish(kind=KIND, published_by=manager, **{**TEXT, "body_en": "Changed."})
    response = practitioner_client.post(
        capture_url(patient), {"typed_name": "Léa Bernard", "signature": SIGNATURE, "version": "1"}
    )
    assert response.status_code == 400
    assert "A new version of this consent (version 2) was published" in response.content.decode()
    assert not Consent.objects.exists() and not stored_files(private_storage)


def test_new_version_requires_reconsent(manager: User, patient, consent) -> None:
    assert consent_current(patient, KIND) == consent
    consent_text_publish(kind=KIND, published_by=manager, **{**TEXT, "body_en": "New risks listed."})
    assert consent_current(patient, KIND) is None

    rows = {row["kind"]: row for row in consent_rows_for_patient(patient)}
    assert rows[KIND]["consent"] is None and rows[KIND]["needs_reconsent"] is True
    assert rows["hair"]["needs_reconsent"] is False and rows["hair"]["latest_version"] is None
    request = RequestFactory().get("/")
    request.user = manager
    card = render_to_string(
        "patients/consent/_patient_card.html",
        {"patient": patient, "consent_rows": consent_rows_for_patient(patient)},
        request=request,
    )
    assert "needs re-consent" in card
    assert capture_url(patient) in card


def test_card_shows_a_valid_consent(manager: User, patient, consent) -> None:
    card = render_to_string(
        "patients/consent/_patient_card.html", {"patient": patient, "consent_rows": consent_rows_for_patient(patient)}
    )
    assert 'data-testid="consent-valid"' in card and "needs re-consent" not in card


def test_card_rows_take_two_queries_whatever_the_kinds(manager: User, patient, practitioner) -> None:
    for kind in ConsentText.Kind.values:
        consent_text_publish(kind=kind, published_by=manager, **TEXT)
        consent_record(
            patient=patient, kind=kind, typed_name="L B", signature_data_url=SIGNATURE, witness=practitioner, ip=None
        )
    consent_text_publish(kind="hair", published_by=manager, **{**TEXT, "body_en": "v2"})
    with CaptureQueriesContext(connection) as queries:
        rows = consent_rows_for_patient(patient)
        states = [(row["kind"], bool(row["consent"]), row["needs_reconsent"]) for row in rows]
        [row["consent"].witness.email for row in rows if row["consent"]]
    assert len(queries) == 2
    assert ("hair", False, True) in states and (KIND, True, False) in states


# --- bad input: 400, a message next to the field, nothing saved ------------------------------


BAD_SIGNATURES = {
    "missing": ("", "Ask the patient to sign in the box."),
    "not png": (data_url(b"GIF89a....", "image/gif"), "The signature must be a PNG image"),
    "png label, other bytes": (data_url(b"GIF89a\x01\x00\x01\x00" + b"\x00" * 30), "could not be read as a PNG"),
    "not base64": ("data:image/png;base64,@@not base64@@", "could not be read as a PNG"),
    "transparent": (data_url(png_bytes(ink=False)), "The signature box is empty"),
    "white": (data_url(png_bytes(ink=False, mode="RGB")), "The signature box is empty"),
    "too many pixels": (data_url(png_bytes((3001, 20))), "more than 3000 × 3000 pixels"),
    "too many bytes": (data_url(noise_png()), "too large (more than 300 KB)"),
}


@pytest.mark.parametrize("case", BAD_SIGNATURES)
def test_bad_signature_is_refused(
    practitioner_client: Client, patient, text_v1, private_storage: Path, case: str
) -> None:
    signature, message = BAD_SIGNATURES[case]
    response = practitioner_client.post(
        capture_url(patient), {"typed_name": "Léa Bernard", "signature": signature, "version": "1"}
    )
    page = response.content.decode()
    assert response.status_code == 400
    error = page.split('data-testid="signature-error"', 1)[1].split("</div>", 1)[0]
    assert message in error
    assert not Consent.objects.exists() and not stored_files(private_storage)


@pytest.mark.parametrize(
    ("typed_name", "message"),
    [
        ("", "Ask the patient to type their full name."),
        ("   ", "Ask the patient to type their full name."),
        ("x" * 201, "at most 200 characters"),
    ],
)
def test_bad_typed_name_is_refused(
    practitioner_client: Client, patient, text_v1, private_storage: Path, typed_name: str, message: str
) -> None:
    response = practitioner_client.post(
        capture_url(patient), {"typed_name": typed_name, "signature": SIGNATURE, "version": "1"}
    )
    page = response.content.decode()
    assert response.status_code == 400
    error = page.split('data-testid="typed_name-error"', 1)[1].split("</div>", 1)[0]
    assert message in error
    assert not Consent.objects.exists() and not stored_files(private_storage)


def test_service_rejects_a_control_character_in_the_name(patient, practitioner, text_v1) -> None:
    with pytest.raises(ValidationError) as caught:
        consent_record(
            patient=patient,
            kind=KIND,
            typed_name="Léa\x00",
            signature_data_url=SIGNATURE,
            witness=practitioner,
            ip=None,
        )
    assert "typed_name" in caught.value.message_dict


def test_a_script_in_the_typed_name_is_escaped(practitioner_client: Client, patient, text_v1) -> None:
    script = "<script>alert('x')</script>"
    response = practitioner_client.post(capture_url(patient), {"typed_name": script, "signature": "", "version": "1"})
    page = response.content.decode()
    assert response.status_code == 400
    assert script not in page and "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;" in page

    # Stored as typed (it is evidence), shown escaped in the history.
    assert (
        practitioner_client.post(
            capture_url(patient), {"typed_name": script, "signature": SIGNATURE, "version": "1"}
        ).status_code
        == 302
    )
    page = practitioner_client.get(capture_url(patient)).content.decode()
    assert script not in page and "&lt;script&gt;" in page


# --- signature, withdrawal ----------------------------------------------------------------


def test_signature_view_serves_the_png_and_audits_the_read(
    practitioner_client: Client, practitioner: User, patient, consent, private_storage: Path
) -> None:
    response = practitioner_client.get(reverse("consent_signature", args=[patient.pk, consent.pk]))
    assert response.status_code == 200
    assert response["Content-Type"] == "image/png"
    assert response["Cache-Control"] == "no-store"
    assert b"".join(response.streaming_content) == (private_storage / consent.signature_file).read_bytes()
    event = ReadEvent.objects.get(patient_id=patient.pk, what__startswith="consent signature")
    assert event.user == practitioner and event.action == "view"


def test_missing_signature_file_is_404(practitioner_client: Client, patient, consent, private_storage: Path) -> None:
    (private_storage / consent.signature_file).unlink()
    assert practitioner_client.get(reverse("consent_signature", args=[patient.pk, consent.pk])).status_code == 404


def test_withdrawal_ends_the_consent(practitioner_client: Client, practitioner: User, patient, consent) -> None:
    url = reverse("consent_withdraw", args=[patient.pk, consent.pk])
    response = practitioner_client.post(url, {"reason": "Changed her mind", "next": capture_url(patient)})
    assert response.status_code == 302 and response.url == capture_url(patient)
    assert consent_current(patient, KIND) is None
    withdrawal = ConsentWithdrawal.objects.get(consent=consent)
    assert withdrawal.recorded_by == practitioner and withdrawal.reason == "Changed her mind"
    rows = {row["kind"]: row for row in consent_rows_for_patient(patient)}
    assert rows[KIND]["consent"] is None and rows[KIND]["needs_reconsent"] is False

    response = practitioner_client.post(url, {"reason": "again"}, follow=True)
    assert "already withdrawn" in response.content.decode()
    assert ConsentWithdrawal.objects.count() == 1


def test_withdrawal_ignores_an_outside_next(practitioner_client: Client, patient, consent) -> None:
    url = reverse("consent_withdraw", args=[patient.pk, consent.pk])
    response = practitioner_client.post(url, {"next": "https://evil.example/"})
    assert response.url == reverse("patient_detail", args=[patient.pk])


def test_withdraw_service(patient, consent, practitioner) -> None:
    consent_withdraw(consent=consent, recorded_by=practitioner, reason="")
    assert consent_current(patient, KIND) is None
    with pytest.raises(ValidationError):
        consent_withdraw(consent=consent, recorded_by=practitioner, reason="")


# --- query count ---------------------------------------------------------------------------


@pytest.mark.parametrize("signed", [1, 6])
def test_capture_page_query_count(
    practitioner_client: Client, practitioner, patient, text_v1, django_assert_num_queries, signed: int
) -> None:
    for _ in range(signed):
        consent_record(
            patient=patient, kind=KIND, typed_name="L B", signature_data_url=SIGNATURE, witness=practitioner, ip=None
        )
    # session, user, roles, patient, read event, latest text, the kind's consents
    with django_assert_num_queries(7):
        response = practitioner_client.get(capture_url(patient))
    assert response.status_code == 200
    assert response.content.decode().count("View signature") == signed


@pytest.mark.parametrize("published", [1, 5])
def test_text_list_query_count(
    manager_client: Client, manager: User, django_assert_num_queries, published: int
) -> None:
    for kind in ConsentText.Kind.values[:published]:
        consent_text_publish(kind=kind, published_by=manager, **TEXT)
        consent_text_publish(kind=kind, published_by=manager, **{**TEXT, "body_en": "v2"})
    # session, user, roles, the current text of every kind with its publisher
    with django_assert_num_queries(4):
        response = manager_client.get(reverse("consent_text_list"))
    assert response.content.decode().count("version 2") == published


def test_capture_page_asks_for_reconsent(practitioner_client: Client, manager: User, patient, consent) -> None:
    consent_text_publish(kind=KIND, published_by=manager, **{**TEXT, "body_en": "New risks listed."})
    page = practitioner_client.get(capture_url(patient)).content.decode()
    assert "they need to consent again" in page and "New risks listed." in page
    assert "older version" in page
