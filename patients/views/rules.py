"""Contraindication rules: data a clinic manager edits (severity, reason, scope)."""

from __future__ import annotations

from django.contrib import messages
from django.db import IntegrityError, transaction
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods

from mesoclinic.access import Role, role_required
from patients.forms.rules import RuleForm
from patients.models import ContraindicationRule


@require_GET
@role_required(Role.MANAGER)
def rule_list(request: HttpRequest) -> HttpResponse:
    rules = ContraindicationRule.objects.select_related("allergen").order_by(
        "-is_active", "trigger", "condition", "medication_flag", "allergen__code"
    )
    return render(request, "patients/rule_list.html", {"rules": rules})


@require_http_methods(["GET", "POST"])
@role_required(Role.MANAGER)
def rule_edit(request: HttpRequest, rule_id: int | None = None) -> HttpResponse:
    rule = get_object_or_404(ContraindicationRule, pk=rule_id) if rule_id else None
    form = RuleForm(request.POST or None, instance=rule)
    if request.method == "POST" and form.is_valid():
        try:
            with transaction.atomic():
                form.save()
        except IntegrityError:
            form.add_error(None, _("This rule is not consistent: check the trigger and the field it needs."))
        else:
            messages.success(request, _("Rule saved. It applies to every screening from now on."))
            return redirect("rule_list")
    status = 400 if form.is_bound and form.errors else 200
    return render(request, "patients/rule_form.html", {"form": form, "rule": rule}, status=status)
