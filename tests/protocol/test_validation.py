"""The validator's verdicts follow the spec's processing order and name exact paths."""

import copy

import pytest

from stui_protocol_kit.protocol.validation import MessageValidator, validator

SID, TOKEN = "S" * 22, "T" * 43
TS = "2026-11-24T03:00:00.000Z"


@pytest.fixture(scope="module")
def v() -> MessageValidator:
    return validator()


def request(command="session.snapshot", **params):
    return {"id": "r1", "version": "1.0", "command": command, "parameters": params}


def test_valid_snapshot_request_is_accepted(v):
    msg = request(session_id=SID, token=TOKEN, state={"preferences": {"scale": 1.5}}, expected_revision=2)
    assert v.check_request(msg, has_float=True).ok
    assert v.check_request(msg, has_float=False).ok


def test_unsupported_version_is_checked_before_the_envelope(v):
    verdict = v.check_request({"id": "r1", "version": "2.0", "command": "whatever", "extra": 1})
    assert verdict.error_code == "UnsupportedVersion"
    assert verdict.details == {"supported_versions": ["1.0"]}
    assert verdict.id == "r1"


def test_envelope_errors_come_before_unknown_command(v):
    verdict = v.check_request({"id": "r1", "version": "1.0", "command": "nope", "parameters": {}, "x": 1})
    assert verdict.error_code == "InvalidRequest"
    assert verdict.reason == "schema"


def test_unknown_command_suggests_the_near_miss_and_lists_commands(v):
    verdict = v.check_request(request("session.snapshop"))
    assert verdict.error_code == "UnknownCommand"
    assert "session.snapshot" in verdict.message
    assert "session.snapshot" in verdict.details["supported_commands"]


def test_parameter_errors_are_reported_against_the_commands_schema_with_paths(v):
    verdict = v.check_request(request(session_id=SID, tokn=TOKEN))
    assert verdict.error_code == "InvalidRequest"
    paths = {(x.path, x.rule) for x in verdict.violations}
    assert ("$.parameters", "required") in paths
    assert ("$.parameters", "additionalProperties") in paths
    assert not any(x.rule == "oneOf" for x in verdict.violations)


def test_integral_float_for_an_integer_field_is_a_violation(v):
    verdict = v.check_request(request(session_id=SID, token=TOKEN, expected_revision=3.0), has_float=True)
    assert [(x.path, x.rule) for x in verdict.violations] == [("$.parameters.expected_revision", "type")]
    assert "without fraction" in verdict.violations[0].message
    assert verdict.violations[0].requirement == "CMP-6"


def test_violations_cite_the_requirement_they_break(v):
    verdict = v.check_request(request(session_id=SID, token=TOKEN, bogus=1, expected_revision=None))
    assert {(x.path, x.requirement) for x in verdict.violations} == {
        ("$.parameters", "CMP-1"), ("$.parameters.expected_revision", "CMP-4")}
    verdict = v.check_request({"id": "r", "version": "1.0", "command": "hello"})
    assert [x.requirement for x in verdict.violations] == ["ENV-1"]


def test_null_for_an_optional_field_is_a_violation(v):
    verdict = v.check_request(request(session_id=SID, token=TOKEN, expected_revision=None))
    assert verdict.error_code == "InvalidRequest"


def test_echo_rules_drop_invalid_id_and_command(v):
    verdict = v.check_request({"id": 7, "version": "1.0", "command": "Not A Command", "parameters": {}})
    assert (verdict.id, verdict.command) == (None, None)
    verdict = v.check_request({"id": "x" * 129, "version": "1.0", "command": "hello", "parameters": {}})
    assert verdict.id is None and verdict.command == "hello"


def test_non_object_request_is_not_object(v):
    assert v.check_request([1]).reason == "not_object"


def success(command, result):
    return {"id": "r1", "version": "1.0", "command": command, "status": "success", "result": result, "timestamp": TS}


