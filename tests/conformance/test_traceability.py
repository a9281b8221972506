"""Traceability both ways: every MUST requirement in spec/ has a case, every cited ID exists."""

from __future__ import annotations

from stui_protocol_kit.conformance.case import load_cases
from stui_protocol_kit.conformance.traceability import uncovered_musts, unknown_check_citations, unknown_citations
from stui_protocol_kit.protocol.requirements import requirements


def test_every_must_requirement_has_a_case() -> None:
    missing = [r.id for r in uncovered_musts(requirements(), load_cases())]
    assert not missing, f"MUST requirements without a conformance case: {missing}"


def test_every_cited_requirement_exists() -> None:
    unknown = unknown_citations(requirements(), load_cases())
    assert not unknown, f"cases citing unknown requirement IDs: {unknown}"


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
