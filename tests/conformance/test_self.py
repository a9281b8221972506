"""Self-test: the suite passes against the reference server, in-process and through the CLI, against a
separately started server with --target, and exits 2 for an unreachable target or a usage error."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from importlib.metadata import entry_points
from pathlib import Path

from stui_protocol_kit.conformance import formats
from stui_protocol_kit.conformance.case import Outcome
from stui_protocol_kit.conformance.cli import main
from stui_protocol_kit.conformance.config import RunConfig
from stui_protocol_kit.conformance.runner import run
from stui_protocol_kit.conformance.target import EmbeddedServer
from stui_protocol_kit.protocol.requirements import spec_edition

ROOT = Path(__file__).resolve().parents[2]


def _cli(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, NO_COLOR="1")
    return subprocess.run([sys.executable, "-m", "stui_protocol_kit.conformance.cli", *args],
                          capture_output=True, text=True,
                          timeout=timeout, cwd=ROOT, env=env)


def test_suite_passes_against_the_reference_server_in_process() -> None:
    report = run(RunConfig(seed=1))
    bad = {r.case.id: (r.outcome.value, r.problem.message if r.problem else r.reason)
           for r in report.results if r.outcome not in (Outcome.PASSED,)}
    assert not bad
    assert report.exit_code == 0
    assert len(report.results) > 100
    matrix = report.requirement_matrix()
    # Requirements on clients (spec/16-clients.md) are client-check's, never a server case's.
    untested_must = [k for k, v in matrix.items() if v["level"] == "MUST" and v["verdict"] != "PASSED"
                     and v["section"] != "16-clients.md"]
    assert not untested_must
    assert {k for k, v in matrix.items() if v["section"] == "16-clients.md"} == {
        k for k, v in matrix.items() if v["verdict"] == "UNSELECTED" and v["level"] == "MUST"}


def test_cli_run_writes_junit_and_json(tmp_path: Path) -> None:
    junit, report = tmp_path / "report.xml", tmp_path / "report.json"
    done = _cli("run", "--junit-xml", str(junit), "--json", str(report), "--seed", "7", "--exclude", "stateful.*")
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    assert "PASS: every MUST requirement of the selected cases was checked and held" in done.stdout
    assert "\x1b[" not in done.stdout  # plain when piped
    data = json.loads(report.read_text())
    formats.check("run-report", data)
    assert data["config"]["seed"] == 7 and data["verdict"] == "PASS" and data["exit_code"] == 0
    assert data["spec"]["edition"] == spec_edition() and data["kit"]["version"]
    assert data["hello"]["protocol_versions"] == ["1.0"]
    assert data["counts"]["PASSED"] == len(data["cases"]) > 100
    assert data["requirements"]["TRN-6"]["verdict"] == "PASSED"
    assert "limits.payload-too-large" in data["requirements"]["TRN-6"]["cases"]
    assert all(c["duration_s"] >= 0 for c in data["cases"])
    root = ET.parse(junit).getroot()
    cases = root.findall(".//testcase")
    assert len(cases) == len(data["cases"])
    first = next(c for c in cases if c.get("name") == "limits.payload-too-large")
    reqs = {p.get("value") for p in first.findall("./properties/property[@name='requirement']")}
    assert {"TRN-6", "LIM-2"} <= reqs
    assert not root.findall(".//failure")


def test_target_against_a_separately_started_server(tmp_path: Path) -> None:
    # Default-ish settings: 30 min idle timeout (expiry cases are skipped), no restart command.
    with EmbeddedServer({"log-level": "warning"}, name="separate") as server:
        assert server.endpoint
        report = tmp_path / "r.json"
        done = _cli("run", "--target", server.endpoint, "--json", str(report), "--socket", "req",
                    "--exclude", "stateful.*", "--exclude", "generated.*")
    # Nothing failed, but restart and expiry cases could not run: INCOMPLETE, never PASS.
    assert done.returncode == 3, done.stdout[-3000:]
    assert "PASS" not in done.stdout.splitlines()[-1]
    data = json.loads(report.read_text())
    formats.check("run-report", data)
    outcomes = {c["id"]: c["outcome"] for c in data["cases"]}
    assert outcomes["persistence.state-after-restart"] == "SKIPPED"
    assert outcomes["expiry.validate-after-expiry"] == "SKIPPED"
    assert outcomes["hello.success"] == "PASSED"
    assert data["config"]["socket"] == "req"
    assert data["verdict"] == "INCOMPLETE"
    assert "PER-1" in data["unchecked_must"] and "EXP-3" in data["unchecked_must"]
    assert "INCOMPLETE: " in done.stdout and "--restart-command" in done.stdout
    skipped = next(c for c in data["cases"] if c["id"] == "expiry.validate-after-expiry")
    assert "--expiry-budget" in skipped["reason"]


def test_target_with_restart_command_runs_persistence(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    port_file = tmp_path / "pid"
    with EmbeddedServer({"log-level": "warning"}, name="restartable") as first:
        endpoint = first.endpoint
    assert endpoint
    # A restart command the way an operator would write one: stop the old process, start a new one.
    # Short timeouts, so that the persistence cases that also wait on the clock run too.
    start = (f"{sys.executable} -m stui_protocol_kit.reference_server.cli --bind {endpoint} --data-dir {data_dir} "
             f"--idle-timeout 2 --absolute-timeout 6 --tombstone-retention 4 "
             f"--log-level warning >/dev/null 2>&1 & echo $! > {port_file}")
    subprocess.run(start, shell=True, check=True)
    try:
        restart = f"kill -9 $(cat {port_file}); sleep 0.2; {start}"
        # The reference server's own damage tool as the operator's --corrupt-newest-revision-command.
        corrupt = f"{sys.executable} -m stui_protocol_kit.reference_server.corrupt --data-dir {data_dir}"
        done = _cli("run", "--target", endpoint, "--restart-command", restart, "--corrupt-newest-revision-command",
                    corrupt, "--select", "persistence.*", "--exclude", "stateful.*")
        assert done.returncode == 0, done.stdout[-3000:]
        assert "SKIPPED" not in done.stdout.split("group")[0]
    finally:
        subprocess.run(f"kill -9 $(cat {port_file})", shell=True)


def test_unreachable_target_exits_2() -> None:
    assert main(["run", "--target", "tcp://127.0.0.1:9", "--timeout", "0.5", "--select", "hello.*"]) == 2


def test_usage_errors_exit_2() -> None:
    assert main(["run", "--socket", "pair"]) == 2
    assert main(["run", "--timeout", "0"]) == 2
    assert main(["run", "--select", "no-such-case-*"]) == 2


def test_list_prints_cases_and_exits_0(capsys) -> None:  # type: ignore[no-untyped-def]
    assert main(["run", "--list", "--select", "snapshot.*", "--no-color"]) == 0
    out = capsys.readouterr().out
    assert "snapshot.revision-conflict" in out and "SNP-4" in out


def test_pytest_plugin_collects_cases(tmp_path: Path) -> None:
    (tmp_path / "test_empty.py").write_text("def test_nothing():\n    pass\n")
    installed = any(ep.value == "stui_protocol_kit.conformance.pytest_plugin" for ep in entry_points(group="pytest11"))
    plugin = [] if installed else ["-p", "stui_protocol_kit.conformance.pytest_plugin"]
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", *plugin, "--stui-conformance",
                           "--stui-select", "hello.*", "-p", "no:cacheprovider", str(tmp_path)],
                          capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert "6 passed" in done.stdout
