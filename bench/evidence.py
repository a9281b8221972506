"""Evidence against bad luck and load: a SIGKILL storm and a many-client mixed load, each ending with every
acknowledged snapshot verified after a restart. Prints figures (kills, clients, requests, peak RSS, worst
latency); tests/evidence/ runs the same code at CI size and asserts only what must hold (nothing
acknowledged lost), never a timing.

    python bench/evidence.py storm --kills 50          # the long mode of the SIGKILL storm
    python bench/evidence.py load --clients 50 --seconds 30
    python bench/evidence.py floods                    # victim latency and peak RSS under each flood
    stui-conformance fuzz --frames 100000              # the fuzz long mode (conformance/fuzz.py)

A snapshot is *acknowledged* when its success reply arrived; after any restart, `session.resume` of
that session must return that revision with the content sent, or - when a later snapshot was in flight
at the kill - the next revision with the in-flight content. Anything older is a lost acknowledgement.
Each client sends one request at a time, so at most one snapshot per session is in flight.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from stui_protocol_kit.protocol.client import ProtocolClient, ReplyTimeout
from stui_protocol_kit.protocol.server_process import ServerProcess

SERVER = [sys.executable, "-m", "stui_protocol_kit.reference_server.cli"]


def peak_rss_kib(pid: int | None) -> int:
    """VmHWM of a live process (0 when unknown)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def with_nofile(limit: int) -> list[str]:
    """The server command run under RLIMIT_NOFILE soft = hard = `limit` (a typical 1,024 box)."""
    launcher = (f"import resource, runpy, sys; resource.setrlimit(resource.RLIMIT_NOFILE, ({limit}, {limit})); "
                "sys.argv = ['stui-reference-server', *sys.argv[1:]]; "
                "runpy.run_module('stui_protocol_kit.reference_server.cli', run_name='__main__')")
    return [sys.executable, "-c", launcher]


def start_server(data_dir: Path, *extra: str, nofile: int | None = None) -> ServerProcess:
    command = SERVER if nofile is None else with_nofile(nofile)
    server = ServerProcess([*command, "--bind", "tcp://127.0.0.1:0", "--data-dir", str(data_dir), "--log-level",
                            "warning", *extra], ready_timeout_s=60, name="reference server")
    server.start()
    return server


@dataclass
class Tracked:
    """One session as its client saw it: the newest acknowledged snapshot and what was in flight."""

    auth: dict[str, str]
    acked_revision: int = 0
    acked_n: int | None = None  # preferences.n of the acknowledged revision (None: the empty revision 0)
    in_flight_n: int | None = None
    acked_total: int = 0


@dataclass
class Figures:
    problems: list[str] = field(default_factory=list)
    acknowledged: int = 0
    verified: int = 0
    requests: int = 0
    worst_latency_s: float = 0.0
    latencies: list[float] = field(default_factory=list)
    peak_rss_kib: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        lat = sorted(self.latencies)
        p99 = lat[int(len(lat) * 0.99)] if lat else 0.0
        return {"problems": len(self.problems), "first_problems": self.problems[:10],
                "acknowledged_snapshots": self.acknowledged, "verified_sessions": self.verified,
                "requests": self.requests, "worst_latency_ms": round(self.worst_latency_s * 1000, 1),
                "p99_latency_ms": round(p99 * 1000, 1), "peak_rss_mib": round(self.peak_rss_kib / 1024, 1),
                **self.extra}


def _create(client: ProtocolClient, client_id: str) -> dict[str, str]:
    reply = client.call("session.create", {"client_id": client_id}).reply
    assert isinstance(reply, dict) and reply.get("status") == "success", reply
    return {"session_id": reply["result"]["session_id"], "token": reply["result"]["token"]}


