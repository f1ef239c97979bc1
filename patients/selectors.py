"""Reads of patients: search with keyset pagination, duplicates, the patient page."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime

import phonenumbers
from django.conf import settings
from django.contrib.postgres.search import TrigramWordSimilarity
from django.db import connection, transaction
from django.db.models import F, Func, Q, QuerySet, TextField, Value
from django.db.models.functions import Collate, Concat, Left
from django.db.models.lookups import GreaterThan

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
# Typo search through the surname dictionary (B2): pg_trgm similarity of a misspelt surname
# to the right one can be low ("dubios"/"dubois": 0.27); up to SURNAME_CANDIDATES of the
# most similar are ranked by edit distance, and the first SIMILAR_SURNAMES shown.
SURNAME_SIMILARITY = 0.25
SURNAME_CANDIDATES = 50
SIMILAR_SURNAMES = 5
SURNAME_EDITS = 2  # farther surnames are not a typo of it: every whole name is compared instead
# Shorter inputs match surnames by prefix only: "% ber" is in too many names, or too few,
# for either of PostgreSQL's plans to stay fast at a million patients (B2).
WORD_PREFIX_MIN = 4
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
        if not raw or ":" not in raw or raw[0] not in "fp" or "\x00" in raw:
            return None
        pk, _, name = raw[1:].partition(":")
        return cls(name, int(pk), raw[0] == "f") if pk.isdecimal() and len(pk) < 19 else None


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

    A name matches by prefix of the surname, or from four letters on, by prefix of any
    name word, accents and case folded; when nothing matches that way (and the query has
    three letters or more), the closest similar names (typos) are shown instead, one page
    of them. Ordered by folded name then id, paginated by keyset (no OFFSET, no COUNT).
    """
    # PostgreSQL text cannot hold NUL: a pasted one is a space, like other invisible characters.
    query = " ".join(query.replace("\x00", " ").split())[:100]
    patients = _base(include_archived)
    if not query:
        return _result(_page(patients, cursor, limit), limit, "all")
    if (born := _as_date(query)) is not None:
        return _result(_page(patients.filter(birth_date=born), cursor, limit), limit, "birth_date")
    if "@" in query:
        matching = patients.annotate(email_folded=Fold("email")).filter(email_folded=Fold(Value(query)))
        return _result(_page(matching, cursor, limit), limit, "email")
    if (phone := _as_phone(query)) is not None:
        return _result(_page(patients.filter(phone=phone), cursor, limit), limit, "phone")
    if cursor is not None and cursor.fuzzy:
        return _result([], limit, "similar_name")  # similar names are one page
    rows = _name_prefix(patients, query, cursor, limit)
    if rows or cursor is not None or len(query) < 3:
        return _result(rows, limit, "name")
    # Nothing starts with it: a typo, most likely. One more query, only then.
    return _result(_similar_names(patients, query, limit), limit, "similar_name")


def _result(rows: list[Patient], limit: int, kind: str) -> PatientPage:
    last = rows[limit - 1] if len(rows) > limit else None
    next_cursor = Cursor(last.search_name, last.pk).encode() if last else None
    return PatientPage(patients=rows[:limit], next_cursor=next_cursor, kind=kind)


def _in_name_order(patients: QuerySet[Patient]) -> QuerySet[Patient]:
    # Byte order of the folded name: the order of the patient_name_order index (patients
    # migration 0007), in which a surname prefix is a range of that index too.
    return patients.alias(name_c=Collate("search_name", "C"))


def _after(patients: QuerySet[Patient], cursor: Cursor | None) -> QuerySet[Patient]:
    """The rows after the cursor, as one row comparison on the name-order index's two
    columns: PostgreSQL starts the index scan exactly there (page 20,000 costs what page 1
    costs). ``name >= … AND (name > … OR id > …)`` started at the first namesake of the
    cursor's row and read and dropped the namesakes before it (B5 in docs/benchmarks.md).
    """
    if cursor is None:
        return patients
    row = Func(F("name_c"), F("pk"), function="ROW", output_field=TextField())
    cursor_row = Func(Value(cursor.search_name), Value(cursor.pk), function="ROW", output_field=TextField())
    return patients.filter(GreaterThan(row, cursor_row))


def _page(patients: QuerySet[Patient], cursor: Cursor | None, limit: int) -> list[Patient]:
    """``limit + 1`` rows after the cursor, in (folded name, id) order."""
    return list(_after(_in_name_order(patients), cursor).order_by("name_c", "pk")[: limit + 1])


def _name_prefix(patients: QuerySet[Patient], query: str, cursor: Cursor | None, limit: int) -> list[Patient]:
    """Surname prefix, and from WORD_PREFIX_MIN letters on any word's prefix, in one query.

    Two ordered, limited branches in a UNION, each with its own index: the surname prefix
    is a range of patient_name_order; the word prefix ("% hel") goes through the trigram
    index. One OR in a single WHERE made PostgreSQL walk the name order filtering row by
    row, a second at a million patients for "de" (B2 in docs/benchmarks.md).
    """
    folded = Fold(Value(query))
    ordered = _after(_in_name_order(patients), cursor)
    surname = ordered.filter(name_c__startswith=folded).order_by("name_c", "pk")[: limit + 1]
    if len(query) < WORD_PREFIX_MIN:
        return list(surname)
    word = ordered.filter(search_name__contains=Fold(Value(" " + query))).order_by("name_c", "pk")[: limit + 1]
    both = surname.annotate(order_name=Collate("search_name", "C")).union(
        word.annotate(order_name=Collate("search_name", "C"))
    )
    return list(both.order_by("order_name", "id")[: limit + 1])


