"""What a case gets to talk to the target: checked clients, sessions, restart, run options.

Every reply that reaches a case through a `CheckedClient` has already been checked here:
- it is one UTF-8 JSON object (TRN-2),
- it matches the response schemas for its command / error code (ENV-3, ENV-4),
- an error code is one the request's command may return (`x-stui-command.errors`, ERR-2),
- for a request that passed step P1, `id` and `command` are echoed as ENV-3/ENV-5/ENV-6 say.
A violation raises `CaseFailed` citing the requirement, so no case can forget these checks.

This module must never decide a case's verdict beyond those automatic checks, and never retry: a
conformance suite must see exactly what the target did.
"""

from __future__ import annotations

import contextlib
import json
import random
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import zmq
from stui_protocol_kit.conformance import citations
from stui_protocol_kit.conformance.case import Case, CaseFailed, CaseSkipped
from stui_protocol_kit.protocol.client import Exchange, ProtocolClient, ReplyTimeout, SocketKind, Transcript
from stui_protocol_kit.protocol.codec import encode
from stui_protocol_kit.protocol.requirements import Requirement, requirements
from stui_protocol_kit.protocol.schemas import SchemaRegistry, registry
from stui_protocol_kit.protocol.validation import MessageValidator, validator


@dataclass
class SessionHandle:
    """A session a case created: its id and token (never printed: transcripts redact the token)."""

    session_id: str
    token: str
    client_id: str
    revision: int = 0
    created: dict[str, Any] = field(default_factory=dict)

    def params(self, **extra: Any) -> dict[str, Any]:
        """Parameters for a session-scoped command on this session."""
        return {"session_id": self.session_id, "token": self.token, **extra}


@dataclass
class TargetHandle:
    """One reachable target as the run sees it: where it is, what it announced, how to restart it."""

    endpoint: str
    hello: dict[str, Any]
    restart: Callable[[], str] | None = None  # restarts and returns the (possibly new) endpoint

    @property
    def limits(self) -> dict[str, Any]:
        return dict(self.hello.get("limits", {}))

    @property
    def capabilities(self) -> frozenset[str]:
        return frozenset(self.hello.get("capabilities", []))


@dataclass
class RunOptions:
    """Options of one run that cases may read."""

    socket_kind: SocketKind = "dealer"
    timeout_s: float = 5.0
    seed: int = 0
    examples: int = 50
    expiry_budget_s: float = 10.0
    extras: dict[str, Any] = field(default_factory=dict)  # for plug-in cases (e.g. differential)


class CaseBudgetExceeded(ReplyTimeout):
    """The case used up its time budget; reported as TIMEOUT like a missing reply."""


DEFAULT_EXAMPLES = 50
DEFAULT_TIMEOUT_S = 5.0


def effective_budget(case: Case, options: RunOptions) -> float:
    """A case's budget, scaled for a slower target (a longer --timeout) and, for generated cases,
    a bigger --examples: the budgets are written for the defaults."""
    scale = max(1.0, options.timeout_s / DEFAULT_TIMEOUT_S)
    if "hypothesis" in case.tags:
        scale *= max(1.0, options.examples / DEFAULT_EXAMPLES)
    return case.budget_s * scale


class CheckedClient:
    """A ProtocolClient whose every reply is checked before the case sees it."""

    def __init__(self, ctx: CaseContext, socket_kind: SocketKind) -> None:
        self.ctx = ctx
        self.socket_kind = socket_kind
        self.raw = ProtocolClient(ctx.endpoint, socket_kind, ctx.options.timeout_s, ctx.zmq_context, ctx.transcript)

    # -- sending ------------------------------------------------------------------------------------

    def call(self, command: str, parameters: dict[str, Any] | None = None, *, request_id: str | None = None,
             timeout_s: float | None = None) -> Exchange:
        """A well-formed request; the reply must echo its id and command."""
        self.ctx.check_budget()
        exchange = self.raw.call(command, parameters, request_id=request_id, timeout_s=timeout_s)
        self.ctx.check_reply(exchange, sent=exchange.request)
        return exchange

    def send(self, message: Any, *, timeout_s: float | None = None, check_echo: bool = True) -> Exchange:
        """Any JSON value as one body frame. Echo rules are checked when the body is within the size
        limit (a P1 rejection echoes nulls, which `check_echo` callers verify themselves)."""
        self.ctx.check_budget()
        exchange = self.raw.send(message, timeout_s=timeout_s)
        self.ctx.check_reply(exchange, sent=message if check_echo else None)
        return exchange

    def send_frames(self, frames: list[bytes], *, request: Any = None, timeout_s: float | None = None) -> Exchange:
        """Raw body frames (a REQ socket adds its delimiter). Only the schema checks apply."""
        self.ctx.check_budget()
        exchange = self.raw.exchange_frames(frames, request=request, timeout_s=timeout_s)
        self.ctx.check_reply(exchange, sent=None)
        return exchange

    def reconnect(self) -> None:
        self.raw.reconnect()

    def close(self) -> None:
        self.raw.close()