def verify(endpoint: str, tracked: list[Tracked], figures: Figures) -> None:
    """After a restart: every session's durable revision is its acknowledged one, or the next with the
    in-flight content; nothing older. Then the in-flight snapshot counts as acknowledged."""
    with ProtocolClient(endpoint, timeout_s=30) as c:
        for t in tracked:
            reply = c.call("session.resume", t.auth).reply
            if not isinstance(reply, dict) or reply.get("status") != "success":
                figures.problems.append(f"{t.auth['session_id'][:8]}: resume failed after restart: {str(reply)[:200]}")
                continue
            revision = reply["result"]["revision"]
            n = (reply["result"]["state"].get("preferences") or {}).get("n")
            if revision == t.acked_revision and n == t.acked_n:
                pass
            elif revision == t.acked_revision + 1 and t.in_flight_n is not None and n == t.in_flight_n:
                t.acked_revision, t.acked_n = revision, n  # the reply was lost, the snapshot was not
            else:
                figures.problems.append(
                    f"{t.auth['session_id'][:8]}: acknowledged revision {t.acked_revision} (n={t.acked_n}), "
                    f"in flight n={t.in_flight_n}; after restart revision {revision} (n={n})")
                t.acked_revision, t.acked_n = revision, n
            t.in_flight_n = None
            figures.verified += 1


def _snapshot_loop(endpoint: str, t: Tracked, stop: threading.Event, figures: Figures, lock: threading.Lock,
                   counter: list[int]) -> None:
    # A short timeout: after the kill nothing answers. A reply that is merely slow leaves its snapshot
    # "in flight", which verify() accepts either way: the check stays exact.
    with ProtocolClient(endpoint, timeout_s=0.5) as c:
        while not stop.is_set():
            with lock:
                counter[0] += 1
                n = counter[0]
            t.in_flight_n = n
            started = time.monotonic()
            try:
                reply = c.call("session.snapshot", {**t.auth, "state": {"preferences": {"n": n}}}).reply
            except ReplyTimeout:
                return  # the server was killed with this snapshot in flight
            elapsed = time.monotonic() - started
            if not isinstance(reply, dict) or reply.get("status") != "success":
                with lock:
                    figures.problems.append(f"snapshot failed: {str(reply)[:200]}")
                return
            revision = reply["result"]["revision"]
            with lock:
                figures.requests += 1
                figures.latencies.append(elapsed)
                figures.worst_latency_s = max(figures.worst_latency_s, elapsed)
                if revision != t.acked_revision + 1:
                    figures.problems.append(f"{t.auth['session_id'][:8]}: revision {revision} after "
                                            f"{t.acked_revision} (a number skipped or reused)")
                t.acked_revision, t.acked_n, t.in_flight_n = revision, n, None
                t.acked_total += 1
                figures.acknowledged += 1


def sigkill_storm(data_dir: Path, *, kills: int, sessions: int = 3, seed: int = 0,
                  storm_s: tuple[float, float] = (0.1, 0.4)) -> Figures:
    """`kills` rounds of: start, verify every session, snapshot from every session at once, SIGKILL."""
    rng = random.Random(seed)
    figures = Figures()
    tracked: list[Tracked] = []
    lock = threading.Lock()
    counter = [0]
    restart_s: list[float] = []
    for round_ in range(kills + 1):
        started = time.monotonic()
        server = start_server(data_dir)
        restart_s.append(time.monotonic() - started)
        try:
            assert server.endpoint is not None
            if round_ == 0:
                with ProtocolClient(server.endpoint, timeout_s=10) as c:
                    tracked = [Tracked(_create(c, f"storm-{i}")) for i in range(sessions)]
            else:
                verify(server.endpoint, tracked, figures)
            if round_ == kills:
                break
            stop = threading.Event()
            threads = [threading.Thread(target=_snapshot_loop, args=(server.endpoint, t, stop, figures, lock, counter))
                       for t in tracked]
            for thread in threads:
                thread.start()
            time.sleep(rng.uniform(*storm_s))
            figures.peak_rss_kib = max(figures.peak_rss_kib, peak_rss_kib(server.pid))
            server.kill()  # SIGKILL while snapshots are in flight
            stop.set()
            for thread in threads:
                thread.join(10)
        finally:
            server.stop()
    figures.extra.update({"kills": kills, "sessions": sessions,
                          "worst_restart_s": round(max(restart_s), 2) if restart_s else 0.0})
    return figures


