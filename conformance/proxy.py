"""The validating proxy: a transparent ZeroMQ relay between STUI clients and a server that checks both
directions live, out of band.

Theory of operation: clients connect to a ROUTER socket (`listen`); each client connection gets its own
DEALER socket to the server (`upstream`), so the server sees as many connections as there are clients, and
REQ and DEALER clients, several at once, work as they do without the proxy. One thread polls all sockets;
every message is forwarded first, with the very frames received (the bytes forwarded are the bytes
received; the REQ delimiter is forwarded as a frame like any other), and judged after: `TrafficChecker`
(protocol/traffic_checks.py) runs the client rules on requests and the reply checks of `run` on replies
paired with their requests, and reports requests unanswered within `timeout_s`. A request is therefore
checked while the server works on it, and a reply after it has left: checking adds no latency of its own
to the exchange as long as it is faster than the server.

Findings go out of band only - `on_finding` (the terminal) and `findings_file` (JSON Lines) - never into
the traffic. `transcript` records every message (conformance/transcript.py; tokens redacted). `fail_fast`
stops at the first finding that breaks a MUST requirement.

A client connection that goes away (the ROUTER's monitor reports the disconnect of the socket its
messages arrived on) has its DEALER closed once its outstanding requests are answered or `timeout_s` has
passed. Every socket has LINGER 0 and bounded sends; nothing blocks for longer than a poll interval.

This module must never change, delay for judging, or inject a message, and never write a token (findings and
transcripts are scrubbed by the rules' token book and redaction).
"""

from __future__ import annotations

import contextlib
import itertools
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import zmq
from zmq.utils.monitor import recv_monitor_message

from stui_protocol_kit.conformance.transcript import TranscriptWriter
from stui_protocol_kit.protocol.codec import encode
from stui_protocol_kit.protocol.facts import PROTOCOL_VERSION
from stui_protocol_kit.protocol.requirements import requirements
from stui_protocol_kit.protocol.traffic_checks import DEFAULT_TIMEOUT_S, Finding, TrafficChecker

POLL_MS = 50
PROBE_TIMEOUT_S = 2.0


class ProxyUnavailable(RuntimeError):
    """The proxy cannot listen where it was told."""


@dataclass
class _Client:
    label: str
    routing_id: bytes
    upstream: zmq.Socket
    socket_type: str | None
    gone_at: float | None = None


@dataclass
class Counts:
    connections: int = 0
    requests: int = 0
    replies: int = 0
    findings: dict[str, int] = field(default_factory=dict)  # requirement -> count
    must_findings: int = 0


