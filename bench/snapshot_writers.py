"""Load for bench/run.py: N clients (one thread and one DEALER each, one session each) snapshotting a
state of B bytes as fast as the server acknowledges, until stdin closes.

Run: python bench/snapshot_writers.py ENDPOINT --clients N --state-bytes B

Prints "ready" once every client holds a session, then, when stdin closes, one JSON line:
{"snapshots": acknowledged, "seconds": measured, "errors": replies that were not success}. A process
of its own, so that its threads never share the measuring process's interpreter lock.
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time

import zmq

from stui_protocol_kit.protocol.client import ProtocolClient
from stui_protocol_kit.protocol.facts import PROTOCOL_VERSION


def client_state(state_bytes: int) -> dict:
    """A client-owned inspector document of about `state_bytes` bytes (string leaves in one object)."""
    chunk = "x" * 1000
    return {"inspector": {f"pane{i}": chunk for i in range(max(1, state_bytes // 1010))}, "preferences": {}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("endpoint")
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--state-bytes", type=int, default=256 * 1024)
    args = parser.parse_args()
    context = zmq.Context()
    state = client_state(args.state_bytes)
    stop = threading.Event()
    counts = [0] * args.clients
    errors = [0] * args.clients
    ready = threading.Barrier(args.clients + 1)

    def writer(index: int) -> None:
        with ProtocolClient(args.endpoint, "dealer", timeout_s=60, context=context) as client:
            created = client.call("session.create", {"client_id": f"writer{index}"}).reply["result"]
            params = {"session_id": created["session_id"], "token": created["token"], "state": state}
            ready.wait()
            n = 0
            while not stop.is_set():
                n += 1
                body = json.dumps({"id": f"w{index}-{n}", "version": PROTOCOL_VERSION,
                                   "command": "session.snapshot", "parameters": params}).encode()
                client.send_frames([body])
                reply = client.receive()
                if b'"status":"success"' in reply:
                    counts[index] += 1
                else:
                    errors[index] += 1

    threads = [threading.Thread(target=writer, args=(i,), daemon=True) for i in range(args.clients)]
    for thread in threads:
        thread.start()
    ready.wait()
    started = time.perf_counter()
    print("ready", flush=True)
    sys.stdin.read()  # until the bench closes our stdin
    stop.set()
    for thread in threads:
        thread.join(60)
    seconds = time.perf_counter() - started
    print(json.dumps({"snapshots": sum(counts), "seconds": seconds, "errors": sum(errors)}), flush=True)
    context.term()


if __name__ == "__main__":
    main()
