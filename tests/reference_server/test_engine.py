"""Engine units: every command and error path, driven without sockets on the in-memory store with a
fake clock."""

from __future__ import annotations

import json
import logging

import pytest
from rs_harness import EngineHarness, error_code, request

from stui_protocol_kit.protocol.facts import PROTOCOL_VERSION, Capability
from stui_protocol_kit.protocol.validation import validator
from stui_protocol_kit.reference_server.config import ServerConfig
from stui_protocol_kit.reference_server.engine import Engine

SESSION_COMMANDS = {
    "session.resume": {},
    "session.validate": {},
    "session.snapshot": {"state": {"preferences": {"theme": "dark"}}},
    "session.close": {},
    "evaluate": {"code": "1 + 2"},
    "inspect": {"expression": "3"},
}
OTHER_TOKEN = "A" * 43
UNKNOWN_ID = "Z" * 22


def test_hello_announces_capabilities_and_integer_limits(harness: EngineHarness) -> None:
    reply = harness.call("hello")
    result = reply["result"]
    assert result["protocol_versions"] == [PROTOCOL_VERSION]
    assert sorted(result["capabilities"]) == sorted(c.value for c in Capability)  # it serves all v1 defines
    assert result["limits"]["idle_timeout_s"] == 60
    assert all(type(v) is int for v in result["limits"].values())
    assert not validator().check_response(reply)


def test_create_returns_random_id_and_token_and_revision_zero(harness: EngineHarness, clock) -> None:
    reply = harness.call("session.create", {"client_id": "c"})
    result = reply["result"]
    assert len(result["session_id"]) == 22 and len(result["token"]) == 43
    assert result["revision"] == 0
    assert result["expires_at"] == "2027-01-15T08:01:00.000Z"  # created + min(idle 60, absolute 600)
    other = harness.create("c")
    assert other["session_id"] != result["session_id"] and other["token"] != result["token"]


def test_new_session_state_is_empty_document(harness: EngineHarness) -> None:
    auth = harness.create()
    result = harness.call("session.resume", auth)["result"]
    assert result["state"] == {"workspace": {"variables": {}}, "objects": {}, "inspector": {}, "preferences": {}}
    assert result["source"] == "live" and result["revision"] == 0 and "fallback" not in result


@pytest.mark.parametrize("command", sorted(SESSION_COMMANDS))
def test_unknown_session_id_answers_session_not_found(harness: EngineHarness, command: str) -> None:
    reply = harness.call(command, {"session_id": UNKNOWN_ID, "token": OTHER_TOKEN, **SESSION_COMMANDS[command]},
                         rid="unknown-1")
    assert error_code(reply) == "SessionNotFound"
    assert reply["command"] == command and reply["id"] == "unknown-1"


@pytest.mark.parametrize("command", sorted(SESSION_COMMANDS))
def test_wrong_token_answers_invalid_token_and_changes_nothing(harness: EngineHarness, clock, command: str) -> None:
    auth = harness.create()
    before = harness.call("session.resume", auth)["result"]
    clock.advance(5)
    reply = harness.call(command, {**auth, "token": OTHER_TOKEN, **SESSION_COMMANDS[command]})
    assert error_code(reply) == "InvalidToken"
    assert "details" not in reply["error"] or reply["error"]["details"] == {}
    after = harness.call("session.validate", auth)["result"]
    assert after["revision"] == before["revision"]
    assert after["last_active_at"] == "2027-01-15T08:00:00.000Z"  # the wrong-token request was not activity


@pytest.mark.parametrize("command", sorted(SESSION_COMMANDS))
def test_closed_session_answers_session_closed_with_closed_at(harness: EngineHarness, clock, command: str) -> None:
    auth = harness.create()
    clock.advance(1)
    assert harness.call("session.close", auth)["result"] == {"session_id": auth["session_id"], "closed": True}
    clock.advance(1)
    reply = harness.call(command, {**auth, **SESSION_COMMANDS[command]})
    assert error_code(reply) == "SessionClosed"
    assert reply["error"]["details"]["closed_at"] == "2027-01-15T08:00:01.000Z"


