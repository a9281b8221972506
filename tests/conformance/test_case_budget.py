"""A case that runs past its budget ends as TIMEOUT, and budgets scale with --timeout and --examples."""

from __future__ import annotations

import time

from stui_protocol_kit.conformance.case import Case, CaseRegistry, Outcome
from stui_protocol_kit.conformance.context import CaseContext, RunOptions, effective_budget
from stui_protocol_kit.conformance.runner import RunConfig, Runner


def _slow_case(ctx: CaseContext) -> None:
    # Each hello is answered at once; the case just keeps going past its budget.
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        ctx.call("hello", {})
        time.sleep(0.05)


def test_a_case_past_its_budget_is_a_timeout_not_an_endless_run():
    registry = CaseRegistry()
    registry.add(Case(id="budget.slow", title="slow", sends="hello, repeatedly", requirements=("HEL-1",),
                      run=_slow_case, budget_s=0.5))
    started = time.monotonic()
    report = Runner(RunConfig(), registry=registry).run()
    (result,) = report.results
    assert result.outcome is Outcome.TIMEOUT
    assert "budget" in result.failure.message
    assert time.monotonic() - started < 10  # cut off long before the case's own 10 s loop ends


def test_budgets_scale_with_timeout_and_examples_for_generated_cases():
    plain = Case(id="x.plain", title="", sends="", requirements=(), run=_slow_case, budget_s=30)
    generated = Case(id="x.gen", title="", sends="", requirements=(), run=_slow_case, budget_s=60,
                     tags=frozenset({"hypothesis"}))
    defaults = RunOptions("dealer", 5.0, 0, 50, 10.0)
    assert effective_budget(plain, defaults) == 30
    assert effective_budget(plain, RunOptions("dealer", 20.0, 0, 50, 10.0)) == 120
    assert effective_budget(plain, RunOptions("dealer", 5.0, 0, 500, 10.0)) == 30
    assert effective_budget(generated, RunOptions("dealer", 5.0, 0, 500, 10.0)) == 600
