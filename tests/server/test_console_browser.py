"""The console in a real browser: Debian's Chromium, driven by Selenium through Debian's
chromedriver, against `router serve` (uvicorn) on 127.0.0.1 in front of the fake provider.

One browser and one server for the module. Screenshots of each page go to the test's
tmp_path; with ROUTER_UPDATE_SCREENSHOTS=1 the overview's also replaces
docs/console-overview.png (the README's picture).
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from router.testing import FakeProviderServer, server_error
from tests.server.console_setup import ADMIN_KEY, MARKUP_MODEL, MARKUP_RULE, console_config
from tests.server.serving import BOB_KEY, ROOT, SECRETS, ServerProcess

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
WAIT_S = 20.0  # the longest any page may take to show what a test waits for
IN_CI = os.environ.get("CI") == "true"


def _need(what: str) -> None:
    """Skip on a laptop without the browser; in CI a missing browser is a failure."""
    if IN_CI:
        pytest.fail(f"{what} is missing in CI: .ci/run installs chromium and chromium-driver")
    pytest.skip(f"{what} is not installed (apt-get install chromium chromium-driver)")


try:
    from selenium import webdriver
    from selenium.common.exceptions import NoAlertPresentException
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select, WebDriverWait
except ImportError:  # pragma: no cover - depends on the install
    webdriver = None


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[webdriver.Chrome]:
    if webdriver is None:
        _need("selenium (the dev extra)")
    if not (os.access(CHROMIUM, os.X_OK) and os.access(CHROMEDRIVER, os.X_OK)):
        _need("chromium / chromedriver")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    profile = tmp_path_factory.mktemp("chromium-profile")
    for flag in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-dev-shm-usage",
        "--window-size=1280,1000",
        f"--user-data-dir={profile}",
    ):
        options.add_argument(flag)
    # The driver given explicitly: Selenium Manager never looks for one on the network.
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(WAIT_S)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


@pytest.fixture(scope="module")
def console_server(
    fake_server: FakeProviderServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerProcess]:
    root = tmp_path_factory.mktemp("console")
    config = root / "router.yaml"
    config.write_text(console_config(fake_server.base_url, log_text=True))
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("ADMIN_KEY", ADMIN_KEY)
        mp.setenv("BOB_KEY", BOB_KEY)
        with ServerProcess(config) as server:
            yield server
    for secret in (*SECRETS, ADMIN_KEY):
        assert secret not in server.output


def wait(driver: webdriver.Chrome) -> WebDriverWait:
    return WebDriverWait(driver, WAIT_S, poll_frequency=0.1)


def log_in(driver: webdriver.Chrome, server: ServerProcess, key: str) -> None:
    driver.delete_all_cookies()
    driver.get(server.url + "/ui")
    wait(driver).until(lambda d: d.current_url.startswith(server.url + "/ui/login"))
    driver.find_element(By.ID, "key").send_keys(key)
    driver.find_element(By.CSS_SELECTOR, "#login button[type=submit]").click()


def as_admin(driver: webdriver.Chrome, server: ServerProcess, path: str) -> None:
    driver.get(server.url + path)
    if "/ui/login" in driver.current_url:
        log_in(driver, server, ADMIN_KEY)
        wait(driver).until(lambda d: "/ui/login" not in d.current_url)
        driver.get(server.url + path)


def no_alert(driver: webdriver.Chrome) -> None:
    """Markup in a name never ran: no alert() fired."""
    with pytest.raises(NoAlertPresentException):
        driver.switch_to.alert  # noqa: B018 - the property raises when there is none


def send_traffic(server: ServerProcess, fake: FakeProviderServer) -> None:
    from openai import OpenAI

    client = OpenAI(base_url=server.base_url, api_key=ADMIN_KEY, max_retries=0, timeout=30)
    for n in (0, 1, 0):  # the second "hi 0" is served by the default rule's cache
        client.chat.completions.create(
            model="auto", messages=[{"role": "user", "content": f"hi {n}"}]
        )
    fake.enqueue(server_error(503))  # fast fails once: backup answers (a fallback)
    client.chat.completions.create(
        model="auto",
        messages=[{"role": "user", "content": "Fix this loop"}],
        extra_body={"use_case": "coding"},
    )
    client.chat.completions.create(
        model="auto",
        messages=[{"role": "user", "content": "Show me markup"}],
        extra_body={"use_case": "markup"},
    )


def test_a_key_without_admin_is_refused_at_the_login(browser, console_server):
    log_in(browser, console_server, BOB_KEY)
    error = wait(browser).until(lambda d: d.find_elements(By.ID, "login-error"))
    assert "may not open the console" in error[0].text
    assert browser.get_cookie("router_console") is None
    browser.get(console_server.url + "/v1/router/overview")
    assert '"invalid_api_key"' in browser.page_source  # no cookie: the API says 401


def test_the_overview_charts_hold_data_after_routed_requests(
    browser, console_server, fake, tmp_path
):
    send_traffic(console_server, fake)
    as_admin(browser, console_server, "/ui")
    bars = wait(browser).until(
        lambda d: [
            b
            for b in d.find_elements(By.CSS_SELECTOR, "#chart-requests rect.bar")
            if float(b.get_attribute("data-value")) > 0
        ]
    )
    assert sum(float(b.get_attribute("data-value")) for b in bars) >= 5
    assert browser.find_elements(By.CSS_SELECTOR, "#chart-latency circle[data-value]")
    fallbacks = browser.find_elements(By.CSS_SELECTOR, "#chart-errors rect.bar.second")
    assert any(float(b.get_attribute("data-value")) > 0 for b in fallbacks)
    hits = browser.find_elements(By.CSS_SELECTOR, "#chart-cache rect.bar")
    assert any(float(b.get_attribute("data-value")) > 0 for b in hits)
    assert browser.find_element(By.CSS_SELECTOR, '[data-field="cache_hit_rate"]').text == "33.3%"
    spend = browser.find_elements(By.CSS_SELECTOR, "#chart-spend-today rect.bar")
    assert len(spend) >= 3 and all(float(b.get_attribute("data-value")) > 0 for b in spend)
    names = [b.get_attribute("data-model") for b in spend]
    assert MARKUP_MODEL in names  # the model's name, as text
    titles = browser.find_elements(By.CSS_SELECTOR, "#chart-spend-today text.label title")
    assert MARKUP_MODEL in [t.get_attribute("textContent") for t in titles]
    rpm = browser.find_element(By.CSS_SELECTOR, '[data-field="requests_per_min"]').text
    assert float(rpm) > 0
    no_alert(browser)
    browser.save_screenshot(str(tmp_path / "overview.png"))
    if os.environ.get("ROUTER_UPDATE_SCREENSHOTS") == "1":
        shutil.copyfile(tmp_path / "overview.png", ROOT / "docs" / "console-overview.png")


def test_the_traffic_table_lists_them_and_filters(browser, console_server, tmp_path):
    as_admin(browser, console_server, "/ui/traffic")
    rows = browser.find_elements(By.CSS_SELECTOR, "#traffic tbody tr")
    assert len(rows) >= 5
    rules = [r.find_element(By.CSS_SELECTOR, "td.rule").text for r in rows]
    assert MARKUP_RULE in rules  # shown as text, not made bold
    assert not browser.find_elements(By.CSS_SELECTOR, "#traffic td.rule b")
    failed = browser.find_elements(By.CSS_SELECTOR, "#traffic td.attempts span.failed")
    assert [f.text for f in failed] == ["fast: unavailable"]
    assert failed[0].value_of_css_property("color") == "rgba(198, 40, 40, 1)"  # red
    assert "Fix this loop" in browser.page_source  # this config's request log keeps text
    browser.save_screenshot(str(tmp_path / "traffic.png"))
    Select(browser.find_element(By.ID, "filter-rule")).select_by_visible_text("coding")
    browser.find_element(By.CSS_SELECTOR, "#filters button").click()
    wait(browser).until(lambda d: "rule=coding" in d.current_url)
    rules = [e.text for e in browser.find_elements(By.CSS_SELECTOR, "#traffic td.rule")]
    assert rules == ["coding"]
    no_alert(browser)


def test_the_models_page_shows_health_circuits_and_budgets(browser, console_server, tmp_path):
    as_admin(browser, console_server, "/ui/models")
    models = [
        e.text for e in browser.find_elements(By.CSS_SELECTOR, "#models tbody td:first-child")
    ]
    assert set(models) == {"fast", "tiny", "backup", MARKUP_MODEL}
    assert browser.find_elements(By.CSS_SELECTOR, "#budgets meter")
    browser.find_element(By.ID, "probe").click()
    wait(browser).until(lambda d: d.find_elements(By.CSS_SELECTOR, "#providers .health-ok"))
    browser.save_screenshot(str(tmp_path / "models.png"))


def test_the_playground_shows_a_trace_and_a_real_answer(browser, console_server, tmp_path):
    as_admin(browser, console_server, "/ui/playground")
    prompt = browser.find_element(By.ID, "pg-prompt")
    prompt.clear()
    prompt.send_keys("Fix this loop please")
    browser.find_element(By.ID, "pg-use-case").send_keys("coding")
    browser.find_element(By.ID, "pg-explain").click()
    rows = wait(browser).until(lambda d: d.find_elements(By.CSS_SELECTOR, "#pg-trace tbody tr"))
    cells = [[c.text for c in r.find_elements(By.TAG_NAME, "td")] for r in rows]
    assert ["coding", "serves", "fast", "chosen"] in [c[:4] for c in cells]
    assert ["coding", "serves", "tiny", "dropped (context)"] in [c[:4] for c in cells]
    browser.find_element(By.ID, "pg-run").click()
    answer = wait(browser).until(lambda d: d.find_element(By.ID, "pg-answer").text or None)
    assert answer == "Hello from the fake provider."
    assert browser.find_element(By.ID, "pg-model").text == "fast (fake)"
    assert browser.find_element(By.ID, "pg-cost").text.startswith("$")
    assert browser.find_element(By.ID, "pg-attempts").text.strip() == "fast"
    browser.save_screenshot(str(tmp_path / "playground.png"))


def test_a_failed_reload_appears_on_the_config_page(browser, console_server, tmp_path):
    as_admin(browser, console_server, "/ui/config")
    assert "Routing tests: 2 pass, 0 fail" in browser.page_source
    config: Path = console_server.config
    good = config.read_text()
    config.write_text(good.replace("rules:\n", "rules:\n  - {name: broken, targets: [\n", 1))
    try:

        def shows_error(d: webdriver.Chrome) -> str | None:
            d.refresh()
            found = d.find_elements(By.CSS_SELECTOR, "#reload-error pre")
            return found[0].text if found else None

        error = WebDriverWait(browser, WAIT_S, poll_frequency=0.5).until(shows_error)
        assert re.search(r"router\.yaml:\d+", error), error
        assert browser.find_element(By.ID, "config-version").text == "1"
        reload_box = browser.find_element(By.ID, "last-reload")
        assert "failed" in reload_box.text
        browser.save_screenshot(str(tmp_path / "config.png"))
    finally:
        config.write_text(good)


def test_every_page_fits_a_phone_screen_and_shows_no_key(browser, console_server, tmp_path):
    browser.set_window_size(400, 860)
    try:
        for path in ("/ui", "/ui/traffic", "/ui/models", "/ui/config", "/ui/playground"):
            as_admin(browser, console_server, path)
            width = browser.execute_script("return window.innerWidth")
            page = browser.execute_script("return document.documentElement.scrollWidth")
            assert page <= width, f"{path}: {page}px wide on a {width}px screen"
            for secret in (*SECRETS, ADMIN_KEY):  # no key reaches a page
                assert secret not in browser.page_source
            name = path.strip("/").replace("/", "-") or "ui"
            browser.save_screenshot(str(tmp_path / f"phone-{name}.png"))
    finally:
        browser.set_window_size(1280, 1000)
