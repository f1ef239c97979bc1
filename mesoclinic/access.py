"""Who may do what: the one place where roles are defined and checked.

Three roles, stored as groups (created by a migration): practitioner, front desk
and manager. A superuser counts as a manager. Views use :func:`role_required`;
patient-scoped views (later issues) go through :func:`patient_access`, which checks
the role, answers 404 for what the user may not see and writes the read-audit row.
"""

from __future__ import annotations

from collections.abc import Callable
from enum import StrEnum
from functools import wraps
from typing import TYPE_CHECKING, Any, TypeVar

from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.http import Http404
from django.utils.translation import gettext_lazy as _

from mesoclinic.audit import read_event_record

if TYPE_CHECKING:
    from django.http import HttpRequest
    from django.http.response import HttpResponseBase

    from mesoclinic.models import User


class Role(StrEnum):
    PRACTITIONER = "practitioner"
    FRONT_DESK = "front_desk"
    MANAGER = "manager"


ROLE_LABELS = {
    Role.PRACTITIONER: _("Practitioner"),
    Role.FRONT_DESK: _("Front desk"),
    Role.MANAGER: _("Clinic manager"),
}

# Roles that may read clinical notes (history, consultations, plans, side effects).
CLINICAL_ROLES = frozenset({Role.PRACTITIONER, Role.MANAGER})
# Roles that may see demographics, bookings and messages.
DEMOGRAPHIC_ROLES = frozenset({Role.PRACTITIONER, Role.MANAGER, Role.FRONT_DESK})

# Permissions each role's group carries (used by the roles migration and the admin).
ROLE_PERMISSIONS: dict[Role, tuple[str, ...]] = {
    Role.PRACTITIONER: (
        "view_clinical_record",
        "change_clinical_record",
        "view_demographics",
        "manage_bookings",
    ),
    Role.FRONT_DESK: ("view_demographics", "manage_bookings"),
    Role.MANAGER: (
        "view_clinical_record",
        "change_clinical_record",
        "view_demographics",
        "manage_bookings",
        "view_audit_log",
        "view_system_status",
        "manage_staff",
        "manage_catalogue",
    ),
}


def roles_sync(group_model: Any, permission_model: Any) -> None:
    """Create the role groups with their permissions (the migration's and the tests' helper)."""
    for role, codenames in ROLE_PERMISSIONS.items():
        group, _created = group_model.objects.get_or_create(name=role.value)
        group.permissions.set(
            permission_model.objects.filter(content_type__app_label="mesoclinic", codename__in=codenames)
        )


def user_roles(user: Any) -> frozenset[Role]:
    """The roles of a user, read once per request object."""
    if user is None or not user.is_authenticated or not user.is_active:
        return frozenset()
    cached = getattr(user, "_mesoclinic_roles", None)
    if cached is not None:
        return cached
    names = set(user.groups.values_list("name", flat=True))
    roles = {role for role in Role if role.value in names}
    if user.is_superuser:
        roles.add(Role.MANAGER)
    result = frozenset(roles)
    user._mesoclinic_roles = result
    return result


def has_role(user: Any, *roles: Role) -> bool:
    return bool(user_roles(user) & set(roles))


def can_view_clinical(user: Any) -> bool:
    return bool(user_roles(user) & CLINICAL_ROLES)


F = TypeVar("F", bound=Callable[..., "HttpResponseBase"])


def role_required(*roles: Role) -> Callable[[F], F]:
    """Anonymous → login page; signed in without one of ``roles`` → 403."""

    def decorator(view: F) -> F:
        @wraps(view)
        def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
            if not request.user.is_authenticated:
                return redirect_to_login(request.get_full_path())
            if not has_role(request.user, *roles):
                raise PermissionDenied
            return view(request, *args, **kwargs)

        wrapper.allowed_roles = frozenset(roles)  # type: ignore[attr-defined]
        return wrapper  # type: ignore[return-value]

    return decorator


def staff_required(view: F) -> F:
    """Any signed-in member of staff with at least one role."""
    return role_required(*Role)(view)


def patient_access(request: HttpRequest, *, patient_id: int, clinical: bool, what: str, action: str = "view") -> None:
    """Check that this user may see this part of a patient's record, and audit the read.

    ``clinical`` parts (history, consultations, plans, side effects) are for
    practitioners and managers; demographics, bookings and messages for every role.
    A refusal is a 404 so that a record's existence is not disclosed.
    """
    allowed = CLINICAL_ROLES if clinical else DEMOGRAPHIC_ROLES
    if not user_roles(request.user) & allowed:
        raise Http404
    read_event_record(request, patient_id=patient_id, what=what, action=action)


def login_attempt_username(request: HttpRequest, credentials: dict[str, Any] | None = None) -> str | None:
    """The account a login attempt targets, as axes keys its lockouts (with the IP)."""
    value = (credentials or {}).get("email") or (credentials or {}).get("login")
    if not value and request is not None and request.method == "POST":
        value = request.POST.get("login")
    return str(value).strip().lower() if value else None


def role_of(user: User) -> Role | None:
    """The single most privileged role, for display."""
    roles = user_roles(user)
    for role in (Role.MANAGER, Role.PRACTITIONER, Role.FRONT_DESK):
        if role in roles:
            return role
    return None
