"""Cases for spec 1, transport and framing (TRN): socket types, frame layouts, malformed bodies.

Every malformed-body case sends its bodies one at a time, checks the error, the null echo (TRN-13),
and then that the target still serves a new connection and an existing session is unchanged (TRN-14).
"""

from __future__ import annotations

import json

from stui_protocol_kit.conformance.case import CaseFailed, case
from stui_protocol_kit.conformance.cases._helpers import nested, ok
from stui_protocol_kit.conformance.context import CaseContext
from stui_protocol_kit.conformance.verifiers import (
    expect_alive,
    expect_error,
    expect_error_in,
    expect_null_echo,
    expect_success,
)
from stui_protocol_kit.protocol.codec import encode

HELLO = {"id": "t-1", "version": "1.0", "command": "hello", "parameters": {}}


def _bad_bodies(ctx: CaseContext, bodies: list[bytes], reason: str, requirement: str,
                socket_kind: str | None = None) -> None:
    """Send each body as one frame; expect InvalidRequest/`reason`, null echo, and a live target."""
    s = ctx.new_session()
    client = ctx.client(socket_kind) if socket_kind else ctx.default  # type: ignore[arg-type]
    for body in bodies:
        exchange = client.send_frames([body], request={"raw_body": body[:80].decode("utf-8", "replace")})
        expect_error(exchange, "InvalidRequest", requirement, reason=reason)
        expect_null_echo(exchange)
    expect_alive(ctx, s)


def _raw_dealer_exchange(ctx: CaseContext, frames: list[bytes]) -> list[bytes]:
    """Send frames on a DEALER socket and return every frame of the reply (the prefix included)."""
    client = ctx.client("dealer")
    ctx.transcript.record("request", {"raw_frames": [f[:60].decode("utf-8", "replace") for f in frames]})
    client.raw.socket.send_multipart(frames)
    if not client.raw.socket.poll(int(ctx.config.timeout_s * 1000)):
        from stui_protocol_kit.protocol.client import ReplyTimeout

        raise ReplyTimeout(f"no reply within {ctx.config.timeout_s:g}s")
    reply = client.raw.socket.recv_multipart()
    ctx.transcript.record("reply", {"frames": len(reply), "body": reply[-1][:200].decode("utf-8", "replace")})
    return reply


def _check_frames(ctx: CaseContext, reply: list[bytes], delimiter: bool, requirement: str) -> dict:
    want = 2 if delimiter else 1
    if len(reply) != want or (delimiter and reply[0] != b""):
        raise CaseFailed(f"{want} frame(s){' after an empty delimiter' if delimiter else ''}",
                         f"{len(reply)} frame(s): {[f[:20] for f in reply]}", requirement)
    try:
        message = json.loads(reply[-1])
    except ValueError as exc:
        raise CaseFailed("a JSON body", str(exc), "TRN-2") from None
    from stui_protocol_kit.protocol.client import Exchange

    ctx.check_reply(Exchange(None, [], reply=message, reply_bytes=reply[-1]), sent=None)
    return message


@case("transport.dealer-and-req", "DEALER and REQ clients are both served on one endpoint",
      sends="hello from a DEALER and from a REQ socket", requirements=["TRN-1", "TRN-2"])
def dealer_and_req(ctx: CaseContext) -> None:
    for kind in ("dealer", "req"):
        expect_success(ctx.client(kind).call("hello", {}), "hello", "TRN-1")  # type: ignore[arg-type]


@case("transport.dealer-framing", "a DEALER body gets a reply without delimiter",
      sends="[body] on a DEALER socket", requirements=["TRN-1", "TRN-2"])
def dealer_framing(ctx: CaseContext) -> None:
    reply = _raw_dealer_exchange(ctx, [encode(HELLO)])
    _check_frames(ctx, reply, False, "TRN-1")


@case("transport.req-style-framing", "a REQ-style request gets its empty delimiter back",
      sends='["", body] on a DEALER socket (REQ emulation)', requirements=["TRN-1", "TRN-2"])
def req_style_framing(ctx: CaseContext) -> None:
    reply = _raw_dealer_exchange(ctx, [b"", encode(HELLO)])
    _check_frames(ctx, reply, True, "TRN-1")


@case("transport.multi-frame-dealer", "several body frames from a DEALER are rejected (frames)",
      sends="[body, body] on a DEALER socket", requirements=["TRN-4", "TRN-13", "TRN-14", "TRN-3"])
