"""The protocol's facts as Python symbols, read once from `schemas/`, their only home.

Every fact the engine, the config, the model and the cases need is stated once in the schemas and
exported here:

- `PROTOCOL_VERSION`: common.json `$defs/Version`;
- `ErrorCode`: the `code` constants of error.json's variants (the error registry, spec ERR);
- `InvalidRequestReason`: the `reason` values of error.json `$defs/InvalidRequestDetails`;
- `Capability` and `CAPABILITY_DESCRIPTIONS`: hello.json's `x-stui-capabilities`;
- `Limit`, `LIMITS` (minimum, required, description), `LIMIT_MINIMUMS`, `REQUIRED_LIMITS`: hello.json's
  `limits` schema (spec/11-limits.md's table is checked against it by a test);
- `Command`, `COMMANDS`, `SESSION_SCOPED_COMMANDS`, `DURABLE_RETRY_COMMANDS`, `RETRY_CACHED_COMMANDS`:
  each command file's `x-stui-command`.

Why enums built from the schema (the StrEnum functional API) rather than written out here: a written
list would be a second home that can drift from the wire. Built from the schema, a code or limit the
schema drops disappears here too, and code that names it fails loudly at attribute access instead of
silently disagreeing with what the validator accepts. Members are `str`s, so they compare equal to and
encode as their wire values. Member names: error codes keep their wire spelling (`ErrorCode.SessionClosed`);
the other enums upper-case the wire value with `.` as `_` (`Capability.RETRY_DURABLE`,
`Limit.MAX_MESSAGE_BYTES`, `Command.SESSION_CREATE`, `InvalidRequestReason.ID_REUSED`).

This module must never state a fact itself, and never do I/O beyond the registry's one read of
`schemas/`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from types import MappingProxyType
from typing import Any

from stui_protocol_kit.protocol.schemas import CommandInfo, SchemaRegistry, registry


def _member_name(value: str) -> str:
    return value.upper().replace(".", "_")


def _reasons(details: dict[str, Any]) -> list[str]:
    """The `reason` values InvalidRequestDetails allows, in schema order (const or enum per branch)."""
    out: list[str] = []
    for branch in details["oneOf"]:
        reason = branch["properties"]["reason"]
        out.extend([reason["const"]] if "const" in reason else reason["enum"])
    return out


@dataclass(frozen=True)
class LimitInfo:
    """One limit of hello's `limits`: the smallest value a server may announce (LIM-1), whether it
    must be announced, and what it means."""

    name: str
    minimum: int
    required: bool
    description: str


def _load(reg: SchemaRegistry) -> dict[str, Any]:
    common = reg.document("common.json")["$defs"]
    hello = reg.document("commands/hello.json")["$defs"]["Result"]["properties"]
    limits_schema = hello["limits"]
    required = set(limits_schema["required"])
    return {
        "version": common["Version"]["const"],
        "codes": list(reg.error_codes),
        "reasons": _reasons(reg.document("error.json")["$defs"]["InvalidRequestDetails"]),
        "capabilities": dict(hello["capabilities"]["x-stui-capabilities"]),
        "limits": {
            name: LimitInfo(name, int(schema["minimum"]), name in required, schema.get("description", ""))
            for name, schema in limits_schema["properties"].items()
        },
        "commands": dict(reg.commands),
    }


_facts = _load(registry())

PROTOCOL_VERSION: str = _facts["version"]

ErrorCode = StrEnum("ErrorCode", [(code, code) for code in _facts["codes"]])  # type: ignore[misc]
ErrorCode.__doc__ = "The v1 error codes (error.json's variants), members named as on the wire."

InvalidRequestReason = StrEnum(  # type: ignore[misc]
    "InvalidRequestReason", [(_member_name(r), r) for r in _facts["reasons"]])
InvalidRequestReason.__doc__ = "`error.details.reason` of an InvalidRequest (error.json InvalidRequestDetails)."

Capability = StrEnum(  # type: ignore[misc]
    "Capability", [(_member_name(c), c) for c in _facts["capabilities"]])
Capability.__doc__ = "The capabilities v1 defines (hello.json x-stui-capabilities)."
CAPABILITY_DESCRIPTIONS: Mapping[str, str] = MappingProxyType(dict(_facts["capabilities"]))

Limit = StrEnum("Limit", [(_member_name(n), n) for n in _facts["limits"]])  # type: ignore[misc]
Limit.__doc__ = "The limits hello may announce (hello.json Result.limits)."
LIMITS: Mapping[str, LimitInfo] = MappingProxyType(dict(_facts["limits"]))
LIMIT_MINIMUMS: Mapping[str, int] = MappingProxyType({n: info.minimum for n, info in LIMITS.items()})
REQUIRED_LIMITS: frozenset[str] = frozenset(n for n, info in LIMITS.items() if info.required)

Command = StrEnum("Command", [(_member_name(c), c) for c in _facts["commands"]])  # type: ignore[misc]
Command.__doc__ = "The v1 commands (schemas/commands/)."
COMMANDS: Mapping[str, CommandInfo] = MappingProxyType(dict(_facts["commands"]))
SESSION_SCOPED_COMMANDS: frozenset[str] = frozenset(c for c, info in COMMANDS.items() if info.session_scoped)
DURABLE_RETRY_COMMANDS: frozenset[str] = frozenset(c for c, info in COMMANDS.items() if info.durable_retry)
RETRY_CACHED_COMMANDS: frozenset[str] = frozenset(c for c, info in COMMANDS.items() if info.retry_cached)

del _facts

__all__ = [
    "CAPABILITY_DESCRIPTIONS", "COMMANDS", "DURABLE_RETRY_COMMANDS", "LIMITS", "LIMIT_MINIMUMS", "PROTOCOL_VERSION",
    "REQUIRED_LIMITS", "RETRY_CACHED_COMMANDS", "SESSION_SCOPED_COMMANDS", "Capability", "Command", "ErrorCode",
    "InvalidRequestReason", "Limit", "LimitInfo",
]
