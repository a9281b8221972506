"""The proxy's judge as a process of its own: `python -m stui_protocol_kit.conformance.proxy_judge SETUP`.

`stui-conformance proxy` starts it (conformance/proxy.py, `_ProcessJudge`) so that judging never holds the
relay's interpreter lock. SETUP is one JSON object: the judge's settings, the relay's PUSH endpoint that
feeds it (`[kind, connection, socket type, time, *frames]` per message or event) and its PULL endpoint for
what goes back ("ready", "stop" at the first MUST finding with --fail-fast, and the final counts). Findings
are printed to standard output (shared with the relay: rich on a terminal, plain when piped) as they are
found.

It exits when the relay says "end" (after judging everything before it), or when its parent process is
gone (the relay was killed): it must never outlive the proxy, and never write a token (the Judge scrubs).
"""

from __future__ import annotations

import dataclasses
import json
import os
import sys
from typing import Any

import zmq

from stui_protocol_kit.conformance.output import Output
from stui_protocol_kit.conformance.proxy import Judge, JudgeSettings
from stui_protocol_kit.protocol.traffic_checks import Finding, describe

ORPHAN_CHECK_MS = 500


def main(argv: list[str] | None = None) -> int:
    setup = json.loads((argv or sys.argv[1:])[0])
    settings = JudgeSettings(**setup["settings"])
    parent = os.getppid()
    context = zmq.Context()
    feed = context.socket(zmq.PULL)
    feed.setsockopt(zmq.LINGER, 0)
    feed.setsockopt(zmq.RCVHWM, 0)
    feed.connect(setup["feed"])
    back = context.socket(zmq.PUSH)
    back.setsockopt(zmq.LINGER, 5000)
    back.connect(setup["back"])
    out = Output()

    def send_back(message: dict[str, Any]) -> None:
        back.send(json.dumps(message).encode())

    def finding(found: Finding) -> None:
        out.line(("VIOLATION", "fail"), f" {describe(found)}")
        out.flush()

    def event(item: dict[str, Any]) -> None:
        if item["kind"] in ("judge-backlog", "judge-error"):
            out.line(("warning", "warn"), f": {item['detail']}")
            out.flush()

    judge = Judge(settings, on_finding=finding, on_event=event, stop=lambda: send_back({"kind": "stop"}))
    send_back({"kind": "ready"})
    try:
        while True:
            if not feed.poll(ORPHAN_CHECK_MS):
                if os.getppid() != parent:
                    break  # the relay is gone without saying "end"
                continue
            kind_b, label_b, socket_b, at_b, *frames = feed.recv_multipart()
            kind, label, at = kind_b.decode(), label_b.decode(), float(at_b)
            socket_type = socket_b.decode() or None
            try:
                if kind in ("request", "reply"):
                    judge.message(kind, label, socket_type, frames, at)
                elif kind == "tick":
                    judge.tick(at)
                elif kind == "end":
                    judge.finish(label, at)
                    send_back({"kind": "counts", "counts": dataclasses.asdict(judge.counts)})
                    return 0
                else:
                    judge.connection(kind, label, socket_type, at)
            except Exception as exc:  # report, and go on judging what follows
                event({"kind": "judge-error", "detail": f"{type(exc).__name__}: {exc}"})
    finally:
        feed.close(0)
        back.close()
        context.term()
    return 0


if __name__ == "__main__":
    sys.exit(main())
