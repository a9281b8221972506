"""The generated and stateful conformance cases, registered in the core's case registry.

- `generated.valid-requests`: schema-valid requests of every served command (from the bundled
  schemas) are answered with success or an error the spec allows at that point - never a P2-P5 error.
- `generated.invalid-requests`: schema-violating mutations get exactly the error the spec demands
  (InvalidRequest/schema, UnknownCommand, UnsupportedVersion), and the target keeps serving.
- `stateful.sessions` / `stateful.restarts`: the rule-based machine over several clients, checked
  against the model; the second adds target restarts.

Budgets derive from `--examples` (default 50) and are kept small enough for the default run to stay
well under a minute against the embedded reference server. `--seed` makes every draw reproducible.

This module must never predict replies itself: the strategies, the model and the context do.
"""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, Phase, Verbosity, find, given, seed, settings
from hypothesis import strategies as st

from stui_protocol_kit.conformance.case import NEED_EXCLUSIVE, NEED_EXPIRY, NEED_RESTART, CaseFailed, case
from stui_protocol_kit.conformance.context import EXPIRED_NOTE, CaseContext, CheckedClient, SessionHandle
from stui_protocol_kit.conformance.stateful import differential
from stui_protocol_kit.conformance.stateful.machine import Budget, run_machine
from stui_protocol_kit.conformance.stateful.model import MODEL_REQUIREMENTS
from stui_protocol_kit.conformance.strategies import commands, every_mutation, invalid_requests, valid_requests
from stui_protocol_kit.conformance.verifiers import expect_alive, expect_error, expect_true

# Errors a schema-valid request may get on a live session (step P7 and the lifecycle after a close).
_LIVE_SESSION_ERRORS = {"RevisionConflict", "EvaluationError", "ObjectNotFound", "SessionClosed"}


def _settings(ctx: CaseContext, examples: int) -> settings:
    # Health checks judge a strategy's quality and the speed of the code under test; in a conformance run
    # the code under test is somebody's server over a network, so a slow target must never become a suite
    # ERROR. The kit's own tests run the strategies with the health checks on (tests/stateful/).
    return settings(
        max_examples=max(1, examples), deadline=None, database=None, verbosity=Verbosity.quiet,
        suppress_health_check=list(HealthCheck), report_multiple_bugs=False,
        phases=(Phase.explicit, Phase.generate, Phase.shrink),
    )


