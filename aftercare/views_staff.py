"""Staff pages about patient messages: the manager's outbox, one message as sent, resend,
the aftercare templates editor, and "email the plan to the patient"."""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

from django import forms
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from aftercare.content import (
    CLINICAL_KINDS,
    TEMPLATE_KEYS,
    TEMPLATE_LABELS,
    aftercare_template_save,
    kind_label,
    message_body_for_staff,
)
from aftercare.models import AftercareTemplate, OutboundMessage
from aftercare.seed import aftercare_seed_text
from aftercare.services import message_resend
from aftercare.session_messages import plan_link_message_queue
from mesoclinic.access import CLINICAL_ROLES, Role, has_role, patient_access, role_required, staff_required
from mesoclinic.forms import form_add_validation_error
from treatments.models import TreatmentPlan

if TYPE_CHECKING:
    from mesoclinic.models import User

Status = OutboundMessage.Status
OUTBOX_PAGE = 50
OUTBOX_FILTERS: dict[str, list[str]] = {
    "": [Status.FAILED, Status.SCHEDULED, Status.SENDING],
    Status.FAILED: [Status.FAILED],
    Status.SCHEDULED: [Status.SCHEDULED],
    Status.SENDING: [Status.SENDING],
}
RESENDABLE = frozenset({Status.SENT, Status.FAILED, Status.CANCELLED})


def _staff(request: HttpRequest) -> User:
    # role_required has already sent anonymous visitors to the sign-in page.
    return cast("User", request.user)


@require_GET
@role_required(Role.MANAGER)
def outbox_list(request: HttpRequest) -> HttpResponse:
    """Failed and pending messages, newest first, a page at a time (keyset on the id)."""
    status = request.GET.get("status", "")
    if status not in OUTBOX_FILTERS:
        status = ""
    rows = (
        OutboundMessage.objects.filter(status__in=OUTBOX_FILTERS[status])
        .select_related("patient")
        .only(
            "pk",
            "kind",
            "status",
            "to_email",
            "subject",
            "created_at",
            "due_at",
            "attempts",
            "last_error",
            "patient__id",
            "patient__first_name",
            "patient__last_name",
        )
        .order_by("-pk")
    )
    before = request.GET.get("before", "")
    if before.isdecimal():
        rows = rows.filter(pk__lt=int(before))
    page = list(rows[: OUTBOX_PAGE + 1])
    more = len(page) > OUTBOX_PAGE
    page = page[:OUTBOX_PAGE]
    for row in page:
        row.kind_label = kind_label(row.kind)  # type: ignore[attr-defined]
    context = {
        "rows": page,
        "status": status,
        "statuses": [("", _("Failed and pending"))] + [(s, Status(s).label) for s in OUTBOX_FILTERS if s],
        "next_before": page[-1].pk if more else None,
    }
    return render(request, "aftercare/staff/outbox_list.html", context)


def _message_for(request: HttpRequest, message_id: int, *, action: str = "view") -> OutboundMessage:
    """The message if this user may read it: clinical kinds for practitioners and managers,
    booking messages for every role, messages to staff (no patient) for managers only."""
    message = get_object_or_404(
        OutboundMessage.objects.select_related("patient", "resend_of", "created_by"), pk=message_id
    )
    if message.patient_id is None:
        if not has_role(request.user, Role.MANAGER):
            raise Http404
        return message
    patient_access(
        request,
        patient_id=message.patient_id,
        clinical=message.kind in CLINICAL_KINDS,
        what=f"message {message.pk} ({message.kind})",
        action=action,
    )
    return message


def _detail(request: HttpRequest, message: OutboundMessage, *, status: int = 200) -> HttpResponse:
    context = {
        "message": message,
        "kind_label": kind_label(message.kind),
        "body_text": message_body_for_staff(message.body_text),
        "resends": list(message.resends.order_by("pk").only("pk", "status", "created_at")),
        "can_resend": has_role(request.user, Role.MANAGER) and message.status in RESENDABLE,
    }
    return render(request, "aftercare/staff/message_detail.html", context, status=status)


@require_GET
@staff_required
def message_detail(request: HttpRequest, message_id: int) -> HttpResponse:
    return _detail(request, _message_for(request, message_id))


