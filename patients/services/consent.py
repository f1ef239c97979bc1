"""Consent: versioned texts per kind of treatment, signed consents, withdrawals.

A consent is a legal record: it keeps the exact text version the patient read, the
name they typed and the signature they drew (a PNG in the private storage, with its
sha256), who witnessed it, when and from which address. Publishing a new version of
a kind leaves every earlier consent of that kind in place but no longer sufficient.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import io
import unicodedata
import uuid
import zlib
from typing import TYPE_CHECKING, Any

from django.core.exceptions import ValidationError
from django.core.files.base import ContentFile
from django.core.files.storage import storages
from django.db import connection, transaction
from django.utils.translation import gettext as _
from PIL import Image

from patients.models import Consent, ConsentText, ConsentWithdrawal

if TYPE_CHECKING:
    from mesoclinic.models import User
    from patients.models import Patient

SIGNATURE_PREFIX = "data:image/png;base64,"
SIGNATURE_MAX_BYTES = 300 * 1024
SIGNATURE_MAX_SIDE = 3000
TYPED_NAME_MAX = 200
# A pixel at least this dark, once composed on white, counts as ink: anti-aliasing
# leaves near-white fringes that are not a signature.
_INK_LEVEL = 240
# Base64 of SIGNATURE_MAX_BYTES, plus padding slack: larger input is refused undecoded.
_SIGNATURE_MAX_CHARS = (SIGNATURE_MAX_BYTES + 2) // 3 * 4 + 4


# --- Texts -----------------------------------------------------------------------------


def consent_text_latest(kind: str) -> ConsentText | None:
    return ConsentText.objects.filter(kind=kind).select_related("published_by").order_by("-version").first()


def consent_text_latest_by_kind() -> dict[str, ConsentText]:
    """The current text of every kind that has one, in one query."""
    texts = ConsentText.objects.select_related("published_by").order_by("kind", "-version").distinct("kind")
    return {text.kind: text for text in texts}


def _lock_kind(kind: str) -> None:
    # A row lock cannot guard the first version of a kind (there is no row yet), so two
    # managers publishing at once queue on a transaction-scoped advisory lock instead.
    key = zlib.crc32(f"patients.consent_text:{kind}".encode()) - 2**31
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(%s)", [key])


def _text(value: str) -> str:
    return "\n".join(line.rstrip() for line in value.replace("\r\n", "\n").replace("\r", "\n").strip().split("\n"))


@transaction.atomic
def consent_text_publish(
    *, kind: str, title_en: str, body_en: str, title_fr: str, body_fr: str, published_by: User
) -> ConsentText:
    """Publish the next version of the consent text for a kind of treatment.

    Every patient who consented to an earlier version of this kind must consent
    again before their next session.
    """
    if kind not in ConsentText.Kind.values:
        raise ValidationError({"kind": _("Unknown kind of consent.")})
    _lock_kind(kind)
    current = ConsentText.objects.filter(kind=kind).order_by("-version").first()
    fields = {
        "title_en": " ".join(title_en.split()),
        "body_en": _text(body_en),
        "title_fr": " ".join(title_fr.split()),
        "body_fr": _text(body_fr),
    }
    if current is not None and all(getattr(current, name) == value for name, value in fields.items()):
        raise ValidationError(
            _(
                "This is the text of version %(version)s, unchanged. Nothing was published: a new version "
                "would ask every patient to consent again."
            )
            % {"version": current.version}
        )
    text = ConsentText(kind=kind, version=(current.version + 1) if current else 1, published_by=published_by, **fields)
    text.full_clean()
    text.save()
    return text


# --- Signing -----------------------------------------------------------------------------


def _typed_name(value: str) -> str:
    name = " ".join(value.split())
    if not name:
        raise ValidationError({"typed_name": _("Ask the patient to type their full name.")})
    if len(name) > TYPED_NAME_MAX:
        raise ValidationError(
            {"typed_name": _("The name is too long (at most %(max)s characters).") % {"max": TYPED_NAME_MAX}}
        )
    if any(unicodedata.category(ch) in {"Cc", "Cf", "Co", "Cs"} for ch in name):
        raise ValidationError({"typed_name": _("Remove the special characters from the name.")})
    return name


def _signature_error(message: str) -> ValidationError:
    return ValidationError({"signature": message})


def signature_png(data_url: str) -> bytes:
    """The PNG bytes of a drawn signature, checked: a real, small, non-blank PNG."""
    data_url = (data_url or "").strip()
    if not data_url:
        raise _signature_error(_("Ask the patient to sign in the box."))
    if not data_url.startswith(SIGNATURE_PREFIX):
        raise _signature_error(_("The signature must be a PNG image drawn in the box. Clear it and sign again."))
    payload = data_url[len(SIGNATURE_PREFIX) :]
    too_large = _("The signature image is too large (more than %(kb)s KB). Clear it and sign again.") % {
        "kb": SIGNATURE_MAX_BYTES // 1024
    }
    if len(payload) > _SIGNATURE_MAX_CHARS:
        raise _signature_error(too_large)
    unreadable = _("The signature could not be read as a PNG image. Clear it and sign again.")
    try:
        raw = base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError):
        raise _signature_error(unreadable) from None
    if len(raw) > SIGNATURE_MAX_BYTES:
        raise _signature_error(too_large)
    try:
        image = Image.open(io.BytesIO(raw), formats=["PNG"])
        width, height = image.size
        # Checked before decoding the pixels, so that a small file cannot expand into a huge bitmap.
        if width > SIGNATURE_MAX_SIDE or height > SIGNATURE_MAX_SIDE or width < 1 or height < 1:
            raise _signature_error(
                _("The signature image is too large (more than %(side)s × %(side)s pixels).")
                % {"side": SIGNATURE_MAX_SIDE}
            )
        image.load()
        rgba = image.convert("RGBA")
    except ValidationError:
        raise
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError):
        raise _signature_error(unreadable) from None
    on_white = Image.alpha_composite(Image.new("RGBA", rgba.size, (255, 255, 255, 255)), rgba).convert("L")
    darkest, _lightest = on_white.getextrema()
    if darkest >= _INK_LEVEL:
        raise _signature_error(_("The signature box is empty. Ask the patient to sign in the box."))
    return raw


@transaction.atomic
def consent_record(
    *,
    patient: Patient,
    kind: str,
    typed_name: str,
    signature_data_url: str,
    witness: User,
    ip: str | None,
    version: int | None = None,
) -> Consent:
    """Record the patient's consent to the current text of a kind.

    ``version`` is the version the patient was shown; when given and no longer the
    current one (a manager published meanwhile), the consent is refused so that no
    one signs a text they did not read.
    """
    text = ConsentText.objects.filter(kind=kind).order_by("-version").first()
    if text is None:
        raise ValidationError(_("No consent text is published for this kind of treatment yet."))
    if version is not None and version != text.version:
        raise ValidationError(
            _(
                "A new version of this consent (version %(version)s) was published while the patient was "
                "signing. Show the patient the new text and sign again."
            )
            % {"version": text.version}
        )
    errors: dict[str, Any] = {}
    try:
        name = _typed_name(typed_name)
    except ValidationError as error:
        errors.update(error.error_dict)
    try:
        png = signature_png(signature_data_url)
    except ValidationError as error:
        errors.update(error.error_dict)
    if errors:
        raise ValidationError(errors)

    storage = storages["private"]
    path = storage.save(f"consents/{patient.pk}/{uuid.uuid4()}.png", ContentFile(png))
    try:
        consent = Consent(
            patient=patient,
            text=text,
            language=patient.preferred_language,
            typed_name=name,
            signature_file=path,
            signature_sha256=hashlib.sha256(png).hexdigest(),
            witness=witness,
            ip=ip or None,
        )
        # The model allows no address (null) but not blank: an unknown address is not an error.
        consent.full_clean(exclude=["ip"] if consent.ip is None else None)
        consent.save()
    except Exception:
        # The row failed: no signature file may remain without its record.
        storage.delete(path)
        raise
    return consent


@transaction.atomic
def consent_withdraw(*, consent: Consent, recorded_by: User, reason: str = "") -> ConsentWithdrawal:
    """Record that the patient withdrew a consent; it no longer covers any session."""
    # The consent row lock makes a double submission wait, then see the first withdrawal.
    Consent.objects.select_for_update().filter(pk=consent.pk).first()
    if ConsentWithdrawal.objects.filter(consent_id=consent.pk).exists():
        raise ValidationError(_("This consent was already withdrawn."))
    withdrawal = ConsentWithdrawal(consent=consent, recorded_by=recorded_by, reason=" ".join(reason.split()))
    withdrawal.full_clean(validate_unique=False)
    withdrawal.save()
    return withdrawal


# --- Reads for the patient page ------------------------------------------------------------


def consent_history(patient: Patient, kind: str) -> list[Consent]:
    """The patient's consents of a kind, newest first, with text, witness and withdrawal."""
    return list(
        Consent.objects.filter(patient=patient, text__kind=kind)
        .select_related("text", "witness", "withdrawal")
        .order_by("-signed_at", "-pk")
    )


