"""Reads of patients: search with keyset pagination, duplicates, the patient page."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime

import phonenumbers
from django.conf import settings
from django.db import connection, transaction
from django.db.models import Q, QuerySet, Value

from patients.models import (
    ClinicalPhoto,
    Condition,
    Consent,
    ConsentText,
    Fold,
    MedicalHistory,
    MedicationFlag,
    Patient,
)

PAGE_SIZE = 25
# word_similarity threshold for typo-tolerant name search (pg_trgm default is 0.6,
# which misses one swapped letter in a short surname).
NAME_SIMILARITY = 0.4
_DATE_FORMATS = ("%d/%m/%Y", "%d.%m.%Y", "%d-%m-%Y", "%Y-%m-%d")


@dataclass(frozen=True)
class Cursor:
    search_name: str
    pk: int
    fuzzy: bool = False

    def encode(self) -> str:
        return f"{'f' if self.fuzzy else 'p'}{self.pk}:{self.search_name}"

    @classmethod
    def decode(cls, raw: str | None) -> Cursor | None:
        if not raw or ":" not in raw or raw[0] not in "fp":
            return None
        pk, _, name = raw[1:].partition(":")
        return cls(name, int(pk), raw[0] == "f") if pk.isdigit() and len(pk) < 19 else None


@dataclass(frozen=True)
class PatientPage:
    patients: list[Patient]
    next_cursor: str | None
    kind: str  # what the query was taken as: name, similar_name, birth_date, phone, email, all


def _as_date(query: str) -> date | None:
    for fmt in _DATE_FORMATS:
        try:
            return datetime.strptime(query, fmt).date()
        except ValueError:
            continue
    return None


def _as_phone(query: str) -> str | None:
    if not re.fullmatch(r"[+\d][\d .\-()]{5,}", query):
        return None
    try:
        number = phonenumbers.parse(query, settings.PHONENUMBER_DEFAULT_REGION)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_possible_number(number):
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def _base(include_archived: bool) -> QuerySet[Patient]:
    patients = Patient.objects.only(
        "id", "first_name", "last_name", "birth_date", "email", "phone", "status", "search_name", "city"
    )
    return patients if include_archived else patients.filter(status=Patient.Status.ACTIVE)


def patient_search(
    query: str, *, cursor: Cursor | None = None, include_archived: bool = False, limit: int = PAGE_SIZE
) -> PatientPage:
    """Patients matching a name, a date of birth, a phone or an email.

    A name matches by prefix of the surname or of any name word, accents and case
    folded; when nothing matches that way, similar names (typos) are shown instead.
    Ordered by folded name then id, paginated by keyset (no OFFSET, no COUNT).
    """
    query = " ".join(query.split())[:100]
    patients = _base(include_archived)
    kind = "all"
    fuzzy = False
    if query:
        if (born := _as_date(query)) is not None:
            kind, patients = "birth_date", patients.filter(birth_date=born)
        elif "@" in query:
            kind, patients = (
                "email",
                patients.annotate(email_folded=Fold("email")).filter(email_folded=Fold(Value(query))),
            )
        elif (phone := _as_phone(query)) is not None:
            kind, patients = "phone", patients.filter(phone=phone)
        else:
            prefix = patients.filter(
                Q(search_name__startswith=Fold(Value(query))) | Q(search_name__contains=Fold(Value(" " + query)))
            )
            fuzzy = cursor.fuzzy if cursor is not None else not prefix.exists()
            kind = "similar_name" if fuzzy else "name"
            patients = patients.filter(search_name__trigram_word_similar=Fold(Value(query))) if fuzzy else prefix
    if cursor is not None:
        patients = patients.filter(
            Q(search_name__gt=cursor.search_name) | Q(search_name=cursor.search_name, pk__gt=cursor.pk)
        )
    patients = patients.order_by("search_name", "pk")
    if fuzzy:
        with transaction.atomic(), connection.cursor() as db:
            db.execute("SET LOCAL pg_trgm.word_similarity_threshold = %s", [NAME_SIMILARITY])
            rows = list(patients[: limit + 1])
    else:
        rows = list(patients[: limit + 1])
    last = rows[limit - 1] if len(rows) > limit else None
    next_cursor = Cursor(last.search_name, last.pk, fuzzy).encode() if last else None
    return PatientPage(patients=rows[:limit], next_cursor=next_cursor, kind=kind)


def patient_possible_duplicates(
    *, first_name: str, last_name: str, birth_date: date | None, email: str, phone: str, exclude_pk: int | None = None
) -> list[Patient]:
    """Existing patients with the same name and date of birth, or the same email or phone."""
    conditions = Q()
    if birth_date and first_name and last_name:
        conditions |= Q(birth_date=birth_date, search_name=Fold(Value(f"{last_name.strip()} {first_name.strip()}")))
    if email:
        conditions |= Q(email__iexact=email.strip())
    if phone:
        conditions |= Q(phone=phone)
    if not conditions:
        return []
    found = Patient.objects.filter(conditions)
    if exclude_pk:
        found = found.exclude(pk=exclude_pk)
    return list(found.order_by("search_name", "pk")[:10])


def consent_current(patient: Patient, kind: str) -> Consent | None:
    """The patient's valid consent for a kind: signed to the latest text version, not withdrawn."""
    latest = ConsentText.objects.filter(kind=kind).order_by("-version").values_list("pk", flat=True).first()
    if latest is None:
        return None
    return (
        Consent.objects.filter(patient=patient, text_id=latest, withdrawal__isnull=True)
        .select_related("text", "witness")
        .order_by("-signed_at")
        .first()
    )


