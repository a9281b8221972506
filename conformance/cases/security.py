"""Cases for spec 6, security (SEC): token checks, what a caller without the token learns, secrecy."""

from __future__ import annotations

import base64
import hashlib
import json
import re

from stui_protocol_kit.conformance.case import case
from stui_protocol_kit.conformance.cases._helpers import ok, validate
from stui_protocol_kit.conformance.context import CaseContext
from stui_protocol_kit.conformance.verifiers import expect_equal, expect_error, expect_true
from stui_protocol_kit.protocol.codec import parse_rfc3339
from stui_protocol_kit.protocol.problems import quote

_B64URL = re.compile(r"^[A-Za-z0-9_-]+$")


def _flip(token: str) -> str:
    return token[:-1] + ("A" if token[-1] != "A" else "B")


@case("security.token-variants", "a token that differs in any way is InvalidToken",
      sends="validate with: last or first character changed, the case of one letter swapped, the token plus one"
            " character, another session's token",
      requirements=["SEC-2"])
def token_variants(ctx: CaseContext) -> None:
    s, other = ctx.new_session(), ctx.new_session()
    first = ("B" if s.token[0] == "A" else "A") + s.token[1:]
    variants = [_flip(s.token), first, s.token + "A", other.token]
    letter = next((i for i, ch in enumerate(s.token) if ch.isalpha()), None)
    if letter is not None:  # a case-insensitive comparison accepts this one
        variants.append(s.token[:letter] + s.token[letter].swapcase() + s.token[letter + 1:])
    # Variants stay schema-valid (43..128 base64url characters) so that only the token check can fail.
    for token in variants:
        expect_error(ctx.call("session.validate", s.params(token=token)), "InvalidToken", "SEC-2")
    validate(ctx, s, "SEC-2")


@case("security.wrong-token-reveals-nothing", "InvalidToken looks the same for an active and a closed session",
      sends="wrong-token validate on an active and on a closed session", requirements=["SEC-3"])
def reveals_nothing(ctx: CaseContext) -> None:
    active, closed = ctx.new_session(), ctx.new_session()
    ok(ctx, "session.close", closed.params())
    errors = [expect_error(ctx.call("session.validate", s.params(token=_flip(s.token))), "InvalidToken", "SEC-3")
              for s in (active, closed)]
    expect_equal(errors[0], errors[1], "SEC-3", "InvalidToken error for active vs closed")
    expect_true(not errors[0].get("details"), "no details", errors[0].get("details"), "SEC-3")


@case("security.wrong-token-no-effect", "requests with a wrong token change nothing the holder can see",
      sends="validate; wrong-token snapshot and close, also from two new connections; validate",
      requirements=["SEC-4", "ERR-3", "CON-7"])
def no_effect(ctx: CaseContext) -> None:
    s = ctx.new_session()
    first = ctx.call("session.validate", s.params())
    bad = s.params(token=_flip(s.token))
    expect_error(ctx.call("session.snapshot", {**bad, "state": {"preferences": {"evil": 1}}}), "InvalidToken", "SEC-4")
    expect_error(ctx.call("session.close", bad), "InvalidToken", "SEC-4")
    # New connections that only ever sent a wrong token must not attach (attached_clients is observable).
    for stranger in (ctx.client(), ctx.client()):
        expect_error(stranger.call("session.validate", bad), "InvalidToken", "SEC-4")
        expect_error(stranger.call("session.resume", bad), "InvalidToken", "SEC-4")
    after = validate(ctx, s, "SEC-4")
    expect_equal(0, after["revision"], "SEC-4", "revision")
    # The latest successful request before this validate is the first validate, not a wrong-token one.
    expect_true(parse_rfc3339(after["last_active_at"]) <= parse_rfc3339(first.reply["timestamp"]),
                f"<= {first.reply['timestamp']}",
                after["last_active_at"], "SEC-4", "last_active_at moved by a wrong-token request")
    expect_equal(first.reply["result"]["attached_clients"], after["attached_clients"], "SEC-4", "attached_clients")


@case("security.token-only-in-create", "no reply but create's carries the token",
      sends="create; resume, validate, snapshot, close with the token; schema-invalid and id-reused requests",
      requirements=["SEC-5"])
def token_secret(ctx: CaseContext) -> None:
    s = ctx.new_session()
    replies = [ctx.call(c, s.params()).reply for c in ("session.resume", "session.validate", "session.snapshot")]
    replies.append(ctx.call("session.snapshot", s.params(expected_revision="x")).reply)
    replies.append(ctx.call("session.validate", {**s.params(), "extra": s.token}).reply)
    replies.append(ctx.call("session.snapshot", s.params(expected_revision=99)).reply)
    replies.append(ctx.call("session.close", s.params(), request_id="same-id").reply)
    replies.append(ctx.call("session.validate", s.params(), request_id="same-id").reply)
    replies.append(ctx.send({"id": "t", "version": "1.0", "command": "session.validate",
                             "parameters": {"session_id": s.session_id, "token": s.token + "!"}}).reply)
    for reply in replies:
        expect_true(s.token not in json.dumps(reply), "no token in the reply", "the token appears", "SEC-5",
                    f"the token appears in a {reply.get('command')} {reply.get('status')} reply")


