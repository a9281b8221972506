"""Data for the report tests (not a test module): the runs the fixtures make (SELECTION, FAULT), and a
run report whose every target-supplied string is hostile markup, for the escaping tests of the HTML
report as a document and in the browser."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from stui_protocol_kit.conformance import formats
from stui_protocol_kit.conformance.baseline import Baseline, BaselineEntry
from stui_protocol_kit.conformance.case import Case, CaseResult, Outcome
from stui_protocol_kit.conformance.config import RunConfig
from stui_protocol_kit.conformance.report import json_report
from stui_protocol_kit.conformance.runner import RunReport
from stui_protocol_kit.protocol.problems import Problem

FAULTY = Path(__file__).resolve().parents[1] / "faulty" / "server.py"
# Groups the faulty server's fault (accepts-wrong-token) fails in part, plus groups it passes: small
# enough to run in seconds, wide enough for a matrix with PASSED, FAILED and NOT-REACHED cells.
# STUI_REPORT_FULL_RUN=1 runs every case instead (about a minute more): the pages of whole runs.
SELECTION: tuple[str, ...] = () if os.environ.get("STUI_REPORT_FULL_RUN") == "1" else (
    "hello.*", "validate.*", "security.*", "lifecycle.*")
FAULT = "accepts-wrong-token"

# Each payload would run code or load something if it reached the page as markup.
HOSTILE = {
    "title": "<script>window.__xss = 'title'</script>",
    "message": '"><img src=x onerror="window.__xss=\'message\'">',
    "transcript": "</pre></script><script>window.__xss='transcript'</script>",
    "server": "<b onmouseover=\"window.__xss='server'\">pharo</b>",
    "reason": "<iframe src=\"javascript:window.__xss='reason'\"></iframe>",
    "baseline": "<svg onload=\"window.__xss='baseline'\"></svg>",
    "sequence": '{"request": "</pre><img src=x onerror=window.__xss=1>"}',
    "expected": "<style>body{display:none}</style>",
    "sends": "<a href=\"javascript:window.__xss='sends'\">click</a>",
}


def hostile_document() -> dict[str, Any]:
    """A run whose every target-supplied string is hostile."""
    item = Case(id="snapshot.revision-conflict", title=HOSTILE["title"], sends=HOSTILE["sends"],
                requirements=("SNP-4",), run=lambda ctx: None)
    other = Case(id="stateful.sessions", title="sequence", sends="", requirements=("RES-1",), run=lambda ctx: None)
    skipped = Case(id="persistence.state-after-restart", title="t", sends="", requirements=("PER-1",),
                   run=lambda ctx: None)
    results = [
        CaseResult(item, Outcome.FAILED, 0.1, [Problem("SNP-4", HOSTILE["message"], "$.result['<b>']",
                                                       HOSTILE["expected"], {"<k>": HOSTILE["title"]})],
                   transcript=[{"direction": "request", "at": 1.0, "message": {"id": HOSTILE["transcript"]}},
                               {"direction": "reply", "at": 1.5, "message": HOSTILE["transcript"]}]),
        CaseResult(other, Outcome.FAILED, 0.2, [Problem("RES-1", "diverged", "$", 1, 2, subject="sequence")],
                   sequence=HOSTILE["sequence"] + "\n"),
        CaseResult(skipped, Outcome.SKIPPED, reason=HOSTILE["reason"]),
    ]
    report = RunReport(results, {"server": {"name": HOSTILE["server"], "version": "1<2"}, "protocol_versions": ["1.0"]},
                       "tcp://127.0.0.1:1", RunConfig(target="tcp://127.0.0.1:1"), "2026-12-02T10:00:00+00:00", 0.3,
                       baseline=Baseline((BaselineEntry("snapshot.revision-conflict", HOSTILE["baseline"]),)),
                       known_cases=frozenset({"snapshot.revision-conflict", "stateful.sessions",
                                              "persistence.state-after-restart"}))
    document = json_report.build(report)
    formats.check("run-report", document)
    return document
