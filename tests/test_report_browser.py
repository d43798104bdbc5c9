"""The committed HTML reports in a real browser (headless Chromium, 1280 px wide): no table
wider than the page, every image loads, and the first screen (1280 x 1000 px) holds the
Summary's answer to the study's question. Skipped, saying so, where Chromium is not installed
(.ci/run installs it).

By hand: ``python -m pytest tests/test_report_browser.py -rP`` prints each page's figures.
"""

import functools
import json
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest
from report_markdown import committed_reports

REPORTS = sorted((Path(__file__).parents[1] / "experiments").glob("*/report/report.html"))
CHROMIUM = next((shutil.which(name) for name in ("chromium", "chromium-browser", "google-chrome")
                 if shutil.which(name)), None)
# After the page and its images have loaded: the page width, the tables sticking out of it,
# the images that failed, as JSON in <pre id="layout-check">.
CHECK = """<script>
window.addEventListener("load", () => {
  const width = document.documentElement.clientWidth;
  const tables = [...document.querySelectorAll("table")];
  const wide = tables.filter(t => t.getBoundingClientRect().right > width + 0.5)
    .map(t => Math.round(t.getBoundingClientRect().width));
  const broken = [...document.images].filter(i => !i.complete || i.naturalWidth === 0)
    .map(i => i.getAttribute("src"));
  const answer = document.querySelector("ul.answer");
  const summary = document.getElementById("summary");
  const result = {width, scroll: document.documentElement.scrollWidth, tables: tables.length,
                  images: document.images.length, wide, broken,
                  summary: summary ? summary.getBoundingClientRect().top + window.scrollY : null,
                  answer: answer ? {top: answer.getBoundingClientRect().top + window.scrollY,
                                    bottom: answer.getBoundingClientRect().bottom + window.scrollY,
                                    text: answer.innerText} : null};
  const pre = document.createElement("pre");
  pre.id = "layout-check";
  pre.textContent = JSON.stringify(result);
  document.body.appendChild(pre);
});
</script>"""


FIRST_SCREEN = (1280, 1000)


@functools.cache
def layout(page):
    """Chromium's measurements of ``page`` at 1280 x 1000 px (the dict CHECK writes)."""
    with tempfile.TemporaryDirectory() as folder:
        copy = Path(folder) / "page.html"
        text = page.read_text().replace(
            "<head>", f'<head><base href="{page.parent.resolve().as_uri()}/">', 1)
        copy.write_text(text.replace("</body>", CHECK + "</body>"))
        done = subprocess.run(
            [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
             "--no-first-run", "--disable-background-networking", "--disable-component-update",
             "--disable-sync", f"--user-data-dir={Path(folder) / 'profile'}",
             "--allow-file-access-from-files",
             f"--window-size={FIRST_SCREEN[0]},{FIRST_SCREEN[1]}",
             "--virtual-time-budget=15000", "--dump-dom", copy.as_uri()],
            capture_output=True, text=True, timeout=180)
    found = re.search(r'<pre id="layout-check">(.*?)</pre>', done.stdout, flags=re.S)
    assert found, f"Chromium gave no measurements for {page}: {done.stderr[-2000:]}"
    return json.loads(found.group(1).replace("&quot;", '"'))


@pytest.mark.e2e
@pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed")
@pytest.mark.parametrize("page", REPORTS, ids=[p.parent.parent.name for p in REPORTS])
def test_report_fits_the_page_and_every_image_loads(page):
    measured = layout(page)
    print(page, measured)
    assert measured["width"] >= 1200  # the 1280 px window, less a scroll bar
    assert measured["images"] == len(re.findall(r"<img ", page.read_text()))
    assert measured["broken"] == []
    assert measured["wide"] == [] and measured["scroll"] <= measured["width"]


@pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed")
@pytest.mark.parametrize("folder", committed_reports())
def test_first_screen_holds_the_summary_answer(folder):
    """The Summary's answer (the list under the question) ends within the first 1000 px, and
    it is the answer report.md gives under its Summary."""
    page = folder / "report.html"
    measured = layout(page)
    answer = measured["answer"]
    assert answer is not None, f"{page}: no Summary answer"
    assert measured["summary"] < answer["top"] < answer["bottom"] <= FIRST_SCREEN[1], answer
    summary = (page.parent / "report.md").read_text().split("## Summary", 1)[1]
    bullets = [line[2:] for line in summary.split("\n## ", 1)[0].splitlines()
               if line.startswith("- ")]
    assert bullets and [line.strip() for line in answer["text"].splitlines() if line.strip()] \
        == bullets
