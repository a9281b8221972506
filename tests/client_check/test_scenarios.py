"""Every client-check scenario can pass and can fail: for each, a scripted client that does what
spec/16-clients.md asks and one that does not (real ZeroMQ sockets, the kit's server in a thread).

The kit's timings are shortened (reply held 0.6 s, clients time out after 0.2 s, restart pause 0.1 s).
"""

from __future__ import annotations

import json
import time

import pytest
from cc_clients import GaveUp, Link, Session, code, create, hello, request

from stui_protocol_kit.conformance.case import Outcome

T = 0.2  # the scripted clients' timeout; the kit holds slow replies 0.6 s


def opened(link: Link, client_id: str = "scenario") -> Session:
    hello(link)
    return create(link, client_id)


def outcome(results, scenario: str):
    result = results[f"scenario.{scenario}"]
    return result.outcome, [p.requirement for p in result.problems]


# -- slow-reply and dropped-reply ------------------------------------------------------------------------


@pytest.mark.parametrize("scenario", ["slow-reply", "dropped-reply"])
@pytest.mark.parametrize("socket_kind", ["dealer", "req"])
def test_held_reply_passes_with_a_retry_under_the_same_id(kit, scenario, socket_kind) -> None:
    running = kit([scenario])
    link = Link(running.endpoint, socket_kind, timeout_s=T)
    try:
        session = opened(link)
        reply = link.call("session.snapshot", session.params(expected_revision=0))
        assert reply["status"] == "success" and reply["result"]["revision"] == 1  # executed once
        assert link.call("session.close", session.params())["status"] == "success"
    finally:
        link.close()
    results = running.finish()
    assert outcome(results, scenario) == (Outcome.PASSED, [])
    retried_on = "a new connection" if socket_kind == "req" else "connection c1"
    assert retried_on in results[f"scenario.{scenario}"].notes[-1]


@pytest.mark.parametrize("scenario", ["slow-reply", "dropped-reply"])
def test_held_reply_fails_on_a_retry_under_a_new_id(kit, scenario) -> None:
    running = kit([scenario])
    link = Link(running.endpoint, timeout_s=T, broken={"new-id-retry"})
    try:
        session = opened(link)
        reply = link.call("session.snapshot", session.params())
        assert reply["result"]["revision"] == 2  # the server executed it twice: what CLT-8 is about
    finally:
        link.close()
    assert outcome(running.finish(), scenario) == (Outcome.FAILED, ["CLT-8"])


@pytest.mark.parametrize("scenario", ["slow-reply", "dropped-reply"])
def test_held_reply_fails_on_a_req_socket_that_sends_again_before_its_reply(kit, scenario) -> None:
    running = kit([scenario])
    link = Link(running.endpoint, "req", timeout_s=T, broken={"relaxed-req"})
    try:
        session = opened(link)
        link.call("session.validate", session.params())
    finally:
        link.close()
    results = running.finish()
    assert outcome(results, scenario) == (Outcome.FAILED, ["CLT-5"])
    assert results["client.req-lockstep"].outcome is Outcome.FAILED


def test_slow_reply_fails_when_the_client_waits_longer_than_the_delay_without_retrying(kit) -> None:
    running = kit(["slow-reply"])
    link = Link(running.endpoint, timeout_s=3.0, broken={"no-retry"})
    try:
        session = opened(link)
        reply = link.call("session.validate", session.params())  # arrives late, after 0.6 s
        assert reply["status"] == "success"
    finally:
        link.close()
    results = running.finish()
    assert outcome(results, "slow-reply") == (Outcome.FAILED, ["CLT-8"])
    assert "no retry within --reply-delay" in results["scenario.slow-reply"].problems[0].message


def test_dropped_reply_fails_when_the_client_gives_up_the_session(kit) -> None:
    running = kit(["dropped-reply"])
    link = Link(running.endpoint, timeout_s=T, broken={"no-retry"})
    try:
        session = opened(link)
        with pytest.raises(GaveUp):
            link.call("session.validate", session.params())
        create(link, "scenario")  # a new session instead of going on with the old one
    finally:
        link.close()
    assert outcome(running.finish(), "dropped-reply") == (Outcome.FAILED, ["CLT-9"])


def test_dropped_reply_fails_when_the_client_never_retries(kit) -> None:
    running = kit(["dropped-reply"])
    link = Link(running.endpoint, timeout_s=T, broken={"no-retry"})
    try:
        session = opened(link)
        with pytest.raises(GaveUp):
            link.call("evaluate", session.params(code="1"))
        link.call("session.validate", session.params())  # goes on, but the evaluate was never retried
    finally:
        link.close()
    assert outcome(running.finish(), "dropped-reply") == (Outcome.FAILED, ["CLT-8"])


