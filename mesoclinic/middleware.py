from __future__ import annotations

import time
from collections.abc import Callable

from allauth.mfa.signals import authenticator_removed
from django.conf import settings
from django.contrib.auth import logout
from django.contrib.auth.views import redirect_to_login
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.urls import reverse

SESSION_LOGIN_AT = "mesoclinic_login_at"
SESSION_SEEN_AT = "mesoclinic_seen_at"
SESSION_MFA_CONFIRMED = "mesoclinic_mfa_user"
# Refresh the idle clock at most this often, so that not every request writes the session.
_SEEN_RESOLUTION = 30


class SessionTimeoutMiddleware:
    """Ends a signed-in session after an idle period and after an absolute cap."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        session = request.session
        if session.get("_auth_user_id"):
            now = int(time.time())
            login_at = session.setdefault(SESSION_LOGIN_AT, now)
            seen_at = session.get(SESSION_SEEN_AT, now)
            idle = settings.SESSION_IDLE_TIMEOUT.total_seconds()
            absolute = settings.SESSION_ABSOLUTE_TIMEOUT.total_seconds()
            if now - seen_at > idle or now - login_at > absolute:
                logout(request)
                return redirect_to_login(request.get_full_path())
            if now - seen_at >= _SEEN_RESOLUTION or SESSION_SEEN_AT not in session:
                session[SESSION_SEEN_AT] = now
        return self.get_response(request)


class MfaRequiredMiddleware:
    """With MFA_REQUIRED on, staff without TOTP can only reach the enrolment pages.

    Once a session has seen its user with TOTP enrolled, the session remembers it (keyed by
    the user's id) instead of asking the database on every request. That weakens nothing:
    the check exists to force enrolment, and a session that passed it was signed in with
    the second factor or enrolled it. Removing the authenticator through allauth forgets
    the mark in that session, so the next request asks for enrolment again.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if (
            settings.MFA_REQUIRED
            and request.user.is_authenticated
            and request.session.get(SESSION_MFA_CONFIRMED) != request.user.pk
            and not self._exempt(request.path)
        ):
            from allauth.mfa.utils import is_mfa_enabled

            if not is_mfa_enabled(request.user, ["totp"]):
                return redirect("mfa_activate_totp")
            request.session[SESSION_MFA_CONFIRMED] = request.user.pk
        return self.get_response(request)

    @staticmethod
    def _exempt(path: str) -> bool:
        prefixes = (
            reverse("mfa_index"),
            reverse("account_logout"),
            reverse("account_reauthenticate"),
            settings.STATIC_URL,
            reverse("set_language"),
        )
        return path.startswith(prefixes)


def mfa_session_forget(sender: object, request: HttpRequest | None = None, **kwargs: object) -> None:
    """An authenticator was removed: this session must pass the enrolment check again."""
    if request is not None and hasattr(request, "session"):
        request.session.pop(SESSION_MFA_CONFIRMED, None)


authenticator_removed.connect(mfa_session_forget, dispatch_uid="mesoclinic_mfa_session_forget")


class NoStoreMiddleware:
    """Pages shown to a signed-in user are never kept by a browser or proxy cache."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if request.user.is_authenticated or getattr(response, "no_store", False):
            response["Cache-Control"] = "no-store"
            response["Pragma"] = "no-cache"
        return response


def session_clock_start(sender: object, request: HttpRequest, **kwargs: object) -> None:
    """On login: the absolute cap and the idle clock start now."""
    now = int(time.time())
    request.session[SESSION_LOGIN_AT] = now
    request.session[SESSION_SEEN_AT] = now
