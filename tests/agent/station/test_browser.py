"""The web station in a real browser (Playwright driving Debian's Chromium).

One scenario, in the order a nurse meets it: log in; a simulated asystole turns its bed's tile
red and puts it first; the bed view shows the live ECG (streamed only while watched) and the
alarm's evidence strip with labelled beats and RR intervals; the acknowledgement is pending
until the simulated agent confirms it; an ACVPU observation raises NEWS2 by 3 (RCP 2017 chart
1: V scores 3); once cleared the alarm is in the history and in the CSV export; a bed that
drops off the network shows as offline, itself an alarm.

Every wait is on an event (a DOM state, a message), with a generous timeout as a safety net
only; how long the tile took to turn red is printed, not asserted (tools/bench_station.py
measures the publish-to-browser latency). With ``BEDSIDE_UPDATE_SCREENSHOTS=1`` the
screenshots go to ``docs/img/`` (the README shows them), else to the test's tmp folder.
"""

from __future__ import annotations

import csv
import os
import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from agent.publish.broker import MosquittoBroker
from agent.station.cli import RunningStation, serve_in_thread
from agent.station.config import load_station_config
from agent.station.users import add_user
from agent.ward_sim import WardSim

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
REPO = Path(__file__).resolve().parents[3]
SAFETY_MS = 30_000  # a safety net for a loaded 2-core CI box, not a performance bound

pytestmark = pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="apt-get install chromium")