def test_a_late_original_reply_reaches_a_dealer_client_that_must_drop_it(kit) -> None:
    running = kit(["slow-reply"], reply_delay_s=0.4)
    link = Link(running.endpoint, timeout_s=T)
    try:
        session = opened(link)
        first = request("session.validate", session.params())
        link.send_raw([json.dumps(first).encode()])
        assert link.receive(T) is None
        link.send_raw([json.dumps(first).encode()])  # the retry
        retry_reply = link.receive(1.0)
        late = link.receive(1.0)
    finally:
        link.close()
    assert retry_reply["id"] == first["id"] and late["id"] == first["id"]  # the same id twice: match by id
    assert outcome(running.finish(), "slow-reply") == (Outcome.PASSED, [])


# -- server-restart ------------------------------------------------------------------------------------


@pytest.mark.parametrize("socket_kind", ["dealer", "req"])
def test_server_restart_passes_when_the_client_goes_on_with_its_session(kit, socket_kind) -> None:
    running = kit(["server-restart"])
    link = Link(running.endpoint, socket_kind, timeout_s=0.3, attempts=10)
    try:
        session = opened(link)
        link.call("session.snapshot", session.params(state={"preferences": {"kept": True}}))
        lost = link.call("session.validate", session.params())  # lost, then retried after the restart
        assert lost["status"] == "success"
        link.reconnect()
        resumed = link.call("session.resume", session.params())
        assert resumed["result"]["state"]["preferences"] == {"kept": True}
    finally:
        link.close()
    results = running.finish()
    assert outcome(results, "server-restart") == (Outcome.PASSED, [])
    assert running.server.stats.restarts == 1


def test_server_restart_resume_answers_durable(kit) -> None:
    running = kit(["server-restart"])
    link = Link(running.endpoint, timeout_s=0.3, attempts=1)
    try:
        session = opened(link)
        with pytest.raises(GaveUp):
            link.call("evaluate", session.params(code="1"))
        time.sleep(0.3)
        link.reconnect()
        link.attempts = 10
        resumed = link.call("session.resume", session.params())
    finally:
        link.close()
    assert resumed["result"]["source"] == "durable"
    results = running.finish()
    assert outcome(results, "server-restart") == (Outcome.PASSED, [])
    assert any('source: "durable"' in note for note in results["scenario.server-restart"].notes)


def test_server_restart_fails_when_the_client_creates_a_new_session(kit) -> None:
    running = kit(["server-restart"])
    link = Link(running.endpoint, timeout_s=0.3, attempts=1)
    try:
        session = opened(link)
        with pytest.raises(GaveUp):
            link.call("session.validate", session.params())
        link.attempts = 10
        create(link, "scenario")
    finally:
        link.close()
    assert outcome(running.finish(), "server-restart") == (Outcome.FAILED, ["CLT-9"])


# -- errors: unknown code, revision conflict, limit ------------------------------------------------------


def test_unknown_error_code_passes_when_the_session_is_kept(kit) -> None:
    running = kit(["unknown-error-code"])
    link = Link(running.endpoint)
    try:
        session = opened(link)
        reply = link.call("session.validate", session.params())
        assert code(reply) == "Overloaded" and reply["error"]["details"] == {"retry_after_ms": 100}
        assert link.call("session.validate", session.params())["status"] == "success"
    finally:
        link.close()
    assert outcome(running.finish(), "unknown-error-code") == (Outcome.PASSED, [])


def test_unknown_error_code_fails_when_the_client_abandons_the_session(kit) -> None:
    running = kit(["unknown-error-code"])
    link = Link(running.endpoint)
    try:
        session = opened(link)
        link.call("evaluate", session.params(code="1"))
        create(link, "scenario")
    finally:
        link.close()
    assert outcome(running.finish(), "unknown-error-code") == (Outcome.FAILED, ["CLT-9"])


def test_unknown_error_code_fails_when_the_client_stops(kit) -> None:
    running = kit(["unknown-error-code"])
    link = Link(running.endpoint)
    try:
        session = opened(link)
        link.call("evaluate", session.params(code="1"))
    finally:
        link.close()
    assert outcome(running.finish(), "unknown-error-code") == (Outcome.FAILED, ["CLT-11"])


