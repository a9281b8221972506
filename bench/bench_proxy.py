"""The validating proxy's cost: a direct connection to the reference server vs the same server through
`stui-conformance proxy`, with and without a transcript, measured side by side in one run.

Run: python bench/bench_proxy.py [--rounds R] [--requests N] [--window W]

One reference server process and, in front of it: a bare relay (forwarding and nothing else, one DEALER
per client as the proxy does: the floor of any Python relay here), the proxy as it comes (its judge in a
thread), the proxy with its judge in a process of its own (`--judge process`), and the proxy as it comes
writing a transcript (all `--quiet`). The kit's ProtocolClient (DEALER, raw frames, nothing decoded in
the timed loop) sends `session.validate` of one live session - each request with its own id, the proxies
checking every request and every reply - over every path, alternating rounds so that noise on this shared
machine hits each alike. Prints p50/p99 round-trip latency and sequential and pipelined throughput per
path, and what each adds: p50 difference against the target of issue 14 (at most 100 us added to a round
trip's p50) and throughput ratios. Figures only; tests check behaviour.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from stui_protocol_kit.protocol.client import ProtocolClient
from stui_protocol_kit.protocol.facts import PROTOCOL_VERSION
from stui_protocol_kit.protocol.server_process import ServerProcess

TARGET_ADDED_P50_US = 100.0
# The floor: a relay that forwards and does nothing else (one DEALER per client, like the proxy).
BARE_RELAY = """
import sys, zmq
ctx = zmq.Context()
front = ctx.socket(zmq.ROUTER)
front.bind("tcp://127.0.0.1:0")
print("listening on " + front.getsockopt(zmq.LAST_ENDPOINT).decode(), file=sys.stderr, flush=True)
poller, ups, by = zmq.Poller(), {}, {}
poller.register(front, zmq.POLLIN)
while True:
    for sock, _ in poller.poll():
        if sock is front:
            frames = front.recv_multipart(copy=False)
            rid = frames[0].bytes
            up = ups.get(rid)
            if up is None:
                up = ups[rid] = ctx.socket(zmq.DEALER)
                up.connect(sys.argv[1])
                by[up] = rid
                poller.register(up, zmq.POLLIN)
            up.send_multipart(frames[1:], copy=False)
        else:
            front.send_multipart([by[sock], *sock.recv_multipart(copy=False)], copy=False)
