"""The dispatch board in a real browser (Debian's chromium, driven by Playwright) against a real
`fieldplan serve --demo` process: what a newcomer does, step by step, with a screenshot of each.

Skipped with a reason where chromium or Playwright is missing, unless FIELDPLAN_REQUIRE_BROWSER=1
(CI), where that is a failure. Screenshots go to FIELDPLAN_ARTIFACTS (default
tests/artifacts/board); FIELDPLAN_UPDATE_DOCS=1 also refreshes docs/board.png for the README.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = os.environ.get("FIELDPLAN_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
ARTIFACTS = Path(os.environ.get("FIELDPLAN_ARTIFACTS", ROOT / "tests" / "artifacts" / "board"))


def _missing() -> str | None:
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "Playwright for Python is not installed (pip install -e '.[dev]')"
    if not Path(CHROMIUM).exists():
        return f"no chromium at {CHROMIUM} (apt-get install chromium)"
    return None


def _skip_or_fail() -> None:
    why = _missing()
    if why is None:
        return
    if os.environ.get("FIELDPLAN_REQUIRE_BROWSER") == "1":
        pytest.fail(f"FIELDPLAN_REQUIRE_BROWSER=1 but {why}")
    pytest.skip(f"browser tests skipped: {why}")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Demo:
    def __init__(self, base: str, keys: dict[str, str]) -> None:
        self.base, self.keys = base, keys

    def api(self, method: str, path: str, key: str = "dispatcher", **kw: Any) -> httpx.Response:
        return httpx.request(
            method, self.base + path, headers={"Authorization": f"Bearer {self.keys[key]}"}, timeout=30, **kw
        )


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Demo]:
    _skip_or_fail()
    port = _free_port()
    where = tmp_path_factory.mktemp("demo")
    env = {**os.environ, "FIELDPLAN_SOLVE_SECONDS": "3", "COLUMNS": "400"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "api.cli", "serve", "--demo", "--port", str(port), "--clock", "07:00"],
        cwd=where, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    keys: dict[str, str] = {}
    lines: list[str] = []
    deadline = time.monotonic() + 180
    assert proc.stdout is not None
    try:
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                raise AssertionError("the demo exited:\n" + "".join(lines))
            lines.append(line)
            if m := re.match(r"(dispatcher|admin) key: (\S+)", line):
                keys[m.group(1)] = m.group(2)
            if m := re.match(r"technician (\S+) key: (\S+)", line):
                keys[m.group(1)] = m.group(2)
            if "Uvicorn running" in line or "Application startup complete" in line:
                break
        base = f"http://127.0.0.1:{port}"
        for _ in range(100):
            try:
                if httpx.get(base + "/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        yield Demo(base, keys)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()


@pytest.fixture(scope="module")
def browser(demo: Demo) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
        yield b
        b.close()


def shot(page: Any, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"))


def sign_in(page: Any, demo: Demo, who: str) -> None:
    page.goto(demo.base + "/board")
    page.fill("#key", demo.keys[who])
    page.click("#signin-button")
    page.wait_for_selector("body[data-ready='1']", timeout=30_000)


def x_of(page: Any, lane: Any, hhmm: str) -> float:
    """Where a time is on a technician's lane, read off the hour labels of the axis."""
    h, m = int(hhmm[:2]), int(hhmm[3:5])
    a = page.locator(".axis .hour", has_text=re.compile(rf"^{h:02d}:00$")).bounding_box()
    b = page.locator(".axis .hour", has_text=re.compile(rf"^{h + 1:02d}:00$")).bounding_box()
    return float(a["x"] + (b["x"] - a["x"]) * m / 60)


def drag(page: Any, source: Any, lane: Any, x: float) -> None:
    """A real drag: press on the source, move over the lane, hover at x (the drop is the caller's)."""
    source.scroll_into_view_if_needed()
    lane.scroll_into_view_if_needed()
    s = source.bounding_box()
    row = lane.bounding_box()
    page.mouse.move(s["x"] + 20, s["y"] + 8)
    page.mouse.down()
    page.mouse.move(s["x"] + 26, s["y"] + 10)
    page.mouse.move(s["x"] + 36, s["y"] + 12)
    page.mouse.move(x - 6, row["y"] + row["height"] / 2, steps=10)
    page.mouse.move(x + 1, row["y"] + row["height"] / 2, steps=2)


