"""Terminal report: progress while cases run, then failures in detail and a summary table.

On a terminal (rich): a progress bar with a running tally, and a line for each case that did not pass
(every case with --verbose). Piped (plain text, for CI logs): one line per finished case, same words.
`conformance/output.py` decides which. A case the baseline lists keeps its outcome and gets
"baselined: REASON" beside it; the summary names the baseline, what it forgave, and every stale entry.
It must never change an outcome; it only renders.
"""

from __future__ import annotations

from typing import Any, TextIO

from stui_protocol_kit.conformance.baseline import Baseline
from stui_protocol_kit.conformance.case import CaseResult, Outcome
from stui_protocol_kit.conformance.output import Output
from stui_protocol_kit.conformance.report.json_report import kit_version, replay_command
from stui_protocol_kit.conformance.runner import RunReport
from stui_protocol_kit.protocol.problems import show
from stui_protocol_kit.protocol.requirements import spec_edition

_STYLE = {Outcome.PASSED: "ok", Outcome.FAILED: "fail", Outcome.TIMEOUT: "fail", Outcome.NON_STRICT: "warn",
          Outcome.ERROR: "fail", Outcome.UNSUPPORTED: "dim", Outcome.SKIPPED: "warn"}
_VERDICT_STYLE = {"PASS": "ok", "FAIL": "fail", "ERROR": "fail", "INCOMPLETE": "warn"}
# Limits that decide timing-dependent verdicts: shown with a failure of a case that waits on the clock.
_TIMING_LIMITS = ("idle_timeout_s", "absolute_timeout_s", "tombstone_retention_s", "retry_window_s")