def multi_frame_dealer(ctx: CaseContext) -> None:
    s = ctx.new_session()
    message = _check_frames(ctx, _raw_dealer_exchange(ctx, [encode(HELLO), encode(HELLO)]), False, "TRN-4")
    _expect_reason(message, "InvalidRequest", "frames", "TRN-4")
    expect_alive(ctx, s)


@case("transport.multi-frame-req-style", "a delimiter followed by several frames is rejected (frames)",
      sends='["", body, body] on a DEALER socket', requirements=["TRN-4", "TRN-13", "TRN-14"])
def multi_frame_req(ctx: CaseContext) -> None:
    s = ctx.new_session()
    message = _check_frames(ctx, _raw_dealer_exchange(ctx, [b"", encode(HELLO), encode(HELLO)]), True, "TRN-4")
    _expect_reason(message, "InvalidRequest", "frames", "TRN-4")
    expect_alive(ctx, s)


@case("transport.multi-frame-req-socket", "a REQ client sending two frames gets a frames error it can read",
      sends="two body frames from a REQ socket", requirements=["TRN-4", "TRN-1"])
def multi_frame_req_socket(ctx: CaseContext) -> None:
    client = ctx.client("req")
    exchange = client.send_frames([encode(HELLO), encode(HELLO)], request={"raw_frames": 2})
    expect_error(exchange, "InvalidRequest", "TRN-4", reason="frames")
    expect_null_echo(exchange)


def _expect_reason(message: dict, code: str, reason: str, requirement: str) -> None:
    error = message.get("error") or {}
    got = (error.get("code"), (error.get("details") or {}).get("reason"))
    if got != (code, reason):
        raise CaseFailed(f"{code} ({reason})", f"{got[0]} ({got[1]})", requirement)
    if message.get("id") is not None or message.get("command") is not None:
        raise CaseFailed({"id": None, "command": None}, {"id": message.get("id"), "command": message.get("command")},
                         "TRN-13")


@case("transport.invalid-utf8", "bodies that are not UTF-8 are rejected (encoding)",
      sends="a lone 0xFF byte, overlong 2/3/4-byte forms, encoded high and low surrogates, a truncated sequence,"
            " code points above U+10FFFF (F4 90 80 80, F5 80 80 80), each inside an otherwise valid hello",
      requirements=["TRN-8", "TRN-13", "TRN-14", "TRN-3"])
def invalid_utf8(ctx: CaseContext) -> None:
    # The bad sequence sits in the id of an otherwise valid hello: a lenient decoder (one that maps it to
    # U+FFFD, say) answers success instead of InvalidRequest/encoding.
    bad = [b"\xff", b"\xc0\xaf", b"\xe0\x80\xaf", b"\xf0\x80\x80\xaf", b"\xed\xa0\x80", b"\xed\xb0\x80",
           b"\xe2\x82", b"\xf4\x90\x80\x80", b"\xf5\x80\x80\x80"]
    _bad_bodies(ctx, [b'{"id":"' + seq + b'","version":"1.0","command":"hello","parameters":{}}' for seq in bad],
                "encoding", "TRN-8")


@case("transport.not-json", "bodies that are not JSON are rejected (json)",
      sends="empty body, '{', trailing garbage, comments, single quotes, NaN, BOM, lone-surrogate escapes (high,"
            " low, high followed by a non-surrogate), raw control characters in strings, bad number syntax"
            " (00, -01, +1, .5, 1., 1e), trailing commas",
      requirements=["TRN-9", "TRN-13", "TRN-14", "TRN-3"])
def not_json(ctx: CaseContext) -> None:
    bodies = [b"", b"{", b'{"id": "x"} x', b'{"id": /* c */ "x"}', b"{'id': 'x'}", b'{"n": NaN}',
              b'\xef\xbb\xbf{"id": "x"}', b'{"id": "x",}']
    # Each of these is a valid hello but for one lexical fault, so a lenient parser answers success (or a
    # schema error for the extra member "n"), never InvalidRequest/json.
    hello = b'{"id":"%s","version":"1.0","command":"hello","parameters":{}%s}'
    for text in (b"\\ud800", b"\\udc00", b"\\ud800\\u0041", b"a\tb", b"a\x00b", b"a\nb", b"a\x1fb"):
        bodies.append(hello % (text, b""))
    for number in (b"00", b"-01", b"007", b"+1", b".5", b"1.", b"-", b"1e", b"[1,]"):
        bodies.append(hello % (b"n", b',"n":' + number))
    _bad_bodies(ctx, bodies, "json", "TRN-9")


