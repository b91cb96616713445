"""Screenshots of every tab of the Space for the README, taken in Debian's Chromium.

The Class sampling tab is shown after one run, the Energy explorer after an attack; the CLIP
tabs as a fresh visitor sees them.

    python experiments/space_screenshots.py --out docs/figures/space
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # app.py sits at the repository root; importing it starts nothing

import app  # noqa: E402

CHROMIUM = "/usr/bin/chromium"  # Debian's (`apt-get install chromium`)
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="docs/figures/space")
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    from playwright.sync_api import sync_playwright

    demo, url = app.serve_in_background()
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
            page = browser.new_page(viewport={"width": 1200, "height": 860})
            tall = {"Energy explorer": 1500}  # its report and both figures in one picture
            page.goto(url, wait_until="networkidle")
            for tab, _ in app.TABS:
                page.get_by_role("tab", name=tab).click()
                if tab == "Class sampling":
                    page.get_by_role("button", name="Sample", exact=True).click()
                    page.get_by_text("Reproduce:", exact=False).wait_for(timeout=60_000)
                if tab == "Energy explorer":
                    page.get_by_role("button", name="Show energies").click()
                    page.get_by_text("Input: test image", exact=False).wait_for(timeout=60_000)
                    page.get_by_role("button", name="Attack", exact=True).click()
                    page.get_by_text("PGD (untargeted", exact=False).wait_for(timeout=120_000)
                page.set_viewport_size({"width": 1200, "height": tall.get(tab, 860)})
                page.evaluate("() => window.scrollTo(0, 0)")
                page.wait_for_timeout(500)
                path = out / f"{tab.lower().replace(' ', '-')}.png"
                page.screenshot(path=str(path))
                print(path)
            browser.close()
    finally:
        demo.close()


if __name__ == "__main__":
    main()
