"""Clinical photos: consent, validation by content, metadata stripped, access-checked serving."""

from __future__ import annotations

import hashlib
import re
import struct
import zlib
from io import BytesIO
from pathlib import Path

import pytest
from django.apps import apps
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.template.loader import render_to_string
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from PIL import ExifTags, Image, ImageFile
from PIL.PngImagePlugin import PngInfo

from mesoclinic.models import ReadEvent, User
from patients.models import ClinicalPhoto, Consent, ConsentText, ConsentWithdrawal, Consultation, Patient
from patients.services import photos as photo_service
from patients.services.registry import patient_archive
from tests.factories import PatientFactory, UserFactory

# --- images --------------------------------------------------------------------------------


def jpeg_with_gps(*, orientation: int = 6) -> bytes:
    """80×40, left half red, right half blue, with an orientation tag, camera data, GPS and XMP."""
    image = Image.new("RGB", (80, 40), (220, 20, 20))
    image.paste((20, 20, 220), (40, 0, 80, 40))
    exif = Image.Exif()
    exif[ExifTags.Base.Orientation] = orientation
    exif[ExifTags.Base.Make] = "PhoneMaker"
    exif[ExifTags.Base.Model] = "Phone 15"
    gps = exif.get_ifd(ExifTags.IFD.GPSInfo)
    gps[ExifTags.GPS.GPSLatitudeRef] = "N"
    gps[ExifTags.GPS.GPSLatitude] = (48.0, 51.0, 24.0)
    gps[ExifTags.GPS.GPSLongitudeRef] = "E"
    gps[ExifTags.GPS.GPSLongitude] = (2.0, 21.0, 3.0)
    out = BytesIO()
    image.save(out, "JPEG", exif=exif, xmp=b"<x:xmpmeta>exif:GPSLatitude 48,51.4N</x:xmpmeta>")
    return out.getvalue()


def plain_jpeg(size: tuple[int, int] = (64, 48)) -> bytes:
    out = BytesIO()
    Image.effect_noise(size, 60).convert("RGB").save(out, "JPEG", quality=95)
    return out.getvalue()


def png_with_text_and_exif() -> bytes:
    image = Image.new("RGBA", (30, 20), (10, 200, 10, 255))
    info = PngInfo()
    info.add_text("Comment", "taken at 48.85N 2.35E")
    exif = Image.Exif()
    exif[ExifTags.Base.Make] = "PhoneMaker"
    out = BytesIO()
    image.save(out, "PNG", pnginfo=info, exif=exif)
    return out.getvalue()


def gif_bytes() -> bytes:
    out = BytesIO()
    Image.new("P", (10, 10)).save(out, "GIF")
    return out.getvalue()