@pytest.mark.parametrize("command", sorted(SESSION_COMMANDS))
def test_idle_session_answers_session_expired_at_its_deadline(harness: EngineHarness, clock, command: str) -> None:
    auth = harness.create()
    clock.advance(60)  # exactly at expires_at
    reply = harness.call(command, {**auth, **SESSION_COMMANDS[command]})
    assert error_code(reply) == "SessionExpired"
    assert reply["error"]["details"]["expired_at"] == "2027-01-15T08:01:00.000Z"


def test_activity_moves_idle_deadline_but_errors_do_not(harness: EngineHarness, clock) -> None:
    auth = harness.create()
    clock.advance(50)
    assert harness.call("evaluate", {**auth, "code": "1"})["status"] == "success"
    clock.advance(5)
    assert error_code(harness.call("evaluate", {**auth, "code": "1 +"})) == "EvaluationError"
    clock.advance(50)  # 55 s after the last success, 105 s after create
    reply = harness.call("session.validate", auth)
    assert reply["result"]["last_active_at"] == "2027-01-15T08:00:50.000Z"
    assert reply["result"]["expires_at"] == "2027-01-15T08:02:45.000Z"
    clock.advance(60)
    assert error_code(harness.call("session.validate", auth)) == "SessionExpired"


def test_absolute_timeout_expires_a_busy_session(harness: EngineHarness, clock) -> None:
    auth = harness.create()
    for _ in range(20):
        clock.advance(30)
        if harness.call("session.validate", auth)["status"] == "error":
            break
    reply = harness.call("session.validate", auth)
    assert error_code(reply) == "SessionExpired"
    assert reply["error"]["details"]["expired_at"] == "2027-01-15T08:10:00.000Z"  # created + 600


def test_closed_takes_precedence_over_expired_and_token_over_both(harness: EngineHarness, clock) -> None:
    auth = harness.create()
    harness.call("session.close", auth)
    clock.advance(100)
    assert error_code(harness.call("session.validate", auth)) == "SessionClosed"
    assert error_code(harness.call("session.validate", {**auth, "token": OTHER_TOKEN})) == "InvalidToken"


def test_schema_errors_come_before_session_checks(harness: EngineHarness) -> None:
    reply = harness.call("session.validate", {"session_id": UNKNOWN_ID, "token": "short"})
    assert error_code(reply) == "InvalidRequest" and reply["error"]["details"]["reason"] == "schema"


def test_tombstone_answers_until_retention_then_not_found(harness: EngineHarness, clock) -> None:
    closed, expired = harness.create(), harness.create()
    harness.call("session.close", closed)  # t=0; retention is 120 s
    clock.advance(61)
    assert error_code(harness.call("session.validate", expired)) == "SessionExpired"  # expired at t=60
    clock.advance(58)  # t=119
    assert error_code(harness.call("session.validate", closed)) == "SessionClosed"
    clock.advance(2)  # t=121
    assert error_code(harness.call("session.validate", closed)) == "SessionNotFound"
    assert error_code(harness.call("session.validate", expired)) == "SessionExpired"
    clock.advance(60)  # t=181
    assert error_code(harness.call("session.validate", expired)) == "SessionNotFound"
    harness.engine.tick()
    assert harness.store.load_session(closed["session_id"]) is None
    assert harness.store.load_session(expired["session_id"]) is None


def test_tick_purges_tombstones_from_storage(harness: EngineHarness, clock) -> None:
    auth = harness.create()
    harness.call("session.close", auth)
    clock.advance(121)
    harness.engine.tick()
    assert harness.store.session_count() == 0
    assert auth["session_id"] not in harness.engine.sessions.live


def test_snapshot_revisions_increase_and_expected_revision_conflicts(harness: EngineHarness) -> None:
    auth = harness.create()
    assert harness.call("session.snapshot", {**auth, "expected_revision": 0})["result"]["revision"] == 1
    assert harness.call("session.snapshot", auth)["result"]["revision"] == 2
    reply = harness.call("session.snapshot", {**auth, "expected_revision": 1, "state": {"inspector": {"x": 1}}})
    assert error_code(reply) == "RevisionConflict"
    assert reply["error"]["details"] == {"current_revision": 2, "expected_revision": 1}
    assert harness.call("session.snapshot", {**auth, "expected_revision": 2})["result"]["revision"] == 3
    state = harness.call("session.resume", auth)["result"]["state"]
    assert state["inspector"] == {}  # the conflicting snapshot stored nothing


