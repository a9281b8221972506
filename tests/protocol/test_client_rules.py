"""protocol/client_rules.py without sockets: the rules' edge cases, and the same verdicts on a recorded
(redacted) transcript as on live traffic."""

from __future__ import annotations

import json
from typing import Any

from stui_protocol_kit.protocol.client_rules import (
    IN_FLIGHT_GRACE_S,
    ClientRules,
    request_digest,
    token_fingerprint,
)
from stui_protocol_kit.protocol.redaction import redact, redact_token

TOKEN_A = "A" * 43
TOKEN_B = "B" * 43
SID_A = "a" * 22
SID_B = "b" * 22


def body(message: Any) -> list[bytes]:
    return [json.dumps(message).encode()]


def req(command: str, parameters: dict[str, Any], request_id: str = "r1", version: str = "1.0") -> dict[str, Any]:
    return {"id": request_id, "version": version, "command": command, "parameters": parameters}


def ok(command: str, result: dict[str, Any], request_id: str = "r1") -> dict[str, Any]:
    return {"id": request_id, "version": "1.0", "command": command, "status": "success", "result": result,
            "timestamp": "2026-12-02T10:00:00.000Z"}


def err(command: str, code: str, request_id: str = "r1", details: dict[str, Any] | None = None) -> dict[str, Any]:
    error: dict[str, Any] = {"code": code, "message": code}
    if details is not None:
        error["details"] = details
    return {"id": request_id, "version": "1.0", "command": command, "status": "error", "error": error,
            "timestamp": "2026-12-02T10:00:00.000Z"}


class Traffic:
    """Feeds messages to the rules as a server would see them; `redacted=True` as a transcript records them."""

    def __init__(self, redacted: bool = False) -> None:
        self.rules = ClientRules()
        self.redacted = redacted
        self.at = 0.0

    def send(self, message: dict[str, Any], reply: dict[str, Any] | None = None, *, connection: str = "c1",
             socket_type: str = "DEALER", after: float = 0.01) -> list[str]:
        self.at += after
        shown = redact(message) if self.redacted else message
        checked = self.rules.request(connection, body(shown), at=self.at, socket_type=socket_type)
        if reply is not None:
            self.rules.replied(checked, redact(reply) if self.redacted else reply, self.at)
        return [p.requirement for p in checked.problems]

    def open(self, session_id: str = SID_A, token: str = TOKEN_A, connection: str = "c1") -> None:
        self.send(req("hello", {}, "h-" + session_id), ok("hello", {}), connection=connection)
        self.send(req("session.create", {"client_id": "x"}, "c-" + session_id),
                  ok("session.create", {"session_id": session_id, "token": token}), connection=connection)


def scoped(session_id: str = SID_A, token: str = TOKEN_A, **more: Any) -> dict[str, Any]:
    return {"session_id": session_id, "token": token, **more}


def test_equal_as_json_values_for_retries() -> None:
    assert request_digest("e", {"a": 1}) == request_digest("e", {"a": 1.0})
    assert request_digest("e", {"a": True}) != request_digest("e", {"a": 1})
    assert request_digest("e", {"a": 1, "b": 2}) == request_digest("e", {"b": 2, "a": 1})
    assert token_fingerprint(TOKEN_A) == redact_token(TOKEN_A) == token_fingerprint(redact_token(TOKEN_A))


def test_only_hello_may_be_written_in_another_version_and_after_unsupported_version_only_hello() -> None:
    t = Traffic()
    assert t.send(req("hello", {}, "h1", version="2.0"),
                  err("hello", "UnsupportedVersion", "h1", {"supported_versions": ["1.0"]})) == []
    assert t.send(req("hello", {}, "h2"), ok("hello", {"protocol_versions": ["1.0"]}, "h2")) == []
    t = Traffic()
    assert t.send(req("hello", {}, "h1"), err("hello", "UnsupportedVersion", "h1", {"supported_versions": ["2.0"]})) \
        == []
    assert t.send(req("session.create", {"client_id": "x"}, "c1")) == ["CLT-3"]
    assert t.send(req("hello", {}, "h2"), ok("hello", {"protocol_versions": ["1.0"]}, "h2")) == []
    assert t.send(req("session.create", {"client_id": "x"}, "c2")) == []
    assert t.send(req("session.create", {"client_id": "x"}, "c3", version="1.1")) == ["CLT-3"]


def test_an_id_is_judged_per_connection_and_per_session_within_the_retry_window() -> None:
    t = Traffic()
    t.rules.limits["retry_window_s"] = 1
    t.open()
    t.send(req("hello", {}, "h"), connection="c2")
    assert t.send(req("evaluate", scoped(code="1"), "e1")) == []
    assert t.send(req("evaluate", scoped(code="1"), "e1"), connection="c2") == []  # a retry elsewhere
    assert t.send(req("evaluate", scoped(code="2"), "e1"), connection="c2") == ["CLT-4"]
    assert t.send(req("evaluate", scoped(code="3"), "e1"), connection="c3", after=2.0) == ["VER-4"]  # window over


