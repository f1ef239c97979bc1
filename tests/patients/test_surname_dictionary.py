"""The surname dictionary (``patients_surname``) and the typo search that reads it (B2).

The dictionary is kept by statement-level triggers; these tests write patients the ways
the app and its tools do (one by one, in bulk, renamed, queryset updates) and compare it
with a count made from the patient table itself.
"""

from __future__ import annotations

import pytest
from django.db import connection
from django.db.models import Count
from django.test.utils import CaptureQueriesContext

from patients.models import Fold, Patient, Surname
from patients.selectors import _edits, patient_search
from tests.factories import PatientFactory

pytestmark = pytest.mark.django_db


def _dictionary() -> dict[str, int]:
    return dict(Surname.objects.filter(patients__gt=0).values_list("surname", "patients"))


def _counted() -> dict[str, int]:
    rows = Patient.objects.annotate(folded=Fold("last_name")).values("folded").annotate(n=Count("pk"))
    return {row["folded"]: row["n"] for row in rows}


def test_registrations_renames_and_bulk_writes_keep_the_counts(manager) -> None:
    helene = PatientFactory(last_name="Dubois", first_name="Hélène", created_by=manager)
    PatientFactory(last_name="DUBOIS", first_name="Marc", created_by=manager)
    PatientFactory(last_name="Lefèvre", first_name="François", created_by=manager)
    assert _dictionary() == {"dubois": 2, "lefevre": 1} == _counted()

    helene.last_name = "Dubois-Martin"  # a rename: one fewer Dubois, a new surname
    helene.save()
    assert _dictionary() == {"dubois": 1, "lefevre": 1, "dubois-martin": 1}

    Patient.objects.bulk_create(
        PatientFactory.build(last_name=name, created_by=manager) for name in ["Martin"] * 3 + ["Lefevre"]
    )
    Patient.objects.filter(last_name="Martin").update(city="Lyon")  # no surname changes: no count moves
    assert _dictionary() == {"dubois": 1, "lefevre": 2, "dubois-martin": 1, "martin": 3} == _counted()

    Patient.objects.filter(last_name="Martin").update(last_name="Bernard")
    assert _dictionary() == _counted() == {"dubois": 1, "lefevre": 2, "dubois-martin": 1, "bernard": 3}
    # A surname nobody bears any more stays, at 0, and is never offered.
    assert Surname.objects.get(surname="martin").patients == 0
    assert all(p.last_name != "Martin" for p in patient_search("martn").patients)


def test_a_rolled_back_registration_leaves_no_count(manager) -> None:
    from django.db import transaction

    with pytest.raises(RuntimeError), transaction.atomic():
        PatientFactory(last_name="Rollback", created_by=manager)
        raise RuntimeError
    assert "rollback" not in _dictionary()


@pytest.mark.parametrize(
    ("a", "b", "edits"),
    [("dubios", "dubois", 1), ("dubis", "dubois", 1), ("duboas", "dubois", 1), ("marein", "marin", 1),
     ("bernrad", "bernard", 1), ("martin", "martin", 0), ("", "abc", 3), ("abc", "", 3), ("ab", "ba", 1),
     ("lefvere", "lefevre", 1), ("heleen", "cheleet", 2)],
)  # fmt: skip
def test_edits_count_a_swap_of_neighbours_as_one(a: str, b: str, edits: int) -> None:
    assert _edits(a, b) == edits


def test_a_typo_finds_the_nearest_surname_not_the_most_trigram_alike(manager) -> None:
    """Trigram similarity ranks "dubaac" level with "dubois" for "dubios" (0.27 each); the
    edit distance (one swap) puts Dubois first, and a tie goes to the commoner surname."""
    for name in ["Dubaac", "Dubaan", "Dubiat", "Dubos"]:
        PatientFactory(last_name=name, created_by=manager)
    PatientFactory(last_name="Dubois", first_name="Hélène", created_by=manager)
    page = patient_search("dubios")
    assert page.kind == "similar_name"
    assert page.patients[0].last_name == "Dubois"
    # Dubos is one edit from "dubios" too (a letter dropped): the commoner one comes first.
    for _ in range(2):
        PatientFactory(last_name="Dubos", created_by=manager)
    assert [p.last_name for p in patient_search("dubios").patients][:3] == ["Dubos"] * 3


def test_a_typo_in_the_surname_with_a_first_name_ranks_by_the_first_name(manager) -> None:
    for first in ["Agnès", "Hugo", "Henri", "Zoé"]:
        PatientFactory(last_name="Dubois", first_name=first, created_by=manager)
    helene = PatientFactory(last_name="Dubois", first_name="Hélène", created_by=manager)
    assert patient_search("dubios helene").patients[0] == helene
    assert patient_search("dubios heleen").patients[0] == helene
    # The first name's first letter mistyped as well: every Dubois, the closest first.
    assert patient_search("dubios jelene").patients[0] == helene
    assert patient_search("dubois jelene").patients[0] == helene


def test_two_word_surnames_are_looked_up_as_two_words(manager) -> None:
    yann = PatientFactory(last_name="Le Goff", first_name="Yann", created_by=manager)
    PatientFactory(last_name="Legrand", first_name="Yves", created_by=manager)
    assert patient_search("le gof yann").patients[0] == yann
    assert patient_search("le gof yann").kind == "similar_name"


def test_nothing_near_any_surname_compares_whole_names(manager) -> None:
    """A first name typed alone (and misspelt) is no surname's typo: every name is compared."""
    helene = PatientFactory(last_name="Zyx", first_name="Hélène", created_by=manager)
    page = patient_search("heleen")
    assert page.kind == "similar_name" and page.patients == [helene]


def test_the_dictionary_lookup_uses_its_trigram_index(manager) -> None:
    PatientFactory(last_name="Dubois", created_by=manager)
    with CaptureQueriesContext(connection) as ctx:
        patient_search("dubios")
    lookup = next(q["sql"] for q in ctx.captured_queries if "patients_surname" in q["sql"])
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute("EXPLAIN " + lookup)
        plan = "\n".join(row[0] for row in cursor.fetchall())
    assert "surname_trgm" in plan
