"""Input shape for the schedule settings; the services hold the rules."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from functools import cache
from typing import Any
from zoneinfo import ZoneInfo, available_timezones

from django import forms
from django.conf import settings
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from mesoclinic.forms import DayField
from mesoclinic.models import Location, User
from treatments.models import Appointment, Weekday

DEFAULT_INTERVALS = 2


@cache
def time_zone_choices() -> list[tuple[str, str]]:
    # Region/City names only: the legacy aliases (GB, Japan, localtime…) only confuse.
    return [(name, name) for name in sorted(available_timezones()) if "/" in name or name == "UTC"]


def _time_field(label: str, *, compact: bool = False) -> forms.TimeField:
    attrs: dict[str, Any] = {"type": "time", "step": 300}
    if compact:
        # Grid cells have no visible label of their own: the day and column say it.
        attrs.update({"class": "form-control form-control-sm", "aria-label": label})
    return forms.TimeField(label=label, required=False, widget=forms.TimeInput(attrs=attrs, format="%H:%M"))


class HoursGridForm(forms.Form):
    """A week as a grid: for each day up to ``intervals`` from–until pairs; a blank day is
    closed (or not worked). ``cleaned_data["rows"]`` holds ``(weekday, start, end)``."""

    def __init__(
        self, *args: Any, rows: list[tuple[int, time, time]] | None = None, intervals: int | None = None, **kwargs: Any
    ) -> None:
        rows = sorted(rows or [])
        per_day = [sum(1 for row in rows if row[0] == day) for day in Weekday.values]
        # Never fewer boxes than rows already saved: a save would silently drop the extra ones.
        self.intervals = max(intervals or DEFAULT_INTERVALS, *per_day)
        initial = kwargs.pop("initial", None) or {}
        seen: dict[int, int] = {}
        for day, start, end in rows:
            index = seen[day] = seen.get(day, 0) + 1
            initial[self._name(day, index, "start")] = start
            initial[self._name(day, index, "end")] = end
        super().__init__(*args, initial=initial, **kwargs)
        for day in Weekday.values:
            label = Weekday(day).label
            for index in range(1, self.intervals + 1):
                self.fields[self._name(day, index, "start")] = _time_field(
                    _("%(day)s, from (%(n)s)") % {"day": label, "n": index}, compact=True
                )
                self.fields[self._name(day, index, "end")] = _time_field(
                    _("%(day)s, until (%(n)s)") % {"day": label, "n": index}, compact=True
                )

    @staticmethod
    def _name(day: int, index: int, side: str) -> str:
        return f"d{day}_{index}_{side}"

    def days(self) -> list[dict[str, Any]]:
        """For the template: each day's label and its (from, until) bound fields."""
        if self.is_bound:
            for name in self.errors:
                if name in self.fields:
                    self.fields[name].widget.attrs["class"] += " is-invalid"
        return [
            {
                "label": Weekday(day).label,
                "pairs": [
                    (self[self._name(day, index, "start")], self[self._name(day, index, "end")])
                    for index in range(1, self.intervals + 1)
                ],
            }
            for day in Weekday.values
        ]

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        rows: list[tuple[int, time, time]] = []
        for day in Weekday.values:
            intervals: list[tuple[int, time, time]] = []
            for index in range(1, self.intervals + 1):
                start_name, end_name = self._name(day, index, "start"), self._name(day, index, "end")
                if start_name in self.errors or end_name in self.errors:
                    continue
                start, end = data.get(start_name), data.get(end_name)
                if start is None and end is None:
                    continue
                if start is None or end is None:
                    self.add_error(start_name if start is None else end_name, _("Enter both times, or neither."))
                    continue
                if end <= start:
                    self.add_error(end_name, _("Must be after the start time."))
                    continue
                clash = next((i for i in intervals if start < i[2] and i[1] < end), None)
                if clash is not None:
                    self.add_error(
                        start_name,
                        _("Overlaps %(start)s–%(end)s on the same day.")
                        % {"start": clash[1].strftime("%H:%M"), "end": clash[2].strftime("%H:%M")},
                    )
                    continue
                intervals.append((index, start, end))
            rows.extend((day, start, end) for _index, start, end in intervals)
        data["rows"] = rows
        return data