def test_revision_conflict_passes_when_the_client_takes_the_current_revision(kit) -> None:
    running = kit(["revision-conflict"])
    link = Link(running.endpoint)
    try:
        session = opened(link)
        reply = link.call("session.snapshot", session.params(expected_revision=0))
        assert code(reply) == "RevisionConflict"
        current = reply["error"]["details"]["current_revision"]
        assert current == 1
        again = link.call("session.snapshot", session.params(expected_revision=current))
        assert again["result"]["revision"] == 2
    finally:
        link.close()
    assert outcome(running.finish(), "revision-conflict") == (Outcome.PASSED, [])


def test_revision_conflict_fails_on_the_stale_revision_again(kit) -> None:
    running = kit(["revision-conflict"])
    link = Link(running.endpoint)
    try:
        session = opened(link)
        link.call("session.snapshot", session.params(expected_revision=0))
        link.call("session.snapshot", session.params(expected_revision=0))
    finally:
        link.close()
    assert outcome(running.finish(), "revision-conflict") == (Outcome.FAILED, ["CLT-10"])


def test_create_limit_passes_when_the_client_carries_on(kit) -> None:
    running = kit(["create-limit"])
    link = Link(running.endpoint)
    try:
        hello(link)
        refused = link.call("session.create", {"client_id": "limit"})
        assert refused["error"]["details"] == {"limit": "max_sessions_per_client", "value": 16}
        create(link, "limit")
    finally:
        link.close()
    assert outcome(running.finish(), "create-limit") == (Outcome.PASSED, [])


def test_create_limit_fails_when_the_client_stops(kit) -> None:
    running = kit(["create-limit"])
    link = Link(running.endpoint)
    try:
        hello(link)
        link.call("session.create", {"client_id": "limit"})
    finally:
        link.close()
    assert outcome(running.finish(), "create-limit") == (Outcome.FAILED, ["CLT-11"])


# -- sessions that end: InvalidToken, SessionExpired, SessionNotFound -----------------------------------


ENDING = [("invalid-token", "session.validate", "InvalidToken"),
          ("resume-expired", "session.resume", "SessionExpired"),
          ("resume-not-found", "session.resume", "SessionNotFound")]


@pytest.mark.parametrize(("scenario", "command", "error"), ENDING)
def test_an_ended_session_passes_when_the_client_starts_a_new_one(kit, scenario, command, error) -> None:
    running = kit([scenario])
    link = Link(running.endpoint)
    try:
        session = opened(link)
        assert code(link.call(command, session.params())) == error
        fresh = create(link, "scenario")
        assert link.call("session.close", fresh.params())["status"] == "success"
    finally:
        link.close()
    assert outcome(running.finish(), scenario) == (Outcome.PASSED, [])


@pytest.mark.parametrize(("scenario", "command", "error"), ENDING)
def test_an_ended_session_fails_when_the_client_goes_on_using_it(kit, scenario, command, error) -> None:
    running = kit([scenario], end_on_close=False)
    link = Link(running.endpoint)
    try:
        session = opened(link)
        assert code(link.call(command, session.params())) == error
        time.sleep(0.3)
        again = link.call("evaluate", session.params(code="1"))
        assert code(again) == error  # what the kit made up stays true
    finally:
        link.close()
    results = running.finish()
    assert outcome(results, scenario) == (Outcome.FAILED, ["CLT-7"])
    assert results["client.ended-sessions"].outcome is Outcome.FAILED


# -- newer servers: unknown members, unsupported version --------------------------------------------------


def test_unknown_members_pass_when_the_client_ignores_them(kit) -> None:
    running = kit(["unknown-members"])
    link = Link(running.endpoint)
    try:
        result = hello(link)
        assert "stream.v2" in result["capabilities"] and result["limits"]["max_future_widgets"] == 7
        create(link, "lenient")
    finally:
        link.close()
    assert outcome(running.finish(), "unknown-members") == (Outcome.PASSED, [])


def test_unknown_members_fail_when_a_strict_client_gives_up(kit) -> None:
    running = kit(["unknown-members"])
    link = Link(running.endpoint)
    try:
        result = hello(link)
        known = {"protocol_versions", "server", "capabilities", "limits"}
        assert set(result) - known  # a strict decoder refuses the reply here and the client stops
    finally:
        link.close()
    assert outcome(running.finish(), "unknown-members") == (Outcome.FAILED, ["CLT-11"])


