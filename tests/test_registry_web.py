"""The registry's web pages in a real headless browser (Debian's chromium through selenium and
chromedriver) against a real server: the pages render, links work from the list of analyses to
a version to its campaign, the Brazil-band plot is visible, unknown names are 404 pages, private
analyses are not shown and everything is escaped.

The campaigns' rows (points, limit records, the plot blob) are written straight into the
server's database and blob store with the models, so no analysis has to run: a done 4-point
mass scan with its plot, and a running one (no plot yet, the page refreshes itself).
"""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path

import httpx
import pytest
import yaml
from registry_helpers import Server, minimal_bundle

CHROMIUM, CHROMEDRIVER = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")
PAYLOAD = b'{"answer": 42, "version": "1.1.0"}\n'
MEMBER = "outputs/result/answer.json"
MASSES = (500, 750, 1000, 1250)
NASTY = "<script>alert('x')</script> & <b>bold</b>"
CAMPAIGN = """campaign_version: 1
name: zprime-scan
description: A Z' mass scan through the toy analysis.
analysis: toy.crate.zip
grid:
  axes: {mass: [500, 750, 1000, 1250]}
signal:
  recipe: "zprime:mass={mass},events=10000"
limits: {cl: 0.95, mu: 1.0}
theory:
  cross_section_pb: {500: 30.0, 750: 8.0, 1000: 2.5, 1250: 0.9}
plot: {x: mass}
"""


def _put(server: Server, token: str, path: Path, name: str, version: str, **params):
    response = httpx.put(f"{server.url}/api/v1/analyses/{name}/versions/{version}",
                         content=path.read_bytes(), params=params, timeout=60,
                         headers={"Authorization": f"Bearer {token}",
                                  "Content-Type": "application/zip"})
    assert response.status_code == 201, response.text
    return response.json()


def _record(mass: int, index: int, analysis_digest: str) -> dict:
    """A limit record shaped like statistics.limits' with a campaign point's provenance."""
    median = 0.05 * (1 + index) ** 1.6
    expected = [round(median * f, 6) for f in (0.54, 0.72, 1.0, 1.39, 1.86)]
    digest = hashlib.sha256(f"point {mass}".encode()).hexdigest()
    return {
        "name": f"mass={mass}", "labels": {"mass": mass}, "mu": 1.0, "cl": 0.95,
        "cls_observed": round(0.01 * (index + 1), 6),
        "cls_expected": [round(0.004 * (index + 1) * f, 6) for f in (0.3, 0.5, 1.0, 1.6, 2.3)],
        "limit_observed": round(median * 1.1, 6), "limit_expected": expected,
        "status": "ok", "reason": None, "seconds": 1.25, "poi": "mu_signal",
        "method": "asymptotic qmu~", "mu_hat": 0.02,
        "software": {"reanimate": "0.1.0", "pyhf": "0.7.6", "numpy": "2.4.6"},
        "point": {"digest": digest,
                  "analysis": {"kind": "bundle", "digest": analysis_digest, "name": "toy"},
                  "signal": {"route": "recipe", "recipe": f"zprime:mass={mass},events=10000",
                             "sha256": hashlib.sha256(f"signal {mass}".encode()).hexdigest()}},
        "timing": {"signal": 3.0, "limits": 1.25, "total": 4.25},
    }


def _campaign(server: Server, version_sha: str, *, done: int, running: int, queued: int,
              plot: bool) -> int:
    """Insert a campaign with its points (and results, and the plot blob) into the server's
    database and store; its id."""
    from reanimate.registry import db
    from reanimate.registry.config import Settings
    from reanimate.registry.models import Campaign, Point, Result, Version
    from reanimate.reinterpret.campaign import Campaign as CampaignFile
    from reanimate.reinterpret.campaign_plots import draw

    settings = Settings(store=server.store, database_url=server.database)
    campaign_json = CampaignFile.model_validate(yaml.safe_load(CAMPAIGN)).model_dump(mode="json")
    statuses = ["done"] * done + ["running"] * running + ["queued"] * queued
    now = time.time()
    rows = []
    with db.session(settings.database_url) as s:
        version = s.query(Version).filter_by(bundle_sha256=version_sha).one()
        campaign = Campaign(version_id=version.id, name=campaign_json["name"], submitter="bob",
                            campaign_text=CAMPAIGN, campaign_json=json.dumps(campaign_json),
                            files_json="{}", created_at=now,
                            status="done" if done == len(statuses) else "running",
                            finished_at=now if done == len(statuses) else None)
        s.add(campaign)
        s.flush()
        for position, (mass, status) in enumerate(zip(MASSES, statuses, strict=True)):
            record = _record(mass, position, version_sha)
            point = Point(campaign_id=campaign.id, position=position, name=record["name"],
                          labels_json=json.dumps(record["labels"]), status=status,
                          attempts=0 if status == "queued" else 1,
                          started_at=None if status == "queued" else now,
                          finished_at=now if status == "done" else None,
                          seconds=4.25 if status == "done" else None,
                          digest=record["point"]["digest"], error="")
            s.add(point)
            s.flush()
            if status == "done":
                s.add(Result(point_id=point.id, record_json=json.dumps(record), worker="w1",
                             stored_at=now))
            rows.append({"digest": point.digest, "position": position, "name": point.name,
                         "labels": record["labels"], "status": status,
                         "attempts": point.attempts, "started": point.started_at,
                         "finished": point.finished_at,
                         "record": record if status == "done" else None, "error": ""})
        if plot:
            png = server.store.parent / f"plot-{campaign.id}.png"
            draw(campaign_json, rows, png)
            sha = hashlib.sha256(png.read_bytes()).hexdigest()
            blob = settings.blobs / sha[:2] / sha[2:4] / sha
            blob.parent.mkdir(parents=True, exist_ok=True)
            blob.write_bytes(png.read_bytes())
            campaign.plot_sha256, campaign.plot_kind = sha, "brazil"
        return campaign.id


