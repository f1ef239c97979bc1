from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from django import forms
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from mesoclinic.access import Role
from mesoclinic.forms import DayField
from mesoclinic.models import Location, Room, User
from patients.models import Patient
from treatments.models import Appointment


def practitioners() -> Any:
    return User.objects.filter(is_active=True, groups__name=Role.PRACTITIONER.value).order_by("full_name")


class BookingForm(forms.Form):
    patient = forms.IntegerField(label=_("Patient number"), min_value=1, required=False)
    kind = forms.ChoiceField(label=_("Kind"), choices=Appointment.Kind.choices, initial=Appointment.Kind.TREATMENT)
    location = forms.ModelChoiceField(label=_("Location"), queryset=Location.objects.filter(is_active=True))
    practitioner = forms.ModelChoiceField(label=_("Practitioner"), queryset=User.objects.none())
    room = forms.ModelChoiceField(
        label=_("Room"), queryset=Room.objects.filter(is_active=True).select_related("location"), required=False
    )
    day = DayField(label=_("Day"), widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"))
    start = forms.TimeField(
        label=_("Start"), widget=forms.TimeInput(attrs={"type": "time", "step": 900}, format="%H:%M")
    )
    minutes = forms.IntegerField(label=_("Duration (minutes)"), min_value=5, max_value=480, required=False)
    note = forms.CharField(label=_("Note for the team (no clinical details)"), max_length=300, required=False)
    plan = forms.IntegerField(required=False, widget=forms.HiddenInput)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["practitioner"].queryset = practitioners()

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        number = data.get("patient")
        if number:
            data["patient_obj"] = Patient.objects.filter(pk=number).first()
            if data["patient_obj"] is None:
                self.add_error("patient", _("No patient has this number."))
        else:
            data["patient_obj"] = None
        location, day, start = data.get("location"), data.get("day"), data.get("start")
        if location and day and start:
            from zoneinfo import ZoneInfo

            data["starts_at"] = datetime.combine(day, start, tzinfo=ZoneInfo(location.time_zone))
            if data["starts_at"] < timezone.now() - timedelta(minutes=5):
                self.add_error("start", _("This time has passed."))
        data["plan_obj"] = None
        if data.get("plan"):
            from treatments.models import TreatmentPlan

            data["plan_obj"] = TreatmentPlan.objects.filter(pk=data["plan"]).first()
        room = data.get("room")
        if room and location and room.location_id != location.pk:
            self.add_error("room", _("This room is at another location."))
        return data
