"""The reference server's protocol engine, sans I/O: request body frames in, reply bytes out.

Theory of operation:
1. `Engine.process(body_frames, peer)` runs the processing order of docs/architecture.md: frame
   checks (codec), version, envelope, command, parameters (MessageValidator); then, for
   session-scoped commands: unknown id, token, retry cache, closed, expired; then the command. The
   first failing step answers. Every reply is built by one builder, so every error echoes `id` and
   `command` by the same rules and `--strict` checks every reply in one place.
2. The engine owns no sockets, threads, signals, clocks or randomness: time comes from the injected
   `clock` (epoch seconds), ids, tokens and incident ids from the injected `random_source`
   (`secrets.token_urlsafe` in production; the CLI passes both), durability from the injected
   `SessionStore` (stui_protocol_kit.reference_server.store), whose only exception is `StoreError`.
   Tests drive it with a fake clock on the in-memory store.
3. Only what must precede the reply happens per request: create, snapshot and close commit before
   their reply; an expiry a request discovers is written (one row) before its SessionExpired reply,
   so a restart cannot revive it (LIF-1); an error reply to a command with durable retry replies
   after the token check is stored for retries before it is sent (RTY-6). Every such write goes
   through `_durably`: durable, or InternalError and nothing changed. Activity, expiries found by
   housekeeping and all deletions from storage are batched in `tick()`, which the transport calls
   periodically. A request that finds a session past its retention only drops it from memory
   (answering SessionNotFound); the next `tick()` deletes it from storage. A session the engine holds
   is never re-read from storage.
   With a store that commits in groups (`store.group_commit`, the server's SqliteStore), a snapshot
   is not written on the serving thread: `process` answers PENDING with a ticket, the write joins
   the next group commit, and `finish_commits` returns the reply once it is durable (success, or
   InternalError with nothing changed) and only then changes the session in memory. Until then
   every request naming that session is answered DEFERRED, unprocessed, for the caller to hand back
   in arrival order; other sessions are served meanwhile.
4. Every lifecycle decision is the session's `SessionLifecycle` (stui_protocol_kit.protocol.lifecycle):
   the engine fires its transitions in time with `advance(now)` (timeouts and RETENTION_ELAPSED) and
   the command events through it, and answers the error its state names; it never compares deadlines
   itself. Protocol facts (error codes, reasons, limits, capabilities, commands) are the symbols of
   stui_protocol_kit.protocol.facts.
5. Nothing a session holds can make a reply too large to read: evaluate/inspect refuse (with
   EvaluationError, changing nothing) a result or a workspace that would not fit in
   `max_message_bytes` together with the session's client-owned parts.

What it must never do: import a storage technology, a socket library, `time` or `secrets`; log,
store or echo a token anywhere but in the create reply; execute a retried request twice; answer
success for create/snapshot/close before the change is durable.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from stui_protocol_kit.protocol.codec import FrameError, decode_body, encode, rfc3339
from stui_protocol_kit.protocol.facts import (
    COMMANDS,
    DURABLE_RETRY_COMMANDS,
    PROTOCOL_VERSION,
    RETRY_CACHED_COMMANDS,
    SESSION_SCOPED_COMMANDS,
    Capability,
    Command,
    ErrorCode,
    InvalidRequestReason,
    Limit,
)
from stui_protocol_kit.protocol.lifecycle import ENDED_AT_MEMBER, Event, SessionLifecycle, State
from stui_protocol_kit.protocol.validation import MessageValidator, validator
from stui_protocol_kit.reference_server.config import ServerConfig
from stui_protocol_kit.reference_server.evaluator import EvaluationError, Value, evaluate
from stui_protocol_kit.reference_server.reply_cache import (
    CachedReply,
    Fingerprint,
    ReplyCache,
    Scope,
    fingerprint,
)
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
from stui_protocol_kit.reference_server.store import RetryRow, SessionIdTaken, SessionStore, StoreError

log = logging.getLogger("stui.reference_server")

Clock = Callable[[], float]
RandomSource = Callable[[int], str]  # n random bytes -> base64url text (secrets.token_urlsafe)

SESSION_ID_BYTES = 16  # 128 bits -> 22 base64url characters
TOKEN_BYTES = 32  # 256 bits -> 43 base64url characters
INCIDENT_ID_BYTES = 8
# The optional features this server serves (all v1 defines); hello announces them in this order.
SERVED_CAPABILITIES = (Capability.EVALUATE, Capability.INSPECT, Capability.RETRY_DURABLE)
# Room for everything of a reply but the state document or the value: the envelope, a request id of
# 128 characters escaped as \u00XX, the timestamps and fallback. Measured below 1200 bytes.
REPLY_OVERHEAD_BYTES = 2048
CREATE_ATTEMPTS = 8  # session ids drawn before giving up on a colliding random source
# What a session-scoped command is told in a state that answers an error (lifecycle.STATE_ERRORS).
_STATE_MESSAGES = {
    ErrorCode.SessionClosed: "the session is closed",
    ErrorCode.SessionExpired: "the session has expired",
}

_T = TypeVar("_T")


@dataclass(frozen=True)
class Reply:
    """What the engine answered, with what the request log needs (never a token)."""

    body: bytes
    command: str | None
    session_id: str | None
    outcome: str  # "success", an error code, "retry" (a cached reply sent again), PENDING or DEFERRED
    # PENDING: a snapshot waits for its group commit; its reply comes from `finish_commits` under this ticket.
    ticket: int | None = None


# Outcomes of `process` that carry no reply yet (group commit, stui_protocol_kit.reference_server.group_commit):
# PENDING - the request's durable write is queued; `finish_commits` answers it under `Reply.ticket`.
# DEFERRED - the request names a session with a write in flight and was not processed: the caller
# hands it to `process` again, in arrival order, once that session's commit is answered (requests
# of one session are answered in order; other sessions are served meanwhile).
PENDING = "pending"
DEFERRED = "deferred"


@dataclass(frozen=True)
class _Pending:
    """A snapshot's reply, held until its write is durable: `submit` queues the write under a ticket,
    `apply` makes the in-memory change once it is durable (nothing changes when it fails)."""

    submit: Callable[[int], None]
    apply: Callable[[], None]
    body: bytes


@dataclass(frozen=True)
class _Commit:
    session_id: str
    call: _Call
    pending: _Pending


class _Failure(Exception):
    """Raised inside a command to answer an error reply."""

    def __init__(self, code: ErrorCode, message: str, details: dict[str, Any] | None = None, *, cache: bool = True):
        super().__init__(message)
        self.code = code
        self.message = message
        self.details = details
        # InternalError is not cached: the spec lets the client retry the same id.
        self.cache = cache


@dataclass(frozen=True)
class _Call:
    """One session-scoped request as its command handler sees it."""

    command: str
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
        *,
        clock: Clock,
        random_source: RandomSource,
        message_validator: MessageValidator | None = None,
    ) -> None:
        self.config = config
        self.store = store
        self.clock = clock
        self.random_source = random_source
        self.validator = message_validator or validator()
        self.replies = ReplyCache(config.retry_window_s, config.retry_cache_bytes)
        self.started_at = clock()
        self.sessions = SessionRegistry(store, self.replies, self.started_at, config.timeouts)
        self.strict_violations = 0
        # Group commit: snapshots in flight by ticket, and the sessions they hold (no request of
        # such a session is processed until its snapshot is answered).
        self._group_commit = bool(getattr(store, "group_commit", False))
        self._commits: dict[int, _Commit] = {}
        self._busy: dict[str, int] = {}
        self._ended: set[str] = set()  # sessions closed or expired since the last tick: to leave memory
        self._tickets = itertools.count(1)
        self._hello_result = {
            "protocol_versions": [PROTOCOL_VERSION],
            "server": {"name": config.server_name, "version": config.server_version},
            "capabilities": [c.value for c in SERVED_CAPABILITIES],
            "limits": config.limits(),
        }
        self._session_commands: dict[str, Callable[[Session, _Call], bytes | _Pending]] = {
            Command.SESSION_RESUME: self._resume,
            Command.SESSION_VALIDATE: self._validate,
            Command.SESSION_SNAPSHOT: self._snapshot,
            Command.SESSION_CLOSE: self._close,
            Command.EVALUATE: self._evaluate,
            Command.INSPECT: self._inspect,
        }
        if set(self._session_commands) != set(SESSION_SCOPED_COMMANDS):
            raise RuntimeError("the engine's session-scoped handlers differ from schemas/: "
                               f"{sorted(set(self._session_commands) ^ set(SESSION_SCOPED_COMMANDS))}")
        served = {Command.HELLO, Command.SESSION_CREATE, *self._session_commands}
        missing = set(COMMANDS) - served
        if missing:
            raise RuntimeError(f"schemas/ define commands this engine does not serve: {sorted(missing)}")

    # -- entry points ------------------------------------------------------------------------------

    def handle(self, body_frames: list[bytes], peer: str = "") -> bytes:
        """One request's body frames (routing envelope already removed) -> the reply body."""
        return self.process(body_frames, peer).body

    def process(self, body_frames: list[bytes], peer: str = "") -> Reply:
        """One request -> the reply and what the request log needs (the transport logs it, timed)."""
        return self._process(body_frames, peer)

    @property
    def commits_in_flight(self) -> int:
        """Snapshots waiting for their group commit (their replies come from `finish_commits`)."""
        return len(self._commits)

    @property
    def commit_signal_fd(self) -> int | None:
        """A descriptor the caller polls: readable when `finish_commits` has replies (group commit only)."""
        return getattr(self.store, "wake_fd", None) if self._group_commit else None

    def finish_commits(self) -> list[Reply]:
        """The replies of snapshots whose group commit ended, each with its `ticket`: success once the
        write is durable (the in-memory change is made now), InternalError and nothing changed when
        it failed. The sessions they held take requests again."""
        finished: list[Reply] = []
        for ticket, error in self.store.completed_snapshots():  # type: ignore[attr-defined]
            commit = self._commits.pop(ticket, None)
            if commit is None:
                continue
            self._busy.pop(commit.session_id, None)
            call = commit.call
            if error is not None:
                log.error("session=%s snapshot write failed: %s", commit.session_id[:8], error)
                reply = self._error_reply(call.request_id, call.command, call.now, ErrorCode.InternalError,
                                          "session storage failed; the snapshot was not saved", None,
                                          session_id=commit.session_id)
            else:
                commit.pending.apply()
                session = self.sessions.live.get(commit.session_id)
                if session is not None:
                    if self.sessions.note_peer(session, call.peer, call.now):
                        log.info("attach session=%s peer=%s", commit.session_id[:8], call.peer or "-")
                    self.sessions.schedule(session)
                self._cache(call.command, commit.session_id, call.request_id,
                            CachedReply(call.fingerprint, commit.pending.body, call.now))
                reply = Reply(commit.pending.body, call.command, commit.session_id, "success")
            finished.append(Reply(reply.body, reply.command, reply.session_id, reply.outcome, ticket))
        return finished

    def peer_disconnected(self, peer: str) -> None:
        """The transport saw a client connection close; its routing id is no longer attached."""
        for session_id in self.sessions.peer_gone(peer):
            log.info("detach session=%s peer=%s reason=disconnect", session_id[:8], peer or "-")

    def tick(self) -> None:
        """Housekeeping off the reply path: fire due transitions, purge, forget old replies, flush activity."""
        now = self.clock()
        cfg = self.config
        self.replies.expire(now)
        expired: list[Session] = []
        gone: list[str] = []
        # Only the sessions with something due (SessionRegistry's index): the cost of a tick does not
        # grow with the number of sessions held.
        for session in self.sessions.due(now):
            session.advance(now)
            if session.expiry_pending:
                expired.append(session)
            if session.status is State.PURGED:
                gone.append(session.session_id)  # dropped below once storage purged it
            for peer in self.sessions.detach_idle(session, now, cfg.idle_timeout_s):
                log.info("detach session=%s peer=%s reason=idle", session.session_id[:8], peer or "-")
            self.sessions.schedule(session)
        activity: list[tuple[str, float]] = []
        for session in self.sessions.take_touched():
            activity.append((session.session_id, session.last_active_at))
            session.activity_dirty = False
        try:
            if activity:
                self.store.flush_activity(activity)
            if expired:
                self.store.mark_expired([(s.session_id, s.lifecycle.ended_at or now) for s in expired])
                for session in expired:
                    session.expiry_pending = False
            # Sessions only in storage: the held ones' activity was flushed just above.
            self.store.expire_overdue(now, cfg.timeouts, self.started_at)
            purged = self.store.purge(now, cfg.timeouts, cfg.retry_window_s)
        except StoreError as exc:
            log.error("housekeeping failed: %s", exc)
            for session_id, _at in activity:
                held = self.sessions.live.get(session_id)
                if held is not None:
                    held.activity_dirty = True
                    self.sessions.touched.add(session_id)
            return
        scopes: set[Scope] = set(gone) | set(purged)
        for session_id in scopes:
            self.sessions.drop(session_id)  # type: ignore[arg-type]
        self.replies.forget_scopes(scopes)
        # Tombstones whose end is durable leave memory: a request naming one reads its row again
        # (a few hundred bytes), so closed and expired sessions cost nothing here until purged.
        self._ended.update(s.session_id for s in expired)
        for session_id in list(self._ended):
            held = self.sessions.live.get(session_id)
            if held is None or held.status is State.ACTIVE:
                self._ended.discard(session_id)
            elif not held.expiry_pending and not held.activity_dirty:
                self.sessions.drop(session_id)
                self._ended.discard(session_id)
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
                None, None, now, ErrorCode.PayloadTooLarge,
                f"message is {size} bytes; the limit is {cfg.max_message_bytes}",
                {"max_message_bytes": cfg.max_message_bytes, "received_bytes": size},
            )
        if len(body_frames) != 1:
            return self._error_reply(
                None, None, now, ErrorCode.InvalidRequest,
                f"a request is exactly one body frame; got {len(body_frames)}",
                {"reason": InvalidRequestReason.FRAMES},
            )
        try:
            decoded = decode_body(body_frames[0], max_bytes=cfg.max_message_bytes, max_depth=cfg.max_nesting_depth)
        except FrameError as exc:
            if exc.code == ErrorCode.PayloadTooLarge:
                details = {"max_message_bytes": cfg.max_message_bytes, "received_bytes": exc.received_bytes or size}
            else:
                details = {"reason": exc.reason or InvalidRequestReason.JSON}
            return self._error_reply(None, None, now, ErrorCode(exc.code), exc.message, details)
        message = decoded.message
        verdict = self.validator.check_request(message, has_float=decoded.has_float)
        if not verdict.ok:
            details = dict(verdict.details)
            if verdict.error_code == ErrorCode.InvalidRequest:
                details.setdefault("reason", verdict.reason or InvalidRequestReason.SCHEMA)
            # SEC-5: the validator never quotes a secret member's value, whatever its type or length.
            text = verdict.message or "invalid request"
            return self._error_reply(
                verdict.id, verdict.command, now, ErrorCode(verdict.error_code or ErrorCode.InvalidRequest), text,
                details or None,
            )
        command: str = message["command"]
        request_id: str = message["id"]
        parameters: dict[str, Any] = message["parameters"]
        try:
            if command == Command.HELLO:
                return self._reply(request_id, command, None, now, self._hello_result)
            if command == Command.SESSION_CREATE:
                return self._create(request_id, parameters, now)
            return self._session_scoped(command, request_id, parameters, now, peer)
        except _Failure as failure:
            # Only create and session-scoped commands raise past their own handling; neither caches here.
            session_id = parameters.get("session_id") if command != Command.SESSION_CREATE else None
            return self._error_reply(request_id, command, now, failure.code, failure.message, failure.details,
                                     session_id=session_id)
        except Exception:  # a bug must answer InternalError and keep the server serving
            incident = self._incident_id()
            log.exception("internal error incident=%s command=%s", incident, command)
            return self._error_reply(
                request_id, command, now, ErrorCode.InternalError, f"internal error (incident {incident})",
                {"incident_id": incident},
            )

    def _session_scoped(
        self, command: str, request_id: str, parameters: dict[str, Any], now: float, peer: str,
    ) -> Reply:
        try:
            return self._session_request(command, request_id, parameters, now, peer)
        finally:
            # Whatever the request changed (activity, state, peers), housekeeping's index follows.
            held = self.sessions.live.get(parameters["session_id"])
            if held is not None:
                self.sessions.schedule(held)

    def _session_request(
        self, command: str, request_id: str, parameters: dict[str, Any], now: float, peer: str,
    ) -> Reply:
        session_id: str = parameters["session_id"]
        if session_id in self._busy:  # its snapshot is being committed: answered after it, in order
            return Reply(b"", command, session_id, DEFERRED)
        session = self._durably("load session", session_id, lambda: self.sessions.get(session_id, now))
        if session is not None:
            session.advance(now)  # timeouts and retention are transitions in time (spec 5)
            if session.status is State.PURGED:
                # Dropped from memory only: tick() deletes it from storage (a request never purges storage).
                self.sessions.drop(session_id)
                self.replies.forget_scopes({session_id})
                session = None
        if session is None:
            raise _Failure(ErrorCode.SessionNotFound, "no session with this id exists")
        if not session.token_matches(parameters["token"]):
            raise _Failure(ErrorCode.InvalidToken, "the token does not match the session")
        request_fingerprint = fingerprint(command, parameters)
        replayed = self._replayed(session_id, request_id, request_fingerprint, command, session_id, now)
        if replayed is not None:
            return replayed
        call = _Call(command, request_id, parameters, now, request_fingerprint, peer)
        try:
            self._answer_lifecycle(session, now)
            body = self._session_commands[command](session, call)
            if isinstance(body, _Pending):
                return self._await_commit(session_id, call, body)
            # A connection attaches with its first successful request on the session (spec 9.4).
            if self.sessions.note_peer(session, peer, now):
                log.info("attach session=%s peer=%s", session_id[:8], peer or "-")
        except _Failure as failure:
            reply = self._error_reply(request_id, command, now, failure.code, failure.message, failure.details,
                                      session_id=session_id)
            if failure.cache:
                if command in DURABLE_RETRY_COMMANDS:
                    # RTY-6 covers every reply of these commands, so an error one is kept durably too.
                    row = RetryRow(request_id, request_fingerprint.digest, reply.body, now)
                    try:
                        self._durably("retry reply write", session_id, lambda: self.store.put_retry(session_id, row))
                    except _Failure as stored:
                        return self._error_reply(request_id, command, now, stored.code, stored.message, None,
                                                 session_id=session_id)
                self._cache(command, session_id, request_id, CachedReply(request_fingerprint, reply.body, now))
            return reply
        self._cache(command, session_id, request_id, CachedReply(request_fingerprint, body, now))
        return Reply(body, command, session_id, "success")

    def _await_commit(self, session_id: str, call: _Call, pending: _Pending) -> Reply:
        ticket = next(self._tickets)
        self._durably("snapshot write", session_id, lambda: pending.submit(ticket),
                      "session storage failed; the snapshot was not saved")
        self._commits[ticket] = _Commit(session_id, call, pending)
        self._busy[session_id] = ticket
        return Reply(b"", call.command, session_id, PENDING, ticket)

    def _cache(self, command: str, session_id: str, request_id: str, entry: CachedReply) -> None:
        """Keep the reply of a command that changes something (RTY-1); read-only ones (resume,
        validate) are safe to execute again and would only pin their large replies (RTY-12)."""
        if command in RETRY_CACHED_COMMANDS:
            durable = command in DURABLE_RETRY_COMMANDS
            self.replies.put(session_id, request_id, CachedReply(entry.fingerprint, entry.reply, entry.stored_at,
                                                                 durable=durable))

    def _replayed(
        self, scope: Scope, request_id: str, request_fingerprint: Fingerprint, command: str,
        session_id: str | None, now: float,
    ) -> Reply | None:
        """The retry cache (RTY): the original reply for a repeat, id_reused for an id used for another
        request, None for a request to execute."""
        cached = self.replies.get(scope, request_id, now)
        if cached is None and self.replies.lost_durable(scope):
            cached = self._stored_retry(scope, request_id, now)
        if cached is None:
            return None
        if cached.fingerprint == request_fingerprint:
            return Reply(cached.reply, command, session_id, "retry")
        raise _Failure(ErrorCode.InvalidRequest,
                       f"request id {request_id!r} was already used for a different request",
                       {"reason": InvalidRequestReason.ID_REUSED})

    def _stored_retry(self, session_id: str, request_id: str, now: float) -> CachedReply | None:
        """A snapshot/close reply the cache dropped for its bound is still in storage (RTY-6, RTY-12)."""
        rows = self._durably("retry reply read", session_id,
                             lambda: self.store.load_retry_rows(session_id, now - self.replies.window_s))
        for row in rows:
            if row.request_id == request_id:
                return CachedReply(Fingerprint.of_digest(row.fingerprint), row.reply, row.stored_at, durable=True)
        return None

    def _answer_lifecycle(self, session: Session, now: float) -> None:
        """The lifecycle's answer in the session's state (after the retry cache): a pending expiry is
        made durable first, so that after a crash the session stays expired."""
        if session.expiry_pending:
            ended = session.lifecycle.ended_at or now
            self._durably("expiry write", session.session_id,
                          lambda: self.store.expire_session(session.session_id, ended))
            session.expiry_pending = False
            self._ended.add(session.session_id)
        code = session.lifecycle.answer()
        if code is not None:
            ended_at = session.lifecycle.ended_at if session.lifecycle.ended_at is not None else now
            raise _Failure(code, _STATE_MESSAGES[code], {ENDED_AT_MEMBER[session.status]: rfc3339(ended_at)})

    def _durably(self, what: str, session_id: str | None, operation: Callable[[], _T],
                 failure: str = "session storage failed") -> _T:
        """Run a storage operation; a StoreError is logged and answered InternalError (not cached, so the
        client may retry the same id), with nothing changed. SessionIdTaken is no failure: create draws
        another id."""
        try:
            return operation()
        except SessionIdTaken:
            raise
        except StoreError as exc:
            log.error("session=%s %s failed: %s", session_id[:8] if session_id else "-", what, exc)
            raise _Failure(ErrorCode.InternalError, failure, cache=False) from None

    def _incident_id(self) -> str:
        return self.random_source(INCIDENT_ID_BYTES)

    def _expires_at(self, session: Session) -> str:
        return rfc3339(session.expires_at())

    def _ensure_state(self, session: Session) -> None:
        try:
            self._durably("state read", session.session_id, lambda: self.sessions.ensure_state(session))
        except StateUnavailable as exc:
            log.error("session=%s state unavailable: %s", session.session_id[:8], exc)
            raise _Failure(ErrorCode.InternalError, "the session's stored state cannot be read", cache=False) from None

    # -- commands -----------------------------------------------------------------------------------

    def _create(self, request_id: str, parameters: dict[str, Any], now: float) -> Reply:
        client_id: str = parameters["client_id"]
        # Never answered from a cache (RTY-11): nothing in a repeated create proves that its sender sent
        # the original (client_id, id and even the ZeroMQ routing id can be copied or guessed), so a
        # repeat is a new create and a session whose reply was lost expires by its idle timeout.
        cfg = self.config
        active = self._durably("create: sessions of client read", None,
                               lambda: self._active_sessions_of(client_id, now))
        if active >= cfg.max_sessions_per_client:
            reply = self._error_reply(
                request_id, Command.SESSION_CREATE, now, ErrorCode.LimitExceeded,
                f"client already holds {active} active sessions; the limit is {cfg.max_sessions_per_client}",
                {"limit": Limit.MAX_SESSIONS_PER_CLIENT, "value": cfg.max_sessions_per_client},
            )
            return reply
        total = self._durably("create: active sessions read", None, lambda: self._active_sessions_total(now))
        if total >= cfg.max_sessions:
            return self._error_reply(
                request_id, Command.SESSION_CREATE, now, ErrorCode.LimitExceeded,
                f"the server holds {total} active sessions; the limit is {cfg.max_sessions}",
                {"limit": Limit.MAX_SESSIONS, "value": cfg.max_sessions},
            )
        token = self.random_source(TOKEN_BYTES)
        state = encode_state(empty_state())
        for _attempt in range(CREATE_ATTEMPTS):
            session = Session(
                session_id=self.random_source(SESSION_ID_BYTES), client_id=client_id,
                token_digest=token_digest(token), lifecycle=SessionLifecycle.create(cfg.timeouts, now),
                revision=0, head_revision=0, object_epoch=self.store.epoch,
            )
            try:
                # The store refuses an id in use (2^-128 with a real random source): draw another.
                self._durably("create write", session.session_id,
                              lambda s=session: self.store.create_session(s.to_row(), state),
                              "session storage failed; nothing was created")
                break
            except SessionIdTaken:
                continue
        else:
            log.error("create: %d session ids drawn were all in use", CREATE_ATTEMPTS)
            raise _Failure(ErrorCode.InternalError, "no free session id; nothing was created", cache=False)
        session.start_empty()
        self.sessions.add(session)
        # Not attached: a connection attaches with a request *on* the session (spec 9.4, CON-7),
        # and session.create names none.
        session_id = session.session_id
        result = {
            "session_id": session_id, "token": token, "revision": 0,
            "created_at": rfc3339(now), "expires_at": self._expires_at(session),
        }
        return self._reply(request_id, Command.SESSION_CREATE, session_id, now, result)

    def _active_sessions_total(self, now: float) -> int:
        """Active sessions in all (LIM-6). Storage counts them by their stored activity, which may lag
        behind the held sessions' (flushed in batches): when that lag could decide, flush first."""
        cfg = self.config
        count = self.store.active_session_count(now, cfg.timeouts, self.started_at)
        if count + len(self.sessions.live) >= cfg.max_sessions:
            dirty = [s for s in self.sessions.live.values() if s.activity_dirty]
            if dirty:
                self.store.flush_activity([(s.session_id, s.last_active_at) for s in dirty])
                for session in dirty:
                    session.activity_dirty = False
                count = self.store.active_session_count(now, cfg.timeouts, self.started_at)
        return count

    def _active_sessions_of(self, client_id: str, now: float) -> int:
        count = 0
        for session_id, created_at, last_active_at in self.store.active_sessions_of_client(client_id):
            held = self.sessions.live.get(session_id)
            if held is not None:
                if held.status is not State.ACTIVE:
                    continue
                lifecycle = held.lifecycle
            else:  # counted as SessionRegistry.get would load it
                lifecycle = SessionLifecycle.restore(
                    self.config.timeouts, state=State.ACTIVE, created_at=created_at, last_active_at=last_active_at,
                    ended_at=None, started_at=self.started_at)
            count += lifecycle.deadline()[0] > now
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
        return self._reply(call.request_id, call.command, session.session_id, call.now, result).body

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
        return self._reply(call.request_id, call.command, session.session_id, call.now, result).body

    def _snapshot(self, session: Session, call: _Call) -> bytes | _Pending:
        self._ensure_state(session)
        request_id, now = call.request_id, call.now
        expected = call.parameters.get("expected_revision")
        if expected is not None and expected != session.revision:
            raise _Failure(
                ErrorCode.RevisionConflict,
                f"expected revision {expected}, but the session is at revision {session.revision}",
                {"current_revision": session.revision, "expected_revision": expected},
            )
        client_state = call.parameters.get("state", {})
        inspector = client_state.get("inspector")
        preferences = client_state.get("preferences")
        revision = session.head_revision + 1
        result = {"session_id": session.session_id, "revision": revision, "saved_at": rfc3339(now)}
        body = self._reply(request_id, call.command, session.session_id, now, result).body
        retry = RetryRow(request_id, call.fingerprint.digest, body, now)
        encoded, client_bytes = session.encoded_state(inspector, preferences)

        def apply() -> None:
            session.revision = session.head_revision = revision
            session.set_client_parts(inspector, preferences, client_bytes)
            session.fallback = None
            if session.status is State.ACTIVE:  # housekeeping may have expired it meanwhile
                session.touch(now)
            session.activity_dirty = False  # the snapshot's write set last_active_at

        if self._group_commit:  # replied by finish_commits once durable; other sessions served meanwhile
            return _Pending(lambda ticket: self.store.submit_snapshot(  # type: ignore[attr-defined]
                ticket, session.session_id, revision, now, encoded, retry), apply, body)
        self._durably("snapshot write", session.session_id,
                      lambda: self.store.save_snapshot(session.session_id, revision, now, encoded, retry),
                      "session storage failed; the snapshot was not saved")
        apply()
        return body

    def _close(self, session: Session, call: _Call) -> bytes:
        now = call.now
        result = {"session_id": session.session_id, "closed": True}
        body = self._reply(call.request_id, call.command, session.session_id, now, result).body
        retry = RetryRow(call.request_id, call.fingerprint.digest, body, now)
        self._durably("close write", session.session_id,
                      lambda: self.store.close_session(session.session_id, now, retry),
                      "session storage failed; the session is still open")
        session.touch(now)
        session.activity_dirty = False
        session.lifecycle.process_event(Event.CLOSE, now)
        session.drop_state()  # a tombstone answers SessionClosed and retries; it needs no state
        self._ended.add(session.session_id)
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
                ErrorCode.EvaluationError, f"{exc.reason} (at position {position})",
                {"reason": exc.reason, "position": position},
            ) from None
        except (RecursionError, MemoryError):
            raise _Failure(
                ErrorCode.EvaluationError, "the code is too large to evaluate", {"reason": "resource limit"},
            ) from None
        bindings, server_bytes = session.planned_bindings(assignments)
        binding = next((bindings[name] for name, v in assignments.items() if v is value), None)
        if binding is None:
            binding = value.to_binding()
        if len(encode(binding)) > self.config.max_message_bytes - REPLY_OVERHEAD_BYTES:
            raise _Failure(ErrorCode.EvaluationError, "the result is too large to send within max_message_bytes",
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
            raise _Failure(ErrorCode.EvaluationError, "the session's state would no longer fit in a reply",
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
        return self._reply(call.request_id, Command.EVALUATE, session.session_id, call.now, result).body

    def _inspect(self, session: Session, call: _Call) -> bytes:
        self._ensure_state(session)
        if "object_id" in call.parameters:
            object_id = call.parameters["object_id"]
            entry = session.objects.get(object_id)
            if entry is None:
                raise _Failure(ErrorCode.ObjectNotFound, f"no object {object_id!r} in this session",
                               {"object_id": object_id})
        else:
            run = self._run_code(session, call.parameters["expression"])
            new_id = self._keep(session, run, register=True)
            assert new_id is not None
            object_id, entry = new_id, run.binding
        session.touch(call.now)
        result = {"object_id": object_id, "class": entry["class"], "print_string": entry["print_string"]}
        return self._reply(call.request_id, Command.INSPECT, session.session_id, call.now, result).body

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
        self, request_id: str | None, command: str | None, now: float, code: ErrorCode, text: str,
        details: dict[str, Any] | None, *, session_id: str | None = None,
    ) -> Reply:
        error: dict[str, Any] = {"code": code, "message": text or code}
        if details is not None:
            error["details"] = details
        message = {
            "id": request_id, "version": PROTOCOL_VERSION, "command": command, "status": "error",
            "error": error, "timestamp": rfc3339(now),
        }
        return self._finish(message, session_id, code.value)

    def _finish(self, message: dict[str, Any], session_id: str | None, outcome: str) -> Reply:
        if self.config.strict:
            message, outcome = self._strict_check(message, outcome)
        return Reply(encode(message), message.get("command"), session_id, outcome)

    def _strict_check(self, message: dict[str, Any], outcome: str) -> tuple[dict[str, Any], str]:
        """--strict: a reply that breaks its schema, or an error its command may not return, is a bug."""
        problems = [f"{v.path}: {v.message}" for v in self.validator.check_response(message)]
        command = message.get("command")
        error = message.get("error")
        allowed = COMMANDS[command].errors if command in COMMANDS else None
        if isinstance(error, dict) and allowed is not None and error.get("code") not in allowed:
            problems.append(f"error code {error.get('code')!r} is not listed for {command}")
        if not problems:
            return message, outcome
        self.strict_violations += 1
        incident = self._incident_id()
        log.error("strict: schema-invalid reply suppressed incident=%s problems=%s",
                  incident, "; ".join(problems)[:2000])
        replacement = {
            "id": message.get("id") if isinstance(message.get("id"), str) else None,
            "version": PROTOCOL_VERSION,
            "command": command if isinstance(command, str) else None,
            "status": "error",
            "error": {"code": ErrorCode.InternalError,
                      "message": f"server produced an invalid reply (incident {incident})",
                      "details": {"incident_id": incident}},
            "timestamp": message.get("timestamp") or rfc3339(self.clock()),
        }
        return replacement, ErrorCode.InternalError.value
