"""The page, `/docs` and `/redoc` rendered by a real browser (headless Chromium from Debian,
driven by Selenium through Debian's chromedriver), from a real server, with no route out.

Every host name but the loopback fails to resolve and every other connection goes to a
dead proxy, so a page that needed a CDN would render blank: the docs' assets come from
the package (fastapi-offline). The tests find the page's answers (equal to the typed API's
over HTTP) and the API's operations in the rendered DOM, check that every resource came
from the server itself, and save a screenshot of each page in the test's tmp folder.
Without Chromium the tests skip, except in CI (`CI=true`), where they fail.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import pytest

from hatbot import progress
from hatbot.index import WordIndex

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
# A bound against hangs on a loaded machine, not a rendering-time claim.
WAIT = 60
OPERATIONS = ["/explain", "/guess", "/v1/explain", "/v1/guess", "/v1/model", "/healthz", "/readyz"]


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    if not (Path(CHROMIUM).is_file() and Path(CHROMEDRIVER).is_file()):
        message = f"no {CHROMIUM} and {CHROMEDRIVER} (Debian's chromium, chromium-driver)"
        if in_ci():
            pytest.fail(message)
        pytest.skip(message)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in [
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-dev-shm-usage",
        "--window-size=1280,1600",
        f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}",
        # No route out: other hosts do not resolve, other connections hit a dead proxy.
        "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
        "--proxy-server=http://127.0.0.1:9",
    ]:
        options.add_argument(flag)
    driver = webdriver.Chrome(options=options, service=Service(executable_path=CHROMEDRIVER))
    driver.set_page_load_timeout(WAIT)
    # Every request the pages' content security policy blocks, recorded from the first script.
    driver.execute_cdp_cmd(
        "Page.addScriptToEvaluateOnNewDocument",
        {
            "source": "window.blocked = []; document.addEventListener("
            "'securitypolicyviolation', e => window.blocked.push(e.blockedURI));"
        },
    )
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture(scope="module")
def shots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("screenshots")


def wait_for(driver: Any, css: str, count: int = 1) -> list[Any]:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    def found(d: Any) -> list[Any] | bool:
        elements = d.find_elements(By.CSS_SELECTOR, css)
        return elements if len(elements) >= count else False

    result: list[Any] = WebDriverWait(driver, WAIT).until(found)
    return result


def only_from(driver: Any, url: str) -> None:
    """Every resource the page asked for came from the server itself, or was blocked by the
    page's content security policy before it left the browser (ReDoc's footer logo)."""
    names = driver.execute_script(
        "return performance.getEntriesByType('resource').map(e => e.name)"
    )
    blocked = driver.execute_script("return window.blocked")
    assert names, "the page loaded no resource at all"
    elsewhere = [name for name in names if not name.startswith(url + "/")]
    assert all(name in blocked for name in elsewhere), (elsewhere, blocked)


def known_words(index: WordIndex) -> list[str]:
    return [w for w, ok in zip(index.words, index.eligible, strict=True) if ok][:40]


def test_the_page_shows_answers_and_what_they_are(
    browser: Any, live_bot: str, tiny_index: WordIndex, shots: Path
) -> None:
    word = known_words(tiny_index)[0]
    typed = httpx.post(f"{live_bot}/v1/explain", json={"word": word, "n_words": 5}, timeout=60)
    browser.get(f"{live_bot}/?explain={word}")
    items = wait_for(browser, "#explain-out li", 5)
    shown = [item.text.split("survives")[0].strip() for item in items]
    assert shown == typed.json()["words"]
    assert all("survives soft and hard" in item.text for item in items)
    version = wait_for(browser, "#explain-out .version code")[0].text
    assert version == tiny_index.version
    status = wait_for(browser, "#status[data-state=ready]")[0].text
    assert status == f"Model {tiny_index.version} is serving."
    assert "chosen for the other bots' models" in browser.find_element("id", "about").text
    assert browser.find_element("css selector", "label[for=word]").text == "Word to explain"
    browser.save_screenshot(str(shots / "page-explain.png"))

    # An example button asks, shows the answer and puts the query in the URL.
    button = browser.find_element("css selector", "#guess-examples button")
    hints = button.get_attribute("data-hints")
    button.click()
    items = wait_for(browser, "#guess-out li", 1)
    typed = httpx.post(
        f"{live_bot}/v1/guess", json={"words": hints.split(), "n_words": 5}, timeout=60
    )
    assert [item.text for item in items] == typed.json()["words"]
    assert browser.current_url == f"{live_bot}/?guess={hints.replace(' ', '+')}"
    notes = [n.text for n in browser.find_elements("css selector", "#guess-out .note")]
    expected = [f"{n['given']}: {n['note']}" for n in typed.json()["input"] if n["note"]]
    assert notes == expected
    browser.save_screenshot(str(shots / "page-guess.png"))
    only_from(browser, live_bot)

    # Unknown and rewritten input is said so on the page.
    browser.get(f"{live_bot}/?explain=Qwzx%20Qv")
    note = wait_for(browser, "#explain-out .note")[0].text
    assert note.startswith("Qwzx Qv: read as 'qwzxqv'") and "unknown to the model" in note


def test_swagger_ui_renders_every_operation_offline(
    browser: Any, live_bot: str, shots: Path
) -> None:
    browser.get(f"{live_bot}/docs")
    wait_for(browser, ".opblock", len(OPERATIONS) + 1)
    paths = {e.text for e in browser.find_elements("css selector", ".opblock-summary-path")}
    assert {*OPERATIONS, "/"} <= paths, paths
    assert "Explain a word (host protocol)" in browser.page_source
    browser.save_screenshot(str(shots / "docs.png"))
    only_from(browser, live_bot)


def test_redoc_renders_every_operation_offline(browser: Any, live_bot: str, shots: Path) -> None:
    browser.get(f"{live_bot}/redoc")
    wait_for(browser, "[data-section-id^='operation']", len(OPERATIONS) + 1)
    text = browser.find_element("css selector", "body").text
    for summary in [
        "Explain a word (host protocol)",
        "Guess a word from hints (host protocol)",
        "The serving model",
        "Readiness",
    ]:
        assert summary in text
    browser.save_screenshot(str(shots / "redoc.png"))
    only_from(browser, live_bot)


def test_the_page_says_what_a_service_without_a_model_prepares(
    browser: Any, tmp_path: Path, server: Any, bots: ModuleType, shots: Path
) -> None:
    store = tmp_path / "store"
    store.mkdir()
    progress.write(store, progress.Progress(stage="train", step="twins", done=2, of=9))
    url, process = server(store)
    try:
        browser.get(url + "/")
        status = wait_for(browser, "#status[data-state=not-ready]")[0]
        assert "stage train 2/9 (twins)" in status.text
        # It refreshes: the trainer moves on, the page follows without a reload.
        progress.write(store, progress.Progress(stage="train", step="table", done=8, of=9))
        from selenium.webdriver.support.ui import WebDriverWait

        WebDriverWait(browser, WAIT).until(lambda d: "8/9 (table)" in status.text)
        browser.save_screenshot(str(shots / "page-preparing.png"))
    finally:
        bots.stop_bot(process)
    shutil.rmtree(store)
