"""Baselines of expected non-passes: a listed failure does not fail the run, a stale entry (the case now
passes, or no such case) does, and every report says which cases were baselined and why."""

from __future__ import annotations

import io
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from stui_protocol_kit.conformance import formats
from stui_protocol_kit.conformance.baseline import Baseline, BaselineEntry, from_results, to_yaml
from stui_protocol_kit.conformance.case import Case, CaseResult, Outcome
from stui_protocol_kit.conformance.config import RunConfig
from stui_protocol_kit.conformance.report import json_report, junit
from stui_protocol_kit.conformance.report.terminal import TerminalReport
from stui_protocol_kit.conformance.runner import RunReport
from stui_protocol_kit.conformance.verdicts import EntryStatus, requirement_matrix, run_verdict
from stui_protocol_kit.protocol.problems import Problem
from stui_protocol_kit.protocol.requirements import requirements

KNOWN = {"hello.success", "snapshot.revision-conflict", "evaluate.error-position", "persistence.state-after-restart",
         "close.success", "envelope.error-echo"}


def _case(case_id: str, *reqs: str) -> Case:
    return Case(id=case_id, title=case_id, sends="", requirements=reqs, run=lambda ctx: None)


def _failed(case_id: str, requirement: str, outcome: Outcome = Outcome.FAILED) -> CaseResult:
    return CaseResult(_case(case_id, requirement), outcome,
                      problems=[Problem(requirement, "stale revision accepted", "$.status", "error", "success")])


def _baseline(*pairs: tuple[str, str]) -> Baseline:
    return Baseline(tuple(BaselineEntry(c, r) for c, r in pairs), "stui-baseline.yaml")


def _verdict(results: list[CaseResult], baseline: Baseline | None, strict: bool = False):  # type: ignore[no-untyped-def]
    return run_verdict(results, requirement_matrix(results, requirements()), strict, baseline, KNOWN)


def test_a_listed_failure_passes_the_run_and_keeps_its_outcome() -> None:
    results = [CaseResult(_case("hello.success", "HEL-1"), Outcome.PASSED),
               _failed("snapshot.revision-conflict", "SNP-4")]
    assert _verdict(results, None).verdict.value == "FAIL"
    verdict = _verdict(results, _baseline(("snapshot.revision-conflict", "PHARO-12: conflicts not detected yet")))
    assert verdict.verdict.value == "PASS" and verdict.exit_code == 0
    assert verdict.baselined == {"snapshot.revision-conflict": "PHARO-12: conflicts not detected yet"}
    # Honest about what is broken: the requirement stays FAILED and listed, marked as baselined.
    assert verdict.failed_must == ("SNP-4",) and verdict.baselined_requirements == ("SNP-4",)
    assert results[1].outcome is Outcome.FAILED


def test_a_listed_case_that_passes_makes_the_baseline_stale_and_fails_the_run() -> None:
    results = [CaseResult(_case("hello.success", "HEL-1"), Outcome.PASSED)]
    verdict = _verdict(results, _baseline(("hello.success", "was broken")))
    assert verdict.verdict.value == "FAIL" and verdict.exit_code == 1
    (stale,) = verdict.stale
    assert stale.case == "hello.success" and stale.status is EntryStatus.STALE
    assert "now passes" in stale.why and "remove the entry from stui-baseline.yaml" in stale.why


def test_a_listed_id_that_does_not_exist_fails_the_run() -> None:
    results = [CaseResult(_case("hello.success", "HEL-1"), Outcome.PASSED)]
    verdict = _verdict(results, _baseline(("snapshot.revision-conflcit", "typo")))
    assert verdict.verdict.value == "FAIL"
    assert "no case snapshot.revision-conflcit in this kit" in verdict.stale[0].why


def test_a_failure_the_baseline_does_not_list_still_fails_the_run() -> None:
    results = [_failed("snapshot.revision-conflict", "SNP-4"), _failed("close.success", "CLS-1")]
    verdict = _verdict(results, _baseline(("snapshot.revision-conflict", "known")))
    assert verdict.verdict.value == "FAIL" and not verdict.stale
    assert set(verdict.failed_must) == {"SNP-4", "CLS-1"} and verdict.baselined_requirements == ("SNP-4",)


