"""The HTML report in a real headless browser (Debian's Chromium, driven by Playwright): pages of a run
against the reference server and of a run against a deliberately faulty server open from file:// with
no console error and no request beyond the file, show the matrix, and the filters work when clicked.

Chromium is /usr/bin/chromium (or $STUI_CHROMIUM), started with the flags this machine needs (no
background networking) and a fresh profile directory. Without Chromium or Playwright these tests skip
with the reason - except when STUI_REQUIRE_BROWSER=1 (set by .ci/run), where they fail.

The runs are of a few case groups (seconds); STUI_REPORT_FULL_RUN=1 makes them whole runs (about two
minutes for tests/report). Set STUI_DOCS_SCREENSHOT=docs/report.png to (re)write the README's picture
from the screenshot test.
"""

from __future__ import annotations

import copy
import os
import shutil
import struct
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from report_data import FAULT, HOSTILE, hostile_document

from stui_protocol_kit.conformance.report import html_report
from stui_protocol_kit.conformance.report.loaded import LoadedRun, label_runs

CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]
REQUIRED = os.environ.get("STUI_REQUIRE_BROWSER") == "1"


def _unavailable(reason: str) -> None:
    if REQUIRED:
        pytest.fail(f"STUI_REQUIRE_BROWSER=1 but {reason}", pytrace=False)
    pytest.skip(f"{reason} (install Debian's chromium and the test extras; .ci/run does)")


