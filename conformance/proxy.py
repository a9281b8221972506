"""The validating proxy: a transparent ZeroMQ relay between STUI clients and a server that checks both
directions live, out of band.

Theory of operation: clients connect to a ROUTER socket (`listen`); each client connection gets its own
DEALER socket to the server (`upstream`), so the server sees as many connections as there are clients, and
REQ and DEALER clients, several at once, work as they do without the proxy. Two parts:
1. the relay (`Proxy.serve`) polls every socket and forwards each message with the very frames received -
   the bytes forwarded are the bytes received; a REQ client's delimiter is forwarded as a frame like any
   other - and then hands the frames to the judge; it never parses a body;
2. the judge (`Judge`) takes the messages in the order they passed and runs `TrafficChecker`
   (protocol/traffic_checks.py): the client rules on requests, the reply checks of `run` on replies paired
   with their requests, requests unanswered within `timeout_s`; it writes the transcript and the findings.
The judge runs in a thread of the relay's process (`judge="thread"`, the default; the command line then has
the interpreter lock switched every 100 us instead of 5 ms, so the relay never waits long for it) or in a
process of its own (`judge="process"`, conformance/proxy_judge.py: judging then never holds the relay's
lock, and the relay's only extra work per message is one send of the frames to the judge; on this 2-core
machine the thread measured faster, bench/bench_proxy.py). Either way judging never stands between a
message and its forwarding; a judge that falls behind a burst catches up later (nothing is dropped from
judging).

Findings go out of band only - `on_finding` (thread judge), the judge process's standard output, and
`findings_file` (JSON Lines) - never into the traffic. `transcript` records every message
(conformance/transcript.py; tokens redacted). `fail_fast` stops the relay at the first finding that breaks a
MUST requirement.

A client connection that goes away (the ROUTER's monitor reports the disconnect of the socket its messages
arrived on) has its DEALER closed once as many replies as requests have passed or `timeout_s` has passed.
Every socket has LINGER 0 and non-blocking sends; the judge process is stopped on every exit path.

This module must never change, delay for judging, or inject a message, and never write a token (findings and
transcripts are scrubbed by the rules' token book and redaction).
"""

from __future__ import annotations

import contextlib
import itertools
import json
import queue
import subprocess
import sys
import threading
import time
import weakref
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal, TextIO

import zmq
from zmq.utils.monitor import recv_monitor_message

from stui_protocol_kit.conformance.transcript import TranscriptWriter
from stui_protocol_kit.protocol.codec import encode
from stui_protocol_kit.protocol.curve import ClientCurve, ServerCurve, ZapAllowList
from stui_protocol_kit.protocol.facts import PROTOCOL_VERSION
from stui_protocol_kit.protocol.requirements import requirements
from stui_protocol_kit.protocol.traffic_checks import DEFAULT_TIMEOUT_S, Finding, TrafficChecker

POLL_MS = 50
HOUSEKEEPING_S = 0.05
PROBE_TIMEOUT_S = 2.0
JUDGE_START_TIMEOUT_S = 30.0
JUDGE_FINISH_TIMEOUT_S = 60.0
JUDGE_BACKLOG = 10_000
# With a thread judge the command line switches the interpreter lock this often (default 5 ms), so the relay
# never waits long for the judge.
THREAD_JUDGE_SWITCH_INTERVAL_S = 0.0001

JudgeMode = Literal["thread", "process"]


class ProxyUnavailable(RuntimeError):
    """The proxy cannot listen where it was told, or its judge did not start."""


@dataclass
class _Client:
    label: str
    routing_id: bytes
    upstream: zmq.Socket
    socket_type: str | None
    in_flight: int = 0
    gone_at: float | None = None


@dataclass
class Counts:
    """What passed and what was found (the judge counts messages and findings, the relay connections)."""

    connections: int = 0
    requests: int = 0
    replies: int = 0
    findings: dict[str, int] = field(default_factory=dict)  # requirement -> count
    must_findings: int = 0
    judge_backlog_max: int = 0


