"""The pages behind patient links: no account, one patient, one purpose per link.

Every page: resolved from the token (a refused link gets a friendly page, 404 for an
unknown token, 410 for an expired, withdrawn or spent one), rate-limited per address,
shown in the patient's language, never cached, never indexed, never sending the token
on as a referrer, and recorded in the read audit with the link's id.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.files.storage import storages
from django.http import FileResponse, HttpRequest, HttpResponse, HttpResponseBase
from django.shortcuts import render
from django.utils import timezone, translation
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods, require_POST

from aftercare import checkin as checkin_service
from aftercare import patient_actions, selectors_patient
from aftercare.forms import CheckInForm, EmailPreferencesForm
from aftercare.links import LinkRefused, patient_link_resolve
from aftercare.models import PatientLink
from mesoclinic.audit import client_ip, read_event_record
from mesoclinic.secret_tokens import secret_token_hash
from mesoclinic.throttle import rate_limited
from treatments.models import PlanDocument
from treatments.services import documents
from treatments.services.booking import LATE_CANCEL

Purpose = PatientLink.Purpose
LinkView = Callable[[HttpRequest, PatientLink], HttpResponseBase]

RATE_WINDOW_SECONDS = 60
# Requests per address per minute. A refreshed page, a form sent twice and a PDF still
# rendering fit well under this; guessing tokens does not (they carry 256 random bits).
RATE_LIMIT_DEFAULT = 30
REFUSED_STATUS = {"unknown": 404, "expired": 410, "revoked": 410, "used": 410}
# A PDF requested by a patient is rendered again if its render has not started after this.
PDF_WAIT_SECONDS = 60
PDF_REFRESH_SECONDS = 4


def _private(response: HttpResponseBase, *, language: str | None = None) -> HttpResponseBase:
    response["Referrer-Policy"] = "no-referrer"
    response["Cache-Control"] = "no-store"
    response["Pragma"] = "no-cache"
    response["X-Robots-Tag"] = "noindex, nofollow"
    if language:
        response["Content-Language"] = language
    return response


def _rate_limited(request: HttpRequest) -> bool:
    limit = getattr(settings, "PATIENT_LINK_RATE_LIMIT", RATE_LIMIT_DEFAULT)
    return rate_limited(f"patient-link:{client_ip(request) or 'unknown'}", limit=limit, window=RATE_WINDOW_SECONDS)


def _refused_language(token: str, refused: LinkRefused, request: HttpRequest) -> str:
    # An expired or withdrawn link still names its patient: answer in their language.
    if refused.reason != "unknown":
        language = (
            PatientLink.objects.filter(token_hash=secret_token_hash(token))
            .values_list("patient__preferred_language", flat=True)
            .first()
        )
        if language in {code for code, _name in settings.LANGUAGES}:
            return language
    return translation.get_language() or settings.LANGUAGE_CODE


def _refused(request: HttpRequest, token: str, refused: LinkRefused) -> HttpResponseBase:
    language = _refused_language(token, refused, request)
    with translation.override(language):
        context = {"reason": refused.reason, "message": refused.message, "contact": selectors_patient.clinic_contact()}
        response = render(
            request, "aftercare/patient/refused.html", context, status=REFUSED_STATUS.get(refused.reason, 404)
        )
    return _private(response, language=language)


def _too_many(request: HttpRequest) -> HttpResponseBase:
    response = render(
        request, "aftercare/patient/too_many.html", {"contact": selectors_patient.clinic_contact()}, status=429
    )
    response["Retry-After"] = str(RATE_WINDOW_SECONDS)
    return _private(response)


def patient_link_page(*purposes: str) -> Callable[[LinkView], Callable[..., HttpResponseBase]]:
    """Resolve the token, check the purpose, and wrap the page in the link's rules."""

    def decorator(view: LinkView) -> Callable[..., HttpResponseBase]:
        @wraps(view)
        def wrapper(request: HttpRequest, token: str) -> HttpResponseBase:
            if _rate_limited(request):
                return _too_many(request)
            try:
                link = patient_link_resolve(token)
                if purposes and link.purpose not in purposes:
                    raise LinkRefused("unknown")
            except LinkRefused as refused:
                return _refused(request, token, refused)
            asked = request.GET.get("lang", "")
            language = selectors_patient.patient_language(link, asked=asked)
            # Links and forms on the page carry a language the patient picked.
            request.link_query = f"?lang={language}" if asked == language else ""  # type: ignore[attr-defined]
            with translation.override(language):
                try:
                    response = view(request, link)
                except LinkRefused as refused:
                    # Spent between the page and the submit (a second tab, a double click).
                    return _refused(request, token, refused)
            return _private(response, language=language)

        # No CSRF cookie check: these pages act on no session or cookie, only on the
        # token in the URL, which a forging site cannot know. And with the referrer
        # policy "no-referrer", browsers send "Origin: null" with the forms' POSTs, which
        # Django's origin check would refuse.
        return csrf_exempt(wrapper)

    return decorator


