"""The reference server's settings: protocol limits announced by hello, and engine housekeeping knobs.

One frozen dataclass, built by the CLI or by tests. It holds numbers only and must never read the
environment, files or clocks: whoever builds the server decides, the engine just reads.
"""

from __future__ import annotations

from dataclasses import dataclass

from stui_protocol.codec import DEFAULT_MAX_MESSAGE_BYTES, DEFAULT_MAX_NESTING_DEPTH

SERVER_NAME = "stui-reference-server"
SERVER_VERSION = "0.1.0"


@dataclass(frozen=True)
class ServerConfig:
    """Limits and timings. Every `*_s` value is whole seconds (hello announces them as integers)."""

    max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES
    max_nesting_depth: int = DEFAULT_MAX_NESTING_DEPTH
    idle_timeout_s: int = 1800
    absolute_timeout_s: int = 86_400
    max_sessions_per_client: int = 16
    retry_window_s: int = 300
    tombstone_retention_s: int = 86_400
    max_revisions_kept: int = 5
    # How often the transport asks the engine to expire, purge and flush activity to storage.
    cleanup_interval_s: float = 2.0
    # Validate every reply against schemas/ and turn an invalid one into InternalError (tests).
    strict: bool = False
    server_name: str = SERVER_NAME
    server_version: str = SERVER_VERSION

    def __post_init__(self) -> None:
        for name in (
            "max_message_bytes", "max_nesting_depth", "idle_timeout_s", "absolute_timeout_s",
            "max_sessions_per_client", "max_revisions_kept",
        ):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        for name in ("retry_window_s", "tombstone_retention_s"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise ValueError(f"{name} must be a non-negative integer, got {value!r}")
        if self.cleanup_interval_s <= 0:
            raise ValueError("cleanup_interval_s must be positive")

    def limits(self) -> dict[str, int]:
        """hello's `limits` object."""
        return {
            "max_message_bytes": self.max_message_bytes,
            "max_nesting_depth": self.max_nesting_depth,
            "idle_timeout_s": self.idle_timeout_s,
            "absolute_timeout_s": self.absolute_timeout_s,
            "max_sessions_per_client": self.max_sessions_per_client,
            "retry_window_s": self.retry_window_s,
            "tombstone_retention_s": self.tombstone_retention_s,
            "max_revisions_kept": self.max_revisions_kept,
        }
