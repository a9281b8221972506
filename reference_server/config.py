"""The reference server's settings: protocol limits announced by hello, and engine housekeeping knobs.

One frozen dataclass, built by the CLI or by tests. It holds numbers only and must never read the
environment, files or clocks: whoever builds the server decides, the engine just reads.
"""

from __future__ import annotations

from dataclasses import dataclass

from stui_protocol_kit.protocol.codec import DEFAULT_MAX_MESSAGE_BYTES, DEFAULT_MAX_NESTING_DEPTH
from stui_protocol_kit.protocol.facts import LIMIT_MINIMUMS
from stui_protocol_kit.protocol.lifecycle import Timeouts

SERVER_NAME = "stui-reference-server"
SERVER_VERSION = "0.1.0"
# The deepest nesting this server can decode, check, store and send back (the JSON parser and
# encoder recurse per level, within Python's recursion limit); announcing more would break LIM-2.
MAX_NESTING_DEPTH_CAP = 512


@dataclass(frozen=True)
class ServerConfig:
    """Limits and timings. Every `*_s` value is whole seconds (hello announces them as integers).

    A field named after a limit of hello.json's `limits` schema (stui_protocol_kit.protocol.facts.LIMITS)
    is that limit: hello announces it, and it must be at least the schema's minimum (LIM-1)."""

    max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES
    max_nesting_depth: int = DEFAULT_MAX_NESTING_DEPTH
    idle_timeout_s: int = 1800
    absolute_timeout_s: int = 86_400
    max_sessions_per_client: int = 16
    retry_window_s: int = 300
    tombstone_retention_s: int = 86_400
    max_revisions_kept: int = 5
    # The retry cache's bound (RTY-12): thousands of large evaluate replies, never gigabytes.
    retry_cache_bytes: int = 64 * 1024 * 1024
    # Active sessions in all (LIM-6): each may hold up to max_message_bytes of state in memory, and
    # client_id is not authenticated, so max_sessions_per_client alone bounds nothing.
    max_sessions: int = 1000
    # How often the transport asks the engine to expire, purge and flush activity to storage.
    cleanup_interval_s: float = 2.0
    # Validate every reply against schemas/ and turn an invalid one into InternalError (tests).
    strict: bool = False
    server_name: str = SERVER_NAME
    server_version: str = SERVER_VERSION

    def __post_init__(self) -> None:
        """Refuses what hello could not announce: a value below the spec's minimum (LIM-1)."""
        for name, minimum in LIMIT_MINIMUMS.items():
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool):
                raise ValueError(f"{name} must be an integer, got {value!r}")
            if value < minimum:
                raise ValueError(f"{name} must be at least {minimum} (spec 11, LIM-1), got {value}")
        if self.max_nesting_depth > MAX_NESTING_DEPTH_CAP:
            raise ValueError(
                f"max_nesting_depth must be at most {MAX_NESTING_DEPTH_CAP} (the deepest this server "
                f"decodes), got {self.max_nesting_depth}"
            )
        if not self.cleanup_interval_s > 0:
            raise ValueError(f"cleanup_interval_s must be positive, got {self.cleanup_interval_s!r}")

    def limits(self) -> dict[str, int]:
        """hello's `limits` object: every limit the schema defines, as this server enforces it."""
        return {name: getattr(self, name) for name in LIMIT_MINIMUMS}

    @property
    def timeouts(self) -> Timeouts:
        """The lifecycle's durations (stui_protocol_kit.protocol.lifecycle)."""
        return Timeouts(self.idle_timeout_s, self.absolute_timeout_s, self.tombstone_retention_s)
