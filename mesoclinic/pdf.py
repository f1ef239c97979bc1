"""PDF rendering with WeasyPrint, fetching nothing but the app's own static files."""

from __future__ import annotations

import logging
import mimetypes
from typing import Any

from django.conf import settings
from django.contrib.staticfiles import finders
from django.core.exceptions import SuspiciousFileOperation
from weasyprint import HTML
from weasyprint.urls import URLFetcher, URLFetcherResponse

logger = logging.getLogger("mesoclinic.pdf")

# A fixed origin that documents are rendered against, so that `{% static %}` paths
# resolve to URLs this fetcher recognises. Nothing is ever fetched from it.
PDF_BASE_URL = "https://mesoclinic.pdf/"


class StaticOnlyFetcher(URLFetcher):
    """Serves ``<PDF_BASE_URL><STATIC_URL>…`` from the static files; refuses the rest."""

    def fetch(self, url: str, headers: Any = None) -> URLFetcherResponse:
        static_prefix = PDF_BASE_URL.rstrip("/") + settings.STATIC_URL
        if url.startswith("data:"):
            return super().fetch(url, headers)
        if url.startswith(static_prefix):
            relative = url[len(static_prefix) :].split("?", 1)[0].split("#", 1)[0]
            try:
                path = finders.find(relative) if relative and ".." not in relative.split("/") else None
            except SuspiciousFileOperation:
                path = None
            if path is None and relative and ".." not in relative.split("/"):
                candidate = settings.STATIC_ROOT / relative
                path = str(candidate) if candidate.is_file() else None
            if path:
                content_type = mimetypes.guess_type(path)[0] or "application/octet-stream"
                with open(path, "rb") as handle:
                    # Without a type WeasyPrint takes a stylesheet for text/plain and ignores it.
                    return URLFetcherResponse(url, body=handle.read(), headers={"Content-Type": content_type})
        logger.warning("PDF renderer refused to fetch %s", url[:200])
        raise ValueError(f"refused: {url[:200]}")


def pdf_render(html: str) -> bytes:
    """Render an HTML string (a template's output) to PDF bytes."""
    return HTML(string=html, base_url=PDF_BASE_URL, url_fetcher=StaticOnlyFetcher()).write_pdf()
