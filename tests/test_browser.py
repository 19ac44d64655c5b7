"""Each page of the write-up, rendered now by the code from the committed runs (nothing is trained) into a
temporary folder, then opened in headless Chromium with the network disabled, as a reader would.

Needs Debian's chromium and chromium-driver (.ci/run installs them); skips, saying why, where none can be had.
Part 1's short training run uses the synthetic stand-in here, so the test needs no MNIST files."""
import json
import re
import shutil

import pytest

import kron_report as kr
import kron_utils as ku

TITLES = {page: title for page, (_, title) in kr.PAGES.items()}


@pytest.fixture(scope="module")
def chrome():
    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed")
    if not (shutil.which("chromium") and shutil.which("chromedriver")):
        pytest.skip("no browser: apt-get install chromium chromium-driver")
    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium")
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--host-resolver-rules=MAP * ~NOTFOUND", "--window-size=1280,900"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    driver = webdriver.Chrome(options=options, service=webdriver.ChromeService(shutil.which("chromedriver")))
    driver.execute_cdp_cmd("Network.enable", {})
    driver.execute_cdp_cmd("Network.emulateNetworkConditions", {"offline": True, "latency": 0, "downloadThroughput": -1,
                                                               "uploadThroughput": -1})
    yield driver
    driver.quit()


@pytest.fixture(scope="module")
def pages(chrome, default_pages):
    """Every page rendered now from the committed runs (the shared ``default_pages`` of conftest.py)."""
    return default_pages["pages"]


def open_page(driver, path, width: int):
    driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", {"width": width, "height": 900, "deviceScaleFactor": 1,
                                                                  "mobile": width < 600})
    driver.get_log("performance"), driver.get_log("browser")  # start both logs empty
    driver.get(path.as_uri())
    driver.execute_script("return document.readyState")
    events = [json.loads(entry["message"])["message"] for entry in driver.get_log("performance")]
    return events, driver.get_log("browser")


def overflow(driver, width: int) -> int:
    """How many px the page is wider than the emulated screen. In mobile emulation a wide element widens the
    layout viewport itself (innerWidth grows with it), so compare with the emulated width, not innerWidth."""
    return driver.execute_script("return Math.max(document.documentElement.scrollWidth, document.body.scrollWidth)") - width


def figure_text_px(driver) -> list[tuple[str, float]]:
    """Each figure's smallest text as rendered now, in CSS px: the font size it was drawn at (points, recorded by
    show_figure) times the figure's shown width over its drawn width (inches)."""
    return driver.execute_script(
        "return [...document.querySelectorAll('figure img')].map(i => [i.alt.slice(0, 40), "
        "parseFloat(i.dataset.minFontPt) / 72 * i.getBoundingClientRect().width / parseFloat(i.dataset.widthIn)])")


#: The smallest text a figure may show, in CSS px: at laptop width, and at phone width.
MIN_TEXT_PX = {1280: 9.0, 390: 7.0}


def plain(markdown: str) -> str:
    """Markdown emphasis and code marks removed, as the browser shows the text."""
    return re.sub(r"\*\*|`|\*", "", markdown)


@pytest.mark.parametrize("width", [1280, 390])
@pytest.mark.parametrize("page", list(kr.PAGES))
def test_page_reads_offline_at_laptop_and_phone_width(chrome, pages, page, width):
    events, console = open_page(chrome, pages[page], width)
    requested = [e["params"]["request"]["url"] for e in events if e["method"] == "Network.requestWillBeSent"]
    assert requested and all(url.startswith(("file://", "data:")) for url in requested), \
        [u for u in requested if not u.startswith(("file://", "data:"))]
    assert not [e for e in events if e["method"] == "Network.loadingFailed"]
    assert not [m for m in console if m["level"] == "SEVERE"], console
    images = chrome.execute_script("return [...document.images].map(i => [i.complete, i.naturalWidth, i.alt])")
    assert images and all(done and natural_width > 0 for done, natural_width, _ in images)
    assert all(alt and "No description" not in alt for _, _, alt in images)
    assert overflow(chrome, width) <= 0, f"{page} is {overflow(chrome, width)} px wider than a {width} px screen"
    assert chrome.find_element("tag name", "h1").text.startswith(TITLES[page])
    text = chrome.find_element("tag name", "main").text
    assert "Contents" in text and chrome.find_elements("css selector", "a[href^='#']")   # a table of contents
    for plumbing in ("sweep of", "runs trained now", "TrainSettings(", "Executing"):
        assert plumbing not in text, plumbing
    small = [(alt, round(px, 1)) for alt, px in figure_text_px(chrome) if not px >= MIN_TEXT_PX[width]]
    assert not small, f"figure text under {MIN_TEXT_PX[width]} px at {width} px: {small}"
    captions = [c.text for c in chrome.find_elements("css selector", "figcaption")]
    assert len(captions) == len(images) and [c.split(".")[0] for c in captions] == [
        f"Figure {n}" for n in range(1, len(captions) + 1)]
    lede = chrome.find_element("css selector", "main .jp-RenderedMarkdown p, main .jp-RenderedHTMLCommon p")
    assert len(lede.text) > 100  # the page opens on prose, not on code or a table


def test_the_lede_is_the_one_the_committed_runs_give(chrome, pages):
    open_page(chrome, pages["kronecker_report"], 1280)
    rows = kr.load_results(kr.ROOT / "results", ku.TrainSettings(), ku.VARIANTS, kr.REPORT_SEEDS)
    found = kr.post_findings(rows, "mnist", 35)
    lede = kr.post_section("lede", part2=found["part2"], level=kr.level_net(found["reach"]), same=found["same"],
                           headline_seeds=kr.HEADLINE_SEEDS, post_recipe=True, data="MNIST",
                           why=found["why"], recipe=found["recipe"])
    expected = [" ".join(plain(p).split()) for p in lede.split("\n\n")]
    paragraphs = [" ".join(p.text.split()) for p in chrome.find_elements("css selector", "main p")]
    assert all(p in paragraphs for p in expected), expected


