"""The client-check report: the checks' and scenarios' results with the run's outcomes and verdicts, as a
`RunReport` (so the JUnit writer and the terminal's failure listing serve it unchanged) and as its own JSON
document (conformance/formats/client-check-report.schema.json, whose cases, problems and requirement rows
are the run report's definitions).

The verdict follows `conformance.verdicts.run_verdict` - FAIL (1) on a MUST broken, ERROR (2) on the kit's
own trouble - with one difference: INCOMPLETE (3) means a selected *scenario* was never exercised, or the
client sent no request at all. A check
the client gave nothing to judge (REQ lockstep of a DEALER client, ended sessions when none ended) is listed
as not exercised but does not make the run incomplete: no client exercises every rule.

This module must never judge the client; it only counts and renders what client-check found.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from stui_protocol_kit.conformance.case import CaseResult, Outcome
from stui_protocol_kit.conformance.client_check.kit_server import Stats, Violation
from stui_protocol_kit.conformance.client_check.scenarios import Settings
from stui_protocol_kit.conformance.report.json_report import case_record, kit_version
from stui_protocol_kit.conformance.runner import RunReport
from stui_protocol_kit.conformance.verdicts import RequirementRow, RunVerdict, Verdict, run_verdict
from stui_protocol_kit.protocol.facts import PROTOCOL_VERSION
from stui_protocol_kit.protocol.requirements import spec_edition

SCHEMA_VERSION = 1


def client_check_verdict(results: list[CaseResult], rows: dict[str, RequirementRow], strict: bool) -> RunVerdict:
    base = run_verdict(results, rows, strict)
    if base.verdict in (Verdict.FAIL, Verdict.ERROR):
        return base
    not_exercised = [r for r in results if r.case.group == "scenario" and r.outcome is Outcome.SKIPPED]
    # A client that sent nothing was not checked at all: never a PASS.
    nothing_checked = not any(r.case.group == "client" and r.outcome not in (Outcome.SKIPPED, Outcome.UNSUPPORTED)
                              for r in results)
    verdict = Verdict.INCOMPLETE if not_exercised or nothing_checked else Verdict.PASS
    return RunVerdict(verdict, base.unchecked_must, base.failed_must, base.failed_should)


@dataclass
class ClientCheckReport(RunReport):
    endpoint: str = ""
    ended_by: str = ""
    scenarios: tuple[str, ...] = ()
    settings: Settings = field(default_factory=Settings)
    duration_limit_s: float | None = None
    stats: Stats = field(default_factory=Stats)
    violations: list[Violation] = field(default_factory=list)

    def run_verdict(self) -> RunVerdict:
        return client_check_verdict(self.results, self.matrix(), self.config.strict)

    def describe(self) -> list[tuple[str, str]]:
        return [("endpoint", self.endpoint), ("ended_by", self.ended_by),
                ("scenarios", ",".join(self.scenarios))]

    def not_exercised(self) -> list[str]:
        return [r.case.id.split(".", 1)[1] for r in self.results
                if r.case.group == "scenario" and r.outcome is Outcome.SKIPPED]


def build(report: ClientCheckReport) -> dict[str, Any]:
    verdict = report.run_verdict()
    checks = [r for r in report.results if r.case.group == "client"]
    scenarios = [r for r in report.results if r.case.group == "scenario"]
    return {
        "schema_version": SCHEMA_VERSION,
        "kind": "client-check",
        "kit": {"name": "stui-protocol-kit", "version": kit_version()},
        "spec": {"edition": spec_edition(), "protocol_version": PROTOCOL_VERSION},
        "endpoint": report.endpoint,
        "started_at": report.started_at,
        "duration_s": round(report.duration_s, 3),
        "ended_by": report.ended_by or "error",
        "settings": {"scenarios": list(report.scenarios), "duration_s": report.duration_limit_s,
                     "reply_delay_s": report.settings.reply_delay_s,
                     "restart_pause_s": report.settings.restart_pause_s, "strict": report.config.strict},
        "traffic": {"connections": report.stats.connections, "requests": report.stats.requests,
                    "by_socket": dict(report.stats.by_socket), "sessions_created": report.stats.sessions_created,
                    "restarts": report.stats.restarts},
        "verdict": verdict.verdict.value,
        "exit_code": verdict.exit_code,
        "unchecked_must": list(verdict.unchecked_must),
        "failed_must": list(verdict.failed_must),
        "failed_should": list(verdict.failed_should),
        "not_exercised": report.not_exercised(),
        "counts": report.counts(),
        "checks": [case_record(r) for r in checks],
        "scenarios": [case_record(r) for r in scenarios],
        "violations": [v.as_dict() for v in report.violations],
        "requirements": {req_id: row.as_dict() for req_id, row in report.matrix().items() if row.cases},
    }


def write(report: ClientCheckReport, path: str | Path) -> None:
    Path(path).write_text(json.dumps(build(report), indent=2, ensure_ascii=False, default=str) + "\n",
                          encoding="utf-8")
