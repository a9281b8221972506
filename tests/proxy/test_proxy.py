"""The validating proxy over real sockets: transparent (the bytes forwarded are the bytes received, REQ and
DEALER, several clients at once, each a connection of its own upstream), and every check of both
directions can fail - shown with a scripted upstream for exact faults and with the deliberately faulty
reference servers as real processes - while a correct client and server pass untouched.
"""

from __future__ import annotations

import json
import threading
import time

import pytest
import zmq
from cc_clients import Link, create, good_session, hello, request
from conftest import hello_reply

from stui_protocol_kit.conformance.transcript import read_transcript


def raw_socket(endpoint: str, kind: int = zmq.DEALER) -> tuple[zmq.Context, zmq.Socket]:
    context = zmq.Context()
    sock = context.socket(kind)
    sock.setsockopt(zmq.LINGER, 0)
    sock.connect(endpoint)
    return context, sock


def test_the_bytes_forwarded_are_the_bytes_received_both_ways(proxy, scripted) -> None:
    odd_reply = b'{ "status" : "success" ,"id":"x", "command":"hello", "version":"1.0",  "result":{}}\n'
    upstream = scripted(lambda frames: [[*frames[:-1], odd_reply]])
    running = proxy(upstream.endpoint, probe=False)
    odd_request = b'{"version":"1.0",  "id":"x","command":"hello","parameters":{ }}   '
    for kind, expected_frames in ((zmq.DEALER, [odd_request]), (zmq.REQ, [b"", odd_request])):
        context, sock = raw_socket(running.endpoint, kind)
        try:
            sock.send(odd_request)
            assert sock.poll(3000)
            assert sock.recv_multipart()[-1] == odd_reply
        finally:
            sock.close(0)
            context.term()
        assert upstream.received[-1][1:] == expected_frames  # routing id of the proxy's DEALER, then as sent
    running.stop()
    # The reply is judged (a hello result missing its members), but out of band only.
    assert "ENV-3" in running.requirements() or "HEL-1" in running.requirements()


def test_several_clients_at_once_are_distinct_connections_upstream(proxy, server) -> None:
    running = proxy(server())
    errors: list[BaseException] = []

    def one(kind: str) -> None:
        try:
            good_session(running.endpoint, kind, iterations=1, timeout_s=1.0)
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=one, args=(kind,)) for kind in ("dealer", "req", "dealer", "req")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    running.stop()
    assert errors == []
    assert running.findings == [], [f.as_dict() for f in running.findings]
    assert running.proxy.counts.requests == running.proxy.counts.replies > 40
    assert running.proxy.counts.connections >= 8  # each session reconnects once


def test_a_correct_client_and_the_reference_server_pass_and_the_transcript_holds_no_token(proxy, server,
                                                                                           tmp_path) -> None:
    transcript = tmp_path / "t.jsonl"
    running = proxy(server(), transcript=transcript, findings_file=tmp_path / "v.jsonl")
    link = Link(running.endpoint)
    try:
        hello(link)
        session = create(link, "transcribed")
        link.call("evaluate", session.params(code=f"'{session.token[:10]}' , 'x'"))
        link.call("session.close", session.params())
    finally:
        link.close()
    running.stop()
    assert running.findings == []
    assert (tmp_path / "v.jsonl").read_text() == ""
    recorded = read_transcript(transcript)
    assert recorded.header["recorder"] == "proxy" and recorded.header["limits"]["max_message_bytes"] > 0
    assert [r["direction"] for r in recorded.messages()] == ["request", "reply"] * 4
    assert session.token not in transcript.read_text()


@pytest.mark.parametrize(("answer", "requirements"), [
    # a reply to nothing: the request is answered twice
    (lambda f: [hello_reply(f), hello_reply(f)], ["TRN-3"]),
    # an id that is not the request's, and the right id with another command
    (lambda f: [hello_reply(f, id="other")], ["ENV-3:echo-id"]),
    (lambda f: [hello_reply(f, command="session.validate")], ["ENV-3:echo-command"]),
    # a result that breaks its schema, and a float for an integer
    (lambda f: [hello_reply(f, result={"protocol_versions": ["1.0"]})], ["ENV-3"]),
    (lambda f: [[*f[:-1], json.dumps({**json.loads(hello_reply(f)[-1]), "result": {
        **json.loads(hello_reply(f)[-1])["result"], "limits": {"max_message_bytes": 65536.0}}}).encode()]], ["CMP-5"]),
    # not JSON at all
    (lambda f: [[*f[:-1], b"\xff not json"]], ["TRN-2"]),
    # an error code hello may not answer
    (lambda f: [[*f[:-1], json.dumps({"id": json.loads(f[-1])["id"], "version": "1.0", "command": "hello",
                                      "status": "error", "error": {"code": "SessionClosed", "message": "no",
                                      "details": {"closed_at": "2026-12-02T10:00:00.000Z"}},
                                      "timestamp": "2026-12-02T10:00:00.000Z"}).encode()]], ["ERR-2"]),
])
def test_every_reply_check_can_fail_through_the_proxy(proxy, scripted, answer, requirements) -> None:
    upstream = scripted(answer)
    running = proxy(upstream.endpoint, probe=False)
    context, sock = raw_socket(running.endpoint)
    try:
        sock.send(json.dumps(request("hello", {}, "h1")).encode())
        assert sock.poll(3000)
        time.sleep(0.2)
    finally:
        sock.close(0)
        context.term()
    running.stop()
    found = running.requirements() + [f"{f.problem.requirement}:{f.problem.rule}" for f in running.findings]
    for requirement in requirements:
        assert requirement in found, [f.as_dict() for f in running.findings]


