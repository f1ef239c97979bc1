from __future__ import annotations

from datetime import date

import pytest

from patients.models import Patient
from patients.selectors import Cursor, patient_search
from tests.factories import PatientFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def people(manager) -> dict[str, Patient]:
    return {
        "helene": PatientFactory(
            first_name="Hélène",
            last_name="Dubois",
            birth_date=date(1984, 3, 12),
            phone="+33612345678",
            email="helene.dubois@example.fr",
            created_by=manager,
        ),
        "francois": PatientFactory(
            first_name="François", last_name="Lefèvre", birth_date=date(1975, 7, 1), created_by=manager
        ),
        "marie": PatientFactory(
            first_name="Marie", last_name="Duboisier", birth_date=date(1990, 1, 5), created_by=manager
        ),
        "zoe": PatientFactory(first_name="Zoé", last_name="Martin", birth_date=date(2001, 11, 30), created_by=manager),
    }


def names(query: str) -> set[str]:
    return {p.first_name for p in patient_search(query).patients}


def test_prefix(people) -> None:
    assert names("dubo") == {"Hélène", "Marie"}


def test_accent_insensitive_both_ways(people) -> None:
    assert "François" in names("francois lefevre") | names("lefevre")
    assert names("Lefèvre") == names("lefevre") == {"François"}
    assert "Hélène" in names("dubois hélène")


def test_first_name_word_prefix(people) -> None:
    assert names("helene") == {"Hélène"}


def test_typo(people) -> None:
    assert "Hélène" in names("Dubios")
    assert "François" in names("Lefebvre")
    assert patient_search("Dubios").kind == "similar_name"


def test_exact_prefix_hides_mere_look_alikes(people) -> None:
    page = patient_search("dubois")
    assert page.kind == "name"
    assert {p.first_name for p in page.patients} == {"Hélène", "Marie"}


def test_date_of_birth(people) -> None:
    assert names("12/03/1984") == {"Hélène"}
    assert names("1984-03-12") == {"Hélène"}


def test_phone_in_national_or_international_format(people) -> None:
    assert names("06 12 34 56 78") == {"Hélène"}
    assert names("+33612345678") == {"Hélène"}


def test_email_case_insensitive(people) -> None:
    assert names("Helene.Dubois@Example.fr") == {"Hélène"}


def test_archived_are_hidden_unless_asked(people) -> None:
    Patient.objects.filter(pk=people["zoe"].pk).update(status="archived", archived_at="2026-01-01T00:00Z")
    assert "Zoé" not in names("martin")
    assert {p.first_name for p in patient_search("martin", include_archived=True).patients} == {"Zoé"}


def test_keyset_pagination_walks_every_patient_once(manager) -> None:
    for n in range(23):
        PatientFactory(last_name="Garnier", first_name=f"Prénom{n:02d}", created_by=manager)
    seen: list[int] = []
    cursor = None
    for _ in range(10):
        page = patient_search("garnier", cursor=cursor, limit=10)
        seen += [p.pk for p in page.patients]
        if not page.next_cursor:
            break
        cursor = Cursor.decode(page.next_cursor)
    assert len(seen) == 23 == len(set(seen))


def test_search_sql_uses_no_offset_and_no_count(people, django_assert_max_num_queries) -> None:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as ctx:
        patient_search("dubois", cursor=Cursor("a", 1))
    sql = " ".join(q["sql"] for q in ctx.captured_queries).upper()
    assert "OFFSET" not in sql and "COUNT(" not in sql


# --- scale: keyset order, index use, query counts at two sizes ---------------------------------


def test_keyset_walks_identical_names_once_each(manager) -> None:
    """Ties on the folded name are broken by id: the cursor's ``>=`` start and its OR must
    neither skip nor repeat a namesake."""
    for _ in range(7):
        PatientFactory(last_name="Martin", first_name="Zoé", created_by=manager)
    PatientFactory(last_name="Martin", first_name="Anaïs", created_by=manager)
    seen: list[int] = []
    cursor = None
    while True:
        page = patient_search("", cursor=cursor, limit=3)
        seen += [p.pk for p in page.patients]
        if not page.next_cursor:
            break
        cursor = Cursor.decode(page.next_cursor)
    expected = list(Patient.objects.order_by("search_name", "pk").values_list("pk", flat=True))
    assert seen == expected and len(seen) == 8


def test_deep_page_starts_the_index_scan_at_the_cursor(people, manager) -> None:
    """Page 20,000 must cost what page 1 costs: the cursor is an index condition on
    patient_name_order (one row comparison), not a filter over the rows before it, nor over
    the namesakes of the cursor's row (B5)."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    namesakes = [PatientFactory(last_name="Dubois", first_name="Hélène", created_by=manager) for _ in range(12)]
    cursor_at = sorted([people["helene"], *namesakes], key=lambda p: p.pk)[10]
    with CaptureQueriesContext(connection) as ctx:
        page = patient_search("", cursor=Cursor("dubois helene", cursor_at.pk))
    assert [p.pk for p in page.patients][:2] == sorted(
        p.pk for p in [people["helene"], *namesakes] if p.pk > cursor_at.pk
    )
    sql = ctx.captured_queries[-1]["sql"]
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute("SET LOCAL enable_bitmapscan = off")
        cursor.execute("EXPLAIN ANALYZE " + sql)
        plan = "\n".join(row[0] for row in cursor.fetchall())
    assert "patient_name_order" in plan
    index_condition = next(line for line in plan.splitlines() if "Index Cond" in line)
    assert "ROW(" in index_condition and "dubois helene" in index_condition
    assert "Rows Removed by Filter" not in plan, plan  # no namesake before the cursor read and dropped


@pytest.mark.parametrize("query", ["martin", "ma", "dubios", "12/03/1984", ""])
def test_search_query_count_does_not_grow_with_matches(manager, query) -> None:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    PatientFactory(first_name="Hélène", last_name="Dubois", birth_date=date(1984, 3, 12), created_by=manager)
    PatientFactory(first_name="Zoé", last_name="Martin", birth_date=date(1984, 3, 12), created_by=manager)

    def count() -> int:
        with CaptureQueriesContext(connection) as ctx:
            patient_search(query)
        return len(ctx.captured_queries)

    few = count()
    for n in range(40):
        PatientFactory(first_name=f"Léa{n}", last_name=["Martin", "Dubois"][n % 2], birth_date=date(1984, 3, 12),
                       created_by=manager)  # fmt: skip
    assert count() == few
    # Similar names: the prefix query; SET LOCAL and the surname dictionary in a savepoint
    # (here, inside the test's transaction: SAVEPOINT and RELEASE are counted); the patients.
    assert few == (1 if query != "dubios" else 6)


def test_short_input_matches_surnames_only(people) -> None:
    # "ma" would match "Marie" anywhere; one or two letters are a surname's first letters.
    assert names("ma") == {"Zoé"}
    assert names("he") == set()
    assert names("hele") == {"Hélène"}


def test_similar_names_come_closest_first_on_one_page(people, manager) -> None:
    PatientFactory(first_name="Ana", last_name="Duboisson", created_by=manager)
    page = patient_search("dubios")
    assert page.kind == "similar_name" and page.next_cursor is None
    assert page.patients[0].last_name in {"Dubois", "Duboisier", "Duboisson"}
    assert patient_search("dubios", cursor=Cursor("dubois", 1, fuzzy=True)).patients == []
