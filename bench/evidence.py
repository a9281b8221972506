"""Evidence against bad luck and load: a SIGKILL storm and a many-client mixed load, each ending with every
acknowledged snapshot verified after a restart. Prints figures (kills, clients, requests, peak RSS, worst
latency); tests/evidence/ runs the same code at CI size and asserts only what must hold (nothing
acknowledged lost), never a timing.

    python bench/evidence.py storm --kills 50          # the long mode of the SIGKILL storm
    python bench/evidence.py load --clients 50 --seconds 30
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


def start_server(data_dir: Path, *extra: str) -> ServerProcess:
    server = ServerProcess([*SERVER, "--bind", "tcp://127.0.0.1:0", "--data-dir", str(data_dir), "--log-level",
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
    args = parser.parse_args(argv)
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="stui-evidence-") as tmp:
        if args.what == "storm":
            figures = sigkill_storm(Path(tmp), kills=args.kills, sessions=args.sessions, seed=args.seed)
        else:
            figures = mixed_load(Path(tmp), clients=args.clients, seconds=args.seconds, seed=args.seed)
    print(json.dumps({"what": args.what, **figures.summary(), "wall_s": round(time.monotonic() - started, 1)},
                     indent=2))
    return 0 if not figures.problems else 1


if __name__ == "__main__":
    sys.exit(main())
