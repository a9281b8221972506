"""A team's baseline workflow through the CLI, against a real faulty server: write a baseline from a failing
run, pass with it, fail again when an entry goes stale or a new failure appears."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from stui_protocol_kit.conformance import formats
from stui_protocol_kit.conformance.cli import main
from stui_protocol_kit.conformance.target import EmbeddedServer

FAULTY = Path(__file__).resolve().parents[1] / "faulty" / "server.py"
# The drops-result-field fault fails exactly these cases of the validate group (tests/faulty).
FAILING = ["validate.success", "validate.last-active-at", "validate.changes-nothing",
           "validate.last-active-after-errors"]


@pytest.fixture(scope="module")
def faulty_endpoint() -> Iterator[str]:
    with EmbeddedServer(argv=[sys.executable, str(FAULTY), "--fault", "drops-result-field"], name="faulty") as server:
        assert server.endpoint
        yield server.endpoint


def _run(endpoint: str, *args: str) -> int:
    return main(["run", "--target", endpoint, "--select", "validate.*", "--select", "lifecycle.validate-*",
                 "--timeout", "2", "--no-color", *args])


def test_write_then_keep_a_baseline(faulty_endpoint: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    baseline = tmp_path / "stui-baseline.yaml"
    report = tmp_path / "report.json"
    # 1. The first run fails and writes the baseline of what failed.
    assert _run(faulty_endpoint, "--write-baseline", str(baseline)) == 1
    written = formats.read_baseline(baseline)
    assert [e.case for e in written.entries] == FAILING
    assert all(e.reason.startswith("FAILED on ") for e in written.entries)
    assert baseline.read_text().startswith("# stui-conformance baseline")
    capsys.readouterr()

    # 2. With it, the same failures do not fail the run; every report says they are baselined.
    assert _run(faulty_endpoint, "--baseline", str(baseline), "--json", str(report)) == 0
    out = capsys.readouterr().out
    assert "PASS against the baseline" in out and "baselined: FAILED on " in out
    document = json.loads(report.read_text())
    formats.check("run-report", document)
    assert document["verdict"] == "PASS"
    assert sorted(c["id"] for c in document["cases"] if "baselined" in c) == sorted(FAILING)
    assert {c["outcome"] for c in document["cases"] if "baselined" in c} == {"FAILED"}

    # 3. An entry for a case that passes: the baseline went stale, the run fails and says which entry.
    stale = "- case: lifecycle.validate-unknown-session\n  reason: was broken once\n"
    baseline.write_text(baseline.read_text() + stale)
    assert _run(faulty_endpoint, "--baseline", str(baseline)) == 1
    out = capsys.readouterr().out
    assert "FAIL: the baseline went stale (1 entry, below)" in out
    assert (f"lifecycle.validate-unknown-session: stale: lifecycle.validate-unknown-session now passes: remove the"
            f" entry from {baseline}") in out

    # 4. An entry naming no case (renamed, or a typo) fails the run too.
    (tmp_path / "typo.yaml").write_text("- case: validate.sucess\n  reason: typo\n")
    assert _run(faulty_endpoint, "--baseline", str(tmp_path / "typo.yaml")) == 1
    assert "no case validate.sucess in this kit" in capsys.readouterr().out

    # 5. A failure the baseline does not list fails the run.
    partial = tmp_path / "partial.yaml"
    partial.write_text("- case: validate.success\n  reason: PHARO-1\n")
    assert _run(faulty_endpoint, "--baseline", str(partial)) == 1
    assert "FAIL: 1 MUST requirement(s) broken" in capsys.readouterr().out


def test_rewriting_a_baseline_keeps_reasons_and_drops_fixed_entries(faulty_endpoint: str, tmp_path: Path) -> None:
    baseline = tmp_path / "b.yaml"
    baseline.write_text("- case: validate.success\n  reason: 'PHARO-12: result fields'\n"
                        "- case: lifecycle.validate-unknown-session\n  reason: fixed since\n")
    assert _run(faulty_endpoint, "--baseline", str(baseline), "--write-baseline", str(baseline)) == 1  # stale
    entries = formats.read_baseline(baseline).entries
    assert [e.case for e in entries] == FAILING
    assert entries[0].reason == "PHARO-12: result fields"


def test_a_malformed_baseline_is_a_usage_error_before_anything_runs(tmp_path: Path,
                                                                    capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "b.yaml"
    bad.write_text("- case: validate.success\n")
    # The target is unreachable: exit 2 comes from the baseline, before the suite tries to reach it.
    assert main(["run", "--target", "tcp://127.0.0.1:9", "--baseline", str(bad)]) == 2
    assert "'reason' is a required property" in capsys.readouterr().err
    assert main(["run", "--baseline", str(tmp_path / "missing.yaml")]) == 2
