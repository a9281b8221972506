"""Round trips: the reference server vs a raw pyzmq ROUTER echo, measured side by side in one run.

Run: python bench/bench_roundtrip.py [--rounds R] [--requests N] [--window W]

Both servers run as separate processes on loopback (started through the kit's ServerProcess); the
kit's ProtocolClient (DEALER, its raw send/receive, so no transcript or decoding is timed) sends the
same `session.validate` request (a live session, valid token) to each, alternating rounds so that
noise on this shared machine hits both alike. Prints p50/p99 latency and sequential and pipelined
throughput for each, and the ratios reference/echo. Figures only; tests check behaviour.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

from stui_protocol_kit.protocol.client import ProtocolClient
from stui_protocol_kit.protocol.facts import PROTOCOL_VERSION
from stui_protocol_kit.protocol.server_process import ServerProcess

ECHO = """
import sys, zmq
ctx = zmq.Context()
s = ctx.socket(zmq.ROUTER)
s.bind("tcp://127.0.0.1:0")
print("listening on " + s.getsockopt(zmq.LAST_ENDPOINT).decode(), file=sys.stderr, flush=True)
while True:
    s.send_multipart(s.recv_multipart())
"""


def sequential(client: ProtocolClient, bodies: list[bytes]) -> list[float]:
    latencies = []
    for body in bodies:
        t = time.perf_counter()
        client.send_frames([body])
        client.receive()
        latencies.append(time.perf_counter() - t)
    return latencies


def pipelined(client: ProtocolClient, bodies: list[bytes], window: int) -> float:
    """Requests/s with `window` requests in flight."""
    n = len(bodies)
    t = time.perf_counter()
    sent = received = 0
    while received < n:
        while sent < n and sent - received < window:
            client.send_frames([bodies[sent]])
            sent += 1
        client.receive()
        received += 1
    return n / (time.perf_counter() - t)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--requests", type=int, default=2000, help="requests per round and mode")
    parser.add_argument("--window", type=int, default=32, help="requests in flight when pipelined")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as data, \
            ServerProcess([sys.executable, "-c", ECHO], name="echo") as echo, \
            ServerProcess([sys.executable, "-m", "stui_protocol_kit.reference_server.cli", "--bind", "tcp://127.0.0.1:0",
                           "--data-dir", str(Path(data) / "store"), "--log-level", "WARNING"], name="reference") as ref:
        assert echo.endpoint and ref.endpoint
        sockets = {name: ProtocolClient(ep, "dealer", timeout_s=30) for name, ep in
                   (("echo", echo.endpoint), ("reference", ref.endpoint))}
        try:
            ref_sock = sockets["reference"]
            created = ref_sock.call("session.create", {"client_id": "bench"}).reply["result"]
            # Every request has its own id: a repeated id would be answered from the retry cache.
            ids = iter(range(10**9))

            def bodies(n: int) -> list[bytes]:
                return [json.dumps({"id": f"v{next(ids)}", "version": PROTOCOL_VERSION, "command": "session.validate",
                                    "parameters": {"session_id": created["session_id"],
                                                   "token": created["token"]}}).encode() for _ in range(n)]

            ref_sock.send_frames(bodies(1))
            reply = json.loads(ref_sock.receive())
            assert reply["status"] == "success", reply
            lat: dict[str, list[float]] = {"echo": [], "reference": []}
            seq: dict[str, list[float]] = {"echo": [], "reference": []}
            pipe: dict[str, list[float]] = {"echo": [], "reference": []}
            for sock in sockets.values():  # warm-up
                sequential(sock, bodies(200))
            for _ in range(args.rounds):
                for name, sock in sockets.items():
                    t = time.perf_counter()
                    samples = sequential(sock, bodies(args.requests))
                    seq[name].append(args.requests / (time.perf_counter() - t))
                    lat[name].extend(samples)
                    pipe[name].append(pipelined(sock, bodies(args.requests), args.window))
        finally:
            for sock in sockets.values():
                sock.close()
    print(f"session.validate, {args.rounds} rounds x {args.requests} requests, pipelined window {args.window}")
    print(f"{'server':<10} {'p50 us':>8} {'p99 us':>8} {'seq req/s':>10} {'pipelined req/s':>16}")
    figures = {}
    for name in ("echo", "reference"):
        ordered = sorted(lat[name])
        p50 = ordered[len(ordered) // 2] * 1e6
        p99 = ordered[int(len(ordered) * 0.99)] * 1e6
        figures[name] = (p50, p99, statistics.median(seq[name]), statistics.median(pipe[name]))
        print(f"{name:<10} {p50:>8.0f} {p99:>8.0f} {figures[name][2]:>10,.0f} {figures[name][3]:>16,.0f}")
    e, r = figures["echo"], figures["reference"]
    print(f"ratio reference/echo: p50 {r[0] / e[0]:.2f}x, p99 {r[1] / e[1]:.2f}x, "
          f"sequential throughput {r[2] / e[2]:.2f}x, pipelined throughput {r[3] / e[3]:.2f}x")


if __name__ == "__main__":
    main()
