"""Hostile peers against the reference server (issue 10): what a flood costs in memory and in other
clients' latency, measured side by side in one run.

Run: python bench/bench_hostile.py [--scenario NAME ...] [--baseline-python PATH] [--requests N]

Scenarios (each against a fresh server process on loopback, real SQLite store):
- victim-latency: one client's `session.validate` latency alone, then while another connection
  floods the server (4 requests in flight) with each costly kind of request the limits allow:
  evaluate string bombs (~10 million characters of concatenation), snapshots of ~1 MiB of integers,
  requests refused at the schema carrying ~1 MiB of objects. p50/p99/max per flood.
- resume-rss: one session holding ~1 MiB of state, then N `session.resume` with fresh ids (the retry
  cache amplification: 167 bytes in, 1 MiB pinned per request before 1.0.2). Prints the server's RSS
  before and after and its peak (VmHWM).
- closed-rss: N/20 sessions of ~1 MiB of state each, then closed (before 1.0.2 each tombstone kept
  its whole state in memory until purged, 24 h by default).
- evaluate-rss: N `evaluate` with fresh ids, each answering a ~500,000-character string: replies the
  cache does keep, so its byte bound (retry_cache_bytes, 64 MiB by default) is what holds RSS.

`--baseline-python` runs the same scenarios against the server of another installation (for example
a checkout of the code before the fix: `/work/venvs/main/bin/python`) right after, so both figures come
from one run on one machine. Figures only; tests check behaviour.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

from stui_protocol_kit.protocol.client import ProtocolClient
from stui_protocol_kit.protocol.facts import PROTOCOL_VERSION
from stui_protocol_kit.protocol.server_process import ServerProcess

MIB = 1024 * 1024


def rss_kib(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM (peak) of a process, in KiB, from /proc (Linux)."""
    out = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            out[key] = int(value.split()[0])
    return out


def body(command: str, parameters: dict, request_id: str) -> bytes:
    return json.dumps({"id": request_id, "version": PROTOCOL_VERSION, "command": command,
                       "parameters": parameters}, separators=(",", ":")).encode()


def pipelined(client: ProtocolClient, bodies: list[bytes], window: int = 8) -> list[dict]:
    """Send with `window` requests in flight; the decoded replies' status/error only (memory stays flat)."""
    outcomes: list[dict] = []
    sent = 0
    while len(outcomes) < len(bodies):
        while sent < len(bodies) and sent - len(outcomes) < window:
            client.send_frames([bodies[sent]])
            sent += 1
        reply = json.loads(client.receive())
        outcomes.append({"status": reply.get("status"), "error": (reply.get("error") or {}).get("code")})
    return outcomes


def create(client: ProtocolClient, client_id: str) -> dict:
    reply = client.call("session.create", {"client_id": client_id}).reply
    assert reply["status"] == "success", reply
    return {"session_id": reply["result"]["session_id"], "token": reply["result"]["token"]}


def resume_rss(client: ProtocolClient, pid: int, n: int) -> dict:
    auth = create(client, "bench-resume")
    blob = "x" * (MIB - 16 * 1024)  # the state document close to max_message_bytes (1 MiB by default)
    saved = client.call("session.snapshot", {**auth, "state": {"preferences": {"blob": blob}}}).reply
    assert saved["status"] == "success", saved
    before = rss_kib(pid)
    t = time.perf_counter()
    outcomes = pipelined(client, [body("session.resume", auth, f"resume-{i}") for i in range(n)])
    elapsed = time.perf_counter() - t
    after = rss_kib(pid)
    ok = sum(o["status"] == "success" for o in outcomes)
    return {"requests": n, "succeeded": ok, "seconds": elapsed, "before": before, "after": after}


def evaluate_rss(client: ProtocolClient, pid: int, n: int) -> dict:
    auth = create(client, "bench-evaluate")
    code = "big := '" + "x" * 1000 + "'." + " big := big , big." * 9 + " big"  # 512,000 characters
    before = rss_kib(pid)
    t = time.perf_counter()
    outcomes = pipelined(client, [body("evaluate", {**auth, "code": code}, f"eval-{i}") for i in range(n)])
    elapsed = time.perf_counter() - t
    after = rss_kib(pid)
    ok = sum(o["status"] == "success" for o in outcomes)
    return {"requests": n, "succeeded": ok, "seconds": elapsed, "before": before, "after": after}


