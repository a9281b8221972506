"""`stui-conformance report`: reads run reports through the one reader, refuses another report format or
spec edition (or shows it flagged when asked), compares runs, and re-judges them against a baseline
exactly as `run --baseline` would."""

from __future__ import annotations

import copy
import io
import json
from pathlib import Path
from typing import Any

import pytest

from stui_protocol_kit.conformance.baseline import Baseline, BaselineEntry
from stui_protocol_kit.conformance.cli import main
from stui_protocol_kit.conformance.report import html_report, json_report, junit
from stui_protocol_kit.conformance.report.compare import rates
from stui_protocol_kit.conformance.report.json_report import kit_version
from stui_protocol_kit.conformance.report.loaded import LoadedRun, rejudge
from stui_protocol_kit.conformance.report.terminal import TerminalReport
from stui_protocol_kit.conformance.runner import RunReport
from stui_protocol_kit.protocol.requirements import spec_edition


def _save(tmp_path: Path, name: str, document: dict[str, Any]) -> str:
    path = tmp_path / name
    path.write_text(json.dumps(document), encoding="utf-8")
    return str(path)


def test_a_passing_and_a_failing_run_compared(tmp_path: Path, reference_doc: dict[str, Any],
                                              faulty_doc: dict[str, Any], capsys: pytest.CaptureFixture[str]) -> None:
    older, newer = copy.deepcopy(reference_doc), copy.deepcopy(faulty_doc)
    older["started_at"], newer["started_at"] = "2026-12-01T10:00:00+00:00", "2026-12-02T10:00:00+00:00"
    html = tmp_path / "report.html"
    code = main(["report", _save(tmp_path, "new.json", newer), _save(tmp_path, "old.json", older), "--html", str(html),
                 "--no-color"])
    assert code == 1  # one of them FAILs
    out = capsys.readouterr().out
    failing = [c["id"] for c in faulty_doc["cases"] if c["outcome"] == "FAILED"]
    assert f"{len(failing)} case(s) regressed" in out and "0 case(s) fixed" in out
    assert f"{failing[0]}: PASSED -> FAILED" in out
    assert "verdict PASS -> FAIL" in out
    assert html.read_text().startswith("<!DOCTYPE html>")
    assert main(["report", _save(tmp_path, "old.json", older), "--no-color"]) == 0


def test_another_report_format_is_refused(tmp_path: Path, reference_doc: dict[str, Any],
                                          capsys: pytest.CaptureFixture[str]) -> None:
    old = copy.deepcopy(reference_doc)
    old["schema_version"] = 2
    assert main(["report", _save(tmp_path, "v2.json", old)]) == 2
    err = capsys.readouterr().err
    assert "v2.json: a run report of schema_version 2; this kit reads schema_version 3" in err
    (tmp_path / "junk.json").write_text("{not json")
    assert main(["report", str(tmp_path / "junk.json")]) == 2
    assert "not JSON" in capsys.readouterr().err
    assert main(["report", str(tmp_path / "missing.json")]) == 2


def test_another_spec_edition_is_refused_or_flagged(tmp_path: Path, reference_doc: dict[str, Any],
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    other = copy.deepcopy(reference_doc)
    other["spec"]["edition"] = "0.9.0"
    path = _save(tmp_path, "old-edition.json", other)
    assert main(["report", path, "--no-color"]) == 2
    assert "a report of spec edition 0.9.0, this kit checks edition" in capsys.readouterr().err
    html = tmp_path / "flagged.html"
    assert main(["report", path, "--allow-other-edition", "--html", str(html), "--no-color"]) == 0
    assert "flagged: spec edition 0.9.0, not this kit's" in capsys.readouterr().out
    assert 'class="flag bad edition-flag">spec edition 0.9.0, not this kit&#x27;s' in html.read_text()


def test_rejudging_without_a_baseline_reproduces_the_stored_verdict(faulty_doc: dict[str, Any],
                                                                    reference_doc: dict[str, Any]) -> None:
    for document in (faulty_doc, reference_doc):
        again = rejudge(document, None)
        for key in ("verdict", "exit_code", "unchecked_must", "failed_must", "failed_should", "cases"):
            assert again[key] == document[key], key


def test_rejudging_against_a_baseline_matches_run_baseline(faulty_run: RunReport, faulty_doc: dict[str, Any]) -> None:
    failing = [r.case.id for r in faulty_run.results if r.blocking()]
    baseline = Baseline(tuple(BaselineEntry(c, "PHARO-3") for c in failing), "b.yaml")
    with_baseline = copy.copy(faulty_run)
    with_baseline.baseline = baseline
    expected = json_report.build(with_baseline)
    assert expected["verdict"] == "PASS"
    again = rejudge(faulty_doc, baseline, faulty_run.known_cases)
    for key in ("verdict", "exit_code", "baseline", "failed_must", "cases"):
        assert again[key] == expected[key], key


def test_report_baseline_cli(tmp_path: Path, faulty_doc: dict[str, Any], capsys: pytest.CaptureFixture[str]) -> None:
    failing = [c["id"] for c in faulty_doc["cases"] if c["outcome"] == "FAILED"]
    passing = next(c["id"] for c in faulty_doc["cases"] if c["outcome"] == "PASSED")
    baseline = tmp_path / "b.yaml"
    baseline.write_text("".join(f"- case: {c}\n  reason: PHARO-3\n" for c in failing))
    path = _save(tmp_path, "faulty.json", faulty_doc)
    assert main(["report", path, "--no-color"]) == 1
    assert main(["report", path, "--baseline", str(baseline), "--no-color"]) == 0
    assert f"{len(failing)} baselined" in capsys.readouterr().out
    baseline.write_text(baseline.read_text() + f"- case: {passing}\n  reason: old\n")
    assert main(["report", path, "--baseline", str(baseline), "--no-color"]) == 1
    assert f"{passing}: stale: {passing} now passes" in capsys.readouterr().out


def test_pass_rates_count_only_applicable_requirements(faulty_doc: dict[str, Any]) -> None:
    must = rates(faulty_doc)["MUST"]
    rows = [r for r in faulty_doc["requirements"].values() if r["cases"] and r["level"] == "MUST"]
    assert must.held == sum(r["verdict"] == "PASSED" for r in rows)
    assert must.failed == len(faulty_doc["failed_must"]) > 0
    assert must.applicable == must.held + must.failed + must.not_checked
    assert must.text().startswith(f"{must.held}/{must.applicable} held (")


def test_every_report_names_the_spec_edition_and_kit_version(reference_run: RunReport) -> None:
    edition, version = spec_edition(), kit_version()
    document = json_report.build(reference_run)
    assert document["spec"]["edition"] == edition and document["kit"]["version"] == version
    suite = junit.build(reference_run).find("testsuite")
    properties = {p.get("name"): p.get("value") for p in suite.find("properties")}
    assert properties["spec_edition"] == edition and properties["kit_version"] == version
    stream = io.StringIO()
    TerminalReport(stream).summary(reference_run)
    assert f"spec {edition}, kit {version}" in stream.getvalue()
    page = html_report.render([LoadedRun(document, label="x")])
    assert f'<meta name="stui-spec-edition" content="{edition}">' in page
    assert f'<meta name="stui-kit-version" content="{version}">' in page


def test_run_html_writes_the_page(tmp_path: Path) -> None:
    out = tmp_path / "run.html"
    assert main(["run", "--select", "hello.*", "--html", str(out), "--no-color"]) == 0
    page = out.read_text(encoding="utf-8")
    assert '<span class="verdict PASS">PASS</span>' in page and 'id="req-HEL-1"' in page
