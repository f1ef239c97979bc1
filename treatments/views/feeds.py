"""A practitioner's private calendar feed: the address a phone subscribes to, and its settings."""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from mesoclinic.access import Role, role_required
from mesoclinic.audit import client_ip
from mesoclinic.models import User
from mesoclinic.secret_tokens import secret_token_hash
from mesoclinic.throttle import rate_limited
from treatments.services import calendar_files as services

# Calendar apps poll every 15 minutes to an hour; this leaves room for several devices.
FEED_RATE_LIMIT = 60
FEED_RATE_WINDOW = 600


def _rate_limited(request: HttpRequest, token: str) -> bool:
    # Keyed on the token's hash so the raw secret never lands in the cache either.
    key = f"calendar-feed:{secret_token_hash(token)[:32]}:{client_ip(request) or '-'}"
    return rate_limited(key, limit=FEED_RATE_LIMIT, window=FEED_RATE_WINDOW)


@require_GET
def calendar_feed(request: HttpRequest, token: str) -> HttpResponse:
    """No sign-in: the token is the credential. Not a patient read by a user, so no read-audit
    rows; the feed holds no clinical data (see ``calendar_files``)."""
    if _rate_limited(request, token):
        response = HttpResponse(_("Too many requests. Try again later."), status=429, content_type="text/plain")
        response["Retry-After"] = str(FEED_RATE_WINDOW)
        return response
    feed = services.calendar_feed_lookup(token)
    if feed is None:
        raise Http404
    response = HttpResponse(services.feed_ics(feed.practitioner), content_type="text/calendar; charset=utf-8")
    response["Content-Disposition"] = 'inline; filename="appointments.ics"'
    response["Cache-Control"] = "private, max-age=300"
    response["Referrer-Policy"] = "no-referrer"
    return response


@require_http_methods(["GET", "POST"])
@role_required(Role.PRACTITIONER, Role.MANAGER)
def calendar_feed_settings(request: HttpRequest) -> HttpResponse:
    new_url = ""
    webcal_url = ""
    status = 200
    error = ""
    if request.method == "POST":
        action = request.POST.get("action")
        if action == "create":
            try:
                token = services.calendar_feed_create(practitioner=request.user)
            except ValidationError as refused:
                error, status = " ".join(refused.messages), 400
            else:
                # Shown on this response only: the token is not stored and cannot be shown again.
                new_url = request.build_absolute_uri(reverse("calendar_feed", args=[token]))
                webcal_url = "webcal://" + new_url.split("://", 1)[1]
        elif action == "revoke":
            if services.calendar_feed_revoke(practitioner=request.user, by=request.user):
                messages.success(request, _("Your calendar feed address no longer works."))
            return redirect("calendar_feed_settings")
        else:
            error, status = _("Choose to create or to turn off the feed address."), 400
    context = {
        "feed": services.calendar_feed_live(request.user),
        "new_url": new_url,
        "webcal_url": webcal_url,
        "error": error,
    }
    return render(request, "treatments/calendar_feed.html", context, status=status)


@require_POST
@role_required(Role.MANAGER)
def calendar_feed_revoke_staff(request: HttpRequest, user_id: int) -> HttpResponse:
    member = get_object_or_404(User, pk=user_id)
    if services.calendar_feed_revoke(practitioner=member, by=request.user):
        messages.success(request, _("The calendar feed of %(name)s no longer works.") % {"name": member.full_name})
    else:
        messages.info(request, _("%(name)s had no calendar feed.") % {"name": member.full_name})
    return redirect("staff_list")
