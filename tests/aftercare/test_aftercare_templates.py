"""The aftercare advice: seeded in English and French, assembled per session, edited by
managers (audited)."""

from __future__ import annotations

import pytest
from django.apps import apps
from django.test import Client
from django.urls import reverse

from aftercare.content import TEMPLATE_KEYS, aftercare_keys
from aftercare.models import AftercareTemplate
from aftercare.seed import AFTERCARE_SEED, aftercare_templates_seed

EDIT = "aftercare_template_edit"


def test_the_migration_seeds_every_section_in_english_and_french(db) -> None:
    rows = set(AftercareTemplate.objects.values_list("key", "language"))
    assert rows == {(entry["key"], language) for entry in AFTERCARE_SEED for language in ("en", "fr")}
    general = AftercareTemplate.objects.get(key="general", language="en").body
    for advice in ("8 hours", "saunas, hot baths, intense exercise and sun", "Arnica or a soothing cream"):
        assert advice in general
    warning = AftercareTemplate.objects.get(key="warning_signs", language="fr").body
    assert "grosseur" in warning and "fièvre" in warning


def test_seeding_again_keeps_a_managers_edit(db) -> None:
    AftercareTemplate.objects.filter(key="general", language="en").update(body="Edited by the clinic.")
    AftercareTemplate.objects.filter(key="area:hands", language="fr").delete()
    assert aftercare_templates_seed() == 1
    assert AftercareTemplate.objects.get(key="general", language="en").body == "Edited by the clinic."
    assert AftercareTemplate.objects.filter(key="area:hands", language="fr").exists()


def test_sections_are_general_first_one_per_area_kind_then_concern_then_warning_signs() -> None:
    keys = aftercare_keys(areas=["face", "chin", "abdomen", "thighs", "scalp"], concern="fat_reduction")
    assert keys == ["general", "area:face", "area:body", "area:scalp", "concern:fat_reduction", "warning_signs"]
    assert aftercare_keys(areas=[], concern="unknown") == ["general", "warning_signs"]
    assert set(keys) <= set(TEMPLATE_KEYS)


# --- the editor -------------------------------------------------------------------------------


def test_a_manager_sees_every_section_and_language(manager_client: Client) -> None:
    AftercareTemplate.objects.filter(key="area:hands", language="fr").delete()
    page = manager_client.get(reverse("aftercare_templates")).content.decode()
    assert page.count('data-testid="template-row"') == len(TEMPLATE_KEYS)
    assert "Après votre séance" in page and "After your session" in page
    assert "missing: English is used" in page
    assert reverse(EDIT, args=["area:hands", "fr"]) in page


@pytest.mark.parametrize("who", ["practitioner_client", "front_desk_client"])
def test_only_managers_edit_the_advice(request, db, who: str) -> None:
    client: Client = request.getfixturevalue(who)
    assert client.get(reverse("aftercare_templates")).status_code == 403
    url = reverse(EDIT, args=["general", "en"])
    assert client.get(url).status_code == 403
    assert client.post(url, {"title": "x", "body": "y", "is_active": "on"}).status_code == 403
    assert AftercareTemplate.objects.get(key="general", language="en").title == "After your session"


def test_anonymous_visitors_are_sent_to_sign_in(anonymous_client: Client, db) -> None:
    response = anonymous_client.get(reverse("aftercare_templates"))
    assert response.status_code == 302 and "/accounts/login/" in response.url


def test_a_manager_edits_a_section_and_the_change_is_audited(manager_client: Client, manager) -> None:
    row = AftercareTemplate.objects.get(key="area:face", language="fr")
    url = reverse(EDIT, args=["area:face", "fr"])
    assert "Ne vous maquillez pas" in manager_client.get(url).content.decode()
    response = manager_client.post(url, {"title": "Visage et menton", "body": "Pas de maquillage pendant 48 h."})
    assert response.status_code == 302 and response.url == reverse("aftercare_templates")
    row.refresh_from_db()
    assert (row.title, row.body, row.is_active) == ("Visage et menton", "Pas de maquillage pendant 48 h.", False)
    event = apps.get_model("aftercare", "AftercareTemplateEvent").objects.filter(pgh_obj=row).order_by("pgh_id").last()
    assert event.body == "Pas de maquillage pendant 48 h."
    assert event.pgh_context is not None and event.pgh_context.metadata.get("user") == manager.pk


def test_a_missing_translation_can_be_written(manager_client: Client) -> None:
    AftercareTemplate.objects.filter(key="area:hands", language="fr").delete()
    url = reverse(EDIT, args=["area:hands", "fr"])
    assert "Protégez vos mains" in manager_client.get(url).content.decode()  # the built-in text to start from
    response = manager_client.post(url, {"title": "Mains", "body": "Protégez vos mains.", "is_active": "on"})
    assert response.status_code == 302
    row = AftercareTemplate.objects.get(key="area:hands", language="fr")
    assert row.is_active and row.position == 23


@pytest.mark.parametrize(
    ("data", "error"),
    [
        ({"title": "", "body": "Something"}, "This field is required."),
        ({"title": "Face", "body": "   "}, "This field is required."),
        ({"title": "Face", "body": "x" * 4001}, "at most 4000 characters"),
    ],
)
def test_bad_input_is_refused_next_to_the_field(manager_client: Client, data: dict, error: str) -> None:
    before = AftercareTemplate.objects.get(key="area:face", language="en").body
    response = manager_client.post(reverse(EDIT, args=["area:face", "en"]), data)
    assert response.status_code == 400 and error in response.content.decode()
    assert AftercareTemplate.objects.get(key="area:face", language="en").body == before


@pytest.mark.parametrize(("key", "language"), [("area:elbow", "en"), ("general", "de")])
def test_unknown_sections_and_languages_are_404(manager_client: Client, key: str, language: str) -> None:
    assert manager_client.get(reverse(EDIT, args=[key, language])).status_code == 404
