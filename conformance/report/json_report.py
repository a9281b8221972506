"""The JSON report: the run's verdict, every case with its outcome and typed problems, the per-requirement
matrix, the target's hello, the kit version and spec edition, the configuration and durations. One
document with stable keys, for CI dashboards, the HTML report and diffing two runs; its JSON Schema is
conformance/formats/run-report.schema.json (a test checks every report written matches it).

It must never include anything not already redacted in the run report (transcripts are redacted when
recorded; problems carry what checks already redacted).
"""

from __future__ import annotations

import json
import shlex
from pathlib import Path
from typing import Any

from stui_protocol_kit.conformance.case import CaseResult, Outcome
from stui_protocol_kit.conformance.formats import RUN_REPORT_VERSION
from stui_protocol_kit.conformance.runner import RunReport
from stui_protocol_kit.conformance.verdicts import RunVerdict
from stui_protocol_kit.protocol.command_line import kit_version  # re-exported: reports name the kit's version
from stui_protocol_kit.protocol.facts import PROTOCOL_VERSION
from stui_protocol_kit.protocol.requirements import spec_edition


def replay_command(report: RunReport) -> str:
    """How to re-run a failing sequence against the same target (the sequence is saved to a file)."""
    target = f" --target {shlex.quote(report.config.target)}" if report.config.target else ""
    command = report.config.restart_command
    restart = f" --restart-command {shlex.quote(command)}" if command else ""
    return f"stui-conformance replay SEQUENCE.jsonl{target}{restart}"


def case_record(result: CaseResult, report: RunReport | None = None, transcripts: str = "failed",
                baselined: str | None = None) -> dict[str, Any]:
    record: dict[str, Any] = {
        "id": result.case.id, "title": result.case.title, "group": result.case.group, "level": result.case.level,
        "requirements": list(result.case.requirements), "tags": sorted(result.case.tags),
        "sends": result.case.sends, "allows": list(result.case.allows), "needs": sorted(result.case.needs),
        "outcome": result.outcome.value, "duration_s": round(result.duration_s, 4),
        "problems": [p.as_dict() for p in result.problems],
    }
    if result.reason:
        record["reason"] = result.reason
    if baselined is not None:
        record["baselined"] = baselined
    if result.notes:
        record["notes"] = result.notes
    if result.violations:
        record["violations"] = result.violations
    if result.sequence:
        record["sequence"] = result.sequence
        if report is not None:
            record["replay"] = replay_command(report)
    if result.detail:
        record["detail"] = result.detail
    if transcripts == "all" or result.outcome is not Outcome.PASSED:
        record["transcript"] = result.transcript
    return record


def verdict_fields(verdict: RunVerdict, baseline_source: str | None) -> dict[str, Any]:
    """The members of a report that follow from the run's verdict (one place, so a report re-judged
    against a baseline by `stui-conformance report` gets exactly what `run` would write)."""
    fields: dict[str, Any] = {
        "verdict": verdict.verdict.value,
        "exit_code": verdict.exit_code,
        "unchecked_must": list(verdict.unchecked_must),
        "failed_must": list(verdict.failed_must),
        "failed_should": list(verdict.failed_should),
    }
    if baseline_source is not None:
        fields["baseline"] = {
            "source": baseline_source,
            "entries": [e.as_dict() for e in verdict.baseline],
            "baselined_requirements": list(verdict.baselined_requirements),
            "baselined_unchecked": list(verdict.baselined_unchecked),
        }
    return fields


def build(report: RunReport) -> dict[str, Any]:
    verdict = report.run_verdict()
    baselined = verdict.baselined
    cfg = report.config
    return {
        "schema_version": RUN_REPORT_VERSION,
        "kit": {"name": "stui-protocol-kit", "version": kit_version()},
        "spec": {"edition": spec_edition(), "protocol_version": PROTOCOL_VERSION},
        "target": report.target,
        "hello": report.hello,
        "config": {
            "seed": cfg.seed, "examples": cfg.examples, "socket": cfg.socket_kind, "timeout_s": cfg.timeout_s,
            "expiry_budget_s": cfg.expiry_budget_s, "strict": cfg.strict, "differential": cfg.differential,
            "select": list(cfg.select), "exclude": list(cfg.exclude),
            "restart_command": cfg.restart_command is not None,
        },
        "started_at": report.started_at,
        "duration_s": round(report.duration_s, 3),
        "partial": report.partial,
        **verdict_fields(verdict, report.baseline.source if report.baseline is not None else None),
        "counts": report.counts(),
        "cases": [case_record(r, report, cfg.transcripts, baselined.get(r.case.id)) for r in report.results],
        "requirements": report.requirement_matrix(),
    }


def write(report: RunReport, path: str | Path) -> None:
    text = json.dumps(build(report), indent=2, ensure_ascii=False, default=str) + "\n"
    if str(path) == "-":
        import sys

        sys.stdout.write(text)
        return
    Path(path).write_text(text, encoding="utf-8")