class CaseContext:
    """Everything one case may use. Created per case by the runner; closes its clients afterwards."""

    def __init__(self, case: Case, target: TargetHandle, options: RunOptions, zmq_context: zmq.Context,
                 can_restart: bool, restart_reason: str = "") -> None:
        self.case = case
        self.target = target
        self.options = options
        self.zmq_context = zmq_context
        self.can_restart = can_restart
        self.restart_reason = restart_reason
        self.registry: SchemaRegistry = registry()
        self.validator: MessageValidator = validator()
        self.requirements: dict[str, Requirement] = requirements()
        self.transcript = Transcript()
        self.notes: list[str] = []
        # Seeded per case so one case's draws do not depend on which other cases were selected.
        self.rng = random.Random(options.seed ^ zlib.crc32(case.id.encode()))
        self._clients: list[CheckedClient] = []
        self._default: CheckedClient | None = None
        self._sessions = 0
        self._nonce = f"{options.seed:x}-{random.getrandbits(24):06x}"
        self.budget_s = effective_budget(case, options)
        self.deadline = time.monotonic() + self.budget_s

    def check_budget(self) -> None:
        """Called before every request: a case past its budget ends as TIMEOUT (the target answers,
        but too slowly for the run to finish), instead of stretching the run without bound."""
        if time.monotonic() > self.deadline:
            raise CaseBudgetExceeded(f"case {self.case.id} ran past its budget of {self.budget_s:.0f}s")

    # -- target facts ---------------------------------------------------------------------------------

    @property
    def endpoint(self) -> str:
        return self.target.endpoint

    @property
    def hello(self) -> dict[str, Any]:
        return self.target.hello

    @property
    def limits(self) -> dict[str, Any]:
        return self.target.limits

    @property
    def capabilities(self) -> frozenset[str]:
        return self.target.capabilities

    # -- clients ----------------------------------------------------------------------------------------

    def client(self, socket_kind: SocketKind | None = None) -> CheckedClient:
        """A new connection (a new routing id), closed when the case ends."""
        made = CheckedClient(self, socket_kind or self.options.socket_kind)
        self._clients.append(made)
        return made

    @property
    def default(self) -> CheckedClient:
        if self._default is None:
            self._default = self.client()
        return self._default

    def call(self, command: str, parameters: dict[str, Any] | None = None, **kw: Any) -> Exchange:
        return self.default.call(command, parameters, **kw)

    def send(self, message: Any, **kw: Any) -> Exchange:
        return self.default.send(message, **kw)

    def client_id(self, label: str = "") -> str:
        """A client_id unique to this case and run, so per-client limits never collide across cases."""
        return f"conformance-{self.case.id}-{self._nonce}{'-' + label if label else ''}"[:128]

    def new_session(self, client: CheckedClient | None = None, client_id: str | None = None) -> SessionHandle:
        """session.create, checked for success; the building block of most cases."""
        from stui_protocol_kit.conformance.verifiers import expect_success

        self._sessions += 1
        cid = client_id or self.client_id(str(self._sessions))
        exchange = (client or self.default).call("session.create", {"client_id": cid})
        result = expect_success(exchange, "session.create", requirement=citations.CREATE_OK)
        return SessionHandle(result["session_id"], result["token"], cid, result["revision"], result)

    # -- restart ----------------------------------------------------------------------------------------

    def restart(self) -> None:
        """Restart the target and wait until it answers hello; existing clients reconnect by themselves
        (ZeroMQ), but cases should open new ones to make the "new connection" explicit."""
        if not self.can_restart or self.target.restart is None:
            raise CaseSkipped(self.restart_reason or "the run cannot restart the target")
        self.target.endpoint = self.target.restart()

    def require_expiry(self, *limits: str) -> float:
        """The largest of the named limits, or SKIPPED when it exceeds the run's expiry budget."""
        longest = max(float(self.limits.get(name, 0) or 0) for name in limits)
        if longest <= 0 or longest > self.options.expiry_budget_s:
            raise CaseSkipped(
                f"{'/'.join(limits)} is {longest:g}s; the expiry budget is {self.options.expiry_budget_s:g}s"
                " (--expiry-budget)"
            )
        return longest

    def note(self, text: str) -> None:
        self.notes.append(text)

    def requirement_text(self, req_id: str | None) -> str:
        if req_id and req_id in self.requirements:
            return self.requirements[req_id].text
        return ""

    # -- automatic reply checks --------------------------------------------------------------------------

    def check_reply(self, exchange: Exchange, sent: Any) -> None:
        """The checks every reply gets (see the module docstring)."""
        if exchange.decode_error is not None or not isinstance(exchange.reply, dict):
            shown = exchange.decode_error or f"a JSON {type(exchange.reply).__name__}"
            raise CaseFailed("one UTF-8 JSON object", shown, citations.REPLY_IS_JSON_OBJECT)
        reply = exchange.reply
        violations = self.validator.check_response(reply, has_float=exchange.reply_has_float)
        if violations:
            first = violations[0]
            req = citations.SUCCESS_SCHEMA if reply.get("status") == "success" else citations.ERROR_SCHEMA
            raise CaseFailed(
                "a reply valid against the response schemas", f"{first.path}: {first.message}", req,
                message=f"schema-invalid reply: {first.path}: {first.message}",
                violations=[v.as_dict() for v in violations],
            )
        _check_numbers_and_nulls(reply)
        if not isinstance(sent, dict):
            return
        command = sent.get("command")
        info = self.registry.commands.get(command) if isinstance(command, str) else None
        if reply["status"] == "error" and info is not None and _passes_p1(sent, self.limits):
            code = reply["error"]["code"]
            if code not in info.errors:
                raise CaseFailed(f"one of {', '.join(info.errors)}", code, citations.ERROR_ALLOWED_FOR_COMMAND,
                                 message=f"{command} answered {code}, which it may not return")
        if not _passes_p1(sent, self.limits):
            return
        want_id = self.validator.echo_id(sent)
        want_command = self.validator.echo_command(sent)
        if reply["status"] == "success":
            if reply["id"] != sent.get("id") or reply["command"] != command:
                raise CaseFailed({"id": sent.get("id"), "command": command},
                                 {"id": reply["id"], "command": reply["command"]}, citations.SUCCESS_SCHEMA,
                                 message="a success reply must echo the request's id and command")
            return
        if reply["id"] != want_id:
            raise CaseFailed(want_id, reply["id"], citations.ERROR_ECHO_ID,
                             message=f"error reply id: expected {want_id!r}, got {reply['id']!r}")
        if reply["command"] != want_command:
            raise CaseFailed(want_command, reply["command"], citations.ERROR_ECHO_COMMAND,
                             message=f"error reply command: expected {want_command!r}, got {reply['command']!r}")

    def close(self) -> None:
        for made in self._clients:
            with contextlib.suppress(zmq.ZMQError):
                made.close()
        self._clients.clear()


