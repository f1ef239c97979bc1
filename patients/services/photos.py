"""Clinical photographs: validated by content, cleaned of metadata, stored privately."""

from __future__ import annotations

import hashlib
import io
import logging
import uuid
import warnings
from dataclasses import dataclass
from typing import IO, TYPE_CHECKING

import pghistory
from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.files.base import ContentFile
from django.core.files.storage import storages
from django.db import transaction
from django.template.defaultfilters import filesizeformat
from django.utils import timezone
from django.utils.translation import gettext as _
from PIL import Image, ImageOps, UnidentifiedImageError

from patients.models import Area, ClinicalPhoto, Consultation, Patient
from patients.selectors import consent_current

if TYPE_CHECKING:
    from mesoclinic.models import User
    from treatments.models import TreatmentSession

logger = logging.getLogger(__name__)

PHOTO_MAX_BYTES: int = getattr(settings, "PHOTO_MAX_BYTES", 15 * 1024 * 1024)
PHOTO_MAX_PIXELS: int = getattr(settings, "PHOTO_MAX_PIXELS", 40_000_000)
PHOTO_JPEG_QUALITY = 90
PHOTO_STORAGE = "private"

# Pillow only ever tries these parsers on an upload; MPO is how Pillow names the
# multi-picture JPEGs many phones and cameras write, and is kept as a plain JPEG.
_OPEN_FORMATS = ("JPEG", "PNG")
_JPEG_FORMATS = frozenset({"JPEG", "MPO"})
_JPEG_MODES = frozenset({"L", "RGB"})
_PNG_MODES = frozenset({"1", "L", "LA", "I", "I;16", "P", "RGB", "RGBA"})
# ISO base media "ftyp" brands of HEIC/HEIF stills and sequences (iPhone default).
_HEIF_BRANDS = frozenset({b"heic", b"heix", b"hevc", b"hevx", b"heim", b"heis", b"hevm", b"hevs", b"mif1", b"msf1"})
_AVIF_BRANDS = frozenset({b"avif", b"avis"})


@dataclass(frozen=True)
class CleanPhoto:
    """An upright image re-encoded without metadata, ready to store."""

    data: bytes
    content_type: str
    extension: str
    width: int
    height: int


def _file_error(message: str) -> ValidationError:
    return ValidationError({"uploaded_file": [message]})


def _not_accepted(kind: str) -> ValidationError:
    return _file_error(
        _("This file is a %(kind)s, not a JPEG or PNG photo. Only JPEG and PNG photos are accepted.") % {"kind": kind}
    )


