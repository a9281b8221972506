"""The real transport on real ZeroMQ sockets (tcp://127.0.0.1, random port): REQ and DEALER framing,
bad input of every kind, pipelining, many concurrent clients, and disconnect tracking."""

from __future__ import annotations

import json
import threading
import time

import pytest
import zmq
from rs_harness import Client, ThreadServer, error_code, request


@pytest.fixture
def context():
    ctx = zmq.Context()
    yield ctx
    ctx.term()


def _session(client: Client, client_id: str = "sock") -> dict[str, str]:
    result = client.call("session.create", {"client_id": client_id})["result"]
    return {"session_id": result["session_id"], "token": result["token"]}


@pytest.mark.parametrize("kind", [zmq.REQ, zmq.DEALER])
def test_full_session_flow_over_socket(server: ThreadServer, context, kind: int) -> None:
    client = Client(context, server.endpoint, kind)
    assert client.call("hello")["result"]["capabilities"] == ["evaluate", "inspect", "retry.durable"]
    auth = _session(client)
    assert client.call("evaluate", {**auth, "code": "x := 2 + 3 * 4"})["result"]["print_string"] == "20"
    assert client.call("session.snapshot", auth)["result"]["revision"] == 1
    assert client.call("session.resume", auth)["result"]["state"]["workspace"]["variables"]["x"]["print_string"] == "20"
    assert client.call("session.close", auth)["result"]["closed"] is True
    client.close()


def test_dealer_emulating_req_gets_delimiter_back(server: ThreadServer, context) -> None:
    client = Client(context, server.endpoint, zmq.DEALER)
    frames = client.send_frames([b"", json.dumps(request("hello")).encode()])
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
    reply_frames = client.send_frames(frames)
    if reply_has_delimiter:
        assert reply_frames[0] == b""
    reply = json.loads(reply_frames[-1])
    assert reply["id"] is None and reply["command"] is None
    assert error_code(reply) == "InvalidRequest" and reply["error"]["details"]["reason"] == reason
    assert client.call("session.validate", auth)["result"]["revision"] == 0
    client.close()


@pytest.mark.parametrize("kind", [zmq.REQ, zmq.DEALER])
def test_oversize_and_schema_invalid_requests_change_no_session(server: ThreadServer, context, kind: int) -> None:
    client = Client(context, server.endpoint, kind)
    auth = _session(client)
    client.call("evaluate", {**auth, "code": "keep := 1"})
    big = client.send_frames([b" " * 65537])
    assert error_code(json.loads(big[-1])) == "PayloadTooLarge"
    exact = json.dumps(request("hello")).encode()
    exact += b" " * (65536 - len(exact))
    assert json.loads(client.send_frames([exact])[-1])["status"] == "success"  # exactly at the limit
    bad = client.call("evaluate", {**auth, "code": "keep := 2", "extra": True})
    assert error_code(bad) == "InvalidRequest" and bad["error"]["details"]["reason"] == "schema"
    bad = client.call("session.snapshot", {**auth, "state": {"objects": {}}})
    assert error_code(bad) == "InvalidRequest"
    result = client.call("session.resume", auth)["result"]
    assert result["revision"] == 0 and result["state"]["workspace"]["variables"]["keep"]["print_string"] == "1"
    client.close()


def test_pipelined_requests_on_one_dealer_keep_order(server: ThreadServer, context) -> None:
    client = Client(context, server.endpoint, zmq.DEALER)
    auth = _session(client)
    for i, code in enumerate(["x := 1", "x := x + 1", "x * 10"]):
        client.socket.send(json.dumps(request("evaluate", {**auth, "code": code}, rid=f"p{i}")).encode())
    replies = {r["id"]: r for r in (json.loads(client.socket.recv()) for _ in range(3))}
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
                client.call("evaluate", {**auth, "code": f"v := {n * 1000 + step}"})
                got = client.call("evaluate", {**auth, "code": "v"})["result"]["print_string"]
                if got != str(n * 1000 + step):
                    failures.append(f"client {n} step {step} read {got}")
            client.call("session.snapshot", {**auth, "state": {"preferences": {"owner": n}}})
            state = client.call("session.resume", auth)["result"]["state"]
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
    assert first.call("session.validate", auth)["result"]["attached_clients"] == 1  # create did not attach
    assert second.call("session.validate", auth)["result"]["attached_clients"] == 2
    second.close()
    deadline = time.monotonic() + 5
    count = 2
    while time.monotonic() < deadline:  # the monitor event arrives asynchronously
        count = first.call("session.validate", auth)["result"]["attached_clients"]
        if count == 1:
            break
        time.sleep(0.05)
    assert count == 1
    first.close()


def test_retry_on_a_new_connection_gets_the_original_reply(server: ThreadServer, context) -> None:
    first = Client(context, server.endpoint, zmq.DEALER)
    auth = _session(first)
    original = first.call("session.snapshot", auth, rid="once")
    first.close()
    second = Client(context, server.endpoint, zmq.REQ)
    assert second.call("session.snapshot", auth, rid="once") == original
    second.close()
