"""The JUnit XML report: one <testcase> per case, grouped in one <testsuite> per case group, with the
requirement IDs, level and tags as <properties>. FAILED and TIMEOUT MUST cases are <failure>s; a
failing SHOULD case is reported as <skipped> with a "warning" message so CI does not go red on it;
SKIPPED and UNSUPPORTED are <skipped> with the reason.

It must never include a token (transcripts are redacted when recorded).
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

from stui_protocol_kit.conformance.case import CaseResult, Outcome
from stui_protocol_kit.conformance.runner import RunReport


def _testcase(parent: ET.Element, result: CaseResult) -> None:
    case = result.case
    element = ET.SubElement(parent, "testcase", classname=f"conformance.{case.group}", name=case.id,
                            time=f"{result.duration_s:.3f}")
    props = ET.SubElement(element, "properties")
    for req in case.requirements:
        ET.SubElement(props, "property", name="requirement", value=req)
    ET.SubElement(props, "property", name="level", value=case.level)
    ET.SubElement(props, "property", name="title", value=case.title)
    ET.SubElement(props, "property", name="outcome", value=result.outcome.value)
    for tag in sorted(case.tags):
        ET.SubElement(props, "property", name="tag", value=tag)
    if result.outcome in (Outcome.FAILED, Outcome.TIMEOUT):
        f = result.failure
        message = f.message if f else result.reason
        text = ""
        if f is not None:
            text = (f"requirement: {f.requirement} {f.requirement_text}\nexpected: {f.expected!r}\n"
                    f"actual: {f.actual!r}\n")
            if f.violations:
                text += "violations:\n" + "\n".join(json.dumps(v) for v in f.violations) + "\n"
        text += "transcript:\n" + "\n".join(json.dumps(e, default=str)[:2000] for e in result.transcript)
        if case.level == "MUST":
            tag = "failure" if result.outcome is Outcome.FAILED else "error"
            ET.SubElement(element, tag, message=message[:500], type=result.outcome.value).text = text
        else:
            ET.SubElement(element, "skipped", message=f"warning (SHOULD): {message[:480]}").text = text
    elif result.outcome in (Outcome.SKIPPED, Outcome.UNSUPPORTED):
        ET.SubElement(element, "skipped", message=f"{result.outcome.value}: {result.reason}")


def build(report: RunReport) -> ET.Element:
    root = ET.Element("testsuites", name="stui-conformance", time=f"{report.duration_s:.3f}")
    groups: dict[str, list[CaseResult]] = {}
    for result in report.results:
        groups.setdefault(result.case.group, []).append(result)
    for group, results in groups.items():
        failures = sum(r.outcome is Outcome.FAILED and r.case.level == "MUST" for r in results)
        errors = sum(r.outcome is Outcome.TIMEOUT and r.case.level == "MUST" for r in results)
        skipped = sum(r.outcome in (Outcome.SKIPPED, Outcome.UNSUPPORTED) or
                      (r.case.level == "SHOULD" and r.outcome in (Outcome.FAILED, Outcome.TIMEOUT)) for r in results)
        suite = ET.SubElement(root, "testsuite", name=group, tests=str(len(results)), failures=str(failures),
                              errors=str(errors), skipped=str(skipped),
                              time=f"{sum(r.duration_s for r in results):.3f}")
        props = ET.SubElement(suite, "properties")
        ET.SubElement(props, "property", name="target", value=report.target)
        ET.SubElement(props, "property", name="seed", value=str(report.config.seed))
        for result in results:
            _testcase(suite, result)
    return root


def write(report: RunReport, path: str | Path) -> None:
    tree = ET.ElementTree(build(report))
    ET.indent(tree)
    tree.write(Path(path), encoding="utf-8", xml_declaration=True)
