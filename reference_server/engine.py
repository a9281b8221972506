"""The reference server's protocol engine, sans I/O: request body frames in, reply bytes out.

Theory of operation:
1. `Engine.handle(body_frames, peer)` runs the processing order of docs/architecture.md: frame
   checks (codec), version, envelope, command, parameters (MessageValidator); then, for
   session-scoped commands: unknown id, token, retry cache, closed, expired; then the command. The
   first failing step answers. Every reply is built by one builder, so every error echoes `id` and
   `command` by the same rules and `--strict` checks every reply in one place.
2. The engine owns no sockets, threads, signals or clocks. Time comes from the injected `clock`
   (epoch seconds), ids and tokens from the injected `random_source` (`secrets.token_urlsafe` in
   production), durability from the injected `SessionStore`. Tests drive it with a fake clock.
3. Only what must precede the reply happens per request: create, snapshot and close commit before
   their reply; an expiry a request discovers is written (one row) before its SessionExpired reply,
   so a restart cannot revive it (LIF-1); an error reply to snapshot/close after the token check is
   stored for retries before it is sent (RTY-6). Activity, expiries found by housekeeping and all
   deletions from storage are batched in `tick()`, which the transport calls periodically. A
   request that finds a session past its retention only drops it from memory (answering
   SessionNotFound); the next `tick()` deletes it from storage. A session the engine holds is never
   re-read from storage.
4. Lifecycle transitions are looked up in `stui_protocol_kit.protocol.lifecycle`, never decided here; deadlines
   come from `stui_protocol_kit.reference_server.expiry`.
5. Nothing a session holds can make a reply too large to read: evaluate/inspect refuse (with
   EvaluationError, changing nothing) a result or a workspace that would not fit in
   `max_message_bytes` together with the session's client-owned parts.

What it must never do: log, store or echo a token anywhere but in the create reply; execute a
retried request twice; answer success for create/snapshot/close before the change is durable.
"""

from __future__ import annotations

import logging
import secrets
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from stui_protocol_kit.protocol.codec import FrameError, decode_body, encode, rfc3339
from stui_protocol_kit.protocol.lifecycle import Event, State
from stui_protocol_kit.protocol.validation import MessageValidator, validator
from stui_protocol_kit.reference_server import expiry
from stui_protocol_kit.reference_server.config import ServerConfig
from stui_protocol_kit.reference_server.evaluator import EvaluationError, Value, evaluate
from stui_protocol_kit.reference_server.reply_cache import CachedReply, Fingerprint, ReplyCache, fingerprint
from stui_protocol_kit.reference_server.sessions import (
    Binding,
    Session,
    SessionRegistry,
    StateUnavailable,
    binding_size,
    empty_state,
    encode_state,
    token_digest,
)
from stui_protocol_kit.reference_server.storage import RetryRow, SessionStore, StoreError

log = logging.getLogger("stui.reference_server")
request_log = logging.getLogger("stui.reference_server.requests")

Clock = Callable[[], float]
RandomSource = Callable[[int], str]
ResponseHook = Callable[[dict[str, Any]], dict[str, Any]]

SESSION_ID_BYTES = 16  # 128 bits -> 22 base64url characters
TOKEN_BYTES = 32  # 256 bits -> 43 base64url characters
CAPABILITIES = ("evaluate", "inspect", "retry.durable")
PROTOCOL_VERSION = "1.0"
SESSION_LIMIT_NAME = "max_sessions_per_client"  # as named in hello's limits
# Room for everything of a reply but the state document or the value: the envelope, a request id of
# 128 characters escaped as \u00XX, the timestamps and fallback. Measured below 1200 bytes.
REPLY_OVERHEAD_BYTES = 2048
CREATE_ATTEMPTS = 8  # session ids drawn before giving up on a colliding random source
# Commands whose replies storage keeps for retries across a restart (retry.durable, RTY-6).
_DURABLE_RETRY_COMMANDS = frozenset({"session.snapshot", "session.close"})
# Store failures that turn into InternalError instead of crashing the server.
_STORE_FAILURES = (StoreError, sqlite3.Error, OSError)


@dataclass(frozen=True)
class Reply:
    """What the engine answered, with what the request log needs (never a token)."""

    body: bytes
    command: str | None
    session_id: str | None
    outcome: str  # "success", an error code, or "retry" (a cached reply sent again)


