"""Baselines: the expected non-passes of one implementation, so a team can keep CI green while it works
through known failures, and CI goes red again as soon as the list is out of date.

A baseline file is YAML, a list of entries `- case: CASE_ID` with `reason: TEXT` (JSON Schema:
conformance/formats/baseline.schema.json; the one reader is `conformance.formats.read_baseline`). What
a listed case does to a run - forgiven, stale, unconfirmed - is decided in conformance/verdicts.py, the
one place verdicts are computed. This module holds the value and writes a new file from a run's results
(`run --write-baseline FILE`).

It must never judge a result (verdicts.py does) and never read a baseline file (formats does).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import yaml

from stui_protocol_kit.conformance.case import CaseResult


@dataclass(frozen=True)
class BaselineEntry:
    case: str
    reason: str


@dataclass(frozen=True)
class Baseline:
    """The entries of one baseline file, in file order; `source` names the file in reports."""

    entries: tuple[BaselineEntry, ...] = ()
    source: str = ""

    def reasons(self) -> dict[str, str]:
        return {entry.case: entry.reason for entry in self.entries}

    def __contains__(self, case_id: object) -> bool:
        return any(entry.case == case_id for entry in self.entries)


def found_reason(result: CaseResult, date: str) -> str:
    """The reason written for a new entry: what the run found, for the team to complete (a ticket, a
    plan). Problems are already redacted; the message is cut to one line."""
    first = result.problem
    found = f"{first.requirement} at {first.path}: {first.message.splitlines()[0][:200]}" if first else result.reason
    return f"{result.outcome.value} on {date}: {found}"


def from_results(results: Iterable[CaseResult], strict: bool, date: str,
                 previous: Baseline | None = None) -> Baseline:
    """A baseline listing every result that fails the run (FAILED and TIMEOUT; with `strict` also
    NON-STRICT), keeping the reason of an entry `previous` already had for the same case. ERROR is not
    listed: it is the suite's trouble, never an expected behaviour of the target."""
    kept: Mapping[str, str] = previous.reasons() if previous else {}
    entries = [BaselineEntry(r.case.id, kept.get(r.case.id) or found_reason(r, date))
               for r in results if r.blocking(strict)]
    return Baseline(tuple(entries))


def to_yaml(baseline: Baseline, header: Iterable[str] = ()) -> str:
    """The file text: comment lines, then the entries (values quoted by the YAML library, so a reason
    with a colon, a quote or a newline reads back the same)."""
    lines = [f"# {line}".rstrip() for line in header]
    body = [{"case": entry.case, "reason": entry.reason} for entry in baseline.entries]
    text = yaml.safe_dump(body, sort_keys=False, allow_unicode=True, width=120) if body else "[]\n"
    return "\n".join(lines) + ("\n" if lines else "") + text
