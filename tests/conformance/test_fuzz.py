"""The fuzz profile (`stui-conformance fuzz`): a correct server passes any seed, and a server that drops a
message or echoes a wrong id fails (faulty servers of tests/faulty/ as real processes)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from stui_protocol_kit.conformance.fuzz import fuzz
from stui_protocol_kit.conformance.target import EmbeddedServer

REPO = Path(__file__).resolve().parents[2]
FAULTY = [sys.executable, str(REPO / "tests" / "faulty" / "server.py")]
CONFORMANCE = [sys.executable, "-m", "stui_protocol_kit.conformance.cli"]


@pytest.fixture(scope="module")
def reference() -> str:
    with EmbeddedServer(name="fuzz-test") as server:
        assert server.endpoint is not None
        yield server.endpoint


def test_a_correct_server_passes_the_fuzz_profile(reference: str) -> None:
    report = fuzz(reference, frames=1500, seed=1, check_every=250)
    assert report.passed, report.as_json()["problems"]
    assert report.replies == report.frames == 1500 and report.missing == 0
    assert report.liveness_checks == 6
    assert len(report.kinds) == 10  # every kind of message was sent
    assert report.codes["InvalidRequest"] > 0 and report.codes["PayloadTooLarge"] > 0 and report.codes["success"] > 0


def test_the_same_seed_sends_the_same_messages(reference: str) -> None:
    assert fuzz(reference, frames=300, seed=7).kinds == fuzz(reference, frames=300, seed=7).kinds


@pytest.mark.parametrize(("fault", "requirement"), [("silent-on-bad-json", "TRN-3"), ("echoes-wrong-id", "ENV-5"),
                                                    ("accepts-extra-frames", "TRN-3")])
def test_the_fuzz_profile_catches_faulty_servers(fault: str, requirement: str) -> None:
    with EmbeddedServer(argv=[*FAULTY, "--fault", fault], name=f"faulty-{fault}") as server:
        assert server.endpoint is not None
        report = fuzz(server.endpoint, frames=400, seed=3, timeout_s=0.5, check_every=200)
    assert not report.passed
    assert requirement in {p.requirement for _, _, p in report.problems}, report.as_json()["problems"][:5]


def test_fuzz_verb_exit_status_and_json(tmp_path: Path) -> None:
    out = tmp_path / "fuzz.json"
    done = subprocess.run([*CONFORMANCE, "fuzz", "--frames", "300", "--seed", "5", "--json", str(out)],
                          capture_output=True, text=True, cwd=REPO, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "verdict: PASS" in done.stdout
    summary = json.loads(out.read_text())
    assert summary["verdict"] == "PASS" and summary["frames"] == 300 and summary["missing_replies"] == 0
    bad = subprocess.run([*CONFORMANCE, "fuzz", "--frames", "0"], capture_output=True, text=True, cwd=REPO,
                         timeout=60)
    assert bad.returncode == 2
    unreachable = subprocess.run([*CONFORMANCE, "fuzz", "--frames", "5", "--target", "tcp://127.0.0.1:1",
                                  "--timeout", "0.5"], capture_output=True, text=True, cwd=REPO, timeout=60)
    assert unreachable.returncode == 2, unreachable.stdout + unreachable.stderr


def test_a_server_with_the_shortest_timeouts_passes_too() -> None:
    """Sessions expiring during the run (allowed by the spec) never count against the server."""
    settings = {"idle-timeout": 1, "absolute-timeout": 1, "tombstone-retention": 1, "retry-window": 1,
                "max-message-bytes": 65536, "cleanup-interval": 0.2, "log-level": "warning"}
    with EmbeddedServer(settings, name="fuzz-short") as server:
        assert server.endpoint is not None
        report = fuzz(server.endpoint, frames=3000, seed=4, check_every=100)
    assert report.passed, report.as_json()["problems"]
    assert report.codes["SessionExpired"] + report.codes["SessionNotFound"] > 0  # expiry did happen