def consent_state(consents: list[Consent], latest_version: int | None) -> tuple[Consent | None, bool]:
    """From a kind's consents (newest first): the valid one, and whether to consent again.

    The valid consent is chosen as :func:`patients.selectors.consent_current` does. The
    patient must consent again when, with none valid, their newest consent of the kind
    is to an older version and not withdrawn (a withdrawal is a choice, not a lapse).
    """
    if latest_version is None:
        return None, False
    valid = [c for c in consents if c.text.version == latest_version and not hasattr(c, "withdrawal")]
    if valid:
        return valid[0], False
    newest = consents[0] if consents else None
    return None, newest is not None and newest.text.version < latest_version and not hasattr(newest, "withdrawal")


def consent_rows_for_patient(patient: Patient) -> list[dict[str, Any]]:
    """One row per kind of consent for the patient card (two queries whatever the kinds).

    Each row: ``kind``, ``label``, ``consent`` (valid for the current version, or None),
    ``needs_reconsent`` (the patient's last consent is to an older version),
    ``latest_version`` (None when no text is published) and ``last`` (the newest
    consent of the kind, valid or not).
    """
    latest = dict(ConsentText.objects.order_by("kind", "-version").distinct("kind").values_list("kind", "version"))
    by_kind: dict[str, list[Consent]] = {}
    for consent in (
        Consent.objects.filter(patient=patient)
        .select_related("text", "witness", "withdrawal")
        .order_by("-signed_at", "-pk")
    ):
        by_kind.setdefault(consent.text.kind, []).append(consent)
    rows = []
    for kind, label in ConsentText.Kind.choices:
        consents = by_kind.get(kind, [])
        current, needs_reconsent = consent_state(consents, latest.get(kind))
        rows.append(
            {
                "kind": kind,
                "label": label,
                "consent": current,
                "needs_reconsent": needs_reconsent,
                "latest_version": latest.get(kind),
                "last": consents[0] if consents else None,
            }
        )
    return rows
