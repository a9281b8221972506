"""Small request helpers shared by the case modules: one call, checked for success, result returned.

They exist so a case reads as "send this, expect that"; they must never hide an expectation the case
would want to state itself (for errors, cases call `expect_error` directly).
"""

from __future__ import annotations

from typing import Any

from stui_protocol_kit.conformance.case import CaseSkipped
from stui_protocol_kit.conformance.context import CaseContext, CheckedClient, SessionHandle
from stui_protocol_kit.conformance.verifiers import expect_equal, expect_success, json_equal
from stui_protocol_kit.protocol.client import Exchange

SESSION_COMMANDS = ("session.resume", "session.validate", "session.snapshot", "session.close", "evaluate", "inspect")

# Minimal valid parameters (besides session_id and token) for each session-scoped command.
EXTRA_PARAMS: dict[str, dict[str, Any]] = {
    "session.resume": {}, "session.validate": {}, "session.snapshot": {"state": {"preferences": {"k": 1}}},
    "session.close": {}, "evaluate": {"code": "1 + 1"}, "inspect": {"expression": "1 + 1"},
}

EMPTY_STATE = {"workspace": {"variables": {}}, "objects": {}, "inspector": {}, "preferences": {}}

# A syntactically valid session id / token that no server issued (shapes from common.json).
UNKNOWN_SESSION_ID = "AAAAAAAAAAAAAAAAAAAAAA-unknown"
WRONG_TOKEN = "W" * 43


def expect_retry_reply(ctx: CaseContext, first: Exchange, again: Exchange, requirement: str, what: str) -> None:
    """A retry got the original reply - judged only when the retry surely arrived inside the retry window:
    from sending the original to receiving the retry's reply is an upper bound of what the server measured.
    A retry that may have come later may be executed again (spec 10.2), so the case cannot judge it."""
    if json_equal(first.reply, again.reply):
        return
    window = ctx.limit("retry_window_s")
    span = again.received_at - first.sent_at
    if span >= window:
        raise CaseSkipped(f"the retry's reply came {span:.2f}s after the original was sent, not surely inside the "
                          f"target's retry_window_s of {window:g}s on this machine; run the target with a longer "
                          "retry window to check it")
    expect_equal(first.reply, again.reply, requirement, what, path="$")


def ok(ctx: CaseContext, command: str, params: dict[str, Any], requirement: str | None = None,
       client: CheckedClient | None = None, **kw: Any) -> dict[str, Any]:
    return expect_success((client or ctx.default).call(command, params, **kw), command, requirement)


def resume(ctx: CaseContext, s: SessionHandle, requirement: str | None = None,
           client: CheckedClient | None = None) -> dict[str, Any]:
    return ok(ctx, "session.resume", s.params(), requirement, client)


def validate(ctx: CaseContext, s: SessionHandle, requirement: str | None = None,
             client: CheckedClient | None = None) -> dict[str, Any]:
    return ok(ctx, "session.validate", s.params(), requirement, client)


def snapshot(ctx: CaseContext, s: SessionHandle, requirement: str | None = None, client: CheckedClient | None = None,
             **params: Any) -> dict[str, Any]:
    result = ok(ctx, "session.snapshot", s.params(**params), requirement, client)
    s.revision = result["revision"]
    return result


def evaluate(ctx: CaseContext, s: SessionHandle, code: str, requirement: str | None = None,
             client: CheckedClient | None = None) -> dict[str, Any]:
    return ok(ctx, "evaluate", s.params(code=code), requirement, client)


def command_params(command: str, s: SessionHandle | None = None, session_id: str | None = None,
                   token: str | None = None) -> dict[str, Any]:
    """Valid parameters for a session-scoped command, with the given (or the session's) id and token."""
    return {"session_id": session_id or (s.session_id if s else UNKNOWN_SESSION_ID),
            "token": token or (s.token if s else WRONG_TOKEN), **EXTRA_PARAMS[command]}


def command_needs(command: str) -> tuple[str, ...]:
    return (command,) if command in ("evaluate", "inspect") else ()


def nested(depth: int) -> Any:
    """A JSON value of exactly `depth` levels of objects ({} is depth 1)."""
    value: Any = {}
    for _ in range(depth - 1):
        value = {"a": value}
    return value
