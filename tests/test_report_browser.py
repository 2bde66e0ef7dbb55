"""The HTML report in a real headless Chromium: the picture renders, shows every tier, pool and tenant (and
endpoint, when the stack has any), the status filter works, hostile names run nothing. The screenshots are kept in
test-artifacts/ (report.png: the picture; report-failed.png: the verdicts filtered to failures)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterator

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import WebDriverWait

from hardstack.policies.report_html import render_html
from hardstack.policies.topology import read
from hardstack.stacks.synth import run_program

from .report_helpers import NO_GPU_QUOTA, judged

REPO = Path(__file__).resolve().parent.parent
ARTIFACTS = REPO / "test-artifacts"
CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
WAIT = 20


@pytest.fixture(scope="module")
def browser() -> Iterator[WebDriver]:
    os.environ["SE_OFFLINE"] = "true"  # selenium-manager never downloads a browser or driver
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--window-size=1400,1800"):
        options.add_argument(arg)
    driver = webdriver.Chrome(options=options, service=Service(executable_path=CHROMEDRIVER))
    try:
        driver.set_page_load_timeout(60)
        yield driver
    finally:
        driver.quit()


def open_page(driver: WebDriver, path: Path) -> None:
    driver.get(path.resolve().as_uri())
    WebDriverWait(driver, WAIT).until(lambda d: d.execute_script("return document.readyState") == "complete")
    WebDriverWait(driver, WAIT).until(lambda d: d.find_elements(By.CSS_SELECTOR, "#architecture-figure svg"))


def visible_statuses(driver: WebDriver) -> list[str]:
    return driver.execute_script(
        "return Array.from(document.querySelectorAll('#verdicts tr.result'))"
        ".filter(r => r.offsetParent !== null).map(r => r.getAttribute('data-status'));")


def click_filter(driver: WebDriver, status: str, expected: int) -> None:
    driver.find_element(By.CSS_SELECTOR, f".filters button[data-filter='{status}']").click()
    WebDriverWait(driver, WAIT).until(
        lambda d: d.find_element(By.ID, "verdicts-shown").text == str(expected)
        and len(visible_statuses(d)) == expected)


def test_report_in_chromium(browser: WebDriver, tmp_path: Path) -> None:
    inventory, report = judged("llm-inference", NO_GPU_QUOTA)  # one failure, and the blueprint's exceptions
    failed, excepted = report.count("failed"), report.count("skipped")
    assert failed >= 1 and excepted >= 1
    page = tmp_path / "report.html"
    page.write_text(render_html(report, inventory), encoding="utf-8")
    open_page(browser, page)

    svg = browser.find_element(By.CSS_SELECTOR, "#architecture-figure svg")
    assert svg.size["width"] > 200 and svg.size["height"] > 100
    shown = browser.execute_script("return arguments[0].textContent;", svg)
    topology = read(inventory)
    (net,) = topology.networks
    assert tuple(net.tiers) == ("ingress", "inference", "training", "data", "endpoints")
    for tier in net.tiers.values():
        assert f"tier: {tier.name}" in shown
        for subnet in tier.subnets:
            assert subnet.name in shown
    for pool in topology.pools:
        assert f"GPU pool {pool.name}" in shown and f"isolation: {pool.isolation}" in shown
        assert f"tenants: {', '.join(pool.tenants)}" in shown
    for namespace in topology.namespaces:
        assert f"namespace {namespace.name}" in shown
    for endpoint in topology.endpoints:  # none in the reference blueprint today
        assert f"endpoint {endpoint.name}" in shown

    total = len(report.results)
    assert len(visible_statuses(browser)) == total
    click_filter(browser, "failed", failed)
    assert set(visible_statuses(browser)) == {"failed"}
    hidden_excepted = browser.find_elements(By.CSS_SELECTOR, "#verdicts tr.result[data-status='excepted']")
    assert len(hidden_excepted) == excepted and not any(row.is_displayed() for row in hidden_excepted)
    failed_row = browser.find_element(By.CSS_SELECTOR, "#verdicts tr.result[data-status='failed']")
    assert "HS_K8S_004" in failed_row.text
    ARTIFACTS.mkdir(exist_ok=True)
    browser.execute_script("document.getElementById('architecture').scrollIntoView();")
    assert browser.save_screenshot(str(ARTIFACTS / "report.png"))
    browser.execute_script("document.getElementById('verdicts-section').scrollIntoView();")
    assert browser.save_screenshot(str(ARTIFACTS / "report-failed.png"))

    click_filter(browser, "excepted", excepted)
    assert set(visible_statuses(browser)) == {"excepted"}
    search = browser.find_element(By.ID, "verdict-search")
    search.send_keys("platform-security")  # an exception's owner
    WebDriverWait(browser, WAIT).until(lambda d: 0 < len(visible_statuses(d)) <= excepted)
    click_filter(browser, "all", len(visible_statuses(browser)))
    search.clear()
    search.send_keys(" ")  # clear() sends no input event
    WebDriverWait(browser, WAIT).until(lambda d: len(visible_statuses(d)) == total)
    assert browser.get_log("browser") == []  # no errors, no CSP violations


def _hostile_program() -> None:
    import pulumi_aws as aws

    aws.s3.Bucket("<script>window.__pwned=1</script>",
                  tags={"hardstack:classification": '"><img src=x onerror="window.__pwned=2">'})


def test_hostile_names_run_nothing_in_chromium(browser: WebDriver, tmp_path: Path) -> None:
    from hardstack.policies.gate import run_gate

    inventory = run_program(_hostile_program, project="hostile", stack="dev", region="us-east-1")
    report = run_gate(inventory, target='<img src=x onerror="window.__pwned=3">')
    page = tmp_path / "hostile.html"
    page.write_text(render_html(report, inventory), encoding="utf-8")
    open_page(browser, page)
    assert browser.execute_script("return window.__pwned === undefined;")
    assert "bucket <script>window.__pwned=1</script>" in browser.execute_script(
        "return document.querySelector('#architecture-figure svg').textContent;")  # drawn as text
    assert browser.title.startswith('hardstack report: <img src=x onerror="window.__pwned=3">')