_MIX = ("evaluate", "snapshot", "resume", "validate", "inspect", "hello")


def _load_client(endpoint: str, index: int, t: Tracked, stop: threading.Event, figures: Figures,
                 lock: threading.Lock, seed: int) -> None:
    rng = random.Random(seed * 1000 + index)
    n = index * 1_000_000
    with ProtocolClient(endpoint, timeout_s=30) as c:
        while not stop.is_set():
            op = rng.choice(_MIX)
            if op == "evaluate":
                command, params = "evaluate", {**t.auth, "code": f"x := {rng.randrange(1000)} + 1"}
            elif op == "inspect":
                command, params = "inspect", {**t.auth, "expression": "3 * 4"}
            elif op == "snapshot":
                n += 1
                command, params = "session.snapshot", {**t.auth, "state": {"preferences": {"n": n}}}
            elif op == "hello":
                command, params = "hello", {}
            else:
                command, params = f"session.{op}", dict(t.auth)
            started = time.monotonic()
            try:
                reply = c.call(command, params).reply
            except ReplyTimeout:
                with lock:
                    figures.problems.append(f"client {index}: {command} got no reply within 30 s")
                return
            elapsed = time.monotonic() - started
            ok = isinstance(reply, dict) and reply.get("status") == "success"
            with lock:
                figures.requests += 1
                figures.latencies.append(elapsed)
                figures.worst_latency_s = max(figures.worst_latency_s, elapsed)
                if not ok:
                    figures.problems.append(f"client {index}: {command} failed: {str(reply)[:200]}")
                    return
                if command == "session.snapshot":
                    t.acked_revision, t.acked_n = reply["result"]["revision"], n
                    figures.acknowledged += 1


def mixed_load(data_dir: Path, *, clients: int, seconds: float, seed: int = 0) -> Figures:
    """`clients` connections, one session each, a random mix of every command for `seconds`; then SIGKILL,
    restart, and every session's newest acknowledged snapshot verified."""
    figures = Figures()
    lock = threading.Lock()
    server = start_server(data_dir, "--max-sessions-per-client", "4")
    try:
        assert server.endpoint is not None
        with ProtocolClient(server.endpoint, timeout_s=30) as c:
            tracked = [Tracked(_create(c, f"load-{i}")) for i in range(clients)]
        stop = threading.Event()
        threads = [threading.Thread(target=_load_client, args=(server.endpoint, i, t, stop, figures, lock, seed))
                   for i, t in enumerate(tracked)]
        for thread in threads:
            thread.start()
        time.sleep(seconds)
        stop.set()
        for thread in threads:
            thread.join(60)
        figures.peak_rss_kib = peak_rss_kib(server.pid)
        server.kill()
    finally:
        server.stop()
    server = start_server(data_dir)
    try:
        assert server.endpoint is not None
        verify(server.endpoint, tracked, figures)
    finally:
        server.stop()
    figures.extra.update({"clients": clients, "seconds": seconds})
    return figures


class Victim:
    """A well-behaved client on its own connection: a session.validate every `interval_s`, latencies kept."""

    def __init__(self, endpoint: str, interval_s: float = 0.02) -> None:
        self.endpoint, self.interval_s = endpoint, interval_s
        self.latencies: list[float] = []
        self.failures = 0
        self._stop = threading.Event()
        self._client = ProtocolClient(endpoint, timeout_s=30)
        self._auth = _create(self._client, "victim")
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            started = time.monotonic()
            try:
                reply = self._client.call("session.validate", self._auth).reply
                ok = isinstance(reply, dict) and reply.get("status") == "success"
            except ReplyTimeout:
                ok = False
            self.latencies.append(time.monotonic() - started)
            self.failures += 0 if ok else 1

    def stop(self) -> dict[str, Any]:
        self._stop.set()
        self._thread.join(60)
        self._client.close()
        lat = sorted(self.latencies)
        return {"victim_requests": len(lat), "victim_failures": self.failures,
                "victim_worst_ms": round(lat[-1] * 1000, 1) if lat else None,
                "victim_p99_ms": round(lat[int(len(lat) * 0.99)] * 1000, 1) if lat else None}


