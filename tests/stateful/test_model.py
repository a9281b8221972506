"""Unit tests of the protocol model: what it expects of a correct server, driven by hand-made replies."""

from __future__ import annotations

from typing import Any

import pytest

from stui_protocol_kit.conformance.stateful.model import OutsideSubset, ProtocolModel, SubsetError, evaluate_subset

LIMITS = {"idle_timeout_s": 100, "absolute_timeout_s": 1000, "retry_window_s": 60, "max_sessions_per_client": 2,
          "tombstone_retention_s": 100}
CAPS = frozenset({"evaluate", "inspect", "retry.durable"})
SID, TOKEN = "s" * 22, "t" * 43


def req(command: str, rid: str = "r1", **params: Any) -> dict[str, Any]:
    return {"id": rid, "version": "1.0", "command": command, "parameters": params}


def ok(command: str, rid: str = "r1", ts: str = "2026-01-01T00:00:00.000Z", **result: Any) -> dict[str, Any]:
    return {"id": rid, "version": "1.0", "command": command, "status": "success", "result": result, "timestamp": ts}


def err(command: str, code: str, rid: str = "r1", **details: Any) -> dict[str, Any]:
    return {"id": rid, "version": "1.0", "command": command, "status": "error",
            "error": {"code": code, "message": "x", "details": details}, "timestamp": "2026-01-01T00:00:00.000Z"}


def created(model: ProtocolModel, sid: str = SID, token: str = TOKEN, client: str = "c") -> None:
    outcome = model.observe(req("session.create", "c-" + sid, client_id=client),
                            ok("session.create", "c-" + sid, session_id=sid, token=token, revision=0), 0.0)
    assert outcome.problems == [] and outcome.new_session is not None


def scoped(**extra: Any) -> dict[str, Any]:
    return {"session_id": SID, "token": TOKEN, **extra}


@pytest.fixture
def model() -> ProtocolModel:
    made = ProtocolModel(LIMITS, CAPS)
    created(made)
    return made


def test_subset_evaluates_left_to_right_without_precedence() -> None:
    value, assigned = evaluate_subset("a := 2 + 3 * 4. a - 1", {})
    assert (value.cls, value.print_string) == ("SmallInteger", "19")
    assert assigned["a"].print_string == "20"
    assert evaluate_subset("'it''s' , 'x'", {})[0].print_string == "'it''sx'"
    with pytest.raises(SubsetError):
        evaluate_subset("nope + 1", {})
    with pytest.raises(SubsetError):
        evaluate_subset("1 + 'x'", {})
    with pytest.raises(OutsideSubset):
        evaluate_subset("3 factorial", {})


def test_snapshot_adds_exactly_one_and_a_stale_expected_revision_conflicts(model: ProtocolModel) -> None:
    assert model.observe(req("session.snapshot", "a", **scoped()), ok("session.snapshot", "a", session_id=SID,
                                                                     revision=1), 1).problems == []
    bad = model.observe(req("session.snapshot", "b", **scoped()), ok("session.snapshot", "b", session_id=SID,
                                                                    revision=3), 2)
    assert [(p.requirement, p.path, p.expected, p.actual) for p in bad.problems] == [
        ("SNP-1", "$.result.revision", 2, 3)]
    stale = req("session.snapshot", "c", **scoped(expected_revision=0))
    # the model followed the (wrong) reply above, so the session is at revision 2 now
    assert model.observe(stale, err("session.snapshot", "RevisionConflict", "c", current_revision=2,
                                    expected_revision=0), 3).problems == []
    conflict_ignored = model.observe(stale | {"id": "d"}, ok("session.snapshot", "d", session_id=SID, revision=3), 4)
    assert [(p.requirement, p.path) for p in conflict_ignored.problems] == [("SNP-4", "$.status")]


def test_wrong_token_and_unknown_session_precede_everything(model: ProtocolModel) -> None:
    wrong = req("session.validate", "w", session_id=SID, token="x" * 43)
    assert model.observe(wrong, err("session.validate", "InvalidToken", "w"), 1).problems == []
    accepted = model.observe(wrong, ok("session.validate", "w", session_id=SID, revision=0), 1)
    assert [(p.requirement, p.expected, p.actual) for p in accepted.problems] == [("SEC-2", "InvalidToken", "success")]
    unknown = req("session.validate", "u", session_id="u" * 22, token=TOKEN)
    assert model.observe(unknown, err("session.validate", "SessionNotFound", "u"), 1).problems == []