"""


class ProxyProcess:
    """`stui-conformance proxy` as a process: its "listening on" line awaited (30 s at most), its output
    drained, stopped on every exit path."""

    def __init__(self, upstream: str, *extra: str) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "stui_protocol_kit.conformance.cli", "proxy", "--listen", "tcp://127.0.0.1:0",
             "--upstream", upstream, "--quiet", "--no-color", *extra],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        self.lines: list[str] = []
        ready = threading.Event()
        self.endpoint = ""

        def drain() -> None:
            assert self.process.stdout is not None
            for line in self.process.stdout:
                self.lines.append(line)
                if line.startswith("listening on "):
                    self.endpoint = line.split()[-1]
                    ready.set()
            ready.set()

        threading.Thread(target=drain, daemon=True).start()
        if not ready.wait(30) or not self.endpoint:
            self.stop()
            raise RuntimeError("the proxy did not start: " + "".join(self.lines[-20:]))

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)

    def __enter__(self) -> ProxyProcess:
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()


def sequential(client: ProtocolClient, bodies: list[bytes]) -> list[float]:
    latencies = []
    for body in bodies:
        t = time.perf_counter()
        client.send_frames([body])
        client.receive()
        latencies.append(time.perf_counter() - t)
    return latencies


def pipelined(client: ProtocolClient, bodies: list[bytes], window: int) -> float:
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
    with tempfile.TemporaryDirectory() as work, \
            ServerProcess([sys.executable, "-m", "stui_protocol_kit.reference_server.cli", "--bind",
                           "tcp://127.0.0.1:0", "--data-dir", str(Path(work) / "store"), "--log-level", "WARNING"],
                          name="reference") as server:
        assert server.endpoint
        transcript = Path(work) / "transcript.jsonl"
        with ServerProcess([sys.executable, "-c", BARE_RELAY, server.endpoint], name="bare relay") as bare, \
                ProxyProcess(server.endpoint, "--judge", "thread") as judged_inside, \
                ProxyProcess(server.endpoint, "--judge", "process") as judged_apart, \
                ProxyProcess(server.endpoint, "--transcript", str(transcript)) as recording:
            assert bare.endpoint
            paths = {"direct": server.endpoint, "bare relay": bare.endpoint, "proxy": judged_inside.endpoint,
                     "proxy, judge process": judged_apart.endpoint, "proxy+transcript": recording.endpoint}
            proxies = (judged_inside, judged_apart, recording)
            clients = {name: ProtocolClient(endpoint, "dealer", timeout_s=30) for name, endpoint in paths.items()}
            try:
                created = clients["direct"].call("session.create", {"client_id": "bench"}).reply["result"]
                ids = iter(range(10**9))

                def bodies(n: int) -> list[bytes]:
                    return [json.dumps({"id": f"v{next(ids)}", "version": PROTOCOL_VERSION,
                                        "command": "session.validate",
                                        "parameters": {"session_id": created["session_id"],
                                                       "token": created["token"]}}).encode() for _ in range(n)]

                for client in clients.values():  # each path answers, and warms up
                    client.send_frames(bodies(1))
                    assert json.loads(client.receive())["status"] == "success"
                    sequential(client, bodies(300))
                lat: dict[str, list[float]] = {name: [] for name in paths}
                seq: dict[str, list[float]] = {name: [] for name in paths}
                pipe: dict[str, list[float]] = {name: [] for name in paths}
                for _ in range(args.rounds):
                    for name, client in clients.items():
                        t = time.perf_counter()
                        samples = sequential(client, bodies(args.requests))
                        seq[name].append(args.requests / (time.perf_counter() - t))
                        lat[name].extend(samples)
                        pipe[name].append(pipelined(client, bodies(args.requests), args.window))
            finally:
                for client in clients.values():
                    client.close()
            violations = [line for proxy in proxies for line in proxy.lines if "VIOLATION" in line]
        recorded = sum(1 for _ in transcript.open()) if transcript.exists() else 0
    print(f"session.validate through the reference server, {args.rounds} rounds x {args.requests} requests per path,"
          f" pipelined window {args.window}")
    print(f"{'path':<20} {'p50 us':>8} {'p99 us':>8} {'seq req/s':>10} {'pipelined req/s':>16}")
    figures = {}
    for name in paths:
        ordered = sorted(lat[name])
        p50 = ordered[len(ordered) // 2] * 1e6
        p99 = ordered[int(len(ordered) * 0.99)] * 1e6
        figures[name] = (p50, p99, statistics.median(seq[name]), statistics.median(pipe[name]))
        print(f"{name:<20} {p50:>8.0f} {p99:>8.0f} {figures[name][2]:>10,.0f} {figures[name][3]:>16,.0f}")
    direct = figures["direct"]
    for name in ("bare relay", "proxy", "proxy, judge process", "proxy+transcript"):
        f = figures[name]
        added = f[0] - direct[0]
        verdict = "within" if added <= TARGET_ADDED_P50_US else "ABOVE"
        print(f"{name}: adds {added:.0f} us to the p50 round trip ({verdict} the {TARGET_ADDED_P50_US:.0f} us target),"
              f" {f[1] - direct[1]:.0f} us to p99; throughput {f[2] / direct[2]:.2f}x sequential,"
              f" {f[3] / direct[3]:.2f}x pipelined of the direct connection")
    found = sorted({line.split("[", 1)[1].split("]", 1)[0] for line in violations if "[" in line})
    print(f"the proxies reported {len(violations)} violation(s) ({', '.join(found) or 'none'}: the timed requests"
          " go without a hello first, a SHOULD); the transcript holds {recorded} lines".replace("{recorded}",
                                                                                            str(recorded)))


if __name__ == "__main__":
    main()
