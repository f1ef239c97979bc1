from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.core.files.storage import storages
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from aftercare.models import OutboundMessage
from mesoclinic import selectors, services
from mesoclinic.access import Role, role_of, role_required, staff_required
from mesoclinic.forms import AuditFilterForm, StaffCreateForm, StaffUpdateForm, form_add_validation_error
from mesoclinic.models import SystemJob, User


@require_GET
def home(request: HttpRequest) -> HttpResponse:
    if request.user.is_authenticated:
        return redirect("dashboard")
    return redirect("account_login")


@require_GET
@staff_required
def dashboard(request: HttpRequest) -> HttpResponse:
    from mesoclinic.access import can_view_clinical
    from treatments.selectors_adverse import followups_due_count, followups_owner_default

    followups_count = (
        followups_due_count(user=followups_owner_default(request.user)) if can_view_clinical(request.user) else None
    )
    return render(
        request, "mesoclinic/dashboard.html", {"role": role_of(request.user), "followups_count": followups_count}
    )


# --- System status -----------------------------------------------------------------


@require_GET
@role_required(Role.MANAGER)
def system_status(request: HttpRequest) -> HttpResponse:
    status = selectors.system_status()
    template = "mesoclinic/_status_checks.html" if request.htmx else "mesoclinic/system_status.html"
    return render(request, template, {"status": status})


@require_POST
@role_required(Role.MANAGER)
def system_test_email(request: HttpRequest) -> HttpResponse:
    message = services.system_test_email_request(user=request.user)
    return render(request, "mesoclinic/_test_email.html", {"message": message})


@require_GET
@role_required(Role.MANAGER)
def system_test_email_progress(request: HttpRequest, message_id: int) -> HttpResponse:
    message = get_object_or_404(OutboundMessage, pk=message_id, kind="system_test")
    return render(request, "mesoclinic/_test_email.html", {"message": message})


@require_POST
@role_required(Role.MANAGER)
def system_test_pdf(request: HttpRequest) -> HttpResponse:
    job = services.system_pdf_request(user=request.user)
    return render(request, "mesoclinic/_test_pdf.html", {"job": job})


@require_GET
@role_required(Role.MANAGER)
def system_test_pdf_progress(request: HttpRequest, job_id: int) -> HttpResponse:
    job = get_object_or_404(SystemJob, pk=job_id)
    return render(request, "mesoclinic/_test_pdf.html", {"job": job})


@require_GET
@role_required(Role.MANAGER)
def system_test_pdf_download(request: HttpRequest, job_id: int) -> FileResponse:
    job = get_object_or_404(SystemJob, pk=job_id, status=SystemJob.Status.DONE)
    storage = storages["private"]
    if not job.result_file or not storage.exists(job.result_file):
        raise Http404
    return FileResponse(storage.open(job.result_file, "rb"), content_type="application/pdf", filename="test.pdf")


# --- Audit log -----------------------------------------------------------------------


@require_GET
@role_required(Role.MANAGER)
def audit_log(request: HttpRequest) -> HttpResponse:
    form = AuditFilterForm(request.GET or None)
    filters = selectors.AuditFilters()
    status = 200
    if form.is_bound:
        if form.is_valid():
            data = form.cleaned_data
            filters = selectors.AuditFilters(
                patient_id=data["patient"],
                user=data["user"],
                date_from=data["date_from"],
                date_to=data["date_to"],
                before=data["before"],
            )
        else:
            status = 400
    changes = selectors.audit_change_events(filters) if status == 200 else []
    reads = selectors.audit_read_events(filters) if status == 200 else []
    contexts = [e.pgh_context or {} for e in changes]
    names = selectors.audit_user_names({int(c["user"]) for c in contexts if c.get("user")})
    rows = [
        {
            "at": e.pgh_created_at,
            "label": e.pgh_label,
            "model": e.pgh_obj_model,
            "object_id": e.pgh_obj_id,
            "diff": e.pgh_diff,
            "user": names.get(int(c.get("user") or 0), ""),
            "url": c.get("url", ""),
        }
        for e, c in zip(changes, contexts, strict=True)
    ]
    query = request.GET.copy()
    older_changes = older_reads = None
    if len(changes) == selectors.AUDIT_PAGE_SIZE:
        query["before"] = changes[-1].pgh_created_at.isoformat()
        older_changes = query.urlencode()
    if len(reads) == selectors.AUDIT_PAGE_SIZE:
        query["before"] = reads[-1].at.isoformat()
        older_reads = query.urlencode()
    context = {
        "form": form,
        "changes": rows,
        "reads": reads,
        "older_changes": older_changes,
        "older_reads": older_reads,
    }
    return render(request, "mesoclinic/audit_log.html", context, status=status)


# --- Staff -----------------------------------------------------------------------------


@require_GET
@role_required(Role.MANAGER)
def staff_list(request: HttpRequest) -> HttpResponse:
    staff = selectors.staff_list()
    return render(request, "mesoclinic/staff_list.html", {"staff": staff})


@require_http_methods(["GET", "POST"])
@role_required(Role.MANAGER)
def staff_create(request: HttpRequest) -> HttpResponse:
    form = StaffCreateForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            user = services.staff_create(
                email=data["email"],
                full_name=data["full_name"],
                role=Role(data["role"]),
                default_location=data["default_location"],
                created_by=request.user,
            )
        except ValidationError as error:
            form_add_validation_error(form, error)
        else:
            messages.success(
                request, _("Account created. %(email)s will receive a link to set a password.") % {"email": user.email}
            )
            return redirect("staff_list")
    status = 400 if form.is_bound and form.errors else 200
    return render(request, "mesoclinic/staff_form.html", {"form": form, "creating": True}, status=status)


@require_http_methods(["GET", "POST"])
@role_required(Role.MANAGER)
def staff_update(request: HttpRequest, user_id: int) -> HttpResponse:
    member = get_object_or_404(User, pk=user_id)
    initial = {
        "full_name": member.full_name,
        "role": (role_of(member) or Role.FRONT_DESK).value,
        "default_location": member.default_location_id,
        "is_active": member.is_active,
    }
    form = StaffUpdateForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            services.staff_update(
                user=member,
                full_name=data["full_name"],
                role=Role(data["role"]),
                is_active=data["is_active"],
                default_location=data["default_location"],
                updated_by=request.user,
            )
        except ValidationError as error:
            form_add_validation_error(form, error)
        else:
            messages.success(request, _("Saved."))
            return redirect("staff_list")
    status = 400 if form.is_bound and form.errors else 200
    return render(request, "mesoclinic/staff_form.html", {"form": form, "member": member}, status=status)


@require_POST
@role_required(Role.MANAGER)
def staff_password_link(request: HttpRequest, user_id: int) -> HttpResponse:
    member = get_object_or_404(User, pk=user_id, is_active=True)
    services.staff_password_link_send(user=member, requested_by=request.user)
    messages.success(request, _("A password link is on its way to %(email)s.") % {"email": member.email})
    return redirect("staff_list")


# --- Error pages ---------------------------------------------------------------------


def error_403(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    return render(request, "403.html", status=403)


def error_404(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    return render(request, "404.html", status=404)
