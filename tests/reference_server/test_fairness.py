"""One client's heavy requests must not starve the others (issue 10, item 6), over a real ROUTER socket.

The server answers one connection's requests in their order (CON-1), but takes connections in turn:
a victim that sends one request behind an attacker's queue of costly ones is answered after at most
the attacker's request in hand, not after the whole queue. Order only, never timings (those are in
bench/bench_hostile.py). This is a guard, not a reproduction: ZeroMQ's ROUTER already took
connections in turn before issue 10; what the issue measured was the cost of the request in hand
(tests/reference_server/test_evaluator.py and tests/protocol/test_codec.py show it cut).
"""

from __future__ import annotations

import json
import time

import zmq
from rs_harness import ThreadServer

from stui_protocol_kit.reference_server.config import ServerConfig

QUEUED = 20
# Costly but valid: ~10 million characters of concatenation, then EvaluationError (the output bound).
BOMB = ("a := '" + "x" * 20_000 + "'." + " b := a , a , a , a , a , a , a , a , a , a." * 700 + " 1")[:32_768]


def _body(request_id: str, command: str, parameters: dict) -> bytes:
    return json.dumps({"id": request_id, "version": "1.0", "command": command, "parameters": parameters}).encode()


def test_a_victim_is_answered_before_an_attackers_queue_drains(tmp_path) -> None:
    server = ThreadServer(tmp_path / "data", ServerConfig(idle_timeout_s=60, absolute_timeout_s=600, strict=True))
    sockets = []
    try:
        def dealer() -> zmq.Socket:
            sock = server.context.socket(zmq.DEALER)
            sock.setsockopt(zmq.LINGER, 0)
            sock.connect(server.endpoint)
            sockets.append(sock)
            return sock

        attacker, victim = dealer(), dealer()
        created = []
        for sock, name in ((attacker, "attacker"), (victim, "victim")):
            sock.send(_body(f"c-{name}", "session.create", {"client_id": name}))
            assert sock.poll(10_000)
            result = json.loads(sock.recv())["result"]
            created.append({"session_id": result["session_id"], "token": result["token"]})
        theirs, mine = created
        for n in range(QUEUED):
            attacker.send(_body(f"bomb-{n}", "evaluate", {**theirs, "code": BOMB}))
        time.sleep(0.01)  # the queue is on its way (had it not arrived, the victim would be first anyway)
        victim.send(_body("v", "session.validate", mine))
        assert victim.poll(60_000), "the victim was never answered"
        assert json.loads(victim.recv())["status"] == "success"
        ready = 0
        while attacker.poll(0):
            attacker.recv()
            ready += 1
        # FIFO across connections would have answered all QUEUED first; turns leave most of them waiting.
        assert ready < QUEUED // 2, f"{ready} of the attacker's {QUEUED} requests were answered before the victim's"
        for _ in range(QUEUED - ready):  # drain, so the server stops on an idle socket
            assert attacker.poll(60_000)
            attacker.recv()
    finally:
        for sock in sockets:
            sock.close(0)
        server.stop()
