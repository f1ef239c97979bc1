"""Writes for the catalogue (plans, sessions and side effects come with their issues)."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from treatments.models import Lot


@transaction.atomic
def lot_recall(*, lot: Lot, reason: str) -> Lot:
    """Mark a lot recalled: it can no longer be used in a session."""
    reason = reason.strip()
    if not reason:
        raise ValidationError({"reason": _("Say why the lot is recalled.")})
    lot = Lot.objects.select_for_update().get(pk=lot.pk)
    if lot.recalled_at is not None:
        raise ValidationError(_("This lot is already recalled."))
    lot.recalled_at = timezone.now()
    lot.recall_reason = reason[:300]
    lot.save(update_fields=["recalled_at", "recall_reason"])
    return lot
