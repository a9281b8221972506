"""Run reports read back: JSON documents of earlier runs, as `stui-conformance report` and the HTML
report use them.

Every document comes through the one reader, `conformance.formats.read_run_report`, which refuses
another `schema_version`. The spec edition is checked here, by one rule: a report of another spec
edition than this kit's is refused (`EditionMismatch`), because its requirement IDs, levels and texts
may differ and a side-by-side or a diff would silently compare different things. With
`allow_other_edition` it is read but flagged (`LoadedRun.other_edition`), and every report shows the
flag beside its verdict.

To judge a stored run against a baseline, its cases are turned back into `CaseResult`s and judged by
conformance/verdicts.py against the run's own requirement index (the rows it recorded), so the verdict
comes from the one place verdicts are computed and means exactly what `run --baseline` would say.

This module must never decide a verdict itself and never write files.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from stui_protocol_kit.conformance.baseline import Baseline
from stui_protocol_kit.conformance.case import Case, CaseResult, Outcome
from stui_protocol_kit.conformance.formats import read_run_report
from stui_protocol_kit.conformance.report.json_report import verdict_fields
from stui_protocol_kit.conformance.verdicts import requirement_matrix, run_verdict
from stui_protocol_kit.protocol.problems import Problem
from stui_protocol_kit.protocol.requirements import Requirement, spec_edition


class EditionMismatch(ValueError):
    """A report of another spec edition than this kit's, read without `allow_other_edition`."""


@dataclass
class LoadedRun:
    """One run report: where it came from, the document, and how reports name it."""

    document: dict[str, Any]
    source: str = ""  # the file as given; "" for a run rendered as it finishes
    label: str = ""
    other_edition: bool = False
    notes: list[str] = field(default_factory=list)

    @property
    def server(self) -> str:
        """The implementation's name from its hello (the key that pairs runs of one implementation)."""
        server = self.document.get("hello", {}).get("server")
        return str(server.get("name", "")) if isinstance(server, dict) else ""

    @property
    def server_version(self) -> str:
        server = self.document.get("hello", {}).get("server")
        return str(server.get("version", "")) if isinstance(server, dict) else ""


def load(paths: Iterable[str | Path], allow_other_edition: bool = False) -> list[LoadedRun]:
    """Read run reports (FormatError for a file that is not one; EditionMismatch for another edition
    unless allowed) and give each a label unique among them."""
    runs = []
    edition = spec_edition()
    for path in paths:
        document = read_run_report(path)  # its errors name the file
        theirs = document["spec"]["edition"]
        run = LoadedRun(document, str(path))
        if theirs != edition:
            if not allow_other_edition:
                raise EditionMismatch(
                    f"{path}: a report of spec edition {theirs}, this kit checks edition {edition}: its requirements"
                    " may differ, so it is not compared (re-run the suite with this kit, or pass"
                    " --allow-other-edition to show it flagged)")
            run.other_edition = True
            run.notes.append(f"spec edition {theirs}, not this kit's {edition}: requirement IDs, levels and texts"
                             " may differ; compare with care")
        runs.append(run)
    label_runs(runs)
    return runs


def label_runs(runs: list[LoadedRun]) -> None:
    """`server version`, made unique with the file name (or the position) when two runs share it."""
    base = [f"{r.server or 'unknown server'} {r.server_version}".strip() for r in runs]
    for i, run in enumerate(runs):
        if base.count(base[i]) > 1:
            run.label = f"{base[i]} ({Path(run.source).name if run.source else f'run {i + 1}'})"
        else:
            run.label = base[i]
    seen: dict[str, int] = {}
    for run in runs:  # the same file given twice
        seen[run.label] = seen.get(run.label, 0) + 1
        if seen[run.label] > 1:
            run.label = f"{run.label} #{seen[run.label]}"


def index_of(document: dict[str, Any]) -> dict[str, Requirement]:
    """The requirement index the run was judged with, rebuilt from the rows it recorded (spec order)."""
    return {req_id: Requirement(req_id, row["level"], row["text"], row["section"], "", 0)
            for req_id, row in document["requirements"].items() if row["level"] != "?"}


def results_of(document: dict[str, Any]) -> list[CaseResult]:
    """The document's cases as `CaseResult`s (for verdicts.py; no case can be run from them)."""
    results = []
    for record in document["cases"]:
        item = Case(id=record["id"], title=record["title"], sends=record["sends"],
                    requirements=tuple(record["requirements"]), run=_not_runnable, level=record["level"],
                    tags=frozenset(record["tags"]), allows=tuple(record["allows"]), needs=frozenset(record["needs"]))
        results.append(CaseResult(
            item, Outcome(record["outcome"]), record["duration_s"],
            [Problem.from_dict(p) for p in record["problems"]], list(record.get("violations", [])),
            record.get("reason", ""), list(record.get("transcript", [])), list(record.get("notes", [])),
            record.get("sequence"), record.get("detail", "")))
    return results


def _not_runnable(ctx: Any) -> None:
    raise RuntimeError("a case read back from a report cannot be run")


def rejudge(document: dict[str, Any], baseline: Baseline | None, known_cases: Iterable[str] = ()) -> dict[str, Any]:
    """A copy of `document` whose verdict members are judged again against `baseline` (or without one:
    the stored judgement with any earlier baseline removed). Outcomes, problems and the requirement
    matrix are the run's and stay as they were."""
    results = results_of(document)
    rows = requirement_matrix(results, index_of(document))
    verdict = run_verdict(results, rows, bool(document["config"]["strict"]), baseline, known_cases)
    judged = {key: value for key, value in document.items() if key != "baseline"}
    judged.update(verdict_fields(verdict, baseline.source if baseline is not None else None))
    baselined = verdict.baselined
    judged["cases"] = []
    for record in document["cases"]:
        record = {key: value for key, value in record.items() if key != "baselined"}
        if record["id"] in baselined:
            record["baselined"] = baselined[record["id"]]
        judged["cases"].append(record)
    return judged