def test_success_is_checked_against_its_commands_result(v):
    ok = success("session.snapshot", {"session_id": SID, "revision": 3, "saved_at": TS})
    assert v.check_response(ok, has_float=False) == []
    bad = copy.deepcopy(ok)
    del bad["result"]["saved_at"]
    assert [(x.path, x.rule) for x in v.check_response(bad)] == [("$.result", "required")]


def test_unknown_result_members_are_allowed_for_forward_compatibility(v):
    ok = success("session.close", {"session_id": SID, "closed": True, "future_field": {"x": 1}})
    assert v.check_response(ok) == []


def test_error_is_checked_against_its_codes_details(v):
    err = {"id": None, "version": "1.0", "command": None, "status": "error", "timestamp": TS,
           "error": {"code": "RevisionConflict", "message": "m", "details": {"current_revision": 4}}}
    assert [(x.path, x.rule) for x in v.check_response(err)] == [("$.error.details", "required")]
    err["error"]["details"]["expected_revision"] = 2
    assert v.check_response(err) == []


def test_invalid_token_reveals_no_details(v):
    err = {"id": "r1", "version": "1.0", "command": "session.resume", "status": "error", "timestamp": TS,
           "error": {"code": "InvalidToken", "message": "m", "details": {"revision": 3}}}
    assert v.check_response(err)


def test_timestamp_without_z_is_a_violation(v):
    ok = success("session.close", {"session_id": SID, "closed": True})
    ok["timestamp"] = "2026-11-24T03:00:00+00:00"
    assert [(x.path, x.requirement) for x in v.check_response(ok)] == [("$.timestamp", "ENV-10")]


def test_direction_is_detected_from_status(v):
    assert v.direction_of({"status": "success"}) == "response"
    assert v.direction_of({"command": "hello"}) == "request"


@pytest.mark.parametrize("field", ["session_id", "token"])
def test_a_trailing_newline_does_not_satisfy_a_pattern(v, field):
    params = {"session_id": SID, "token": TOKEN}
    params[field] += "\n"
    verdict = v.check_request(request("session.validate", **params))
    assert verdict.error_code == "InvalidRequest" and verdict.reason == "schema"


def test_a_command_with_a_trailing_newline_is_not_a_command_name(v):
    verdict = v.check_request({"id": "r", "version": "1.0", "command": "hello\n", "parameters": {}})
    assert verdict.error_code == "InvalidRequest" and verdict.command is None


@pytest.mark.parametrize("token", [[TOKEN], {"t": TOKEN}, 12345678901234])
def test_violations_never_quote_a_token_whatever_its_type(v, token):
    verdict = v.check_request(request("session.validate", session_id=SID, token=token))
    assert verdict.error_code == "InvalidRequest"
    text = repr(verdict.details) + verdict.message
    assert str(TOKEN) not in text and "12345678901234" not in text


def test_a_violation_quoting_the_whole_parameters_hides_the_token(v):
    verdict = v.check_request(request("inspect", session_id=SID, token=TOKEN, expression="1", object_id="o1"))
    assert verdict.error_code == "InvalidRequest"
    assert TOKEN not in repr(verdict.details) and "<redacted>" in repr(verdict.details)


def test_client_documents_are_free_form_so_their_floats_stay_on_the_fast_path(v):
    assert v.requests["session.snapshot"].free_form == {
        ("parameters", "state", "inspector"), ("parameters", "state", "preferences")}
    assert v.successes["session.resume"].free_form == {
        ("result", "state", "inspector"), ("result", "state", "preferences")}


def test_a_message_the_fast_validator_rejects_is_never_accepted(v, monkeypatch):
    kind = v.requests["session.validate"]
    monkeypatch.setattr(type(kind), "violations", lambda self, message: [])  # a rich validator that misses it
    found = kind.check(request("session.validate", session_id=SID), has_float=False)
    assert found and found[0].path == "$.parameters"


@pytest.mark.parametrize("token", ["abc", ["short"], 4711, {"k": "v"}])
def test_short_or_ill_typed_tokens_are_not_quoted_either(v, token):
    verdict = v.check_request(request("session.validate", session_id=SID, token=token))
    text = repr(verdict.details) + verdict.message
    assert repr(token) not in text and "<redacted>" in text
