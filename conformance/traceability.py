"""Traceability between the spec's requirements and the conformance cases, both ways.

Every requirement of level MUST needs at least one case that cites it (a MUST the suite cannot fail is
a gap), and every requirement ID a case or an automatic check cites must exist in the spec (a typo would
make a case look like coverage it is not). The cases are the conformance cases (servers) and client-check's
checks and scenarios (`conformance.client_check.catalog.cases()`, clients: spec/16-clients.md). The test
suite (tests/conformance/test_traceability.py) and `stui-conformance lint` both ask these questions here.

This module only compares IDs; it must never load cases or read the spec itself.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from stui_protocol_kit.conformance.case import Case
from stui_protocol_kit.protocol.requirements import Requirement


def uncovered_musts(requirements: Mapping[str, Requirement], cases: Iterable[Case]) -> list[Requirement]:
    """MUST requirements that no case cites, in spec order."""
    cited = {req for case in cases for req in case.requirements}
    return sorted((r for r in requirements.values() if r.level == "MUST" and r.id not in cited),
                  key=lambda r: (r.section, r.line))


def unknown_citations(requirements: Mapping[str, Requirement], cases: Iterable[Case]) -> list[tuple[str, str]]:
    """(case ID, requirement ID) for every cited ID the spec does not define."""
    return sorted({(case.id, req) for case in cases for req in case.requirements if req not in requirements})


def unknown_check_citations(requirements: Mapping[str, Requirement], cited: Iterable[str]) -> list[str]:
    """IDs the automatic checks cite (`case.AUTOMATIC_REQUIREMENTS`) that the spec does not define."""
    return sorted(i for i in set(cited) if i not in requirements)
