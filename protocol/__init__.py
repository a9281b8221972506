"""The STUI protocol v1 core: schema registry, facts, validation, codec, framing, lifecycle, client.

The protocol's facts (error codes, reasons, capabilities, the version, limits, command metadata) are
importable from here as well as from `stui_protocol_kit.protocol.facts`; they are loaded on first
access, so importing a submodule (the codec, the framing) never pays for reading the schemas.
"""

from __future__ import annotations

from typing import Any

_FACTS = frozenset({
    "CAPABILITY_DESCRIPTIONS", "COMMANDS", "DURABLE_RETRY_COMMANDS", "LIMITS", "LIMIT_MINIMUMS", "PROTOCOL_VERSION",
    "REQUIRED_LIMITS", "SESSION_SCOPED_COMMANDS", "Capability", "Command", "ErrorCode", "InvalidRequestReason",
    "Limit", "LimitInfo",
})


def __getattr__(name: str) -> Any:
    if name in _FACTS:
        from stui_protocol_kit.protocol import facts

        return getattr(facts, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
