from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from patients.models import ContraindicationRule


@pytest.mark.parametrize("persona", ["practitioner_client", "front_desk_client"])
def test_only_managers_edit_rules(request, persona: str) -> None:
    client = request.getfixturevalue(persona)
    assert client.get(reverse("rule_list")).status_code == 403
    assert client.get(reverse("rule_create")).status_code == 403


@pytest.mark.django_db
def test_anonymous_is_sent_to_login(anonymous_client: Client) -> None:
    assert anonymous_client.get(reverse("rule_list")).status_code == 302


def test_seeded_rules_are_listed(manager_client: Client) -> None:
    page = manager_client.get(reverse("rule_list")).content.decode()
    assert "Pregnancy" in page and "Gallstones" in page and "Soy" in page
    assert ContraindicationRule.objects.count() >= 20


def test_manager_changes_a_severity(manager_client: Client) -> None:
    rule = ContraindicationRule.objects.get(condition="keloid_tendency")
    data = {
        "trigger": "condition",
        "condition": "keloid_tendency",
        "category": "",
        "severity": "block",
        "reason_en": "Keloids: we do not treat.",
        "reason_fr": "Chéloïdes : pas de traitement.",
        "is_active": "on",
    }
    response = manager_client.post(reverse("rule_edit", args=[rule.pk]), data)
    assert response.status_code == 302
    rule.refresh_from_db()
    assert rule.severity == "block" and rule.reason_en == "Keloids: we do not treat."
    assert rule.events.count() == 2  # the change is audited


def test_a_rule_without_its_trigger_field_is_refused(manager_client: Client) -> None:
    before = ContraindicationRule.objects.count()
    response = manager_client.post(
        reverse("rule_create"),
        {"trigger": "medication", "severity": "warn", "reason_en": "x", "reason_fr": "x", "is_active": "on"},
    )
    assert response.status_code == 400
    assert "Choose what triggers this rule" in response.content.decode()
    assert ContraindicationRule.objects.count() == before
