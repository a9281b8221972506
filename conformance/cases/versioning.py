"""Cases for spec 3, versioning and capabilities (VER)."""

from __future__ import annotations

from stui_protocol_kit.conformance.case import CaseFailed, case
from stui_protocol_kit.conformance.cases._helpers import UNKNOWN_SESSION_ID, WRONG_TOKEN, command_params
from stui_protocol_kit.conformance.context import CaseContext
from stui_protocol_kit.conformance.verifiers import expect_echo, expect_equal, expect_error
from stui_protocol_kit.protocol.problems import quote

MANDATORY = ("hello", "session.create", "session.resume", "session.validate", "session.snapshot", "session.close")
OPTIONAL = ("evaluate", "inspect")


@case("versioning.unsupported-version-bare", "a bare {version: 2.0} gets UnsupportedVersion",
      sends='{"version": "2.0"} with every other member missing', requirements=["VER-1", "VER-2", "ENV-7"])
def bare(ctx: CaseContext) -> None:
    error = expect_error(ctx.send({"version": "2.0"}), "UnsupportedVersion", "VER-1")
    expect_equal(ctx.hello["protocol_versions"], error["details"]["supported_versions"], "VER-2",
                 "supported_versions")


@case("versioning.unsupported-version-hello", "a v2 hello learns the supported versions",
      sends='hello written in version "2.0"', requirements=["VER-1", "VER-2", "ENV-5", "ENV-6"])
def v2_hello(ctx: CaseContext) -> None:
    message = {"id": "v2-hello", "version": "2.0", "command": "hello", "parameters": {}}
    exchange = ctx.send(message)
    error = expect_error(exchange, "UnsupportedVersion", "VER-1")
    expect_echo(exchange, "v2-hello", "hello", "ENV-5")
    expect_equal(ctx.hello["protocol_versions"], error["details"]["supported_versions"], "VER-2", "supported_versions")


@case("versioning.unsupported-near-versions", "versions close to a supported one are UnsupportedVersion",
      sends='hello written in versions "1.1", "1", "1.0.0", "1.00", " 1.0", "v1.0" (each unsupported unless announced)',
      requirements=["VER-1", "VER-2"])
def near_versions(ctx: CaseContext) -> None:
    # Versions are compared as whole strings: no prefix, minor-version or numeric matching.
    for version in ("1.1", "1", "1.0.0", "1.00", " 1.0", "v1.0"):
        if version in ctx.hello["protocol_versions"]:
            continue
        message = {"id": "v-near", "version": version, "command": "hello", "parameters": {}}
        error = expect_error(ctx.send(message), "UnsupportedVersion", "VER-1")
        expect_equal(ctx.hello["protocol_versions"], error["details"]["supported_versions"], "VER-2",
                     f"supported_versions for version {quote(version)}")


@case("versioning.version-not-a-string", "a missing or numeric version is a schema error, not UnsupportedVersion",
      sends="hello with version 1.0 (a number), with version missing, with version null",
      requirements=["VER-3"])
def not_string(ctx: CaseContext) -> None:
    for version in (1.0, 1, None):
        message = {"id": "v-num", "version": version, "command": "hello", "parameters": {}}
        expect_error(ctx.send(message), "InvalidRequest", "VER-3", reason="schema")
    expect_error(ctx.send({"id": "v-miss", "command": "hello", "parameters": {}}), "InvalidRequest", "VER-3",
                 reason="schema")


@case("versioning.mandatory-commands-served", "every mandatory command is served",
      sends="each mandatory session command with an unknown session id", requirements=["VER-5"])
def mandatory(ctx: CaseContext) -> None:
    for command in MANDATORY[2:]:
        params = {"session_id": UNKNOWN_SESSION_ID, "token": WRONG_TOKEN}
        expect_error(ctx.call(command, params), "SessionNotFound", "VER-5")


@case("versioning.capabilities-match-commands", "optional commands are served exactly when announced",
      sends="evaluate and inspect with an unknown session id", requirements=["VER-5", "VER-6"])
def capabilities(ctx: CaseContext) -> None:
    for command in OPTIONAL:
        exchange = ctx.call(command, command_params(command))
        want = "SessionNotFound" if command in ctx.capabilities else "UnknownCommand"
        expect_error(exchange, want, "VER-5" if want == "SessionNotFound" else "VER-6")


@case("versioning.unknown-command", "an unknown command lists exactly the commands served",
      sends="command 'session.teleport'", requirements=["VER-6"])
def unknown_command(ctx: CaseContext) -> None:
    error = expect_error(ctx.call("session.teleport", {}), "UnknownCommand", "VER-6")
    served = set(MANDATORY) | {c for c in OPTIONAL if c in ctx.capabilities}
    got = error["details"]["supported_commands"]
    if set(got) != served or len(got) != len(set(got)):
        raise CaseFailed(sorted(served), sorted(got), "VER-6")