def test_snapshot_replaces_given_client_parts_and_keeps_the_rest(harness: EngineHarness) -> None:
    auth = harness.create()
    harness.call("session.snapshot", {**auth, "state": {"inspector": {"x": 1.5, "n": None}, "preferences": {"a": [1]}}})
    harness.call("session.snapshot", {**auth, "state": {"preferences": {"b": 2}}})
    state = harness.call("session.resume", auth)["result"]["state"]
    assert state["inspector"] == {"x": 1.5, "n": None} and state["preferences"] == {"b": 2}


def test_snapshot_state_with_server_owned_part_is_invalid(harness: EngineHarness) -> None:
    auth = harness.create()
    reply = harness.call("session.snapshot", {**auth, "state": {"workspace": {"variables": {}}}})
    assert error_code(reply) == "InvalidRequest" and reply["error"]["details"]["reason"] == "schema"


def test_evaluate_binds_variables_visible_to_later_requests_and_resume(harness: EngineHarness) -> None:
    auth = harness.create()
    assert harness.call("evaluate", {**auth, "code": "x := 6 * 7. x"})["result"] == {
        "print_string": "42", "class": "SmallInteger"}
    assert harness.call("evaluate", {**auth, "code": "x + 1"}, peer="peer-b")["result"]["print_string"] == "43"
    assert harness.call("evaluate", {**auth, "code": "s := 'it''s' , ' ok'"})["result"] == {
        "print_string": "'it''s ok'", "class": "ByteString"}
    variables = harness.call("session.resume", auth)["result"]["state"]["workspace"]["variables"]
    assert variables == {"x": {"class": "SmallInteger", "print_string": "42"},
                         "s": {"class": "ByteString", "print_string": "'it''s ok'"}}


def test_evaluation_error_has_position_and_leaves_workspace_unchanged(harness: EngineHarness) -> None:
    auth = harness.create()
    reply = harness.call("evaluate", {**auth, "code": "y := 1. 1 +"})
    assert error_code(reply) == "EvaluationError"
    assert reply["error"]["details"]["position"] == 12
    assert harness.call("session.resume", auth)["result"]["state"]["workspace"]["variables"] == {}


def test_inspect_registers_objects_and_answers_object_not_found(harness: EngineHarness) -> None:
    auth, other = harness.create(), harness.create()
    first = harness.call("inspect", {**auth, "expression": "'a' , 'b'"})["result"]
    assert first["class"] == "ByteString" and first["print_string"] == "'ab'"
    again = harness.call("inspect", {**auth, "object_id": first["object_id"]})["result"]
    assert again == first
    second = harness.call("inspect", {**auth, "expression": "z := 5"})["result"]
    assert second["object_id"] != first["object_id"]
    state = harness.call("session.resume", auth)["result"]["state"]
    assert state["objects"][first["object_id"]] == {"class": "ByteString", "print_string": "'ab'"}
    assert "z" in state["workspace"]["variables"]
    reply = harness.call("inspect", {**other, "object_id": first["object_id"]})
    assert error_code(reply) == "ObjectNotFound" and reply["error"]["details"] == {"object_id": first["object_id"]}
    assert error_code(harness.call("inspect", {**auth, "expression": "1", "object_id": "o1"})) == "InvalidRequest"


def test_sessions_of_one_client_do_not_share_variables(harness: EngineHarness) -> None:
    a, b = harness.create(), harness.create()
    harness.call("evaluate", {**a, "code": "x := 1"})
    harness.call("evaluate", {**b, "code": "x := 2"})
    assert harness.call("evaluate", {**a, "code": "x"})["result"]["print_string"] == "1"
    assert harness.call("evaluate", {**b, "code": "x"})["result"]["print_string"] == "2"


def test_retried_snapshot_returns_original_reply_without_new_revision(harness: EngineHarness, clock) -> None:
    auth = harness.create()
    first = harness.call("session.snapshot", auth, rid="snap-1")
    clock.advance(5)
    again = harness.call("session.snapshot", auth, rid="snap-1", peer="peer-b")
    assert again == first  # same timestamp, same revision
    assert harness.call("session.snapshot", auth)["result"]["revision"] == 2


def test_retry_does_not_execute_evaluate_twice(harness: EngineHarness) -> None:
    auth = harness.create()
    harness.call("evaluate", {**auth, "code": "n := 0"})
    harness.call("evaluate", {**auth, "code": "n := n + 1"}, rid="inc")
    harness.call("evaluate", {**auth, "code": "n := n + 1"}, rid="inc")
    assert harness.call("evaluate", {**auth, "code": "n"})["result"]["print_string"] == "1"