def _fresh_client_latency(endpoint: str, timeout_s: float = 30.0) -> float | None:
    """Seconds from a new connection to its first hello reply (None: none within the timeout)."""
    started = time.monotonic()
    try:
        with ProtocolClient(endpoint, timeout_s=timeout_s) as c:
            c.call("hello")
    except ReplyTimeout:
        return None
    return time.monotonic() - started


def flood_fuzz(endpoint: str, frames: int) -> dict[str, Any]:
    from stui_protocol_kit.conformance.fuzz import fuzz

    report = fuzz(endpoint, frames=frames, seed=23, check_every=1000)
    return {"frames": report.frames, "problems": report.problem_count, "missing": report.missing}


def flood_absurd_frames(endpoint: str, connections: int, frame_mib: int) -> dict[str, Any]:
    import zmq

    payload = bytes(frame_mib * 1024 * 1024)
    context = zmq.Context()
    sockets = []
    try:
        for _ in range(connections):
            sock = context.socket(zmq.DEALER)
            sock.setsockopt(zmq.LINGER, 0)
            sock.setsockopt(zmq.RECONNECT_IVL, 60_000)
            sock.connect(endpoint)
            sockets.append(sock)
        for sock in sockets:
            sock.send(payload, copy=False)
        time.sleep(3)  # the frames stream in; a server that reads them whole grows here
        replies = sum(1 for sock in sockets if sock.poll(10))
    finally:
        context.destroy(linger=0)
    return {"connections": connections, "frame_mib": frame_mib, "replies": replies}


def flood_many_frames(endpoint: str, connections: int, frames: int) -> dict[str, Any]:
    """The residual risk of spec 01 1.3: one message of many frames, each within the frame bound (4 MiB at
    the default 1 MiB limit). libzmq buffers the whole message before the server can refuse it."""
    import zmq

    frame = bytes(4 * 1024 * 1024)
    context = zmq.Context()
    replies = 0
    try:
        sockets = []
        for _ in range(connections):
            sock = context.socket(zmq.DEALER)
            sock.setsockopt(zmq.LINGER, 0)
            sock.connect(endpoint)
            sockets.append(sock)
        for sock in sockets:
            sock.send_multipart([frame] * frames, copy=False)
        for sock in sockets:
            if sock.poll(60_000):
                replies += json.loads(sock.recv_multipart()[-1])["error"]["code"] == "PayloadTooLarge"
    finally:
        context.destroy(linger=0)
    return {"connections": connections, "frames_per_message": frames, "message_mib": 4 * frames,
            "payload_too_large_replies": replies}


def _closed(sock: Any) -> bool:
    """Whether the peer closed this connection (whatever it sent before, e.g. its ZMTP greeting)."""
    sock.settimeout(0.01)
    try:
        while True:
            if sock.recv(65536) == b"":
                return True
    except TimeoutError:
        return False
    except OSError:
        return True