# -- the judge ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class JudgeSettings:
    timeout_s: float = DEFAULT_TIMEOUT_S
    limits: dict[str, Any] | None = None
    transcript: str | None = None
    findings_file: str | None = None
    listen: str = ""
    upstream: str = ""
    fail_fast: bool = False
    started: float = 0.0  # the relay's monotonic start: transcript times count from it


class Judge:
    """Judges, records and reports what the relay forwarded, in the order it passed. Not thread-safe: one
    thread (or process) feeds it. `stop` is called (once) when `fail_fast` and a MUST finding meet."""

    def __init__(self, settings: JudgeSettings, *, on_finding: Callable[[Finding], None],
                 on_event: Callable[[dict[str, Any]], None], stop: Callable[[], None]) -> None:
        self.settings = settings
        self.on_finding, self.on_event, self.stop = on_finding, on_event, stop
        self.checker = TrafficChecker(settings.limits, timeout_s=settings.timeout_s)
        self.counts = Counts()
        self.levels = {r.id: r.level for r in requirements().values()}
        self.transcript: TranscriptWriter | None = None
        self.findings: TextIO | None = None
        if settings.transcript is not None:
            self.transcript = TranscriptWriter(settings.transcript, recorder="proxy", listen=settings.listen,
                                               upstream=settings.upstream, limits=settings.limits,
                                               scrub=self.checker.rules.scrub, clock=time.monotonic)
            self.transcript.started = settings.started
        if settings.findings_file is not None:
            self.findings = open(settings.findings_file, "w", encoding="utf-8")  # noqa: SIM115 - closed by finish()
        self._stopped = False

    def message(self, kind: str, label: str, socket_type: str | None, frames: list[bytes], at: float) -> None:
        req_framed = len(frames) > 1 and frames[0] == b""
        body = frames[1:] if req_framed else frames
        checker = self.checker
        if kind == "request":
            self.counts.requests += 1
            checked, findings = checker.request(label, body, at=at, req_framed=req_framed, socket_type=socket_type)
            decodable, message = checked.decode_error is None and len(body) == 1, checked.message
        else:
            self.counts.replies += 1
            reply = checker.reply(label, body, at=at)
            findings, decodable, message = reply.findings, reply.decode_error is None and len(body) == 1, reply.message
        if self.transcript is not None:
            self.transcript.message(kind, label, body, req_framed=req_framed, socket=socket_type, decoded=message,
                                    decodable=decodable, at=at)
        for finding in findings:
            self._report(finding)

    def connection(self, kind: str, label: str, socket_type: str | None, at: float) -> None:
        """connect, disconnect (recorded; the relay reports them) or forget (the relay closed its server
        connection)."""
        if kind == "forget":
            self.checker.forget(label)
            return
        if self.transcript is not None:
            self.transcript.event(kind, connection=label, detail=socket_type if kind == "connect" else None, at=at)

    def tick(self, at: float, backlog: int = 0) -> None:
        for finding in self.checker.overdue(at):
            self._report(finding)
        if backlog > self.counts.judge_backlog_max:
            self.counts.judge_backlog_max = backlog
            if backlog > JUDGE_BACKLOG:
                self.on_event({"kind": "judge-backlog", "detail": f"{backlog} messages wait to be judged"})
        if self.transcript is not None:
            self.transcript.flush()
        if self.findings is not None:
            self.findings.flush()

    def _report(self, finding: Finding) -> None:
        requirement = finding.problem.requirement
        self.counts.findings[requirement] = self.counts.findings.get(requirement, 0) + 1
        must = self.levels.get(requirement, "MUST") == "MUST"
        self.counts.must_findings += must
        if self.findings is not None:
            self.findings.write(json.dumps({**finding.as_dict(), "level": "MUST" if must else "SHOULD"},
                                           ensure_ascii=False, default=str) + "\n")
        self.on_finding(finding)
        if must and self.settings.fail_fast and not self._stopped:
            self._stopped = True
            self.stop()

    def finish(self, why: str, at: float) -> None:
        self.tick(at)
        if self.transcript is not None:
            self.transcript.event("end", detail=why, at=at)
            self.transcript.close()
        if self.findings is not None:
            self.findings.close()


