"""From case results to verdicts: per requirement, and for the whole run. Pure functions over results.

A requirement is FAILED only when a check of that requirement failed - a problem citing it (a TIMEOUT
cites TRN-3) - never because a case that also declares it failed on something else. It is PASSED when
a case declaring it ran to completion and passed, and no problem cites it. Otherwise it was not
checked: NOT-APPLICABLE when every case citing it needs a capability the target does not announce (an
optional feature), NOT-CHECKED when its cases were skipped, errored, or stopped before reaching it -
with the reasons - and UNSELECTED when no selected case cites it.

The run's verdict, in this order:
- FAIL (exit 1): a MUST requirement broken, a reply missing (TIMEOUT), or with --strict a SHOULD broken;
- ERROR (exit 2): the suite could not do its job for some case (and nothing failed);
- INCOMPLETE (exit 3): nothing failed, but some MUST requirement cited by the selected cases was not
  checked (a restart command or a larger expiry budget was missing, ...); the report lists them;
- PASS (exit 0): every MUST requirement of the selected cases was checked and held.

This module must never run a case or print: it only counts.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from stui_protocol_kit.conformance.case import CaseResult, Outcome
from stui_protocol_kit.protocol.requirements import Requirement


class Verdict(StrEnum):
    PASS = "PASS"
    FAIL = "FAIL"
    ERROR = "ERROR"
    INCOMPLETE = "INCOMPLETE"


EXIT_CODES: dict[Verdict, int] = {Verdict.PASS: 0, Verdict.FAIL: 1, Verdict.ERROR: 2, Verdict.INCOMPLETE: 3}


class Cell(StrEnum):
    """What one case says about one requirement it declares."""

    PASSED = "PASSED"  # the case ran to completion and passed
    FAILED = "FAILED"  # a problem of the case cites the requirement
    NOT_REACHED = "NOT-REACHED"  # the case stopped on another requirement's failure first
    SKIPPED = "SKIPPED"
    UNSUPPORTED = "UNSUPPORTED"
    ERROR = "ERROR"


class RequirementVerdict(StrEnum):
    PASSED = "PASSED"
    FAILED = "FAILED"
    NOT_CHECKED = "NOT-CHECKED"
    NOT_APPLICABLE = "NOT-APPLICABLE"
    UNSELECTED = "UNSELECTED"


@dataclass
class RequirementRow:
    id: str
    level: str
    text: str
    section: str
    cases: dict[str, str] = field(default_factory=dict)  # case id -> Cell
    verdict: RequirementVerdict = RequirementVerdict.UNSELECTED
    why_not_checked: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"level": self.level, "text": self.text, "section": self.section,
                               "cases": dict(self.cases), "verdict": self.verdict.value}
        if self.why_not_checked:
            out["why_not_checked"] = list(self.why_not_checked)
        return out


def _cell(result: CaseResult, requirement: str) -> Cell:
    if result.outcome is Outcome.PASSED:
        return Cell.PASSED
    if requirement in result.broken():
        return Cell.FAILED
    if result.outcome in (Outcome.FAILED, Outcome.NON_STRICT, Outcome.TIMEOUT):
        return Cell.NOT_REACHED
    return {Outcome.SKIPPED: Cell.SKIPPED, Outcome.UNSUPPORTED: Cell.UNSUPPORTED}.get(result.outcome, Cell.ERROR)


def requirement_matrix(results: Iterable[CaseResult], index: Mapping[str, Requirement]) -> dict[str, RequirementRow]:
    """One row per requirement of the spec (in spec order), plus any a problem cites outside it."""
    rows: dict[str, RequirementRow] = {
        req.id: RequirementRow(req.id, req.level, req.text, req.section) for req in index.values()
    }
    results = list(results)
    for result in results:
        cited = list(result.case.requirements) + sorted(result.broken() - set(result.case.requirements))
        for req_id in cited:
            row = rows.setdefault(req_id, RequirementRow(req_id, "?", "", ""))
            row.cases[result.case.id] = _cell(result, req_id).value
    for row in rows.values():
        cells = set(row.cases.values())
        if not cells:
            continue
        if Cell.FAILED.value in cells:
            row.verdict = RequirementVerdict.FAILED
        elif Cell.PASSED.value in cells:
            row.verdict = RequirementVerdict.PASSED
        elif cells == {Cell.UNSUPPORTED.value}:
            row.verdict = RequirementVerdict.NOT_APPLICABLE
        else:
            row.verdict = RequirementVerdict.NOT_CHECKED
            by_id = {r.case.id: r for r in results}
            for case_id, cell in row.cases.items():
                result = by_id[case_id]
                if cell == Cell.NOT_REACHED.value:
                    first = result.problem
                    row.why_not_checked.append(f"{case_id}: stopped at {first.requirement if first else '?'} first")
                elif cell != Cell.UNSUPPORTED.value:
                    row.why_not_checked.append(f"{case_id}: {cell}: {result.reason}")
    return rows


@dataclass(frozen=True)
class RunVerdict:
    verdict: Verdict
    unchecked_must: tuple[str, ...]  # MUST requirements the selected cases cite but nothing checked
    failed_must: tuple[str, ...]
    failed_should: tuple[str, ...]

    @property
    def exit_code(self) -> int:
        return EXIT_CODES[self.verdict]


def run_verdict(results: Iterable[CaseResult], rows: Mapping[str, RequirementRow], strict: bool = False) -> RunVerdict:
    results = list(results)
    failed_must = tuple(r.id for r in rows.values() if r.verdict is RequirementVerdict.FAILED and r.level == "MUST")
    failed_should = tuple(r.id for r in rows.values() if r.verdict is RequirementVerdict.FAILED and r.level != "MUST")
    unchecked = tuple(r.id for r in rows.values() if r.verdict is RequirementVerdict.NOT_CHECKED and r.level == "MUST")
    if any(r.blocking(strict) for r in results):
        verdict = Verdict.FAIL
    elif any(r.outcome is Outcome.ERROR for r in results):
        verdict = Verdict.ERROR
    elif unchecked:
        verdict = Verdict.INCOMPLETE
    else:
        verdict = Verdict.PASS
    return RunVerdict(verdict, unchecked, failed_must, failed_should)
