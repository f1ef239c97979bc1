from __future__ import annotations

from django import forms
from django.utils.translation import gettext_lazy as _

from patients.services.consent import TYPED_NAME_MAX


class ConsentTextForm(forms.Form):
    title_en = forms.CharField(label=_("Title (English)"), max_length=200)
    body_en = forms.CharField(label=_("Text (English)"), widget=forms.Textarea(attrs={"rows": 12}))
    title_fr = forms.CharField(label=_("Title (French)"), max_length=200)
    body_fr = forms.CharField(label=_("Text (French)"), widget=forms.Textarea(attrs={"rows": 12}))


class ConsentCaptureForm(forms.Form):
    typed_name = forms.CharField(
        label=_("Full name, typed by the patient"),
        max_length=TYPED_NAME_MAX,
        error_messages={"required": _("Ask the patient to type their full name.")},
        widget=forms.TextInput(attrs={"autocomplete": "off", "autocapitalize": "words", "spellcheck": "false"}),
    )
    # Filled by static/js/signature.js with the pad's drawing as a PNG data URL.
    signature = forms.CharField(
        widget=forms.HiddenInput(attrs={"data-signature-input": ""}),
        error_messages={"required": _("Ask the patient to sign in the box.")},
        strip=True,
    )
    # The text version shown to the patient, so that a version published meanwhile is not signed unread.
    version = forms.IntegerField(widget=forms.HiddenInput, min_value=1)


class ConsentWithdrawForm(forms.Form):
    reason = forms.CharField(
        label=_("Reason (optional)"), max_length=300, required=False, widget=forms.TextInput(attrs={"size": 30})
    )