class _ThreadJudge(threading.Thread):
    """The judge in a thread of the relay's process."""

    def __init__(self, proxy: Proxy, settings: JudgeSettings) -> None:
        super().__init__(name="stui-proxy-judge", daemon=True)
        self.proxy = proxy
        self.judge = Judge(settings, on_finding=proxy.on_finding, on_event=proxy.on_event,
                           stop=lambda: proxy.request_stop("fail-fast"))
        self.queue: queue.SimpleQueue[tuple[str, str, str | None, Any, float]] = queue.SimpleQueue()

    def put(self, kind: str, client: _Client | None, frames: list[bytes] | None, at: float) -> None:
        self.queue.put((kind, client.label if client else "", client.socket_type if client else None, frames, at))

    def run(self) -> None:
        judge = self.judge
        while True:
            kind, label, socket_type, frames, at = self.queue.get()
            try:
                if kind in ("request", "reply"):
                    judge.message(kind, label, socket_type, frames, at)
                elif kind == "tick":
                    judge.tick(at, self.queue.qsize())
                elif kind == "end":
                    judge.finish(label, at)
                    return
                else:
                    judge.connection(kind, label, socket_type, at)
            except Exception as exc:  # the judge's own trouble must never stop the relay
                self.proxy.on_event({"kind": "judge-error", "detail": f"{type(exc).__name__}: {exc}"})

    def finish(self, why: str, at: float) -> Counts:
        self.queue.put(("end", why, None, None, at))
        self.join(JUDGE_FINISH_TIMEOUT_S)
        return self.judge.counts

    def poll(self) -> None:
        """Nothing to collect: the thread calls the proxy's callbacks itself."""


class _ProcessJudge:
    """The judge in a process of its own (conformance/proxy_judge.py): frames go out on a PUSH socket, and a
    PULL socket brings back "ready", "stop" (fail-fast) and the final counts."""

    def __init__(self, proxy: Proxy, settings: JudgeSettings) -> None:
        self.proxy = proxy
        context = proxy.context
        self.out = context.socket(zmq.PUSH)
        self.out.setsockopt(zmq.LINGER, 2000)  # the last messages reach the judge before the relay closes
        self.out.setsockopt(zmq.SNDHWM, 0)  # never drop a message to judge: queue it
        self.back = context.socket(zmq.PULL)
        self.back.setsockopt(zmq.LINGER, 0)
        out_port = self.out.bind_to_random_port("tcp://127.0.0.1")
        back_port = self.back.bind_to_random_port("tcp://127.0.0.1")
        payload = json.dumps({"settings": asdict(settings), "feed": f"tcp://127.0.0.1:{out_port}",
                              "back": f"tcp://127.0.0.1:{back_port}"})
        self.process = subprocess.Popen([sys.executable, "-m", "stui_protocol_kit.conformance.proxy_judge", payload])
        self._finalizer = weakref.finalize(self, _kill, self.process)
        self.counts: Counts | None = None
        if not self.back.poll(int(JUDGE_START_TIMEOUT_S * 1000)):
            self.close()
            raise ProxyUnavailable(f"the judge process did not start within {JUDGE_START_TIMEOUT_S:g}s")
        self._handle(json.loads(self.back.recv()))

    def put(self, kind: str, client: _Client | None, frames: list[bytes] | None, at: float) -> None:
        head = [kind.encode(), (client.label if client else "").encode(),
                ((client.socket_type or "") if client else "").encode(), repr(at).encode()]
        self.out.send_multipart([*head, *(frames or [])])

    def poll(self) -> None:
        while self.back.poll(0):
            self._handle(json.loads(self.back.recv()))

    def _handle(self, message: dict[str, Any]) -> None:
        if message["kind"] == "stop":
            self.proxy.request_stop("fail-fast")
        elif message["kind"] == "counts":
            self.counts = Counts(**message["counts"])

    def finish(self, why: str, at: float) -> Counts:
        self.out.send_multipart([b"end", why.encode(), b"", repr(at).encode()])
        deadline = time.monotonic() + JUDGE_FINISH_TIMEOUT_S
        while self.counts is None and time.monotonic() < deadline:
            if self.back.poll(100):
                self._handle(json.loads(self.back.recv()))
            elif self.process.poll() is not None:
                break
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(10)
        self.close()
        return self.counts or Counts()

    def close(self) -> None:
        self._finalizer()
        self.out.close(0)
        self.back.close(0)