def test_reused_id_with_different_parameters_is_refused(harness: EngineHarness) -> None:
    auth = harness.create()
    original = harness.call("evaluate", {**auth, "code": "1"}, rid="same")
    reply = harness.call("evaluate", {**auth, "code": "2"}, rid="same")
    assert error_code(reply) == "InvalidRequest" and reply["error"]["details"]["reason"] == "id_reused"
    assert harness.call("evaluate", {**auth, "code": "1"}, rid="same") == original  # entry unchanged
    assert error_code(harness.call("session.validate", auth, rid="same")) == "InvalidRequest"


def test_retried_close_gets_success_and_other_requests_get_closed(harness: EngineHarness) -> None:
    auth = harness.create()
    first = harness.call("session.close", auth, rid="close-1")
    assert harness.call("session.close", auth, rid="close-1") == first
    assert error_code(harness.call("session.close", auth, rid="close-2")) == "SessionClosed"


def test_retry_cache_forgets_after_window(harness: EngineHarness, clock) -> None:
    auth = harness.create()
    harness.call("evaluate", {**auth, "code": "n := 1"}, rid="w")
    clock.advance(31)
    harness.engine.tick()
    reply = harness.call("evaluate", {**auth, "code": "n := n + 1"}, rid="w")
    assert reply["result"]["print_string"] == "2"  # executed as a new request


def test_repeated_create_is_a_new_session_that_counts(harness: EngineHarness) -> None:
    """RTY-11: no create is answered from a cache, so each repeat is a new session (and counts)."""
    replies = [harness.call("session.create", {"client_id": "limited"}, rid="c1", peer="same") for _ in range(3)]
    assert [r["status"] for r in replies] == ["success"] * 3
    assert len({r["result"]["session_id"] for r in replies}) == 3
    assert len({r["result"]["token"] for r in replies}) == 3
    fourth = harness.call("session.create", {"client_id": "limited"}, rid="c1", peer="same")
    assert error_code(fourth) == "LimitExceeded"


def test_per_client_limit_counts_only_active_sessions(harness: EngineHarness, clock) -> None:
    sessions = [harness.create("busy") for _ in range(3)]
    reply = harness.call("session.create", {"client_id": "busy"})
    assert error_code(reply) == "LimitExceeded"
    assert reply["error"]["details"] == {"limit": "max_sessions_per_client", "value": 3}
    assert harness.call("session.create", {"client_id": "someone-else"})["status"] == "success"
    harness.call("session.close", sessions[0])
    assert harness.call("session.create", {"client_id": "busy"})["status"] == "success"
    clock.advance(61)  # all expired
    assert harness.call("session.create", {"client_id": "busy"})["status"] == "success"


def test_per_client_limit_holds_across_restart(harness: EngineHarness) -> None:
    for _ in range(3):
        harness.create("busy")
    harness.restart()
    assert error_code(harness.call("session.create", {"client_id": "busy"})) == "LimitExceeded"


def test_validate_reports_previous_activity_and_attached_clients(harness: EngineHarness, clock) -> None:
    auth = harness.create(peer="peer-a")
    harness.call("session.resume", auth, peer="peer-a")  # peer-a attaches with its first request on it
    clock.advance(3)
    harness.call("evaluate", {**auth, "code": "1"}, peer="peer-b")
    clock.advance(2)
    result = harness.call("session.validate", auth, peer="peer-c")["result"]
    assert result["last_active_at"] == "2027-01-15T08:00:03.000Z"
    assert result["attached_clients"] == 3
    harness.engine.peer_disconnected("peer-b")
    assert harness.call("session.validate", auth, peer="peer-c")["result"]["attached_clients"] == 2
    clock.advance(59)  # peer-a idle for 64 s: no longer attached
    assert harness.call("session.validate", auth, peer="peer-c")["result"]["attached_clients"] == 1


