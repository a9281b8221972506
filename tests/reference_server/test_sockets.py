"""The real transport on real ZeroMQ sockets (tcp://127.0.0.1, random port): REQ and DEALER framing,
bad input of every kind, pipelining, many concurrent clients, and disconnect tracking."""

from __future__ import annotations

import json
import logging
import threading
import time

import pytest
import zmq
from rs_harness import ThreadServer, call, error_code, request

from stui_protocol_kit.protocol.client import ProtocolClient
from stui_protocol_kit.reference_server.engine import SERVED_CAPABILITIES


@pytest.fixture
def context():
    ctx = zmq.Context()
    yield ctx
    ctx.destroy(linger=0)  # closes sockets a failed test left open: never hangs


def Client(context: zmq.Context, endpoint: str, kind: int = zmq.DEALER) -> ProtocolClient:  # noqa: N802
    return ProtocolClient(endpoint, "dealer" if kind == zmq.DEALER else "req", 5.0, context)


def exchange(client: ProtocolClient, frames: list[bytes]) -> list[bytes]:
    """Send raw body frames; every frame of the reply."""
    client.send_frames(frames)
    return client.receive_frames()


def _session(client: ProtocolClient, client_id: str = "sock") -> dict[str, str]:
    result = call(client, "session.create", {"client_id": client_id})["result"]
    return {"session_id": result["session_id"], "token": result["token"]}


@pytest.mark.parametrize("kind", [zmq.REQ, zmq.DEALER])
def test_full_session_flow_over_socket(server: ThreadServer, context, kind: int) -> None:
    client = Client(context, server.endpoint, kind)
    assert call(client, "hello")["result"]["capabilities"] == [c.value for c in SERVED_CAPABILITIES]
    auth = _session(client)
    assert call(client, "evaluate", {**auth, "code": "x := 2 + 3 * 4"})["result"]["print_string"] == "20"
    assert call(client, "session.snapshot", auth)["result"]["revision"] == 1
    state = call(client, "session.resume", auth)["result"]["state"]
    assert state["workspace"]["variables"]["x"]["print_string"] == "20"
    assert call(client, "session.close", auth)["result"]["closed"] is True
    client.close()


def test_dealer_emulating_req_gets_delimiter_back(server: ThreadServer, context) -> None:
    client = Client(context, server.endpoint, zmq.DEALER)
    frames = exchange(client, [b"", json.dumps(request("hello")).encode()])
    assert frames[0] == b"" and json.loads(frames[1])["status"] == "success"
    client.close()


@pytest.mark.parametrize(
    ("frames", "reply_has_delimiter", "reason"),
    [
        ([b"{}", b"{}"], False, "frames"),
        ([b"", b"{}", b"{}"], True, "frames"),
        ([b""], False, "json"),
        ([b"\xc3\x28"], False, "encoding"),
        ([b"nope"], False, "json"),
        ([b"[" * 100 + b"]" * 100], False, "nesting_depth"),
        ([b"42"], False, "not_object"),
        ([b"", b"\xff"], True, "encoding"),
    ],
)
def test_bad_frames_get_error_reply_and_server_keeps_serving(
    server: ThreadServer, context, frames: list[bytes], reply_has_delimiter: bool, reason: str,
) -> None:
    client = Client(context, server.endpoint, zmq.DEALER)
    auth = _session(client)
    reply_frames = exchange(client, frames)
    if reply_has_delimiter:
        assert reply_frames[0] == b""
    reply = json.loads(reply_frames[-1])
    assert reply["id"] is None and reply["command"] is None
    assert error_code(reply) == "InvalidRequest" and reply["error"]["details"]["reason"] == reason
    assert call(client, "session.validate", auth)["result"]["revision"] == 0
    client.close()


@pytest.mark.parametrize("kind", [zmq.REQ, zmq.DEALER])
def test_oversize_and_schema_invalid_requests_change_no_session(server: ThreadServer, context, kind: int) -> None:
    client = Client(context, server.endpoint, kind)
    auth = _session(client)
    call(client, "evaluate", {**auth, "code": "keep := 1"})
    big = exchange(client, [b" " * 65537])
    assert error_code(json.loads(big[-1])) == "PayloadTooLarge"
    exact = json.dumps(request("hello")).encode()
    exact += b" " * (65536 - len(exact))
    assert json.loads(exchange(client, [exact])[-1])["status"] == "success"  # exactly at the limit
    bad = call(client, "evaluate", {**auth, "code": "keep := 2", "extra": True})
    assert error_code(bad) == "InvalidRequest" and bad["error"]["details"]["reason"] == "schema"
    bad = call(client, "session.snapshot", {**auth, "state": {"objects": {}}})
    assert error_code(bad) == "InvalidRequest"
    result = call(client, "session.resume", auth)["result"]
    assert result["revision"] == 0 and result["state"]["workspace"]["variables"]["keep"]["print_string"] == "1"
    client.close()


