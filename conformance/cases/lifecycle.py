"""Cases for spec 5, the session lifecycle (LIF), and the per-command error paths of spec 4 that
every session-scoped command shares: unknown id, wrong token, use after close.

The per-command cases are generated from the registry's list of session-scoped commands, one case per
(command, situation), so a new command gets them without a new line here. Expiry paths are in
expiry.py (they need the target's clock).
"""

from __future__ import annotations

from stui_protocol_kit.conformance.case import case
from stui_protocol_kit.conformance.cases._helpers import UNKNOWN_SESSION_ID, command_needs, command_params, ok
from stui_protocol_kit.conformance.context import CaseContext
from stui_protocol_kit.conformance.verifiers import expect_equal, expect_error
from stui_protocol_kit.protocol.schemas import registry

SESSION_SCOPED = [c.name for c in registry().commands.values() if c.session_scoped]


def _register(command: str) -> None:
    slug = command.replace("session.", "")
    needs = command_needs(command)

    @case(f"lifecycle.{slug}-unknown-session", f"{command} on an unknown session_id is SessionNotFound",
          sends=f"{command} with a well-formed session_id no server issued", needs=needs,
          requirements=["LIF-4", "ERR-1", "ERR-2"])
    def unknown(ctx: CaseContext) -> None:
        error = expect_error(ctx.call(command, command_params(command)), "SessionNotFound", "LIF-4")
        expect_equal({}, error.get("details", {}), "LIF-4", "details")

    @case(f"lifecycle.{slug}-wrong-token", f"{command} with another session's token is InvalidToken",
          sends=f"create two sessions, {command} on the first with the second's token", needs=needs,
          requirements=["SEC-2", "ERR-1"])
    def wrong_token(ctx: CaseContext) -> None:
        a, b = ctx.new_session(), ctx.new_session()
        expect_error(ctx.call(command, command_params(command, a, token=b.token)), "InvalidToken", "SEC-2")

    @case(f"lifecycle.{slug}-after-close", f"{command} after close is SessionClosed",
          sends=f"create, close, {command}", needs=needs, requirements=["CLS-2", "LIF-2", "LIF-1"])
    def after_close(ctx: CaseContext) -> None:
        s = ctx.new_session()
        ok(ctx, "session.close", s.params())
        expect_error(ctx.call(command, command_params(command, s)), "SessionClosed", "CLS-2")


for _command in SESSION_SCOPED:
    _register(_command)


@case("lifecycle.closed-wrong-token", "a wrong token on a closed session is InvalidToken, not SessionClosed",
      sends="create, close, validate with a wrong token", requirements=["SEC-3", "ERR-1", "LIF-2"])
def closed_wrong_token(ctx: CaseContext) -> None:
    s = ctx.new_session()
    ok(ctx, "session.close", s.params())
    expect_error(ctx.call("session.validate", s.params(token="T" * 43)), "InvalidToken", "SEC-3")


@case("lifecycle.no-revival", "nothing brings a closed session back",
      sends="create, close, resume, snapshot, validate", requirements=["LIF-1"])
def no_revival(ctx: CaseContext) -> None:
    s = ctx.new_session()
    ok(ctx, "session.close", s.params())
    for command in ("session.resume", "session.snapshot", "session.validate"):
        expect_error(ctx.call(command, s.params()), "SessionClosed", "LIF-1")


@case("lifecycle.unknown-id-any-token", "an unknown id is SessionNotFound whatever token is sent",
      sends="validate an unknown id with a real session's token", requirements=["LIF-4", "ERR-1"])
def unknown_any_token(ctx: CaseContext) -> None:
    s = ctx.new_session()
    expect_error(ctx.call("session.validate", {"session_id": UNKNOWN_SESSION_ID, "token": s.token}),
                 "SessionNotFound", "LIF-4")


@case("lifecycle.closed-beats-command-errors", "a closed session answers SessionClosed, not the command's own error "
      "(P6d before P7)",
      sends="create, close; snapshot with a wrong expected_revision, inspect an unknown object, evaluate invalid code",
      requirements=["ERR-1", "LIF-2"])
def closed_beats_command_errors(ctx: CaseContext) -> None:
    s = ctx.new_session()
    ok(ctx, "session.close", s.params())
    sends = [("session.snapshot", {"expected_revision": 99})]
    if "inspect" in ctx.capabilities:
        sends.append(("inspect", {"object_id": "o999999"}))
    if "evaluate" in ctx.capabilities:
        sends.append(("evaluate", {"code": "1 +"}))
    for command, extra in sends:
        expect_error(ctx.call(command, s.params(**extra)), "SessionClosed", "ERR-1")
