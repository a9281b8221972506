"""Live sessions: the objects the engine works on, and the registry that holds and lazily loads them.

A `Session` is one session as the engine holds it: identity (id, client, token digest), its
`SessionLifecycle` (stui_protocol_kit.protocol.lifecycle: state, timings, deadlines - every transition
goes through it), revision counters, the workspace (variables as evaluator `Value`s, each with its
state-document binding computed once), the object registry, the client-owned documents, and the
routing ids attached to it.
`SessionRegistry` answers "which session is this id?" from memory, reading a session's row from
storage only the first time a request names it after start-up, and its state (newest intact
revision) only when a command needs the state.

Object ids are `o<epoch>.<n>`: the epoch is the store's, raised durably at every start, so an id is
never issued twice for a session, also after a restart restored an older revision (INS-1, INS-4).

This module never decides protocol outcomes (that is the engine's job), never writes to storage and
imports no storage technology, clock or socket; it must never hold a token, only its SHA-256 digest.
"""

from __future__ import annotations

import hashlib
import heapq
import hmac
import itertools
import json
import math
from dataclasses import dataclass
from typing import Any

from stui_protocol_kit.protocol.codec import encode
from stui_protocol_kit.protocol.lifecycle import Event, SessionLifecycle, State, Timeouts
from stui_protocol_kit.reference_server.evaluator import Value
from stui_protocol_kit.reference_server.reply_cache import CachedReply, Fingerprint, ReplyCache
from stui_protocol_kit.reference_server.store import SessionRow, SessionStore, StoredRevision

OBJECT_ID_PREFIX = "o"
Binding = dict[str, str]  # {"class": ..., "print_string": ...} as in schemas/state.json


def binding_size(name: str, binding: Binding) -> int:
    """Bytes `"name":{...},` adds to an encoded state document (an upper bound by the comma)."""
    return len(encode(name)) + len(encode(binding)) + 2


def token_digest(token: str) -> bytes:
    return hashlib.sha256(token.encode("utf-8")).digest()


def empty_state() -> dict[str, Any]:
    return {"workspace": {"variables": {}}, "objects": {}, "inspector": {}, "preferences": {}}


@dataclass(frozen=True)
class Fallback:
    """Resume had to skip newer revisions that were unreadable."""

    from_revision: int
    to_revision: int
    reason: str

    def as_result(self) -> dict[str, Any]:
        return {"from_revision": self.from_revision, "to_revision": self.to_revision, "reason": self.reason}


class StateUnavailable(Exception):
    """No kept revision of the session is intact: its state cannot be restored."""


