"""Every client-check check can fail and can pass: scripted clients on real ZeroMQ sockets against the kit's
server (in a thread of the test process; tests/client_check/test_cli.py runs it as a process).

Each test breaks one rule of spec/16-clients.md and nothing else; the good client breaks none.
"""

from __future__ import annotations

import json
import time

import pytest
from cc_clients import Link, Session, create, hello, new_id, request

from stui_protocol_kit.conformance.case import Outcome


def opened(link: Link, client_id: str = "checks") -> Session:
    hello(link)
    return create(link, client_id)


@pytest.mark.parametrize("socket_kind", ["dealer", "req"])
def test_a_good_client_passes_every_check(kit, socket_kind) -> None:
    running = kit()
    link = Link(running.endpoint, socket_kind)
    try:
        session = opened(link)
        link.call("evaluate", session.params(code="x := 3 + 4"))
        link.call("session.snapshot", session.params(expected_revision=0, state={"preferences": {"a": 1.5}}))
        link.call("session.validate", session.params())
        assert link.call("session.close", session.params())["status"] == "success"
    finally:
        link.close()
    assert running.wait_end(), "the kit did not end when the client closed its only session"
    assert running.server.ended_by == "close"
    results = running.finish()
    outcomes = {case_id: r.outcome for case_id, r in results.items() if case_id.startswith("client.")}
    expected = {case_id: Outcome.PASSED for case_id in outcomes}
    expected["client.ended-sessions"] = Outcome.SKIPPED  # the run ends with the close: nothing after an end
    if socket_kind == "dealer":
        expected["client.req-lockstep"] = Outcome.UNSUPPORTED
    assert outcomes == expected
    assert results["client.ended-sessions"].reason.startswith("not exercised")


def test_framing_fails_on_two_body_frames_and_on_a_body_that_is_not_json(kit) -> None:
    running = kit()
    link = Link(running.endpoint)
    try:
        opened(link)
        link.send_raw([json.dumps(request("hello", {})).encode(), b"{}"])
        assert link.receive(2.0)["error"]["details"]["reason"] == "frames"
        link.send_raw([b'{"id": "x", "version": "1.0", '])
        assert link.receive(2.0)["error"]["details"]["reason"] == "json"
    finally:
        link.close()
    result = running.finish()["client.framing"]
    assert result.outcome is Outcome.FAILED
    assert [(p.requirement, p.rule) for p in result.problems] == [("CLT-1", "frames"), ("CLT-1", "json")]


def test_framing_holds_the_client_to_the_announced_size(kit) -> None:
    running = kit()
    link = Link(running.endpoint)
    try:
        limits = hello(link)["limits"]
        padding = "x" * limits["max_message_bytes"]
        reply = link.call("session.create", {"client_id": padding[:64]}, request_id=new_id())
        assert reply["status"] == "success"
        link.send_raw([json.dumps(request("hello", {"pad": padding})).encode()])
        assert link.receive(2.0)["error"]["code"] == "PayloadTooLarge"
    finally:
        link.close()
    result = running.finish()["client.framing"]
    assert result.outcome is Outcome.FAILED and result.problems[0].actual == "PayloadTooLarge"


def test_schema_fails_on_an_unknown_member_a_null_and_a_float(kit) -> None:
    running = kit()
    link = Link(running.endpoint)
    try:
        session = opened(link)
        link.call("evaluate", {**session.params(code="1"), "timeout": 5})
        link.call("session.snapshot", session.params(expected_revision=None))
        link.call("session.snapshot", session.params(expected_revision=0.0))
        link.call("session.snapshop", session.params())
    finally:
        link.close()
    problems = running.finish()["client.schema"].problems
    assert running.results["client.schema"].outcome is Outcome.FAILED
    paths = [p.path for p in problems]
    assert "$.parameters" in paths or "$.parameters.timeout" in paths
    assert "$.parameters.expected_revision" in paths
    assert "$.command" in paths  # session.snapshop: not a v1 command
    assert {p.requirement for p in problems} == {"CLT-2"}
    assert any("null" in p.message for p in problems) and any("not an integer" in p.message for p in problems)


def test_version_fails_on_a_request_in_a_version_the_server_did_not_announce(kit) -> None:
    running = kit()
    link = Link(running.endpoint)
    try:
        session = opened(link)
        assert link.call("hello", version="2.0")["error"]["code"] == "UnsupportedVersion"  # a hello may ask
        reply = link.send(request("session.validate", session.params(), version="1.1"))
        assert reply["error"]["code"] == "UnsupportedVersion"
    finally:
        link.close()
    result = running.finish()["client.version"]
    assert result.outcome is Outcome.FAILED
    assert [(p.requirement, p.path, p.actual) for p in result.problems] == [("CLT-3", "$.version", "1.1")]