def test_pipelined_requests_on_one_dealer_keep_order(server: ThreadServer, context) -> None:
    client = Client(context, server.endpoint, zmq.DEALER)
    auth = _session(client)
    for i, code in enumerate(["x := 1", "x := x + 1", "x * 10"]):
        client.send_frames([json.dumps(request("evaluate", {**auth, "code": code}, rid=f"p{i}")).encode()])
    replies = {r["id"]: r for r in (json.loads(client.receive()) for _ in range(3))}
    assert replies["p2"]["result"]["print_string"] == "20"
    client.close()


def test_twenty_four_concurrent_clients_see_only_their_own_sessions(server: ThreadServer, context) -> None:
    failures: list[str] = []
    barrier = threading.Barrier(24)

    def worker(n: int) -> None:
        client = Client(context, server.endpoint, zmq.DEALER if n % 2 else zmq.REQ)
        try:
            auth = _session(client, f"client-{n % 4}")
            barrier.wait(10)
            for step in range(10):
                call(client, "evaluate", {**auth, "code": f"v := {n * 1000 + step}"})
                got = call(client, "evaluate", {**auth, "code": "v"})["result"]["print_string"]
                if got != str(n * 1000 + step):
                    failures.append(f"client {n} step {step} read {got}")
            call(client, "session.snapshot", {**auth, "state": {"preferences": {"owner": n}}})
            state = call(client, "session.resume", auth)["result"]["state"]
            if state["preferences"] != {"owner": n} or list(state["workspace"]["variables"]) != ["v"]:
                failures.append(f"client {n} saw {state}")
        except Exception as exc:  # reported below; a thread's assert would be lost
            failures.append(f"client {n}: {exc!r}")
        finally:
            client.close()

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(24)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert not failures


def test_disconnected_client_stops_counting_as_attached(server: ThreadServer, context) -> None:
    first = Client(context, server.endpoint, zmq.DEALER)
    second = Client(context, server.endpoint, zmq.DEALER)
    auth = _session(first)
    assert call(first, "session.validate", auth)["result"]["attached_clients"] == 1  # create did not attach
    assert call(second, "session.validate", auth)["result"]["attached_clients"] == 2
    second.close()
    deadline = time.monotonic() + 5
    count = 2
    while time.monotonic() < deadline:  # the monitor event arrives asynchronously
        count = call(first, "session.validate", auth)["result"]["attached_clients"]
        if count == 1:
            break
        time.sleep(0.05)
    assert count == 1
    first.close()


def test_retry_on_a_new_connection_gets_the_original_reply(server: ThreadServer, context) -> None:
    first = Client(context, server.endpoint, zmq.DEALER)
    auth = _session(first)
    original = call(first, "session.snapshot", auth, rid="once")
    first.close()
    second = Client(context, server.endpoint, zmq.REQ)
    assert call(second, "session.snapshot", auth, rid="once") == original
    second.close()


def test_request_log_line_is_debug_timed_and_never_carries_the_token(server: ThreadServer, context, caplog) -> None:
    caplog.set_level(logging.DEBUG, logger="stui.reference_server.requests")
    client = Client(context, server.endpoint)
    auth = _session(client)
    call(client, "session.validate", auth)
    call(client, "evaluate", {**auth, "code": "1 +"})
    client.close()
    lines = [r.getMessage() for r in caplog.records if r.name == "stui.reference_server.requests"]
    assert [line.split(" duration_us=")[0] for line in lines] == [
        f"request command=session.create session={auth['session_id'][:8]} outcome=success",
        f"request command=session.validate session={auth['session_id'][:8]} outcome=success",
        f"request command=evaluate session={auth['session_id'][:8]} outcome=EvaluationError",
    ]
    assert all(r.levelno == logging.DEBUG for r in caplog.records if r.name == "stui.reference_server.requests")
    assert all(int(line.split("duration_us=")[1].split()[0]) >= 0 for line in lines)
    assert not any(auth["token"] in line or auth["session_id"] in line for line in lines)