def _per_command(ctx: CaseContext) -> int:
    return max(2, ctx.config.examples // 8)


@case("generated.valid-requests", "schema-valid requests of every command are served or get an allowed error",
      sends="requests generated from each served command's bundled schema, with random and with live sessions",
      requirements=["ENV-1", "ENV-2", "ERR-1", "ERR-2", "SEC-2"], tags=["generated", "hypothesis"], budget_s=60)
def valid_requests_case(ctx: CaseContext) -> None:
    client = ctx.client()
    for command in commands(ctx.registry, ctx.capabilities):
        scoped = ctx.registry.commands[command].session_scoped
        _check_valid(ctx, client, command, ctx.new_session(client) if scoped else None)
    expect_alive(ctx, requirement="ERR-1")


def _check_valid(ctx: CaseContext, client: CheckedClient, command: str, session: SessionHandle | None) -> None:
    used: list[str] = []
    # The live session the examples use; replaced when it was closed (a generated close) or nears its
    # deadline, since most examples are errors, which are not activity (a short idle timeout is allowed).
    live_session = [session]

    @seed(ctx.config.seed)
    @_settings(ctx, _per_command(ctx))
    @given(live=st.booleans() if session else st.just(False), data=st.data())
    def check(live: bool, data: st.DataObject) -> None:
        current = live_session[0]
        if live and current is not None:
            current = live_session[0] = ctx.keep_alive(current, client)
        pair = (current.session_id, current.token) if live and current else None
        message = data.draw(valid_requests(command, pair, check=ctx.validator))
        if pair is not None:
            # Ids repeat across examples; on one live session a repeat is a retry or an id reuse (RTY-3),
            # not what this case checks. A unique prefix keeps the id within 1..128 characters.
            used.append(message["id"])
            message = {**message, "id": f"{len(used)}~{message['id']}"[:128]}
        exchange = client.send(message)  # schema, echo and allowed-code checks: the context's
        reply = exchange.reply
        code = reply["error"]["code"] if reply["status"] == "error" else None
        if command == "hello":
            allowed: set[str | None] = {None}
        elif command == "session.create":
            allowed = {None, "LimitExceeded"}
        elif live:
            allowed = {None} | _LIVE_SESSION_ERRORS
        else:
            allowed = {"SessionNotFound"}  # a generated session id was never issued
        if code not in allowed and exchange.notes.get(EXPIRED_NOTE):
            return  # the live session's deadline passed under this example: the spec's answer, not a fault
        expect_true(code in allowed, sorted(str(a or "success") for a in allowed), code or "success",
                    "ERR-1", f"{command}: a schema-valid request got {code or 'success'}", path="$.status")

    check()


@case("generated.invalid-requests", "schema-violating requests get the demanded error and the target keeps serving",
      sends="mutations of valid requests: dropped/unknown/ill-typed members, 1.0 for integers, null for optional"
            " members, wrong versions, near-miss command names",
      requirements=["ENV-1", "ENV-2", "VER-1", "VER-3", "VER-6", "CMP-1", "CMP-4", "CMP-6", "ENV-5", "ENV-6",
                    "ERR-3", "TRN-14"],
      tags=["generated", "hypothesis", "robustness"], budget_s=60)
def invalid_requests_case(ctx: CaseContext) -> None:
    client = ctx.client()
    for command in commands(ctx.registry, ctx.capabilities):
        # A fresh session per command: the mutations are refused before any session is looked at (P1-P5),
        # and are not activity, so a long run would let one session expire under a short idle timeout.
        session = ctx.new_session(client) if ctx.registry.commands[command].session_scoped else None
        _check_invalid(ctx, client, command, (session.session_id, session.token) if session else None)
        if session is not None:
            if session.seconds_left() > 1.0:
                # Nothing above changed the session (ERR-3), checked while it surely still lives.
                expect_alive(ctx, session, revision=0, requirement="ERR-3")
            else:
                ctx.note(f"{command}: the session's deadline was too near to check it was unchanged (ERR-3)")
    expect_alive(ctx, requirement="TRN-14")


def _check_invalid(ctx: CaseContext, client: CheckedClient, command: str, pair: tuple[str, str] | None) -> None:
    # First every mutation kind of one fixed valid request, so no kind depends on the seed (the first
    # derandomised example, unshrunk: shrinking it would cost seconds per command)...
    fixed = find(valid_requests(command, pair, check=ctx.validator), lambda _m: True,
                 settings=settings(database=None, max_examples=1, phases=[Phase.generate], derandomize=True))
    for bad in every_mutation(fixed, ctx.validator):
        expect_error(client.send(bad.message), bad.expected_code, bad.requirement, reason=bad.expected_reason)
    # ...then random ones, which vary the valid request they start from.
    @seed(ctx.config.seed)
    @_settings(ctx, _per_command(ctx))
    @given(invalid_requests(command, pair, check=ctx.validator))
    def check(bad: Any) -> None:
        exchange = client.send(bad.message)  # echo rules (ENV-5, ENV-6) are checked by the context
        expect_error(exchange, bad.expected_code, bad.requirement, reason=bad.expected_reason)

    check()


def _budget(ctx: CaseContext, restarts: bool) -> Budget:
    examples = ctx.config.examples
    # Shrinking a failure may cost up to three examples per example of the budget (--examples 50: 150).
    shrink = max(30, 3 * examples)
    if restarts:
        return Budget(examples=max(2, examples // 12), steps=12, restarts=True, shrink_examples=shrink)
    return Budget(examples=max(3, examples // 2), steps=15, restarts=False, shrink_examples=shrink)


# What the stateful machine exercises; every requirement the model may cite is declared too, so each of its
# findings names a requirement of the case (never one it does not declare).
_STATEFUL_REQUIREMENTS = sorted({
    "CRE-1", "CRE-2", "RES-1", "RES-2", "RES-4", "VAL-1", "VAL-3", "SNP-1", "SNP-2", "SNP-4", "SNP-5", "SNP-6",
    "CLS-1", "CLS-2", "EVL-1", "EVL-2", "EVL-3", "INS-1", "INS-2", "INS-3", "INS-4", "LIF-1", "LIF-2", "SEC-2",
    "SEC-3", "SEC-4", "SEC-7", "CON-2", "CON-4", "RTY-1", "RTY-2", "RTY-3", "RTY-11", "ERR-1", "ERR-3",
    *MODEL_REQUIREMENTS,
})
_RESTART_REQUIREMENTS = sorted({"PER-1", "PER-2", "PER-3", "PER-4", "PER-5", "PER-7", "RES-3", "RES-5", "RTY-6",
                                *_STATEFUL_REQUIREMENTS})


def _run_stateful(ctx: CaseContext, restarts: bool) -> None:
    budget = _budget(ctx, restarts)
    recorder = differential.Recorder() if differential.enabled(ctx) else None
    try:
        run_machine(ctx, budget, recorder)
    except CaseFailed:
        raise
    if recorder is not None:
        differential.compare(ctx, recorder)


@case("stateful.sessions", "random multi-client session sequences behave as the protocol model predicts",
      sends="create/resume/validate/snapshot (with stale expected_revision)/close/evaluate/inspect, wrong tokens,"
            " unknown ids, retries with repeated ids, over 3 connections",
      requirements=_STATEFUL_REQUIREMENTS, tags=["stateful", "hypothesis", "model"], budget_s=120)
def stateful_sessions(ctx: CaseContext) -> None:
    _run_stateful(ctx, restarts=False)


@case("stateful.time", "session sequences where time passes (past idle/absolute deadlines and retention) and the "
      "target restarts: expiry, purge and retries as the model predicts",
      sends="the stateful sequences with waits past deadlines and tombstone retention, and up to two restarts",
      requirements=sorted({*_RESTART_REQUIREMENTS, "EXP-3", "EXP-5"}),
      tags=["stateful", "hypothesis", "model", "expiry"], needs=[NEED_EXPIRY, NEED_RESTART, NEED_EXCLUSIVE],
      waits={"idle_timeout_s": 2, "tombstone_retention_s": 2}, budget_s=120)
def stateful_time(ctx: CaseContext) -> None:
    idle = ctx.require_expiry("idle_timeout_s", "tombstone_retention_s")
    budget = Budget(examples=max(2, ctx.config.examples // 25), steps=10, restarts=True, max_restarts=2,
                    max_wait_s=min(ctx.config.expiry_budget_s, idle + ctx.limit("tombstone_retention_s") + 2),
                    waits=1)
    run_machine(ctx, budget)


@case("stateful.restarts", "session sequences with a target restart keep durable state, revisions and retries",
      sends="the stateful sequences with one target restart (SIGKILL) in between",
      requirements=_RESTART_REQUIREMENTS,
      tags=["stateful", "hypothesis", "model", "persistence"], needs=[NEED_RESTART, NEED_EXCLUSIVE], budget_s=180)
def stateful_restarts(ctx: CaseContext) -> None:
    _run_stateful(ctx, restarts=True)
