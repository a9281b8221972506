"""The fuzz profile: many hostile frames at one server, each answered exactly once and correctly.

`stui-conformance fuzz --frames N --seed S [--target ADDR]` sends N messages drawn from a seeded mix:
random bytes, byte-level damage of valid requests (flips, cuts, insertions), schema mutations of valid
requests (conformance/strategies.py), malformed UTF-8 and JSON, nesting at and beyond the announced
depth, several frames, REQ-style delimiters, oversize bodies within the frame bound (spec 01, TRN-15),
and valid requests of every command. Every message must get exactly one reply within the timeout
(TRN-3) that passes the checks every reply gets (protocol/reply_checks.py); a message step P1 must
reject (judged by the kit's decoder with the announced limits) must be answered `InvalidRequest` or
`PayloadTooLarge` with a null `id` and `command` (TRN-13). Every `--check-every` messages, `hello` and
a `session.validate` of a sentinel session (whose token no fuzz message carries) must still succeed
(TRN-14). `InternalError` replies are counted and shown, never judged: a correct server may answer it.

Nothing here depends on the reference server: any implementation can be fuzzed. The module builds and
judges messages and must never start a server (the verb does).
"""

from __future__ import annotations

import json
import random
import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import zmq

from stui_protocol_kit.conformance.strategies import every_mutation
from stui_protocol_kit.protocol.client import ProtocolClient, ReplyTimeout
from stui_protocol_kit.protocol.codec import FrameError, decode_body, encode
from stui_protocol_kit.protocol.curve import ClientCurve
from stui_protocol_kit.protocol.facts import PROTOCOL_VERSION, ErrorCode
from stui_protocol_kit.protocol.problems import Problem
from stui_protocol_kit.protocol.reply_checks import check_reply
from stui_protocol_kit.protocol.validation import validator

P1_CODES = (ErrorCode.InvalidRequest, ErrorCode.PayloadTooLarge)
FRAME_BOUND_FACTOR = 4  # spec 01, TRN-15: frames up to this many times max_message_bytes must be answered
MAX_PROBLEMS_KEPT = 50


@dataclass
class FuzzReport:
    """What a fuzz run sent and found. `problems` are typed (requirement, path, expected, actual)."""

    frames: int = 0
    replies: int = 0
    missing: int = 0
    internal_errors: int = 0
    liveness_checks: int = 0
    kinds: Counter[str] = field(default_factory=Counter)
    codes: Counter[str] = field(default_factory=Counter)
    problems: list[tuple[int, str, Problem]] = field(default_factory=list)  # (message index, kind, problem)
    problem_count: int = 0
    elapsed_s: float = 0.0
    seed: int = 0

    @property
    def passed(self) -> bool:
        return self.problem_count == 0 and self.missing == 0

    def add(self, index: int, kind: str, problem: Problem) -> None:
        self.problem_count += 1
        if len(self.problems) < MAX_PROBLEMS_KEPT:
            self.problems.append((index, kind, problem))

    def as_json(self) -> dict[str, Any]:
        return {
            "verdict": "PASS" if self.passed else "FAIL", "seed": self.seed, "frames": self.frames,
            "replies": self.replies, "missing_replies": self.missing, "internal_errors": self.internal_errors,
            "liveness_checks": self.liveness_checks, "elapsed_s": round(self.elapsed_s, 3),
            "kinds": dict(sorted(self.kinds.items())), "codes": dict(sorted(self.codes.items())),
            "problem_count": self.problem_count,
            "problems": [{"message": i, "kind": k, "requirement": p.requirement, "path": p.path,
                          "message_text": p.message, "expected": p.expected, "actual": p.actual}
                         for i, k, p in self.problems],
        }


def _request(command: str, parameters: dict[str, Any], rid: str) -> dict[str, Any]:
    return {"id": rid, "version": PROTOCOL_VERSION, "command": command, "parameters": parameters}