class TerminalReport:
    """Progress while running, summary at the end."""

    def __init__(self, stream: TextIO | None = None, *, no_color: bool = False, verbose: bool = False,
                 baseline: Baseline | None = None) -> None:
        self.out = Output(stream, no_color=no_color)
        self.verbose = verbose
        self.listed = baseline.reasons() if baseline is not None else {}
        self.done = 0
        self.total = 0
        self.not_passed = 0
        self._bar: Any = None
        self._task: Any = None

    def start(self, total: int, target: str) -> None:
        self.total = total
        self.out.line(("stui-conformance run", "heading"), f": {total} cases against {target}")
        if self.out.console is not None:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

            self._bar = Progress(
                BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[tally]}"), TimeElapsedColumn(),
                TextColumn("[dim]{task.description}"), console=self.out.console, transient=True,
            )
            self._task = self._bar.add_task("", total=total, tally="")
            self._bar.start()

    def progress(self, result: CaseResult) -> None:
        self.done += 1
        if result.outcome is not Outcome.PASSED:
            self.not_passed += 1
        if self._bar is not None:
            tally = f"{self.done - self.not_passed} passed, {self.not_passed} not passed"
            self._bar.update(self._task, advance=1, description=result.case.id, tally=tally)
            if result.outcome is Outcome.PASSED and not self.verbose:
                return
        extra = f"  ({result.reason})" if result.reason and result.outcome is not Outcome.TIMEOUT else ""
        if result.case.id in self.listed and result.outcome is not Outcome.PASSED:
            extra += f"  (baselined: {_short(self.listed[result.case.id], 120)})"
        self.out.line(f"[{self.done:>3}/{self.total}] ", (f"{result.outcome.value:<11}", _STYLE[result.outcome]),
                      f" {result.case.id}", (f"  {result.duration_s:.2f}s{extra}", "dim"))
        self.out.flush()

    def stop(self) -> None:
        """End the progress bar (before the failures and the summary are printed)."""
        if self._bar is not None:
            self._bar.stop()
            self._bar = None

    def failures(self, report: RunReport) -> None:
        self.stop()
        bad = [r for r in report.results if r.outcome in (Outcome.FAILED, Outcome.TIMEOUT, Outcome.NON_STRICT,
                                                          Outcome.ERROR)]
        if not bad:
            return
        baselined = report.run_verdict().baselined
        self.out.line("")
        self.out.line(("Failures and errors", "heading"))
        for r in bad:
            label = {Outcome.NON_STRICT: "NON-STRICT (SHOULD broken)", Outcome.ERROR: "ERROR (suite, not target)"}.get(
                r.outcome, r.outcome.value)
            self.out.line((f"{label} {r.case.id}", "warn" if r.case.id in baselined else _STYLE[r.outcome]),
                          f"  [{r.case.level}] {r.case.title}")
            if r.case.id in baselined:
                self.out.line((f"baselined: {baselined[r.case.id]}", "warn"), indent=2)
            for p in r.problems:
                text = report.index[p.requirement].text if p.requirement in report.index else ""
                self.out.line(f"{p.requirement}: {_short(text, 160)}", indent=2)
                self.out.line(f"at {p.path}: {p.message.splitlines()[0][:300]}", indent=4)
                if p.expected is not None or p.actual is not None:
                    limit = 4000 if self.verbose else 200
                    self.out.line(f"expected: {show(p.expected, limit)}", indent=4)
                    self.out.line(f"actual:   {show(p.actual, limit)}", indent=4)
            if r.outcome is Outcome.ERROR:
                self.out.line(f"reason: {r.reason}", indent=2)
                if self.verbose and r.detail:
                    for line in r.detail.rstrip().splitlines():
                        self.out.line((line, "dim"), indent=4)
            if r.sequence:
                self.out.line("minimal failing sequence (JSON Lines; save it to a file and replay it):", indent=2)
                for line in r.sequence.rstrip().splitlines():
                    self.out.line(line, indent=4)
                self.out.line(f"replay: {replay_command(report)}", indent=2)
            if r.case.waits or "expiry" in r.case.needs:
                shown = ", ".join(f"{name} {report.hello.get('limits', {}).get(name)}" for name in _TIMING_LIMITS)
                self.out.line(f"timing: the target announces {shown}; reply timestamps below", indent=2)
                for entry in r.transcript:
                    message = entry.get("message")
                    if entry["direction"] == "reply" and isinstance(message, dict):
                        self.out.line((f"reply {message.get('command')} {_summary(message)} at "
                                       f"{message.get('timestamp')}", "dim"), indent=4)
            if self.verbose or len(r.transcript) <= 8:
                limit = 100_000 if self.verbose else 240
                for entry in r.transcript if self.verbose else r.transcript[-8:]:
                    self.out.line((f"{entry['direction']:>7} {_short(entry['message'], limit)}", "dim"), indent=2)

    def summary(self, report: RunReport) -> None:
        groups: dict[str, dict[str, int]] = {}
        for r in report.results:
            row = groups.setdefault(r.case.group, {o.value: 0 for o in Outcome})
            row[r.outcome.value] += 1
        columns = [o.value for o in Outcome]
        self.out.line("")
        if self.out.color:
            from rich.table import Table

            table = Table(title="Summary by group")
            table.add_column("group")
            for c in columns:
                table.add_column(c, justify="right")
            for group, row in groups.items():
                table.add_row(group, *(str(row[c]) if row[c] else "" for c in columns))
            table.add_row("total", *(str(v) for v in report.counts().values()), style="bold")
            self.out.console.print(table)
        else:
            self.out.line(f"{'group':<15}" + "".join(f"{c:>12}" for c in columns))
            for group, row in groups.items():
                self.out.line(f"{group:<15}" + "".join(f"{row[c]:>12}" for c in columns))
            self.out.line(f"{'total':<15}" + "".join(f"{v:>12}" for v in report.counts().values()))
        matrix = report.matrix()
        selected = [row for row in matrix.values() if row.cases]
        must = [row for row in selected if row.level == "MUST"]
        passed = sum(row.verdict.value == "PASSED" for row in must)
        na = sum(row.verdict.value == "NOT-APPLICABLE" for row in must)
        self.out.line(f"requirements: {passed}/{len(must)} MUST requirements of the selected cases checked and held"
                      f"{f' ({na} not applicable: optional features not announced)' if na else ''}; "
                      f"spec {spec_edition()}, kit {kit_version()}; seed {report.config.seed}; "
                      f"{report.duration_s:.1f}s")
        verdict = report.run_verdict()
        forgiven = set(verdict.baselined_requirements)
        must = [r for r in verdict.failed_must if r not in forgiven]
        should = [r for r in verdict.failed_should if r not in forgiven]
        unchecked = [r for r in verdict.unchecked_must if r not in verdict.baselined_unchecked]
        stale = verdict.stale
        if verdict.verdict.value == "FAIL" and not must and not should and stale and not any(
                r.blocking(report.config.strict) and r.case.id not in verdict.baselined for r in report.results):
            fail = f"FAIL: the baseline went stale ({len(stale)} entr{'y' if len(stale) == 1 else 'ies'}, below)"
        else:
            fail = (f"FAIL: {len(must)} MUST requirement(s) broken"
                    + (f": {', '.join(must)}" if must else " (a reply was missing)")
                    + (f"; SHOULD broken: {', '.join(should)}" if should else "")
                    + (f"; the baseline went stale ({len(stale)}, below)" if stale else ""))
        text = {
            "PASS": "PASS: every MUST requirement of the selected cases was checked and held",
            "FAIL": fail,
            "ERROR": "ERROR: the suite could not check some cases (see above); nothing failed",
            "INCOMPLETE": f"INCOMPLETE: {len(unchecked)} MUST requirement(s) not checked",
        }[verdict.verdict.value]
        if verdict.verdict.value == "PASS" and verdict.baselined:
            text = (f"PASS against the baseline: nothing failed beyond its {len(verdict.baselined)} listed case(s),"
                    " none of them fixed - not yet conformant")
        if verdict.verdict.value == "PASS" and should:
            text += f" (NON-STRICT: SHOULD broken: {', '.join(should)}; --strict fails on them)"
        self.out.line((text, _VERDICT_STYLE[verdict.verdict.value]))
        if verdict.unchecked_must:
            if verdict.verdict.value != "INCOMPLETE" or verdict.baselined_unchecked:
                self.out.line(f"{len(verdict.unchecked_must)} MUST requirement(s) not checked:")
            for req_id in verdict.unchecked_must:
                why = "; ".join(matrix[req_id].why_not_checked)
                note = " (a baselined case stopped first)" if req_id in verdict.baselined_unchecked else ""
                self.out.line(f"{req_id}: {_short(why, 300)}{note}", indent=2)
        if report.baseline is not None:
            self._baseline(report, verdict)
        if report.partial:
            self.out.line(("partial: the run was interrupted; only the cases above finished", "warn"))
        self.out.flush()


    def _baseline(self, report: RunReport, verdict: Any) -> None:
        source = report.baseline.source if report.baseline is not None else ""
        counts: dict[str, int] = {}
        for entry in verdict.baseline:
            counts[entry.status.value] = counts.get(entry.status.value, 0) + 1
        shown = ", ".join(f"{n} {status}" for status, n in counts.items()) or "no entries"
        self.out.line(f"baseline {source}: {shown}")
        if verdict.baselined_requirements:
            self.out.line(f"broken but baselined: {', '.join(verdict.baselined_requirements)}", indent=2)
        for entry in verdict.baseline:
            if entry.status.value in ("stale", "unconfirmed"):
                style = "fail" if entry.status.value == "stale" else "warn"
                self.out.line((f"{entry.case}: {entry.why}", style), indent=2)


def _summary(message: dict[str, Any]) -> str:
    if message.get("status") == "error":
        return f"error {(message.get('error') or {}).get('code')}"
    return str(message.get("status"))


def _short(value: object, limit: int = 200) -> str:
    return show(value, limit)