@dataclass(frozen=True)
class HistoryItem:
    kind: str  # condition, medication, allergy
    label: str
    detail: str
    since: datetime  # first recorded in the unbroken run of versions that still has it
    confirmed_at: datetime  # the latest version's time: every version is a full confirmation


@dataclass(frozen=True)
class HistorySummary:
    current: MedicalHistory | None
    items: list[HistoryItem]
    versions: list[MedicalHistory]

    @property
    def confirmed_today(self) -> bool:
        from django.utils import timezone

        return self.current is not None and timezone.localdate(self.current.recorded_at) == timezone.localdate()


def history_summary(patient: Patient) -> HistorySummary:
    """The current history with, per item, since when it is recorded and when last confirmed."""
    versions = list(
        MedicalHistory.objects.filter(patient=patient)
        .select_related("recorded_by")
        .prefetch_related("medications", "allergies__allergen")
        .order_by("-version")
    )
    if not versions:
        return HistorySummary(current=None, items=[], versions=[])
    current = versions[0]
    labels = dict(Condition.choices)
    flag_labels = dict(MedicationFlag.choices)

    def keys(version: MedicalHistory) -> dict[tuple[str, str], tuple[str, str]]:
        found: dict[tuple[str, str], tuple[str, str]] = {}
        for code in version.conditions:
            found[("condition", code)] = (str(labels.get(code, code)), "")
        for medication in version.medications.all():
            detail = ", ".join(str(flag_labels.get(f, f)) for f in medication.flags)
            found[("medication", medication.name.lower())] = (medication.name, detail)
        for allergy in version.allergies.all():
            found[("allergy", allergy.allergen.code)] = (str(allergy.allergen), allergy.reaction)
        return found

    per_version = [keys(v) for v in versions]
    items = []
    for key, (label, detail) in per_version[0].items():
        since = versions[0].recorded_at
        for version, found in zip(versions[1:], per_version[1:], strict=True):
            if key not in found:
                break
            since = version.recorded_at
        items.append(
            HistoryItem(kind=key[0], label=label, detail=detail, since=since, confirmed_at=current.recorded_at)
        )
    return HistorySummary(current=current, items=items, versions=versions)


@dataclass(frozen=True)
class TimelineEntry:
    at: datetime
    kind: str  # created, history, consultation, consent, photo …
    title: str
    detail: str = ""
    url: str = ""


def patient_timeline(patient: Patient, *, clinical: bool, limit: int = 50) -> list[TimelineEntry]:
    """What happened to this patient, newest first. Clinical entries only for clinical roles.

    One query per kind of entry, whatever the number of entries.
    """
    from django.urls import reverse
    from django.utils.translation import gettext as _

    from patients.models import Consultation

    entries = [
        TimelineEntry(patient.created_at, "created", _("Record created"), str(patient.created_by)),
    ]
    if clinical:
        for consultation in Consultation.objects.filter(patient=patient).select_related("practitioner")[:limit]:
            entries.append(
                TimelineEntry(
                    consultation.held_at,
                    "consultation",
                    _("Consultation"),
                    f"{consultation.practitioner} · {', '.join(consultation.concern_labels)}",
                    reverse("consultation_detail", args=[patient.pk, consultation.pk]),
                )
            )
        for version in MedicalHistory.objects.filter(patient=patient).select_related("recorded_by")[:limit]:
            title = _("History confirmed unchanged") if version.is_confirmation_only else _("Medical history updated")
            entries.append(
                TimelineEntry(
                    version.recorded_at,
                    "history",
                    title,
                    f"v{version.version} · {version.recorded_by}",
                    reverse("history_detail", args=[patient.pk]),
                )
            )
        for consent in Consent.objects.filter(patient=patient).select_related("text", "witness")[:limit]:
            entries.append(
                TimelineEntry(
                    consent.signed_at,
                    "consent",
                    _("Consent signed: %(text)s") % {"text": consent.text},
                    str(consent.witness),
                    reverse("consent_capture", args=[patient.pk, consent.text.kind]),
                )
            )
        for photo in patient_photos(patient)[:limit]:
            entries.append(
                TimelineEntry(
                    photo.taken_at,
                    "photo",
                    _("Photo"),
                    " · ".join(part for part in (photo.area, photo.view) if part),
                    reverse("photo_list", args=[patient.pk]),
                )
            )
    entries.sort(key=lambda e: e.at, reverse=True)
    return entries[:limit]


def patient_photos(patient: Patient) -> QuerySet[ClinicalPhoto]:
    """The patient's visible photos, newest first."""
    return ClinicalPhoto.objects.filter(patient=patient, hidden_at__isnull=True).order_by("-taken_at")
