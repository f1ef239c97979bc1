"""Input shape for side effects: record, follow up, resolve."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, cast

from django import forms
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.translation import gettext_lazy as _

from treatments.models import AdverseEvent, AdverseEventType, Lot, TreatmentSession
from treatments.selectors_adverse import patient_lot_choices, patient_session_choices
from treatments.services.adverse import TEXT_MAX

if TYPE_CHECKING:
    from patients.models import Patient

GRADE_CHOICES = [
    (1, _("1 · mild, no intervention")),
    (2, _("2 · moderate, minimal local intervention")),
    (3, _("3 · severe, medically significant")),
    (4, _("4 · life-threatening")),
    (5, _("5 · death")),
]
GRADE_ERRORS = {
    "required": _("Choose a grade from 1 (mild) to 5 (death)."),
    "invalid_choice": _("Choose a grade from 1 (mild) to 5 (death)."),
}
DATETIME_WIDGET = forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M")
DATE_WIDGET = forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")


def _plain_text(value: str, label: str) -> str:
    if any(ord(ch) < 32 and ch not in "\r\n\t" for ch in value):
        raise forms.ValidationError(_("Remove the control characters from %(field)s.") % {"field": label})
    return value.strip()


class SessionChoiceField(forms.ModelMultipleChoiceField):
    def label_from_instance(self, obj: TreatmentSession) -> str:
        return str(
            _("Session %(number)s · %(day)s · %(practitioner)s")
            % {
                "number": obj.number,
                "day": date_format(timezone.localtime(obj.performed_at).date(), "SHORT_DATE_FORMAT"),
                "practitioner": obj.practitioner,
            }
        )


class AdverseEventForm(forms.Form):
    type = forms.ChoiceField(
        label=_("Type"),
        choices=[("", "—"), *AdverseEventType.choices],
        error_messages={"required": _("Choose the type of side effect.")},
    )
    grade = forms.TypedChoiceField(
        label=_("Grade (CTCAE)"),
        coerce=int,
        choices=GRADE_CHOICES,
        widget=forms.RadioSelect,
        error_messages=GRADE_ERRORS,
    )
    onset_at = forms.DateTimeField(
        label=_("Onset"),
        widget=DATETIME_WIDGET,
        error_messages={"required": _("Enter when the side effect began.")},
    )
    reported_by = forms.ChoiceField(
        label=_("Reported by"),
        choices=AdverseEvent.Reporter.choices,
        initial=AdverseEvent.Reporter.PRACTITIONER,
        widget=forms.RadioSelect,
    )
    sessions = SessionChoiceField(
        label=_("Linked sessions"),
        queryset=TreatmentSession.objects.none(),
        required=False,
        widget=forms.CheckboxSelectMultiple,
        error_messages={"invalid_choice": _("Session %(value)s is not one of this patient's sessions.")},
    )
    lots = forms.ModelMultipleChoiceField(
        label=_("Lots used"),
        queryset=Lot.objects.none(),
        required=False,
        widget=forms.CheckboxSelectMultiple,
        error_messages={"invalid_choice": _("Lot %(value)s was not used on this patient.")},
    )
    description = forms.CharField(
        label=_("Description"), required=False, widget=forms.Textarea(attrs={"rows": 3}), max_length=TEXT_MAX
    )
    actions_taken = forms.CharField(
        label=_("Actions taken"), required=False, widget=forms.Textarea(attrs={"rows": 2}), max_length=TEXT_MAX
    )
    follow_up_due = forms.DateField(
        label=_("Next follow-up"),
        required=False,
        widget=DATE_WIDGET,
        help_text=_("Leave empty for 7 days after onset, or 2 days for grade 3 or more."),
    )

    def __init__(self, *args: Any, patient: Patient, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        sessions = cast(forms.ModelMultipleChoiceField, self.fields["sessions"])
        sessions.queryset = patient_session_choices(patient)
        lots = cast(forms.ModelMultipleChoiceField, self.fields["lots"])
        lots.queryset = patient_lot_choices(patient)

    def clean_description(self) -> str:
        return _plain_text(self.cleaned_data["description"], str(_("description")))

    def clean_actions_taken(self) -> str:
        return _plain_text(self.cleaned_data["actions_taken"], str(_("actions taken")))


class FollowUpForm(forms.Form):
    grade = forms.TypedChoiceField(
        label=_("Grade now"), coerce=int, choices=GRADE_CHOICES, widget=forms.RadioSelect, error_messages=GRADE_ERRORS
    )
    note = forms.CharField(
        label=_("What was seen or said"),
        widget=forms.Textarea(attrs={"rows": 3}),
        max_length=TEXT_MAX,
        error_messages={"required": _("Write what was seen or said at this follow-up.")},
    )
    follow_up_due = forms.DateField(
        label=_("Next follow-up"),
        required=False,
        widget=DATE_WIDGET,
        help_text=_("Leave empty for 7 days from today, or 2 days for grade 3 or more."),
    )

    def clean_note(self) -> str:
        return _plain_text(self.cleaned_data["note"], str(_("the note")))


class ResolveForm(forms.Form):
    resolution = forms.CharField(
        label=_("Resolution"),
        widget=forms.Textarea(attrs={"rows": 2}),
        max_length=TEXT_MAX,
        error_messages={"required": _("Describe how the side effect resolved.")},
    )
    resolved_at = forms.DateTimeField(
        label=_("Resolved on"),
        required=False,
        widget=DATETIME_WIDGET,
        help_text=_("Leave empty for now."),
    )

    def clean_resolution(self) -> str:
        return _plain_text(self.cleaned_data["resolution"], str(_("the resolution")))