def test_a_dispatchers_day_and_a_technicians_visit(demo: Demo, browser: Any) -> None:
    requests_seen: list[str] = []
    context = browser.new_context(viewport={"width": 1500, "height": 950})
    page = context.new_page()
    page.on("request", lambda r: requests_seen.append(r.url))
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))

    # 1. Sign in as the dispatcher: one row per technician, the routes on the map.
    today = demo.api("GET", "/v1/me").json()
    assert today["role"] == "dispatcher"
    sign_in(page, demo, "dispatcher")
    shot(page, "01-signed-in")
    day = page.input_value("#day")
    board = demo.api("GET", f"/v1/days/{day}/board").json()
    assert page.locator(".timeline .row").count() == len(board["technicians"]) > 0
    visits = sum(len(r["visits"]) for r in board["routes"])
    assert page.locator(".timeline .visit").count() == visits > 0
    assert page.locator("#map .stop-number").count() == visits
    assert page.locator("#map .leaflet-overlay-pane path").count() >= len(board["routes"])
    # Clicking a stop on the map highlights its bar on the timeline.
    first = board["routes"][0]["visits"][0]["job_id"]
    bars = sum(v["job_id"] == first for r in board["routes"] for v in r["visits"])  # a crew: one per member
    page.locator("#map .stop-number").first.click(force=True)
    assert page.locator(".visit.highlight").count() == bars
    page.locator(f".visit[data-job='{first}']").click()
    assert page.get_attribute("body", "data-selected") == first

    # 2. A new request with a hostile note waits; it is shown as text, never run.
    hostile = '<img src=x onerror="window.__xss=1"> gate 4711'
    new = {
        "id": "WEB-1", "kind": "repair", "duration_minutes": 30, "skills": {},
        "location": {"lat": 45.76, "lon": 4.85}, "notes": hostile,
    }  # fmt: skip
    assert demo.api("POST", "/v1/requests", json=new).status_code == 201
    page.reload()
    page.wait_for_selector("body[data-ready='1']")
    row = page.locator("#waiting li[data-job='WEB-1']")
    assert hostile in row.inner_text()
    assert page.locator("#waiting img").count() == 0
    assert page.evaluate("window.__xss") is None
    shot(page, "02-waiting")

    # 3. Drag it over a technician's row at a time: the optimizer's judgement before the drop.
    version = board["plan_version"]
    target = None
    for t in sorted(board["technicians"], key=lambda t: t["id"] not in demo.keys):  # key holders first
        answer = demo.api(
            "POST",
            f"/v1/plans/{version}/evaluate",
            json={"job_id": "WEB-1", "technician_id": t["id"], "date": day},
        ).json()
        if not answer["feasible"]:
            continue
        # The page snaps a drop to 15 minutes: the drop goes where the snapped start fits too.
        m = int(answer["start"][11:13]) * 60 + int(answer["start"][14:16])
        snapped = int(m / 15 + 0.5) * 15
        hhmm = f"{snapped // 60:02d}:{snapped % 60:02d}"
        at = answer["start"][:11] + hhmm + answer["start"][16:]
        again = demo.api(
            "POST",
            f"/v1/plans/{version}/evaluate",
            json={"job_id": "WEB-1", "technician_id": t["id"], "date": day, "start": at},
        ).json()
        if again["feasible"]:
            target = (t["id"], hhmm)
            break
    assert target is not None, "the demo day has room for a 30-minute visit somewhere"
    tid, hhmm = target
    if tid not in demo.keys:  # the demo prints keys for two technicians; the admin makes this one's
        made = demo.api("POST", "/v1/keys", key="admin", json={"role": "technician", "technician_id": tid})
        assert made.status_code == 201, made.text
        demo.keys[tid] = made.json()["key"]
    lane = page.locator(f".lane[data-tech='{tid}']")
    drag(page, row, lane, x_of(page, lane, hhmm))
    page.wait_for_selector("#evaluation[data-feasible='yes']", timeout=10_000)
    text = page.inner_text("#evaluation")
    assert "Feasible" in text and "added travel" in text
    shot(page, "03-evaluation-before-the-drop")
    page.mouse.up()
    placed = page.locator(f".lane[data-tech='{tid}'] .visit[data-job='WEB-1']")
    placed.wait_for(timeout=15_000)
    assert "pinned" in (placed.get_attribute("class") or "")
    shot(page, "04-dropped-and-pinned")

    # An infeasible hover says why (a technician without the skill, or a time off shift).
    drag(page, page.locator(f".visit[data-job='{first}']"), lane, x_of(page, lane, "07:00"))
    page.wait_for_selector("#evaluation[data-feasible]", timeout=10_000)
    page.mouse.move(5, 5)
    page.mouse.up()

    # The keyboard path: select the job, the technician and a time, evaluate.
    page.select_option("#place-job", "WEB-1")
    page.select_option("#place-tech", tid)
    page.fill("#place-time", hhmm)
    page.click("#evaluate")
    page.locator("#evaluation", has_text="WEB-1").wait_for()

    # 4. Re-optimise around the pins, watch the run, read the diff, publish.
    page.click("#replan")
    page.wait_for_selector("#run[data-status='succeeded']", timeout=120_000)
    page.wait_for_selector("body[data-ready='1']")
    assert page.locator(".visit[data-job='WEB-1']").count() == 1
    diff = page.locator("#diff li[data-job='WEB-1']")
    assert diff.count() == 1 and diff.get_attribute("data-change") == "new"
    shot(page, "05-proposal-and-diff")
    page.click("#publish")
    page.locator("#version-state", has_text="(published)").wait_for()
    shot(page, "06-published")
    if os.environ.get("FIELDPLAN_UPDATE_DOCS") == "1":
        (ROOT / "docs").mkdir(exist_ok=True)
        page.locator(f".visit[data-job='{first}']").hover()
        page.screenshot(path=str(ROOT / "docs" / "board.png"))

    # 5. Maintenance: compliance and the forecast chart (fetched with the key, shown from a blob).
    with page.expect_response(lambda r: "/v1/maintenance/forecast" in r.url and r.ok):
        page.click("#maintenance-toggle")
    page.locator("#maintenance-summary", has_text="at risk").wait_for()
    risk = demo.api("GET", "/v1/maintenance/compliance").json()["at_risk"]
    shown_risk = [li.get_attribute("data-job") for li in page.locator("#at-risk li").all()]
    assert shown_risk == [r["key"] for r in risk[:5]]
    page.wait_for_selector("#forecast[src^='blob:']")
    assert page.locator("#forecast").bounding_box()["height"] > 100  # type: ignore[index]
    shot(page, "07-maintenance-forecast")
    page.click("#maintenance-toggle")
    assert page.locator("#maintenance-panel").is_hidden()

    # 6. The week view.
    page.click("#view-week")
    page.wait_for_selector(".week .cell .mini")
    shot(page, "08-week")
    page.click("#view-day")
    page.wait_for_selector("body[data-ready='1']")

    # 7. The technician's phone: that route only; mark a visit completed.
    phone = browser.new_context(viewport={"width": 400, "height": 860}).new_page()
    phone.on("request", lambda r: requests_seen.append(r.url))
    sign_in(phone, demo, tid)
    route = demo.api("GET", "/v1/me/route", key=tid).json()
    shown = [li.get_attribute("data-job") for li in phone.locator("#stops li").all()]
    assert shown == [s["job_id"] for s in route["stops"]] and "WEB-1" in shown
    assert all(j in {v["job_id"] for r in board["routes"] if r["technician_id"] == tid for v in r["visits"]}
               or j == "WEB-1" for j in shown)  # fmt: skip
    job_id = shown[0]
    stop = phone.locator(f"#stops li[data-job='{job_id}']")
    for status in ("en_route", "started", "completed"):
        # Each report is posted, then the route read again (the page's own CSP forbids eval-style waits).
        with phone.expect_response(lambda r: r.url.endswith("/v1/me/route")):
            stop.locator(f"button[data-status='{status}']").click()
    phone.locator(f"#stops li[data-job='{job_id}'] .status", has_text=re.compile("^done$")).wait_for()
    shot(phone, "09-technician-completed-a-visit")
    # The technician's key opens nothing else.
    assert demo.api("GET", f"/v1/days/{day}/board", key=tid).status_code == 403

    # 8. The dispatcher sees it.
    page.reload()
    page.wait_for_selector("body[data-ready='1']")
    assert "status-completed" in (page.locator(f".visit[data-job='{job_id}']").get_attribute("class") or "")
    shot(page, "10-dispatcher-sees-it-done")

    # Nothing but the service was asked for anything.
    local = (demo.base, "data:", f"blob:{demo.base}")  # a blob is the page's own memory (the chart)
    foreign = [u for u in requests_seen if not u.startswith(local)]
    assert foreign == []
    assert errors == []
