"""Evidence at CI size, and the long modes behind STUI_EVIDENCE_LONG=1 (issue 10, "bounded evidence").

CI: a SIGKILL storm of 10 kills, a mixed load of 8 clients, a fuzz run of 3,000 messages. Long mode:
50 kills, 50 clients for 30 s, 100,000 messages. Each asserts what must hold - every acknowledged
snapshot is there after every restart, no revision number skipped or reused, every message answered
correctly - and prints its figures (`pytest -s`), which are never asserted (timings belong to bench/).
The same code runs as `python bench/evidence.py storm|load` and `stui-conformance fuzz`.
"""

from __future__ import annotations

import importlib.util
import json
import os
import sys
from pathlib import Path

import pytest

from stui_protocol_kit.conformance.fuzz import fuzz
from stui_protocol_kit.protocol.server_process import ServerProcess

REPO = Path(__file__).resolve().parents[2]
LONG = os.environ.get("STUI_EVIDENCE_LONG") == "1"
_spec = importlib.util.spec_from_file_location("evidence", REPO / "bench" / "evidence.py")
assert _spec is not None and _spec.loader is not None
evidence = importlib.util.module_from_spec(_spec)
sys.modules["evidence"] = evidence
_spec.loader.exec_module(evidence)


def _show(name: str, figures: dict) -> None:
    print(f"\n{name}{' (long mode)' if LONG else ''}: {json.dumps(figures)}")


def test_sigkill_storm_loses_no_acknowledged_snapshot(tmp_path: Path) -> None:
    kills = 50 if LONG else 10
    figures = evidence.sigkill_storm(tmp_path / "data", kills=kills, sessions=3, seed=11)
    _show("sigkill storm", figures.summary())
    assert figures.problems == []
    assert figures.verified == 3 * kills
    assert figures.acknowledged > 0


def test_mixed_load_then_sigkill_keeps_every_acknowledged_snapshot(tmp_path: Path) -> None:
    clients, seconds = (50, 30.0) if LONG else (8, 3.0)
    figures = evidence.mixed_load(tmp_path / "data", clients=clients, seconds=seconds, seed=5)
    _show("mixed load", figures.summary())
    assert figures.problems == []
    assert figures.verified == clients
    assert figures.acknowledged > 0


def test_fuzz_profile_against_the_reference_server(tmp_path: Path) -> None:
    frames = 100_000 if LONG else 3_000
    server = ServerProcess([*evidence.SERVER, "--bind", "tcp://127.0.0.1:0", "--data-dir", str(tmp_path),
                            "--log-level", "warning"], name="reference server")
    with server:
        assert server.endpoint is not None
        report = fuzz(server.endpoint, frames=frames, seed=17, check_every=1000)
        rss = evidence.peak_rss_kib(server.pid)
    _show("fuzz", {**{k: v for k, v in report.as_json().items() if k != "problems"},
                   "server_peak_rss_mib": round(rss / 1024, 1)})
    assert report.passed, report.as_json()["problems"][:5]
    assert report.replies == frames


@pytest.mark.skipif(LONG, reason="the CI-size storm above already ran at long size")
def test_storm_verification_catches_a_store_that_loses_acknowledged_snapshots(tmp_path: Path) -> None:
    """The storm's check can fail: a server whose store is wiped at every start is caught at once."""
    faulty = [sys.executable, str(REPO / "tests" / "faulty" / "server.py"), "--fault", "loses-state-on-restart"]
    original = evidence.SERVER
    evidence.SERVER = faulty
    try:
        figures = evidence.sigkill_storm(tmp_path / "data", kills=1, sessions=2, seed=1)
    finally:
        evidence.SERVER = original
    assert figures.problems and "resume failed after restart" in figures.problems[0]