@case("transport.not-json-req", "a REQ client sending garbage gets a readable json error",
      sends="'not json' from a REQ socket", requirements=["TRN-9", "TRN-1", "TRN-14"])
def not_json_req(ctx: CaseContext) -> None:
    _bad_bodies(ctx, [b"not json"], "json", "TRN-9", socket_kind="req")


@case("transport.duplicate-members", "duplicate member names at any depth are rejected (json)",
      sends='a hello with "id" twice; a snapshot whose inspector has a key twice',
      requirements=["TRN-10", "TRN-13", "TRN-14"])
def duplicate_members(ctx: CaseContext) -> None:
    bodies = [b'{"id":"a","id":"b","version":"1.0","command":"hello","parameters":{}}',
              b'{"id":"a","version":"1.0","command":"hello","parameters":{"x":{"k":1,"k":2}}}']
    _bad_bodies(ctx, bodies, "json", "TRN-10")


@case("transport.nesting-too-deep", "nesting one level past the limit is rejected (nesting_depth)",
      sends="a snapshot whose inspector nests to max_nesting_depth + 1 with objects, then with arrays",
      requirements=["TRN-11", "TRN-13", "TRN-14"])
def nesting_too_deep(ctx: CaseContext) -> None:
    s = ctx.new_session()
    limit = int(ctx.limits["max_nesting_depth"])
    # request(1) > parameters(2) > state(3) > inspector(4): the inspector adds limit - 3 levels.
    arrays: list = []
    for _ in range(limit - 4):  # inspector(4) > "a" (5) > ... : arrays count like objects (TRN-11)
        arrays = [arrays]
    for inspector in (nested(limit - 2), {"a": arrays}):
        message = {"id": "deep-1", "version": "1.0", "command": "session.snapshot",
                   "parameters": s.params(state={"inspector": inspector})}
        exchange = ctx.default.send(message, check_echo=False)
        expect_error(exchange, "InvalidRequest", "TRN-11", reason="nesting_depth")
        expect_null_echo(exchange)
    expect_alive(ctx, s)


@case("transport.nesting-at-limit", "nesting exactly at the limit is accepted",
      sends="a snapshot whose inspector nests to exactly max_nesting_depth", requirements=["TRN-11", "LIM-2"])
def nesting_at_limit(ctx: CaseContext) -> None:
    s = ctx.new_session()
    limit = int(ctx.limits["max_nesting_depth"])
    inspector = nested(limit - 3)
    ok(ctx, "session.snapshot", s.params(state={"inspector": inspector}), "TRN-11")


@case("transport.pathological-nesting", "100000 nested brackets do not crash the target",
      sends="'[' * 100000 + ']' * 100000, then hello", requirements=["TRN-11", "TRN-14", "TRN-3"],
      allows=["InvalidRequest/nesting_depth", "InvalidRequest/json"])
def pathological_nesting(ctx: CaseContext) -> None:
    s = ctx.new_session()
    body = b"[" * 100_000 + b"]" * 100_000
    if len(body) > int(ctx.limits["max_message_bytes"]):
        half = int(ctx.limits["max_message_bytes"]) // 2 - 1
        body = b"[" * half + b"]" * half
    exchange = ctx.default.send_frames([body], request={"raw_body": "[[[[...]]]]"})
    expect_error_in(exchange, ["InvalidRequest"], "TRN-11", reasons=["nesting_depth", "json"])
    expect_alive(ctx, s)


@case("transport.not-object", "JSON values that are not objects are rejected (not_object)",
      sends="[], \"hello\", 42, true, false, null as bodies", requirements=["TRN-12", "TRN-13", "TRN-14"])
def not_object(ctx: CaseContext) -> None:
    _bad_bodies(ctx, [b"[]", b'"hello"', b"42", b"true", b"false", b"null"], "not_object", "TRN-12")


@case("transport.oversize-multi-frame", "size is checked before the frame layout",
      sends="two frames whose total exceeds max_message_bytes", requirements=["TRN-6", "TRN-13"])
def oversize_multi_frame(ctx: CaseContext) -> None:
    half = int(ctx.limits["max_message_bytes"]) // 2 + 1
    exchange = ctx.client("dealer").send_frames([b" " * half, b" " * half], request={"raw_frames": [half, half]})
    error = expect_error(exchange, "PayloadTooLarge", "TRN-6")
    if error["details"]["max_message_bytes"] != int(ctx.limits["max_message_bytes"]):
        raise CaseFailed(ctx.limits["max_message_bytes"], error["details"]["max_message_bytes"], "TRN-6")
    expect_null_echo(exchange)