def flood_silent_connections(endpoint: str, connections: int, hold_s: float) -> dict[str, Any]:
    """Raw TCP connections that never send a greeting, held open; fresh clients try to get in meanwhile."""
    import resource
    import socket

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = connections + 256
    if soft != resource.RLIM_INFINITY and soft < wanted:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(wanted, hard) if hard != resource.RLIM_INFINITY else wanted,
                                                    hard))
    host, port = endpoint.removeprefix("tcp://").rsplit(":", 1)
    held: list[socket.socket] = []
    fresh: list[float | None] = []
    try:
        for _ in range(connections):
            try:
                # From another loopback address, as an attacker elsewhere would: the victim and the fresh
                # clients keep 127.0.0.1 (the per-address cap counts per address).
                held.append(socket.create_connection((host, int(port)), timeout=5, source_address=("127.0.0.2", 0)))
            except OSError:
                break
        deadline = time.monotonic() + hold_s
        while time.monotonic() < deadline:
            fresh.append(_fresh_client_latency(endpoint))
            time.sleep(0.2)
        closed_by_server = sum(1 for sock in held if _closed(sock))
    finally:
        for sock in held:
            sock.close()
    got_in = [f for f in fresh if f is not None]
    return {"connections_opened": len(held), "closed_by_server": closed_by_server, "fresh_clients": len(fresh),
            "fresh_clients_refused": len(fresh) - len(got_in),
            "fresh_worst_ms": round(max(got_in) * 1000, 1) if got_in else None}


def floods(data_dir: Path, *, fuzz_frames: int, absurd: tuple[int, int], silent: tuple[int, float],
           many: tuple[int, int] = (2, 32)) -> dict[str, Any]:
    """Each flood against a fresh server while a victim client keeps working: victim latency, peak RSS."""
    results: dict[str, Any] = {}
    runs = [("fuzz", lambda ep: flood_fuzz(ep, fuzz_frames)),
            ("absurd-frames", lambda ep: flood_absurd_frames(ep, *absurd)),
            ("silent-connections", lambda ep: flood_silent_connections(ep, *silent)),
            ("many-frames", lambda ep: flood_many_frames(ep, *many))]
    for name, run in runs:
        # The server runs with 1,024 descriptors, as on a default Linux box (the setting).
        server = start_server(data_dir / name, "--handshake-timeout", "5", nofile=1024)
        try:
            assert server.endpoint is not None
            before = peak_rss_kib(server.pid)
            victim = Victim(server.endpoint)
            figures = run(server.endpoint)
            results[name] = {**figures, **victim.stop(), "server_rss_before_mib": round(before / 1024, 1),
                             "server_peak_rss_mib": round(peak_rss_kib(server.pid) / 1024, 1),
                             "server_alive": server.running}
        finally:
            server.stop()
    return results


def main(argv: list[str] | None = None) -> int:
    import tempfile

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="what", required=True)
    s = sub.add_parser("storm")
    s.add_argument("--kills", type=int, default=50)
    s.add_argument("--sessions", type=int, default=3)
    s.add_argument("--seed", type=int, default=0)
    ld = sub.add_parser("load")
    ld.add_argument("--clients", type=int, default=50)
    ld.add_argument("--seconds", type=float, default=30.0)
    ld.add_argument("--seed", type=int, default=0)
    fl = sub.add_parser("floods")
    fl.add_argument("--fuzz-frames", type=int, default=20_000)
    fl.add_argument("--absurd-connections", type=int, default=8)
    fl.add_argument("--absurd-mib", type=int, default=128)
    fl.add_argument("--silent-connections", type=int, default=1100)
    fl.add_argument("--silent-hold", type=float, default=12.0)
    args = parser.parse_args(argv)
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="stui-evidence-") as tmp:
        if args.what == "floods":
            found = floods(Path(tmp), fuzz_frames=args.fuzz_frames, absurd=(args.absurd_connections, args.absurd_mib),
                           silent=(args.silent_connections, args.silent_hold))
            print(json.dumps({"what": "floods", **found, "wall_s": round(time.monotonic() - started, 1)}, indent=2))
            return 0
        if args.what == "storm":
            figures = sigkill_storm(Path(tmp), kills=args.kills, sessions=args.sessions, seed=args.seed)
        else:
            figures = mixed_load(Path(tmp), clients=args.clients, seconds=args.seconds, seed=args.seed)
    print(json.dumps({"what": args.what, **figures.summary(), "wall_s": round(time.monotonic() - started, 1)},
                     indent=2))
    return 0 if not figures.problems else 1


if __name__ == "__main__":
    sys.exit(main())
