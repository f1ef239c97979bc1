from django.urls import path

from patients.views import photos

urlpatterns = [
    path("<int:patient_id>/photos/", photos.photo_list, name="photo_list"),
    path("<int:patient_id>/photos/upload/", photos.photo_upload, name="photo_upload"),
    path("<int:patient_id>/photos/<int:photo_id>/file/", photos.photo_file, name="photo_file"),
    path("<int:patient_id>/photos/<int:photo_id>/hide/", photos.photo_hide, name="photo_hide"),
]
