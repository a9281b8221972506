"""Terminal report: progress while cases run, then failures in detail and a summary table.

On a terminal (rich): a progress bar with a running tally, and a line for each case that did not pass
(every case with --verbose). Piped (plain text, for CI logs): one line per finished case, same words.
`conformance/output.py` decides which. It must never change an outcome; it only renders.
"""

from __future__ import annotations

import json
from typing import Any, TextIO

from stui_protocol_kit.conformance.case import CaseResult, Outcome
from stui_protocol_kit.conformance.output import Output
from stui_protocol_kit.conformance.runner import RunReport

_STYLE = {Outcome.PASSED: "ok", Outcome.FAILED: "fail", Outcome.TIMEOUT: "fail", Outcome.UNSUPPORTED: "dim",
          Outcome.SKIPPED: "warn"}


class TerminalReport:
    """Progress while running, summary at the end."""

    def __init__(self, stream: TextIO | None = None, *, no_color: bool = False, verbose: bool = False) -> None:
        self.out = Output(stream, no_color=no_color)
        self.verbose = verbose
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
        style = _STYLE[result.outcome]
        if result.case.level == "SHOULD" and result.outcome in (Outcome.FAILED, Outcome.TIMEOUT):
            label, style = "WARN", "warn"
        else:
            label = result.outcome.value
        extra = f"  ({result.reason})" if result.reason and result.outcome is not Outcome.TIMEOUT else ""
        self.out.line(f"[{self.done:>3}/{self.total}] ", (f"{label:<11}", style), f" {result.case.id}",
                      (f"  {result.duration_s:.2f}s{extra}", "dim"))
        self.out.flush()

    def stop(self) -> None:
        """End the progress bar (before the failures and the summary are printed)."""
        if self._bar is not None:
            self._bar.stop()
            self._bar = None

    def failures(self, report: RunReport) -> None:
        self.stop()
        bad = [r for r in report.results if r.outcome in (Outcome.FAILED, Outcome.TIMEOUT)]
        if not bad:
            return
        self.out.line("")
        self.out.line(("Failures", "heading"))
        for r in bad:
            f = r.failure
            level = "MUST" if r.case.level == "MUST" else "SHOULD (warning)"
            self.out.line((f"{r.outcome.value} {r.case.id}", _STYLE[r.outcome]), f"  [{level}] {r.case.title}")
            if f is not None:
                self.out.line(f"requirement {f.requirement or '-'}: {f.requirement_text}", indent=2)
                self.out.line(f"expected: {_short(f.expected)}", indent=2)
                self.out.line(f"actual:   {_short(f.actual)}", indent=2)
                if f.message and f.message != f"expected {f.expected!r}, got {f.actual!r}":
                    self.out.line(f"message:  {f.message.splitlines()[0][:300]}", indent=2)
                for v in f.violations[:5]:
                    self.out.line(f"violation {v.get('path')}: {v.get('message')}", indent=2)
            if self.verbose or len(r.transcript) <= 8:
                for entry in r.transcript[-8:]:
                    self.out.line((f"{entry['direction']:>7} {_short(entry['message'], 240)}", "dim"), indent=2)

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
        matrix = report.requirement_matrix()
        must = [e for e in matrix.values() if e["level"] == "MUST"]
        covered = sum(e["verdict"] == "PASSED" for e in must)
        self.out.line(f"requirements: {covered}/{len(must)} MUST requirements passed; "
                      f"{sum(e['verdict'] == 'FAILED' for e in matrix.values())} failed; seed {report.config.seed}; "
                      f"{report.duration_s:.1f}s")
        verdict = ("PASS: every MUST case passed", "ok") if report.passed else ("FAIL: MUST cases failed", "fail")
        self.out.line(verdict)
        self.out.flush()


def _short(value: object, limit: int = 200) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str, ensure_ascii=False)
    return text if len(text) <= limit else text[: limit - 3] + "..."