def test_request_ids_fail_on_an_id_reused_for_another_request_on_a_connection_and_on_a_session(kit) -> None:
    running = kit()
    first, second = Link(running.endpoint), Link(running.endpoint)
    try:
        session = opened(first)
        hello(second)
        first.call("evaluate", session.params(code="1"), request_id="same-id")
        first.call("evaluate", session.params(code="1"), request_id="same-id")  # a retry: allowed
        first.call("evaluate", session.params(code="2"), request_id="same-id")  # another request: CLT-4
        second.call("evaluate", session.params(code="3"), request_id="other-id")
        first.call("evaluate", session.params(code="4"), request_id="other-id")  # same session, other connection
    finally:
        first.close()
        second.close()
    result = running.finish()["client.request-ids"]
    assert result.outcome is Outcome.FAILED
    assert [(p.requirement, p.actual) for p in result.problems] == [("CLT-4", "same-id"), ("CLT-4", "other-id")]
    assert "with this session" in result.problems[1].message


def test_request_ids_pass_when_ids_are_reused_only_for_retries(kit) -> None:
    running = kit()
    link = Link(running.endpoint)
    try:
        session = opened(link)
        for _ in range(3):
            link.call("session.snapshot", session.params(state={"preferences": {"x": 1}}), request_id="snap-1")
        link.call("hello", request_id="h")
        link.call("hello", request_id="h")
    finally:
        link.close()
    assert running.finish()["client.request-ids"].outcome is Outcome.PASSED


def test_token_placement_fails_on_a_token_in_another_member_and_with_another_session(kit) -> None:
    running = kit()
    link = Link(running.endpoint)
    try:
        a = opened(link, "tokens")
        b = create(link, "tokens")
        assert link.call("session.validate", {"session_id": b.session_id, "token": a.token})["error"]["code"] \
            == "InvalidToken"
        link.call("session.create", {"client_id": a.token})
        link.call("evaluate", a.params(code=f"'{b.token}'"))
    finally:
        link.close()
    results = running.finish()
    problems = results["client.token-placement"].problems
    assert results["client.token-placement"].outcome is Outcome.FAILED
    assert [p.path for p in problems] == ["$.parameters.token", "$.parameters.client_id", "$.parameters.code"]
    assert all(p.actual.startswith("<redacted:") for p in problems)
    # Nothing the kit recorded or reported holds a token in clear.
    recorded = json.dumps([running.events, [r.problems for r in results.values()],
                           [r.transcript for r in results.values()], list(running.server.exchanges)], default=str)
    assert a.token not in recorded and b.token not in recorded


def test_ended_sessions_fail_on_a_request_after_close_and_pass_on_a_retry(kit) -> None:
    running = kit(end_on_close=False)
    link = Link(running.endpoint)
    try:
        session = opened(link)
        close = request("session.close", session.params())
        assert link.send(close)["status"] == "success"
        time.sleep(0.3)  # longer than the in-flight grace: the client had the reply
        assert link.send(close)["status"] == "success"  # a retry of the close: allowed, the original reply
        assert link.call("session.validate", session.params())["error"]["code"] == "SessionClosed"
        create(link, "after")  # going on with a new session is what the rule asks
    finally:
        link.close()
    result = running.finish()["client.ended-sessions"]
    assert result.outcome is Outcome.FAILED
    assert [(p.requirement, p.actual) for p in result.problems] == [("CLT-7", "session.validate")]


def test_ended_sessions_pass_when_the_client_leaves_an_ended_session_alone(kit) -> None:
    running = kit(end_on_close=False)
    link = Link(running.endpoint)
    try:
        session = opened(link)
        link.call("session.close", session.params())
        time.sleep(0.3)
        other = create(link, "after")
        link.call("session.validate", other.params())
    finally:
        link.close()
    assert running.finish()["client.ended-sessions"].outcome is Outcome.PASSED


def test_hello_first_is_a_should_a_client_without_hello_is_non_strict(kit) -> None:
    running = kit()
    link = Link(running.endpoint)
    try:
        session = create(link, "no-hello")
        link.call("session.close", session.params())
    finally:
        link.close()
    running.wait_end()
    results = running.finish()
    assert results["client.hello-first"].outcome is Outcome.NON_STRICT
    assert results["client.hello-first"].problems[0].requirement == "VER-4"
    assert all(r.outcome is not Outcome.FAILED for r in results.values())