def test_a_req_connection_waits_for_each_reply() -> None:
    t = Traffic()
    t.rules.request("c1", body(req("hello", {}, "h1")), at=0.0, socket_type="REQ")
    second = t.rules.request("c1", body(req("hello", {}, "h2")), at=0.1, socket_type="REQ")
    assert [p.requirement for p in second.problems] == ["CLT-5"]
    t.rules.replied(second, ok("hello", {}, "h2"), 0.2)
    third = t.rules.request("c1", body(req("hello", {}, "h3")), at=0.3, socket_type="REQ")
    assert third.problems == []
    # A DEALER may pipeline.
    t.rules.request("c2", body(req("hello", {}, "h1")), at=0.0, socket_type="DEALER")
    assert t.rules.request("c2", body(req("hello", {}, "h2")), at=0.0, socket_type="DEALER").problems == []


def test_requests_in_flight_when_a_session_ended_are_not_held_against_the_client() -> None:
    t = Traffic()
    t.open()
    t.send(req("session.close", scoped(), "x1"), ok("session.close", {"closed": True}, "x1"))
    assert t.send(req("session.validate", scoped(), "v1"), after=IN_FLIGHT_GRACE_S / 2) == []
    assert t.send(req("session.validate", scoped(), "v2"), after=IN_FLIGHT_GRACE_S * 2) == ["CLT-7"]
    assert t.send(req("session.close", scoped(), "x1")) == []  # a retry of the close


def test_invalid_token_ends_the_session_for_that_token_only() -> None:
    t = Traffic()
    t.open()
    wrong = "W" * 43
    t.send(req("session.validate", scoped(token=wrong), "v1"), err("session.validate", "InvalidToken", "v1"))
    assert t.send(req("session.validate", scoped(), "v2"), after=1.0) == []
    assert t.send(req("session.validate", scoped(token=wrong), "v3")) == ["CLT-7"]


def test_a_malformed_request_teaches_nothing_about_sessions() -> None:
    t = Traffic()
    t.open()
    assert t.send(req("session.validate", {**scoped(), "extra": 1}, "v1"),
                  err("session.validate", "InvalidRequest", "v1", {"reason": "schema"})) == ["CLT-2"]
    assert t.send(req("session.validate", scoped(), "v2"), after=1.0) == []


def live_and_recorded() -> list[Traffic]:
    return [Traffic(), Traffic(redacted=True)]


def test_token_placement_gives_the_same_verdicts_live_and_on_a_redacted_transcript() -> None:
    verdicts = []
    for t in live_and_recorded():
        t.open(SID_A, TOKEN_A)
        t.open(SID_B, TOKEN_B)
        found = [
            t.send(req("session.validate", scoped(), "v1")),  # right token, right session
            t.send(req("session.validate", scoped(SID_B, TOKEN_A), "v2")),  # A's token with B's id
            t.send(req("hello", {"token": TOKEN_A}, "h9")),  # not a session-scoped command
            t.send(req("session.snapshot", scoped(state={"preferences": {"token": TOKEN_B}}), "s1")),
        ]
        verdicts.append([sorted(set(f)) for f in found])
    assert verdicts[0] == verdicts[1]
    assert verdicts[0] == [[], ["CLT-6"], ["CLT-2", "CLT-6"], ["CLT-6"]]


def test_tokens_pasted_into_other_members_are_found_live_and_scrubbed_from_records() -> None:
    t = Traffic()
    t.open()
    checked = t.rules.request("c1", body(req("evaluate", scoped(code=f"'{TOKEN_A}' size"), "e1")), at=1.0)
    assert [(p.requirement, p.path, p.actual) for p in checked.problems] == [
        ("CLT-6", "$.parameters.code", redact_token(TOKEN_A))]
    assert TOKEN_A not in json.dumps(t.rules.scrub(redact(checked.message)))
    assert redact_token(TOKEN_A) in json.dumps(t.rules.scrub(checked.message))


def test_hello_first_is_not_owed_before_a_retry_on_a_new_connection() -> None:
    t = Traffic()
    t.open()
    assert t.send(req("evaluate", scoped(code="1"), "e1")) == []
    assert t.send(req("evaluate", scoped(code="1"), "e1"), connection="c2", socket_type="REQ") == []
    assert t.send(req("evaluate", scoped(code="2"), "e2"), connection="c3") == ["VER-4"]
    t.rules.server_restarted()
    assert t.send(req("evaluate", scoped(code="3"), "e3"), connection="c4") == []  # ZeroMQ reconnected it