def test_a_retry_gets_the_original_reply_verbatim_and_a_reused_id_is_invalid(model: ProtocolModel) -> None:
    first = ok("session.snapshot", "r", session_id=SID, revision=1)
    assert model.observe(req("session.snapshot", "r", **scoped()), first, 1).problems == []
    assert model.observe(req("session.snapshot", "r", **scoped()), first, 2).problems == []
    executed_again = ok("session.snapshot", "r", session_id=SID, revision=2)
    again = model.observe(req("session.snapshot", "r", **scoped()), executed_again, 3)
    assert [p.requirement for p in again.problems] == ["RTY-2"]
    reused = req("session.validate", "r", **scoped())
    assert model.observe(reused, err("session.validate", "InvalidRequest", "r", reason="id_reused"), 4).problems == []


def test_after_close_every_command_is_session_closed_but_retries_hit_the_cache(model: ProtocolModel) -> None:
    close = req("session.close", "k", **scoped())
    closed = ok("session.close", "k", session_id=SID, closed=True)
    assert model.observe(close, closed, 1).problems == []
    after = model.observe(req("session.resume", "z", **scoped()), err("session.resume", "SessionClosed", "z"), 2)
    assert after.problems == []
    assert model.observe(close, closed, 3).problems == []  # a retry of the close itself


def test_workspace_is_per_session_and_resume_shows_it(model: ProtocolModel) -> None:
    assert model.observe(req("evaluate", "e1", **scoped(code="a := 40 + 2")),
                         ok("evaluate", "e1", print_string="42", **{"class": "SmallInteger"}), 1).problems == []
    created(model, "o" * 22, "p" * 43)
    other = req("evaluate", "e2", session_id="o" * 22, token="p" * 43, code="a + 1")
    leak = model.observe(other, ok("evaluate", "e2", print_string="43", **{"class": "SmallInteger"}), 2)
    assert [(p.requirement, p.expected, p.actual) for p in leak.problems] == [("CON-4", "EvaluationError", "success")]
    state = {"workspace": {"variables": {"a": {"class": "SmallInteger", "print_string": "42"}}}, "objects": {},
             "inspector": {}, "preferences": {}}
    resumed = ok("session.resume", "e3", session_id=SID, revision=0, state=state, source="live")
    assert model.observe(req("session.resume", "e3", **scoped()), resumed, 3).problems == []


def test_restart_falls_back_to_the_last_snapshot(model: ProtocolModel) -> None:
    model.observe(req("evaluate", "e1", **scoped(code="a := 1")),
                  ok("evaluate", "e1", print_string="1", **{"class": "SmallInteger"}), 1)
    model.restart()
    empty = {"workspace": {"variables": {}}, "objects": {}, "inspector": {}, "preferences": {}}
    resumed = ok("session.resume", "x", session_id=SID, revision=0, state=empty, source="durable")
    assert model.observe(req("session.resume", "x", **scoped()), resumed, 2).problems == []


def test_the_per_client_session_limit_is_predicted() -> None:
    model = ProtocolModel(LIMITS, CAPS)
    created(model, "a" * 22)
    created(model, "b" * 22)
    third = model.observe(req("session.create", "c3", client_id="c"), err("session.create", "LimitExceeded", "c3",
                                                                          limit="max_sessions_per_client", value=2), 1)
    assert third.problems == []


def test_the_model_cites_only_the_requirements_it_declares() -> None:
    from stui_protocol_kit.conformance.case import cited_in_code
    from stui_protocol_kit.conformance.stateful.model import MODEL_REQUIREMENTS
    from stui_protocol_kit.protocol.requirements import requirements

    cited = set()
    for member in vars(ProtocolModel).values():
        if callable(member):
            cited |= cited_in_code(member)
    assert cited, "the model's checks cite requirements"
    assert cited <= set(MODEL_REQUIREMENTS), sorted(cited - set(MODEL_REQUIREMENTS))
    assert set(MODEL_REQUIREMENTS) <= set(requirements())
