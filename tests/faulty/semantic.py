"""Semantic faults: small patches of the reference server's logic, of the kind a team implementing the
spec in another language makes (state, time, restarts, retries) - not rewrites of replies.

Each fault is one entry of `SEMANTIC` (merged into tests/faulty/server.py's FAULTS): an engine mixin
(`engine`), a transport (`transport`) and/or a start-up `patch` of a reference-server class, applied
in the faulty server's own process only. The suite must fail each on the cases listed for it in
tests/faulty/test_faulty_servers.py. Grouped by the areas of issue 9; every fault says the bug it
models and the requirement it breaks.

This module must never be imported by the suite: it exists only for the tests.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import replace
from typing import Any

import zmq

from stui_protocol_kit.protocol.facts import ErrorCode
from stui_protocol_kit.protocol.lifecycle import Event, SessionLifecycle, State
from stui_protocol_kit.reference_server import evaluator, reply_cache
from stui_protocol_kit.reference_server.engine import Engine, _Failure
from stui_protocol_kit.reference_server.sqlite_store import SqliteStore
from stui_protocol_kit.reference_server.transport import RouterTransport

Fault = dict[str, Any]
_RESTORE = SessionLifecycle.restore.__func__  # type: ignore[attr-defined]


def _patch_restore(adjust: Any) -> None:
    """Wrap SessionLifecycle.restore (how a server reads a session back after a restart)."""

    def restore(cls: type[SessionLifecycle], timeouts: Any, **kw: Any) -> SessionLifecycle:
        return adjust(_RESTORE(cls, timeouts, **kw), kw)

    SessionLifecycle.restore = classmethod(restore)  # type: ignore[method-assign,assignment]


# -- expiry and the clock ---------------------------------------------------------------------------

class SnapshotRestartsAbsolute(Engine):
    """A snapshot restarts the absolute lifetime (the implementer stored `created_at` with every
    revision and reads it back): breaks EXP-1/EXP-3 (the absolute deadline never moves)."""

    def _snapshot(self, session: Any, call: Any) -> bytes:
        body = super()._snapshot(session, call)
        session.lifecycle.created_at = call.now
        return body


def absolute_from_restart() -> None:
    """After a restart the absolute deadline counts from when the server loaded the session."""

    def adjust(lc: SessionLifecycle, kw: dict[str, Any]) -> SessionLifecycle:
        if lc.state is State.ACTIVE:
            lc.created_at = max(lc.created_at, kw["started_at"])
        return lc

    _patch_restore(adjust)


class NoActivityFlush(Engine):
    """Never writes activity (allowed: spec 8.1 lets a server keep it in memory)..."""

    def tick(self) -> None:
        for session in self.sessions.live.values():
            session.activity_dirty = False
        super().tick()


def idle_base_from_stored_activity() -> None:
    """...but then counts the idle deadline after a restart from the stored activity only, not from the
    later of that and its own start: a deadline reported before the restart is cut short (EXP-4)."""

    def adjust(lc: SessionLifecycle, kw: dict[str, Any]) -> SessionLifecycle:
        lc.idle_base = lc.last_active_at
        return lc

    _patch_restore(adjust)


def last_active_is_start() -> None:
    """After a restart, `last_active_at` reports the idle base (the server's start), a time later than
    any activity the server knew (VAL-2)."""

    def adjust(lc: SessionLifecycle, kw: dict[str, Any]) -> SessionLifecycle:
        if lc.state is State.ACTIVE:
            lc.last_active_at = lc.idle_base
        return lc

    _patch_restore(adjust)


class CommandErrorsBeforeExpiry(Engine):
    """Checks a snapshot's expected_revision (P7) before the session's expiry (P6e) (ERR-1, EXP-3)."""

    def _session_scoped(self, command: str, request_id: str, parameters: dict[str, Any], now: float,
                        peer: str) -> Any:
        self._pending = (command, parameters)
        return super()._session_scoped(command, request_id, parameters, now, peer)

    def _answer_lifecycle(self, session: Any, now: float) -> None:
        command, parameters = self._pending
        expected = parameters.get("expected_revision")
        if session.status is State.EXPIRED and command == "session.snapshot" and expected not in (None,
                                                                                                   session.revision):
            raise _Failure(ErrorCode.RevisionConflict, "revision conflict",
                           {"current_revision": session.revision, "expected_revision": expected})
        super()._answer_lifecycle(session, now)


class ObjectLookupBeforeClosed(CommandErrorsBeforeExpiry):
    """Looks an inspected object_id up (P7) before the closed check (P6d) (ERR-1, LIF-2)."""

    def _answer_lifecycle(self, session: Any, now: float) -> None:
        command, parameters = self._pending
        if session.status is State.CLOSED and command == "inspect" and "object_id" in parameters \
                and parameters["object_id"] not in session.objects:
            raise _Failure(ErrorCode.ObjectNotFound, "no such object", {"object_id": parameters["object_id"]})
        Engine._answer_lifecycle(self, session, now)


class EvaluateIsNoActivity(Engine):
    """A successful evaluate does not move the idle deadline (the implementer counted only commands that
    change stored state as activity) (EXP-2). Found as a survivor of bench/mutation_score.py."""

    def _evaluate(self, session: Any, call: Any) -> Any:
        lc = session.lifecycle
        before = (lc.last_active_at, lc.idle_base)
        body = super()._evaluate(session, call)
        lc.last_active_at, lc.idle_base = before
        return body


_P7 = {ErrorCode.RevisionConflict.value, ErrorCode.EvaluationError.value, ErrorCode.ObjectNotFound.value}


class ErrorsTouchLastActive(Engine):
    """Records the time of every authenticated request as the session's last activity, errors too, while
    the idle deadline still moves only on success: `last_active_at` is wrong after errors (VAL-2, ERR-3)."""

    def _session_scoped(self, command: str, request_id: str, parameters: dict[str, Any], now: float,
                        peer: str) -> Any:
        reply = super()._session_scoped(command, request_id, parameters, now, peer)
        session = self.sessions.live.get(parameters["session_id"])
        if session is not None and reply.outcome in _P7:
            session.lifecycle.last_active_at = now
        return reply


# -- durability of what was reported ----------------------------------------------------------------

def expiry_not_durable() -> None:
    """Expiry is decided on demand and never written: after a restart the idle base (the server's
    start) revives an expired session it already answered SessionExpired for (LIF-1, EXP-4)."""
    SqliteStore.expire_session = lambda self, session_id, expired_at: None  # type: ignore[method-assign]
    SqliteStore.mark_expired = lambda self, expired: None  # type: ignore[method-assign]
    SqliteStore.expire_overdue = lambda self, now, timeouts, started_at: 0  # type: ignore[method-assign]


def error_retry_not_durable() -> None:
    """Error replies of snapshot/close are cached in memory only: a retry after a restart executes
    again (RTY-6)."""
    SqliteStore.put_retry = lambda self, session_id, retry: None  # type: ignore[method-assign]


# -- tombstones -------------------------------------------------------------------------------------

def tombstone_retention_from_restart() -> None:
    """A restart re-stamps tombstones with the server's start (ended_at as loaded), and storage purges
    only what memory decided: tombstones outlive tombstone_retention_s after a restart (EXP-5)."""

    def adjust(lc: SessionLifecycle, kw: dict[str, Any]) -> SessionLifecycle:
        if lc.state is not State.ACTIVE and lc.ended_at is not None:
            lc.ended_at = max(lc.ended_at, kw["started_at"])
        return lc

    _patch_restore(adjust)
    SqliteStore.purge = lambda self, now, timeouts, retry_window_s: []  # type: ignore[method-assign]


def expired_tombstone_lost() -> None:
    """Expired sessions are not read back after a restart (only closed ones are kept as tombstones):
    SessionNotFound instead of SessionExpired within tombstone_retention_s (EXP-5, PER-4)."""
    load = SqliteStore.load_session

    def load_session(self: SqliteStore, session_id: str) -> Any:
        row = load(self, session_id)
        return None if row is not None and row.status == "expired" else row

    SqliteStore.load_session = load_session  # type: ignore[method-assign]


class SlowSweep(Engine):
    """Purges only in a periodic sweep every 10 s; a request never judges retention (EXP-5)."""

    _last_sweep = 0.0

    def tick(self) -> None:
        if self.clock() - self._last_sweep >= 10:
            self._last_sweep = self.clock()
            super().tick()


def purge_by_sweep() -> None:
    """...the lifecycle fires only timeouts, never RETENTION_ELAPSED: purging is the sweep's alone."""

    def timeouts_only(self: SessionLifecycle, now: float) -> list[Event]:
        if self.state is not State.ACTIVE:
            return []
        moment, event = self.deadline()
        if now < moment:
            return []
        self.process_event(event, moment)
        return [event]

    SessionLifecycle.advance = timeouts_only  # type: ignore[method-assign]


# -- revisions after a fallback ---------------------------------------------------------------------

class RevisionFromRestored(Engine):
    """After a fallback, the next snapshot is numbered from the restored revision: it reuses the number
    of the damaged one (PER-7, SNP-1)."""

    def _snapshot(self, session: Any, call: Any) -> bytes:
        self._ensure_state(session)
        if session.fallback is not None:
            session.head_revision = session.revision
        return super()._snapshot(session, call)


# -- limits ---------------------------------------------------------------------------------------

class LimitPerConnection(Engine):
    """Counts a client's sessions per connection (the sessions this connection created) (LIM-4)."""

    def process(self, body_frames: list[bytes], peer: str = "") -> Any:
        self._peer = peer  # the connection of the request in hand
        return super().process(body_frames, peer)

    def _create(self, request_id: str, parameters: dict[str, Any], now: float) -> Any:
        reply = super()._create(request_id, parameters, now)
        if reply.outcome == "success" and reply.session_id:
            self.__dict__.setdefault("_creators", {})[reply.session_id] = self._peer
        return reply

    def _active_sessions_of(self, client_id: str, now: float) -> int:
        creators = self.__dict__.get("_creators", {})
        return sum(1 for s in self.sessions.live.values()
                   if s.client_id == client_id and s.status is State.ACTIVE and s.expires_at() > now
                   and creators.get(s.session_id) == self._peer)


class LimitInMemory(Engine):
    """Counts a client's sessions among those held in memory: a restart resets the count (LIM-4)."""

    def _active_sessions_of(self, client_id: str, now: float) -> int:
        return sum(1 for s in self.sessions.live.values()
                   if s.client_id == client_id and s.status is State.ACTIVE and s.expires_at() > now)


# -- inspect and evaluate ---------------------------------------------------------------------------

class InspectReevaluates(Engine):
    """inspect by object_id evaluates the object's expression again instead of answering the registered
    value (INS-3)."""

    def _inspect(self, session: Any, call: Any) -> bytes:
        expressions = self.__dict__.setdefault("_expressions", {})
        object_id = call.parameters.get("object_id")
        key = (session.session_id, object_id)
        if object_id is not None and key in expressions and object_id in (session.objects or {}):
            run = self._run_code(session, expressions[key])
            session.touch(call.now)
            result = {"object_id": object_id, "class": run.binding["class"],
                      "print_string": run.binding["print_string"]}
            return self._reply(call.request_id, "inspect", session.session_id, call.now, result).body
        body = super()._inspect(session, call)
        if object_id is None:
            expressions[(session.session_id, json.loads(body)["result"]["object_id"])] = call.parameters["expression"]
        return body


def string_quotes_restored_wrong() -> None:
    """Restoring a string binding keeps the doubled quotes of its print string (PER-5, RES-3)."""
    original = evaluator.Value.from_binding.__func__  # type: ignore[attr-defined]

    def from_binding(cls: type, binding: Any) -> Any:
        value = original(cls, binding)
        if binding.get("class") in ("ByteString", "WideString"):
            return cls(binding["class"], binding["print_string"][1:-1])
        return value

    evaluator.Value.from_binding = classmethod(from_binding)  # type: ignore[method-assign,assignment]


# -- the retry cache ---------------------------------------------------------------------------------

def fingerprint_member_order() -> None:
    """The retry fingerprint is the parameters' JSON text as received, members in their order: a retry
    that lists them in another order is taken for another request (RTY-2)."""

    def digest(self: reply_cache.Fingerprint) -> bytes:
        if self._digest is None:
            relevant = {k: v for k, v in (self._parameters or {}).items() if k != "token"}
            text = json.dumps([self._command, relevant], separators=(",", ":"), ensure_ascii=False)
            self._digest = hashlib.sha256(text.encode("utf-8")).digest()
        return self._digest

    reply_cache.Fingerprint.digest = property(digest)  # type: ignore[method-assign,assignment]


class LifecycleBeforeIdReuse(Engine):
    """Answers a closed or expired session's state before telling an id reused for another request
    (P6d/P6e before P6c) (RTY-3, ERR-1)."""

    def _replayed(self, scope: Any, request_id: str, request_fingerprint: Any, command: str, session_id: Any,
                  now: float) -> Any:
        try:
            return super()._replayed(scope, request_id, request_fingerprint, command, session_id, now)
        except _Failure:
            session = self.sessions.live.get(session_id) if isinstance(session_id, str) else None
            if session is not None and session.status is not State.ACTIVE:
                self._answer_lifecycle(session, now)
            raise


# -- snapshot merge ---------------------------------------------------------------------------------

class EmptyClientPartIgnored(Engine):
    """An empty `preferences` or `inspector` object is treated as "not given" (a truthiness test)
    (SNP-2, SNP-6)."""

    def _snapshot(self, session: Any, call: Any) -> bytes:
        state = call.parameters.get("state")
        if isinstance(state, dict):
            kept = {k: v for k, v in state.items() if v != {}}
            call = replace(call, parameters={**call.parameters, "state": kept})
        return super()._snapshot(session, call)


# -- connection tracking ----------------------------------------------------------------------------

class AttachOnFailedRequest(Engine):
    """Attaches a connection as soon as its request passes the token check, also when the command then
    fails (CON-7)."""

    def _session_scoped(self, command: str, request_id: str, parameters: dict[str, Any], now: float,
                        peer: str) -> Any:
        session = self.sessions.live.get(parameters["session_id"])
        if session is not None and session.status is State.ACTIVE and session.token_matches(parameters["token"]):
            self.sessions.note_peer(session, peer, now)
        return super()._session_scoped(command, request_id, parameters, now, peer)


class DisconnectIgnored(Engine):
    """Never hears of disconnects: a departed connection counts until the idle window passes (CON-8)."""

    def peer_disconnected(self, peer: str) -> None:
        return None


# -- resume's source ---------------------------------------------------------------------------------

class SourceFromFirstResume(Engine):
    """`source` is "durable" for the first resume of a session read back after a restart, even when an
    earlier command already loaded its state (RES-2, RES-3)."""

    def _create(self, request_id: str, parameters: dict[str, Any], now: float) -> Any:
        reply = super()._create(request_id, parameters, now)
        if reply.session_id:
            self.__dict__.setdefault("_resumed", set()).add(reply.session_id)
        return reply

    def _resume(self, session: Any, call: Any) -> bytes:
        resumed = self.__dict__.setdefault("_resumed", set())
        first = session.session_id not in resumed
        body = super()._resume(session, call)
        resumed.add(session.session_id)
        if first:
            reply = json.loads(body)
            reply["result"]["source"] = "durable"
            body = json.dumps(reply).encode()
        return body


# -- ordering ---------------------------------------------------------------------------------------

_CHEAP = {"hello", "session.validate", "session.resume"}


class CheapFirstTransport(RouterTransport):
    """Collects what arrives within 20 ms and answers the cheap commands (hello, validate, resume) first,
    whichever connection sent them: pipelined requests of one DEALER are executed out of order (CON-1).
    (The reference serves small requests first too, but keeps each connection's own in order.)"""

    def _with_waiting(self, frames: list[Any]) -> list[list[Any]]:
        batch = [frames]
        until = time.monotonic() + 0.02
        while time.monotonic() < until:
            if self.socket.poll(5):
                batch.append(self.socket.recv_multipart(zmq.NOBLOCK, copy=False))
        return batch

    @staticmethod
    def _small_first(batch: list[list[Any]]) -> list[list[Any]]:
        return sorted(batch, key=_cost)


def _cost(frames: list[Any]) -> int:
    try:
        return 0 if json.loads(frames[-1].bytes).get("command") in _CHEAP else 1
    except (ValueError, AttributeError):
        return 1


SEMANTIC: dict[str, Fault] = {
    "snapshot-restarts-absolute": {"engine": SnapshotRestartsAbsolute},
    "absolute-from-restart": {"patch": absolute_from_restart},
    "idle-base-from-stored-activity": {"engine": NoActivityFlush, "patch": idle_base_from_stored_activity},
    "last-active-is-start": {"patch": last_active_is_start},
    "revision-check-before-expiry": {"engine": CommandErrorsBeforeExpiry},
    "object-lookup-before-closed": {"engine": ObjectLookupBeforeClosed},
    "errors-touch-last-active": {"engine": ErrorsTouchLastActive},
    "evaluate-is-no-activity": {"engine": EvaluateIsNoActivity},
    "expiry-not-durable": {"patch": expiry_not_durable},
    "error-retry-not-durable": {"patch": error_retry_not_durable},
    "tombstone-retention-from-restart": {"patch": tombstone_retention_from_restart},
    "expired-tombstone-lost": {"patch": expired_tombstone_lost},
    "purge-by-slow-sweep": {"engine": SlowSweep, "patch": purge_by_sweep},
    "revision-from-restored": {"engine": RevisionFromRestored},
    "session-limit-per-connection": {"engine": LimitPerConnection},
    "session-limit-in-memory": {"engine": LimitInMemory},
    "inspect-reevaluates": {"engine": InspectReevaluates},
    "string-quotes-restored-wrong": {"patch": string_quotes_restored_wrong},
    "fingerprint-member-order": {"patch": fingerprint_member_order},
    "lifecycle-before-id-reuse": {"engine": LifecycleBeforeIdReuse},
    "empty-client-part-ignored": {"engine": EmptyClientPartIgnored},
    "attach-on-failed-request": {"engine": AttachOnFailedRequest},
    "disconnect-ignored": {"engine": DisconnectIgnored},
    "resume-source-first-resume": {"engine": SourceFromFirstResume},
    "cheap-first": {"transport": CheapFirstTransport},
}
