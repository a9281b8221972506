"""Numbers and differences read off run report documents: pass rates per requirement level, which runs
are of the same implementation, and what changed between two of its runs (regressed, fixed, other).

Two runs are of the same implementation when their `hello` names the same server (`server.name`; the
version may differ - that is the point of a diff). The older run is the one that started first.

This module must never judge a reply or a run (the documents carry the verdicts) and never render.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from stui_protocol_kit.conformance.report.loaded import LoadedRun

FAILING = ("FAILED", "NON-STRICT", "TIMEOUT")


@dataclass(frozen=True)
class Rate:
    """Requirements of one level cited by the selected cases, by verdict."""

    level: str
    held: int
    failed: int
    not_checked: int
    not_applicable: int

    @property
    def applicable(self) -> int:
        return self.held + self.failed + self.not_checked

    @property
    def percent(self) -> float | None:
        return 100.0 * self.held / self.applicable if self.applicable else None

    def text(self) -> str:
        if not self.applicable:
            return "none applicable"
        parts = [f"{self.held}/{self.applicable} held ({self.percent:.1f}%)"]
        parts += [f"{n} {what}" for n, what in ((self.failed, "failed"), (self.not_checked, "not checked"),
                                                 (self.not_applicable, "not applicable")) if n]
        return " · ".join(parts)


def rates(document: dict[str, Any]) -> dict[str, Rate]:
    """MUST and SHOULD pass rates of one run: held / (cited by a selected case and applicable)."""
    out = {}
    rows = [row for row in document["requirements"].values() if row["cases"]]
    for level in ("MUST", "SHOULD"):
        verdicts = [row["verdict"] for row in rows if row["level"] == level]
        out[level] = Rate(level, verdicts.count("PASSED"), verdicts.count("FAILED"), verdicts.count("NOT-CHECKED"),
                          verdicts.count("NOT-APPLICABLE"))
    return out


def pairs(runs: list[LoadedRun]) -> list[tuple[LoadedRun, LoadedRun]]:
    """Consecutive runs (by start time) of each implementation named by two runs or more."""
    by_server: dict[str, list[LoadedRun]] = {}
    for run in runs:
        by_server.setdefault(run.server, []).append(run)
    out = []
    for group in by_server.values():
        ordered = sorted(group, key=lambda r: r.document["started_at"])
        out += list(zip(ordered, ordered[1:], strict=False))
    return out


@dataclass
class Change:
    id: str
    before: str  # outcome / verdict in the older run ("absent" when it was not there)
    after: str
    what: str = ""  # the newer run's first problem or reason, for a regression


@dataclass
class RunDiff:
    older: LoadedRun
    newer: LoadedRun
    regressed_cases: list[Change] = field(default_factory=list)
    fixed_cases: list[Change] = field(default_factory=list)
    other_cases: list[Change] = field(default_factory=list)
    # Cases only one of the runs has (another selection, or a kit that added or removed a case).
    only_older: list[str] = field(default_factory=list)
    only_newer: list[str] = field(default_factory=list)
    regressed_requirements: list[Change] = field(default_factory=list)
    fixed_requirements: list[Change] = field(default_factory=list)
    other_requirements: list[Change] = field(default_factory=list)

    @property
    def verdicts(self) -> tuple[str, str]:
        return self.older.document["verdict"], self.newer.document["verdict"]


def diff(older: LoadedRun, newer: LoadedRun) -> RunDiff:
    """What changed from `older` to `newer`: a case regressed when it passed and now fails (FAILED,
    NON-STRICT, TIMEOUT), it is fixed when it failed and now passes; a requirement likewise by its
    verdict (PASSED <-> FAILED). Every other change of outcome is listed as other; a case only one run
    has is listed apart, and a requirement's change to or from UNSELECTED (not cited by the selection
    of one of the runs) is not a change of the implementation and is left out."""
    result = RunDiff(older, newer)
    before = {c["id"]: c for c in older.document["cases"]}
    after = {c["id"]: c for c in newer.document["cases"]}
    result.only_older = [c for c in before if c not in after]
    result.only_newer = [c for c in after if c not in before]
    for case_id in (c for c in before if c in after):
        old, new = before[case_id]["outcome"], after[case_id]["outcome"]
        if old == new:
            continue
        change = Change(case_id, old, new, _what(after.get(case_id)))
        if old == "PASSED" and new in FAILING:
            result.regressed_cases.append(change)
        elif old in FAILING and new == "PASSED":
            result.fixed_cases.append(change)
        else:
            result.other_cases.append(change)
    old_rows, new_rows = older.document["requirements"], newer.document["requirements"]
    for req_id in [*old_rows, *(r for r in new_rows if r not in old_rows)]:
        old = old_rows[req_id]["verdict"] if req_id in old_rows else "absent"
        new = new_rows[req_id]["verdict"] if req_id in new_rows else "absent"
        if old == new or "UNSELECTED" in (old, new):
            continue
        change = Change(req_id, old, new)
        if old == "PASSED" and new == "FAILED":
            result.regressed_requirements.append(change)
        elif old == "FAILED" and new == "PASSED":
            result.fixed_requirements.append(change)
        else:
            result.other_requirements.append(change)
    return result


def _what(record: dict[str, Any] | None) -> str:
    if record is None:
        return ""
    if record["problems"]:
        first = record["problems"][0]
        message = first["message"].splitlines()[0] if first["message"] else ""
        return f"{first['requirement']} at {first['path']}: {message}"
    return record.get("reason", "")