class Proxy:
    """`start()` binds and probes the server, `serve()` relays until stopped, `close()` releases everything."""

    def __init__(self, listen: str, upstream: str, *, transcript: str | Path | None = None,
                 findings_file: str | Path | None = None, on_finding: Callable[[Finding], None] | None = None,
                 on_event: Callable[[dict[str, Any]], None] | None = None, timeout_s: float = DEFAULT_TIMEOUT_S,
                 fail_fast: bool = False, context: zmq.Context | None = None, probe: bool = True) -> None:
        self.listen, self.upstream_endpoint = listen, upstream
        self.timeout_s = timeout_s
        self.fail_fast = fail_fast
        self.on_finding = on_finding or (lambda _f: None)
        self.on_event = on_event or (lambda _e: None)
        self._own_context = context is None
        self.context = context or zmq.Context()
        self.probe = probe
        self.transcript_path = transcript
        self.findings_path = findings_file
        self.checker = TrafficChecker(timeout_s=timeout_s)
        self.counts = Counts()
        self.endpoint = ""
        self.stopped_by = ""
        self.front: zmq.Socket | None = None
        self.monitor: zmq.Socket | None = None
        self.poller = zmq.Poller()
        self._by_routing_id: dict[bytes, _Client] = {}
        self._by_upstream: dict[zmq.Socket, _Client] = {}
        self._fd_clients: dict[int, set[bytes]] = {}
        self._numbers = itertools.count(1)
        self._stop = False
        self._started = time.monotonic()
        self.transcript: TranscriptWriter | None = None
        self._findings: TextIO | None = None
        self._levels = {r.id: r.level for r in requirements().values()}

    # -- life cycle -----------------------------------------------------------------------------------

    def start(self) -> str:
        front = self.context.socket(zmq.ROUTER)
        front.setsockopt(zmq.LINGER, 0)
        front.setsockopt(zmq.SNDTIMEO, 1000)
        try:
            front.bind(self.listen)
        except zmq.ZMQError as exc:
            front.close(0)
            raise ProxyUnavailable(f"cannot listen on {self.listen}: {exc}") from exc
        self.front = front
        self.endpoint = front.getsockopt(zmq.LAST_ENDPOINT).decode()
        self.monitor = front.get_monitor_socket(zmq.EVENT_DISCONNECTED)
        self.poller.register(front, zmq.POLLIN)
        self.poller.register(self.monitor, zmq.POLLIN)
        limits = self._probe_limits() if self.probe else None
        if limits:
            self.checker.limits.update(limits)
        if self.transcript_path is not None:
            self.transcript = TranscriptWriter(self.transcript_path, recorder="proxy", listen=self.endpoint,
                                               upstream=self.upstream_endpoint, limits=limits,
                                               scrub=self.checker.rules.scrub, clock=time.monotonic)
            self.transcript.started = self._started
        if self.findings_path is not None:
            self._findings = open(self.findings_path, "w", encoding="utf-8")  # noqa: SIM115 - closed by close()
        return self.endpoint

    def _probe_limits(self) -> dict[str, Any] | None:
        """The server's hello limits, asked on a connection of the proxy's own (not a client's)."""
        sock = self.context.socket(zmq.DEALER)
        sock.setsockopt(zmq.LINGER, 0)
        try:
            sock.connect(self.upstream_endpoint)
            request = {"id": "stui-proxy-probe", "version": PROTOCOL_VERSION, "command": "hello", "parameters": {}}
            sock.send(encode(request))
            if sock.poll(int(PROBE_TIMEOUT_S * 1000)):
                reply = json.loads(sock.recv())
                limits = (reply.get("result") or {}).get("limits") if isinstance(reply, dict) else None
                if isinstance(limits, dict):
                    return {k: v for k, v in limits.items() if isinstance(v, int)}
            self.on_event({"kind": "upstream-unavailable", "detail": f"no hello from {self.upstream_endpoint} within"
                           f" {PROBE_TIMEOUT_S:g}s: limits unknown until a hello passes"})
        except (zmq.ZMQError, ValueError) as exc:
            self.on_event({"kind": "upstream-unavailable", "detail": str(exc)})
        finally:
            sock.close(0)
        return None

    def request_stop(self, why: str = "signal") -> None:
        self.stopped_by = self.stopped_by or why
        self._stop = True

    def close(self) -> None:
        for client in list(self._by_routing_id.values()):
            client.upstream.close(0)
        self._by_routing_id.clear()
        self._by_upstream.clear()
        if self.front is not None:
            with contextlib.suppress(zmq.ZMQError):
                self.front.disable_monitor()
            self.front.close(0)
            self.front = None
        if self.monitor is not None:
            self.monitor.close(0)
            self.monitor = None
        if self.transcript is not None:
            self.transcript.event("end", detail=self.stopped_by or "closed")
            self.transcript.close()
        if self._findings is not None:
            self._findings.close()
        if self._own_context:
            self.context.term()

    def now(self) -> float:
        return time.monotonic() - self._started

    # -- the loop -------------------------------------------------------------------------------------

    def serve(self) -> None:
        assert self.front is not None
        while not self._stop:
            events = dict(self.poller.poll(POLL_MS))
            if self.front in events:
                self._from_clients()
            for sock in [s for s in events if s in self._by_upstream]:
                self._from_server(self._by_upstream[sock])
            if self.monitor in events:
                self._disconnects()
            for finding in self.checker.overdue(self.now()):
                self._report(finding)
            self._retire()
            if self.transcript is not None:
                self.transcript.flush()
            if self._findings is not None:
                self._findings.flush()

    def _from_clients(self) -> None:
        assert self.front is not None
        while True:
            try:
                frames = self.front.recv_multipart(zmq.NOBLOCK, copy=False)
            except zmq.Again:
                return
            routing_id = frames[0].bytes
            client = self._by_routing_id.get(routing_id) or self._connect(routing_id, frames)
            rest = frames[1:]
            # Forward first, the frames as received; then judge.
            try:
                client.upstream.send_multipart(rest, zmq.NOBLOCK, copy=False)
            except zmq.Again:
                self.on_event({"kind": "upstream-full", "connection": client.label})
            self._judge_request(client, [f.bytes for f in rest])

    def _connect(self, routing_id: bytes, frames: list[zmq.Frame]) -> _Client:
        upstream = self.context.socket(zmq.DEALER)
        upstream.setsockopt(zmq.LINGER, 0)
        upstream.setsockopt(zmq.SNDHWM, 10_000)
        upstream.connect(self.upstream_endpoint)
        socket_type = None
        with contextlib.suppress(zmq.ZMQError, AttributeError):
            socket_type = frames[-1].get("Socket-Type")
        with contextlib.suppress(zmq.ZMQError, AttributeError, TypeError, ValueError):
            self._fd_clients.setdefault(int(frames[-1].get(zmq.SRCFD)), set()).add(routing_id)
        client = _Client(f"c{next(self._numbers)}", routing_id, upstream, socket_type)
        self._by_routing_id[routing_id] = client
        self._by_upstream[upstream] = client
        self.poller.register(upstream, zmq.POLLIN)
        self.counts.connections += 1
        self.on_event({"kind": "connect", "connection": client.label, "socket": socket_type or "?"})
        if self.transcript is not None:
            self.transcript.event("connect", connection=client.label, detail=socket_type)
        return client

    def _from_server(self, client: _Client) -> None:
        assert self.front is not None
        while True:
            try:
                frames = client.upstream.recv_multipart(zmq.NOBLOCK, copy=False)
            except zmq.Again:
                return
            with contextlib.suppress(zmq.ZMQError):  # a client gone: ROUTER drops it, as the server's would
                self.front.send_multipart([client.routing_id, *frames], copy=False)
            self._judge_reply(client, [f.bytes for f in frames])

    # -- judging (after forwarding) -------------------------------------------------------------------

    def _judge_request(self, client: _Client, rest: list[bytes]) -> None:
        self.counts.requests += 1
        req_framed = len(rest) > 1 and rest[0] == b""
        body = rest[1:] if req_framed else rest
        at = self.now()
        checked, findings = self.checker.request(client.label, body, at=at, req_framed=req_framed,
                                                 socket_type=client.socket_type)
        if self.transcript is not None:
            self.transcript.message("request", client.label, body, req_framed=req_framed, socket=client.socket_type,
                                    decoded=checked.message, decodable=checked.decode_error is None
                                    and len(body) == 1, at=at)
        for finding in findings:
            self._report(finding)

    def _judge_reply(self, client: _Client, frames: list[bytes]) -> None:
        self.counts.replies += 1
        req_framed = len(frames) > 1 and frames[0] == b""
        body = frames[1:] if req_framed else frames
        at = self.now()
        reply = self.checker.reply(client.label, body, at=at)
        if self.transcript is not None:
            decodable = len(body) == 1 and reply.decode_error is None
            self.transcript.message("reply", client.label, body, req_framed=req_framed, socket=client.socket_type,
                                    decoded=reply.message, decodable=decodable, at=at)
        for finding in reply.findings:
            self._report(finding)

    def _report(self, finding: Finding) -> None:
        requirement = finding.problem.requirement
        self.counts.findings[requirement] = self.counts.findings.get(requirement, 0) + 1
        must = self._levels.get(requirement, "MUST") == "MUST"
        self.counts.must_findings += must
        if self._findings is not None:
            self._findings.write(json.dumps({**finding.as_dict(), "level": "MUST" if must else "SHOULD"},
                                            ensure_ascii=False, default=str) + "\n")
        self.on_finding(finding)
        if must and self.fail_fast:
            self.request_stop("fail-fast")

    # -- connections that go away ---------------------------------------------------------------------

    def _disconnects(self) -> None:
        assert self.monitor is not None
        while True:
            try:
                event = recv_monitor_message(self.monitor, zmq.NOBLOCK)
            except zmq.Again:
                return
            if event["event"] == zmq.EVENT_DISCONNECTED:
                for routing_id in self._fd_clients.pop(int(event["value"]), set()):
                    client = self._by_routing_id.get(routing_id)
                    if client is not None and client.gone_at is None:
                        client.gone_at = self.now()
                        self.on_event({"kind": "disconnect", "connection": client.label})
                        if self.transcript is not None:
                            self.transcript.event("disconnect", connection=client.label)

    def _retire(self) -> None:
        """Close the server connection of a client that left, once nothing it sent waits for a reply."""
        now = self.now()
        for client in [c for c in self._by_routing_id.values() if c.gone_at is not None]:
            if self.checker.outstanding(client.label) == 0 or now - client.gone_at > self.timeout_s:
                self.poller.unregister(client.upstream)
                client.upstream.close(0)
                del self._by_routing_id[client.routing_id]
                del self._by_upstream[client.upstream]
                self.checker.forget(client.label)

    @property
    def open_connections(self) -> int:
        return len(self._by_routing_id)