def test_a_reply_matching_none_of_several_outstanding_requests_and_an_unanswered_request(proxy, scripted) -> None:
    held: list[list[bytes]] = []

    def answer(frames: list[bytes]) -> list[list[bytes]]:
        held.append(frames)
        if len(held) < 2:
            return []
        return [hello_reply(held[0], id="neither")]  # then nothing more

    upstream = scripted(answer)
    running = proxy(upstream.endpoint, probe=False, timeout_s=0.5)
    context, sock = raw_socket(running.endpoint)
    try:
        sock.send(json.dumps(request("hello", {}, "a")).encode())
        sock.send(json.dumps(request("hello", {}, "b")).encode())
        assert sock.poll(3000)
        time.sleep(0.8)
    finally:
        sock.close(0)
        context.term()
    running.stop()
    by = {(f.problem.requirement, f.problem.rule) for f in running.findings}
    assert ("ENV-3", "pairing") in by
    assert sorted(f.request_id for f in running.findings if f.problem.rule == "unanswered") == ["a", "b"]


@pytest.mark.parametrize(("fault", "requirement"), [
    ("echoes-wrong-id", "ENV-5"),  # error replies echo a changed id
    ("integers-as-floats", "CMP-5"),  # hello's limits as 65536.0
    ("drops-result-field", "ENV-3"),  # validate's result misses a member: its schema (ENV-3)
])
def test_a_faulty_server_process_behind_the_proxy_is_caught(proxy, server, fault, requirement) -> None:
    running = proxy(server(fault))
    link = Link(running.endpoint, timeout_s=2.0)
    try:
        hello(link)
        session = create(link, fault)
        link.call("session.validate", session.params())
        # An error reply, read raw: a client matching by id would never see a reply with the wrong one.
        link.send_raw([json.dumps(request("session.validate", session.params(token="W" * 43))).encode()])
        assert link.receive(2.0)["error"]["code"] == "InvalidToken"
    finally:
        link.close()
    running.stop()
    assert requirement in running.requirements(), [f.as_dict() for f in running.findings]


def test_a_silent_server_leaves_requests_unanswered(proxy, server) -> None:
    running = proxy(server("silent-on-bad-json"), timeout_s=0.4)
    context, sock = raw_socket(running.endpoint)
    try:
        sock.send(b"{not json")
        time.sleep(0.8)
    finally:
        sock.close(0)
        context.term()
    running.stop()
    assert ("TRN-3", "unanswered") in {(f.problem.requirement, f.problem.rule) for f in running.findings}
    assert "CLT-1" in running.requirements()  # and the client broke the framing rule, of course


def test_client_rules_are_checked_on_the_way_in(proxy, server) -> None:
    running = proxy(server())
    link = Link(running.endpoint)
    try:
        session = create(link, "rules")  # no hello first: VER-4 (SHOULD)
        link.call("evaluate", {**session.params(code="1"), "bogus": 1})
        link.call("evaluate", session.params(code="2"), request_id="same")
        link.call("evaluate", session.params(code="3"), request_id="same")
    finally:
        link.close()
    running.stop()
    assert running.requirements() == ["VER-4", "CLT-2", "CLT-4"]


def test_fail_fast_stops_at_the_first_must_violation(proxy, server) -> None:
    running = proxy(server(), fail_fast=True)
    link = Link(running.endpoint)
    try:
        hello(link)  # a SHOULD is not enough to stop (VER-4 holds anyway: hello comes first)
        link.send_raw([json.dumps(request("session.create", {"client_id": "x", "extra": True})).encode()])
        running.thread.join(5)
    finally:
        link.close()
    assert not running.thread.is_alive() and running.proxy.stopped_by == "fail-fast"
    running.proxy.close()


def test_the_upstream_connection_of_a_client_that_left_is_closed(proxy, server) -> None:
    running = proxy(server())
    for _ in range(3):
        link = Link(running.endpoint)
        hello(link)
        link.close()
    deadline = time.monotonic() + 5
    while running.proxy.open_connections and time.monotonic() < deadline:
        time.sleep(0.05)
    running.stop()
    assert running.proxy.counts.connections == 3
    assert running.proxy.open_connections == 0
