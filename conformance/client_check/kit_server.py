"""client-check's server: one ROUTER socket answering like the reference server, while the client's every
request is checked and the scenarios provoke what a client must survive.

Theory of operation: a single-threaded loop receives from the ROUTER (short receive timeout, so the stop
flag, held replies, scenario timers and `--duration` are looked at several times a second). Each message is
split by `protocol.framing.split_envelope`; the connection's socket type comes from the ZeroMQ handshake
(the `Socket-Type` property of the frame). `protocol.client_rules.ClientRules` judges the request, the
scenario `Director` plans its answer, and the plan is carried out here: the reference server's sans-I/O
`Engine` (on a SQLite store in a temporary directory, or `--data-dir`) answers, or the kit answers in its
place, holds the reply back, drops it, or restarts (engine and socket closed, the endpoint unbound for a
moment, a new engine on the same store, the same endpoint bound again: state survives, as after a real
restart). Every reply that leaves teaches the rules and the scenarios what the client was told.

It ends when asked (`request_stop`, from a signal handler or a test), when `duration_s` has passed, or when
the client closed a session and no session it created in this run is still open.

This is the one module of conformance/ that imports the reference server (its engine, store and config;
tests/test_import_contracts.py names it): client-check *is* a server, and writing a second one would be a
copy. It must never print (events go to `on_event`), never write a token anywhere (transcript entries and
problems pass through the rules' scrubber and redaction) and never leave a socket or store open on any exit
path (`close`).
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import secrets
import shutil
import tempfile
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import zmq

from stui_protocol_kit.conformance.client_check import catalog
from stui_protocol_kit.conformance.client_check.scenarios import Director, Plan, Settings
from stui_protocol_kit.protocol.client_rules import CheckedRequest, ClientRules
from stui_protocol_kit.protocol.codec import encode
from stui_protocol_kit.protocol.curve import ServerCurve, ZapAllowList
from stui_protocol_kit.protocol.facts import PROTOCOL_VERSION, Command, ErrorCode
from stui_protocol_kit.protocol.framing import Envelope, split_envelope
from stui_protocol_kit.protocol.problems import Problem
from stui_protocol_kit.protocol.redaction import redact
from stui_protocol_kit.reference_server.config import ServerConfig
from stui_protocol_kit.reference_server.engine import Engine
from stui_protocol_kit.reference_server.sqlite_store import SqliteStore
from stui_protocol_kit.reference_server.store import StoreError

Event = dict[str, Any]
REBIND_TIMEOUT_S = 5.0
CLOSE_GRACE_S = 0.2  # after the last close, replies in flight get this long to leave
EXCHANGES_KEPT = 4000
TRANSCRIPT_PER_RESULT = 40


class KitUnavailable(RuntimeError):
    """The kit cannot serve: the endpoint cannot be bound or the store cannot be opened."""


@dataclass
class _Held:
    due: float
    envelope: Envelope
    body: bytes
    request: CheckedRequest


@dataclass
class Violation:
    """One problem of one request, with where it happened (for the live output and the report)."""

    problem: Problem
    connection: str
    at: float
    request_id: str | None
    command: str | None
    request: Any = None  # the request as recorded (redacted, scrubbed), for the report's transcript

    def as_dict(self) -> dict[str, Any]:
        return {**self.problem.as_dict(), "connection": self.connection, "at": round(self.at, 4),
                "request_id": self.request_id, "command": self.command}


@dataclass
class Stats:
    requests: int = 0
    connections: int = 0
    by_socket: dict[str, int] = field(default_factory=dict)
    sessions_created: int = 0
    restarts: int = 0


class KitServer:
    """Serve, check and provoke until stopped. `start()` binds (returns the endpoint), `serve()` loops,
    `close()` releases everything; `results()` gives the checks' and scenarios' CaseResults."""

    def __init__(self, bind: str, scenarios: Sequence[str], settings: Settings | None = None, *,
                 duration_s: float | None = None, data_dir: str | Path | None = None,
                 on_event: Callable[[Event], None] | None = None, context: zmq.Context | None = None,
                 poll_ms: int = 20, end_on_close: bool = True, curve: ServerCurve | None = None) -> None:
        self.bind = bind
        self.curve = curve
        self._zap: ZapAllowList | None = None
        self.settings = settings or Settings()
        self.duration_s = duration_s
        self.on_event = on_event or (lambda _e: None)
        self._own_context = context is None
        self.context = context or zmq.Context()
        self.poll_ms = poll_ms
        self.end_on_close = end_on_close
        self._temp_dir: str | None = None
        if data_dir is None:
            self._temp_dir = tempfile.mkdtemp(prefix="stui-client-check-")
            data_dir = self._temp_dir
        self.data_dir = Path(data_dir)
        self.config = ServerConfig(max_sessions_per_client=self.settings.max_sessions_per_client,
                                   cleanup_interval_s=1.0)
        self.rules = ClientRules(self.config.limits(), (PROTOCOL_VERSION,))
        self.director = Director.of(scenarios, self.settings)
        self.stats = Stats()
        self.violations: list[Violation] = []
        self.exchanges: deque[dict[str, Any]] = deque(maxlen=EXCHANGES_KEPT)
        self.endpoint = ""
        self.ended_by = ""
        self.started_at = time.monotonic()
        self.socket: zmq.Socket | None = None
        self.engine: Engine | None = None
        self._labels: dict[bytes, str] = {}
        self._label_numbers = itertools.count(1)
        self._held: list[_Held] = []
        self._stop = False
        self._close_seen_at: float | None = None
        self._open_sessions: set[str] = set()
        self._scenario_seen: dict[str, tuple[str, int]] = {}

    # -- the Kit protocol the scenarios use -----------------------------------------------------------

    def now(self) -> float:
        return time.monotonic() - self.started_at

    def snapshot_as_another_writer(self, session_id: str, token: str) -> bool:
        assert self.engine is not None
        request = {"id": f"client-check-{secrets.token_hex(8)}", "version": PROTOCOL_VERSION,
                   "command": Command.SESSION_SNAPSHOT.value, "parameters": {"session_id": session_id, "token": token}}
        reply = json.loads(self.engine.process([encode(request)], "client-check-second-writer").body)
        return reply.get("status") == "success"

    def holds_session(self, session_id: str) -> bool:
        return session_id in self._open_sessions

    # -- life cycle -----------------------------------------------------------------------------------

    def start(self) -> str:
        """Open the store and bind; the endpoint actually bound (port 0 resolved). KitUnavailable when not."""
        try:
            self._open_engine()
            self.socket = self._bind(self.bind)
        except (StoreError, OSError, zmq.ZMQError) as exc:
            raise KitUnavailable(str(exc)) from exc
        self.endpoint = self.socket.getsockopt(zmq.LAST_ENDPOINT).decode()
        self.started_at = time.monotonic()
        return self.endpoint

    def _open_engine(self) -> None:
        store = SqliteStore(self.data_dir, max_revisions_kept=self.config.max_revisions_kept)
        self.engine = Engine(self.config, store, clock=time.time, random_source=secrets.token_urlsafe)

    def _bind(self, endpoint: str, timeout_s: float = 0.0) -> zmq.Socket:
        deadline = time.monotonic() + timeout_s
        while True:
            if self.curve is not None and self._zap is None:
                self._zap = ZapAllowList(self.context, self.curve.allowed_clients)
            sock = self.context.socket(zmq.ROUTER)
            if self.curve is not None:
                sock.setsockopt(zmq.ZAP_DOMAIN, b"stui")
                self.curve.apply(sock)
            sock.setsockopt(zmq.LINGER, 200)
            sock.setsockopt(zmq.RCVTIMEO, self.poll_ms)
            sock.setsockopt(zmq.SNDTIMEO, 1000)
            try:
                sock.bind(endpoint)
                return sock
            except zmq.ZMQError:
                sock.close(0)
                if time.monotonic() >= deadline:
                    raise
                time.sleep(0.05)  # the old listener is being closed by ZeroMQ's I/O thread

    def request_stop(self, why: str = "signal") -> None:
        """Leave `serve()` after the message in hand (safe from a signal handler or another thread)."""
        self.ended_by = self.ended_by or why
        self._stop = True

    def close(self) -> None:
        if self.socket is not None:
            self.socket.close(0)
            self.socket = None
        if self._zap is not None:
            self._zap.close()
            self._zap = None
        if self.engine is not None:
            with contextlib.suppress(Exception):
                self.engine.close()
            self.engine = None
        if self._own_context:
            self.context.term()
        if self._temp_dir is not None:
            shutil.rmtree(self._temp_dir, ignore_errors=True)
            self._temp_dir = None

    # -- the loop -------------------------------------------------------------------------------------

    def serve(self) -> None:
        assert self.socket is not None and self.engine is not None
        next_tick = time.monotonic() + self.config.cleanup_interval_s
        try:
            while not self._stop:
                try:
                    frames = self.socket.recv_multipart(copy=False)
                except zmq.Again:
                    frames = None
                if frames is not None:
                    self._handle(frames)
                self._release_held()
                self.director.tick(self)
                if time.monotonic() >= next_tick and self.engine is not None:
                    self.engine.tick()
                    next_tick = time.monotonic() + self.config.cleanup_interval_s
                if self.duration_s is not None and self.now() >= self.duration_s:
                    self.request_stop("duration")
                if self._close_seen_at is not None and self.now() - self._close_seen_at >= CLOSE_GRACE_S:
                    self.request_stop("close")
                self._scenario_events()
        finally:
            self.director.end(self)
            self._scenario_events()

    def _scenario_events(self) -> None:
        """An event for every scenario whose status or notes changed since last time."""
        for scenario in self.director.scenarios:
            seen = (scenario.status.value, len(scenario.notes) + len(scenario.problems))
            if self._scenario_seen.get(scenario.name, ("waiting", 0)) != seen:
                self._scenario_seen[scenario.name] = seen
                self.on_event({"kind": "scenario", "name": scenario.name, "status": scenario.status.value,
                               "notes": list(scenario.notes), "problems": [p.as_dict() for p in scenario.problems],
                               "at": self.now()})

    def _label(self, routing_id: bytes, socket_type: str | None) -> str:
        label = self._labels.get(routing_id)
        if label is None:
            label = self._labels[routing_id] = f"c{next(self._label_numbers)}"
            self.stats.connections += 1
            self.on_event({"kind": "connection", "connection": label, "socket": socket_type or "?", "at": self.now()})
        return label

    def _handle(self, frames: list[zmq.Frame]) -> None:
        socket_type: str | None
        try:
            socket_type = frames[-1].get("Socket-Type")
        except (zmq.ZMQError, AttributeError):
            socket_type = None
        envelope = split_envelope([frame.bytes for frame in frames])
        connection = self._label(envelope.routing_id, socket_type)
        at = self.now()
        checked = self.rules.request(connection, envelope.body_frames, at=at, socket_type=socket_type)
        self.stats.requests += 1
        self.stats.by_socket[socket_type or "?"] = self.stats.by_socket.get(socket_type or "?", 0) + 1
        self._record("request", checked, checked.message if checked.message is not None
                     else {"undecodable_body": checked.decode_error or "frames"})
        for problem in checked.problems:
            self._violation(problem, checked)
        plan = self.director.plan(checked, self)
        self._carry_out(plan, envelope, checked)

    def _carry_out(self, plan: Plan, envelope: Envelope, checked: CheckedRequest) -> None:
        assert self.engine is not None
        if plan.kind == "restart":
            self.on_event({"kind": "restart", "at": self.now()})
            self._restart()
            self.rules.server_restarted()
            return
        if plan.kind == "answer":
            assert plan.message is not None
            body = encode(plan.message)
        else:
            if plan.before is not None:
                plan.before(self)
            body = self.engine.process(list(envelope.body_frames), envelope.routing_id.hex()).body
            if plan.alter is not None:
                body = encode(plan.alter(json.loads(body)))
        if plan.kind == "drop":
            return
        if plan.kind == "hold":
            self._held.append(_Held(self.now() + plan.delay_s, envelope, body, checked))
            return
        self._send(envelope, body, checked)

    def _send(self, envelope: Envelope, body: bytes, checked: CheckedRequest) -> None:
        assert self.socket is not None
        with contextlib.suppress(zmq.ZMQError):  # a peer gone: ROUTER drops it anyway
            self.socket.send_multipart(envelope.reply_frames(body))
        reply = json.loads(body)
        at = self.now()
        self.rules.replied(checked, reply, at)
        self._record("reply", checked, reply)
        self._learn(checked, reply, at)
        self.director.answered(checked, reply, self)

    def _learn(self, checked: CheckedRequest, reply: Any, at: float) -> None:
        if not isinstance(reply, dict) or reply.get("status") != "success":
            code = (reply.get("error") or {}).get("code") if isinstance(reply, dict) else None
            if checked.session_id in self._open_sessions and code in (
                    ErrorCode.SessionExpired, ErrorCode.SessionClosed, ErrorCode.SessionNotFound):
                self._open_sessions.discard(checked.session_id)
            return
        result = reply.get("result") or {}
        if checked.command == Command.SESSION_CREATE and isinstance(result.get("session_id"), str):
            self.stats.sessions_created += 1
            self._open_sessions.add(result["session_id"])
            self._close_seen_at = None  # the client goes on with a new session
        elif checked.command == Command.SESSION_CLOSE and checked.session_id is not None:
            self._open_sessions.discard(checked.session_id)
            poisoned = set(self.director.poisoned)
            if self.end_on_close and not (self._open_sessions - poisoned):
                self._close_seen_at = at

    def _release_held(self) -> None:
        now = self.now()
        due = [held for held in self._held if held.due <= now]
        if due:
            self._held = [held for held in self._held if held.due > now]
            for held in due:
                self._send(held.envelope, held.body, held.request)

    def _restart(self) -> None:
        """Lose everything in memory, keep the store: a restart as spec/README.md defines it."""
        assert self.socket is not None and self.engine is not None
        self._held.clear()
        self.socket.close(0)
        self.socket = None
        self.engine.close()
        self.engine = None
        time.sleep(self.settings.restart_pause_s)
        self._open_engine()
        self.socket = self._bind(self.endpoint, REBIND_TIMEOUT_S)
        self.stats.restarts += 1

    # -- recording ------------------------------------------------------------------------------------

    def _violation(self, problem: Problem, checked: CheckedRequest) -> None:
        problem = self._scrubbed(problem)
        violation = Violation(problem, checked.connection, checked.at, self.rules.scrub(checked.request_id),
                              checked.command, self.exchanges[-1]["message"] if self.exchanges else None)
        self.violations.append(violation)
        self.on_event({"kind": "violation", **violation.as_dict()})

    def _scrubbed(self, problem: Problem) -> Problem:
        scrub = self.rules.scrub
        return Problem(problem.requirement, scrub(problem.message), problem.path, scrub(problem.expected),
                       scrub(problem.actual), problem.rule, problem.subject)

    def _record(self, direction: str, checked: CheckedRequest, message: Any) -> None:
        self.exchanges.append({"direction": direction, "at": round(self.now(), 4), "connection": checked.connection,
                               "message": self.rules.scrub(redact(message))})

    # -- results --------------------------------------------------------------------------------------

    def exercise(self) -> catalog.Exercise:
        return catalog.Exercise(
            requests=self.stats.requests, connections=self.stats.connections,
            req_requests=self.stats.by_socket.get("REQ", 0),
            after_token=self.stats.requests if self.rules.tokens_issued else 0,
            after_end=self.rules.requests_after_an_end)

    def results(self) -> list[Any]:
        found: dict[str, list[Problem]] = {}
        transcripts: dict[str, list[dict[str, Any]]] = {}
        for violation in self.violations:
            found.setdefault(violation.problem.requirement, []).append(violation.problem)
        for requirement in found:
            transcripts[requirement] = [{"direction": "request", "at": v.at,
                                         "message": {"connection": v.connection, "message": v.request}}
                                        for v in self.violations if v.problem.requirement == requirement][:20]
        out = catalog.check_results(found, self.exercise(), transcripts)
        for scenario in self.director.scenarios:
            window = []
            if scenario.started_at is not None:
                until = scenario.concluded_at if scenario.concluded_at is not None else float("inf")
                window = [dict(e) for e in self.exchanges if scenario.started_at - 0.001 <= e["at"] <= until + 0.001]
                window = [{"direction": e["direction"], "at": e["at"],
                           "message": {"connection": e["connection"], "message": e["message"]}}
                          for e in window[:TRANSCRIPT_PER_RESULT]]
            out.append(catalog.scenario_result(scenario, window))
        return out


def write_ready_file(path: str | Path, endpoint: str) -> None:
    """The endpoint on one line, written atomically: the file exists only once it is complete."""
    target = Path(path)
    temporary = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    temporary.write_text(endpoint + "\n", encoding="utf-8")
    os.replace(temporary, target)
