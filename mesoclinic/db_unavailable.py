"""A friendly 503 while the database is away, instead of a 500 and a traceback.

PostgreSQL restarting (an upgrade, a failover, a crash) makes every query raise
``OperationalError`` (or ``InterfaceError`` on a connection that died under us). That is
not a bug of the page: the person should see "back in a moment" with a ``Retry-After``,
monitoring should see 503, and nothing half-done should be implied. Django reconnects by
itself on the next request (``CONN_HEALTH_CHECKS``), so no restart of the app is needed.

The middleware goes right after ``SecurityMiddleware``, outside everything that touches the
database (sessions, authentication, axes, pghistory). Django turns an exception raised in
an inner middleware into a 500 response before an outer middleware sees it, so a database
error is caught twice over: ``process_exception`` for errors raised by the view (the usual
place: the first query), and the ``got_request_exception`` signal, which marks the request
when an inner middleware (a session saved on the way out, the user loaded by axes) fails,
so that the 500 it became is replaced here.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from typing import Any

from django.core.signals import got_request_exception
from django.db import InterfaceError, OperationalError
from django.http import HttpRequest, HttpResponse
from django.template import loader
from django.utils import translation
from django.utils.cache import add_never_cache_headers

logger = logging.getLogger("mesoclinic.db_unavailable")

DATABASE_ERRORS = (OperationalError, InterfaceError)
# A PostgreSQL restart takes seconds; a browser or a monitor may try again after this.
RETRY_AFTER_SECONDS = 30
_MARK = "_mesoclinic_database_unavailable"


def database_unavailable_response(request: HttpRequest) -> HttpResponse:
    """The 503 page: rendered without the database (no context processors, no user)."""
    # LocaleMiddleware may not have run (an error in the session middleware, before it):
    # the language comes from the cookie or the browser, neither of which needs a query.
    language = translation.get_language_from_request(request)
    with translation.override(language):
        body = loader.get_template("503.html").render({"LANGUAGE_CODE": language, "retry_after": RETRY_AFTER_SECONDS})
    response = HttpResponse(body, status=503)
    response["Retry-After"] = str(RETRY_AFTER_SECONDS)
    response["Content-Language"] = language
    add_never_cache_headers(response)
    return response


def _mark_database_error(sender: Any, request: HttpRequest | None = None, **kwargs: Any) -> None:
    # Sent from inside the ``except`` block that is about to build the 500 response.
    error = sys.exc_info()[1]
    if request is not None and isinstance(error, DATABASE_ERRORS):
        setattr(request, _MARK, error)


got_request_exception.connect(_mark_database_error, dispatch_uid="mesoclinic.db_unavailable")


class DatabaseUnavailableMiddleware:
    """Answers 503 with Retry-After when the request failed because the database is unreachable."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        # Never raises: Django has turned any exception inside into a response by now.
        response = self.get_response(request)
        error = getattr(request, _MARK, None)
        if error is not None and response.status_code == 500:
            return self._unavailable(request, error)
        return response

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if isinstance(exception, DATABASE_ERRORS):
            return self._unavailable(request, exception)
        return None

    @staticmethod
    def _unavailable(request: HttpRequest, error: BaseException) -> HttpResponse:
        # One line, no traceback: the cause is the database, which logs its own story.
        logger.error("database unavailable for %s %s: %s", request.method, request.path, str(error).strip()[:300])
        return database_unavailable_response(request)
