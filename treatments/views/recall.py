"""Lot recall (manager): exposed patients and sessions, one action to notify and flag."""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST

from mesoclinic.access import Role, role_required
from mesoclinic.audit import read_event_record
from treatments.models import Lot
from treatments.services.recall import recall_exposure, recall_notify


@require_GET
@role_required(Role.MANAGER)
def lot_recall_detail(request: HttpRequest, lot_id: int) -> HttpResponse:
    lot = get_object_or_404(Lot.objects.select_related("product"), pk=lot_id)
    rows = recall_exposure(lot)
    for patient_id in {row.patient.pk for row in rows}:
        read_event_record(request, patient_id=patient_id, what=f"lot {lot.lot_number} recall list", action="view")
    return render(request, "treatments/lot_recall.html", {"lot": lot, "rows": rows})


@require_POST
@role_required(Role.MANAGER)
def lot_recall_notify(request: HttpRequest, lot_id: int) -> HttpResponse:
    lot = get_object_or_404(Lot, pk=lot_id)
    if lot.recalled_at is None:
        messages.error(request, _("Mark the lot recalled (with the reason) before notifying patients."))
        return redirect("lot_recall_detail", lot_id=lot.pk)
    count = recall_notify(lot=lot, by=request.user)
    messages.success(request, _("%(n)s patient(s) will be emailed; every exposed record is flagged.") % {"n": count})
    return redirect("lot_recall_detail", lot_id=lot.pk)
