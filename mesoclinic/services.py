"""Writes for the clinic, staff and the system's own machinery."""

from __future__ import annotations

import uuid
from typing import Any

from allauth.account.forms import default_token_generator
from allauth.account.utils import user_pk_to_url_str
from django.conf import settings
from django.contrib.auth.models import Group
from django.core.exceptions import ValidationError
from django.db import transaction
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from aftercare.models import OutboundMessage
from aftercare.services import message_queue
from mesoclinic.access import Role
from mesoclinic.celery import enqueue_on_commit
from mesoclinic.models import Heartbeat, Location, SystemJob, User


def heartbeat_touch(*, component: str, detail: str = "") -> None:
    Heartbeat.objects.update_or_create(component=component, defaults={"seen_at": timezone.now(), "detail": detail})


def _role_set(user: User, role: Role) -> None:
    role_names = [r.value for r in Role]
    user.groups.remove(*Group.objects.filter(name__in=role_names))
    user.groups.add(Group.objects.get(name=role.value))


@transaction.atomic
def staff_create(
    *,
    email: str,
    full_name: str,
    role: Role,
    default_location: Location | None = None,
    created_by: User,
    password: str | None = None,
) -> User:
    """Create a staff account with a role and email a link to set the password.

    Without ``password`` the account has none until its owner sets one.
    """
    email = email.strip().lower()
    if User.objects.filter(email__iexact=email).exists():
        raise ValidationError({"email": _("A staff account with this email already exists.")})
    user = User(email=email, full_name=full_name.strip(), default_location=default_location)
    if password:
        user.set_password(password)
    else:
        user.set_unusable_password()
    user.full_clean(exclude=["password"])
    user.save()
    _role_set(user, role)
    if not password:
        staff_password_link_send(user=user, requested_by=created_by)
    return user


@transaction.atomic
def staff_update(
    *, user: User, full_name: str, role: Role, is_active: bool, default_location: Location | None, updated_by: User
) -> User:
    if user.pk == updated_by.pk and (not is_active or role != Role.MANAGER) and not user.is_superuser:
        raise ValidationError(_("You cannot remove your own manager role or deactivate yourself."))
    user.full_name = full_name.strip()
    user.is_active = is_active
    user.default_location = default_location
    user.full_clean(exclude=["password"])
    user.save(update_fields=["full_name", "is_active", "default_location"])
    _role_set(user, role)
    if not is_active:
        _sessions_end(user)
    return user


def _sessions_end(user: User) -> None:
    from django.contrib.sessions.models import Session

    # Sessions are opaque blobs; decoding each is fine at a clinic's staff scale.
    for session in Session.objects.filter(expire_date__gt=timezone.now()).iterator():
        if str(session.get_decoded().get("_auth_user_id")) == str(user.pk):
            session.delete()


def staff_password_link_send(*, user: User, requested_by: User) -> OutboundMessage:
    """Queue the "set your password" email (allauth's reset link) through the outbox."""
    path = reverse(
        "account_reset_password_from_key",
        kwargs={"uidb36": user_pk_to_url_str(user), "key": default_token_generator.make_token(user)},
    )
    context: dict[str, Any] = {
        "user": user,
        "link": f"{settings.SITE_URL}{path}",
        "clinic_name": settings.CLINIC_NAME,
        "requested_by": requested_by,
    }
    with translation.override(settings.LANGUAGE_CODE):
        subject = render_to_string("mesoclinic/email/staff_password_subject.txt", context).strip()
        body_text = render_to_string("mesoclinic/email/staff_password.txt", context)
        body_html = render_to_string("mesoclinic/email/staff_password.html", context)
    return message_queue(
        kind="staff_password",
        to_email=user.email,
        subject=subject,
        body_text=body_text,
        body_html=body_html,
        dedupe_key=f"staff_password:{user.pk}:{uuid.uuid4().hex}",
    )


def system_test_email_request(*, user: User) -> OutboundMessage:
    """A test message through outbox → worker → mail backend, for the status page."""
    context = {"user": user, "clinic_name": settings.CLINIC_NAME, "at": timezone.now()}
    return message_queue(
        kind="system_test",
        to_email=user.email,
        subject=render_to_string("mesoclinic/email/system_test_subject.txt", context).strip(),
        body_text=render_to_string("mesoclinic/email/system_test.txt", context),
        body_html=render_to_string("mesoclinic/email/system_test.html", context),
        dedupe_key=f"system_test:{uuid.uuid4().hex}",
        language=translation.get_language() or settings.LANGUAGE_CODE,
    )


def system_pdf_request(*, user: User) -> SystemJob:
    from mesoclinic.tasks import system_pdf_render

    job = SystemJob.objects.create(kind=SystemJob.Kind.PDF, requested_by=user)
    enqueue_on_commit(system_pdf_render, job.pk)
    return job


def system_pdf_render(*, job_id: int) -> SystemJob | None:
    """Render the test PDF for a job; a second run of a finished job does nothing."""
    from django.core.files.base import ContentFile
    from django.core.files.storage import storages

    from mesoclinic.pdf import pdf_render

    claimed = SystemJob.objects.filter(pk=job_id, status=SystemJob.Status.PENDING).update(
        status=SystemJob.Status.RUNNING
    )
    if not claimed:
        return None
    job = SystemJob.objects.select_related("requested_by").get(pk=job_id)
    try:
        html = render_to_string(
            "mesoclinic/pdf/system_test.html",
            {"job": job, "clinic_name": settings.CLINIC_NAME, "at": timezone.now()},
        )
        pdf = pdf_render(html)
        name = f"system/test-{job.pk}.pdf"
        storage = storages["private"]
        if storage.exists(name):
            storage.delete(name)
        storage.save(name, ContentFile(pdf))
    except Exception as error:
        SystemJob.objects.filter(pk=job.pk).update(
            status=SystemJob.Status.FAILED, error=f"{type(error).__name__}: {error}"[:2000], finished_at=timezone.now()
        )
        raise
    SystemJob.objects.filter(pk=job.pk).update(
        status=SystemJob.Status.DONE, result_file=name, finished_at=timezone.now()
    )
    job.refresh_from_db()
    return job
