from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from treatments.catalogue_seed import catalogue_seed
from treatments.models import Ingredient, Lot, Product


@pytest.fixture
def seeded(db) -> None:
    catalogue_seed()


URLS = ["catalogue", "product_create", "ingredient_create"]


@pytest.mark.django_db
@pytest.mark.parametrize("name", URLS)
def test_anonymous_is_sent_to_login(anonymous_client: Client, name: str) -> None:
    assert anonymous_client.get(reverse(name)).status_code == 302


@pytest.mark.parametrize("name", URLS)
@pytest.mark.parametrize("persona", ["practitioner_client", "front_desk_client"])
def test_only_managers_keep_the_catalogue(request, persona: str, name: str) -> None:
    assert request.getfixturevalue(persona).get(reverse(name)).status_code == 403


@pytest.mark.parametrize("name", URLS)
def test_manager_pages(manager_client: Client, seeded, name: str) -> None:
    assert manager_client.get(reverse(name)).status_code == 200


def test_catalogue_shows_composition_lots_and_status(manager_client: Client, seeded) -> None:
    page = manager_client.get(reverse("catalogue")).content.decode()
    assert "Lipo PC 5%" in page and "Phosphatidylcholine" in page and "50 mg/mL" in page
    assert "expired" in page and "usable" in page
    assert "Soy" in page  # the ingredient's allergen


def test_create_product_with_composition(manager_client: Client, seeded) -> None:
    hyaluronic = Ingredient.objects.get(name__startswith="Hyaluronic")
    data = {
        "manufacturer": "Acme",
        "name": "HA 2%",
        "unit_volume_ml": "2.5",
        "is_active": "on",
        "c-TOTAL_FORMS": "2",
        "c-INITIAL_FORMS": "0",
        "c-MIN_NUM_FORMS": "0",
        "c-MAX_NUM_FORMS": "20",
        "c-0-ingredient": hyaluronic.pk,
        "c-0-mg_per_ml": "20",
    }
    response = manager_client.post(reverse("product_create"), data)
    assert response.status_code == 302
    product = Product.objects.get(name="HA 2%")
    assert [(c.ingredient_id, c.mg_per_ml) for c in product.components.all()] == [(hyaluronic.pk, 20)]


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"unit_volume_ml": "0"}, "between 0 and 500"),
        ({"unit_volume_ml": "abc"}, "Enter a number"),
        ({"name": ""}, "This field is required"),
    ],
)
def test_bad_product_input(manager_client: Client, seeded, changes: dict, message: str) -> None:
    data = {
        "manufacturer": "Acme",
        "name": "X",
        "unit_volume_ml": "2",
        "c-TOTAL_FORMS": "0",
        "c-INITIAL_FORMS": "0",
        **changes,
    }
    before = Product.objects.count()
    response = manager_client.post(reverse("product_create"), data)
    assert response.status_code == 400 and message in response.content.decode()
    assert Product.objects.count() == before


def test_add_lot_and_refuse_a_duplicate(manager_client: Client, seeded) -> None:
    product = Product.objects.get(name="Lipo PC 5%")
    data = {
        "lot_number": "lp-777",
        "expiry_date": (timezone.localdate() + timedelta(days=200)).isoformat(),
        "quantity_on_hand": "10",
        "supplier": "Lipolab",
        "received_at": timezone.localdate().isoformat(),
    }
    assert manager_client.post(reverse("lot_create", args=[product.pk]), data).status_code == 302
    assert Lot.objects.get(lot_number="LP-777").quantity_on_hand == 10
    again = manager_client.post(reverse("lot_create", args=[product.pk]), data)
    assert again.status_code == 400 and "already exists" in again.content.decode()


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"quantity_on_hand": "-1"}, "between 0 and 100000"),
        ({"lot_number": "<b>"}, "lot number printed"),
        ({"received_at": "2999-01-01"}, "in the future"),
    ],
)
def test_bad_lot_input(manager_client: Client, seeded, changes: dict, message: str) -> None:
    product = Product.objects.first()
    data = {
        "lot_number": "OK-1",
        "expiry_date": "2030-01-01",
        "quantity_on_hand": "1",
        "received_at": "2026-01-01",
        **changes,
    }
    before = Lot.objects.count()
    response = manager_client.post(reverse("lot_create", args=[product.pk]), data)
    assert response.status_code == 400 and message in response.content.decode()
    assert Lot.objects.count() == before


def test_recall_a_lot(manager_client: Client, seeded) -> None:
    lot = Lot.objects.filter(recalled_at__isnull=True).first()
    manager_client.post(reverse("lot_recall", args=[lot.pk]), {"reason": "Supplier notice 2026-11"})
    lot.refresh_from_db()
    assert lot.recalled_at is not None and lot.recall_reason == "Supplier notice 2026-11"
    assert not lot.usable_on(timezone.localdate())


def test_recall_needs_a_reason(manager_client: Client, seeded) -> None:
    lot = Lot.objects.filter(recalled_at__isnull=True).first()
    manager_client.post(reverse("lot_recall", args=[lot.pk]), {"reason": ""})
    lot.refresh_from_db()
    assert lot.recalled_at is None


def test_stock_cannot_go_negative_in_the_database(seeded) -> None:
    from django.db import IntegrityError, transaction

    lot = Lot.objects.first()
    with pytest.raises(IntegrityError), transaction.atomic():
        Lot.objects.filter(pk=lot.pk).update(quantity_on_hand=-1)


def test_catalogue_query_count_is_constant(manager_client: Client, seeded) -> None:
    def count() -> int:
        manager_client.get(reverse("catalogue"))
        with CaptureQueriesContext(connection) as ctx:
            manager_client.get(reverse("catalogue"))
        return len(ctx.captured_queries)

    before = count()
    for n in range(10):
        product = Product.objects.create(manufacturer="M", name=f"P{n}", unit_volume_ml=1)
        Lot.objects.create(product=product, lot_number=f"L{n}", expiry_date="2030-01-01")
    assert count() == before == 10


def test_manager_edits_a_dose_limit(manager_client: Client, seeded) -> None:
    from treatments.models import DoseLimit

    limit = DoseLimit.objects.get(ingredient__name="Lidocaine", kind="mg_per_kg")
    data = {
        "ingredient": limit.ingredient_id,
        "kind": "mg_per_kg",
        "value": "3.5",
        "severity": "block",
        "note": "clinic policy",
    }
    assert manager_client.post(reverse("dose_limit_edit", args=[limit.pk]), data).status_code == 302
    limit.refresh_from_db()
    assert limit.value == 3.5 and limit.note == "clinic policy"
    bad = manager_client.post(reverse("dose_limit_edit", args=[limit.pk]), {**data, "value": "-1"})
    assert bad.status_code == 400 and "positive limit" in bad.content.decode()
    duplicate = manager_client.post(reverse("dose_limit_create"), data)
    assert duplicate.status_code == 400
