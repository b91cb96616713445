"""The Space in a real browser: Debian's Chromium driven by Playwright.

Opens the page, visits every tab, runs class sampling and checks that the preview image updates
while the samples form and that the final grid and its status appear. A screenshot goes to the
test's temp folder.
"""

from __future__ import annotations

import contextlib

import pytest

from conftest import fresh_app

CHROMIUM = "/usr/bin/chromium"  # `apt-get install chromium`; .ci/run installs it
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]
TABS = [  # in the Space's order: the offline tabs first
    "Class sampling",
    "Energy explorer",
    "Text-to-image",
    "Reconstruction",
    "Style transfer",
    "Models",
]

pytestmark = [
    pytest.mark.slow,
    pytest.mark.filterwarnings("ignore::Warning:gradio.queueing"),
]


@pytest.fixture
def served_app():
    demo, url = fresh_app().serve_in_background()
    yield url
    demo.close()


@contextlib.contextmanager
def _page(url: str, width: int, height: int):
    """A Chromium page on the served Space, at this viewport."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        try:
            page = browser.new_page(viewport={"width": width, "height": height})
            page.goto(url, wait_until="networkidle")
            yield page
        finally:
            browser.close()


def _count_image_updates(page) -> None:
    """From now on, window.__frames counts every new image the page shows."""
    page.evaluate(
        """() => {
            window.__frames = 0;
            new MutationObserver(() => { window.__frames += 1; })
                .observe(document.body, {subtree: true, attributes: true,
                         attributeFilter: ["src"], childList: true});
        }"""
    )


def test_every_tab_opens_and_class_sampling_streams_in_chromium(served_app, tmp_path):
    with _page(served_app, 1280, 900) as page:
        for tab in TABS:
            page.get_by_role("tab", name=tab).click()
            page.wait_for_timeout(200)
        page.get_by_role("tab", name="Class sampling").click()
        _count_image_updates(page)  # previews, then the final grid
        page.get_by_role("button", name="Sample", exact=True).click()
        page.get_by_text("Reproduce:", exact=False).wait_for(timeout=60_000)  # the final status
        frames = page.evaluate("() => window.__frames")
        grid = page.locator("img[src*='/file='], img[src^='data:'], img[src*='gradio_api']")
        assert grid.count() >= 1
        assert frames >= 3, f"the output changed only {frames} times: no streamed previews"
        page.screenshot(path=str(tmp_path / "class-sampling.png"), full_page=True)
    assert (tmp_path / "class-sampling.png").stat().st_size > 10_000


def test_energy_explorer_reports_then_streams_an_attack_in_chromium(served_app, tmp_path):
    with _page(served_app, 1280, 1400) as page:
        page.get_by_role("tab", name="Energy explorer").click()
        page.get_by_role("button", name="Show energies").click()
        page.get_by_text("Input: test image", exact=False).wait_for(timeout=60_000)
        assert page.get_by_text("out of distribution", exact=False).count() >= 1  # header
        page.screenshot(path=str(tmp_path / "explorer-report.png"), full_page=True)
        _count_image_updates(page)
        page.get_by_role("button", name="Attack", exact=True).click()
        page.get_by_text("PGD (untargeted", exact=False).wait_for(timeout=120_000)
        frames = page.evaluate("() => window.__frames")
        assert frames >= 5, f"the attack view changed only {frames} times: not streamed"
        page.screenshot(path=str(tmp_path / "explorer-attack.png"), full_page=True)
        # A failing run clears what the last one showed: no stale report under an error.
        page.get_by_role("radio", name="Upload").check()
        page.get_by_role("button", name="Show energies").click()
        page.get_by_text("upload an image first", exact=False).first.wait_for(timeout=30_000)
        assert page.get_by_text("PGD (untargeted", exact=False).count() == 0
    for name in ("explorer-report.png", "explorer-attack.png"):
        assert (tmp_path / name).stat().st_size > 10_000


def test_a_phone_visitor_lands_on_a_tab_that_works_offline(served_app, tmp_path):
    with _page(served_app, 390, 844) as page:
        first = page.get_by_role("tab", name="Class sampling")
        assert first.is_visible() and first.get_attribute("aria-selected") == "true"
        assert page.get_by_role("button", name="Sample", exact=True).is_visible()
        page.screenshot(path=str(tmp_path / "phone.png"), full_page=False)