class FrameSource:
    """A seeded stream of (kind, body frames) to send; `auth` is a session the fuzz may use and damage."""

    def __init__(self, rng: random.Random, limits: Mapping[str, Any], auth: dict[str, str],
                 capabilities: frozenset[str]) -> None:
        self.rng = rng
        self.max_bytes = int(limits.get("max_message_bytes", 65536))
        self.max_depth = int(limits.get("max_nesting_depth", 32))
        self.auth = auth
        self.valid = self._valid_templates(capabilities)
        self.mutations = [m.message for v in self.valid for m in every_mutation(v)]
        self.generators: list[tuple[str, int, Callable[[], list[bytes]]]] = [
            ("random-bytes", 10, self.random_bytes),
            ("damaged-request", 25, self.damaged_request),
            ("schema-mutation", 25, self.schema_mutation),
            ("valid-request", 10, self.valid_request),
            ("bad-utf8", 5, self.bad_utf8),
            ("json-edge", 8, self.json_edge),
            ("deep-nesting", 4, self.deep_nesting),
            ("several-frames", 6, self.several_frames),
            ("req-delimiter", 5, self.req_delimiter),
            ("oversize", 2, self.oversize),
        ]
        self._weights = [w for _, w, _ in self.generators]
        self._ids = 0

    def next(self) -> tuple[str, list[bytes]]:
        kind, _, make = self.rng.choices(self.generators, self._weights)[0]
        return kind, make()

    def _rid(self) -> str:
        self._ids += 1
        return f"fz-{self._ids}"

    def _valid_templates(self, capabilities: frozenset[str]) -> list[dict[str, Any]]:
        auth = self.auth
        out = [
            _request("hello", {}, "t-hello"),
            _request("session.create", {"client_id": "fuzz"}, "t-create"),
            _request("session.validate", dict(auth), "t-validate"),
            _request("session.resume", dict(auth), "t-resume"),
            _request("session.snapshot", {**auth, "state": {"preferences": {"k": 1}}}, "t-snapshot"),
            _request("session.close", {"session_id": auth["session_id"], "token": "x" * 43}, "t-close"),
        ]
        if "evaluate" in capabilities:
            out.append(_request("evaluate", {**auth, "code": "1 + 2"}, "t-evaluate"))
        if "inspect" in capabilities:
            out.append(_request("inspect", {**auth, "expression": "3 * 4"}, "t-inspect"))
        return out

    def _valid(self) -> dict[str, Any]:
        message = json.loads(json.dumps(self.rng.choice(self.valid)))
        message["id"] = self._rid()
        return message

    def random_bytes(self) -> list[bytes]:
        return [self.rng.randbytes(self.rng.randrange(0, 300))]

    def damaged_request(self) -> list[bytes]:
        body = bytearray(encode(self._valid()))
        for _ in range(self.rng.randrange(1, 6)):
            op, at = self.rng.randrange(4), self.rng.randrange(len(body) or 1)
            if op == 0 and body:
                body[at] ^= 1 << self.rng.randrange(8)
            elif op == 1:
                body[at:at] = self.rng.randbytes(self.rng.randrange(1, 8))
            elif op == 2 and body:
                del body[at:at + self.rng.randrange(1, 8)]
            else:
                body = body[:at]
        return [bytes(body)]

    def schema_mutation(self) -> list[bytes]:
        message = dict(self.rng.choice(self.mutations))
        if isinstance(message.get("id"), str):
            message["id"] = self._rid()
        return [encode(message)]

    def valid_request(self) -> list[bytes]:
        return [encode(self._valid())]

    def bad_utf8(self) -> list[bytes]:
        body = encode(self._valid())
        bad = self.rng.choice([b"\xc0\xaf", b"\xed\xa0\x80", b"\xf4\x90\x80\x80", b"\xff", b"\xc3", b"\xe2\x82"])
        at = self.rng.randrange(len(body))
        return [body[:at] + bad + body[at:]]

    def json_edge(self) -> list[bytes]:
        body = encode(self._valid()).decode()
        choice = self.rng.randrange(8)
        if choice == 0:
            return [b"\xef\xbb\xbf" + body.encode()]
        if choice == 1:
            return [(body[:-1] + ', "id": "dup"}').encode()]
        if choice == 2:
            return [(body + " x").encode()]
        if choice == 3:
            return [body.replace('"parameters": {', '"parameters": {"n": NaN, ', 1).encode()]
        if choice == 4:
            return [body.replace('"parameters": {', '"parameters": {"n": 1' + "0" * 400 + ", ", 1).encode()]
        if choice == 5:
            return [body.replace('"version": "1.0"', '"version": "1.0\\ud800"', 1).encode()]
        if choice == 6:
            return [self.rng.choice([b"[]", b"42", b'"s"', b"null", b"true", b" ", b""])]
        return [body.replace('"id": ', '"id": 1e400, "x": ', 1).encode()]

    def deep_nesting(self) -> list[bytes]:
        depth = self.max_depth + self.rng.choice([-3, -1, 0, 1, 2, 50])
        inner = "[" * max(0, depth - 3) + "]" * max(0, depth - 3)
        message = self._valid()
        text = json.dumps(message)[:-1] + f', "deep": {inner or "0"}}}'
        return [text.encode()]

    def several_frames(self) -> list[bytes]:
        return [encode(self._valid()) for _ in range(self.rng.randrange(2, 4))]

    def req_delimiter(self) -> list[bytes]:
        make = self.rng.choice([self.valid_request, self.damaged_request, self.random_bytes])
        frames = [b"", *make()]
        if self.rng.random() < 0.2:
            frames.append(b"{}")
        return frames

    def oversize(self) -> list[bytes]:
        size = self.rng.randrange(self.max_bytes + 1, self.max_bytes * 2)
        if self.rng.random() < 0.5:
            return [b" " * size]
        half = size // 2 + 1
        return [b" " * half, b" " * half]


