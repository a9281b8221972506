"""How long the default conformance profile takes against the embedded reference server.

Run: python bench/bench_suite.py [--repeats N]

Runs `stui-conformance run` (no target: the embedded reference server, the README's main job) with
DEALER and with REQ sockets, alternating, N times each; prints the median wall time of each beside the
60 s budget of issue 4, how much of it is spent in cases vs start-up, and the slowest cases and groups.
Figures only; tests check behaviour.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

BUDGET_S = 60.0


def run_once(socket: str, report: Path) -> tuple[float, dict]:
    started = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "stui_protocol_kit.conformance.cli", "run", "--socket", socket, "--json", str(report)],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )
    wall = time.perf_counter() - started
    if proc.returncode != 0:
        raise SystemExit(f"run with --socket {socket} exited {proc.returncode}: {proc.stderr[-2000:]}")
    return wall, json.loads(report.read_text())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    walls: dict[str, list[float]] = defaultdict(list)
    in_cases: dict[str, list[float]] = defaultdict(list)
    last: dict[str, dict] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(args.repeats):
            for socket in ("dealer", "req"):
                wall, report = run_once(socket, Path(tmp) / f"{socket}-{i}.json")
                walls[socket].append(wall)
                in_cases[socket].append(report["duration_s"])
                last[socket] = report
    cases = len(last["dealer"]["cases"])
    print(f"stui-conformance run, embedded reference server, {cases} cases, {args.repeats} runs per socket")
    print(f"{'socket':<8} {'median wall s':>14} {'in cases s':>11} {'start/stop s':>13} {'of 60 s budget':>15}")
    for socket in ("dealer", "req"):
        wall, inside = statistics.median(walls[socket]), statistics.median(in_cases[socket])
        print(f"{socket:<8} {wall:>14.1f} {inside:>11.1f} {wall - inside:>13.1f} {wall / BUDGET_S:>14.0%}")
    report = last["dealer"]
    slowest = sorted(report["cases"], key=lambda c: c["duration_s"], reverse=True)[:8]
    print("slowest cases (dealer, last run):")
    for case in slowest:
        print(f"  {case['duration_s']:>6.2f}s  {case['id']}")
    groups: dict[str, float] = defaultdict(float)
    for case in report["cases"]:
        groups[case["group"]] += case["duration_s"]
    print("time per group (dealer, last run; expiry cases overlap, so groups can sum above the wall time):")
    for group, seconds in sorted(groups.items(), key=lambda kv: kv[1], reverse=True)[:8]:
        print(f"  {seconds:>6.2f}s  {group}")


if __name__ == "__main__":
    main()
