"""Verdicts a backend team can trust: a requirement fails only when a check of it failed, the suite's own
trouble is never the target's failure, what was not checked is said, and cases cite only what they declare."""

from __future__ import annotations

import pytest

from stui_protocol_kit.conformance.case import (
    Case,
    CaseFailed,
    CaseRegistry,
    CaseResult,
    Outcome,
    case,
    cited_in_code,
)
from stui_protocol_kit.conformance.config import RunConfig
from stui_protocol_kit.conformance.context import CaseContext
from stui_protocol_kit.conformance.runner import Runner
from stui_protocol_kit.conformance.verdicts import requirement_matrix, run_verdict
from stui_protocol_kit.protocol.problems import Problem
from stui_protocol_kit.protocol.requirements import requirements


def _case(case_id: str, *reqs: str) -> Case:
    return Case(id=case_id, title=case_id, sends="", requirements=reqs, run=lambda ctx: None)


def _failed(item: Case, requirement: str, outcome: Outcome = Outcome.FAILED) -> CaseResult:
    return CaseResult(item, outcome, problems=[Problem(requirement, "wrong", "$.result.revision", 1, 2)])


def test_a_requirement_fails_only_when_a_check_of_it_failed() -> None:
    wide = _case("stateful.sessions", "RES-1", "SNP-1", "CON-4")
    results = [_failed(wide, "RES-1"), CaseResult(_case("snapshot.revisions-increment", "SNP-1"), Outcome.PASSED)]
    rows = requirement_matrix(results, requirements())
    assert rows["RES-1"].verdict.value == "FAILED"
    assert rows["RES-1"].cases == {"stateful.sessions": "FAILED"}
    # SNP-1 was checked and held elsewhere; the failing case stopped before checking it.
    assert rows["SNP-1"].verdict.value == "PASSED"
    assert rows["SNP-1"].cases == {"stateful.sessions": "NOT-REACHED", "snapshot.revisions-increment": "PASSED"}
    # CON-4 was cited only by the case that stopped first: not checked, and the report says why.
    assert rows["CON-4"].verdict.value == "NOT-CHECKED"
    assert "stopped at RES-1 first" in rows["CON-4"].why_not_checked[0]
    assert run_verdict(results, rows).verdict.value == "FAIL"


def test_skipped_must_requirements_make_the_run_incomplete_not_pass() -> None:
    results = [CaseResult(_case("hello.success", "HEL-1"), Outcome.PASSED),
               CaseResult(_case("persistence.state-after-restart", "PER-1"), Outcome.SKIPPED,
                          reason="needs a restart of the target: pass --restart-command CMD")]
    rows = requirement_matrix(results, requirements())
    verdict = run_verdict(results, rows)
    assert verdict.verdict.value == "INCOMPLETE" and verdict.exit_code == 3
    assert verdict.unchecked_must == ("PER-1",)
    assert "--restart-command" in rows["PER-1"].why_not_checked[0]


def test_unannounced_optional_features_are_not_applicable_not_unchecked() -> None:
    results = [CaseResult(_case("hello.success", "HEL-1"), Outcome.PASSED),
               CaseResult(_case("evaluate.integers", "EVL-1"), Outcome.UNSUPPORTED, reason="hello does not announce")]
    rows = requirement_matrix(results, requirements())
    assert rows["EVL-1"].verdict.value == "NOT-APPLICABLE"
    assert run_verdict(results, rows).verdict.value == "PASS"


def test_should_failures_are_non_strict_unless_strict() -> None:
    item = _case("evaluate.error-position", "EVL-6")
    results = [_failed(item, "EVL-6", Outcome.NON_STRICT)]
    rows = requirement_matrix(results, requirements())
    assert run_verdict(results, rows).verdict.value == "PASS"
    assert run_verdict(results, rows, strict=True).verdict.value == "FAIL"