def _bomb_bodies(auth: dict, kind: str, n: int) -> list[bytes]:
    """The attacker's requests: each valid (or for `junk`, refused at the schema) and as costly as the
    limits allow, each with a fresh id so nothing is answered from the retry cache."""
    if kind == "string-bomb":  # ~10 million characters of concatenations, then an error (output limit)
        code = "a := '" + "x" * 20_000 + "'." + " b := a , a , a , a , a , a , a , a , a , a." * 700 + " 1"
        return [body("evaluate", {**auth, "code": code[:32_768]}, f"bomb-{i}") for i in range(n)]
    numbers = "[" + ",".join(["1"] * ((MIB - 16 * 1024) // 2)) + "]"
    if kind == "number-array":  # a snapshot of ~1 MiB of integers in the client's preferences
        return [body("session.snapshot", {**auth, "state": {"preferences": {"v": json.loads(numbers)}}},
                     f"bomb-{i}") for i in range(n)]
    objects = [{"a": 1}] * ((MIB - 16 * 1024) // 8)  # refused at the schema (an unknown parameter)
    return [body("evaluate", {**auth, "code": "1", "junk": objects}, f"bomb-{i}") for i in range(n)]


FLOODS = ("string-bomb", "number-array", "junk-objects")


def victim_latency(endpoint: str, n: int) -> dict:
    """A victim's session.validate latency, alone and while one attacker connection floods the server
    with each kind of costly request (pipelined, 4 in flight), side by side."""
    victim = ProtocolClient(endpoint, "dealer", timeout_s=120)
    attacker = ProtocolClient(endpoint, "dealer", timeout_s=120)
    try:
        mine = create(victim, "bench-victim")
        theirs = create(attacker, "bench-attacker")
        out = {}
        for flood in (None, *FLOODS):
            stop = threading.Event()
            outcomes: set[str] = set()
            thread = None
            if flood is not None:
                bodies = _bomb_bodies(theirs, flood, 8)

                def run(bodies: list[bytes] = bodies, stop: threading.Event = stop,
                        outcomes: set[str] = outcomes) -> None:
                    sent = received = 0
                    while not stop.is_set() or received < sent:
                        while not stop.is_set() and sent - received < 4:
                            raw = bodies[sent % len(bodies)].replace(b'"bomb-', b'"b%d-' % sent, 1)
                            attacker.send_frames([raw])
                            sent += 1
                        answer = json.loads(attacker.receive())
                        received += 1
                        outcomes.add((answer.get("error") or {}).get("code") or answer.get("status"))

                thread = threading.Thread(target=run, daemon=True)
                thread.start()
                time.sleep(0.5)  # the flood is under way
            samples = []
            for i in range(n):
                t = time.perf_counter()
                reply = victim.call("session.validate", mine, request_id=f"v-{flood}-{i}").reply
                samples.append(time.perf_counter() - t)
                assert reply["status"] == "success", reply
            stop.set()
            if thread is not None:
                thread.join(120)
            samples.sort()
            out[flood or "alone"] = {"p50": samples[len(samples) // 2], "p99": samples[int(len(samples) * 0.99)],
                                     "max": samples[-1], "attacker got": ",".join(sorted(outcomes)) or "-"}
        return out
    finally:
        victim.close()
        attacker.close()


def closed_rss(client: ProtocolClient, pid: int, n: int) -> dict:
    """n // 20 sessions of ~1 MiB of state each, then closed: what the tombstones keep in memory."""
    count = max(1, n // 20)
    blob = "x" * (MIB - 16 * 1024)
    before = rss_kib(pid)
    t = time.perf_counter()
    closed = 0
    for i in range(count):
        auth = create(client, f"bench-closed-{i}")
        saved = client.call("session.snapshot", {**auth, "state": {"preferences": {"blob": blob}}}).reply
        assert saved["status"] == "success", saved
        closed += client.call("session.close", auth).reply["status"] == "success"
    time.sleep(3)  # a housekeeping pass (every 2 s by default)
    elapsed = time.perf_counter() - t
    return {"requests": count, "succeeded": closed, "seconds": elapsed, "before": before, "after": rss_kib(pid)}


SCENARIOS: dict[str, Callable[[ProtocolClient, int, int], dict]] = {
    "resume-rss": resume_rss, "evaluate-rss": evaluate_rss, "closed-rss": closed_rss,
}


def run_one(python: str, scenario: str, n: int) -> dict:
    with tempfile.TemporaryDirectory() as data, ServerProcess(
            [python, "-m", "stui_protocol_kit.reference_server.cli", "--bind", "tcp://127.0.0.1:0",
             "--data-dir", str(Path(data) / "store"), "--log-level", "warning"], name=scenario) as server:
        assert server.endpoint and server.process
        client = ProtocolClient(server.endpoint, "dealer", timeout_s=120)
        try:
            return SCENARIOS[scenario](client, server.process.pid, n)
        finally:
            client.close()


def run_latency(python: str, n: int) -> dict:
    with tempfile.TemporaryDirectory() as data, ServerProcess(
            [python, "-m", "stui_protocol_kit.reference_server.cli", "--bind", "tcp://127.0.0.1:0",
             "--data-dir", str(Path(data) / "store"), "--log-level", "warning"], name="latency") as server:
        assert server.endpoint
        return victim_latency(server.endpoint, n)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scenario", action="append", choices=[*sorted(SCENARIOS), "victim-latency"])
    parser.add_argument("--victim-requests", type=int, default=60)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--baseline-python", help="also run the scenarios on this interpreter's installation")
    args = parser.parse_args()
    servers = [("this", sys.executable)] + ([("baseline", args.baseline_python)] if args.baseline_python else [])
    print(f"{'scenario':<14} {'server':<9} {'requests':>8} {'ok':>6} {'s':>7} {'RSS before MiB':>15} "
          f"{'RSS after MiB':>14} {'peak MiB':>9}")
    chosen = args.scenario or [*sorted(SCENARIOS), "victim-latency"]
    for scenario in [s for s in chosen if s in SCENARIOS]:
        for label, python in servers:
            r = run_one(python, scenario, args.requests)
            print(f"{scenario:<14} {label:<9} {r['requests']:>8} {r['succeeded']:>6} {r['seconds']:>7.1f} "
                  f"{r['before']['VmRSS'] / 1024:>15.0f} {r['after']['VmRSS'] / 1024:>14.0f} "
                  f"{r['after']['VmHWM'] / 1024:>9.0f}", flush=True)
    if "victim-latency" in chosen:
        print(f"\nvictim session.validate latency (ms), {args.victim_requests} requests, one attacker connection "
              "with 4 requests in flight")
        print(f"{'server':<9} {'flood':<13} {'p50':>8} {'p99':>8} {'max':>8}  attacker got")
        for label, python in servers:
            for flood, r in run_latency(python, args.victim_requests).items():
                print(f"{label:<9} {flood:<13} {r['p50'] * 1e3:>8.1f} {r['p99'] * 1e3:>8.1f} {r['max'] * 1e3:>8.1f}  "
                      f"{r['attacker got']}", flush=True)


if __name__ == "__main__":
    main()
