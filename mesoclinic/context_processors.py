from __future__ import annotations

from typing import Any

from django.conf import settings
from django.http import HttpRequest

from mesoclinic.access import ROLE_LABELS, role_of, user_roles


def clinic(request: HttpRequest) -> dict[str, Any]:
    user = getattr(request, "user", None)
    roles = user_roles(user)
    role = role_of(user) if roles else None
    return {
        "clinic_name": settings.CLINIC_NAME,
        "user_roles": {r.value for r in roles},
        "user_role_label": ROLE_LABELS[role] if role else "",
    }