def _kill(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.kill()
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(10)


# -- the relay ---------------------------------------------------------------------------------------


class Proxy:
    """`start()` binds, probes the server and starts the judge, `serve()` relays until stopped, `close()`
    lets the judge finish and releases everything (`counts` are then final)."""

    def __init__(self, listen: str, upstream: str, *, transcript: str | Path | None = None,
                 findings_file: str | Path | None = None, on_finding: Callable[[Finding], None] | None = None,
                 on_event: Callable[[dict[str, Any]], None] | None = None, timeout_s: float = DEFAULT_TIMEOUT_S,
                 fail_fast: bool = False, context: zmq.Context | None = None, probe: bool = True,
                 judge: JudgeMode = "thread", front_curve: ServerCurve | None = None,
                 upstream_curve: ClientCurve | None = None) -> None:
        """`front_curve`: clients must talk CURVE with an allowed key; `upstream_curve`: the proxy talks
        CURVE to the server (each connection of a client gets its own upstream socket with these keys)."""
        self.listen, self.upstream_endpoint = listen, upstream
        self.front_curve, self.upstream_curve = front_curve, upstream_curve
        self._zap: ZapAllowList | None = None
        self.timeout_s = timeout_s
        self.fail_fast = fail_fast
        self.on_finding = on_finding or (lambda _f: None)
        self.on_event = on_event or (lambda _e: None)
        self._own_context = context is None
        self.context = context or zmq.Context()
        self.probe = probe
        self.judge_mode = judge
        self.transcript_path = None if transcript is None else str(transcript)
        self.findings_path = None if findings_file is None else str(findings_file)
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
        self.judge: _ThreadJudge | _ProcessJudge | None = None

    # -- life cycle -----------------------------------------------------------------------------------

    def start(self) -> str:
        if self.front_curve is not None:
            self._zap = ZapAllowList(self.context, self.front_curve.allowed_clients)
        front = self.context.socket(zmq.ROUTER)
        front.setsockopt(zmq.LINGER, 0)
        front.setsockopt(zmq.SNDTIMEO, 0)
        if self.front_curve is not None:
            front.setsockopt(zmq.ZAP_DOMAIN, b"stui")
            self.front_curve.apply(front)
        try:
            front.bind(self.listen)
        except zmq.ZMQError as exc:
            front.close(0)
            if self._zap is not None:
                self._zap.close()
                self._zap = None
            raise ProxyUnavailable(f"cannot listen on {self.listen}: {exc}") from exc
        self.front = front
        self.endpoint = front.getsockopt(zmq.LAST_ENDPOINT).decode()
        self.monitor = front.get_monitor_socket(zmq.EVENT_DISCONNECTED)
        self.poller.register(front, zmq.POLLIN)
        self.poller.register(self.monitor, zmq.POLLIN)
        settings = JudgeSettings(self.timeout_s, self._probe_limits() if self.probe else None, self.transcript_path,
                                 self.findings_path, self.endpoint, self.upstream_endpoint, self.fail_fast,
                                 self._started)
        if self.judge_mode == "process":
            judge = _ProcessJudge(self, settings)
            self.poller.register(judge.back, zmq.POLLIN)
            self.judge = judge
        else:
            self.judge = _ThreadJudge(self, settings)
            self.judge.start()
        return self.endpoint

    def _probe_limits(self) -> dict[str, Any] | None:
        """The server's hello limits, asked on a connection of the proxy's own (not a client's)."""
        sock = self.context.socket(zmq.DEALER)
        sock.setsockopt(zmq.LINGER, 0)
        if self.upstream_curve is not None:
            self.upstream_curve.apply(sock)
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
        """Let the judge judge every message that passed, then close every socket."""
        if self.judge is not None:
            connections = self.counts.connections
            self.counts = self.judge.finish(self.stopped_by or "closed", self.now())
            self.counts.connections = connections
            self.judge = None
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
        if self._zap is not None:
            self._zap.close()
            self._zap = None
        if self._own_context:
            self.context.term()

    def now(self) -> float:
        return time.monotonic() - self._started

    # -- relaying -------------------------------------------------------------------------------------

    def serve(self) -> None:
        assert self.front is not None and self.judge is not None
        front, judge, monitor = self.front, self.judge, self.monitor
        back = judge.back if isinstance(judge, _ProcessJudge) else None
        next_housekeeping = time.monotonic() + HOUSEKEEPING_S
        while not self._stop:
            for sock, _ in self.poller.poll(POLL_MS):
                if sock is front:
                    self._from_clients(front, judge)
                elif sock is monitor:
                    self._disconnects(judge)
                elif sock is back:
                    judge.poll()
                else:
                    client = self._by_upstream.get(sock)
                    if client is not None:
                        self._from_server(client, front, judge)
            if time.monotonic() >= next_housekeeping:
                self._retire(judge)
                judge.put("tick", None, None, self.now())
                next_housekeeping = time.monotonic() + HOUSEKEEPING_S

    def _from_clients(self, front: zmq.Socket, judge: _ThreadJudge | _ProcessJudge) -> None:
        while front.get(zmq.EVENTS) & zmq.POLLIN:
            frames = front.recv_multipart(copy=False)  # Frames: a new connection's metadata (socket type, fd)
            routing_id = frames[0].bytes
            client = self._by_routing_id.get(routing_id) or self._connect(routing_id, frames, judge)
            rest = frames[1:]
            try:  # forward first, the frames as received
                client.upstream.send_multipart(rest, zmq.NOBLOCK, copy=False)
                client.in_flight += 1
            except zmq.Again:
                self.on_event({"kind": "upstream-full", "connection": client.label})
            judge.put("request", client, [f.bytes for f in rest], self.now())

    def _from_server(self, client: _Client, front: zmq.Socket, judge: _ThreadJudge | _ProcessJudge) -> None:
        upstream = client.upstream
        while upstream.get(zmq.EVENTS) & zmq.POLLIN:
            frames = upstream.recv_multipart()
            with contextlib.suppress(zmq.ZMQError):  # a client gone: ROUTER drops it, as the server's would
                front.send_multipart([client.routing_id, *frames], zmq.NOBLOCK)
            client.in_flight = max(0, client.in_flight - 1)
            judge.put("reply", client, frames, self.now())

    def _connect(self, routing_id: bytes, frames: list[zmq.Frame], judge: _ThreadJudge | _ProcessJudge) -> _Client:
        upstream = self.context.socket(zmq.DEALER)
        upstream.setsockopt(zmq.LINGER, 0)
        upstream.setsockopt(zmq.SNDHWM, 10_000)
        if self.upstream_curve is not None:
            self.upstream_curve.apply(upstream)
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
        judge.put("connect", client, None, self.now())
        return client

    # -- connections that go away ---------------------------------------------------------------------

    def _disconnects(self, judge: _ThreadJudge | _ProcessJudge) -> None:
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
                        judge.put("disconnect", client, None, client.gone_at)

    def _retire(self, judge: _ThreadJudge | _ProcessJudge) -> None:
        """Close the server connection of a client that left, once nothing it sent waits for a reply."""
        now = self.now()
        for client in [c for c in self._by_routing_id.values() if c.gone_at is not None]:
            if client.in_flight == 0 or now - client.gone_at > self.timeout_s:
                self.poller.unregister(client.upstream)
                client.upstream.close(0)
                del self._by_routing_id[client.routing_id]
                del self._by_upstream[client.upstream]
                judge.put("forget", client, None, now)

    @property
    def open_connections(self) -> int:
        return len(self._by_routing_id)
