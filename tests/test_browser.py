"""Each rendered page of the write-up, opened in headless Chromium with the network disabled, as a reader would.

Needs Debian's chromium and chromium-driver (.ci/run installs them); skips, saying why, where none can be had."""
import json
import shutil

import pytest

import kron_report as kr

PAGES = {"kronecker_report.html": "Shrinking an MLP with Kronecker products",
         "beyond.html": "How far can Kronecker layers go?"}


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


def open_page(driver, page: str, width: int):
    driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", {"width": width, "height": 900, "deviceScaleFactor": 1,
                                                                  "mobile": width < 600})
    driver.get_log("performance"), driver.get_log("browser")  # start both logs empty
    driver.get((kr.ROOT / "report" / page).as_uri())
    driver.execute_script("return document.readyState")
    events = [json.loads(entry["message"])["message"] for entry in driver.get_log("performance")]
    return events, driver.get_log("browser")


@pytest.mark.parametrize("width", [1280, 390])
@pytest.mark.parametrize("page", list(PAGES))
def test_page_reads_offline_at_laptop_and_phone_width(chrome, page, width):
    events, console = open_page(chrome, page, width)
    requested = [e["params"]["request"]["url"] for e in events if e["method"] == "Network.requestWillBeSent"]
    assert requested and all(url.startswith(("file://", "data:")) for url in requested), \
        [u for u in requested if not u.startswith(("file://", "data:"))]
    assert not [e for e in events if e["method"] == "Network.loadingFailed"]
    assert not [m for m in console if m["level"] == "SEVERE"], console
    images = chrome.execute_script("return [...document.images].map(i => [i.complete, i.naturalWidth, i.alt])")
    assert images and all(done and natural_width > 0 for done, natural_width, _ in images)
    assert all(alt and "No description" not in alt for _, _, alt in images)
    overflow = chrome.execute_script("return document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0, f"{page} is {overflow} px wider than a {width} px screen"
    assert chrome.find_element("tag name", "h1").text.startswith(PAGES[page])
    text = chrome.find_element("tag name", "main").text
    assert "Contents" in text and chrome.find_elements("css selector", "a[href^='#']")   # a table of contents
    assert chrome.find_elements("id", "references") and "Kento Nozawa" in text
    for plumbing in ("sweep of", "runs trained now", "TrainSettings(", "Executing"):
        assert plumbing not in text, plumbing
    assert len(chrome.find_elements("css selector", "figcaption")) == len(images)
    lede = chrome.find_element("css selector", "main .jp-RenderedMarkdown p, main .jp-RenderedHTMLCommon p")
    assert len(lede.text) > 100  # the page opens on prose, not on code or a table
