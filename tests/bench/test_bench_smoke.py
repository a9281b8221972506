"""bench/run.py --quick prints a row for every figure of issue 14's targets (never judged: timings live
in bench/ only). About a minute, so a long mode: STUI_BENCH_SMOKE=1 runs it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

RUN = Path(__file__).resolve().parents[2] / "bench" / "run.py"
# Every measure the issue names, as its row begins (the figures themselves are not checked).
MEASURES = [
    ("1", "evaluate p50 under 8 writers"), ("1", "evaluate p99 under 8 writers"),
    ("2", "durable snapshots/s, 50 clients"),
    ("3", "hello sequential p50"), ("3", "session.validate sequential p50"), ("3", "evaluate sequential p50"),
    ("3", "session.validate pipelined (64 in flight)"), ("3", "session.snapshot p50"),
    ("3", "(one durable commit alone"),
    ("4", "resume, loading from storage: "), ("4", "resume, held: "), ("4", "snapshot: "),
    ("4", "resume, loading from storage, "), ("4", "resume, held, "), ("4", "snapshot, "),
    ("4", "start-up, "), ("4", "tick(), "),
    ("5", "server RSS after"),
    ("6", "stui-conformance validate, "), ("6", "validating proxy: added p50"),
    ("7", "default conformance run"), ("7", "whole suite"),
]


@pytest.mark.slow
@pytest.mark.skipif(os.environ.get("STUI_BENCH_SMOKE") != "1", reason="long mode: set STUI_BENCH_SMOKE=1")
def test_quick_bench_prints_every_row() -> None:
    done = subprocess.run([sys.executable, str(RUN), "--quick"], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    rows = [line.strip().split(" | ") for line in done.stdout.splitlines() if " | " in line]
    for target, measure in MEASURES:
        matching = [r for r in rows if r[0] == target and r[1].startswith(measure)]
        assert matching, f"no row for target {target}: {measure!r} in:\n{done.stdout}"
        for cells in matching:
            assert len(cells) == 7, cells  # figure, floor, ratio, target and verdict side by side
    assert "ERROR" not in done.stdout