@require_POST
@role_required(Role.MANAGER)
def message_resend_view(request: HttpRequest, message_id: int) -> HttpResponse:
    message = _message_for(request, message_id, action="resend")
    try:
        copy = message_resend(message=message, by=_staff(request))
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
        return _detail(request, message, status=409)
    if copy.status == Status.CANCELLED:
        messages.warning(request, _("A copy was recorded but not sent, because of the patient's email settings."))
    else:
        messages.success(request, _("A copy of the message is queued; the original is kept as it was."))
    return redirect("message_detail", message_id=copy.pk)


# --- aftercare templates -------------------------------------------------------------------


class AftercareTemplateForm(forms.Form):
    title = forms.CharField(label=gettext_lazy("Title"), max_length=200)
    body = forms.CharField(
        label=gettext_lazy("Advice"),
        widget=forms.Textarea(attrs={"rows": 8}),
        max_length=4000,
        help_text=gettext_lazy("Plain words the patient understands; one instruction per line."),
    )
    is_active = forms.BooleanField(
        label=gettext_lazy("Active"),
        required=False,
        help_text=gettext_lazy("Untick to leave this section out of new aftercare emails."),
    )


def _languages() -> list[tuple[str, str]]:
    from django.conf import settings

    return [(code, str(name)) for code, name in settings.LANGUAGES]


@require_GET
@role_required(Role.MANAGER)
def aftercare_templates(request: HttpRequest) -> HttpResponse:
    """Every aftercare section × language: what the aftercare email is built from."""
    rows = {(row.key, row.language): row for row in AftercareTemplate.objects.all()}
    languages = _languages()
    table = [
        {
            "key": key,
            "label": TEMPLATE_LABELS.get(key, key),
            "cells": [{"language": code, "row": rows.get((key, code))} for code, _name in languages],
        }
        for key in TEMPLATE_KEYS
    ]
    return render(request, "aftercare/staff/aftercare_templates.html", {"table": table, "languages": languages})


@require_http_methods(["GET", "POST"])
@role_required(Role.MANAGER)
def aftercare_template_edit(request: HttpRequest, key: str, language: str) -> HttpResponse:
    if key not in TEMPLATE_KEYS or language not in dict(_languages()):
        raise Http404
    template = AftercareTemplate.objects.filter(key=key, language=language).first()
    if template is not None:
        initial = {"title": template.title, "body": template.body, "is_active": template.is_active}
    else:
        title, body = aftercare_seed_text(key, language) or ("", "")
        initial = {"title": title, "body": body, "is_active": True}
    form = AftercareTemplateForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        try:
            aftercare_template_save(key=key, language=language, template=template, **form.cleaned_data)
        except ValidationError as error:
            form_add_validation_error(form, error)
        else:
            messages.success(request, _("Saved. New aftercare emails use this text; sent ones are unchanged."))
            return redirect("aftercare_templates")
    status = 400 if form.is_bound and form.errors else 200
    context = {
        "form": form,
        "template": template,
        "label": TEMPLATE_LABELS.get(key, key),
        "language_name": dict(_languages())[language],
    }
    return render(request, "aftercare/staff/aftercare_template_form.html", context, status=status)


# --- the plan, by email --------------------------------------------------------------------


@require_POST
@role_required(*CLINICAL_ROLES)
def plan_email(request: HttpRequest, plan_id: int) -> HttpResponse:
    """Email the patient a personal link to their plan (not the PDF itself)."""
    plan = get_object_or_404(TreatmentPlan.objects.select_related("patient"), pk=plan_id)
    patient_access(request, patient_id=plan.patient_id, clinical=True, what=f"plan {plan.pk} email", action="send")
    try:
        message = plan_link_message_queue(plan=plan, by=_staff(request))
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
    else:
        if message.status == Status.CANCELLED:
            messages.warning(
                request,
                _("Nothing was sent: the patient's email settings do not allow it. Give them the plan in person."),
            )
        else:
            messages.success(request, _("A link to the plan is on its way to %(email)s.") % {"email": message.to_email})
    return redirect("plan_detail", plan_id=plan.pk)