class _Failure(Exception):
    """Raised inside a command to answer an error reply."""

    def __init__(self, code: str, message: str, details: dict[str, Any] | None = None, *, cache: bool = True):
        super().__init__(message)
        self.code = code
        self.message = message
        self.details = details
        # InternalError is not cached: the spec lets the client retry the same id.
        self.cache = cache


@dataclass(frozen=True)
class _Call:
    """One session-scoped request as its command handler sees it."""

    request_id: str
    parameters: dict[str, Any]
    now: float
    fingerprint: Fingerprint
    peer: str  # the connection the request came from (routing id, hex)


@dataclass(frozen=True)
class _Evaluation:
    """What evaluating some code would change: the result's binding, the assignments with their
    bindings, and the workspace/objects size (Session.server_bytes) after them."""

    binding: Binding
    assignments: dict[str, Value]
    bindings: dict[str, Binding]
    server_bytes: int


class Engine:
    """The protocol engine. Single-threaded: the transport calls it from one thread."""

    def __init__(
        self,
        config: ServerConfig,
        store: SessionStore,
        clock: Clock = time.time,
        random_source: RandomSource = secrets.token_urlsafe,
        *,
        message_validator: MessageValidator | None = None,
    ) -> None:
        self.config = config
        self.store = store
        self.clock = clock
        self.random_source = random_source
        self.validator = message_validator or validator()
        self.commands = self.validator.registry.commands
        self.replies = ReplyCache(config.retry_window_s)
        self.started_at = clock()
        self.sessions = SessionRegistry(store, self.replies, self.started_at)
        # Test-only: rewrites each reply message before it is checked and encoded, so tests can
        # inject a schema-invalid reply and see --strict catch it.
        self.response_hook: ResponseHook | None = None
        self.strict_violations = 0
        self._hello_result = {
            "protocol_versions": [PROTOCOL_VERSION],
            "server": {"name": config.server_name, "version": config.server_version},
            "capabilities": list(CAPABILITIES),
            "limits": config.limits(),
        }
        self._session_commands: dict[str, Callable[[Session, _Call], bytes]] = {
            "session.resume": self._resume,
            "session.validate": self._validate,
            "session.snapshot": self._snapshot,
            "session.close": self._close,
            "evaluate": self._evaluate,
            "inspect": self._inspect,
        }
        served = {"hello", "session.create", *self._session_commands}
        missing = set(self.commands) - served
        if missing:
            raise RuntimeError(f"schemas/ define commands this engine does not serve: {sorted(missing)}")

    # -- entry points ------------------------------------------------------------------------------

    def handle(self, body_frames: list[bytes], peer: str = "") -> bytes:
        """One request's body frames (routing envelope already removed) -> the reply body."""
        return self.process(body_frames, peer).body

    def process(self, body_frames: list[bytes], peer: str = "") -> Reply:
        started = time.perf_counter()
        reply = self._process(body_frames, peer)
        # Per request: DEBUG. INFO is for connections, attach/detach, start/stop and failures.
        if request_log.isEnabledFor(logging.DEBUG):
            request_log.debug(
                "request command=%s session=%s outcome=%s duration_us=%d peer=%s",
                reply.command or "-", reply.session_id[:8] if reply.session_id else "-", reply.outcome,
                (time.perf_counter() - started) * 1e6, peer or "-",
            )
        return reply

    def peer_disconnected(self, peer: str) -> None:
        """The transport saw a client connection close; its routing id is no longer attached."""
        for session_id in self.sessions.peer_gone(peer):
            log.info("detach session=%s peer=%s reason=disconnect", session_id[:8], peer or "-")

    def tick(self) -> None:
        """Housekeeping off the reply path: expire, purge, forget old replies, flush activity."""
        now = self.clock()
        cfg = self.config
        self.replies.expire(now)
        activity: list[tuple[str, float]] = []
        expired: list[Session] = []
        gone: list[str] = []
        for session in self.sessions.live.values():
            session.expire_if_due(now, cfg.idle_timeout_s, cfg.absolute_timeout_s)
            if session.expiry_pending:
                expired.append(session)
            if session.activity_dirty:
                activity.append((session.session_id, session.last_active_at))
                session.activity_dirty = False
            if session.status is not State.ACTIVE and (session.ended_at or 0) + cfg.tombstone_retention_s <= now:
                gone.append(session.session_id)
            for peer in self.sessions.detach_idle(session, now, cfg.idle_timeout_s):
                log.info("detach session=%s peer=%s reason=idle", session.session_id[:8], peer or "-")
        try:
            if activity:
                self.store.flush_activity(activity)
            if expired:
                self.store.mark_expired([(s.session_id, s.ended_at or now) for s in expired])
                for session in expired:
                    session.expiry_pending = False
            # Sessions only in storage: the held ones' activity was flushed just above.
            self.store.expire_overdue(now, cfg.idle_timeout_s, cfg.absolute_timeout_s, self.started_at)
            purged = self.store.purge(now, cfg.tombstone_retention_s, cfg.retry_window_s)
        except _STORE_FAILURES as exc:
            log.error("housekeeping failed: %s", exc)
            for session_id, _at in activity:
                held = self.sessions.live.get(session_id)
                if held is not None:
                    held.activity_dirty = True
            return
        scopes = set(gone) | set(purged)
        for session_id in scopes:
            self.sessions.drop(session_id)
        self.replies.forget_scopes(scopes)  # type: ignore[arg-type]
        if expired or scopes:
            log.info("housekeeping expired=%d purged=%d", len(expired), len(scopes))

    def close(self) -> None:
        """Flush what is batched and close the store (shutdown)."""
        try:
            self.tick()
        finally:
            self.store.close()

    # -- processing order ---------------------------------------------------------------------------

    def _process(self, body_frames: list[bytes], peer: str) -> Reply:
        now = self.clock()
        cfg = self.config
        size = sum(len(frame) for frame in body_frames)
        if size > cfg.max_message_bytes:
            return self._error_reply(
                None, None, now, "PayloadTooLarge",
                f"message is {size} bytes; the limit is {cfg.max_message_bytes}",
                {"max_message_bytes": cfg.max_message_bytes, "received_bytes": size},
            )
        if len(body_frames) != 1:
            return self._error_reply(
                None, None, now, "InvalidRequest",
                f"a request is exactly one body frame; got {len(body_frames)}", {"reason": "frames"},
            )
        try:
            decoded = decode_body(body_frames[0], max_bytes=cfg.max_message_bytes, max_depth=cfg.max_nesting_depth)
        except FrameError as exc:
            if exc.code == "PayloadTooLarge":
                details = {"max_message_bytes": cfg.max_message_bytes, "received_bytes": exc.received_bytes or size}
            else:
                details = {"reason": exc.reason or "json"}
            return self._error_reply(None, None, now, exc.code, exc.message, details)
        message = decoded.message
        verdict = self.validator.check_request(message, has_float=decoded.has_float)
        if not verdict.ok:
            details = dict(verdict.details)
            if verdict.error_code == "InvalidRequest":
                details.setdefault("reason", verdict.reason or "schema")
            # SEC-5: the validator never quotes a secret member's value, whatever its type or length.
            text = verdict.message or "invalid request"
            return self._error_reply(
                verdict.id, verdict.command, now, verdict.error_code or "InvalidRequest", text, details or None,
            )
        command: str = message["command"]
        request_id: str = message["id"]
        parameters: dict[str, Any] = message["parameters"]
        try:
            if command == "hello":
                return self._reply(request_id, command, None, now, self._hello_result)
            if command == "session.create":
                return self._create(request_id, parameters, now, peer)
            return self._session_scoped(command, request_id, parameters, now, peer)
        except _Failure as failure:
            # Only create and session-scoped commands raise past their own handling; neither caches here.
            session_id = parameters.get("session_id") if command != "session.create" else None
            return self._error_reply(request_id, command, now, failure.code, failure.message, failure.details,
                                     session_id=session_id)
        except Exception:  # a bug must answer InternalError and keep the server serving
            incident = secrets.token_hex(8)
            log.exception("internal error incident=%s command=%s", incident, command)
            return self._error_reply(
                request_id, command, now, "InternalError", f"internal error (incident {incident})",
                {"incident_id": incident},
            )

    def _session_scoped(
        self, command: str, request_id: str, parameters: dict[str, Any], now: float, peer: str,
    ) -> Reply:
        session_id: str = parameters["session_id"]
        session = self.sessions.get(session_id, now)
        if session is None or self._past_retention(session, now):
            raise _Failure("SessionNotFound", "no session with this id exists")
        if not session.token_matches(parameters["token"]):
            raise _Failure("InvalidToken", "the token does not match the session")
        request_fingerprint = fingerprint(command, parameters)
        cached = self.replies.get(session_id, request_id, now)
        if cached is not None:
            if cached.fingerprint == request_fingerprint:
                return Reply(cached.reply, command, session_id, "retry")
            raise _Failure(
                "InvalidRequest",
                f"request id {request_id!r} was already used for a different request in this session",
                {"reason": "id_reused"},
            )
        call = _Call(request_id, parameters, now, request_fingerprint, peer)
        try:
            self._check_lifecycle(session, now)
            body = self._session_commands[command](session, call)
            # A connection attaches with its first successful request on the session (spec 9.4).
            if self.sessions.note_peer(session, peer, now):
                log.info("attach session=%s peer=%s", session_id[:8], peer or "-")
        except _Failure as failure:
            reply = self._error_reply(request_id, command, now, failure.code, failure.message, failure.details,
                                      session_id=session_id)
            if failure.cache:
                if command in _DURABLE_RETRY_COMMANDS:
                    # RTY-6 covers every reply of snapshot/close, so an error one is kept durably too.
                    try:
                        self.store.put_retry(session_id, RetryRow(request_id, request_fingerprint.digest,
                                                                  reply.body, now))
                    except _STORE_FAILURES as exc:
                        log.error("session=%s retry reply write failed: %s", session_id[:8], exc)
                        return self._error_reply(request_id, command, now, "InternalError",
                                                 "session storage failed", None, session_id=session_id)
                self.replies.put(session_id, request_id, CachedReply(request_fingerprint, reply.body, now))
            return reply
        self.replies.put(session_id, request_id, CachedReply(request_fingerprint, body, now))
        return Reply(body, command, session_id, "success")

    def _past_retention(self, session: Session, now: float) -> bool:
        """A tombstone past retention (or an active session whose deadline is longer ago than that)
        is gone: it is dropped from memory here, and `tick()` deletes it from storage (a request
        never runs a store-wide purge)."""
        cfg = self.config
        if session.status is State.ACTIVE:
            ended, _ = session.deadline(cfg.idle_timeout_s, cfg.absolute_timeout_s)
        else:
            ended = session.ended_at or 0.0
        if ended + cfg.tombstone_retention_s > now:
            return False
        self.sessions.drop(session.session_id)
        self.replies.forget_scopes({session.session_id})
        return True

    def _check_lifecycle(self, session: Session, now: float) -> None:
        cfg = self.config
        session.expire_if_due(now, cfg.idle_timeout_s, cfg.absolute_timeout_s)
        if session.expiry_pending:
            # Durable before SessionExpired is sent: after a crash the session must stay expired.
            try:
                self.store.expire_session(session.session_id, session.ended_at or now)
            except _STORE_FAILURES as exc:
                log.error("session=%s expiry write failed: %s", session.session_id[:8], exc)
                raise _Failure("InternalError", "session storage failed", cache=False) from None
            session.expiry_pending = False
        if session.status is State.CLOSED:
            raise _Failure("SessionClosed", "the session is closed", {"closed_at": rfc3339(session.ended_at or now)})
        if session.status is State.EXPIRED:
            raise _Failure("SessionExpired", "the session has expired",
                           {"expired_at": rfc3339(session.ended_at or now)})

    def _expires_at(self, session: Session) -> str:
        deadline, _ = session.deadline(self.config.idle_timeout_s, self.config.absolute_timeout_s)
        return rfc3339(deadline)

    def _ensure_state(self, session: Session) -> None:
        try:
            self.sessions.ensure_state(session)
        except StateUnavailable as exc:
            log.error("session=%s state unavailable: %s", session.session_id[:8], exc)
            raise _Failure("InternalError", "the session's stored state cannot be read", cache=False) from None
        except _STORE_FAILURES as exc:
            log.error("session=%s storage read failed: %s", session.session_id[:8], exc)
            raise _Failure("InternalError", "session storage failed", cache=False) from None

    # -- commands -----------------------------------------------------------------------------------

    def _create(self, request_id: str, parameters: dict[str, Any], now: float, peer: str) -> Reply:
        client_id: str = parameters["client_id"]
        # Keyed by the connection too: client_id and id are not secret, and a repeat from another
        # connection must never be handed this session's token (RTY-5, RTY-10).
        scope = ("create", peer, client_id)
        request_fingerprint = fingerprint("session.create", parameters)
        cached = self.replies.get(scope, request_id, now)
        if cached is not None:
            if cached.fingerprint == request_fingerprint:
                return Reply(cached.reply, "session.create", None, "retry")
            raise _Failure("InvalidRequest", f"request id {request_id!r} was already used for a different request",
                           {"reason": "id_reused"})
        cfg = self.config
        try:
            active = self._active_sessions_of(client_id, now)
        except _STORE_FAILURES as exc:
            log.error("create: storage read failed: %s", exc)
            raise _Failure("InternalError", "session storage failed", cache=False) from None
        if active >= cfg.max_sessions_per_client:
            reply = self._error_reply(
                request_id, "session.create", now, "LimitExceeded",
                f"client already holds {active} active sessions; the limit is {cfg.max_sessions_per_client}",
                {"limit": SESSION_LIMIT_NAME, "value": cfg.max_sessions_per_client},
            )
            self.replies.put(scope, request_id, CachedReply(request_fingerprint, reply.body, now))
            return reply
        token = self.random_source(TOKEN_BYTES)
        state = encode_state(empty_state())
        for _attempt in range(CREATE_ATTEMPTS):
            session = Session(
                session_id=self.random_source(SESSION_ID_BYTES), client_id=client_id,
                token_digest=token_digest(token), created_at=now, last_active_at=now, status=State.ACTIVE,
                ended_at=None, revision=0, head_revision=0, object_epoch=self.store.epoch,
            )
            try:
                # The PRIMARY KEY refuses an id in use (2^-128 with a real random source).
                self.store.create_session(session.to_row(), state)
                break
            except sqlite3.IntegrityError:
                continue
            except _STORE_FAILURES as exc:
                log.error("create: storage write failed: %s", exc)
                raise _Failure("InternalError", "session storage failed; nothing was created",
                               cache=False) from None
        else:
            log.error("create: %d session ids drawn were all in use", CREATE_ATTEMPTS)
            raise _Failure("InternalError", "no free session id; nothing was created", cache=False)
        session.start_empty()
        self.sessions.add(session)
        # Not attached: a connection attaches with a request *on* the session (spec 9.4, CON-7),
        # and session.create names none.
        session_id = session.session_id
        result = {
            "session_id": session_id, "token": token, "revision": 0,
            "created_at": rfc3339(now), "expires_at": self._expires_at(session),
        }
        reply = self._reply(request_id, "session.create", session_id, now, result)
        self.replies.put(scope, request_id, CachedReply(request_fingerprint, reply.body, now))
        return reply

    def _active_sessions_of(self, client_id: str, now: float) -> int:
        cfg = self.config
        count = 0
        for session_id, created_at, last_active_at in self.store.active_sessions_of_client(client_id):
            held = self.sessions.live.get(session_id)
            if held is not None:
                if held.status is not State.ACTIVE:
                    continue
                deadline, _ = held.deadline(cfg.idle_timeout_s, cfg.absolute_timeout_s)
            else:  # counted as SessionRegistry.get would load it
                base = expiry.idle_base(last_active_at, self.started_at)
                deadline, _ = expiry.deadline(created_at, base, cfg.idle_timeout_s, cfg.absolute_timeout_s)
            count += deadline > now
        return count

    def _resume(self, session: Session, call: _Call) -> bytes:
        # RES-2/RES-3: "live" when the engine held the state before this request (also when an
        # earlier command after a restart loaded it, RES-5), "durable" when this resume loads it.
        held = session.state_loaded
        self._ensure_state(session)
        session.touch(call.now)
        result: dict[str, Any] = {
            "session_id": session.session_id,
            "revision": session.revision,
            "state": session.state_document(),
            "expires_at": self._expires_at(session),
            "source": "live" if held else "durable",
        }
        # Reported for as long as the held state is older than the newest acknowledged revision (PER-10).
        if session.fallback is not None and session.revision < session.head_revision:
            result["fallback"] = session.fallback.as_result()
        return self._reply(call.request_id, "session.resume", session.session_id, call.now, result).body

    def _validate(self, session: Session, call: _Call) -> bytes:
        # The current revision is the restored one, which differs from the newest after a fallback;
        # a session the engine holds is answered without storage.
        self._ensure_state(session)
        previous_activity = session.last_active_at  # VAL-2: the recorded activity before this request
        session.touch(call.now)
        result = {
            "session_id": session.session_id,
            "valid": True,
            "revision": session.revision,
            "expires_at": self._expires_at(session),
            "last_active_at": rfc3339(previous_activity),
            "attached_clients": session.attached_count(call.now, self.config.idle_timeout_s, call.peer),
        }
        return self._reply(call.request_id, "session.validate", session.session_id, call.now, result).body

    def _snapshot(self, session: Session, call: _Call) -> bytes:
        self._ensure_state(session)
        request_id, now = call.request_id, call.now
        expected = call.parameters.get("expected_revision")
        if expected is not None and expected != session.revision:
            raise _Failure(
                "RevisionConflict",
                f"expected revision {expected}, but the session is at revision {session.revision}",
                {"current_revision": session.revision, "expected_revision": expected},
            )
        client_state = call.parameters.get("state", {})
        inspector = client_state.get("inspector")
        preferences = client_state.get("preferences")
        document = session.state_document(inspector, preferences)
        revision = session.head_revision + 1
        result = {"session_id": session.session_id, "revision": revision, "saved_at": rfc3339(now)}
        body = self._reply(request_id, "session.snapshot", session.session_id, now, result).body
        try:
            self.store.save_snapshot(
                session.session_id, revision, now, encode_state(document),
                RetryRow(request_id, call.fingerprint.digest, body, now),
            )
        except _STORE_FAILURES as exc:
            log.error("session=%s snapshot write failed: %s", session.session_id[:8], exc)
            raise _Failure("InternalError", "session storage failed; the snapshot was not saved", cache=False) from None
        session.revision = session.head_revision = revision
        session.set_client_parts(inspector, preferences)
        session.fallback = None
        session.touch(now)
        session.activity_dirty = False  # save_snapshot wrote last_active_at
        return body

    def _close(self, session: Session, call: _Call) -> bytes:
        now = call.now
        result = {"session_id": session.session_id, "closed": True}
        body = self._reply(call.request_id, "session.close", session.session_id, now, result).body
        try:
            self.store.close_session(session.session_id, now,
                                     RetryRow(call.request_id, call.fingerprint.digest, body, now))
        except _STORE_FAILURES as exc:
            log.error("session=%s close write failed: %s", session.session_id[:8], exc)
            raise _Failure("InternalError", "session storage failed; the session is still open", cache=False) from None
        session.touch(now)
        session.activity_dirty = False
        session.apply(Event.CLOSE, now)
        return body

    def _run_code(self, session: Session, code: str) -> _Evaluation:
        """Evaluate in the session's workspace without changing it: `_keep` applies the outcome.
        A result too large for any reply is an EvaluationError here (EVL-8)."""
        assert session.variables is not None
        try:
            value, assignments = evaluate(code, session.variables)
        except EvaluationError as exc:
            position = max(1, int(exc.position))
            raise _Failure(
                "EvaluationError", f"{exc.reason} (at position {position})",
                {"reason": exc.reason, "position": position},
            ) from None
        except (RecursionError, MemoryError):
            raise _Failure(
                "EvaluationError", "the code is too large to evaluate", {"reason": "resource limit"},
            ) from None
        bindings, server_bytes = session.planned_bindings(assignments)
        binding = next((bindings[name] for name, v in assignments.items() if v is value), None)
        if binding is None:
            binding = value.to_binding()
        if len(encode(binding)) > self.config.max_message_bytes - REPLY_OVERHEAD_BYTES:
            raise _Failure("EvaluationError", "the result is too large to send within max_message_bytes",
                           {"reason": f"the result's print string does not fit in a reply of "
                                      f"{self.config.max_message_bytes} bytes (max_message_bytes)"})
        return _Evaluation(binding, assignments, bindings, server_bytes)

    def _keep(self, session: Session, run: _Evaluation, *, register: bool) -> str | None:
        """Apply an evaluation's assignments (and register its value as a new object when
        `register`), unless the session's state would then not fit in a resume reply together with
        its client-owned parts: then EvaluationError, and nothing changes (EVL-8)."""
        # An object id is at most as long as the next one (ids only grow).
        added = binding_size(session.peek_object_id(), run.binding) if register else 0
        if run.server_bytes + added + session.client_bytes > self.config.max_message_bytes - REPLY_OVERHEAD_BYTES:
            raise _Failure("EvaluationError", "the session's state would no longer fit in a reply",
                           {"reason": f"the session's state would exceed {self.config.max_message_bytes} bytes "
                                      "(max_message_bytes), so session.resume could not return it; nothing "
                                      "was changed"})
        if run.assignments:
            session.bind(run.assignments, run.bindings, run.server_bytes)
        if not register:
            return None
        object_id = session.new_object_id()
        session.register_object(object_id, run.binding)
        return object_id

    def _evaluate(self, session: Session, call: _Call) -> bytes:
        self._ensure_state(session)
        run = self._run_code(session, call.parameters["code"])
        self._keep(session, run, register=False)
        session.touch(call.now)
        result = {"print_string": run.binding["print_string"], "class": run.binding["class"]}
        return self._reply(call.request_id, "evaluate", session.session_id, call.now, result).body

    def _inspect(self, session: Session, call: _Call) -> bytes:
        self._ensure_state(session)
        if "object_id" in call.parameters:
            object_id = call.parameters["object_id"]
            entry = session.objects.get(object_id)
            if entry is None:
                raise _Failure("ObjectNotFound", f"no object {object_id!r} in this session",
                               {"object_id": object_id})
        else:
            run = self._run_code(session, call.parameters["expression"])
            new_id = self._keep(session, run, register=True)
            assert new_id is not None
            object_id, entry = new_id, run.binding
        session.touch(call.now)
        result = {"object_id": object_id, "class": entry["class"], "print_string": entry["print_string"]}
        return self._reply(call.request_id, "inspect", session.session_id, call.now, result).body

    # -- reply builders -----------------------------------------------------------------------------

    def _reply(
        self, request_id: str, command: str, session_id: str | None, now: float, result: dict[str, Any],
    ) -> Reply:
        message = {
            "id": request_id, "version": PROTOCOL_VERSION, "command": command, "status": "success",
            "result": result, "timestamp": rfc3339(now),
        }
        return self._finish(message, session_id, "success")

    def _error_reply(
        self, request_id: str | None, command: str | None, now: float, code: str, text: str,
        details: dict[str, Any] | None, *, session_id: str | None = None,
    ) -> Reply:
        error: dict[str, Any] = {"code": code, "message": text or code}
        if details is not None:
            error["details"] = details
        message = {
            "id": request_id, "version": PROTOCOL_VERSION, "command": command, "status": "error",
            "error": error, "timestamp": rfc3339(now),
        }
        return self._finish(message, session_id, code)

    def _finish(self, message: dict[str, Any], session_id: str | None, outcome: str) -> Reply:
        if self.response_hook is not None:
            message = self.response_hook(message)
        if self.config.strict:
            message, outcome = self._strict_check(message, outcome)
        return Reply(encode(message), message.get("command"), session_id, outcome)

    def _strict_check(self, message: dict[str, Any], outcome: str) -> tuple[dict[str, Any], str]:
        """--strict: a reply that breaks its schema, or an error its command may not return, is a bug."""
        problems = [f"{v.path}: {v.message}" for v in self.validator.check_response(message)]
        command = message.get("command")
        error = message.get("error")
        allowed = self.commands[command].errors if command in self.commands else None
        if isinstance(error, dict) and allowed is not None and error.get("code") not in allowed:
            problems.append(f"error code {error.get('code')!r} is not listed for {command}")
        if not problems:
            return message, outcome
        self.strict_violations += 1
        incident = secrets.token_hex(8)
        log.error("strict: schema-invalid reply suppressed incident=%s problems=%s",
                  incident, "; ".join(problems)[:2000])
        replacement = {
            "id": message.get("id") if isinstance(message.get("id"), str) else None,
            "version": PROTOCOL_VERSION,
            "command": command if isinstance(command, str) else None,
            "status": "error",
            "error": {"code": "InternalError", "message": f"server produced an invalid reply (incident {incident})",
                      "details": {"incident_id": incident}},
            "timestamp": message.get("timestamp") or rfc3339(self.clock()),
        }
        return replacement, "InternalError"
