"""Cases for spec 4.2 `session.create` (CRE)."""

from __future__ import annotations

from datetime import timedelta

from stui_protocol_kit.conformance.case import CaseFailed, case
from stui_protocol_kit.conformance.cases._helpers import EMPTY_STATE, resume
from stui_protocol_kit.conformance.context import CaseContext
from stui_protocol_kit.conformance.verifiers import expect_equal, expect_error, expect_state_equal, expect_true
from stui_protocol_kit.protocol.codec import parse_rfc3339

_MS = timedelta(milliseconds=1)


@case("create.success", "create returns revision 0 and expires_at = created_at + min(idle, absolute)",
      sends="session.create {client_id}", requirements=["CRE-1", "EXP-1"])
def success(ctx: CaseContext) -> None:
    s = ctx.new_session()
    expect_equal(0, s.created["revision"], "CRE-1", "revision")
    span = min(int(ctx.limits["idle_timeout_s"]), int(ctx.limits["absolute_timeout_s"]))
    created, expires = parse_rfc3339(s.created["created_at"]), parse_rfc3339(s.created["expires_at"])
    # Both are truncated to the timestamp precision, so allow one millisecond either way.
    if abs((expires - created) - timedelta(seconds=span)) > _MS:
        raise CaseFailed(f"created_at + {span}s", s.created["expires_at"], "CRE-1",
                         message=f"expires_at {s.created['expires_at']} is not created_at "
                                 f"{s.created['created_at']} + {span}s")


@case("create.distinct-sessions", "every create makes a new session with a new id and token",
      sends="session.create x4 with the same client_id (different request ids)", requirements=["CRE-2"])
def distinct(ctx: CaseContext) -> None:
    cid = ctx.client_id("same")
    limit = int(ctx.limits["max_sessions_per_client"])
    made = [ctx.new_session(client_id=cid) for _ in range(min(4, limit))]
    ids, tokens = {s.session_id for s in made}, {s.token for s in made}
    expect_true(len(ids) == len(made) and len(tokens) == len(made), "distinct ids and tokens",
                f"{len(ids)} ids, {len(tokens)} tokens for {len(made)} creates", "CRE-2")


@case("create.initial-state", "a new session's state is the empty document at revision 0",
      sends="session.create, session.resume", requirements=["CRE-3", "RES-1"])
def initial_state(ctx: CaseContext) -> None:
    s = ctx.new_session()
    result = resume(ctx, s, "CRE-3")
    expect_equal(0, result["revision"], "CRE-3", "revision")
    expect_state_equal(EMPTY_STATE, result["state"], "CRE-3")


@case("create.bad-client-id", "client_id missing, empty, too long or with control characters is rejected",
      sends="session.create with {}, client_id '', 129 chars, 'a\\nb', 42", requirements=["ENV-2"])
def bad_client_id(ctx: CaseContext) -> None:
    for params in ({}, {"client_id": ""}, {"client_id": "c" * 129}, {"client_id": "a\nb"}, {"client_id": 42}):
        expect_error(ctx.call("session.create", params), "InvalidRequest", "ENV-2", reason="schema")
