from __future__ import annotations

import pytest

from mesoclinic.pdf import PDF_BASE_URL, StaticOnlyFetcher, pdf_render


def test_fetcher_serves_the_apps_static_files() -> None:
    response = StaticOnlyFetcher().fetch(f"{PDF_BASE_URL}static/css/pdf.css")
    assert b"@page" in response.read()


@pytest.mark.parametrize(
    "url",
    [
        "file:///etc/passwd",
        "http://169.254.169.254/latest/meta-data/",
        "https://example.org/logo.png",
        f"{PDF_BASE_URL}static/../../../etc/passwd",
        f"{PDF_BASE_URL}media/secret.jpg",
        f"{PDF_BASE_URL}static/css/missing.css",
    ],
)
def test_fetcher_refuses_everything_else(url: str, caplog: pytest.LogCaptureFixture) -> None:
    with pytest.raises(ValueError, match="refused"):
        StaticOnlyFetcher().fetch(url)
    assert "refused" in caplog.text


def test_render_ignores_a_hostile_reference(caplog: pytest.LogCaptureFixture) -> None:
    pdf = pdf_render('<p>x</p><img src="file:///etc/passwd"><link rel="stylesheet" href="http://evil.test/a.css">')
    assert pdf.startswith(b"%PDF")
    assert "file:///etc/passwd" in caplog.text and "http://evil.test/a.css" in caplog.text
