"""The rules every request a client sends is held to (spec/16-clients.md, CLT), as typed problems: one pure
home for `client-check` (the kit plays the server) and `proxy` (the kit sits between a client and a server),
and for `validate` of a recorded transcript.

Theory of operation: `ClientRules` follows the traffic of one or more clients as a server sees it -
requests per connection, and the replies they got - and answers each request with the problems it shows:
- CLT-1 framing: one body frame holding one UTF-8 JSON object, within the announced size and nesting
  (`protocol.codec.decode_body`, the very checks a server's step P1 makes);
- CLT-2 schema: the request envelope and the command's parameters (`MessageValidator.check_request`,
  steps P3-P5; every violation becomes one problem with its JSON path and rule);
- CLT-3 version: no request but `hello` in a version the server did not announce (step P2's verdict, and
  after an UnsupportedVersion on a connection, only `hello` until one succeeds there);
- CLT-4 request ids: an id used again on the same connection, or with the same session within
  `retry_window_s`, only to retry the identical request (same command, parameters equal as JSON values);
- CLT-5 REQ lockstep: on a connection whose socket announced itself as REQ (ZMTP `Socket-Type`), no request
  while the previous one has not been answered;
- CLT-6 token placement: a token the server issued appears only as the `token` parameter of a request on
  its own session (tokens are learned from `session.create` replies);
- CLT-7 ended sessions: no new request on a session after a reply ended it for the client
  (SessionExpired, SessionClosed, SessionNotFound, InvalidToken for that token, a successful close);
- VER-4 (SHOULD): `hello` first on every connection.

Messages may carry tokens in clear (live traffic) or as redaction placeholders (`<redacted:1a2b3c4d>`, a
recorded transcript): the rules compare tokens by that fingerprint, so both give the same verdicts. Tokens
seen in clear are kept in memory only, to find them where they do not belong; no problem ever quotes one
(`actual` shows the placeholder).

This module must never do I/O or read a clock (times are given by the caller), and must never judge a
reply: replies are the business of `protocol.reply_checks`; here they only teach the rules what the client
was told.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from stui_protocol_kit.protocol.codec import (
    DEFAULT_MAX_MESSAGE_BYTES,
    DEFAULT_MAX_NESTING_DEPTH,
    FrameError,
    decode_body,
)
from stui_protocol_kit.protocol.facts import (
    PROTOCOL_VERSION,
    SESSION_SCOPED_COMMANDS,
    Command,
    ErrorCode,
    InvalidRequestReason,
)
from stui_protocol_kit.protocol.problems import Problem, show
from stui_protocol_kit.protocol.redaction import redact_token, secret_member_names
from stui_protocol_kit.protocol.validation import MessageValidator, validator

# The requirements these rules cite (spec/16-clients.md), and the one SHOULD they report (spec/03).
FRAMING = "CLT-1"
SCHEMA = "CLT-2"
VERSION = "CLT-3"
REQUEST_IDS = "CLT-4"
REQ_LOCKSTEP = "CLT-5"
TOKEN_PLACEMENT = "CLT-6"
ENDED_SESSIONS = "CLT-7"
HELLO_FIRST = "VER-4"
RULE_REQUIREMENTS: tuple[str, ...] = (FRAMING, SCHEMA, VERSION, REQUEST_IDS, REQ_LOCKSTEP, TOKEN_PLACEMENT,
                                      ENDED_SESSIONS, HELLO_FIRST)

# Replies that end a session for the client that got them (CLT-7). InvalidToken ends it for that token only.
ENDING_CODES = frozenset({ErrorCode.SessionExpired, ErrorCode.SessionClosed, ErrorCode.SessionNotFound})
# A request that arrives this soon after the reply that ended its session was already on its way when the
# reply left (a pipelining DEALER client): it is not held against the client.
IN_FLIGHT_GRACE_S = 0.25
_PLACEHOLDER = re.compile(r"<redacted:[0-9a-f]{8}>")


def is_placeholder(value: Any) -> bool:
    return isinstance(value, str) and _PLACEHOLDER.fullmatch(value) is not None


def token_fingerprint(value: str) -> str:
    """A token's redaction placeholder: itself when it already is one (a transcript), else its digest."""
    return value if is_placeholder(value) else redact_token(value)