def _similar_names(patients: QuerySet[Patient], query: str, limit: int) -> list[Patient]:
    """The patients of the surnames closest to a misspelt one: one page, no cursor.

    The misspelt surname (the query's first word, or first two for "le goff") is looked up
    in the surname dictionary, then the patients of the closest few surnames are read
    through the name-order index; with a first name typed too, closest first within each
    surname. When no surname is near (a first name typed alone), every name is compared.
    """
    words = query.split()
    near = _near_surnames([words[0], " ".join(words[:2])] if len(words) > 1 else [words[0]])
    if not near:
        return _similar_whole_names(patients, query, limit)
    found = _patients_of(patients, near, words, limit, first_letter=True)
    if not found and len(words) > 1:  # the first name's first letter was mistyped too
        found = _patients_of(patients, near, words, limit, first_letter=False)
    return found


def _patients_of(
    patients: QuerySet[Patient], near: list[tuple[str, int]], words: list[str], limit: int, first_letter: bool
) -> list[Patient]:
    """Patients of the near surnames, in their order, one UNION ALL of name-order ranges.

    With a first name typed after the surname, each range is narrowed to its first letter
    (``martin h``: a few hundred of 3,500 Martins at a million patients) and ranked by
    closeness to it."""
    branches = []
    for rank, (surname, head_words) in enumerate(near):
        rest = " ".join(words[head_words:])
        start: Value | Concat = Value(surname + " ")
        closeness: Value | TrigramWordSimilarity = Value(0.0)
        if rest:
            closeness = TrigramWordSimilarity(Fold(Value(rest)), "search_name")
            if first_letter:
                start = Concat(start, Left(Fold(Value(rest)), 1))
        branch = (
            _in_name_order(patients)
            .filter(name_c__startswith=start)
            .annotate(rank=Value(rank), closeness=closeness, order_name=Collate("search_name", "C"))
            .order_by("-closeness", "name_c", "pk")[:limit]
        )
        branches.append(branch)
    if len(branches) == 1:
        return list(branches[0])
    both = branches[0].union(*branches[1:], all=True)
    return list(both.order_by("rank", "-closeness", "order_name", "id")[:limit])


def _near_surnames(heads: list[str]) -> list[tuple[str, int]]:
    """The closest surnames to ``heads`` (the query's first word, and first two words), as
    (surname, how many query words it stands for), best first.

    The trigram index finds the candidates; they are then ranked by edit distance (a swap
    of two letters is one edit), ties going to the commoner surname: trigram similarity
    alone ranks "dubaac" level with "dubois" for "dubios".
    """
    with transaction.atomic(), connection.cursor() as db:
        db.execute("SET LOCAL pg_trgm.similarity_threshold = %s", [SURNAME_SIMILARITY])
        db.execute(
            """
            WITH head AS MATERIALIZED (
                -- Folded once: inlined, the fold would run again for every row rechecked.
                SELECT mesoclinic_fold(h.value) AS folded, h.words::int AS words
                FROM unnest(%s::text[]) WITH ORDINALITY AS h (value, words)
            )
            SELECT candidate.surname, candidate.patients, head.folded, head.words
            FROM head CROSS JOIN LATERAL (
                SELECT surname, patients FROM patients_surname
                WHERE surname %% head.folded AND patients > 0
                ORDER BY similarity(surname, head.folded) DESC, patients DESC, surname
                LIMIT %s
            ) AS candidate
            """,
            [heads, SURNAME_CANDIDATES],
        )
        rows = db.fetchall()
    best: dict[str, tuple[int, int, int]] = {}
    for surname, count, folded, head_words in rows:
        ranked = (_edits(folded, surname), -count, head_words)
        if ranked[0] <= SURNAME_EDITS:
            best[surname] = min(best.get(surname, ranked), ranked)
    order = sorted(best, key=lambda surname: (best[surname][:2], surname))
    return [(surname, best[surname][2]) for surname in order[:SIMILAR_SURNAMES]]


def _edits(a: str, b: str) -> int:
    """Edits from ``a`` to ``b``: a letter added, dropped or changed, or two neighbours swapped."""
    before, previous = [0] * (len(b) + 1), list(range(len(b) + 1))
    for i, letter in enumerate(a, 1):
        row = [i] + [0] * len(b)
        for j, other in enumerate(b, 1):
            row[j] = min(previous[j] + 1, row[j - 1] + 1, previous[j - 1] + (letter != other))
            if i > 1 and j > 1 and letter == b[j - 2] and a[i - 2] == other:
                row[j] = min(row[j], before[j - 2] + 1)
        before, previous = previous, row
    return previous[-1]


def _similar_whole_names(patients: QuerySet[Patient], query: str, limit: int) -> list[Patient]:
    """The closest whole names first, every patient compared (no surname near the query).

    Ordered by closeness, which is also what keeps PostgreSQL on the trigram index: in name
    order it walked the whole name index testing every row (over a second at a million
    patients, B2 in docs/benchmarks.md).
    """
    folded = Fold(Value(query))
    similar = (
        patients.filter(search_name__trigram_word_similar=folded)
        .annotate(closeness=TrigramWordSimilarity(folded, "search_name"))
        .order_by("-closeness", "search_name", "pk")
    )
    with transaction.atomic(), connection.cursor() as db:
        db.execute("SET LOCAL pg_trgm.word_similarity_threshold = %s", [NAME_SIMILARITY])
        return list(similar[:limit])


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