def _seen(request: HttpRequest, link: PatientLink, what: str, *, action: str = "view") -> None:
    read_event_record(request, patient_id=link.patient_id, what=what, action=action, token_id=link.pk)
    PatientLink.objects.filter(pk=link.pk).update(last_seen_at=timezone.now())


def _unavailable(request: HttpRequest, link: PatientLink) -> HttpResponse:
    # The target is gone or not the patient's: say as little as for an unknown link.
    refused = LinkRefused("unknown")
    context = {"reason": refused.reason, "message": refused.message, "contact": selectors_patient.clinic_contact()}
    return render(request, "aftercare/patient/refused.html", context, status=404)


# --- The link's page ---------------------------------------------------------------------


@require_http_methods(["GET", "HEAD", "POST"])
@patient_link_page()
def patient_link(request: HttpRequest, link: PatientLink) -> HttpResponseBase:
    pages: dict[str, LinkView] = {
        Purpose.PLAN: _plan_page,
        Purpose.AFTERCARE: _aftercare_page,
        Purpose.BOOKING: _booking_page,
        Purpose.CHECKIN: _checkin_page,
        Purpose.PREFERENCES: _preferences_page,
    }
    if request.method == "POST" and link.purpose not in {Purpose.CHECKIN, Purpose.PREFERENCES}:
        return HttpResponse(status=405, headers={"Allow": "GET, HEAD"})
    return pages[link.purpose](request, link)


def _plan_page(request: HttpRequest, link: PatientLink) -> HttpResponse:
    summary = selectors_patient.patient_plan_summary(link)
    if summary is None:
        return _unavailable(request, link)
    _seen(request, link, f"treatment plan #{summary.plan.pk} v{summary.plan.version} (patient link)")
    return render(
        request, "aftercare/patient/plan.html", {"link": link, "summary": summary, "contact": summary.contact}
    )


def _aftercare_page(request: HttpRequest, link: PatientLink) -> HttpResponse:
    session = selectors_patient.patient_link_session(link)
    if session is None:
        return _unavailable(request, link)
    try:
        from aftercare.content import aftercare_sections
    except ImportError:  # the advice texts are not installed: the phone number still helps
        sections: list[tuple[str, str]] = []
    else:
        sections = aftercare_sections(session=session, language=translation.get_language())
    _seen(request, link, f"aftercare of session #{session.pk} (patient link)")
    context = {
        "link": link,
        "session": session,
        "performed_at": timezone.localtime(session.performed_at, selectors_patient.session_zone(session)),
        "sections": sections,
        "contact": selectors_patient.session_contact(session),
    }
    return render(request, "aftercare/patient/aftercare.html", context)


