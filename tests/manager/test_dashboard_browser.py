"""The dashboard in a real headless Chromium (Debian chromium + chromium-driver, driven by Selenium).

`regen serve` runs as a subprocess over a store with 1,000 hosts' reports (written the way
regend writes them); the browser loads the overview, filters by state, opens a host page and
checks the plots and the timeline are in the DOM. Screenshots go to tmp_path (and, when
DASHBOARD_SCREENSHOT_DIR is set, the overview is also copied there: the README's picture).
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from regen.store import Store

from ..conftest import make_tree
from ..fleetgen import make_fleet, make_history
from .serving import regen_serve

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-dev-shm-usage", "--window-size=1400,1000")

pytestmark = pytest.mark.slow


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[object]:
    for binary, package in ((CHROMIUM, "chromium"), (CHROMEDRIVER, "chromium-driver")):
        if not os.access(binary, os.X_OK):
            pytest.fail(f"{binary} is not installed (Debian package {package}); run contrib/test.sh", pytrace=False)
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    opts = Options()
    opts.binary_location = CHROMIUM
    for flag in (*FLAGS, f"--user-data-dir={tmp_path / 'chromium-profile'}"):
        opts.add_argument(flag)
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=opts)
    driver.set_page_load_timeout(60)
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture
def big_fleet(cli, admin: Store, tmp_path: Path) -> Store:
    src = make_tree(tmp_path / "ref", {"etc/app.conf": b"v0"})
    for n in range(1, 6):  # generations 1-5 of channel stable, as the synthetic hosts run 4 and 5
        (src / "etc/app.conf").write_bytes(f"v{n}".encode())
        cli("snapshot", src, "-c", "stable", "-m", f"release {n}", "--publish")
    make_fleet(admin, 1000)
    make_history(admin, "kiosk-00007")
    return admin


def test_dashboard_in_a_real_browser(big_fleet: Store, browser, tmp_path: Path, record_property) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.expected_conditions import staleness_of
    from selenium.webdriver.support.ui import Select, WebDriverWait

    driver = browser
    with regen_serve(big_fleet.url) as s:
        driver.get(s.url)  # the first load reads the 1,000 reports
        t = time.perf_counter()
        driver.get(s.url)
        load = time.perf_counter() - t
        record_property("overview_load_seconds", round(load, 3))
        assert driver.title.startswith("fleet")
        counts = {e.get_attribute("data-state"): int(e.find_element(By.TAG_NAME, "b").text)
                  for e in driver.find_elements(By.CSS_SELECTOR, "#counts .count")}
        assert sum(counts.values()) == 1000 and counts["failing"] > 0
        assert len(driver.find_elements(By.CSS_SELECTOR, "#hosts tbody tr")) == 100
        driver.save_screenshot(str(tmp_path / "overview.png"))

        Select(driver.find_element(By.NAME, "state")).select_by_value("failing")
        old = driver.find_element(By.ID, "hosts")
        driver.find_element(By.ID, "apply").click()
        WebDriverWait(driver, 30).until(staleness_of(old))  # the filtered page replaced the overview
        rows = driver.find_elements(By.CSS_SELECTOR, "#hosts tbody tr")
        assert len(rows) == counts["failing"] and all(r.get_attribute("class") == "state-failing" for r in rows)
        assert "state=failing" in driver.current_url
        driver.save_screenshot(str(tmp_path / "failing.png"))

        driver.get(s.url + "?q=kiosk-00007")
        driver.find_element(By.LINK_TEXT, "kiosk-00007").click()
        WebDriverWait(driver, 30).until(lambda d: d.current_url.endswith("/host/kiosk-00007")
                                        and d.execute_script("return document.readyState") == "complete")
        plots = driver.find_elements(By.CSS_SELECTOR, "#plots svg")
        assert [p.get_attribute("data-series") for p in plots] == ["disk used", "temperature", "drifted paths"]
        assert len(plots[0].find_elements(By.TAG_NAME, "circle")) > 10  # a month of points
        timeline = driver.find_elements(By.CSS_SELECTOR, "#timeline tbody tr")
        assert len(timeline) >= 30 and "(latest)" in timeline[0].text
        driver.save_screenshot(str(tmp_path / "host.png"))

        driver.find_element(By.LINK_TEXT, "stable").click()
        WebDriverWait(driver, 30).until(lambda d: d.current_url.endswith("/channel/stable")
                                        and d.execute_script("return document.readyState") == "complete")
        gens = driver.find_elements(By.CSS_SELECTOR, "#generations tbody tr")
        assert len(gens) == 5 and "(current)" in gens[0].text
        driver.save_screenshot(str(tmp_path / "channel.png"))
    assert load < 5.0, f"overview of 1,000 hosts took {load:.2f} s to load"
    assert all((tmp_path / n).stat().st_size > 10_000 for n in ("overview.png", "failing.png", "host.png", "channel.png"))
    out = os.environ.get("DASHBOARD_SCREENSHOT_DIR")
    if out:
        for name in ("overview.png", "host.png"):
            shutil.copy(tmp_path / name, Path(out) / f"dashboard-{name}")