def request_digest(command: Any, parameters: Any, has_float: bool = True) -> str:
    """What a retry must repeat, as a digest: command and parameters *equal as JSON values* (spec README:
    numbers by their binary64 value, so `1` and `1.0` are equal; `true` and `1` are not). A float with an
    integral value is written as that integer, so both spellings give one text; without floats
    (`has_float=False`) the message is canonical as it is."""

    def canonical(value: Any) -> Any:
        if isinstance(value, float) and value.is_integer() and abs(value) <= 2**53:
            return int(value)
        if isinstance(value, dict):
            return {key: canonical(item) for key, item in value.items()}
        if isinstance(value, list):
            return [canonical(item) for item in value]
        return value

    text = json.dumps([command, canonical(parameters) if has_float else parameters], sort_keys=True,
                      ensure_ascii=False, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


@dataclass
class CheckedRequest:
    """One request as the rules read it: the decoded message (None when the body was not one JSON object),
    what it names, and the problems it shows."""

    connection: str
    at: float
    message: Any = None
    has_float: bool = False
    decode_error: str | None = None
    problems: list[Problem] = field(default_factory=list)
    # A retry: this id was seen before (on this connection, or with this session) with the same command and
    # parameters; `first_seen_at` is when the original arrived.
    retry: bool = False
    first_seen_at: float | None = None

    @property
    def command(self) -> str | None:
        value = self.message.get("command") if isinstance(self.message, dict) else None
        return value if isinstance(value, str) else None

    @property
    def request_id(self) -> str | None:
        value = self.message.get("id") if isinstance(self.message, dict) else None
        return value if isinstance(value, str) else None

    @property
    def parameters(self) -> dict[str, Any]:
        value = self.message.get("parameters") if isinstance(self.message, dict) else None
        return value if isinstance(value, dict) else {}

    @property
    def session_id(self) -> str | None:
        if self.command not in SESSION_SCOPED_COMMANDS:
            return None
        value = self.parameters.get("session_id")
        return value if isinstance(value, str) else None

    @property
    def token_fingerprint(self) -> str | None:
        value = self.parameters.get("token")
        return token_fingerprint(value) if isinstance(value, str) else None


@dataclass
class _Connection:
    socket_type: str | None = None
    requests: int = 0
    ids: dict[str, str] = field(default_factory=dict)  # request id -> digest
    first_seen: dict[str, float] = field(default_factory=dict)  # request id -> when it first arrived
    awaiting: bool = False  # a REQ connection's request has not been answered yet
    unsupported: tuple[str, ...] | None = None  # an UnsupportedVersion's supported_versions, until a hello succeeds


@dataclass
class _Ended:
    at: float
    why: str
    token: str | None = None  # InvalidToken: ended for this token fingerprint only


class ClientRules:
    """Follows requests and replies; `request(...)` returns each request's problems. Single-threaded.

    `limits` are the server's announced limits (max_message_bytes, max_nesting_depth, retry_window_s);
    `versions` the protocol versions it announced. Both may be updated as hello replies are seen."""

    def __init__(self, limits: Mapping[str, Any] | None = None, versions: Sequence[str] = (PROTOCOL_VERSION,),
                 check: MessageValidator | None = None) -> None:
        self.limits: dict[str, Any] = dict(limits or {})
        self.versions: tuple[str, ...] = tuple(versions)
        self.check = check or validator()
        self._connections: dict[str, _Connection] = {}
        # (session_id, request id) -> (digest, first seen at), for CLT-4 across connections
        self._session_ids: dict[tuple[str, str], tuple[str, float]] = {}
        self._tokens: dict[str, str] = {}  # token fingerprint -> session_id it was issued for
        self._clear_tokens: dict[str, str] = {}  # token in clear -> fingerprint (memory only)
        self._token_pattern: re.Pattern[str] | None = None
        self._ended: dict[str, _Ended] = {}
        self.sessions_ended = 0
        self.requests_after_an_end = 0  # requests that arrived after some session had ended (CLT-7 exercised)
        self._restarted = False
        self._sessions_before_restart: set[str] = set()

    # -- what the rules learn ---------------------------------------------------------------------------

    def connection(self, name: str) -> _Connection:
        return self._connections.setdefault(name, _Connection())

    def issued(self, session_id: str, token: str) -> None:
        """A `session.create` reply issued `token` for `session_id` (in clear or as a placeholder)."""
        fingerprint = token_fingerprint(token)
        self._tokens[fingerprint] = session_id
        if not is_placeholder(token):
            self._clear_tokens[token] = fingerprint
            self._token_pattern = re.compile("|".join(re.escape(t) for t in sorted(self._clear_tokens, key=len,
                                                                                 reverse=True)))

    @property
    def tokens_issued(self) -> int:
        return len(self._tokens)

    def scrub(self, value: Any) -> Any:
        """A copy of a JSON value with every token issued so far replaced by its placeholder, wherever it
        stands (a token pasted into `client_id` or into code too): what a transcript or report may hold."""
        if self._token_pattern is None:
            return value
        pattern, clear = self._token_pattern, self._clear_tokens

        def walk(node: Any) -> Any:
            if isinstance(node, str):
                return pattern.sub(lambda m: clear[m.group(0)], node) if pattern.search(node) else node
            if isinstance(node, dict):
                return {walk(k): walk(v) for k, v in node.items()}
            if isinstance(node, list):
                return [walk(v) for v in node]
            return node

        return walk(value)

    def replied(self, request: CheckedRequest, reply: Any, at: float) -> None:
        """The reply `request` got (any JSON value, or None when it was not JSON). Call it when the reply
        is sent (client-check) or forwarded (proxy): a REQ connection may then send again."""
        conn = self.connection(request.connection)
        conn.awaiting = False
        if not isinstance(reply, dict):
            return
        command, status = request.command, reply.get("status")
        if status == "success":
            result = reply.get("result") if isinstance(reply.get("result"), dict) else {}
            if command == Command.HELLO:
                conn.unsupported = None
                versions = result.get("protocol_versions")
                if isinstance(versions, list) and all(isinstance(v, str) for v in versions):
                    self.versions = tuple(versions)
                limits = result.get("limits")
                if isinstance(limits, dict):
                    self.limits.update({k: v for k, v in limits.items() if isinstance(v, int)})
            elif command == Command.SESSION_CREATE:
                session_id, token = result.get("session_id"), result.get("token")
                if isinstance(session_id, str) and isinstance(token, str):
                    self.issued(session_id, token)
            elif command == Command.SESSION_CLOSE and request.session_id:
                self._end(request.session_id, at, "it was closed (a successful session.close)")
            return
        error = reply.get("error") if isinstance(reply.get("error"), dict) else {}
        code = error.get("code")
        if code == ErrorCode.UnsupportedVersion:
            details = error.get("details") if isinstance(error.get("details"), dict) else {}
            supported = details.get("supported_versions")
            conn.unsupported = tuple(v for v in supported if isinstance(v, str)) if isinstance(supported, list) else ()
        session_id = request.session_id
        if session_id is None or request.problems and any(p.requirement in (FRAMING, SCHEMA) for p in request.problems):
            return
        if code in ENDING_CODES:
            self._end(session_id, at, f"the server answered {code}")
        elif code == ErrorCode.InvalidToken and request.token_fingerprint:
            self._end(session_id, at, f"the server answered {code} to its token {request.token_fingerprint}",
                      request.token_fingerprint)

    def server_restarted(self) -> None:
        """The server restarted: ZeroMQ re-establishes every client's connection by itself, so a connection
        first seen now may be an old socket reconnected, which owes no hello (VER-4)."""
        self._restarted = True
        self._sessions_before_restart = {session_id for session_id, _ in self._session_ids}

    def _end(self, session_id: str, at: float, why: str, token: str | None = None) -> None:
        if session_id not in self._ended or (self._ended[session_id].token is not None and token is None):
            self._ended[session_id] = _Ended(at, why, token)
            self.sessions_ended += 1

    # -- judging a request ------------------------------------------------------------------------------

    def request(self, connection: str, body_frames: Sequence[bytes], *, at: float,
                socket_type: str | None = None) -> CheckedRequest:
        """The problems of one request as it arrived: its body frames (the routing envelope removed)."""
        conn = self.connection(connection)
        if socket_type:
            conn.socket_type = socket_type
        checked = CheckedRequest(connection, at)
        problems = checked.problems
        first = conn.requests == 0
        conn.requests += 1
        if conn.socket_type == "REQ":
            if conn.awaiting:
                problems.append(Problem(
                    REQ_LOCKSTEP, "a REQ socket sent a request before it had received the reply to its previous one"
                    " (to give up on a reply, close the socket and retry on a new one)", "$",
                    "no request until the reply has come", "a second request", "req-lockstep", "request"))
            conn.awaiting = True
        if len(body_frames) != 1:
            problems.append(Problem(FRAMING, f"a request is exactly one body frame; got {len(body_frames)}", "$",
                                    1, len(body_frames), InvalidRequestReason.FRAMES.value, "request"))
            return checked
        try:
            decoded = decode_body(bytes(body_frames[0]),
                                  max_bytes=int(self.limits.get("max_message_bytes", DEFAULT_MAX_MESSAGE_BYTES)),
                                  max_depth=int(self.limits.get("max_nesting_depth", DEFAULT_MAX_NESTING_DEPTH)))
        except FrameError as exc:
            checked.decode_error = exc.message
            problems.append(Problem(FRAMING, exc.message, "$", "one UTF-8 JSON object within the announced limits",
                                    exc.reason or exc.code, exc.reason or exc.code, "request"))
            return checked
        checked.message, checked.has_float = decoded.message, decoded.has_float
        self._schema(checked, redacted=b"<redacted:" in body_frames[0])
        self._version(checked, conn)
        self._ids(checked, conn)
        command = checked.command
        # No hello is owed before a retry (the "lazy pirate" sends it on a new socket at once), nor on a
        # connection ZeroMQ re-established after a restart for a session in use before it.
        reconnected = self._restarted and checked.session_id in self._sessions_before_restart
        if first and command != Command.HELLO and not checked.retry and not reconnected:
            problems.append(Problem(HELLO_FIRST, "a client should send hello first on every new connection",
                                    "$.command", Command.HELLO.value, command, "hello-first", "request"))
        if self._ended:
            self.requests_after_an_end += 1
        self._tokens_placed(checked, bytes(body_frames[0]))
        self._after_end(checked)
        return checked

    def _schema(self, checked: CheckedRequest, redacted: bool = False) -> None:
        message = with_stand_in_tokens(checked.message) if redacted else checked.message
        verdict = self.check.check_request(message, has_float=checked.has_float)
        if verdict.ok or verdict.error_code == ErrorCode.UnsupportedVersion:
            return  # the version is CLT-3's business
        if verdict.violations:
            for violation in verdict.violations:
                server_rule = f" (a server answers InvalidRequest: {violation.requirement})" if violation.requirement \
                    else ""
                checked.problems.append(Problem(SCHEMA, violation.message + server_rule, violation.path,
                                                rule=violation.rule, subject="request"))
            return
        path = "$.command" if verdict.error_code == ErrorCode.UnknownCommand else "$"
        checked.problems.append(Problem(SCHEMA, verdict.message or "not a v1 request", path,
                                        sorted(self.check.registry.commands) if path == "$.command" else None,
                                        checked.command if path == "$.command" else None,
                                        verdict.error_code or "schema", "request"))

    def _version(self, checked: CheckedRequest, conn: _Connection) -> None:
        version = checked.message.get("version") if isinstance(checked.message, dict) else None
        if checked.command == Command.HELLO or not isinstance(version, str):
            return  # a hello may be written in any version (VER-1 negotiates); a missing version is CLT-2's
        allowed = conn.unsupported if conn.unsupported is not None else self.versions
        if version not in allowed:
            why = ("after UnsupportedVersion, only hello in one of its supported_versions" if conn.unsupported
                   is not None else "a version the server announced in hello")
            checked.problems.append(Problem(VERSION, f"request written in version {show(version)}: {why}",
                                            "$.version", list(allowed), version, "version", "request"))

    def _ids(self, checked: CheckedRequest, conn: _Connection) -> None:
        request_id = checked.request_id
        if request_id is None:
            return
        digest = request_digest(checked.command, checked.message.get("parameters"), checked.has_float)
        earlier = conn.ids.get(request_id)
        session_id = checked.session_id
        seen = self._session_ids.get((session_id, request_id)) if session_id is not None else None
        if earlier == digest or (seen is not None and seen[0] == digest):
            checked.retry = True
            checked.first_seen_at = seen[1] if seen is not None and seen[0] == digest else conn.first_seen[request_id]
        if earlier is not None and earlier != digest:
            checked.problems.append(Problem(
                REQUEST_IDS, f"request id {show(request_id)} was already used on this connection for a different "
                "request; an id is used again only to retry the identical request", "$.id",
                "a new id, or the identical command and parameters", request_id, "id-reused", "request"))
        conn.ids.setdefault(request_id, digest)
        conn.first_seen.setdefault(request_id, checked.at)
        if session_id is None:
            return
        window = float(self.limits.get("retry_window_s", float("inf")))
        if seen is not None and seen[0] != digest and checked.at - seen[1] <= window and earlier in (None, digest):
            checked.problems.append(Problem(
                REQUEST_IDS, f"request id {show(request_id)} was already used with this session within retry_window_s"
                " for a different request (perhaps on another connection)", "$.id",
                "a new id, or the identical command and parameters", request_id, "id-reused", "request"))
        if seen is None or checked.at - seen[1] > window:
            self._session_ids[(session_id, request_id)] = (digest, checked.at)

    def _tokens_placed(self, checked: CheckedRequest, body: bytes) -> None:
        if not self._tokens:
            return
        own = checked.token_fingerprint
        if not self._may_misplace(checked, body, own):
            return
        for path, text, is_token_parameter in _strings(checked.message):
            fingerprints = self._fingerprints_in(text)
            for fingerprint in fingerprints:
                if is_token_parameter and checked.session_id is not None:
                    issued_for = self._tokens.get(fingerprint)
                    if issued_for == checked.session_id or fingerprint != own:
                        continue
                    message = "the token of another session was sent with this session's session_id"
                else:
                    message = ("a session token was sent outside the token parameter of a request on its session"
                               f" ({'a ' + checked.command + ' request' if checked.command else 'this request'})")
                checked.problems.append(Problem(TOKEN_PLACEMENT, message, path,
                                                "the token only as parameters.token of its own session", fingerprint,
                                                "token-placement", "request"))

    def _may_misplace(self, checked: CheckedRequest, body: bytes, own: str | None) -> bool:
        """A cheap look at the raw body: False when no issued token can stand anywhere but in the request's
        own `token` parameter (the usual request), so the walk over every string is skipped."""
        text = body.decode("utf-8", "replace")
        found = self._fingerprints_in(text)
        if not found:
            return False
        if len(found) > 1 or checked.session_id is None or own is None:
            return True
        # One token in the body: it must be the token parameter's, issued for this very session.
        return found[0] != own or self._tokens.get(own) != checked.session_id

    def _fingerprints_in(self, text: str) -> list[str]:
        found: list[str] = []
        if "<redacted:" in text:
            found += [m for m in _PLACEHOLDER.findall(text) if m in self._tokens]
        if self._token_pattern is not None:
            found += [self._clear_tokens[m] for m in self._token_pattern.findall(text)]
        return found

    def _after_end(self, checked: CheckedRequest) -> None:
        session_id = checked.session_id
        ended = self._ended.get(session_id) if session_id else None
        if ended is None or checked.at - ended.at <= IN_FLIGHT_GRACE_S:
            return
        if ended.token is not None and checked.token_fingerprint != ended.token:
            return  # InvalidToken ended the session for that token only
        if checked.retry and checked.first_seen_at is not None and checked.first_seen_at <= ended.at:
            return  # a retry of a request sent before the end: the server answers it from its cache
        checked.problems.append(Problem(
            ENDED_SESSIONS, f"a new request on a session that had ended for this client: {ended.why}", "$.parameters"
            ".session_id", "no new request on an ended session (create a new session)", checked.command,
            "ended-session", "request"))


# A token the schemas accept, standing in for a redaction placeholder: a transcript cannot show whether the
# token the client sent was well-formed, and must not make every recorded request look malformed.
_STAND_IN_TOKEN = "redacted" + "0" * 35


def with_stand_in_tokens(message: Any) -> Any:
    """A copy of a recorded message with each placeholder in a secret member replaced by a valid token."""
    secrets = secret_member_names()
    if isinstance(message, dict):
        return {k: _STAND_IN_TOKEN if k in secrets and is_placeholder(v) else with_stand_in_tokens(v)
                for k, v in message.items()}
    if isinstance(message, list):
        return [with_stand_in_tokens(v) for v in message]
    return message


def _strings(message: Any) -> Iterator[tuple[str, str, bool]]:
    """(JSON path, string, whether it is the request's `parameters.token`) for every string in a request,
    member names included."""
    pending: list[tuple[Any, str]] = [(message, "$")]
    while pending:
        node, path = pending.pop()
        if isinstance(node, str):
            yield path, node, path == "$.parameters.token"
        elif isinstance(node, dict):
            for key, value in node.items():
                child = f"{path}.{key}" if isinstance(key, str) and key.isidentifier() else f"{path}[{json.dumps(key)}]"
                yield child, str(key), False
                pending.append((value, child))
        elif isinstance(node, list):
            pending.extend((value, f"{path}[{i}]") for i, value in enumerate(node))