class Session:
    """One session held by the engine."""

    __slots__ = (
        "session_id", "client_id", "token_digest", "lifecycle", "expiry_pending", "revision", "head_revision",
        "variables", "bindings", "objects", "inspector", "preferences", "server_bytes", "client_bytes",
        "object_epoch", "next_object", "fallback", "attached", "activity_dirty", "scheduled_at",
        "_server_json",
    )

    def __init__(
        self, *, session_id: str, client_id: str, token_digest: bytes, lifecycle: SessionLifecycle,
        revision: int, head_revision: int, object_epoch: int,
    ) -> None:
        self.session_id = session_id
        self.client_id = client_id
        self.token_digest = token_digest
        self.lifecycle = lifecycle
        self.expiry_pending = False  # expired in memory, not yet written to storage
        self.revision = revision  # the revision the held state derives from
        self.head_revision = head_revision  # highest revision ever assigned: never reused
        self.variables: dict[str, Value] | None = None  # None: state not loaded from storage yet
        self.bindings: dict[str, Binding] = {}  # name -> state-document binding of variables[name]
        self.objects: dict[str, Binding] = {}
        self.inspector: dict[str, Any] = {}
        self.preferences: dict[str, Any] = {}
        self.server_bytes = 0  # encoded size of the workspace bindings and objects
        self.client_bytes = 0  # encoded size of inspector and preferences
        self.object_epoch = object_epoch
        self.next_object = 1
        self.fallback: Fallback | None = None
        self.attached: dict[str, float] = {}  # routing id (hex) -> last seen
        self.activity_dirty = False
        self.scheduled_at = math.inf  # when SessionRegistry.due hands it to housekeeping next
        # The encoded workspace and objects as they open the state document, kept between snapshots
        # (None after any change to them): a snapshot re-encodes only what the client sent.
        self._server_json: bytes | None = None

    # -- authentication and lifecycle ------------------------------------------------------------

    @property
    def status(self) -> State:
        return self.lifecycle.state

    @property
    def last_active_at(self) -> float:
        return self.lifecycle.last_active_at

    def token_matches(self, token: str) -> bool:
        return hmac.compare_digest(self.token_digest, token_digest(token))

    def advance(self, now: float) -> list[Event]:
        """Fire the lifecycle's transitions in time due at `now`; an expiry becomes pending its
        durable write, which must precede any SessionExpired reply."""
        fired = self.lifecycle.advance(now)
        if any(event in (Event.IDLE_TIMEOUT, Event.ABSOLUTE_TIMEOUT) for event in fired):
            self.expiry_pending = True
            self.drop_state()
        return fired

    def drop_state(self) -> None:
        """The session ended: its state is never read again (every command answers the lifecycle's
        error; a retry gets its cached reply), so a tombstone keeps only identity and times."""
        self.variables = None
        self.bindings, self.objects, self.inspector, self.preferences = {}, {}, {}, {}
        self.server_bytes = self.client_bytes = 0
        self.fallback = None
        self._server_json = None

    def touch(self, now: float) -> None:
        """A successful session-scoped request (the lifecycle's USE event)."""
        before = self.lifecycle.last_active_at
        self.lifecycle.process_event(Event.USE, now)
        if self.lifecycle.last_active_at != before:
            self.activity_dirty = True

    def expires_at(self) -> float:
        return self.lifecycle.deadline()[0]

    def next_event(self, window_s: float) -> float:
        """The earliest time housekeeping has something to do for this session: its timeout, the end of
        its retention, or an attached connection's idle window ending. Never later than any of them."""
        lc = self.lifecycle
        if self.expiry_pending:
            at = -math.inf  # its durable write is still to be made (a failed one is retried)
        elif lc.state is State.ACTIVE:
            at = lc.deadline()[0]
        elif lc.state in (State.CLOSED, State.EXPIRED):
            at = lc.purge_at()
        else:
            at = -math.inf
        if self.attached:
            at = min(at, min(self.attached.values()) + window_s)
        return at

    def attached_count(self, now: float, window_s: float, requester: str) -> int:
        """Connections attached now, counting the requester (whose request is succeeding)."""
        others = sum(1 for peer, seen in self.attached.items() if peer != requester and seen + window_s > now)
        return others + 1

    # -- state document ----------------------------------------------------------------------------

    @property
    def state_loaded(self) -> bool:
        return self.variables is not None

    def state_document(
        self, inspector: dict[str, Any] | None = None, preferences: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        """The state document (schemas/state.json), optionally with replaced client parts."""
        assert self.variables is not None
        return {
            "workspace": {"variables": dict(self.bindings)},
            "objects": dict(self.objects),
            "inspector": self.inspector if inspector is None else inspector,
            "preferences": self.preferences if preferences is None else preferences,
        }

    def encoded_state(
        self, inspector: dict[str, Any] | None = None, preferences: dict[str, Any] | None = None
    ) -> tuple[bytes, int]:
        """`encode(state_document(inspector, preferences))` byte for byte, and the encoded size of its
        client parts: each part encoded once (a snapshot's large inspector was encoded twice)."""
        assert self.variables is not None
        client = [encode(self.inspector if inspector is None else inspector),
                  encode(self.preferences if preferences is None else preferences)]
        if self._server_json is None:
            self._server_json = b"".join((b'{"workspace":', encode({"variables": self.bindings}), b',"objects":',
                                          encode(self.objects)))
        document = b"".join((self._server_json, b',"inspector":', client[0], b',"preferences":', client[1], b"}"))
        return document, len(client[0]) + len(client[1])

    def start_empty(self) -> None:
        """The state of a new session."""
        self.variables, self.bindings, self.objects = {}, {}, {}
        self._server_json = None
        self.inspector, self.preferences = {}, {}
        self.server_bytes = 0
        self.client_bytes = client_parts_size({}, {})

    def load_state(self, document: dict[str, Any]) -> None:
        """Adopt a parsed state document (raises ValueError/KeyError/TypeError when malformed)."""
        variables, bindings, size = {}, {}, 0
        for name, b in document["workspace"]["variables"].items():
            variables[name] = Value.from_binding(b)  # canonical print strings only: b is its binding
            bindings[name] = {"class": b["class"], "print_string": b["print_string"]}
            size += binding_size(name, bindings[name])
        objects = document["objects"]
        inspector, preferences = document["inspector"], document["preferences"]
        if not all(isinstance(x, dict) for x in (objects, inspector, preferences)):
            raise ValueError("objects, inspector and preferences must be objects")
        kept: dict[str, Binding] = {}
        for key, entry in objects.items():
            Value.from_binding(entry)
            kept[str(key)] = {"class": entry["class"], "print_string": entry["print_string"]}
            size += binding_size(str(key), kept[str(key)])
        self.variables, self.bindings, self.objects = variables, bindings, kept
        self._server_json = None
        self.inspector = inspector
        self.preferences = preferences
        self.server_bytes = size
        self.client_bytes = client_parts_size(inspector, preferences)
        # Ids of this process carry this process's epoch: the restored ones (older epochs, or ids
        # issued after the restored revision and lost) are never issued again.
        self.next_object = 1

    def planned_bindings(self, assignments: dict[str, Value]) -> tuple[dict[str, Binding], int]:
        """The bindings of `assignments` and the server_bytes the workspace would have with them."""
        size = self.server_bytes
        planned: dict[str, Binding] = {}
        for name, value in assignments.items():
            binding = value.to_binding()
            planned[name] = binding
            old = self.bindings.get(name)
            if old is not None:
                size -= binding_size(name, old)
            size += binding_size(name, binding)
        return planned, size

    def bind(self, assignments: dict[str, Value], bindings: dict[str, Binding], server_bytes: int) -> None:
        """Apply what `planned_bindings` computed."""
        assert self.variables is not None
        self.variables.update(assignments)
        self.bindings.update(bindings)
        self._server_json = None
        self.server_bytes = server_bytes

    def peek_object_id(self) -> str:
        return f"{OBJECT_ID_PREFIX}{self.object_epoch}.{self.next_object}"

    def new_object_id(self) -> str:
        object_id = self.peek_object_id()
        self.next_object += 1
        return object_id

    def register_object(self, object_id: str, binding: Binding) -> None:
        self.objects[object_id] = binding
        self._server_json = None
        self.server_bytes += binding_size(object_id, binding)

    def set_client_parts(self, inspector: dict[str, Any] | None, preferences: dict[str, Any] | None,
                         client_bytes: int | None = None) -> None:
        """Replace the given parts; `client_bytes` is their encoded size when the caller knows it."""
        if inspector is not None:
            self.inspector = inspector
        if preferences is not None:
            self.preferences = preferences
        if client_bytes is None:
            client_bytes = client_parts_size(self.inspector, self.preferences)
        self.client_bytes = client_bytes

    def to_row(self) -> SessionRow:
        lc = self.lifecycle
        return SessionRow(
            self.session_id, self.client_id, self.token_digest, lc.created_at, lc.last_active_at,
            lc.state.value, lc.ended_at, self.head_revision,
        )


def client_parts_size(inspector: dict[str, Any], preferences: dict[str, Any]) -> int:
    return len(encode(inspector)) + len(encode(preferences))


def encode_state(document: dict[str, Any]) -> bytes:
    return encode(document)


class SessionRegistry:
    """The sessions the engine holds, by id, loaded from storage on first use."""

    def __init__(self, store: SessionStore, replies: ReplyCache, started_at: float, timeouts: Timeouts) -> None:
        self.store = store
        self.started_at = started_at
        self.timeouts = timeouts
        self.replies = replies
        self.live: dict[str, Session] = {}
        self.peers: dict[str, set[str]] = {}  # routing id -> ids of held sessions it is attached to
        # Housekeeping's index, so that tick() costs what is due, not the number of sessions held: a
        # heap of (time, sequence, session id), one live entry per session (Session.scheduled_at; an
        # entry whose time differs is stale and skipped), pushed only when a session's next event
        # comes earlier than its entry; later ones (activity moved a deadline) are re-pushed when
        # the early entry comes up. `touched`: sessions whose activity may await a flush.
        self._due: list[tuple[float, int, str]] = []
        self._sequence = itertools.count()
        self.touched: set[str] = set()

    def get(self, session_id: str, now: float) -> Session | None:
        session = self.live.get(session_id)
        if session is not None:
            return session
        row = self.store.load_session(session_id)
        if row is None:
            return None
        lifecycle = SessionLifecycle.restore(
            self.timeouts, state=State(row.status), created_at=row.created_at, last_active_at=row.last_active_at,
            ended_at=row.ended_at, started_at=self.started_at,
        )
        session = Session(
            session_id=row.session_id, client_id=row.client_id, token_digest=bytes(row.token_digest),
            lifecycle=lifecycle, revision=row.head_revision, head_revision=row.head_revision,
            object_epoch=self.store.epoch,
        )
        # Durable retry replies (snapshot/close) come back with the session, so a client that lost
        # a reply before a restart still gets the original one.
        for retry in self.store.load_retry_rows(session_id, now - self.replies.window_s):
            cached = CachedReply(Fingerprint.of_digest(retry.fingerprint), retry.reply, retry.stored_at, durable=True)
            self.replies.put(session_id, retry.request_id, cached)
        self.live[session_id] = session
        self.schedule(session)
        return session

    def add(self, session: Session) -> None:
        self.live[session.session_id] = session
        self.schedule(session)

    def schedule(self, session: Session) -> None:
        """Index the session's next event (after any change to its lifecycle, activity or peers)."""
        if session.activity_dirty:
            self.touched.add(session.session_id)
        at = session.next_event(self.timeouts.idle_timeout_s)
        if at < session.scheduled_at:
            session.scheduled_at = at
            heapq.heappush(self._due, (at, next(self._sequence), session.session_id))

    def due(self, now: float) -> list[Session]:
        """The held sessions whose next event is due at `now` (each once; schedule them again after)."""
        found: list[Session] = []
        while self._due and self._due[0][0] <= now:
            at, _, session_id = heapq.heappop(self._due)
            session = self.live.get(session_id)
            if session is not None and session.scheduled_at == at:
                session.scheduled_at = math.inf
                found.append(session)
        return found

    def take_touched(self) -> list[Session]:
        """The held sessions with activity not yet flushed (their flag is left to the caller)."""
        ids, self.touched = self.touched, set()
        return [s for s in (self.live.get(i) for i in ids) if s is not None and s.activity_dirty]

    def drop(self, session_id: str) -> None:
        session = self.live.pop(session_id, None)
        if session is not None:
            for peer in session.attached:
                self._unlink(peer, session_id)

    def _unlink(self, peer: str, session_id: str) -> None:
        sessions = self.peers.get(peer)
        if sessions is not None:
            sessions.discard(session_id)
            if not sessions:
                del self.peers[peer]

    def note_peer(self, session: Session, peer: str, now: float) -> bool:
        """Record a successful request from `peer`; True when the peer was not attached before."""
        new = peer not in session.attached
        session.attached[peer] = now
        if new:
            self.peers.setdefault(peer, set()).add(session.session_id)
        return new

    def detach_idle(self, session: Session, now: float, window_s: float) -> list[str]:
        """Detach the peers that made no request on `session` for `window_s`; returns them."""
        idle = [peer for peer, seen in session.attached.items() if seen + window_s <= now]
        for peer in idle:
            del session.attached[peer]
            self._unlink(peer, session.session_id)
        return idle

    def peer_gone(self, peer: str) -> list[str]:
        """A connection closed: detach its routing id everywhere. Returns the sessions it left."""
        ids = self.peers.pop(peer, set())
        for sid in ids:
            session = self.live.get(sid)
            if session is not None:
                session.attached.pop(peer, None)
        return sorted(ids)

    def ensure_state(self, session: Session) -> None:
        """Restore the session's state from the newest intact revision (once)."""
        if session.state_loaded:
            return
        skipped: list[tuple[int, str]] = []
        for stored in self.store.load_revisions(session.session_id):
            if isinstance(stored, tuple):
                skipped.append(stored)
                continue
            reason = _revision_problem(stored, session)
            if reason is not None:
                skipped.append((stored.revision, reason))
                continue
            session.revision = stored.revision
            if skipped:
                # The machine-readable word for the newest skipped revision (spec 7.4).
                word = "checksum" if skipped[0][1] == "checksum" else "unreadable"
                session.fallback = Fallback(skipped[0][0], stored.revision, word)
            return
        detail = "; ".join(f"revision {n}: {why}" for n, why in skipped) or "no revision stored"
        raise StateUnavailable(f"no intact revision of the session is kept ({detail})")


def _revision_problem(stored: StoredRevision, session: Session) -> str | None:
    """Why a stored revision cannot be used (None when it is intact and loaded into `session`)."""
    if not stored.intact:
        return "checksum"
    try:
        document = json.loads(stored.state.decode("utf-8"))
        session.load_state(document)
    except (ValueError, KeyError, TypeError, AttributeError, UnicodeDecodeError) as exc:
        session.variables = None
        return f"unreadable ({type(exc).__name__})"
    return None
