"""Shared fixtures of the report tests: real runs (the reference server and a deliberately faulty one, on
the same selection) as JSON report documents, built once per session, and a run whose every
target-supplied string is hostile markup (`hostile_doc`; the data lives in report_data.py)."""

from __future__ import annotations

import sys
from typing import Any

import pytest
from report_data import FAULT, FAULTY, SELECTION, hostile_document

from stui_protocol_kit.conformance.config import RunConfig
from stui_protocol_kit.conformance.report import json_report
from stui_protocol_kit.conformance.runner import RunReport, run


@pytest.fixture(scope="session")
def reference_run() -> RunReport:
    return run(RunConfig(select=SELECTION, timeout_s=2.0, seed=3))


@pytest.fixture(scope="session")
def faulty_run() -> RunReport:
    return run(RunConfig(server_argv=(sys.executable, str(FAULTY), "--fault", FAULT), select=SELECTION,
                         timeout_s=2.0, seed=3))


@pytest.fixture(scope="session")
def reference_doc(reference_run: RunReport) -> dict[str, Any]:
    return json_report.build(reference_run)


@pytest.fixture(scope="session")
def faulty_doc(faulty_run: RunReport) -> dict[str, Any]:
    return json_report.build(faulty_run)


@pytest.fixture(scope="session")
def hostile_doc() -> dict[str, Any]:
    return hostile_document()