def test_unselected_skipped_and_erred_entries_neither_fail_nor_are_forgiven() -> None:
    results = [CaseResult(_case("hello.success", "HEL-1"), Outcome.PASSED),
               CaseResult(_case("persistence.state-after-restart", "PER-1"), Outcome.SKIPPED,
                          reason="--restart-command"),
               CaseResult(_case("envelope.error-echo", "ENV-3"), Outcome.ERROR, reason="the case itself raised")]
    verdict = _verdict(results, _baseline(("persistence.state-after-restart", "a"), ("envelope.error-echo", "b"),
                                          ("close.success", "c")))
    statuses = {e.case: e.status for e in verdict.baseline}
    assert statuses == {"persistence.state-after-restart": EntryStatus.UNCONFIRMED,
                        "envelope.error-echo": EntryStatus.UNCONFIRMED, "close.success": EntryStatus.NOT_RUN}
    # The suite's own ERROR is never forgiven by a baseline.
    assert verdict.verdict.value == "ERROR"


def test_non_strict_failures_can_be_baselined_under_strict() -> None:
    results = [_failed("evaluate.error-position", "EVL-6", Outcome.NON_STRICT)]
    assert _verdict(results, None, strict=True).verdict.value == "FAIL"
    assert _verdict(results, _baseline(("evaluate.error-position", "later")), strict=True).verdict.value == "PASS"


def test_requirements_left_unchecked_by_a_baselined_case_do_not_make_the_run_incomplete() -> None:
    # The case checks SNP-4 then SNP-5; it failed on SNP-4, so SNP-5 was not reached.
    wide = CaseResult(_case("snapshot.revision-conflict", "SNP-4", "SNP-5"), Outcome.FAILED,
                      problems=[Problem("SNP-4", "accepted", "$.status", "error", "success")])
    verdict = _verdict([wide], _baseline(("snapshot.revision-conflict", "known")))
    assert verdict.verdict.value == "PASS"
    assert verdict.unchecked_must == ("SNP-5",) and verdict.baselined_unchecked == ("SNP-5",)


def test_reader_round_trips_what_the_writer_writes(tmp_path: Path) -> None:
    tricky = 'PHARO-7: "quotes", colons: yes\nand a second line; ünïcode; # not a comment'
    baseline = _baseline(("snapshot.revision-conflict", tricky), ("close.success", "- looks like a list"))
    path = tmp_path / "b.yaml"
    path.write_text(to_yaml(baseline, ["a header line", "another"]), encoding="utf-8")
    assert path.read_text().startswith("# a header line\n# another\n")
    read = formats.read_baseline(path)
    assert read.entries == baseline.entries and read.source == str(path)