def _too_many_pixels() -> ValidationError:
    return _file_error(
        _("This image has too many pixels (the limit is %(megapixels)s megapixels). Export it at a smaller size.")
        % {"megapixels": PHOTO_MAX_PIXELS // 1_000_000}
    )


def _unreadable() -> ValidationError:
    return _file_error(_("This file could not be read as a JPEG or PNG photo. Only JPEG and PNG photos are accepted."))


def _refuse_known_non_photo(head: bytes) -> None:
    """Name the formats people actually send, so the refusal says what to do."""
    if head[4:8] == b"ftyp":
        brand = head[8:12]
        if brand in _HEIF_BRANDS:
            raise _file_error(
                _(
                    "HEIC photos are not accepted yet; set the camera or phone to 'Most compatible' (JPEG) "
                    "or export as JPEG."
                )
            )
        if brand in _AVIF_BRANDS:
            raise _not_accepted("AVIF")
        raise _not_accepted(_("video or other media file"))
    if head.startswith((b"GIF87a", b"GIF89a")):
        raise _not_accepted("GIF")
    if head.startswith(b"RIFF") and head[8:12] == b"WEBP":
        raise _not_accepted("WebP")
    if head.startswith(b"%PDF"):
        raise _not_accepted("PDF")
    if head.startswith((b"II*\x00", b"MM\x00*")):
        raise _not_accepted("TIFF")
    if head.startswith(b"BM"):
        raise _not_accepted("BMP")
    stripped = head.lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    if stripped.startswith((b"<svg", b"<?xml", b"<!doctype", b"<html")):
        raise _not_accepted(_("SVG or web page"))


def photo_read(uploaded_file: IO[bytes]) -> bytes:
    """The upload's bytes, reading at most one byte more than the limit."""
    declared = getattr(uploaded_file, "size", None)
    if declared is not None and declared > PHOTO_MAX_BYTES:
        raise photo_too_large(declared)
    if hasattr(uploaded_file, "seek"):
        uploaded_file.seek(0)
    data = uploaded_file.read(PHOTO_MAX_BYTES + 1)
    if len(data) > PHOTO_MAX_BYTES:
        raise photo_too_large(None)
    if not data:
        raise _file_error(_("The file is empty."))
    return data


def photo_too_large(size: int | None) -> ValidationError:
    """The refusal for a file over the size limit (shared with the upload form)."""
    limit = filesizeformat(PHOTO_MAX_BYTES)
    if size is None:
        return _file_error(_("This file is larger than %(limit)s, the limit for a photo.") % {"limit": limit})
    return _file_error(
        _("This file is %(size)s; a photo can be at most %(limit)s.") % {"size": filesizeformat(size), "limit": limit}
    )


def photo_clean(data: bytes) -> CleanPhoto:
    """Open the bytes as JPEG or PNG by content, check the pixel count before decoding,
    turn the image upright and re-encode it without EXIF, XMP, GPS or text chunks."""
    _refuse_known_non_photo(data[:64])
    with warnings.catch_warnings():
        # Pillow only warns between its own limit and twice that: a bomb is an error here.
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            image = Image.open(io.BytesIO(data), formats=_OPEN_FORMATS)
        except (Image.DecompressionBombError, Image.DecompressionBombWarning):
            raise _too_many_pixels() from None
        except UnidentifiedImageError:
            raise _unreadable() from None
        except Exception as error:  # noqa: BLE001 - Pillow raises many types on hostile input; all mean "unreadable"
            logger.info("photo refused, header unreadable: %r", error)
            raise _unreadable() from None
        with image:
            if image.format not in _JPEG_FORMATS and image.format != "PNG":
                raise _unreadable()
            width, height = image.size
            # The header's size is known before any pixel is decoded.
            if width < 1 or height < 1 or width * height > PHOTO_MAX_PIXELS:
                raise _too_many_pixels()
            if image.format == "PNG" and getattr(image, "n_frames", 1) > 1:
                raise _file_error(_("Animated images are not accepted. Upload a still JPEG or PNG photo."))
            try:
                return _reencode(image)
            except (Image.DecompressionBombError, Image.DecompressionBombWarning):
                raise _too_many_pixels() from None
            except Exception as error:  # noqa: BLE001 - truncated or corrupt pixel data, malformed EXIF …
                logger.info("photo refused, pixels unreadable: %r", error)
                raise _unreadable() from None


def _reencode(image: Image.Image) -> CleanPhoto:
    image.load()
    upright = ImageOps.exif_transpose(image)
    icc_profile = image.info.get("icc_profile")
    transparency = image.info.get("transparency")
    # Nothing read from the upload's metadata is written back, except the colour profile.
    upright.info = {}
    out = io.BytesIO()
    if image.format in _JPEG_FORMATS:
        if upright.mode not in _JPEG_MODES:
            upright = upright.convert("RGB")
            icc_profile = None  # a CMYK profile does not describe the converted pixels
        options: dict[str, object] = {"quality": PHOTO_JPEG_QUALITY}
        if icc_profile:
            options["icc_profile"] = icc_profile
        upright.save(out, format="JPEG", **options)
        content_type, extension = "image/jpeg", "jpg"
    else:
        if upright.mode not in _PNG_MODES:
            upright = upright.convert("RGBA")
            icc_profile = transparency = None
        options = {"optimize": True}
        if icc_profile:
            options["icc_profile"] = icc_profile
        if transparency is not None:
            options["transparency"] = transparency
        upright.save(out, format="PNG", **options)
        content_type, extension = "image/png", "png"
    return CleanPhoto(
        data=out.getvalue(),
        content_type=content_type,
        extension=extension,
        width=upright.width,
        height=upright.height,
    )


@transaction.atomic
def photo_upload(
    *,
    patient: Patient,
    uploaded_file: IO[bytes],
    uploaded_by: User | None,
    area: str = "",
    view: str = "",
    consultation: Consultation | None = None,
    session: TreatmentSession | None = None,
) -> ClinicalPhoto:
    """Store a clinical photo of a patient who has a current photography consent.

    The file is accepted by its content only (JPEG or PNG, within the size and pixel
    limits), turned upright and re-encoded without metadata, and stored in the private
    storage under a generated name; the row records its size, pixels and checksum.
    """
    if patient.status != Patient.Status.ACTIVE:
        raise ValidationError(_("This record is archived: restore it before adding photos."))
    if consent_current(patient, "photography") is None:
        raise ValidationError(
            _(
                "This patient has no current consent to clinical photographs. "
                "Record the photography consent before taking or uploading photos."
            )
        )
    if consultation is not None and consultation.patient_id != patient.pk:
        raise ValidationError({"consultation": [_("This consultation belongs to another patient.")]})
    if session is not None and session.patient_id != patient.pk:
        raise ValidationError({"session": [_("This session belongs to another patient.")]})
    if area and area not in Area.values:
        raise ValidationError({"area": [_("Choose an area from the list.")]})
    clean = photo_clean(photo_read(uploaded_file))
    storage = storages[PHOTO_STORAGE]
    file_name = storage.save(f"photos/{patient.pk}/{uuid.uuid4().hex}.{clean.extension}", ContentFile(clean.data))
    try:
        photo = ClinicalPhoto(
            patient=patient,
            consultation=consultation,
            session=session,
            area=area,
            view=view.strip(),
            file_name=file_name,
            content_type=clean.content_type,
            width=clean.width,
            height=clean.height,
            size_bytes=len(clean.data),
            sha256=hashlib.sha256(clean.data).hexdigest(),
            uploaded_by=uploaded_by,
            source=ClinicalPhoto.Source.STAFF if uploaded_by is not None else ClinicalPhoto.Source.PATIENT,
        )
        photo.full_clean()
        photo.save()
    except BaseException:
        # The row is the only way to the file: without it, the file must not stay.
        storage.delete(file_name)
        raise
    return photo


@transaction.atomic
def photo_hide(*, photo: ClinicalPhoto, reason: str, hidden_by: User) -> ClinicalPhoto:
    """Hide a photo from the record (e.g. wrong patient) without deleting it or its file.

    Who hid it is kept in the change history's context, with the reason on the row.
    """
    reason = " ".join(reason.split())
    if not reason:
        raise ValidationError({"reason": [_("Say why the photo is hidden.")]})
    locked = ClinicalPhoto.objects.select_for_update().get(pk=photo.pk)
    if locked.hidden_at is not None:
        raise ValidationError(_("This photo is already hidden."))
    locked.hidden_at = timezone.now()
    locked.hidden_reason = reason
    locked.full_clean()
    with pghistory.context(photo_hidden_by=hidden_by.pk):
        locked.save(update_fields=["hidden_at", "hidden_reason"])
    photo.hidden_at, photo.hidden_reason = locked.hidden_at, locked.hidden_reason
    return photo