def judge(report: FuzzReport, index: int, kind: str, frames: list[bytes], reply: Any, decode_error: str | None,
          has_float: bool, limits: Mapping[str, Any]) -> None:
    """The checks of one reply to one fuzz message."""
    check = validator()
    body_frames = frames[1:] if len(frames) >= 2 and frames[0] == b"" else frames
    request: Any = None
    p1_rejects = True
    if len(body_frames) == 1:
        try:
            decoded = decode_body(body_frames[0], max_bytes=int(limits.get("max_message_bytes", 1 << 62)),
                                  max_depth=int(limits.get("max_nesting_depth", 1 << 30)))
            request, p1_rejects = decoded.message, False
        except FrameError:
            pass
    for problem in check_reply(reply, request, limits=limits, has_float=has_float, decode_error=decode_error,
                               check=check):
        report.add(index, kind, problem)
    if not isinstance(reply, dict):
        return
    error = reply.get("error") if isinstance(reply.get("error"), dict) else {}
    code = error.get("code") if reply.get("status") == "error" else "success"
    report.codes[str(code)] += 1
    if code == ErrorCode.InternalError:
        report.internal_errors += 1
    if p1_rejects:
        if code not in P1_CODES:
            report.add(index, kind, Problem("TRN-3", "a message step P1 rejects is answered InvalidRequest or "
                                            "PayloadTooLarge", "$.error.code", list(P1_CODES), code))
        for member in ("id", "command"):
            if reply.get(member) is not None:
                report.add(index, kind, Problem("TRN-13", f"a P1 rejection has a null {member}", f"$.{member}",
                                                None, reply.get(member)))


