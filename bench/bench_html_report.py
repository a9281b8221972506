"""What the HTML report costs: page size and render time beside the JSON report's, and how fast headless
Chromium opens the page and applies a filter.

Run: python bench/bench_html_report.py [--repeats N] [RESULT.json ...]

Without RESULT files it runs the whole suite once against the embedded reference server (`run --json`)
and measures that run's report; with files it measures them (one page for all). Prints, side by side in
one run: JSON report size and build time (`json_report.build`), HTML page size and render time
(`html_report.render`), their ratios; then - when /usr/bin/chromium and playwright are there - the
median time from navigation to the load event and for one filter click ("Only problems"). Figures only;
tests check behaviour.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from stui_protocol_kit.conformance.report import html_report
from stui_protocol_kit.conformance.report.loaded import LoadedRun, label_runs, load

FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync"]


def median_ms(action, repeats: int) -> float:  # type: ignore[no-untyped-def]
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        action()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def browser(page_path: Path, repeats: int) -> tuple[float, float] | None:
    if not Path("/usr/bin/chromium").exists():
        return None
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        return None
    loads, clicks = [], []
    with tempfile.TemporaryDirectory() as profile, sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(profile, executable_path="/usr/bin/chromium",
                                                               headless=True, args=FLAGS)
        for _ in range(repeats):
            page = context.new_page()
            started = time.perf_counter()
            page.goto(page_path.resolve().as_uri(), wait_until="load")
            loads.append((time.perf_counter() - started) * 1000)
            started = time.perf_counter()
            page.click("#only-problems")
            page.evaluate("() => new Promise(r => requestAnimationFrame(() => r(1)))")  # after the re-layout
            clicks.append((time.perf_counter() - started) * 1000)
            page.close()
        context.close()
    return statistics.median(loads), statistics.median(clicks)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("results", nargs="*", metavar="RESULT.json")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        paths = [Path(p) for p in args.results]
        if not paths:
            paths = [Path(tmp) / "reference.json"]
            done = subprocess.run([sys.executable, "-m", "stui_protocol_kit.conformance.cli", "run", "--json",
                                   str(paths[0])], stdout=subprocess.DEVNULL)
            if done.returncode != 0:
                raise SystemExit(f"the reference run exited {done.returncode}")
        runs = load(paths, allow_other_edition=True)
        label_runs(runs)
        documents = [r.document for r in runs]
        json_bytes = sum(len(json.dumps(d, indent=2, ensure_ascii=False)) for d in documents)
        json_ms = median_ms(lambda: [json.dumps(d, indent=2, ensure_ascii=False) for d in documents], args.repeats)
        page = html_report.render([LoadedRun(r.document, r.source, r.label) for r in runs])
        html_ms = median_ms(lambda: html_report.render(runs), args.repeats)
        page_path = Path(tmp) / "report.html"
        page_path.write_text(page, encoding="utf-8")
        cases = sum(len(d["cases"]) for d in documents)
        print(f"{len(runs)} run(s), {cases} cases, {len(documents[0]['requirements'])} requirements;"
              f" median of {args.repeats}")
        print(f"{'':<28} {'bytes':>10} {'ms':>9}")
        print(f"{'JSON report (serialise)':<28} {json_bytes:>10} {json_ms:>9.1f}")
        print(f"{'HTML report (render)':<28} {len(page.encode()):>10} {html_ms:>9.1f}")
        print(f"HTML / JSON: size {len(page.encode()) / json_bytes:.2f}x, time {html_ms / json_ms:.2f}x")
        measured = browser(page_path, args.repeats)
        if measured is None:
            print("chromium or playwright missing: no browser figures")
        else:
            print(f"headless chromium: load {measured[0]:.0f} ms, 'Only problems' click {measured[1]:.0f} ms"
                  " (Playwright's click with its actionability checks, to the next frame)")


if __name__ == "__main__":
    main()
