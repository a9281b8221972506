"""The reference server's settings: protocol limits announced by hello, and engine housekeeping knobs.

One frozen dataclass, built by the CLI or by tests. It holds numbers only and must never read the
environment, files or clocks: whoever builds the server decides, the engine just reads.
"""

from __future__ import annotations

from dataclasses import dataclass

from stui_protocol_kit.protocol.codec import DEFAULT_MAX_MESSAGE_BYTES, DEFAULT_MAX_NESTING_DEPTH

SERVER_NAME = "stui-reference-server"
SERVER_VERSION = "0.1.0"

# The smallest value spec/11-limits.md lets a server announce (LIM-1), by setting.
MINIMUMS: dict[str, int] = {
    "max_message_bytes": 65536,
    "max_nesting_depth": 32,
    "idle_timeout_s": 1,
    "absolute_timeout_s": 1,
    "tombstone_retention_s": 1,
    "retry_window_s": 1,
    "max_sessions_per_client": 1,
    "max_revisions_kept": 2,
}
# The deepest nesting this server can decode, check, store and send back (the JSON parser and
# encoder recurse per level, within Python's recursion limit); announcing more would break LIM-2.
MAX_NESTING_DEPTH_CAP = 512


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
        """Refuses what hello could not announce: a value below the spec's minimum (LIM-1)."""
        for name, minimum in MINIMUMS.items():
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
