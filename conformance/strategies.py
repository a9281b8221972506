"""Hypothesis strategies for v1 requests: schema-valid ones, and schema-violating ones with their verdict.

Valid requests are generated from the registry's bundled request schemas (hypothesis-jsonschema cannot
follow cross-file `$ref`s, the bundles have none) and then re-validated with `MessageValidator`,
because hypothesis-jsonschema silently generates invalid data for some keywords. Where a case needs a
live session, the real `session_id` and `token` replace the generated ones.

Invalid requests are made by mutating a valid one (drop a required member, add an unknown member,
change a member's type, an integer written as `1.0`, `null` for an optional member, a wrong version, a
near-miss command name...). Each mutation carries the error code the spec demands for it (processing
order of docs/architecture.md, steps P2-P5) and is kept only when `MessageValidator` agrees that the
message is invalid with exactly that code. The check runs on every example hypothesis produces,
shrunk ones included, so a shrunk negative example is re-checked to still violate its schema.

This module must never restate a field list (member names come from the schemas) and never talk to a
target: it only builds messages.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from typing import Any

from hypothesis import strategies as st
from hypothesis_jsonschema import from_schema

from stui_protocol_kit.protocol.problems import quote
from stui_protocol_kit.protocol.schemas import SchemaRegistry, registry
from stui_protocol_kit.protocol.validation import MessageValidator, validator

Json = Any
Message = dict[str, Any]

# A character class repeated one or more times, anchored: `^[A-Za-z0-9_-]+$`.
_REPEATED_CLASS = re.compile(r"^\^(\[[^\]]+\])\+\$$")


def generation_schema(schema: Json) -> Json:
    """An equivalent schema that hypothesis-jsonschema can generate from efficiently.

    hypothesis-jsonschema turns `pattern` into `from_regex(...)` and enforces `minLength` by filtering,
    which never succeeds for e.g. a 43-character token `^[A-Za-z0-9_-]+$` (every example is
    rejected). Writing the length into the pattern (`^[A-Za-z0-9_-]{43,128}$`) accepts exactly the same
    strings and generates them directly."""
    if isinstance(schema, list):
        return [generation_schema(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    out = {key: generation_schema(value) for key, value in schema.items()}
    pattern = out.get("pattern")
    if isinstance(pattern, str) and ("minLength" in out or "maxLength" in out):
        match = _REPEATED_CLASS.match(pattern)
        if match:
            low = max(1, int(out.get("minLength", 1)))
            high = out.get("maxLength")
            out["pattern"] = f"^{match.group(1)}{{{low},{'' if high is None else int(high)}}}$"
    return out


@cache
def _parameters_strategy(command: str) -> st.SearchStrategy[dict[str, Any]]:
    return from_schema(generation_schema(registry().parameters_schema(command)))


@cache
def _request_id_strategy() -> st.SearchStrategy[str]:
    schema = registry().document("common.json")["$defs"]["RequestId"]
    return from_schema(generation_schema({k: v for k, v in schema.items() if k != "description"}))


def request_ids() -> st.SearchStrategy[str]:
    """Request ids as the schema allows them: any characters, 1 to 128 of them."""
    return _request_id_strategy()


def session_scoped(command: str, schemas: SchemaRegistry | None = None) -> bool:
    return (schemas or registry()).commands[command].session_scoped


def valid_requests(
    command: str,
    session: tuple[str, str] | None = None,
    ids: st.SearchStrategy[str] | None = None,
    check: MessageValidator | None = None,
) -> st.SearchStrategy[Message]:
    """Schema-valid requests for `command`. With `session` = (session_id, token), session-scoped
    requests carry those instead of the generated ones. Every message is re-validated."""
    check = check or validator()
    scoped = session_scoped(command)

    def build(pair: tuple[str, dict[str, Any]]) -> Message:
        request_id, parameters = pair
        parameters = dict(parameters)
        if scoped and session is not None:
            parameters["session_id"], parameters["token"] = session
        return {"id": request_id, "version": check.version, "command": command, "parameters": parameters}

    return (
        st.tuples(ids or request_ids(), _parameters_strategy(command))
        .map(build)
        .filter(lambda m: check.check_request(m).ok)
    )


# -- mutations --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class InvalidMessage:
    """A schema-violating request and what the spec demands for it.

    `expected_code` is InvalidRequest, UnknownCommand or UnsupportedVersion; `expected_reason` is the
    InvalidRequest reason (`schema`) or None; `echo_id`/`echo_command` are what the error reply must
    echo (ENV-5, ENV-6); `requirement` is the spec rule that demands the code."""

    message: Json
    mutation: str
    expected_code: str
    expected_reason: str | None
    echo_id: str | None
    echo_command: str | None
    requirement: str


# Requirement IDs behind each expected code (spec/02-envelope.md, spec/03-versioning.md).
REQ_ENVELOPE = "ENV-1"
REQ_PARAMETERS = "ENV-2"
REQ_VERSION = "VER-1"
REQ_VERSION_TYPE = "VER-3"
REQ_UNKNOWN_COMMAND = "VER-6"

# Values of a different JSON type than the one a schema asks for: one per type, so that whatever the
# original member was, at least one replacement has another type.
_OTHER_TYPES: tuple[Json, ...] = (7, "seven", True, [1], {"x": 1}, 2.5)
_WRONG_VERSIONS = ("2.0", "1.1", "0.9", "1", "", "v1.0", "1.0.0", "10.0")


def _json_type(value: Json) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if value is None:
        return "null"
    return {str: "string", list: "array", dict: "object"}[type(value)]


def _near_miss_names(command: str) -> list[str]:
    """Lower-case dotted names close to a real command (valid CommandName syntax, so UnknownCommand)."""
    names = {
        command + "s", command[:-1], command.replace(".", "_"), command + ".v2", "x" + command,
        command.replace("session.", "sessions.") if command.startswith("session.") else "session." + command,
    }
    if len(command) > 3:
        names.add(command[1:] + command[0])
    return sorted(names)


@dataclass(frozen=True)
class _Mutation:
    name: str
    code: str
    reason: str | None
    requirement: str
    apply: Callable[[Message], Json]


def _mutations(message: Message, schemas: SchemaRegistry) -> list[_Mutation]:
    """Every mutation that applies to `message`, with the error the spec demands for it."""
    command = message["command"]
    params_schema = schemas.parameters_schema(command)
    if "$ref" in params_schema:  # a bundled component is a root `$ref` into its own `$defs`
        params_schema = params_schema["$defs"][params_schema["$ref"].rsplit("/", 1)[1]]
    required_params = list(params_schema.get("required", []))
    # inspect's `oneOf` requires one of two optional members; dropping that one is a schema violation too
    for branch in params_schema.get("oneOf", []):
        required_params += [name for name in branch.get("required", []) if name in message["parameters"]]
    optional_present = [p for p in message["parameters"] if p not in required_params]
    envelope_required = list(schemas.document("request.json")["required"])
    out: list[_Mutation] = []

    def edit(fn: Callable[[Message], None]) -> Callable[[Message], Json]:
        def apply(original: Message) -> Json:
            copied = copy.deepcopy(original)
            fn(copied)
            return copied
        return apply

    for member in envelope_required:
        # A missing version is a schema violation, not UnsupportedVersion (VER-3).
        req = REQ_VERSION_TYPE if member == "version" else REQ_ENVELOPE
        out.append(_Mutation(f"drop envelope member {quote(member)}", "InvalidRequest", "schema", req,
                             edit(lambda m, k=member: m.pop(k))))
        for other in _OTHER_TYPES:
            if member == "version" and isinstance(other, str):
                continue  # any other string is UnsupportedVersion, listed below
            if _json_type(other) == _json_type(message[member]):
                continue
            out.append(_Mutation(f"envelope member {quote(member)} as {_json_type(other)}", "InvalidRequest", "schema",
                                 req, edit(lambda m, k=member, v=other: m.__setitem__(k, v))))
    out.append(_Mutation("version as the number 1.0", "InvalidRequest", "schema", REQ_VERSION_TYPE,
                         edit(lambda m: m.__setitem__("version", 1.0))))
    for version in _WRONG_VERSIONS:
        out.append(_Mutation(f"version {quote(version)}", "UnsupportedVersion", None, REQ_VERSION,
                             edit(lambda m, v=version: m.__setitem__("version", v))))
    # UnsupportedVersion is checked before the rest of the envelope (VER-1): {"version": "2.0"} alone.
    out.append(_Mutation('version "2.0" with every other member missing', "UnsupportedVersion", None, REQ_VERSION,
                         lambda m: {"version": "2.0"}))
    out.append(_Mutation("unknown envelope member", "InvalidRequest", "schema", REQ_ENVELOPE,
                         edit(lambda m: m.__setitem__("extra_member", 1))))
    out.append(_Mutation("empty id", "InvalidRequest", "schema", REQ_ENVELOPE, edit(lambda m: m.__setitem__("id", ""))))
    out.append(_Mutation("id of 129 characters", "InvalidRequest", "schema", REQ_ENVELOPE,
                         edit(lambda m: m.__setitem__("id", "i" * 129))))
    out.append(_Mutation("upper-case command name", "InvalidRequest", "schema", REQ_ENVELOPE,
                         edit(lambda m: m.__setitem__("command", m["command"].upper()))))
    for name in _near_miss_names(command):
        if name in schemas.commands:
            continue
        out.append(_Mutation(f"near-miss command {quote(name)}", "UnknownCommand", None, REQ_UNKNOWN_COMMAND,
                             edit(lambda m, n=name: m.__setitem__("command", n))))
    for member in required_params:
        out.append(_Mutation(f"drop parameter {quote(member)}", "InvalidRequest", "schema", REQ_PARAMETERS,
                             edit(lambda m, k=member: m["parameters"].pop(k))))
    def set_parameter(member: str, value: Json) -> Callable[[Message], Json]:
        return edit(lambda m: m["parameters"].__setitem__(member, value))

    for member, value in message["parameters"].items():
        for other in _OTHER_TYPES:
            if _json_type(other) != _json_type(value):
                out.append(_Mutation(f"parameter {quote(member)} as {_json_type(other)}", "InvalidRequest", "schema",
                                     REQ_PARAMETERS, set_parameter(member, other)))
        if _json_type(value) == "integer":
            # 3 written as 3.0: JSON Schema calls it an integer, the spec does not (CMP).
            out.append(_Mutation(f"parameter {quote(member)} as {quote(float(value))}", "InvalidRequest", "schema",
                                 REQ_PARAMETERS, set_parameter(member, float(value))))
    for member in optional_present:
        # Optional members are omitted, never null (spec CMP).
        out.append(_Mutation(f"null for optional parameter {quote(member)}", "InvalidRequest", "schema", REQ_PARAMETERS,
                             edit(lambda m, k=member: m["parameters"].__setitem__(k, None))))
    out.append(_Mutation("unknown parameter", "InvalidRequest", "schema", REQ_PARAMETERS,
                         edit(lambda m: m["parameters"].__setitem__("unknown_parameter", True))))
    if isinstance(message["parameters"].get("state"), dict):
        out.append(_Mutation("unknown member in state", "InvalidRequest", "schema", REQ_PARAMETERS,
                             edit(lambda m: m["parameters"]["state"].__setitem__("workspace", {}))))
    return out


def _kind(mutation: _Mutation) -> str:
    """The family of a mutation (its name without the member or value), so each family is drawn
    equally often whatever the number of members it applies to."""
    return re.sub(r"([\"'].*|\d.*|as .*)$", "", mutation.name).strip()


def mutate(message: Message, index: int, check: MessageValidator | None = None, kind: int = 0) -> InvalidMessage | None:
    """The `index`-th mutation (modulo their number) of the `kind`-th family of mutations of a valid
    request, or None when the validator does not give it exactly the expected code (such a message
    is not what we claim, so never used)."""
    check = check or validator()
    options = _mutations(message, check.registry)
    families = sorted({_kind(m) for m in options})
    family = families[kind % len(families)]
    options = [m for m in options if _kind(m) == family]
    chosen = options[index % len(options)]
    mutated = chosen.apply(message)
    verdict = check.check_request(mutated, has_float=True)
    if verdict.error_code != chosen.code:
        return None
    if chosen.reason is not None and verdict.reason != chosen.reason:
        return None
    return InvalidMessage(
        message=mutated, mutation=chosen.name, expected_code=chosen.code, expected_reason=chosen.reason,
        echo_id=check.echo_id(mutated), echo_command=check.echo_command(mutated), requirement=chosen.requirement,
    )


def every_mutation(message: Message, check: MessageValidator | None = None) -> list[InvalidMessage]:
    """Every mutation of `message` that really gets its demanded code: a deterministic sweep, so each
    kind is tried on every run whatever the seed (the strategy below samples them)."""
    check = check or validator()
    options = _mutations(message, check.registry)
    families = sorted({_kind(m) for m in options})
    found: list[InvalidMessage] = []
    for kind, family in enumerate(families):
        members = [m for m in options if _kind(m) == family]
        for index in range(len(members)):
            mutated = mutate(message, index, check, kind=kind)
            if mutated is not None:
                found.append(mutated)
    return found


def invalid_requests(
    command: str, session: tuple[str, str] | None = None, check: MessageValidator | None = None,
) -> st.SearchStrategy[InvalidMessage]:
    """Schema-violating requests derived from valid `command` requests, each with its demanded error.
    The filter re-runs on every example, including each shrink step."""
    check = check or validator()

    def mutations_of(message: Message) -> st.SearchStrategy[InvalidMessage | None]:
        options = _mutations(message, check.registry)
        families = sorted({_kind(m) for m in options})
        # family first, then a member of it: each family equally likely, whatever its size
        return st.tuples(st.sampled_from(range(len(families))), st.sampled_from(range(len(options)))).map(
            lambda pair: mutate(message, pair[1], check, kind=pair[0]))

    return (
        valid_requests(command, session, check=check)
        .flatmap(mutations_of)
        .filter(lambda found: found is not None)
    )  # type: ignore[return-value]


def commands(schemas: SchemaRegistry | None = None, capabilities: frozenset[str] | None = None) -> list[str]:
    """The commands a target serves: mandatory ones, plus optional ones whose capability it announces."""
    reg = schemas or registry()
    return [
        name for name, info in reg.commands.items()
        if info.capability is None or capabilities is None or info.capability in capabilities
    ]