def _check_numbers_and_nulls(reply: dict[str, Any]) -> None:
    """CMP-3 and CMP-5 on a whole reply: no null and no non-integer number outside the client-owned
    `inspector`/`preferences` documents (and the null id/command an error reply may carry)."""

    def walk(node: Any, path: str) -> None:
        if node is None:
            raise CaseFailed("no null outside inspector/preferences", f"null at {path}", citations.NO_STRAY_NULL)
        if isinstance(node, float):
            raise CaseFailed("an integer written without fraction or exponent", f"{node!r} at {path}",
                             citations.INTEGERS_AS_INTEGERS)
        if isinstance(node, dict):
            for key, value in node.items():
                if path == "$.result.state" and key in ("inspector", "preferences"):
                    continue
                walk(value, f"{path}.{key}")
        elif isinstance(node, list):
            for i, value in enumerate(node):
                walk(value, f"{path}[{i}]")

    for key, value in reply.items():
        if reply.get("status") == "error" and key in ("id", "command") and value is None:
            continue
        walk(value, f"$.{key}")


def _passes_p1(sent: dict[str, Any], limits: dict[str, Any]) -> bool:
    """Whether a message sent as one compact JSON body passes step P1 (size and depth)."""
    size = len(encode(sent))
    if size > int(limits.get("max_message_bytes", 1 << 62)):
        return False
    depth_limit = int(limits.get("max_nesting_depth", 1 << 30))
    text = json.dumps(sent)
    return text.count("[") + text.count("{") <= depth_limit or _depth(sent) <= depth_limit


def _depth(value: Any) -> int:
    from stui_protocol_kit.protocol.codec import nesting_depth

    return nesting_depth(value)

