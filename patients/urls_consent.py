from django.urls import path

from patients.views import consent

urlpatterns = [
    path("consent-texts/", consent.consent_text_list, name="consent_text_list"),
    path("consent-texts/<str:kind>/publish/", consent.consent_text_publish, name="consent_text_publish"),
    path(
        "<int:patient_id>/consents/<int:consent_id>/signature.png",
        consent.consent_signature,
        name="consent_signature",
    ),
    path("<int:patient_id>/consents/<int:consent_id>/withdraw/", consent.consent_withdraw, name="consent_withdraw"),
    path("<int:patient_id>/consent/<str:kind>/", consent.consent_capture, name="consent_capture"),
]
