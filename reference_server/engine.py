"""The reference server's protocol engine, sans I/O: request body frames in, reply bytes out.

Theory of operation:
1. `Engine.handle(body_frames, peer)` runs the processing order of docs/architecture.md (spec
   ENV/TRN): frame checks (codec), version, envelope, command, parameters (MessageValidator), then
   for session-scoped commands: unknown id, token, retry cache, closed, expired; then the command.
   The first failing step answers. Every reply goes through one builder, so every error echoes `id`
   and `command` by the same rules.
2. The engine owns no sockets, threads, signals or clocks. Time comes from the injected `clock`
   (epoch seconds), ids and tokens from the injected `random_source` (`secrets.token_urlsafe` in
   production), durability from the injected `SessionStore`. Tests drive it with a fake clock.
3. Only what must precede the reply happens per request: create, snapshot and close commit before
   their reply; activity, expiry marks and purges are batched in `tick()`, which the transport calls
   periodically. A session the engine holds is never re-read from storage.
4. Lifecycle transitions are looked up in `stui_protocol.lifecycle`, never decided here.

What it must never do: log, store or echo a token in anything but the create reply; execute a
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

from reference_server.config import ServerConfig
from reference_server.evaluator import EvaluationError, Value, evaluate
from reference_server.reply_cache import CachedReply, ReplyCache, fingerprint
from reference_server.sessions import (
    Session,
    SessionRegistry,
    StateUnavailable,
    empty_state,
    encode_state,
    token_digest,
)
from stui_protocol.codec import FrameError, decode_body, encode, rfc3339
from stui_protocol.lifecycle import Event, State, TransitionError
from stui_protocol.storage_errors import StoreFailure  # noqa: F401  (placeholder, replaced below)
from stui_protocol.validation import MessageValidator, validator
from reference_server.storage import RetryRow, SessionRow, SessionStore, StoreError

log = logging.getLogger("stui.reference_server")
request_log = logging.getLogger("stui.reference_server.requests")

Clock = Callable[[], float]
RandomSource = Callable[[int], str]

SESSION_ID_BYTES = 16  # 128 bits
TOKEN_BYTES = 32  # 256 bits
CAPABILITIES = ("evaluate", "inspect", "retry.durable")
# Replies stored durably with their change (capability retry.durable).
DURABLE_REPLY_COMMANDS = frozenset({"session.snapshot", "session.close"})
PROTOCOL_VERSIONS = ("1.0",)
