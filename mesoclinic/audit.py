"""The audit trail: change history (pghistory) and read events.

Every clinical and patient model is decorated with :func:`audited`; its history
table mirrors the model, records the request's user and URL (pghistory's
middleware), and refuses UPDATE and DELETE at the database level. Views that show
a patient call :func:`read_event_record` through the access helper.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pghistory
import pgtrigger

if TYPE_CHECKING:
    from django.http import HttpRequest

APPEND_ONLY_TRIGGER = "append_only"


def append_only_trigger() -> pgtrigger.Protect:
    """A trigger that makes a table refuse UPDATE and DELETE (TRUNCATE stays DBA-only)."""
    return pgtrigger.Protect(name=APPEND_ONLY_TRIGGER, operation=pgtrigger.Update | pgtrigger.Delete)


def audited(*trackers: Any, **kwargs: Any) -> Any:
    """``pghistory.track`` with an append-only history table.

    Pass ``pghistory.DeleteEvent()`` among the trackers for rows the app may remove
    (draft plan areas): the removed row's last state stays in the history.
    """
    meta = kwargs.pop("meta", {})
    meta["triggers"] = [*meta.get("triggers", []), append_only_trigger()]
    return pghistory.track(*trackers, meta=meta, **kwargs)


def client_ip(request: HttpRequest) -> str | None:
    """The client's address: REMOTE_ADDR, or behind our one proxy the last X-Forwarded-For hop."""
    from django.conf import settings

    if settings.BEHIND_PROXY:
        forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "")
        if forwarded:
            return forwarded.split(",")[-1].strip() or None
    return request.META.get("REMOTE_ADDR") or None


def read_event_record(
    request: HttpRequest,
    *,
    patient_id: int | None,
    what: str,
    action: str = "view",
    token_id: int | None = None,
) -> None:
    """Write one read-audit row for what this request showed."""
    from mesoclinic.models import ReadEvent

    user = getattr(request, "user", None)
    ReadEvent.objects.create(
        user=user if user is not None and user.is_authenticated else None,
        patient_id=patient_id,
        token_id=token_id,
        action=action,
        what=what[:200],
        path=request.get_full_path()[:500],
        method=request.method or "",
        ip=client_ip(request),
        user_agent=request.META.get("HTTP_USER_AGENT", "")[:300],
    )