class _Sentinel:
    """A session no fuzz message touches; it must stay served (TRN-14). A server with short timeouts may
    expire it during a long run, which is no fault: it is then replaced by a new one."""

    def __init__(self, client: ProtocolClient, limits: Mapping[str, Any]) -> None:
        self.client = client
        self.expires_after_s = min(int(limits.get("idle_timeout_s", 1)), int(limits.get("absolute_timeout_s", 1)))
        self.renewed = 0
        self._create()

    def _create(self) -> None:
        created = self.client.call("session.create", {"client_id": "fuzz-sentinel"}).reply
        if not isinstance(created, dict) or created.get("status") != "success":
            raise RuntimeError(f"session.create did not succeed: {str(created)[:200]}")
        self.auth = {"session_id": created["result"]["session_id"], "token": created["result"]["token"]}
        self.created_at = self.last_ok = time.monotonic()

    def check(self, timeout_s: float) -> list[Problem]:
        for command, parameters in (("hello", {}), ("session.validate", self.auth)):
            try:
                reply = self.client.call(command, parameters, timeout_s=timeout_s).reply
            except ReplyTimeout:
                return [Problem("TRN-14", f"{command} got no reply during the fuzz run", "$", "a reply", "none")]
            if isinstance(reply, dict) and reply.get("status") == "success":
                self.last_ok = time.monotonic()
                continue
            code = (reply.get("error") or {}).get("code") if isinstance(reply, dict) else None
            may_be_gone = time.monotonic() - self.last_ok >= self.expires_after_s
            if command == "session.validate" and (code == "SessionExpired" or
                                                  (code == ErrorCode.SessionNotFound and may_be_gone)):
                self.renewed += 1
                self._create()
                continue
            return [Problem("TRN-14", f"{command} stopped succeeding during the fuzz run", "$.status", "success",
                            reply.get("status") if isinstance(reply, dict) else reply)]
        return []


def fuzz(endpoint: str, *, frames: int, seed: int = 0, timeout_s: float = 5.0, check_every: int = 500,
         curve: ClientCurve | None = None, progress: Callable[[int], None] | None = None,
         max_missing: int = 5) -> FuzzReport:
    """Send `frames` fuzz messages to `endpoint` and judge every reply (see the module docstring). The run
    stops early after `max_missing` missing replies: each costs a timeout, and the verdict is known."""
    rng = random.Random(seed)
    report = FuzzReport(seed=seed)
    context = zmq.Context()
    started = time.monotonic()
    try:
        control = ProtocolClient(endpoint, "dealer", timeout_s, context, curve=curve)
        try:
            hello = control.call("hello", {}).reply
        except ReplyTimeout as exc:
            raise RuntimeError(f"{endpoint}: no reply to hello within {timeout_s:g}s") from exc
        if not isinstance(hello, dict) or hello.get("status") != "success":
            raise RuntimeError(f"hello did not succeed: {str(hello)[:200]}")
        limits = hello["result"]["limits"]
        capabilities = frozenset(hello["result"].get("capabilities", []))
        sentinel = _Sentinel(control, limits)
        created = control.call("session.create", {"client_id": "fuzz-fuzzed"}).reply
        if not isinstance(created, dict) or created.get("status") != "success":
            raise RuntimeError(f"session.create did not succeed: {str(created)[:200]}")
        fuzzed = {"session_id": created["result"]["session_id"], "token": created["result"]["token"]}
        source = FrameSource(rng, limits, fuzzed, capabilities)
        sender = ProtocolClient(endpoint, "dealer", timeout_s, context, curve=curve)
        for index in range(frames):
            kind, body_frames = source.next()
            report.kinds[kind] += 1
            report.frames += 1
            try:
                exchange = sender.exchange_frames(body_frames, request={"fuzz": kind})
            except ReplyTimeout:
                report.missing += 1
                report.add(index, kind, Problem("TRN-3", "a message got no reply", "$", "one reply",
                                                "none within the timeout"))
                if report.missing >= max_missing:
                    break
                sender.reconnect()  # a reply that comes late must not pair with the next message
                continue
            report.replies += 1
            judge(report, index, kind, body_frames, exchange.reply, exchange.decode_error, exchange.reply_has_float,
                  limits)
            sender.transcript.entries.clear()  # a long run keeps no history
            if (index + 1) % check_every == 0 or index + 1 == frames:
                report.liveness_checks += 1
                for problem in sentinel.check(timeout_s):
                    report.add(index, "liveness", problem)
                control.transcript.entries.clear()
                if progress is not None:
                    progress(index + 1)
        sender.close()
        control.close()
    finally:
        report.elapsed_s = time.monotonic() - started
        context.destroy(linger=0)
    return report