@pytest.fixture(scope="module")
def registry(tmp_path_factory):
    folder = tmp_path_factory.mktemp("registry-web")
    server = Server(folder / "store").start()
    try:
        token = server.token("publish", "campaign", "read")
        bundles = folder / "bundles"
        old = _put(server, token, minimal_bundle(bundles / "a.zip", "toy", "1.0.0"), "toy",
                   "1.0.0")
        new = _put(server, token, minimal_bundle(bundles / "b.zip", "toy", "1.1.0", PAYLOAD,
                                                 title="The toy analysis, revised"),
                   "toy", "1.1.0")
        yank = httpx.post(f"{server.url}/api/v1/analyses/toy/versions/1.0.0/yank",
                          json={"reason": "superseded by 1.1.0"}, timeout=30,
                          headers={"Authorization": f"Bearer {token}"})
        assert yank.status_code == 200, yank.text
        _put(server, token, minimal_bundle(bundles / "c.zip", "secret", "0.1.0"), "secret",
             "0.1.0", private="true")
        _put(server, token, minimal_bundle(bundles / "d.zip", "nasty", "1.0.0", title=NASTY),
             "nasty", "1.0.0")
        done = _campaign(server, new["bundle_sha256"], done=4, running=0, queued=0, plot=True)
        running = _campaign(server, new["bundle_sha256"], done=1, running=2, queued=1,
                            plot=False)
        yield {"server": server, "url": server.url, "old": old, "new": new, "done": done,
               "running": running, "folder": folder}
    finally:
        server.stop()


@pytest.fixture(scope="module")
def browser():
    assert CHROMIUM.exists() and CHROMEDRIVER.exists(), (
        "Debian's chromium and chromium-driver are not installed: `make test` installs them "
        "(make system-packages)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu",
                     "--disable-dev-shm-usage", "--window-size=1280,1800"):
        options.add_argument(argument)
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    driver.set_page_load_timeout(60)
    try:
        yield driver
    finally:
        driver.quit()


def _text(driver, css: str) -> str:
    from selenium.webdriver.common.by import By

    return driver.find_element(By.CSS_SELECTOR, css).text


def _links_answer(driver, url: str) -> list[str]:
    """Every link on the page into this server answers 200 (over plain HTTP)."""
    from selenium.webdriver.common.by import By

    hrefs = {a.get_attribute("href") for a in driver.find_elements(By.TAG_NAME, "a")}
    inside = sorted(h for h in hrefs if h and h.startswith(url))
    for href in inside:
        response = httpx.get(href, timeout=30)
        assert response.status_code == 200, (href, response.status_code, response.text[:300])
    return inside