#: The longest a page may be at 1280 px, in screens of 800 px: the post, and every evidence page.
MAX_SCREENS = 12

#: The prose rules per page: numbers in one sentence, six-word phrases recurring 3+ times, numbers per 100 words.
PROSE_LIMITS = {"kronecker_report": dict(max_numbers=6, max_repeats=3, max_density=8.0)}
EVIDENCE_LIMITS = dict(max_numbers=8, max_repeats=3)

#: The visible prose, as shared/tools/page_stats.py reads it: code, tables, figures and navigation left out.
PROSE_JS = """
    const body = document.body.cloneNode(true);
    body.querySelectorAll('.jp-InputArea, pre, table, script, style, nav, img, svg').forEach(e => e.remove());
    document.body.appendChild(body); body.style.position = 'absolute'; body.style.left = '-99999px';
    const t = body.innerText; body.remove(); return t;"""

#: The table cells taller than three lines, as [lines, text].
TALL_CELLS_JS = """
    return [...document.querySelectorAll('main td, main th')].map(td => {
        const s = getComputedStyle(td), lh = parseFloat(s.lineHeight) || 1.2 * parseFloat(s.fontSize);
        const h = td.getBoundingClientRect().height - parseFloat(s.paddingTop) - parseFloat(s.paddingBottom);
        return [Math.round(h / lh), td.innerText.slice(0, 60)]; }).filter(c => c[0] > 3);"""


def screens(driver) -> float:
    return driver.execute_script("return document.documentElement.scrollHeight") / 800


@pytest.mark.parametrize("page", list(kr.PAGES))
def test_each_page_fits_in_twelve_screens_with_cells_of_three_lines(chrome, pages, page):
    open_page(chrome, pages[page], 1280)
    assert screens(chrome) <= MAX_SCREENS, f"{page} is {screens(chrome):.1f} screens at 1280 px"
    assert chrome.execute_script(TALL_CELLS_JS) == []


@pytest.mark.parametrize("page", list(kr.PAGES))
def test_each_page_reads_as_prose_not_a_number_dump(chrome, pages, page):
    open_page(chrome, pages[page], 1280)
    text = chrome.execute_script(PROSE_JS)
    assert kr.prose_problems(text, **PROSE_LIMITS.get(page, EVIDENCE_LIMITS)) == []
    headers = chrome.execute_script("return [...document.querySelectorAll('main thead tr')].length "
                                    "- document.querySelectorAll('main thead').length")
    assert headers == 0, "a table with a header of more than one row (a pandas MultiIndex)"


def test_the_page_guards_can_fail(chrome, pages):
    """Each guard above, shown failing on the same page with one thing added."""
    open_page(chrome, pages["kronecker_report"], 1280)
    chrome.execute_script("const d = document.createElement('div'); d.style.height = '12000px';"
                          "document.querySelector('main').appendChild(d);")
    assert screens(chrome) > MAX_SCREENS
    open_page(chrome, pages["kronecker_report"], 1280)
    chrome.execute_script("const p = document.createElement('p'); p.textContent = 'It is 1.1, 2.2, 3.3, 4.4, 5.5, "
                          "6.6 and 7.7 pp. Linear(in_features=784, out_features=625)';"
                          "document.querySelector('main').appendChild(p);")
    problems = kr.prose_problems(chrome.execute_script(PROSE_JS), **PROSE_LIMITS["kronecker_report"])
    assert any("numbers in one sentence" in p for p in problems) and any(p.startswith("repr") for p in problems)
    chrome.execute_script("const t = document.querySelector('main td'); t.style.width = '40px';"
                          "t.textContent = 'a cell with far too many words to fit in three lines of a narrow column';")
    assert chrome.execute_script(TALL_CELLS_JS)


@pytest.mark.parametrize("page", list(kr.PAGES))
def test_the_references_are_the_generated_list(chrome, pages, page):
    open_page(chrome, pages[page], 1280)
    section = chrome.find_element("id", "references").find_element("xpath", "following::ol[1]")
    items = [li.text for li in section.find_elements("tag name", "li")]
    keys = kr.PAGE_REFERENCES[page]
    assert len(items) == len(keys)
    for item, key in zip(items, keys):
        assert item == plain(re.sub(r"\[([^\]]+)\]\([^)]+\)", r"\1", kr.reference_entry(key, page)))
    # the source post's English summary is on the post's list; the evidence pages point there
    assert ("In English:" in items[0]) == (page == "kronecker_report")


def test_the_overflow_check_catches_a_wide_element(chrome, pages):
    open_page(chrome, pages["beyond"], 390)
    assert overflow(chrome, 390) <= 0
    chrome.execute_script("const d = document.createElement('div'); d.style.width = '900px'; d.textContent = 'wide';"
                          "document.querySelector('main').appendChild(d);")
    assert overflow(chrome, 390) > 0


def test_the_figure_text_check_catches_small_text(chrome, pages):
    open_page(chrome, pages["beyond"], 390)
    assert all(px >= MIN_TEXT_PX[390] for _, px in figure_text_px(chrome))
    chrome.execute_script("document.querySelector('figure img').dataset.widthIn = '16';")  # drawn 16 in wide
    assert figure_text_px(chrome)[0][1] < MIN_TEXT_PX[390]