@pytest.mark.parametrize("then_hello", [False, True])
def test_unsupported_version_passes_when_the_client_stops_or_asks_hello_again(kit, then_hello) -> None:
    running = kit(["unsupported-version"])
    link = Link(running.endpoint)
    try:
        refused = link.call("hello")
        assert refused["error"]["details"]["supported_versions"] == ["2.0"]
        if then_hello:
            hello(link)
            create(link, "versions")
    finally:
        link.close()
    assert outcome(running.finish(), "unsupported-version") == (Outcome.PASSED, [])


def test_unsupported_version_fails_when_the_client_goes_on_in_that_version(kit) -> None:
    running = kit(["unsupported-version"])
    link = Link(running.endpoint)
    try:
        link.call("hello")
        link.call("session.create", {"client_id": "versions"})
    finally:
        link.close()
    results = running.finish()
    assert outcome(results, "unsupported-version") == (Outcome.FAILED, ["CLT-3"])
    assert results["client.version"].outcome is Outcome.FAILED


# -- how scenarios are run -------------------------------------------------------------------------------


def test_a_scenario_the_client_never_triggers_is_not_exercised_never_passed(kit) -> None:
    from stui_protocol_kit.conformance.client_check.report import client_check_verdict
    from stui_protocol_kit.conformance.verdicts import requirement_matrix
    from stui_protocol_kit.protocol.requirements import requirements

    running = kit(["resume-expired"])
    link = Link(running.endpoint)
    try:
        session = opened(link)
        link.call("session.close", session.params())
    finally:
        link.close()
    results = running.finish()
    result = results["scenario.resume-expired"]
    assert result.outcome is Outcome.SKIPPED and result.reason.startswith("not exercised")
    verdict = client_check_verdict(list(results.values()), requirement_matrix(results.values(), requirements()), False)
    assert (verdict.verdict.value, verdict.exit_code) == ("INCOMPLETE", 3)


def test_scenarios_run_one_at_a_time_in_the_order_given(kit) -> None:
    running = kit(["unknown-error-code", "resume-expired"])
    link = Link(running.endpoint)
    try:
        session = opened(link)
        assert code(link.call("session.resume", session.params())) == "Overloaded"  # the first takes it
        assert link.call("session.resume", session.params())["status"] == "success"  # concludes it
        assert code(link.call("session.resume", session.params())) == "SessionExpired"  # now the second
        create(link, "scenario")
    finally:
        link.close()
    results = running.finish()
    assert outcome(results, "unknown-error-code") == (Outcome.PASSED, [])
    assert outcome(results, "resume-expired") == (Outcome.PASSED, [])


def test_a_retry_of_a_request_sent_before_the_session_ended_gets_its_original_reply(kit) -> None:
    running = kit(["resume-expired"])
    link = Link(running.endpoint)
    try:
        session = opened(link)
        snapshot = request("session.snapshot", session.params())
        original = link.send(snapshot)
        assert code(link.call("session.resume", session.params())) == "SessionExpired"
        time.sleep(0.3)
        assert link.send(snapshot) == original  # answered from the engine's retry cache, not "expired"
        create(link, "scenario")
    finally:
        link.close()
    results = running.finish()
    assert outcome(results, "resume-expired") == (Outcome.PASSED, [])
    assert results["client.ended-sessions"].outcome is Outcome.PASSED


# -- a session the kit never knew --------------------------------------------------------------------------

STALE = {"session_id": "3f1c2a9e-0000-4000-8000-000000000000", "token": "A" * 43}  # from an earlier run's file


@pytest.mark.parametrize("scenario", ["unknown-error-code", "server-restart", "dropped-reply", "slow-reply"])
def test_a_session_keeping_scenario_waits_for_a_session_the_kit_holds(kit, scenario) -> None:
    """A correct client whose session file names a session this run never created gets SessionNotFound,
    creates a new session and goes on: the scenario starts on the new session, never on the stale one
    (it used to start there and fail the client with CLT-11)."""
    running = kit([scenario])
    link = Link(running.endpoint, timeout_s=0.3, attempts=10)
    try:
        hello(link)
        assert code(link.call("session.resume", dict(STALE))) == "SessionNotFound"
        session = create(link, "scenario")
        first = link.call("session.validate", session.params())
        if scenario == "unknown-error-code":
            assert code(first) == "Overloaded"
            first = link.call("session.validate", session.params())
        assert first["status"] == "success"
        if scenario == "server-restart":
            link.reconnect()
        assert link.call("session.resume", session.params())["status"] == "success"
    finally:
        link.close()
    results = running.finish()
    assert outcome(results, scenario) == (Outcome.PASSED, [])
    assert "session.validate" in results[f"scenario.{scenario}"].notes[0]
