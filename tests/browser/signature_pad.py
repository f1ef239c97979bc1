"""Drawing on the consent pages' signature pad, as a patient does with a finger."""

from __future__ import annotations

from playwright.sync_api import Page


def signature_draw(page: Page) -> None:
    pad = page.locator("canvas[data-signature-pad]")
    pad.scroll_into_view_if_needed()
    box = pad.bounding_box()
    assert box is not None
    page.mouse.move(box["x"] + 20, box["y"] + box["height"] / 2)
    page.mouse.down()
    for step in range(1, 30):
        page.mouse.move(box["x"] + 20 + step * 10, box["y"] + box["height"] / 2 + (15 if step % 2 else -15))
    page.mouse.up()
