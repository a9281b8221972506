"""A case that runs past its budget while the target answers is the suite's ERROR (exit 2), never a
TIMEOUT or a failure of the target; budgets scale with --timeout and --examples and grow with the
limits a case waits out, as the target announces them."""

from __future__ import annotations

import time

from stui_protocol_kit.conformance.case import Case, CaseRegistry, Outcome
from stui_protocol_kit.conformance.config import RunConfig
from stui_protocol_kit.conformance.context import CaseContext, effective_budget
from stui_protocol_kit.conformance.runner import Runner


def _slow_case(ctx: CaseContext) -> None:
    # Each hello is answered at once; the case just keeps going past its budget.
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        ctx.call("hello", {})
        time.sleep(0.05)


def test_a_budget_overrun_against_a_healthy_server_is_a_suite_error_and_exits_2():
    registry = CaseRegistry()
    registry.add(Case(id="hello.slow", title="slow", sends="hello, repeatedly", requirements=("HEL-1",),
                      run=_slow_case, budget_s=0.5))
    started = time.monotonic()
    report = Runner(RunConfig(), registry=registry).run()
    (result,) = report.results
    assert result.outcome is Outcome.ERROR
    assert "budget" in result.reason and "not a verdict on the target" in result.reason
    assert result.problems == []  # nothing is held against any requirement
    assert report.run_verdict().verdict.value == "ERROR" and report.exit_code == 2
    assert report.matrix()["HEL-1"].verdict.value == "NOT-CHECKED"
    assert time.monotonic() - started < 10  # cut off long before the case's own 10 s loop ends


def test_budgets_scale_with_timeout_and_examples_for_generated_cases():
    plain = Case(id="x.plain", title="", sends="", requirements=(), run=_slow_case, budget_s=30)
    generated = Case(id="x.gen", title="", sends="", requirements=(), run=_slow_case, budget_s=60,
                     tags=frozenset({"hypothesis"}))
    assert effective_budget(plain, RunConfig()) == 30
    assert effective_budget(plain, RunConfig(timeout_s=20.0)) == 120
    assert effective_budget(plain, RunConfig(examples=500)) == 30
    assert effective_budget(generated, RunConfig(examples=500)) == 600


def test_budgets_grow_with_the_limits_a_case_waits_out():
    waits = Case(id="x.waits", title="", sends="", requirements=(), run=_slow_case, budget_s=10,
                 waits={"absolute_timeout_s": 1, "tombstone_retention_s": 2})
    # 10 s of work + 1 x 40 s + 2 x 25 s, each wait with twice the spec's 1 s deadline tolerance.
    assert effective_budget(waits, RunConfig(), {"absolute_timeout_s": 40, "tombstone_retention_s": 25}) == 104
    # A limit the target does not announce adds nothing (nothing to wait for).
    assert effective_budget(waits, RunConfig(), {}) == 10