def wait_until(predicate: Callable[[], bool], what: str, timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(what)
        time.sleep(0.05)


@pytest.fixture
def ward(mqtt_broker: MosquittoBroker, tmp_path: Path) -> Iterator[tuple[RunningStation, WardSim]]:
    config = load_station_config(
        None,
        db_url=f"sqlite:///{tmp_path / 'station.sqlite3'}",
        mqtt__host=mqtt_broker.host,
        mqtt__port=mqtt_broker.port,
        http__port=0,
        station_id="station-t",
    )
    station = serve_in_thread(config)
    add_user(station.db, "nurse1", "night-shift-1", "nurse")
    sim = WardSim(mqtt_broker.url, beds=4, unit="ward1", random_events=False)
    sim.start()
    try:
        yield station, sim
    finally:
        sim.stop()
        station.stop()


def test_nurse_flow_in_chromium(ward: tuple[RunningStation, WardSim], tmp_path: Path) -> None:
    from playwright.sync_api import expect, sync_playwright

    station, sim = ward
    shots = REPO / "docs" / "img" if os.environ.get("BEDSIDE_UPDATE_SCREENSHOTS") else tmp_path
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900}, accept_downloads=True)
            page.set_default_timeout(SAFETY_MS)
            expect.set_options(timeout=SAFETY_MS)  # assertions too (their own default is 5 s)
            # log in (an unauthenticated visit is sent to the login page)
            page.goto(station.url + "/")
            expect(page).to_have_url(station.url + "/login")
            page.fill("#username", "nurse1")
            page.fill("#password", "night-shift-1")
            page.click("#login-button")
            expect(page.locator("#tiles .tile")).to_have_count(4)
            expect(page.locator("#conn")).to_have_text("live")
            expect(page.locator('.tile[data-bed="ward1/bed02"] .hr')).not_to_have_text("--")

            # an asystole turns the tile red, flashing, and puts it first
            sim.trigger("bed02", "asystole", duration_s=3600.0)  # ended below
            tile = page.locator('.tile[data-bed="ward1/bed02"]')
            expect(tile).to_have_class("tile prio-high flash")
            red_at = time.time()
            raised = next(a for a in sim.beds["bed02"].alarms.values())
            print(f"tile red {red_at - raised.event.ts_utc.timestamp():.2f} s after the publish")
            expect(page.locator("#tiles .tile").first).to_have_attribute("data-bed", "ward1/bed02")
            expect(tile.locator(".alarm-line")).to_contain_text("HIGH: Asystole")
            page.screenshot(path=str(shots / "station-ward.png"))

            # the bed view: live ECG while watched, the alarm's evidence strip
            tile.click()
            expect(page).to_have_url(station.url + "/bed/ward1/bed02")
            wait_until(lambda: bool(sim.beds["bed02"].leases), "ECG lease on bed02")
            page.wait_for_function(
                "Number(document.querySelector('#live-ecg').dataset.samples || 0) > 130"
            )
            alarm = page.locator('#bed-alarms li.alarm[data-condition="asystole"]')
            alarm.locator(".evidence-btn").click()
            beats = page.locator("#beats li.beat")
            expect(beats.first).to_be_visible()
            classes = beats.evaluate_all("els => els.map(e => e.dataset.class)")
            assert classes
            assert set(classes) <= {"N", "V"}
            assert "RR" in beats.last.inner_text()
            assert " ms" in beats.last.inner_text()
            evidence_id = page.locator("#evidence").get_attribute("data-alarm-id")
            assert evidence_id == raised.event.alarm_id
            page.screenshot(path=str(shots / "station-bed-alarm.png"), full_page=True)

            # acknowledge: pending, then confirmed by the (simulated) agent
            alarm.locator(".ack-btn").click()
            expect(alarm.locator(".ack-state")).to_have_attribute("data-state", "confirmed")
            expect(alarm.locator(".ack-state")).to_contain_text("nurse1@station-t")

            # an observation changes NEWS2: ACVPU "V" scores 3
            news2 = page.locator("#bed-vitals .news2")
            expect(news2).not_to_have_attribute("data-total", "")
            before = int(news2.get_attribute("data-total") or "0")
            page.select_option("#obs-acvpu", "V")
            page.click("#obs-submit")
            expect(page.locator("#obs-result")).to_contain_text("sent: consciousness")
            expect(news2).to_have_attribute("data-total", str(before + 3))

            # when the condition ends, the acknowledged (latched) alarm clears: in the history
            sim.end("bed02")
            expect(alarm).to_have_count(0)
            # the live view shows the clear at once; the history is written in batches of up
            # to WRITER_BATCH_S (a nurse who searches in that moment searches again)
            wait_until(
                lambda: any(
                    r.lifecycle == "cleared" for r in station.db.alarm_events(evidence_id or "")
                ),
                "the clear in the history database",
            )
            page.click("#nav-history")
            page.fill("#h-condition", "asystole")
            page.click("#h-search")
            rows = page.locator(f'#history-table tr[data-alarm-id="{evidence_id}"]')
            expect(rows.filter(has_text="cleared")).to_have_count(1)
            expect(rows.filter(has_text="raised")).to_have_count(1)

            # CSV export of that search
            with page.expect_download() as dl:
                page.click("#csv-link")
            path = tmp_path / "history.csv"
            dl.value.save_as(path)
            with path.open(encoding="utf-8") as f:
                exported = list(csv.DictReader(f))
            mine = [r for r in exported if r["alarm_id"] == evidence_id]
            assert {r["lifecycle"] for r in mine} == {"raised", "updated", "cleared"}
            assert all(r["condition"] == "asystole" for r in exported)
            assert all(r["priority"] == "high" for r in mine)
            cleared = next(r for r in mine if r["lifecycle"] == "cleared")
            assert cleared["acknowledged"] == "1"
            assert cleared["acknowledged_by"].startswith("nurse1")
            assert float(cleared["cleared_s"]) > float(cleared["onset_s"])

            # leaving the bed view turns its live ECG off
            page.click("#nav-ward")
            wait_until(lambda: not sim.beds["bed02"].leases, "ECG lease released")

            # a bed that drops off the network (its last will) is itself an alarm
            sim.trigger("bed04", "offline", duration_s=600.0)
            offline = page.locator('.tile[data-bed="ward1/bed04"]')
            expect(offline).to_have_attribute("data-priority", "medium")
            expect(offline.locator("h4")).to_contain_text("offline")
        finally:
            browser.close()
