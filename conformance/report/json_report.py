"""The JSON report: cases with outcomes and failures, the per-requirement matrix, the target's hello,
the seed and durations. One document, stable keys, for CI dashboards and diffing two runs.

It must never include anything not already redacted in the run report.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from stui_protocol_kit.conformance.case import CaseResult
from stui_protocol_kit.conformance.runner import RunReport

SCHEMA_VERSION = 1


def case_record(result: CaseResult) -> dict[str, Any]:
    record: dict[str, Any] = {
        "id": result.case.id, "title": result.case.title, "group": result.case.group, "level": result.case.level,
        "requirements": list(result.case.requirements), "tags": sorted(result.case.tags),
        "sends": result.case.sends, "allows": list(result.case.allows), "needs": sorted(result.case.needs),
        "outcome": result.outcome.value, "duration_s": round(result.duration_s, 4),
    }
    if result.reason:
        record["reason"] = result.reason
    if result.notes:
        record["notes"] = result.notes
    if result.failure is not None:
        f = result.failure
        record["failure"] = {"expected": f.expected, "actual": f.actual, "requirement": f.requirement,
                             "requirement_text": f.requirement_text, "message": f.message,
                             "violations": f.violations}
        record["transcript"] = result.transcript
    return record


def build(report: RunReport) -> dict[str, Any]:
    return {
        "schema_version": SCHEMA_VERSION,
        "target": report.target,
        "hello": report.hello,
        "seed": report.config.seed,
        "examples": report.config.examples,
        "socket": report.config.socket_kind,
        "started_at": report.started_at,
        "duration_s": round(report.duration_s, 3),
        "passed": report.passed,
        "exit_code": report.exit_code,
        "counts": report.counts(),
        "cases": [case_record(r) for r in report.results],
        "requirements": report.requirement_matrix(),
    }


def write(report: RunReport, path: str | Path) -> None:
    Path(path).write_text(json.dumps(build(report), indent=2, ensure_ascii=False, default=str) + "\n",
                          encoding="utf-8")
