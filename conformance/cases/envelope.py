"""Cases for spec 2, the envelope (ENV): request schema, echo rules, replies, timestamps."""

from __future__ import annotations

import re
from typing import Any

from stui_protocol_kit.conformance.case import CaseFailed, case
from stui_protocol_kit.conformance.cases._helpers import ok
from stui_protocol_kit.conformance.context import CaseContext
from stui_protocol_kit.conformance.verifiers import expect_echo, expect_error, expect_success, expect_true

_STRICT_TS = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?Z$")
_MILLIS_TS = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")


def _msg(**over: Any) -> dict[str, Any]:
    message: dict[str, Any] = {"id": "env-1", "version": "1.0", "command": "hello", "parameters": {}}
    for key, value in over.items():
        if value is _DROP:
            message.pop(key)
        else:
            message[key] = value
    return message


_DROP = object()


@case("envelope.echo-id-and-command", "a success reply echoes id and command unchanged",
      sends="hello with a 128-character id and with a non-ASCII id", requirements=["ENV-3"])
def echo(ctx: CaseContext) -> None:
    for rid in ("x" * 128, "réq-ü-1", "1"):
        exchange = ctx.call("hello", {}, request_id=rid)
        expect_success(exchange, "hello", "ENV-3")
        expect_echo(exchange, rid, "hello", "ENV-3")


@case("envelope.missing-member", "a request missing id, version, command or parameters is a schema error",
      sends="hello with each envelope member left out in turn", requirements=["ENV-1", "VER-3"])
def missing_member(ctx: CaseContext) -> None:
    for member in ("id", "version", "command", "parameters"):
        expect_error(ctx.send(_msg(**{member: _DROP})), "InvalidRequest", "ENV-1", reason="schema")


@case("envelope.unknown-member", "an unknown envelope member is a schema error",
      sends='hello with an extra top-level member "extra": 1', requirements=["ENV-1", "CMP-1"])
def unknown_member(ctx: CaseContext) -> None:
    error = expect_error(ctx.send(_msg(extra=1)), "InvalidRequest", "ENV-1", reason="schema")
    paths = [v.get("path") for v in error["details"].get("violations", [])]
    if not paths:
        ctx.note("no violations listed (ENV-1 SHOULD)")


@case("envelope.wrong-types", "envelope members of the wrong type or format are schema errors",
      sends="id 42, empty id, 129-char id, parameters [], command 7", requirements=["ENV-1", "ENV-5", "ENV-6"])
def wrong_types(ctx: CaseContext) -> None:
    for message in (_msg(id=42), _msg(id=""), _msg(id="x" * 129), _msg(parameters=[]), _msg(command=7)):
        expect_error(ctx.send(message), "InvalidRequest", "ENV-1", reason="schema")


@case("envelope.error-echo", "an error reply echoes a readable id and command",
      sends="unknown command 'no.such.command' with id 'echo-me'", requirements=["ENV-5", "ENV-6", "VER-6"])
def error_echo(ctx: CaseContext) -> None:
    exchange = ctx.send(_msg(id="echo-me", command="no.such.command"))
    expect_error(exchange, "UnknownCommand", "VER-6")
    expect_echo(exchange, "echo-me", "no.such.command", "ENV-5")


@case("envelope.error-echo-null", "an error reply carries null for an unreadable id or command",
      sends="id 42 with command 'Not A Name'; id of 129 chars; command of 65 chars",
      requirements=["ENV-5", "ENV-6"])
def error_echo_null(ctx: CaseContext) -> None:
    expect_echo(ctx.send(_msg(id=42, command="Not A Name")), None, None, "ENV-5")
    expect_echo(ctx.send(_msg(id="y" * 129)), None, "hello", "ENV-5")
    expect_echo(ctx.send(_msg(command="a" * 65)), "env-1", None, "ENV-6")


@case("envelope.parameter-violations", "parameters are validated against the command's schema with paths",
      sends="session.snapshot with expected_revision 'one' and an unknown parameter",
      requirements=["ENV-2", "ERR-6"])
def parameter_violations(ctx: CaseContext) -> None:
    s = ctx.new_session()
    error = expect_error(ctx.call("session.snapshot", s.params(expected_revision="one")), "InvalidRequest",
                         "ENV-2", reason="schema")
    paths = [v.get("path", "") for v in error["details"].get("violations", [])]
    if "$.parameters.expected_revision" not in paths:
        raise CaseFailed("a violation at $.parameters.expected_revision", paths, "ERR-6")


@case("envelope.version-in-every-reply", "every reply says version 1.0, errors included",
      sends="hello, an unknown command, a version 9.9 request", requirements=["ENV-7", "ENV-8"])
def version_everywhere(ctx: CaseContext) -> None:
    replies = [ctx.call("hello", {}).reply, ctx.send(_msg(command="no.such")).reply,
               ctx.send(_msg(version="9.9")).reply]
    for reply in replies:
        if reply.get("version") != "1.0":
            raise CaseFailed("1.0", reply.get("version"), "ENV-7")
        if reply["status"] == "error" and not reply["error"]["message"].strip():
            raise CaseFailed("a non-empty message", reply["error"]["message"], "ENV-8")


@case("envelope.timestamps", "timestamps are RFC 3339 UTC with a literal Z",
      sends="hello, session.create, session.validate, session.snapshot", requirements=["ENV-10"])
def timestamps(ctx: CaseContext) -> None:
    s = ctx.new_session()
    stamps = [s.created["created_at"], s.created["expires_at"]]
    for command, params in (("hello", {}), ("session.validate", s.params()), ("session.snapshot", s.params())):
        exchange = ctx.call(command, params)
        result = expect_success(exchange, command, "ENV-10")  # an error would hide the result's timestamps
        stamps.append(exchange.reply["timestamp"])
        stamps += [v for k, v in result.items() if k.endswith("_at")]
    for stamp in stamps:
        if not _STRICT_TS.match(stamp):
            raise CaseFailed("YYYY-MM-DDTHH:MM:SS[.f]Z", stamp, "ENV-10")


@case("envelope.timestamp-milliseconds", "timestamps carry exactly three fraction digits", level="SHOULD",
      sends="hello and session.create", requirements=["ENV-11"])
def timestamp_millis(ctx: CaseContext) -> None:
    s = ctx.new_session()
    for stamp in (ctx.call("hello", {}).reply["timestamp"], s.created["created_at"]):
        expect_true(bool(_MILLIS_TS.match(stamp)), "three fraction digits", stamp, "ENV-11")


@case("envelope.no-undefined-members", "replies carry only members the schemas define", level="SHOULD",
      sends="hello, session.create, session.validate, an error", requirements=["ENV-9"])
def no_undefined(ctx: CaseContext) -> None:
    allowed = {"id", "version", "command", "status", "result", "error", "timestamp"}
    s = ctx.new_session()
    replies = [ctx.call("hello", {}).reply, ctx.call("session.validate", s.params()).reply,
               ctx.send(_msg(command="no.such")).reply]
    for reply in replies:
        extra = set(reply) - allowed
        expect_true(not extra, "no undefined members", sorted(extra), "ENV-9")
        if reply["status"] == "success":
            props = ctx.registry.document(f"commands/{reply['command']}.json")["$defs"]["Result"]["properties"]
            extra = set(reply["result"]) - set(props)
            expect_true(not extra, "no undefined result members", sorted(extra), "ENV-9")
    ok(ctx, "hello", {})
