"""The JUnit XML report: one <testcase> per case, grouped in one <testsuite> per case group, with the
requirement IDs, level and tags as <properties>, and the run's verdict, kit version and spec edition as
properties of every suite.

FAILED and TIMEOUT are <failure>s (TIMEOUT with type TIMEOUT); NON-STRICT (only SHOULD requirements
broken) is <skipped> with a "NON-STRICT" message so CI does not go red on it - a <failure> with
--strict; ERROR (the suite's own trouble) is <error>; SKIPPED and UNSUPPORTED are <skipped> with the
reason. Each failure's text lists its typed problems: requirement, path, expected, actual.

With a baseline, a listed case that failed is <skipped> with "BASELINED (OUTCOME): reason" (its outcome
stays in the `outcome` property; the details are kept), so CI stays green on known failures; each
stale entry is a <failure> of its own testcase in a "baseline" suite, so CI goes red and says which
entry to remove.

It must never include a token (transcripts are redacted when recorded).
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

from stui_protocol_kit.conformance.case import CaseResult, Outcome
from stui_protocol_kit.conformance.report.json_report import kit_version, replay_command
from stui_protocol_kit.conformance.runner import RunReport
from stui_protocol_kit.protocol.problems import show
from stui_protocol_kit.protocol.requirements import spec_edition


def _details(result: CaseResult, report: RunReport) -> str:
    lines = []
    for p in result.problems:
        text = report.index[p.requirement].text if p.requirement in report.index else ""
        lines += [f"requirement: {p.requirement} {text}".rstrip(), f"  at {p.path}: {p.message}"]
        if p.expected is not None or p.actual is not None:
            lines += [f"  expected: {show(p.expected, 2000)}", f"  actual:   {show(p.actual, 2000)}"]
    if result.sequence:
        lines += ["sequence (JSON Lines; save it and run the replay command):", result.sequence.rstrip(),
                  f"replay: {replay_command(report)}"]
    if result.reason:
        lines.append(f"reason: {result.reason}")
    if result.detail:
        lines.append(result.detail)
    lines.append("transcript:")
    lines += [json.dumps(e, default=str, ensure_ascii=False)[:4000] for e in result.transcript]
    return "\n".join(lines)


def _testcase(parent: ET.Element, result: CaseResult, report: RunReport, baselined: str | None = None) -> None:
    case = result.case
    element = ET.SubElement(parent, "testcase", classname=f"conformance.{case.group}", name=case.id,
                            time=f"{result.duration_s:.3f}")
    props = ET.SubElement(element, "properties")
    for req in case.requirements:
        ET.SubElement(props, "property", name="requirement", value=req)
    for req in sorted(result.broken()):
        ET.SubElement(props, "property", name="broken", value=req)
    ET.SubElement(props, "property", name="level", value=case.level)
    ET.SubElement(props, "property", name="title", value=case.title)
    ET.SubElement(props, "property", name="outcome", value=result.outcome.value)
    for tag in sorted(case.tags):
        ET.SubElement(props, "property", name="tag", value=tag)
    headline = result.problem.message if result.problem else result.reason
    if baselined is not None:
        ET.SubElement(props, "property", name="baselined", value=baselined)
        ET.SubElement(element, "skipped", message=f"BASELINED ({result.outcome.value}): {baselined}"[:500]).text = \
            _details(result, report)
    elif result.outcome in (Outcome.FAILED, Outcome.TIMEOUT) or (
            result.outcome is Outcome.NON_STRICT and report.config.strict):
        ET.SubElement(element, "failure", message=headline[:500], type=result.outcome.value).text = _details(
            result, report)
    elif result.outcome is Outcome.NON_STRICT:
        ET.SubElement(element, "skipped", message=f"NON-STRICT (SHOULD broken): {headline[:470]}").text = _details(
            result, report)
    elif result.outcome is Outcome.ERROR:
        ET.SubElement(element, "error", message=f"suite error: {headline[:480]}", type="ERROR").text = _details(
            result, report)
    elif result.outcome in (Outcome.SKIPPED, Outcome.UNSUPPORTED):
        ET.SubElement(element, "skipped", message=f"{result.outcome.value}: {result.reason}")


def build(report: RunReport) -> ET.Element:
    verdict = report.run_verdict()
    root = ET.Element("testsuites", name="stui-conformance", time=f"{report.duration_s:.3f}")
    groups: dict[str, list[CaseResult]] = {}
    for result in report.results:
        groups.setdefault(result.case.group, []).append(result)
    strict = report.config.strict
    baselined = verdict.baselined
    common = [*report.describe(), ("verdict", verdict.verdict.value),
              ("kit_version", kit_version()), ("spec_edition", spec_edition()),
              ("partial", str(report.partial).lower())]
    if report.baseline is not None:
        common.append(("baseline", report.baseline.source))
    for group, results in groups.items():
        failures = sum(r.blocking(strict) and r.case.id not in baselined for r in results)
        errors = sum(r.outcome is Outcome.ERROR for r in results)
        skipped = sum(r.outcome in (Outcome.SKIPPED, Outcome.UNSUPPORTED) or r.case.id in baselined or
                      (r.outcome is Outcome.NON_STRICT and not strict) for r in results)
        suite = ET.SubElement(root, "testsuite", name=group, tests=str(len(results)), failures=str(failures),
                              errors=str(errors), skipped=str(skipped),
                              time=f"{sum(r.duration_s for r in results):.3f}")
        props = ET.SubElement(suite, "properties")
        for name, value in common:
            ET.SubElement(props, "property", name=name, value=value)
        for result in results:
            _testcase(suite, result, report, baselined.get(result.case.id))
    if verdict.baseline:
        stale = verdict.stale
        suite = ET.SubElement(root, "testsuite", name="baseline", tests=str(len(verdict.baseline)),
                              failures=str(len(stale)), errors="0", skipped="0", time="0.000")
        props = ET.SubElement(suite, "properties")
        for name, value in common:
            ET.SubElement(props, "property", name=name, value=value)
        for entry in verdict.baseline:
            element = ET.SubElement(suite, "testcase", classname="conformance.baseline", name=entry.case, time="0")
            entry_props = ET.SubElement(element, "properties")
            ET.SubElement(entry_props, "property", name="status", value=entry.status.value)
            ET.SubElement(entry_props, "property", name="reason", value=entry.reason)
            if entry in stale:
                ET.SubElement(element, "failure", message=entry.why[:500], type="STALE-BASELINE").text = (
                    f"{entry.why}\nbaseline reason was: {entry.reason}")
            else:
                ET.SubElement(element, "system-out").text = entry.why
    return root


def write(report: RunReport, path: str | Path) -> None:
    tree = ET.ElementTree(build(report))
    ET.indent(tree)
    tree.write(Path(path), encoding="utf-8", xml_declaration=True)