def test_suite_errors_are_their_own_verdict_and_count_against_no_requirement() -> None:
    results = [CaseResult(_case("hello.success", "HEL-1"), Outcome.ERROR, reason="the case itself raised")]
    rows = requirement_matrix(results, requirements())
    assert rows["HEL-1"].verdict.value == "NOT-CHECKED"
    verdict = run_verdict(results, rows)
    assert verdict.verdict.value == "ERROR" and verdict.exit_code == 2 and verdict.failed_must == ()


def test_case_failed_is_not_an_assertion_error_and_always_names_a_requirement() -> None:
    assert not issubclass(CaseFailed, AssertionError)
    with pytest.raises(TypeError):
        CaseFailed("x", "y", None)  # type: ignore[arg-type]


def _stray_assert(ctx: CaseContext) -> None:
    ctx.call("hello", {})
    assert False, "a bug in the case"  # noqa: B011 - the behaviour under test


def _cites_undeclared_at_run_time(ctx: CaseContext) -> None:
    requirement = "-".join(["SNP", str(4)])  # built at run time, so only the runner's check can see it
    raise CaseFailed("x", "y", requirement)


def test_a_stray_assert_and_an_undeclared_citation_are_suite_errors() -> None:
    registry = CaseRegistry()
    registry.add(Case(id="hello.stray-assert", title="", sends="hello", requirements=("HEL-1",), run=_stray_assert))
    registry.add(Case(id="hello.undeclared", title="", sends="", requirements=("HEL-1",),
                      run=_cites_undeclared_at_run_time))
    report = Runner(RunConfig(select=("hello.*",)), registry=registry).run()
    got = {r.case.id: r for r in report.results}
    assert got["hello.stray-assert"].outcome is Outcome.ERROR
    assert "AssertionError" in got["hello.stray-assert"].reason
    assert got["hello.undeclared"].outcome is Outcome.ERROR
    assert "SNP-4" in got["hello.undeclared"].reason and "does not declare" in got["hello.undeclared"].reason
    assert report.exit_code == 2
    assert report.matrix()["SNP-4"].verdict.value != "FAILED"


def test_a_case_citing_an_undeclared_requirement_fails_to_load() -> None:
    registry = CaseRegistry()

    def cites_snp_4(ctx: CaseContext) -> None:
        raise CaseFailed("error RevisionConflict", "success", "SNP-4")

    with pytest.raises(ValueError, match="cites SNP-4 in its code but does not declare it"):
        case("snapshot.sloppy", "cites what it does not declare", sends="", requirements=["SNP-1"],
             registry=registry)(cites_snp_4)
    case("snapshot.careful", "declares what it cites", sends="", requirements=["SNP-1", "SNP-4"],
         registry=registry)(cites_snp_4)
    assert "snapshot.careful" in registry
    assert cited_in_code(cites_snp_4) == {"SNP-4"}


def _cited_through_helpers(run: object, case_functions: set[object]) -> set[str]:
    """What a case cites in its own code and in the case-module helpers it calls (transitively); other
    cases' functions are not helpers (a name like `capabilities` may be an attribute, not a call)."""
    import types

    found: set[str] = set()
    seen: set[int] = set()
    pending = [run]
    while pending:
        function = pending.pop()
        code = getattr(function, "__code__", None)
        if code is None or id(code) in seen:
            continue
        seen.add(id(code))
        found |= cited_in_code(function)
        module_globals = getattr(function, "__globals__", {})
        codes = [code]
        while codes:
            current = codes.pop()
            codes += [c for c in current.co_consts if isinstance(c, types.CodeType)]
            for name in current.co_names:
                helper = module_globals.get(name)
                if isinstance(helper, types.FunctionType) and helper not in case_functions and \
                        helper.__module__.startswith("stui_protocol_kit.conformance.cases"):
                    pending.append(helper)
    return found


def test_every_registered_case_cites_only_what_it_declares() -> None:
    from stui_protocol_kit.conformance.case import AUTOMATIC_REQUIREMENTS, load_cases

    runs = {item.run for item in load_cases()}
    undeclared = {item.id: sorted(_cited_through_helpers(item.run, runs) - set(item.requirements)
                                  - AUTOMATIC_REQUIREMENTS) for item in load_cases()}
    assert {k: v for k, v in undeclared.items() if v} == {}
