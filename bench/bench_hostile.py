"""Hostile peers against the reference server (issue 10): what a flood costs in memory and in other
clients' latency, measured side by side in one run.

Run: python bench/bench_hostile.py [--scenario NAME ...] [--baseline-python PATH] [--requests N]

Scenarios (each against a fresh server process on loopback, real SQLite store):
- resume-rss: one session holding ~1 MiB of state, then N `session.resume` with fresh ids (the retry
  cache amplification: 167 bytes in, 1 MiB pinned per request before 1.0.2). Prints the server's RSS
  before and after and its peak (VmHWM).
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
                       "parameters": parameters}).encode()


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


SCENARIOS: dict[str, Callable[[ProtocolClient, int, int], dict]] = {
    "resume-rss": resume_rss, "evaluate-rss": evaluate_rss,
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scenario", action="append", choices=sorted(SCENARIOS))
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--baseline-python", help="also run the scenarios on this interpreter's installation")
    args = parser.parse_args()
    servers = [("this", sys.executable)] + ([("baseline", args.baseline_python)] if args.baseline_python else [])
    print(f"{'scenario':<14} {'server':<9} {'requests':>8} {'ok':>6} {'s':>7} {'RSS before MiB':>15} "
          f"{'RSS after MiB':>14} {'peak MiB':>9}")
    for scenario in args.scenario or sorted(SCENARIOS):
        for label, python in servers:
            r = run_one(python, scenario, args.requests)
            print(f"{scenario:<14} {label:<9} {r['requests']:>8} {r['succeeded']:>6} {r['seconds']:>7.1f} "
                  f"{r['before']['VmRSS'] / 1024:>15.0f} {r['after']['VmRSS'] / 1024:>14.0f} "
                  f"{r['after']['VmHWM'] / 1024:>9.0f}", flush=True)


if __name__ == "__main__":
    main()
