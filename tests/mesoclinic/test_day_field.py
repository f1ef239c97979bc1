"""``DayField``: the one place that refuses dates no clinic books or reports on."""

from __future__ import annotations

import pytest
from django.utils import translation

from mesoclinic.forms import AuditFilterForm, DayField
from treatments.forms.schedule import NoShowFilterForm


@pytest.mark.parametrize("text", ["9999-12-31", "0001-01-01", "1899-12-31", "3000-01-01"])
def test_years_outside_the_range_are_refused_with_a_clear_error(text: str) -> None:
    from django.core.exceptions import ValidationError

    with pytest.raises(ValidationError) as refused:
        DayField().clean(text)
    assert refused.value.messages == ["Enter a date between 1900 and 2999."]


@pytest.mark.parametrize("text", ["1900-01-01", "2026-11-24", "2999-12-31"])
def test_years_inside_the_range_pass(text: str) -> None:
    assert DayField().clean(text).isoformat() == text


@pytest.mark.django_db
@pytest.mark.parametrize(("form_class", "field"), [(AuditFilterForm, "date_to"), (NoShowFilterForm, "until")])
def test_filter_forms_show_the_error_next_to_the_field_in_french(form_class: type, field: str) -> None:
    with translation.override("fr"):
        form = form_class({field: "9999-12-31"})
        assert not form.is_valid()
        assert form.errors[field] == ["Saisissez une date comprise entre 1900 et 2999."]