class LocationForm(forms.Form):
    name = forms.CharField(label=_("Name"), max_length=200)
    address = forms.CharField(label=_("Address"), required=False, widget=forms.Textarea(attrs={"rows": 2}))
    phone = forms.CharField(label=_("Phone"), max_length=40, required=False)
    time_zone = forms.ChoiceField(label=_("Time zone"), choices=time_zone_choices, initial=settings.TIME_ZONE)


class RoomCreateForm(forms.Form):
    name = forms.CharField(label=_("New room"), max_length=100)


class RoomUpdateForm(forms.Form):
    name = forms.CharField(label=_("Name"), max_length=100)
    is_active = forms.BooleanField(label=_("In use"), required=False)


def exception_zone(*, location: Location | None, practitioner: User | None) -> ZoneInfo:
    """The zone a closure's days are read in: the location's; for leave, the
    practitioner's usual location's, else the clinic's."""
    if location is not None:
        return ZoneInfo(location.time_zone)
    if practitioner is not None and practitioner.default_location is not None:
        return ZoneInfo(practitioner.default_location.time_zone)
    return ZoneInfo(settings.TIME_ZONE)


class ClosureForm(forms.Form):
    """A closure (a location) or leave (a practitioner): whole days from the first to the
    last, or from a time on the first day to a time on the last."""

    location = forms.ModelChoiceField(
        label=_("Location closed"), queryset=Location.objects.filter(is_active=True).order_by("name"), required=False
    )
    practitioner = forms.ModelChoiceField(
        label=_("Practitioner on leave"),
        queryset=User.objects.none(),
        required=False,
        help_text=_("Fill in either the location or the practitioner, not both."),
    )
    first_day = DayField(label=_("First day"), widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"))
    last_day = DayField(
        label=_("Last day (included)"), widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")
    )
    from_time = _time_field(_("From (blank: the whole first day)"))
    to_time = _time_field(_("Until (blank: the whole last day)"))
    reason = forms.CharField(label=_("Reason"), max_length=200)

    def __init__(self, *args: Any, practitioners: Any, own_leave_only: bool = False, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["practitioner"].queryset = practitioners.select_related("default_location")
        self.own_leave_only = own_leave_only
        if own_leave_only:
            del self.fields["location"]
            self.fields["practitioner"].required = True
            self.fields["practitioner"].empty_label = None

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        location: Location | None = data.get("location")
        practitioner: User | None = data.get("practitioner")
        both_fields_clean = "location" not in self.errors and "practitioner" not in self.errors
        if not self.own_leave_only and both_fields_clean and (location is None) == (practitioner is None):
            self.add_error("location", _("Choose either a location (closure) or a practitioner (leave)."))
        first, last = data.get("first_day"), data.get("last_day")
        if first and last and last < first:
            self.add_error("last_day", _("The last day is before the first day."))
        if self.errors or not (first and last) or (location is None and practitioner is None):
            return data
        zone = exception_zone(location=location, practitioner=practitioner)
        data["starts_at"] = datetime.combine(first, data.get("from_time") or time.min, tzinfo=zone)
        to_time = data.get("to_time")
        if to_time is None:
            data["ends_at"] = datetime.combine(last + timedelta(days=1), time.min, tzinfo=zone)
        else:
            data["ends_at"] = datetime.combine(last, to_time, tzinfo=zone)
        if data["ends_at"] <= data["starts_at"]:
            self.add_error("to_time", _("The end is before the start."))
        return data


class KindDurationsForm(forms.Form):
    """One duration box per appointment kind."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for kind, label in Appointment.Kind.choices:
            self.fields[kind] = forms.IntegerField(
                label=label,
                min_value=5,
                max_value=480,
                widget=forms.NumberInput(attrs={"step": 5}),
                help_text=_("minutes"),
            )


def _default_since() -> date:
    return timezone.localdate() - timedelta(days=90)


class NoShowFilterForm(forms.Form):
    since = DayField(label=_("From"), required=False, widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"))
    until = DayField(label=_("To"), required=False, widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"))
    location = forms.ModelChoiceField(
        label=_("Location"),
        queryset=Location.objects.order_by("name"),
        required=False,
        empty_label=_("All locations"),
    )

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        data["since"] = data.get("since") or _default_since()
        data["until"] = data.get("until") or timezone.localdate()
        if "since" not in self.errors and "until" not in self.errors and data["since"] > data["until"]:
            self.add_error("until", _("The end date is before the start date."))
        return data
