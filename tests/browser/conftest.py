from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

CHROMIUM = Path("/usr/bin/chromium")

if not CHROMIUM.exists():
    # Said loudly: a missing browser must not look like a passing journey.
    print(f"\n*** Browser tests SKIPPED: {CHROMIUM} not found (apt-get install chromium) ***\n")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if CHROMIUM.exists():
        return
    skip = pytest.mark.skip(reason=f"browser tests need {CHROMIUM} (apt-get install chromium)")
    for item in items:
        if "tests/browser/" in str(item.fspath):
            item.add_marker(skip)


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args: dict) -> dict:
    return {
        **browser_type_launch_args,
        "executable_path": str(CHROMIUM),
        "args": [
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            "--disable-quic",
        ],
    }


@pytest.fixture(autouse=True)
def _plain_static_files(settings) -> None:
    """live_server serves static files from the finders by their plain names; the
    production manifest storage would render hashed names that it does not know."""
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }


@pytest.fixture(autouse=True)
def _async_unsafe() -> None:
    # live_server and sync Playwright share the test process's event loop thread.
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"


ARTEFACTS = Path(os.environ.get("BROWSER_ARTEFACTS", "test-results"))


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> object:
    report = yield
    # Kept on the item so that fixtures can tell, at teardown, whether the test failed.
    setattr(item, f"report_{report.when}", report)
    return report


@pytest.fixture
def journey_page(request: pytest.FixtureRequest, browser: object) -> Iterator[Callable[[str], object]]:
    """A page in a browser context of its own per person (staff sessions stay apart).

    When the test fails, each page is saved as ``test-results/<test>/<person>.png``: the
    CI artefacts that show where a journey stopped."""
    contexts: dict[str, tuple[object, object]] = {}

    def open_page(person: str) -> object:
        context = browser.new_context(accept_downloads=True)  # type: ignore[attr-defined]
        context.set_default_timeout(15000)
        page = context.new_page()
        contexts[person] = (context, page)
        return page

    yield open_page
    report = getattr(request.node, "report_call", None)
    if report is not None and report.failed:
        folder = ARTEFACTS / request.node.name
        folder.mkdir(parents=True, exist_ok=True)
        for person, (_context, page) in contexts.items():
            try:
                page.screenshot(path=str(folder / f"{person}.png"), full_page=True)  # type: ignore[attr-defined]
                (folder / f"{person}.url.txt").write_text(page.url)  # type: ignore[attr-defined]
            except Exception as error:  # noqa: BLE001 - a screenshot must not hide the failure
                print(f"screenshot of {person} failed: {error}")
    for context, _page in contexts.values():
        context.close()  # type: ignore[attr-defined]
