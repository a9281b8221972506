"""Traceability both ways: every MUST requirement in spec/ has a case, every cited ID exists."""

from __future__ import annotations

from stui_protocol_kit.conformance.case import load_cases
from stui_protocol_kit.conformance.client_check import catalog
from stui_protocol_kit.conformance.traceability import uncovered_musts, unknown_check_citations, unknown_citations
from stui_protocol_kit.protocol.requirements import requirements


def test_every_must_requirement_has_a_case() -> None:
    missing = [r.id for r in uncovered_musts(requirements(), [*load_cases(), *catalog.cases()])]
    assert not missing, f"MUST requirements without a conformance case or client-check check: {missing}"


def test_every_cited_requirement_exists() -> None:
    unknown = unknown_citations(requirements(), [*load_cases(), *catalog.cases()])
    assert not unknown, f"cases citing unknown requirement IDs: {unknown}"


def test_client_requirements_are_checked_by_client_check_and_only_there() -> None:
    client = {r.id for r in requirements().values() if r.section == "16-clients.md"}
    assert client, "spec/16-clients.md states no requirement"
    server_cited = {req for case in load_cases() for req in case.requirements}
    assert client & server_cited == set(), "a server case cites a client requirement"
    assert client <= {req for case in catalog.cases() for req in case.requirements}


def test_automatic_check_citations_exist() -> None:
    from stui_protocol_kit.conformance.case import AUTOMATIC_REQUIREMENTS

    assert AUTOMATIC_REQUIREMENTS, "no automatic citations found"
    assert unknown_check_citations(requirements(), AUTOMATIC_REQUIREMENTS) == []


def test_well_over_fifty_cases_in_every_spec_group() -> None:
    cases = list(load_cases())
    assert len(cases) > 100
    groups = {c.group for c in cases}
    for group in ("transport", "envelope", "versioning", "hello", "create", "resume", "validate", "snapshot", "close",
                  "evaluate", "inspect", "lifecycle", "security", "persistence", "expiry", "concurrency", "retries",
                  "limits", "errors", "compatibility"):
        assert group in groups, group