@pytest.mark.parametrize("text, message", [
    ("- case: hello.success\n", "'reason' is a required property"),
    ("- case: hello.success\n  reason: x\n  outcome: FAILED\n", "Additional properties are not allowed"),
    ("- case: Hello Success\n  reason: x\n", "does not match"),
    ("- case: hello.success\n  reason: '  '\n", "does not match"),
    ("case: hello.success\nreason: x\n", "is not of type 'array'"),
    ("- case: hello.success\n  reason: a\n- case: hello.success\n  reason: b\n", "listed twice"),
    ("- case: [unclosed\n", "not YAML"),
])
def test_reader_refuses_what_is_not_a_baseline(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "b.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(formats.FormatError, match="not a baseline document") as caught:
        formats.read_baseline(path)
    assert message in str(caught.value)


def test_an_empty_file_is_an_empty_baseline(tmp_path: Path) -> None:
    path = tmp_path / "b.yaml"
    path.write_text("# everything fixed\n", encoding="utf-8")
    assert formats.read_baseline(path).entries == ()


def test_written_baseline_lists_what_fails_the_run_and_keeps_earlier_reasons() -> None:
    results = [CaseResult(_case("hello.success", "HEL-1"), Outcome.PASSED),
               _failed("snapshot.revision-conflict", "SNP-4"), _failed("close.success", "CLS-1", Outcome.TIMEOUT),
               _failed("evaluate.error-position", "EVL-6", Outcome.NON_STRICT),
               CaseResult(_case("envelope.error-echo", "ENV-3"), Outcome.ERROR, reason="suite bug")]
    previous = _baseline(("close.success", "PHARO-9: close hangs"), ("hello.success", "old"))
    made = from_results(results, strict=False, date="2026-12-02", previous=previous)
    assert [e.case for e in made.entries] == ["snapshot.revision-conflict", "close.success"]
    assert made.entries[0].reason == "FAILED on 2026-12-02: SNP-4 at $.status: stale revision accepted"
    assert made.entries[1].reason == "PHARO-9: close hangs"
    strict = from_results(results, strict=True, date="2026-12-02")
    assert "evaluate.error-position" in strict


def _report(results: list[CaseResult], baseline: Baseline | None) -> RunReport:
    return RunReport(results, {"server": {"name": "pharo-stui", "version": "0.3"}}, "tcp://127.0.0.1:1", RunConfig(),
                     "2026-12-02T10:00:00+00:00", 1.0, baseline=baseline, known_cases=frozenset(KNOWN))


def test_every_report_shows_baselined_cases_and_stale_entries() -> None:
    results = [CaseResult(_case("hello.success", "HEL-1"), Outcome.PASSED),
               _failed("snapshot.revision-conflict", "SNP-4")]
    report = _report(results, _baseline(("snapshot.revision-conflict", "PHARO-12"), ("hello.success", "old")))
    # JSON: outcome unchanged, the reason beside it, every entry with its status; valid against the schema.
    document = json_report.build(report)
    formats.check("run-report", document)
    case = next(c for c in document["cases"] if c["id"] == "snapshot.revision-conflict")
    assert case["outcome"] == "FAILED" and case["baselined"] == "PHARO-12"
    assert document["verdict"] == "FAIL" and document["exit_code"] == 1
    assert [(e["case"], e["status"]) for e in document["baseline"]["entries"]] == [
        ("snapshot.revision-conflict", "baselined"), ("hello.success", "stale")]
    assert document["baseline"]["source"] == "stui-baseline.yaml"
    # JUnit: the baselined failure is skipped (CI stays green on it), the stale entry is a failure.
    root = junit.build(report)
    testcase = next(t for t in root.iter("testcase") if t.get("name") == "snapshot.revision-conflict")
    assert testcase.find("failure") is None
    assert testcase.find("skipped").get("message") == "BASELINED (FAILED): PHARO-12"
    stale = next(t for t in root.iter("testcase") if t.get("classname") == "conformance.baseline"
                 and t.get("name") == "hello.success")
    assert "now passes" in stale.find("failure").get("message")
    assert ET.tostring(root).count(b"<failure") == 1
    # Terminal: the reason beside the case, and the stale entry named with what to do.
    stream = io.StringIO()
    terminal = TerminalReport(stream, baseline=report.baseline)
    terminal.failures(report)
    terminal.summary(report)
    out = stream.getvalue()
    assert "baselined: PHARO-12" in out
    assert "FAIL: the baseline went stale (1 entry, below)" in out
    assert "hello.success: stale: hello.success now passes: remove the entry from stui-baseline.yaml" in out


def test_terminal_says_a_pass_against_a_baseline_is_not_conformance() -> None:
    results = [_failed("snapshot.revision-conflict", "SNP-4")]
    report = _report(results, _baseline(("snapshot.revision-conflict", "PHARO-12")))
    stream = io.StringIO()
    TerminalReport(stream).summary(report)
    assert "PASS against the baseline: nothing failed beyond its 1 listed case(s), none of them fixed - not yet" \
           " conformant" in stream.getvalue()
    assert report.exit_code == 0