def png_declaring(width: int, height: int) -> bytes:
    """A real, valid 1-bit PNG of width×height: a few kilobytes that decode to a huge image."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    row = bytes(1 + (width + 7) // 8)
    compressor = zlib.compressobj(9)
    idat = b"".join(compressor.compress(row) for _ in range(height)) + compressor.flush()
    ihdr = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def jpeg_declaring(width: int, height: int) -> bytes:
    """A small JPEG whose frame header claims width×height."""
    data = bytearray(plain_jpeg((16, 16)))
    sof = data.index(b"\xff\xc0")
    data[sof + 5 : sof + 9] = struct.pack(">HH", height, width)
    return bytes(data)


FAKE_HEIC = b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic" + bytes(200)


def upload(data: bytes, name: str = "IMG_0001.jpg", content_type: str = "image/jpeg") -> SimpleUploadedFile:
    return SimpleUploadedFile(name, data, content_type=content_type)


# --- fixtures -----------------------------------------------------------------------------


@pytest.fixture
def private_storage(tmp_path: Path, settings) -> Path:
    from django.core.files.storage import storages

    storages._storages.pop("private", None)
    settings.STORAGES = {
        **settings.STORAGES,
        "private": {**settings.STORAGES["private"], "OPTIONS": {"location": str(tmp_path)}},
    }
    return tmp_path


def stored_files(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file()]


@pytest.fixture
def patient(manager: User) -> Patient:
    return PatientFactory(first_name="Léa", last_name="Bernard", created_by=manager)


def consent_for(patient: Patient, user: User) -> Consent:
    text = ConsentText.objects.filter(kind="photography").order_by("-version").first()
    if text is None:
        text = ConsentText.objects.create(
            kind="photography",
            version=1,
            title_en="Clinical photographs",
            body_en="I agree to clinical photographs.",
            title_fr="Photographies cliniques",
            body_fr="J'accepte les photographies cliniques.",
            published_by=user,
        )
    return Consent.objects.create(
        patient=patient,
        text=text,
        language="fr",
        typed_name="x",
        signature_file="x",
        signature_sha256="0" * 64,
        witness=user,
    )


@pytest.fixture
def photo_consent(patient: Patient, manager: User) -> Consent:
    return consent_for(patient, manager)


@pytest.fixture
def stored_photo(patient: Patient, photo_consent: Consent, practitioner: User, private_storage: Path) -> ClinicalPhoto:
    return photo_service.photo_upload(
        patient=patient, uploaded_file=upload(plain_jpeg()), uploaded_by=practitioner, area="abdomen", view="front"
    )


def upload_url(patient: Patient) -> str:
    return reverse("photo_upload", args=[patient.pk])


def assert_nothing_saved(root: Path) -> None:
    assert not ClinicalPhoto.objects.exists()
    assert stored_files(root) == []


# --- role × URL ---------------------------------------------------------------------------

URL_NAMES = ["photo_list", "photo_upload", "photo_file", "photo_hide"]


def url_for(name: str, photo: ClinicalPhoto) -> str:
    args = [photo.patient_id] if name in ("photo_list", "photo_upload") else [photo.patient_id, photo.pk]
    return reverse(name, args=args)


@pytest.mark.parametrize("name", URL_NAMES)
def test_anonymous_is_sent_to_login(anonymous_client: Client, stored_photo: ClinicalPhoto, name: str) -> None:
    response = anonymous_client.get(url_for(name, stored_photo))
    assert response.status_code == 302
    assert response.url.startswith(reverse("account_login"))


@pytest.mark.parametrize("name", URL_NAMES)
def test_front_desk_is_refused(front_desk_client: Client, stored_photo: ClinicalPhoto, name: str) -> None:
    assert front_desk_client.get(url_for(name, stored_photo)).status_code == 403


def test_front_desk_cannot_post(front_desk_client: Client, stored_photo: ClinicalPhoto, private_storage: Path) -> None:
    response = front_desk_client.post(url_for("photo_upload", stored_photo), {"file": upload(plain_jpeg())})
    assert response.status_code == 403
    response = front_desk_client.post(url_for("photo_hide", stored_photo), {"reason": "wrong patient"})
    assert response.status_code == 403
    assert ClinicalPhoto.objects.count() == 1 and len(stored_files(private_storage)) == 1
    stored_photo.refresh_from_db()
    assert stored_photo.hidden_at is None


@pytest.mark.parametrize("persona", ["practitioner_client", "manager_client"])
@pytest.mark.parametrize("name", URL_NAMES)
def test_clinical_roles_reach_every_page(
    request: pytest.FixtureRequest, stored_photo: ClinicalPhoto, persona: str, name: str
) -> None:
    assert request.getfixturevalue(persona).get(url_for(name, stored_photo)).status_code == 200


# --- consent --------------------------------------------------------------------------------


def test_upload_is_refused_without_photo_consent(
    practitioner_client: Client, patient: Patient, manager: User, private_storage: Path
) -> None:
    # A consent to treatment is not a consent to photographs.
    ConsentText.objects.create(
        kind="mesotherapy", version=1, title_en="t", body_en="b", title_fr="t", body_fr="b", published_by=manager
    )
    page = practitioner_client.get(upload_url(patient)).content.decode()
    assert 'data-testid="photo-consent-missing"' in page
    assert reverse("consent_capture", args=[patient.pk, "photography"]) in page
    assert 'type="file"' not in page
    response = practitioner_client.post(upload_url(patient), {"file": upload(plain_jpeg())})
    assert response.status_code == 400
    assert "no current consent to clinical photographs" in response.content.decode()
    assert_nothing_saved(private_storage)


def test_withdrawn_photo_consent_refuses_upload(
    practitioner: User, patient: Patient, photo_consent: Consent, private_storage: Path
) -> None:
    ConsentWithdrawal.objects.create(consent=photo_consent, recorded_by=practitioner, reason="changed mind")
    with pytest.raises(ValidationError, match="no current consent"):
        photo_service.photo_upload(patient=patient, uploaded_file=upload(plain_jpeg()), uploaded_by=practitioner)
    assert_nothing_saved(private_storage)


def test_archived_record_refuses_upload(
    practitioner: User, patient: Patient, photo_consent: Consent, private_storage: Path
) -> None:
    patient_archive(patient=patient, reason="moved away")
    patient.refresh_from_db()
    with pytest.raises(ValidationError, match="archived"):
        photo_service.photo_upload(patient=patient, uploaded_file=upload(plain_jpeg()), uploaded_by=practitioner)
    assert_nothing_saved(private_storage)


# --- accepted files ------------------------------------------------------------------------


def test_jpeg_is_stored_upright_without_exif_gps_or_xmp(
    practitioner_client: Client, practitioner: User, patient: Patient, photo_consent: Consent, private_storage: Path
) -> None:
    original = jpeg_with_gps(orientation=6)
    with Image.open(BytesIO(original)) as source:  # the test image really carries what must go
        assert source.getexif().get_ifd(ExifTags.IFD.GPSInfo)
        assert source.getexif()[ExifTags.Base.Orientation] == 6
    response = practitioner_client.post(
        upload_url(patient),
        {"file": upload(original, "IMG_0001.JPG"), "area": "abdomen", "view": "front"},
    )
    assert response.status_code == 302
    assert response.url == reverse("photo_list", args=[patient.pk])
    photo = ClinicalPhoto.objects.get()
    assert re.fullmatch(rf"photos/{patient.pk}/[0-9a-f]{{32}}\.jpg", photo.file_name)
    assert (photo.area, photo.view, photo.content_type, photo.uploaded_by) == (
        "abdomen",
        "front",
        "image/jpeg",
        practitioner,
    )
    stored = (private_storage / photo.file_name).read_bytes()
    assert photo.size_bytes == len(stored)
    assert photo.sha256 == hashlib.sha256(stored).hexdigest()
    assert b"Exif\x00\x00" not in stored and b"http://ns.adobe.com/xap" not in stored and b"PhoneMaker" not in stored
    with Image.open(BytesIO(stored)) as image:
        assert image.format == "JPEG"
        assert dict(image.getexif()) == {}
        assert not image.getexif().get_ifd(ExifTags.IFD.GPSInfo)
        assert "exif" not in image.info and "xmp" not in image.info
        # Orientation 6 means "turn 90° clockwise": the red left half is now on top.
        assert (photo.width, photo.height) == image.size == (40, 80)
        rgb = image.convert("RGB")
        top, bottom = rgb.getpixel((20, 10)), rgb.getpixel((20, 70))
        assert top[0] > 150 and top[2] < 100
        assert bottom[2] > 150 and bottom[0] < 100


def test_png_is_accepted_and_stripped(
    practitioner_client: Client, patient: Patient, photo_consent: Consent, private_storage: Path
) -> None:
    # Named .jpg and sent as JPEG: only the content decides.
    response = practitioner_client.post(upload_url(patient), {"file": upload(png_with_text_and_exif(), "scan.jpg")})
    assert response.status_code == 302
    photo = ClinicalPhoto.objects.get()
    assert photo.content_type == "image/png" and photo.file_name.endswith(".png")
    with Image.open(private_storage / photo.file_name) as image:
        image.load()
        assert image.format == "PNG" and image.size == (30, 20)
        assert "Comment" not in image.info and "exif" not in image.info
        assert dict(image.getexif()) == {}
        assert image.convert("RGBA").getpixel((5, 5)) == (10, 200, 10, 255)


def mpo_bytes() -> bytes:
    out = BytesIO()
    first, second = Image.new("RGB", (32, 24), (200, 0, 0)), Image.new("RGB", (32, 24), (0, 0, 200))
    first.save(out, "MPO", save_all=True, append_images=[second])
    return out.getvalue()


def encoded(mode: str, fmt: str, **options: object) -> bytes:
    out = BytesIO()
    Image.new(mode, (32, 24)).save(out, fmt, **options)
    return out.getvalue()


@pytest.mark.parametrize(
    ("build", "content_type", "mode"),
    [
        pytest.param(mpo_bytes, "image/jpeg", "RGB", id="multi-picture-jpeg"),
        pytest.param(lambda: encoded("CMYK", "JPEG"), "image/jpeg", "RGB", id="cmyk-jpeg"),
        pytest.param(lambda: encoded("L", "JPEG"), "image/jpeg", "L", id="grey-jpeg"),
        pytest.param(lambda: encoded("P", "PNG", transparency=0), "image/png", "P", id="palette-png"),
        pytest.param(lambda: encoded("I;16", "PNG"), "image/png", "I;16", id="16-bit-png"),
    ],
)
def test_camera_variants_are_accepted(
    practitioner: User, patient: Patient, photo_consent: Consent, private_storage: Path, build, content_type, mode
) -> None:
    photo = photo_service.photo_upload(patient=patient, uploaded_file=upload(build()), uploaded_by=practitioner)
    assert photo.content_type == content_type and (photo.width, photo.height) == (32, 24)
    with Image.open(private_storage / photo.file_name) as image:
        image.load()
        assert image.format == ("JPEG" if content_type == "image/jpeg" else "PNG")
        assert image.mode == mode


def test_upload_links_a_consultation_of_the_patient(
    practitioner_client: Client, practitioner: User, patient: Patient, photo_consent: Consent, private_storage: Path
) -> None:
    consultation = Consultation.objects.create(patient=patient, practitioner=practitioner)
    assert str(consultation.pk) in practitioner_client.get(upload_url(patient)).content.decode()
    response = practitioner_client.post(
        upload_url(patient), {"file": upload(plain_jpeg()), "consultation": consultation.pk}
    )
    assert response.status_code == 302
    assert ClinicalPhoto.objects.get().consultation == consultation


# --- refused files: 400, a clear message, nothing saved ------------------------------------


@pytest.mark.parametrize(
    ("data", "name", "content_type", "message"),
    [
        (
            b"hello, this is a text file, not a photo\n" * 20,
            "photo.jpg",
            "image/jpeg",
            "could not be read as a JPEG or PNG",
        ),
        (gif_bytes(), "photo.png", "image/png", "This file is a GIF"),
        (FAKE_HEIC, "IMG_0001.jpg", "image/jpeg", "HEIC photos are not accepted yet"),
        (b"%PDF-1.7\n" + bytes(100), "photo.jpg", "image/jpeg", "This file is a PDF"),
        (b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg"/>', "p.png", "image/png", "SVG"),
        (b"RIFF\x24\x00\x00\x00WEBPVP8 " + bytes(40), "p.jpg", "image/jpeg", "This file is a WebP"),
        (plain_jpeg()[:400], "cut.jpg", "image/jpeg", "could not be read as a JPEG or PNG"),
    ],
    ids=["text", "gif", "heic", "pdf", "svg", "webp", "truncated-jpeg"],
)
def test_non_photos_are_refused_with_a_clear_message(
    practitioner_client: Client,
    patient: Patient,
    photo_consent: Consent,
    private_storage: Path,
    data: bytes,
    name: str,
    content_type: str,
    message: str,
) -> None:
    response = practitioner_client.post(upload_url(patient), {"file": upload(data, name, content_type)})
    assert response.status_code == 400
    assert message in response.content.decode().replace("&#x27;", "'")
    assert_nothing_saved(private_storage)


def test_oversized_file_is_refused(
    practitioner_client: Client, patient: Patient, photo_consent: Consent, private_storage: Path, monkeypatch
) -> None:
    data = plain_jpeg((200, 200))
    monkeypatch.setattr(photo_service, "PHOTO_MAX_BYTES", len(data) - 1)
    response = practitioner_client.post(upload_url(patient), {"file": upload(data)})
    assert response.status_code == 400
    assert "a photo can be at most" in response.content.decode()
    assert_nothing_saved(private_storage)


def test_service_reads_no_more_than_the_limit_whatever_the_declared_size(
    practitioner: User, patient: Patient, photo_consent: Consent, private_storage: Path, monkeypatch
) -> None:
    data = plain_jpeg((200, 200))
    monkeypatch.setattr(photo_service, "PHOTO_MAX_BYTES", 1000)
    reads: list[int] = []

    class LyingUpload(BytesIO):
        size = 10  # what a crafted request could claim

        def read(self, size: int | None = -1) -> bytes:
            reads.append(size)
            return super().read(size)

    lying = LyingUpload(data)
    with pytest.raises(ValidationError, match="larger than"):
        photo_service.photo_upload(patient=patient, uploaded_file=lying, uploaded_by=practitioner)
    assert reads == [1001]
    assert_nothing_saved(private_storage)


@pytest.mark.parametrize(
    ("build", "width", "height"),
    [
        pytest.param(png_declaring, 8000, 6000, id="png-48MP-over-our-limit"),
        pytest.param(png_declaring, 12000, 9000, id="png-108MP-pillow-warning"),
        pytest.param(png_declaring, 20000, 20000, id="png-400MP-pillow-error"),
        pytest.param(jpeg_declaring, 8000, 6000, id="jpeg-48MP-header"),
    ],
)
def test_pixel_bombs_are_refused_without_decoding(
    practitioner_client: Client,
    patient: Patient,
    photo_consent: Consent,
    private_storage: Path,
    monkeypatch,
    build,
    width: int,
    height: int,
) -> None:
    data = build(width, height)
    assert len(data) < 200_000
    loads: list[object] = []
    original_load = ImageFile.ImageFile.load

    def spy(self: ImageFile.ImageFile) -> object:
        loads.append(self)
        return original_load(self)

    monkeypatch.setattr(ImageFile.ImageFile, "load", spy)
    response = practitioner_client.post(upload_url(patient), {"file": upload(data, "bomb.png", "image/png")})
    assert response.status_code == 400
    assert "too many pixels" in response.content.decode()
    assert loads == []
    assert_nothing_saved(private_storage)


@pytest.mark.parametrize(("width", "height"), [(12000, 9000), (20000, 20000)], ids=["pillow-warning", "pillow-error"])
def test_pillow_bomb_guard_holds_even_above_our_limit(
    practitioner: User, patient: Patient, photo_consent: Consent, private_storage: Path, monkeypatch, width, height
) -> None:
    # With our own limit raised out of the way, Pillow's warning must still be an error.
    monkeypatch.setattr(photo_service, "PHOTO_MAX_PIXELS", 10**12)
    loads: list[object] = []
    original_load = ImageFile.ImageFile.load
    monkeypatch.setattr(ImageFile.ImageFile, "load", lambda self: loads.append(self) or original_load(self))
    with pytest.raises(ValidationError, match="too many pixels"):
        photo_service.photo_upload(
            patient=patient, uploaded_file=upload(png_declaring(width, height)), uploaded_by=practitioner
        )
    assert loads == []
    assert_nothing_saved(private_storage)


def test_consultation_of_another_patient_is_refused(
    practitioner_client: Client, practitioner: User, patient: Patient, photo_consent: Consent, private_storage: Path
) -> None:
    other = PatientFactory(created_by=practitioner)
    foreign = Consultation.objects.create(patient=other, practitioner=practitioner)
    response = practitioner_client.post(upload_url(patient), {"file": upload(plain_jpeg()), "consultation": foreign.pk})
    assert response.status_code == 400
    with pytest.raises(ValidationError, match="another patient"):
        photo_service.photo_upload(
            patient=patient, uploaded_file=upload(plain_jpeg()), uploaded_by=practitioner, consultation=foreign
        )
    assert_nothing_saved(private_storage)


def test_file_is_removed_when_the_row_is_refused(
    practitioner: User, patient: Patient, photo_consent: Consent, private_storage: Path
) -> None:
    # The view field's limit is checked by full_clean, after the file was written.
    with pytest.raises(ValidationError):
        photo_service.photo_upload(
            patient=patient, uploaded_file=upload(plain_jpeg()), uploaded_by=practitioner, view="x" * 61
        )
    assert_nothing_saved(private_storage)


def test_missing_file_is_a_form_error(
    practitioner_client: Client, patient: Patient, photo_consent: Consent, private_storage: Path
) -> None:
    response = practitioner_client.post(upload_url(patient), {"area": "abdomen"})
    assert response.status_code == 400
    assert "Choose a photo to upload." in response.content.decode()
    assert_nothing_saved(private_storage)


# --- serving --------------------------------------------------------------------------------


def test_file_is_served_through_the_view_with_no_store_and_a_read_event(
    practitioner_client: Client, practitioner: User, stored_photo: ClinicalPhoto, private_storage: Path
) -> None:
    response = practitioner_client.get(url_for("photo_file", stored_photo))
    assert response.status_code == 200
    assert b"".join(response.streaming_content) == (private_storage / stored_photo.file_name).read_bytes()
    assert response["Content-Type"] == "image/jpeg"
    assert response["Content-Disposition"].startswith("inline")
    assert response["Cache-Control"] == "no-store"
    assert response["X-Content-Type-Options"] == "nosniff"
    event = ReadEvent.objects.get(what=f"clinical photo {stored_photo.pk}")
    assert (event.user, event.patient_id, event.action) == (practitioner, stored_photo.patient_id, "view")


def test_another_patients_photo_id_is_404(
    practitioner_client: Client, manager: User, stored_photo: ClinicalPhoto
) -> None:
    other = PatientFactory(created_by=manager)
    for name in ("photo_file", "photo_hide"):
        response = practitioner_client.get(reverse(name, args=[other.pk, stored_photo.pk]))
        assert response.status_code == 404
    assert not ReadEvent.objects.filter(patient_id=other.pk).exists()


def test_list_shows_visible_photos_of_this_patient_only(
    practitioner_client: Client, practitioner: User, manager: User, stored_photo: ClinicalPhoto
) -> None:
    other = PatientFactory(created_by=manager)
    consent_for(other, manager)
    foreign = photo_service.photo_upload(patient=other, uploaded_file=upload(plain_jpeg()), uploaded_by=practitioner)
    hidden = photo_service.photo_upload(
        patient=stored_photo.patient, uploaded_file=upload(plain_jpeg()), uploaded_by=practitioner
    )
    photo_service.photo_hide(photo=hidden, reason="blurred", hidden_by=practitioner)
    page = practitioner_client.get(url_for("photo_list", stored_photo)).content.decode()
    assert url_for("photo_file", stored_photo) in page
    assert f"/photos/{hidden.pk}/file/" not in page and f"/photos/{foreign.pk}/file/" not in page
    assert stored_photo.file_name not in page
    assert "Abdomen" in page and "Baseline" in page
    assert ReadEvent.objects.filter(patient_id=stored_photo.patient_id, what="clinical photos").count() == 1


def test_photo_list_query_count_does_not_grow(
    practitioner_client: Client, patient: Patient, photo_consent: Consent
) -> None:
    def add_photos(count: int) -> None:
        for _ in range(count):
            ClinicalPhoto.objects.create(
                patient=patient,
                area="face",
                view="front",
                file_name=f"photos/{patient.pk}/{ClinicalPhoto.objects.count()}.jpg",
                content_type="image/jpeg",
                width=10,
                height=10,
                size_bytes=100,
                sha256="0" * 64,
                uploaded_by=UserFactory(),
                consultation=Consultation.objects.create(patient=patient, practitioner=patient.created_by),
            )

    url = reverse("photo_list", args=[patient.pk])
    add_photos(1)
    practitioner_client.get(url)
    with CaptureQueriesContext(connection) as one:
        assert practitioner_client.get(url).status_code == 200
    add_photos(9)
    with CaptureQueriesContext(connection) as ten:
        page = practitioner_client.get(url).content.decode()
    assert page.count('data-testid="photo-thumbnail"') == 10
    assert len(one) == len(ten)
    assert sum("patients_clinicalphoto" in q["sql"] for q in ten.captured_queries) == 1


# --- hiding ----------------------------------------------------------------------------------


def test_hide_keeps_the_row_and_the_file(
    practitioner_client: Client, practitioner: User, stored_photo: ClinicalPhoto, private_storage: Path
) -> None:
    response = practitioner_client.post(url_for("photo_hide", stored_photo), {"reason": "wrong patient"})
    assert response.status_code == 302
    stored_photo.refresh_from_db()
    assert stored_photo.hidden_at is not None and stored_photo.hidden_reason == "wrong patient"
    assert (private_storage / stored_photo.file_name).is_file()
    assert practitioner_client.get(url_for("photo_file", stored_photo)).status_code == 404
    assert (
        url_for("photo_file", stored_photo)
        not in practitioner_client.get(url_for("photo_list", stored_photo)).content.decode()
    )
    event_model = apps.get_model("patients", "ClinicalPhotoEvent")
    last = (
        event_model.objects.filter(pgh_obj_id=stored_photo.pk).order_by("-pgh_id").select_related("pgh_context").first()
    )
    assert last.pgh_context.metadata["photo_hidden_by"] == practitioner.pk


def test_hide_needs_a_reason(practitioner_client: Client, stored_photo: ClinicalPhoto) -> None:
    response = practitioner_client.post(url_for("photo_hide", stored_photo), {"reason": "   "})
    assert response.status_code == 400
    assert "Say why the photo is hidden." in response.content.decode()
    stored_photo.refresh_from_db()
    assert stored_photo.hidden_at is None


# --- the card on the patient page ------------------------------------------------------------


def test_patient_card_offers_upload_only_with_consent(stored_photo: ClinicalPhoto, photo_consent: Consent) -> None:
    patient = stored_photo.patient
    with_consent = render_to_string(
        "patients/photos/_patient_card.html",
        {"patient": patient, "photos": [stored_photo], "photo_consent": photo_consent},
    )
    assert url_for("photo_file", stored_photo) in with_consent
    assert reverse("photo_upload", args=[patient.pk]) in with_consent
    assert 'data-testid="photo-consent-missing"' not in with_consent
    without = render_to_string(
        "patients/photos/_patient_card.html", {"patient": patient, "photos": [], "photo_consent": None}
    )
    assert reverse("photo_upload", args=[patient.pk]) not in without
    assert 'data-testid="photo-consent-missing"' in without
    assert reverse("consent_capture", args=[patient.pk, "photography"]) in without


def test_templates_have_no_inline_script_or_style() -> None:
    root = Path(__file__).resolve().parents[2] / "templates" / "patients" / "photos"
    for template in root.glob("*.html"):
        text = template.read_text()
        assert "<script" not in text and "style=" not in text, template.name
        assert not re.search(r"\son[a-z]+\s*=", text), template.name


@pytest.mark.django_db
def test_a_staff_photo_must_name_its_uploader() -> None:
    from django.db import IntegrityError, transaction

    patient = PatientFactory()
    with pytest.raises(IntegrityError), transaction.atomic():
        ClinicalPhoto.objects.create(
            patient=patient,
            file_name="photos/x.png",
            content_type="image/png",
            width=1,
            height=1,
            size_bytes=1,
            sha256="0" * 64,
            source=ClinicalPhoto.Source.STAFF,
            uploaded_by=None,
        )
