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

With a baseline (conformance/baseline.py: expected non-passes, each with a reason), in the same order:
- a listed case that FAILED, TIMED OUT or is NON-STRICT is *baselined*: its outcome and the requirement
  verdicts stay as they are in every report, but it does not fail the run; a requirement left not
  checked only because a baselined case stopped before reaching it does not make the run INCOMPLETE;
- a listed case that PASSED, or a listed ID the kit does not know, is *stale*: the run FAILs (exit 1)
  with a message saying which entry to remove - a baseline can never hide a fix or a renamed case;
- a listed case that was SKIPPED, UNSUPPORTED or an ERROR is *unconfirmed* (the run could not tell
  whether it still fails; ERROR stays the suite's trouble and is never forgiven), and a listed case
  the run did not select is *not run*: neither changes the verdict.
So PASS with a baseline means "no failure beyond the listed ones, and none of them fixed": the
reports say so (`baselined: reason` beside the outcome) and still list every broken requirement.

This module must never run a case or print: it only counts.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from stui_protocol_kit.conformance.baseline import Baseline
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


class EntryStatus(StrEnum):
    """What became of one baseline entry in a run."""

    BASELINED = "baselined"  # listed and still not passing (FAILED, TIMEOUT, NON-STRICT): forgiven
    STALE = "stale"  # listed but it passed, or no such case: fails the run
    UNCONFIRMED = "unconfirmed"  # SKIPPED, UNSUPPORTED or ERROR: the run cannot tell
    NOT_RUN = "not-run"  # a known case this run did not select


_FORGIVABLE = (Outcome.FAILED, Outcome.TIMEOUT, Outcome.NON_STRICT)


@dataclass(frozen=True)
class BaselineEntryVerdict:
    case: str
    reason: str
    status: EntryStatus
    why: str  # one sentence for the reports: what the run saw, and what to do about a stale entry

    def as_dict(self) -> dict[str, str]:
        return {"case": self.case, "reason": self.reason, "status": self.status.value, "why": self.why}


def judge_baseline(results: Iterable[CaseResult], baseline: Baseline,
                   known_cases: Iterable[str] | None = None) -> tuple[BaselineEntryVerdict, ...]:
    """Each entry of `baseline` against the results. `known_cases` are the case IDs the kit knows (a
    listed ID outside them is stale); without it, only the IDs among the results are known."""
    by_id = {r.case.id: r for r in results}
    known = set(by_id) | set(known_cases or ())
    source = f" from {baseline.source}" if baseline.source else ""
    judged = []
    for entry in baseline.entries:
        result = by_id.get(entry.case)
        if result is None and entry.case not in known:
            status, why = EntryStatus.STALE, (f"stale: no case {entry.case} in this kit (renamed or removed?):"
                                              f" remove the entry{source}")
        elif result is None:
            status, why = EntryStatus.NOT_RUN, "not run: the case was not selected"
        elif result.outcome is Outcome.PASSED:
            status, why = EntryStatus.STALE, f"stale: {entry.case} now passes: remove the entry{source}"
        elif result.outcome in _FORGIVABLE:
            status, why = EntryStatus.BASELINED, f"{result.outcome.value}, as the baseline expects"
        else:
            status, why = EntryStatus.UNCONFIRMED, (f"unconfirmed: the case is {result.outcome.value} in this run,"
                                                    " so whether it still fails is unknown")
        judged.append(BaselineEntryVerdict(entry.case, entry.reason, status, why))
    return tuple(judged)


@dataclass(frozen=True)
class RunVerdict:
    verdict: Verdict
    unchecked_must: tuple[str, ...]  # MUST requirements the selected cases cite but nothing checked
    failed_must: tuple[str, ...]  # every MUST requirement broken, baselined ones included
    failed_should: tuple[str, ...]
    baseline: tuple[BaselineEntryVerdict, ...] = ()  # empty without a baseline
    # Requirements broken only by baselined cases, and MUSTs not checked only because a baselined case
    # stopped before them: listed above too, but they do not decide the verdict.
    baselined_requirements: tuple[str, ...] = ()
    baselined_unchecked: tuple[str, ...] = ()

    @property
    def exit_code(self) -> int:
        return EXIT_CODES[self.verdict]

    @property
    def baselined(self) -> dict[str, str]:
        """Case ID -> reason, for the cases whose failure the baseline forgave."""
        return {e.case: e.reason for e in self.baseline if e.status is EntryStatus.BASELINED}

    @property
    def stale(self) -> tuple[BaselineEntryVerdict, ...]:
        return tuple(e for e in self.baseline if e.status is EntryStatus.STALE)


def run_verdict(results: Iterable[CaseResult], rows: Mapping[str, RequirementRow], strict: bool = False,
                baseline: Baseline | None = None, known_cases: Iterable[str] | None = None) -> RunVerdict:
    results = list(results)
    judged = judge_baseline(results, baseline, known_cases) if baseline is not None else ()
    forgiven = {e.case for e in judged if e.status is EntryStatus.BASELINED}
    failed_must = tuple(r.id for r in rows.values() if r.verdict is RequirementVerdict.FAILED and r.level == "MUST")
    failed_should = tuple(r.id for r in rows.values() if r.verdict is RequirementVerdict.FAILED and r.level != "MUST")
    unchecked = tuple(r.id for r in rows.values() if r.verdict is RequirementVerdict.NOT_CHECKED and r.level == "MUST")
    baselined_requirements = tuple(
        r.id for r in rows.values() if r.verdict is RequirementVerdict.FAILED
        and all(case_id in forgiven for case_id, cell in r.cases.items() if cell == Cell.FAILED.value))
    baselined_unchecked = tuple(
        req_id for req_id in unchecked
        if forgiven and all(case_id in forgiven and cell == Cell.NOT_REACHED.value
                            for case_id, cell in rows[req_id].cases.items() if cell != Cell.UNSUPPORTED.value))
    if any(r.blocking(strict) and r.case.id not in forgiven for r in results) or \
            any(e.status is EntryStatus.STALE for e in judged):
        verdict = Verdict.FAIL
    elif any(r.outcome is Outcome.ERROR for r in results):
        verdict = Verdict.ERROR
    elif set(unchecked) - set(baselined_unchecked):
        verdict = Verdict.INCOMPLETE
    else:
        verdict = Verdict.PASS
    return RunVerdict(verdict, unchecked, failed_must, failed_should, judged, baselined_requirements,
                      baselined_unchecked)