@pytest.fixture(scope="module")
def browser_context(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    chromium = os.environ.get("STUI_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
    if not Path(chromium).exists():
        _unavailable(f"no Chromium at {chromium}")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _unavailable("playwright (a test extra) is not installed")
    profile = tmp_path_factory.mktemp("chromium-profile")
    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(profile), executable_path=chromium, headless=True, args=CHROMIUM_FLAGS,
            viewport={"width": 1400, "height": 1000}, timeout=60_000)
        try:
            yield context
        finally:
            context.close()


class Opened:
    """A page opened from a file, with everything it logged and asked for."""

    def __init__(self, context: Any, path: Path) -> None:
        self.page = context.new_page()
        self.console: list[tuple[str, str]] = []
        self.errors: list[str] = []
        self.requests: list[str] = []
        self.dialogs: list[str] = []
        self.page.on("console", lambda m: self.console.append((m.type, m.text)))
        self.page.on("pageerror", lambda exc: self.errors.append(str(exc)))
        self.page.on("request", lambda r: self.requests.append(r.url))
        self.page.on("dialog", lambda d: (self.dialogs.append(d.message), d.dismiss()))
        self.page.set_default_timeout(15_000)
        self.url = path.resolve().as_uri()
        self.page.goto(self.url, wait_until="load")

    def assert_clean(self) -> None:
        assert not self.errors, self.errors
        assert not [text for kind, text in self.console if kind in ("error", "warning")], self.console
        assert not self.dialogs, self.dialogs
        assert set(self.requests) <= {self.url, "data:,"}, self.requests

    def visible(self, selector: str) -> list[str]:
        """The ids of the matching elements the page shows now."""
        return self.page.eval_on_selector_all(selector, "els => els.filter(e => e.offsetParent !== null)"
                                                        ".map(e => e.id)")

    def close(self) -> None:
        self.page.close()


def _write(tmp_path: Path, name: str, *documents: dict[str, Any], files: tuple[str, ...] = ()) -> Path:
    runs = [LoadedRun(d, files[i] if files else f"{name}-{i}.json") for i, d in enumerate(documents)]
    label_runs(runs)
    path = tmp_path / f"{name}.html"
    html_report.write(runs, path)
    return path


@pytest.fixture
def opened(browser_context: Any) -> Iterator[Any]:
    pages: list[Opened] = []

    def open_page(path: Path) -> Opened:
        pages.append(Opened(browser_context, path))
        return pages[-1]

    yield open_page
    for item in pages:
        item.close()


def test_reference_run_opens_cleanly_and_shows_the_matrix(opened: Any, tmp_path: Path,
                                                          reference_doc: dict[str, Any]) -> None:
    view = opened(_write(tmp_path, "reference", reference_doc))
    view.assert_clean()
    assert view.page.title().startswith("STUI conformance: stui-reference-server")
    assert view.page.locator("#run-0 .verdict").inner_text() == "PASS"
    rows = view.visible("table.matrix tr.req")
    assert len(rows) == len(reference_doc["requirements"]) > 100
    assert view.page.locator("#req-HEL-1 td.run .b").first.inner_text() == "PASSED"
    # The script ran (the CSP let it): the filter bar shows and counts what it shows.
    assert view.page.locator("#filters").is_visible()
    assert view.page.locator(".shown[data-section=matrix]").inner_text() == f"showing {len(rows)} of {len(rows)}"
    assert view.page.locator("#edition").inner_text().startswith(f"Spec edition {reference_doc['spec']['edition']}")


def test_faulty_run_opens_cleanly_and_shows_its_failures(opened: Any, tmp_path: Path,
                                                         faulty_doc: dict[str, Any]) -> None:
    view = opened(_write(tmp_path, "faulty", faulty_doc))
    view.assert_clean()
    assert view.page.locator("#run-0 .verdict").inner_text() == "FAIL"
    assert view.page.locator("#req-SEC-2 td.run .b").first.inner_text() == "FAILED"
    failing = [c["id"] for c in faulty_doc["cases"] if c["outcome"] == "FAILED"]
    assert sorted(view.visible("section.failure")) == sorted(f"f-0-{c}" for c in failing)
    first = view.page.locator(f"[id='f-0-{failing[0]}']")
    assert first.locator(".problem").count() >= 1
    assert first.locator(".transcript .entry").count() >= 2
    # A matrix cell links to the failure it stands for; clicking it goes there.
    link = view.page.locator("#req-SEC-2 ul.cells a").first
    target = link.get_attribute("href")
    assert target and target.removeprefix("#f-0-") in failing
    link.click()
    assert view.page.evaluate("location.hash") == target
    assert view.page.locator(f"[id='{target[1:]}']").is_visible()
    view.assert_clean()


def test_filters_work_when_clicked(opened: Any, tmp_path: Path, faulty_doc: dict[str, Any]) -> None:
    view = opened(_write(tmp_path, "filters", faulty_doc))
    page = view.page
    every_case = view.visible("tr.case")
    assert len(every_case) == len(faulty_doc["cases"])
    outcome = {c["id"]: c["outcome"] for c in faulty_doc["cases"]}

    page.click("#only-problems")
    shown = [i.removeprefix("case-") for i in view.visible("tr.case")]
    assert shown and all(outcome[c] == "FAILED" for c in shown) and len(shown) < len(every_case)
    req_verdicts = {r: row["verdict"] for r, row in faulty_doc["requirements"].items()}
    assert {req_verdicts[i.removeprefix("req-")] for i in view.visible("tr.req")} <= {"FAILED", "NOT-CHECKED"}
    page.click("#show-all")
    assert len(view.visible("tr.case")) == len(every_case)

    # Outcome checkbox: PASSED off hides every passed case and requirement.
    page.uncheck("input[name=outcome][value=PASSED]")
    assert all(outcome[i.removeprefix("case-")] != "PASSED" for i in view.visible("tr.case"))
    assert "req-HEL-1" not in view.visible("tr.req")
    page.check("input[name=outcome][value=PASSED]")

    # Level: MUST off leaves only SHOULD/MAY requirements.
    page.uncheck("input[name=level][value=MUST]")
    levels = {faulty_doc["requirements"][i.removeprefix("req-")]["level"] for i in view.visible("tr.req")}
    assert levels and "MUST" not in levels
    page.check("input[name=level][value=MUST]")

    # Group: only the security cases.
    page.select_option("select[name=group]", "security")
    shown = [i.removeprefix("case-") for i in view.visible("tr.case")]
    assert shown and all(c.startswith("security.") for c in shown)
    page.select_option("select[name=group]", "")

    # Free text: typed like a user does.
    page.fill("input[name=q]", "wrong-token-no-effect")
    assert view.visible("tr.case") == ["case-security.wrong-token-no-effect"]
    page.fill("input[name=q]", "")
    assert len(view.visible("tr.case")) == len(every_case)
    view.assert_clean()


def test_two_runs_side_by_side_with_a_diff(opened: Any, tmp_path: Path, reference_doc: dict[str, Any],
                                           faulty_doc: dict[str, Any]) -> None:
    older, newer = copy.deepcopy(reference_doc), copy.deepcopy(faulty_doc)
    older["started_at"], newer["started_at"] = "2026-12-01T10:00:00+00:00", "2026-12-02T10:00:00+00:00"
    view = opened(_write(tmp_path, "two", older, newer))
    view.assert_clean()
    assert view.page.locator("table.matrix thead th.run").count() == 2
    cells = view.page.locator("#req-SEC-2 td.run > .b")
    assert [cells.nth(i).inner_text() for i in range(2)] == ["PASSED", "FAILED"]
    assert view.page.locator("#diff").is_visible()
    regressed = view.page.locator(".diff ul.regressed-cases li")
    assert regressed.count() == sum(c["outcome"] == "FAILED" for c in faulty_doc["cases"])


def test_hostile_text_stays_text_in_the_browser(opened: Any, tmp_path: Path) -> None:
    view = opened(_write(tmp_path, "xss", hostile_document()))
    page = view.page
    page.hover("#run-0 h3")  # would fire an injected onmouseover
    for selector in ("#case-snapshot\\.revision-conflict", ".transcript"):
        page.locator(selector).first.scroll_into_view_if_needed()
    assert page.evaluate("typeof window.__xss") == "undefined"
    view.assert_clean()
    assert HOSTILE["title"] in page.locator("#case-snapshot\\.revision-conflict").inner_text()
    assert page.locator("img, iframe, svg").count() == 0


def _png_size_and_colours(data: bytes) -> tuple[int, int, int]:
    """Width, height and the number of distinct byte values in the image data of a PNG."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", data[16:24])
    chunks, at = [], 8
    while at < len(data):
        length, kind = struct.unpack(">I4s", data[at:at + 8])
        if kind == b"IDAT":
            chunks.append(data[at + 8:at + 8 + length])
        at += 12 + length
    return width, height, len(set(zlib.decompress(b"".join(chunks))))


def test_screenshot(opened: Any, tmp_path: Path, reference_doc: dict[str, Any], faulty_doc: dict[str, Any]) -> None:
    older, newer = copy.deepcopy(reference_doc), copy.deepcopy(faulty_doc)
    older["started_at"], newer["started_at"] = "2026-12-01T10:00:00+00:00", "2026-12-02T10:00:00+00:00"
    view = opened(_write(tmp_path, "shot", older, newer, files=("reference.json", f"{FAULT}.json")))
    view.page.set_viewport_size({"width": 1400, "height": 1500})  # the summary and the top of the matrix
    view.page.click("#only-problems")
    view.page.evaluate("window.scrollTo(0, 0)")  # the click scrolled to the button; the picture starts at the top
    shot = tmp_path / "report.png"
    view.page.screenshot(path=str(shot))
    width, height, values = _png_size_and_colours(shot.read_bytes())
    assert (width, height) == (1400, 1500)
    assert shot.stat().st_size > 20_000 and values > 50  # text, badges and tables, not a blank page
    target = os.environ.get("STUI_DOCS_SCREENSHOT")
    if target:
        shutil.copyfile(shot, target)