def _b64_bytes(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _derivations(session_id: str) -> set[str]:
    """Tokens a lazy implementation might compute from the session id (hashes, optionally salted)."""
    out = set()
    for salt in ("", "salt", "secret", "token", "stui"):
        for data in ((session_id + salt).encode(), (salt + session_id).encode()):
            for digest in (hashlib.sha256(data).digest(), hashlib.sha512(data).digest()[:32],
                           hashlib.blake2b(data, digest_size=32).digest(), hashlib.sha3_256(data).digest()):
                out.add(base64.urlsafe_b64encode(digest).rstrip(b"=").decode())
                out.add(digest.hex())
    return out


def _common_prefix(a: str, b: str) -> int:
    n = 0
    while n < min(len(a), len(b)) and a[n] == b[n]:
        n += 1
    return n


IDS_SAMPLE = 16


@case("security.ids-are-random", "session ids and tokens look random, not like counters, times or derivatives",
      sends=f"session.create x{IDS_SAMPLE} (one client_id each)", requirements=["SEC-1"])
def ids_random(ctx: CaseContext) -> None:
    made = [ctx.new_session(client_id=ctx.client_id(str(i))) for i in range(IDS_SAMPLE)]
    # False-positive bound for random ids (22 base64url chars = 128 bits) and tokens (43 chars = 256 bits),
    # n = 16 samples:
    # - constant position: a position whose character is the same in all 16; P <= 21 * 64**-15 + 4**-15
    #   (the last id character carries only 2 random bits) ~ 9.3e-10 for ids, 42 * 64**-15 + 16**-15
    #   ~ 8.7e-19 for tokens (this also covers a prefix shared by all ids);
    # - pairwise common prefix of >= 5 characters: P <= C(16, 2) * 64**-5 ~ 1.1e-7 for each of ids, tokens;
    # - repeated value, hash-of-id token: ~ 0. Together < 3e-7 per run.
    for kind, values, min_bytes in (("session_id", [s.session_id for s in made], 16),
                                    ("token", [s.token for s in made], 32)):
        for value in values:
            expect_true(bool(_B64URL.match(value)), f"a base64url {kind}", value[:8] + "...", "SEC-1")
            raw = _b64_bytes(value)
            expect_true(len(raw) >= min_bytes, f">= {min_bytes * 8} bits of {kind}", f"{len(raw) * 8} bits",
                        "SEC-1")
        expect_true(len(set(values)) == len(values), f"{IDS_SAMPLE} distinct values", "a repeated value", "SEC-1",
                    f"a {kind} repeats")
        shortest = min(len(v) for v in values)
        for pos in range(shortest):
            column = {v[pos] for v in values}
            expect_true(len(column) > 1, f"{kind} characters that vary at every position",
                        f"position {pos} is {quote(next(iter(column)))} in all {IDS_SAMPLE}", "SEC-1",
                        f"every {kind} has {quote(next(iter(column)))} at position {pos}: a fixed field, counter or"
                        " time")
        for i, a in enumerate(values):
            for b in values[i + 1:]:
                shared = _common_prefix(a, b)
                expect_true(shared < 5, f"{kind}s without a common prefix of 5 characters",
                            f"{shared} shared leading characters", "SEC-1",
                            f"two {kind}s share {shared} leading characters: a counter or a time prefix")
    for s in made:
        expect_true(s.client_id not in s.session_id, "no client_id in the id", s.session_id[:8] + "...", "SEC-1")
        expect_true(s.token not in _derivations(s.session_id), "a token independent of the session id",
                    "a hash of the session id", "SEC-1", "the token is a hash of the session id")
        expect_true(s.session_id not in s.token, "a token independent of the session id",
                    "the id inside the token", "SEC-1")


@case("security.any-connection", "the right id and token work from a connection that never used the session",
      sends="create on connection A, validate and snapshot on a new connection B", requirements=["SEC-7"])
def any_connection(ctx: CaseContext) -> None:
    s = ctx.new_session(client=ctx.client())
    other = ctx.client()
    validate(ctx, s, "SEC-7", client=other)
    ok(ctx, "session.snapshot", s.params(), "SEC-7", client=other)


@case("security.connection-is-not-identity", "the creating connection still needs the right token",
      sends="create, then on the same connection validate with a wrong token", requirements=["SEC-7", "SEC-2"])
def not_identity(ctx: CaseContext) -> None:
    client = ctx.client()
    s = ctx.new_session(client=client)
    expect_error(client.call("session.validate", s.params(token=_flip(s.token))), "InvalidToken", "SEC-7")
