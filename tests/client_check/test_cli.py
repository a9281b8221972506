"""`stui-conformance client-check` as CI runs it: real processes on both sides (the kit as a process, the
scripted client tests/client_check/cc_clients.py as another), the ready file and the stdout line, every
way it ends (the client's close, --duration, SIGTERM, SIGINT), exit codes, and the reports (JSON checked
against its schema, JUnit XML), with no token in any output.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from stui_protocol_kit.conformance import formats

CLIENT = Path(__file__).with_name("cc_clients.py")
KIT = [sys.executable, "-m", "stui_protocol_kit.conformance.cli", "client-check"]


class KitProcess:
    def __init__(self, tmp: Path, *args: str) -> None:
        self.ready = tmp / "ready"
        self.report = tmp / "report.json"
        self.junit = tmp / "report.xml"
        self.process = subprocess.Popen(
            [*KIT, "--bind", "tcp://127.0.0.1:0", "--ready-file", str(self.ready), "--json", str(self.report),
             "--junit-xml", str(self.junit), "--no-color", *args],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 30
        while not self.ready.exists():
            assert self.process.poll() is None, self.process.communicate()
            assert time.monotonic() < deadline, "no ready file within 30 s"
            time.sleep(0.02)
        self.endpoint = self.ready.read_text().strip()

    def wait(self, timeout_s: float = 60) -> tuple[int, str, str]:
        try:
            out, err = self.process.communicate(timeout=timeout_s)
        finally:
            if self.process.poll() is None:
                self.process.kill()
                self.process.communicate()
        return self.process.returncode, out, err

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.communicate()


@pytest.fixture
def start_kit(tmp_path):
    started: list[KitProcess] = []

    def start(*args: str) -> KitProcess:
        started.append(KitProcess(tmp_path, *args))
        return started[-1]

    yield start
    for kit in started:
        kit.stop()


def run_client(endpoint: str, tmp: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(CLIENT), endpoint, "--tokens-file", str(tmp / "tokens"), *args],
                          capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("socket_kind", ["dealer", "req"])
def test_a_good_client_passes_every_scenario_and_the_run_ends_with_its_close(start_kit, tmp_path, socket_kind):
    kit = start_kit("--reply-delay", "1.5", "--duration", "100")
    assert kit.endpoint.startswith("tcp://127.0.0.1:")
    client = run_client(kit.endpoint, tmp_path, "--socket", socket_kind)
    assert client.returncode == 0, client.stdout + client.stderr
    status, out, err = kit.wait()
    assert status == 0, out + err
    assert out.splitlines()[0] == f"listening on {kit.endpoint}"
    assert "PASS: every selected scenario was exercised and passed" in out
    report = formats.read_client_check_report(kit.report)
    assert (report["verdict"], report["exit_code"], report["ended_by"]) == ("PASS", 0, "close")
    assert [s["outcome"] for s in report["scenarios"]] == ["PASSED"] * 11
    assert report["traffic"]["by_socket"] == {socket_kind.upper(): report["traffic"]["requests"]}
    assert report["traffic"]["restarts"] == 1
    suites = {s.get("name"): s for s in ET.parse(kit.junit).getroot()}
    assert set(suites) == {"client", "scenario"}
    assert suites["scenario"].get("tests") == "11" and suites["scenario"].get("failures") == "0"
    tokens = (tmp_path / "tokens").read_text().split()
    assert len(tokens) >= 5
    written = out + err + kit.report.read_text() + kit.junit.read_text()
    assert not [t for t in tokens if t in written]


def test_a_broken_client_fails_with_exit_1_and_the_report_names_the_requirement(start_kit, tmp_path):
    kit = start_kit("--scenario", "slow-reply", "--reply-delay", "1")
    client = run_client(kit.endpoint, tmp_path, "--broken", "new-id-retry")
    assert client.returncode == 0, client.stdout + client.stderr
    status, out, _ = kit.wait()
    assert status == 1
    assert "scenario slow-reply: FAILED" in out
    assert "FAIL: 1 MUST requirement(s) broken: CLT-8" in out
    report = formats.read_client_check_report(kit.report)
    assert report["failed_must"] == ["CLT-8"]
    problem = report["scenarios"][0]["problems"][0]
    assert problem["requirement"] == "CLT-8" and problem["path"] == "$.id"
    assert problem["expected"] != problem["actual"]
    failures = ET.parse(kit.junit).getroot().findall(".//failure")
    assert len(failures) == 1 and "CLT-8" in failures[0].text


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_ends_the_run_and_unexercised_scenarios_make_it_incomplete(start_kit, signum):
    kit = start_kit("--scenario", "resume-expired")
    time.sleep(0.2)
    kit.process.send_signal(signum)
    status, out, _ = kit.wait()
    assert status == 3, out
    report = formats.read_client_check_report(kit.report)
    assert (report["verdict"], report["ended_by"], report["not_exercised"]) == (
        "INCOMPLETE", "signal", ["resume-expired"])
    assert report["scenarios"][0]["reason"].startswith("not exercised")


def test_duration_ends_the_run_and_a_client_that_sent_nothing_was_not_checked(start_kit):
    kit = start_kit("--scenario", "none", "--duration", "0.5")
    status, out, _ = kit.wait()
    assert status == 3, out
    report = formats.read_client_check_report(kit.report)
    assert (report["verdict"], report["ended_by"], report["scenarios"]) == ("INCOMPLETE", "duration", [])


def test_usage_errors_exit_2(tmp_path):
    unknown = subprocess.run([*KIT, "--scenario", "no-such"], capture_output=True, text=True, timeout=60)
    assert unknown.returncode == 2 and "unknown scenario no-such" in unknown.stderr
    with subprocess.Popen([*KIT, "--bind", "tcp://127.0.0.1:0", "--ready-file", str(tmp_path / "r"),
                           "--duration", "5"], stdout=subprocess.PIPE, text=True) as first:
        try:
            deadline = time.monotonic() + 30
            while not (tmp_path / "r").exists() and time.monotonic() < deadline:
                time.sleep(0.02)
            taken = (tmp_path / "r").read_text().strip()
            second = subprocess.run([*KIT, "--bind", taken], capture_output=True, text=True, timeout=60)
            assert second.returncode == 2 and "cannot serve on" in second.stderr
        finally:
            first.send_signal(signal.SIGTERM)
            first.communicate(timeout=30)


def test_help_documents_every_scenario():
    done = subprocess.run([*KIT, "--help"], capture_output=True, text=True, timeout=60)
    from stui_protocol_kit.conformance.client_check.scenarios import SCENARIOS

    assert done.returncode == 0
    for scenario in SCENARIOS:
        assert f"  {scenario.name}\n" in done.stdout


SCRIPT = Path(__file__).resolve().parents[2] / "docs" / "ci" / "client-check.sh"


@pytest.mark.parametrize(("broken", "status"), [([], 0), (["--broken", "new-id-retry"], 1)])
def test_the_ci_script_runs_a_client_scenario_by_scenario(tmp_path, broken, status):
    env = {**os.environ, "STUI_CONFORMANCE": f"{sys.executable} -m stui_protocol_kit.conformance.cli"}
    done = subprocess.run(
        ["bash", str(SCRIPT), "--scenario", "slow-reply", "--scenario", "resume-expired", "--reply-delay", "1",
         "--reports", str(tmp_path / "reports"), "--", sys.executable, str(CLIENT), "{endpoint}", *broken],
        capture_output=True, text=True, timeout=300, env=env)
    assert done.returncode == status, done.stdout + done.stderr
    assert sorted(p.name for p in (tmp_path / "reports").glob("*.json")) == ["resume-expired.json", "slow-reply.json"]
    for report in (tmp_path / "reports").glob("*.json"):
        formats.read_client_check_report(report)
    if status:
        assert "slow-reply (exit 1)" in done.stderr
    else:
        assert "all 2 scenario(s) passed" in done.stdout


@pytest.mark.parametrize(("strict", "status"), [([], 0), (["--strict"], 1)])
def test_the_ci_script_fails_a_broken_should_only_with_strict(tmp_path, strict, status):
    # A client that skips hello on its new connection breaks VER-4, a SHOULD: NON-STRICT, which fails
    # the scenario only when the script passes --strict on to client-check.
    env = {**os.environ, "STUI_CONFORMANCE": f"{sys.executable} -m stui_protocol_kit.conformance.cli"}
    done = subprocess.run(
        ["bash", str(SCRIPT), "--scenario", "unknown-members", *strict, "--reports", str(tmp_path / "reports"),
         "--", sys.executable, str(CLIENT), "{endpoint}", "--broken", "no-hello"],
        capture_output=True, text=True, timeout=300, env=env)
    assert done.returncode == status, done.stdout + done.stderr
    report = formats.read_client_check_report(tmp_path / "reports" / "unknown-members.json")
    assert report["failed_should"] == ["VER-4"]
    assert report["settings"]["strict"] is bool(strict)