def test_click_through_list_analysis_version_campaign(registry, browser, tmp_path):
    from selenium.webdriver.common.by import By

    url, new = registry["url"], registry["new"]
    browser.get(url + "/")
    assert browser.title.startswith("Analyses")
    listing = _text(browser, "#analyses")
    assert "toy" in listing and "The toy analysis, revised" in listing and "1.1.0" in listing
    assert "secret" not in listing  # private: not on the public pages
    _links_answer(browser, url)

    browser.find_element(By.LINK_TEXT, "toy").click()
    assert browser.current_url == f"{url}/analyses/toy"
    assert _text(browser, "h1") == "The toy analysis, revised"
    versions = browser.find_elements(By.CSS_SELECTOR, "#versions tr")
    assert [r.find_elements(By.TAG_NAME, "td")[0].text for r in versions[1:]] == \
        ["1.1.0", "1.0.0 yanked"]
    assert registry["old"]["bundle_sha256"] in _text(browser, "#versions")
    _links_answer(browser, url)

    browser.find_element(By.LINK_TEXT, "1.1.0").click()
    assert browser.current_url == f"{url}/analyses/toy/1.1.0"
    assert browser.title.startswith("toy@1.1.0")
    facts = _text(browser, "#facts")
    assert "Alice Physicist" in facts and "Apache-2.0" in facts and "bob" not in facts
    assert _text(browser, "#bundle-digest") == new["bundle_sha256"]
    files = {row.find_elements(By.TAG_NAME, "td")[0].text:
             row.find_elements(By.TAG_NAME, "td")[3].text
             for row in browser.find_elements(By.CSS_SELECTOR, "#files tr")[1:]}
    assert files[MEMBER] == hashlib.sha256(PAYLOAD).hexdigest()
    assert set(files) == {f["path"] for f in new["metadata"]["files"]}
    commands = _text(browser, "#commands").splitlines()
    assert commands == [f"reanimate registry download toy@1.1.0 --registry {url}",
                        f"reanimate verify toy@1.1.0 --registry {url}",
                        f"reanimate campaign submit CAMPAIGN.yaml --registry {url} "
                        "--analysis toy@1.1.0"]
    campaigns = _text(browser, "#campaigns")
    assert "zprime-scan" in campaigns and "4 / 4" in campaigns and "1 / 4" in campaigns
    _links_answer(browser, url)  # the bundle download, the campaigns
    assert browser.save_screenshot(str(tmp_path / "version.png"))

    browser.find_element(By.CSS_SELECTOR, f"#campaigns a[href='/campaigns/{registry['done']}']"
                         ).click()
    assert browser.current_url == f"{url}/campaigns/{registry['done']}"
    assert _text(browser, "#status") == "done"
    assert _text(browser, "#counts").startswith("4 of 4 points finished (100%)")
    header = [th.text for th in browser.find_elements(By.CSS_SELECTOR, "#results th")]
    rows = [[td.text for td in tr.find_elements(By.TAG_NAME, "td")]
            for tr in browser.find_elements(By.CSS_SELECTOR, "#results tr")[1:]]
    assert header[:4] == ["name", "mass", "status", "limit_observed"]
    assert [r[:3] for r in rows] == [[f"mass={m}", str(m), "ok"] for m in MASSES]
    assert rows[0][3] == f"{_record(500, 0, '')['limit_observed']:.4g}"
    plot = browser.find_element(By.ID, "plot")
    browser.execute_script("arguments[0].scrollIntoView()", plot)
    assert plot.is_displayed()
    width = browser.execute_script(
        "return arguments[0].complete && arguments[0].naturalWidth", plot)
    assert width and width > 100, "the plot image did not load"
    assert not browser.find_elements(By.CSS_SELECTOR, "meta[http-equiv='refresh']")
    _links_answer(browser, url)  # the results CSV and JSON, back to the version
    shot = tmp_path / "campaign.png"
    assert browser.save_screenshot(str(shot)) and shot.stat().st_size > 10_000

    browser.find_element(By.LINK_TEXT, "API (OpenAPI)").click()
    assert browser.current_url == f"{url}/docs" and "Swagger UI" in browser.title


def test_running_campaign_shows_progress_refreshes_and_has_no_plot_yet(registry, browser):
    from selenium.webdriver.common.by import By

    browser.get(f"{registry['url']}/campaigns/{registry['running']}")
    assert _text(browser, "#status") == "running"
    assert _text(browser, "#counts").startswith("1 of 4 points finished (25%): 1 done, "
                                                "0 failed, 2 running, 1 queued")
    assert "appears when the campaign is done" in _text(browser, "#no-plot")
    assert not browser.find_elements(By.ID, "plot")
    refresh = browser.find_element(By.CSS_SELECTOR, "meta[http-equiv='refresh']")
    assert refresh.get_attribute("content") == "5"
    rows = [[td.text for td in tr.find_elements(By.TAG_NAME, "td")]
            for tr in browser.find_elements(By.CSS_SELECTOR, "#results tr")[1:]]
    assert [r[2] for r in rows] == ["ok", "running", "running", "pending"]  # the store's word
    bar = browser.find_element(By.CSS_SELECTOR, "#progress .done")
    assert bar.size["width"] > 0


def test_unknown_and_private_names_are_html_404_pages(registry, browser):
    url = registry["url"]
    for path in ("/analyses/nope", "/analyses/toy/9.9.9", "/analyses/secret",
                 "/analyses/secret/0.1.0", "/campaigns/9999", "/campaigns/x1"):
        response = httpx.get(url + path, timeout=30)
        assert response.status_code == 404, path
        assert response.headers["content-type"].startswith("text/html")
        assert "Not found" in response.text
        browser.get(url + path)
        assert _text(browser, "h1") == "Not found"
        assert "There is no public" in _text(browser, "#not-found")


def test_everything_is_escaped(registry, browser):
    url = registry["url"]
    page = httpx.get(f"{url}/analyses/nasty/1.0.0", timeout=30).text
    assert NASTY not in page and "&lt;script&gt;" in page
    browser.get(f"{url}/analyses/nasty/1.0.0")
    assert _text(browser, "h1") == NASTY  # shown as text, never run or parsed
    browser.get(url + "/")
    assert NASTY in _text(browser, "#analyses")
