"""Traceability both ways: every MUST requirement in spec/ has a case, every cited ID exists."""

from __future__ import annotations

from stui_protocol_kit.conformance.case import load_cases
from stui_protocol_kit.protocol.requirements import requirements


def test_every_must_requirement_has_a_case() -> None:
    cited = {req for case in load_cases() for req in case.requirements}
    missing = sorted(r.id for r in requirements().values() if r.level == "MUST" and r.id not in cited)
    assert not missing, f"MUST requirements without a conformance case: {missing}"


def test_every_cited_requirement_exists() -> None:
    index = requirements()
    unknown = sorted({(case.id, req) for case in load_cases() for req in case.requirements if req not in index})
    assert not unknown, f"cases citing unknown requirement IDs: {unknown}"


def test_automatic_check_citations_exist() -> None:
    from stui_protocol_kit.conformance import citations

    index = requirements()
    ids = [v for k, v in vars(citations).items() if k.isupper()]
    assert ids and all(i in index for i in ids), [i for i in ids if i not in index]


def test_well_over_fifty_cases_in_every_spec_group() -> None:
    cases = list(load_cases())
    assert len(cases) > 100
    groups = {c.group for c in cases}
    for group in ("transport", "envelope", "versioning", "hello", "create", "resume", "validate", "snapshot", "close",
                  "evaluate", "inspect", "lifecycle", "security", "persistence", "expiry", "concurrency", "retries",
                  "limits", "errors", "compatibility"):
        assert group in groups, group
