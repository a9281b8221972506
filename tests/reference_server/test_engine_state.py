"""The engine's session state, on the in-memory store with a fake clock: object ids never reused
(INS-1, INS-4), a session's state bounded so it can always be sent back (EVL-8, CON-6), nesting at the
cap, bindings computed once, resume's source after a restart (RES-2, RES-3, RES-5), and id collisions."""

from __future__ import annotations

import json

import pytest
from rs_harness import EngineHarness, FakeClock, error_code, request

from stui_protocol_kit.reference_server.config import MAX_NESTING_DEPTH_CAP, ServerConfig

# -- object ids are never reused, also after a restart (INS-1, INS-4) ----------------------------------


@pytest.mark.parametrize("restart", ["restart", "crash_restart"])
def test_object_ids_are_never_reused_after_a_restart(harness: EngineHarness, restart: str) -> None:
    auth = harness.create()
    lost = harness.call("inspect", {**auth, "expression": "'registered, never snapshotted'"})["result"]
    getattr(harness, restart)()
    issued = {lost["object_id"]}
    for _ in range(3):
        new = harness.call("inspect", {**auth, "expression": "42"})["result"]["object_id"]
        assert new not in issued
        issued.add(new)
    reply = harness.call("inspect", {**auth, "object_id": lost["object_id"]})
    assert error_code(reply) == "ObjectNotFound" and reply["error"]["details"] == {"object_id": lost["object_id"]}


def test_object_ids_restored_from_a_revision_stay_and_new_ones_differ(harness: EngineHarness) -> None:
    auth = harness.create()
    kept = harness.call("inspect", {**auth, "expression": "'kept'"})["result"]["object_id"]
    harness.call("session.snapshot", auth)
    lost = harness.call("inspect", {**auth, "expression": "'lost'"})["result"]["object_id"]
    harness.crash_restart()
    assert harness.call("inspect", {**auth, "object_id": kept})["result"]["print_string"] == "'kept'"
    new = harness.call("inspect", {**auth, "expression": "'new'"})["result"]["object_id"]
    assert new not in (kept, lost)
    assert error_code(harness.call("inspect", {**auth, "object_id": lost})) == "ObjectNotFound"


# -- a session's state stays small enough to be sent back (EVL-8, CON-6) -------------------------------


@pytest.fixture
def small(clock):
    """An engine announcing the smallest max_message_bytes the spec allows."""
    harness = EngineHarness(None, ServerConfig(max_message_bytes=65536, strict=True), clock)
    yield harness
    harness.engine.close()
    assert harness.engine.strict_violations == 0


def test_workspace_growth_is_refused_before_a_resume_reply_would_exceed_max_message_bytes(
    small: EngineHarness,
) -> None:
    harness = small
    limit = harness.config.max_message_bytes
    auth = harness.create()
    harness.call("session.snapshot", {**auth, "state": {"preferences": {"pad": "p" * 20_000}}})
    assert harness.call("evaluate", {**auth, "code": "a := '" + "a" * 30_000 + "'"})["status"] == "success"
    before = harness.call("session.resume", auth)["result"]["state"]
    reply = harness.call("evaluate", {**auth, "code": "b := a , a"})
    assert error_code(reply) == "EvaluationError" and "max_message_bytes" in reply["error"]["details"]["reason"]
    reply = harness.call("inspect", {**auth, "expression": "a , 'more'"})
    assert error_code(reply) == "EvaluationError"
    resume = harness.engine.handle([json.dumps(request("session.resume", auth)).encode()], "peer-a")
    assert json.loads(resume)["result"]["state"] == before  # nothing changed
    assert len(resume) <= limit
    # Rebinding a name frees what it held.
    assert harness.call("evaluate", {**auth, "code": "a := 1. b := 2"})["status"] == "success"


def test_evaluate_result_too_large_for_a_reply_is_an_evaluation_error(small: EngineHarness) -> None:
    auth = small.create()
    code = "a := '" + "x" * 30_000 + "'. a , a , a"  # a 90_000-character result, not kept
    reply = small.call("evaluate", {**auth, "code": code})
    assert error_code(reply) == "EvaluationError" and "does not fit" in reply["error"]["details"]["reason"]
    assert small.call("session.resume", auth)["result"]["state"]["workspace"]["variables"] == {}


def test_body_nested_exactly_at_the_cap_is_accepted_stored_and_sent_back() -> None:
    config = ServerConfig(max_nesting_depth=MAX_NESTING_DEPTH_CAP, strict=True)
    harness = EngineHarness(None, config, FakeClock())
    auth = harness.create()
    inner = MAX_NESTING_DEPTH_CAP - 4  # message, parameters, state, preferences
    nested = "[" * inner + "]" * inner
    head = json.dumps({"id": "deep", "version": "1.0", "command": "session.snapshot",
                       "parameters": {**auth, "state": {"preferences": {"x": "HERE"}}}})
    body = head.replace('"HERE"', nested)
    assert harness.raw([body.encode()])["status"] == "success"
    too_deep = body.replace(nested, "[" + nested + "]")
    reply = harness.raw([too_deep.encode()])
    assert error_code(reply) == "InvalidRequest" and reply["error"]["details"] == {"reason": "nesting_depth"}
    harness.restart()
    result = harness.call("session.resume", auth)["result"]
    assert json.dumps(result["state"]["preferences"]["x"]).count("[") == inner
    harness.engine.close()
    assert harness.engine.strict_violations == 0


# -- state restored and reused ---------------------------------------------------------------------------


def test_resume_and_snapshot_reuse_each_bindings_print_string(
    harness: EngineHarness, monkeypatch: pytest.MonkeyPatch,
) -> None:
    from stui_protocol_kit.reference_server.evaluator import Value

    auth = harness.create()
    harness.call("evaluate", {**auth, "code": "big := 7 * 7 * 7. s := 'text'"})
    harness.call("inspect", {**auth, "expression": "big"})

    def recomputed(self: Value) -> dict:
        raise AssertionError("a binding was recomputed")

    monkeypatch.setattr(Value, "to_binding", recomputed)
    state = harness.call("session.resume", auth)["result"]["state"]
    assert state["workspace"]["variables"]["big"] == {"class": "SmallInteger", "print_string": "343"}
    assert harness.call("session.snapshot", auth)["status"] == "success"


def test_resume_after_restart_is_durable_only_when_it_loads_the_state(harness: EngineHarness) -> None:
    auth = harness.create()
    harness.restart()
    assert harness.call("session.resume", auth)["result"]["source"] == "durable"
    harness.restart()
    harness.call("session.validate", auth)  # loads the session as resume would (RES-5): now held
    assert harness.call("session.resume", auth)["result"]["source"] == "live"


def test_create_draws_another_id_when_the_store_refuses_one(harness: EngineHarness) -> None:
    first = harness.create()
    ids = iter([first["session_id"], "B" * 22])
    real = harness.engine.random_source
    harness.engine.random_source = lambda n: next(ids) if n == 16 else real(n)
    reply = harness.call("session.create", {"client_id": "again"})
    assert reply["status"] == "success" and reply["result"]["session_id"] == "B" * 22
    assert harness.call("session.validate", first)["status"] == "success"  # the first is untouched