def _booking_context(link: PatientLink, **extra: Any) -> dict[str, Any] | None:
    appointment = selectors_patient.patient_link_appointment(link)
    if appointment is None:
        return None
    zone = selectors_patient.appointment_zone(appointment)
    now = timezone.now()
    return {
        "link": link,
        "appointment": appointment,
        "starts_at": timezone.localtime(appointment.starts_at, zone),
        "zone_name": str(zone),
        "can_confirm": patient_actions.appointment_patient_can_confirm(appointment, now=now),
        "can_cancel": patient_actions.appointment_patient_can_cancel(appointment, now=now),
        "contact": selectors_patient.Contact.of(appointment.location),
        "late_hours": int(LATE_CANCEL.total_seconds() // 3600),
        **extra,
    }


def _booking_page(request: HttpRequest, link: PatientLink, *, status: int = 200, **extra: Any) -> HttpResponse:
    context = _booking_context(link, **extra)
    if context is None:
        return _unavailable(request, link)
    _seen(request, link, f"appointment #{context['appointment'].pk} (patient link)")
    return render(request, "aftercare/patient/booking.html", context, status=status)


def _checkin_page(request: HttpRequest, link: PatientLink) -> HttpResponse:
    session = selectors_patient.patient_link_session(link)
    if session is None:
        return _unavailable(request, link)
    photo_allowed = checkin_service.checkin_photo_allowed(link.patient)
    context = {
        "link": link,
        "session": session,
        "performed_at": timezone.localtime(session.performed_at, selectors_patient.session_zone(session)),
        "contact": selectors_patient.session_contact(session),
        "photo_allowed": photo_allowed,
    }
    if request.method != "POST":
        _seen(request, link, f"check-in form for session #{session.pk} (patient link)")
        context["form"] = CheckInForm(photo_allowed=photo_allowed)
        return render(request, "aftercare/patient/checkin.html", context)
    form = CheckInForm(request.POST, request.FILES, photo_allowed=photo_allowed)
    context["form"] = form
    if form.is_valid():
        try:
            response = checkin_service.checkin_submit(
                link=link,
                answers=form.answers(),
                photo_file=form.cleaned_data.get("photo") if photo_allowed else None,
                ip=client_ip(request),
            )
        except ValidationError as error:
            _form_errors(form, error)
        else:
            _seen(request, link, f"check-in for session #{session.pk} sent (patient link)", action="submit")
            context["response"] = response
            return render(request, "aftercare/patient/checkin_thanks.html", context)
    return render(request, "aftercare/patient/checkin.html", context, status=400)


def _form_errors(form: Any, error: ValidationError) -> None:
    if hasattr(error, "error_dict"):
        for field, messages in error.message_dict.items():
            form.add_error(field if field in form.fields else None, messages)
    else:
        form.add_error(None, error.messages)


def _preferences_page(request: HttpRequest, link: PatientLink) -> HttpResponse:
    patient = link.patient
    saved = False
    status = 200
    if request.method == "POST":
        form = EmailPreferencesForm.for_patient(patient, data=request.POST)
        if form.is_valid():
            patient_actions.patient_email_preferences_update(
                patient=patient,
                email_transactional=form.cleaned_data["email_transactional"],
                marketing_opt_in=form.cleaned_data["marketing_opt_in"],
                withdraw_all=form.cleaned_data["withdraw_all"],
                link=link,
            )
            _seen(request, link, "email preferences changed (patient link)", action="change")
            form = EmailPreferencesForm.for_patient(patient)
            saved = True
        else:
            status = 400
    else:
        _seen(request, link, "email preferences (patient link)")
        form = EmailPreferencesForm.for_patient(patient)
    context = {
        "link": link,
        "patient": patient,
        "form": form,
        "saved": saved,
        "contact": selectors_patient.clinic_contact(),
    }
    return render(request, "aftercare/patient/preferences.html", context, status=status)


# --- Booking: confirm, cancel --------------------------------------------------------------


@require_POST
@patient_link_page(Purpose.BOOKING)
def patient_link_confirm(request: HttpRequest, link: PatientLink) -> HttpResponseBase:
    if selectors_patient.patient_link_appointment(link) is None:
        return _unavailable(request, link)
    try:
        patient_actions.appointment_confirm_by_patient(link=link)
    except ValidationError as error:
        return _booking_page(request, link, status=409, problem=" ".join(error.messages))
    return _booking_page(request, link, done="confirmed")


@require_http_methods(["GET", "HEAD", "POST"])
@patient_link_page(Purpose.BOOKING)
def patient_link_cancel(request: HttpRequest, link: PatientLink) -> HttpResponseBase:
    if request.method != "POST":
        # A cancellation is asked for twice: a stray click on the email's page changes nothing.
        return _booking_page(request, link, asking_cancel=True)
    if selectors_patient.patient_link_appointment(link) is None:
        return _unavailable(request, link)
    try:
        patient_actions.appointment_cancel_by_patient(link=link)
    except ValidationError as error:
        return _booking_page(request, link, status=409, problem=" ".join(error.messages))
    return _booking_page(request, link, done="cancelled")


# --- Plan PDF ----------------------------------------------------------------------------


@require_http_methods(["GET", "HEAD"])
@patient_link_page(Purpose.PLAN)
def patient_link_pdf(request: HttpRequest, link: PatientLink) -> HttpResponseBase:
    summary = selectors_patient.patient_plan_summary(link)
    if summary is None:
        return _unavailable(request, link)
    plan = summary.plan
    document = documents.plan_document_ready(plan_id=plan.pk)
    if document is not None:
        try:
            handle = storages[documents.PRIVATE_STORAGE].open(document.file_name, "rb")
        except FileNotFoundError:
            document = None
        else:
            _seen(request, link, f"treatment plan #{plan.pk} v{plan.version} PDF (patient link)", action="download")
            return FileResponse(
                handle,
                as_attachment=True,
                filename=f"plan-{plan.pk}-v{plan.version}-{document.language}.pdf",
                content_type="application/pdf",
            )
    current = documents.plan_document_current(plan=plan)
    waiting = (
        current is not None
        and current.status in {PlanDocument.Status.PENDING, PlanDocument.Status.RENDERING}
        and current.requested_at is not None
        and (timezone.now() - current.requested_at).total_seconds() < PDF_WAIT_SECONDS
    )
    if not waiting:
        # New, failed, stale, lost file or a render nobody picked up: ask (again).
        current = documents.plan_document_request(plan=plan)
    context = {
        "link": link,
        "summary": summary,
        "contact": summary.contact,
        "refresh_seconds": PDF_REFRESH_SECONDS,
        "failed": current.status == PlanDocument.Status.FAILED,
    }
    return render(request, "aftercare/patient/pdf_preparing.html", context)
