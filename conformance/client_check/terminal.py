"""client-check on the terminal: live lines while the client runs (connections, violations, scenarios),
then the failures in detail (the run's own failure listing) and a summary of every check and scenario.

Rich on a terminal, plain text when piped (`conformance/output.py` decides); the words are the same either
way, so a CI log can be grepped. It must never change an outcome; it only renders.
"""

from __future__ import annotations

from typing import Any, TextIO

from stui_protocol_kit.conformance.case import Outcome
from stui_protocol_kit.conformance.client_check.report import ClientCheckReport
from stui_protocol_kit.conformance.output import Output
from stui_protocol_kit.conformance.report.terminal import TerminalReport
from stui_protocol_kit.protocol.problems import show
from stui_protocol_kit.protocol.requirements import spec_edition

_STYLE = {Outcome.PASSED: "ok", Outcome.FAILED: "fail", Outcome.TIMEOUT: "fail", Outcome.NON_STRICT: "warn",
          Outcome.ERROR: "fail", Outcome.UNSUPPORTED: "dim", Outcome.SKIPPED: "warn"}
_VERDICT_STYLE = {"PASS": "ok", "FAIL": "fail", "ERROR": "fail", "INCOMPLETE": "warn"}


class LiveOutput:
    """Prints client-check's events as they happen."""

    def __init__(self, stream: TextIO | None = None, *, no_color: bool = False, verbose: bool = False) -> None:
        self.out = Output(stream, no_color=no_color)
        self.verbose = verbose

    def event(self, event: dict[str, Any]) -> None:
        kind, at = event["kind"], f"{event.get('at', 0.0):8.3f}s"
        if kind == "connection":
            self.out.line((at, "dim"), f" {event['connection']} connected ({event['socket']})")
        elif kind == "restart":
            self.out.line((at, "dim"), " the kit's server restarts (scenario server-restart)")
        elif kind == "violation":
            where = f"{event['connection']} {event.get('command') or '?'} id={show(event.get('request_id'), 40)}"
            self.out.line((at, "dim"), " ", ("VIOLATION", "fail"), f" [{event['requirement']}] {where} at"
                          f" {event['path']}: {event['message'].splitlines()[0][:300]}")
            if self.verbose and ("expected" in event or "actual" in event):
                self.out.line(f"expected: {show(event.get('expected'))}", indent=12)
                self.out.line(f"actual:   {show(event.get('actual'))}", indent=12)
        elif kind == "scenario":
            status = event["status"]
            style = {"passed": "ok", "failed": "fail", "active": "heading"}.get(status, "dim")
            detail = (event.get("problems") or [{}])[-1].get("message") if status == "failed" else (
                event["notes"][-1] if event.get("notes") else "")
            self.out.line((at, "dim"), f" scenario {event['name']}: ", (status.upper(), style),
                          f"  {detail}" if detail else "")
        self.out.flush()


def summary(report: ClientCheckReport, *, no_color: bool = False, verbose: bool = False,
            stream: TextIO | None = None) -> None:
    terminal = TerminalReport(stream, no_color=no_color, verbose=verbose)
    terminal.failures(report)
    out = terminal.out
    out.line("")
    out.line(("Checks and scenarios", "heading"))
    for result in report.results:
        reason = f"  ({result.reason})" if result.reason else ""
        if result.outcome is Outcome.PASSED and result.notes:
            reason = f"  ({result.notes[-1]})"
        elif result.problems:
            first = result.problems[0]
            more = f"; {len(result.problems) - 1} more" if len(result.problems) > 1 else ""
            reason = f"  ({first.requirement}: {first.message.splitlines()[0]}{more})"
        out.line((f"{result.outcome.value:<11}", _STYLE[result.outcome]), f" {result.case.id:<30}",
                 f" {','.join(result.case.requirements):<22}", (reason[:200], "dim"))
    stats = report.stats
    sockets = ", ".join(f"{n} {kind}" for kind, n in sorted(stats.by_socket.items())) or "none"
    out.line(f"traffic: {stats.requests} requests ({sockets}) on {stats.connections} connections,"
             f" {stats.sessions_created} sessions created, {stats.restarts} restarts; ended by {report.ended_by};"
             f" {report.duration_s:.1f}s; spec {spec_edition()}")
    verdict = report.run_verdict()
    not_exercised = report.not_exercised()
    text = {
        "PASS": "PASS: every selected scenario was exercised and passed, and no request broke a MUST rule",
        "FAIL": f"FAIL: {len(verdict.failed_must)} MUST requirement(s) broken: {', '.join(verdict.failed_must)}",
        "ERROR": "ERROR: client-check could not judge some scenario (see above); nothing failed",
        "INCOMPLETE": f"INCOMPLETE: {len(not_exercised)} selected scenario(s) not exercised: {', '.join(not_exercised)}"
                      " (select the scenarios your client can trigger with --scenario)",
    }[verdict.verdict.value]
    if verdict.failed_should:
        strict = "" if report.config.strict else "; --strict fails on them"
        text += f" (SHOULD broken: {', '.join(verdict.failed_should)}{strict})"
    out.line((text, _VERDICT_STYLE[verdict.verdict.value]))
    out.flush()