def test_restart_restores_snapshot_state_and_bindings(harness: EngineHarness) -> None:
    auth = harness.create()
    harness.call("evaluate", {**auth, "code": "x := 20"})
    obj = harness.call("inspect", {**auth, "expression": "'kept'"})["result"]["object_id"]
    harness.call("session.snapshot", {**auth, "state": {"preferences": {"p": 0.25}}})
    harness.call("evaluate", {**auth, "code": "x := 99. lost := 1"})  # not snapshotted
    harness.restart()
    result = harness.call("session.resume", auth)["result"]
    assert result["source"] == "durable" and result["revision"] == 1 and "fallback" not in result
    assert result["state"]["workspace"]["variables"] == {"x": {"class": "SmallInteger", "print_string": "20"}}
    assert result["state"]["preferences"] == {"p": 0.25}
    assert harness.call("evaluate", {**auth, "code": "x + 1"})["result"]["print_string"] == "21"
    assert harness.call("inspect", {**auth, "object_id": obj})["result"]["print_string"] == "'kept'"
    assert harness.call("inspect", {**auth, "expression": "1"})["result"]["object_id"] != obj
    assert harness.call("session.resume", auth)["result"]["source"] == "live"


def test_commands_after_restart_load_the_session_without_resume(harness: EngineHarness) -> None:
    auth = harness.create()
    harness.call("evaluate", {**auth, "code": "x := 5"})
    harness.call("session.snapshot", auth)
    harness.restart()
    assert harness.call("evaluate", {**auth, "code": "x * 2"})["result"]["print_string"] == "10"
    assert harness.call("session.snapshot", {**auth, "expected_revision": 1})["result"]["revision"] == 2


def test_close_survives_restart(harness: EngineHarness) -> None:
    auth = harness.create()
    harness.call("session.close", auth)
    harness.crash_restart()
    assert error_code(harness.call("session.validate", auth)) == "SessionClosed"


def test_retried_snapshot_after_crash_returns_original_reply(harness: EngineHarness, clock) -> None:
    auth = harness.create()
    first = harness.call("session.snapshot", auth, rid="lost-reply")
    harness.crash_restart()
    clock.advance(2)
    assert harness.call("session.snapshot", auth, rid="lost-reply") == first
    assert harness.call("session.snapshot", auth)["result"]["revision"] == 2


def test_restart_never_expires_a_session_before_its_promised_deadline(harness: EngineHarness, clock) -> None:
    auth = harness.create()
    clock.advance(50)
    promised = harness.call("session.validate", auth)["result"]["expires_at"]  # activity not flushed
    harness.crash_restart()
    clock.advance(20)  # 70 s after create, 20 s after the last (lost) activity
    harness.engine.tick()
    reply = harness.call("session.validate", auth)
    assert reply["status"] == "success" and reply["result"]["expires_at"] >= promised


def test_token_is_never_logged(harness: EngineHarness, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="stui")
    auth = harness.create()
    for command, extra in SESSION_COMMANDS.items():
        if command != "session.close":
            harness.call(command, {**auth, **extra})
    harness.call("session.validate", {**auth, "token": auth["token"][:-1] + "x"})
    harness.call("inspect", {**auth, "expression": "1", "object_id": "o1"})
    harness.call("session.close", auth)
    harness.engine.peer_disconnected("peer-a")
    text = caplog.text
    # The engine logs attach/detach (the per-request line is the transport's: test_sockets.py).
    assert f"attach session={auth['session_id'][:8]}" in text and "reason=disconnect" in text
    assert auth["token"] not in text and auth["session_id"] not in text


def test_schema_violations_never_quote_the_token(harness: EngineHarness) -> None:
    auth = harness.create()
    reply = harness.call("inspect", {**auth, "expression": "1", "object_id": "o1"})
    assert error_code(reply) == "InvalidRequest"
    assert auth["token"] not in json.dumps(reply)
    bad = "ab$cd-secret-token-value"
    reply = harness.call("session.validate", {"session_id": auth["session_id"], "token": bad})
    assert bad not in json.dumps(reply)


@pytest.mark.parametrize(
    ("frames", "code", "reason"),
    [
        ([b"{}", b"{}"], "InvalidRequest", "frames"),
        ([], "InvalidRequest", "frames"),
        ([b"\xff\xfe{}"], "InvalidRequest", "encoding"),
        ([b"{not json"], "InvalidRequest", "json"),
        ([b""], "InvalidRequest", "json"),
        ([b'{"id": "a", "id": "b"}'], "InvalidRequest", "json"),
        ([b"[" * 40 + b"]" * 40], "InvalidRequest", "nesting_depth"),
        ([b"[1, 2]"], "InvalidRequest", "not_object"),
        ([b'"text"'], "InvalidRequest", "not_object"),
        ([b" " * 1_048_577], "PayloadTooLarge", None),
        ([b"{}", b" " * 1_048_576], "PayloadTooLarge", None),
    ],
)
def test_malformed_body_gets_error_with_null_echo_and_changes_nothing(
    harness: EngineHarness, frames: list[bytes], code: str, reason: str | None,
) -> None:
    auth = harness.create()
    harness.call("evaluate", {**auth, "code": "x := 1"})
    reply = harness.raw(frames)
    assert reply["id"] is None and reply["command"] is None and error_code(reply) == code
    if reason:
        assert reply["error"]["details"]["reason"] == reason
    else:
        assert reply["error"]["details"]["max_message_bytes"] == 1_048_576
    assert not validator().check_response(reply)
    result = harness.call("session.resume", auth)["result"]
    assert result["revision"] == 0 and list(result["state"]["workspace"]["variables"]) == ["x"]


def test_envelope_problems_map_to_version_schema_and_unknown_command(harness: EngineHarness) -> None:
    reply = harness.send({"version": "2.0"})
    assert error_code(reply) == "UnsupportedVersion"
    assert reply["error"]["details"]["supported_versions"] == [PROTOCOL_VERSION]
    reply = harness.send({"id": "x", "version": "1.0", "command": "hello", "parameters": {}, "extra": 1})
    assert error_code(reply) == "InvalidRequest" and reply["id"] == "x" and reply["command"] == "hello"
    reply = harness.send(request("session.fly", {}))
    assert error_code(reply) == "UnknownCommand" and reply["command"] == "session.fly"
    assert "evaluate" in reply["error"]["details"]["supported_commands"]
    auth = harness.create()
    reply = harness.call("session.snapshot", {**auth, "expected_revision": 1.0})
    assert error_code(reply) == "InvalidRequest"
    assert reply["error"]["details"]["violations"][0]["path"] == "$.parameters.expected_revision"


class _BrokenValidateEngine(Engine):
    """The engine with one bug, injected by the test: session.validate's revision is a string."""

    broken = True

    def _reply(self, request_id, command, session_id, now, result):
        if command == "session.validate" and self.broken:
            result = {**result, "revision": "one"}
        return super()._reply(request_id, command, session_id, now, result)


def test_strict_mode_turns_a_schema_invalid_reply_into_internal_error(config, clock, caplog) -> None:
    h = EngineHarness(None, config, clock, engine_class=_BrokenValidateEngine)
    auth = h.create()
    reply = h.call("session.validate", auth)
    assert error_code(reply) == "InternalError"
    incident = reply["error"]["details"]["incident_id"]
    assert isinstance(incident, str) and len(incident) >= 8  # from the injected random source
    assert f"strict: schema-invalid reply suppressed incident={incident}" in caplog.text
    assert h.engine.strict_violations == 1
    h.engine.broken = False  # type: ignore[attr-defined]
    assert h.call("session.validate", auth)["status"] == "success"
    assert h.engine.strict_violations == 1


def test_engine_without_strict_sends_replies_unchecked(clock) -> None:
    h = EngineHarness(None, ServerConfig(), clock, engine_class=_BrokenValidateEngine)
    auth = h.create()
    assert h.call("session.validate", auth)["result"]["revision"] == "one"
    assert h.engine.strict_violations == 0
    h.engine.close()


@pytest.mark.parametrize("shape", ["list", "object", "number", "short", "short-list", "short-number", "long-invalid",
                                   "suffixed"])
def test_token_of_any_type_is_never_echoed_in_an_error(harness: EngineHarness, shape: str) -> None:
    auth = harness.create()
    token = auth["token"]
    sent, secret = {
        "list": ([token], token),
        "object": ({"value": token}, token),
        "number": (12345678901234567890, "12345678901234567890"),
        "short": ("s3cr", "s3cr"),
        "short-list": (["s3cr"], "s3cr"),
        "short-number": (4711, "4711"),
        "long-invalid": ("ab$cd-secret-token-value", "ab$cd-secret-token-value"),
        "suffixed": (token + "!", token),
    }[shape]
    reply = harness.call("session.validate", {"session_id": auth["session_id"], "token": sent})
    assert error_code(reply) == "InvalidRequest"
    assert secret not in json.dumps(reply)
