"""Deliberately faulty servers: the reference engine with exactly one fault, served over real ZeroMQ.

Run as a script: `python tests/faulty/server.py --fault NAME [reference server CLI arguments]`. Each
fault rewrites requests on their way into the reference engine and/or replies on their way out (or,
for start-up faults, the data dir), so every fault is one small, readable function. The faulty engine
and transport are handed to the reference server's own start-up (`cli.main(engine_factory=...,
transport_factory=...)`), so everything but the fault - framing, connection tracking, housekeeping -
is the reference server's. The conformance suite must fail on the cases listed for the fault in
tests/faulty/test_faulty_servers.py.

This module must never be imported by the suite: it exists only for the tests.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from stui_protocol_kit.protocol.framing import Envelope  # noqa: E402
from stui_protocol_kit.reference_server import cli  # noqa: E402
from stui_protocol_kit.reference_server.engine import DEFERRED, PENDING, Engine, Reply  # noqa: E402
from stui_protocol_kit.reference_server.transport import RouterTransport  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from semantic import SEMANTIC  # noqa: E402

Message = dict[str, Any]
SILENT = b""  # the faulty engine's way of saying "send nothing"


class FaultyEngine(Engine):
    """The reference engine plus two hooks: `before(request) -> request` and `after(request, reply)
    -> reply | None` (None: send nothing). Bodies that are not JSON objects pass through untouched
    unless `raw` handles them."""

    before: Callable[[FaultyEngine, Message], Message] = staticmethod(lambda _e, m: m)  # type: ignore[assignment]
    after: Callable[[FaultyEngine, Message | None, Message], Message | None] = staticmethod(
        lambda _e, _q, r: r)  # type: ignore[assignment]
    raw: Callable[[FaultyEngine, list[bytes]], bytes | None] = staticmethod(lambda _e, _f: None)  # type: ignore[assignment]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.memory: dict[str, Any] = {}

    def process(self, body_frames: list[bytes], peer: str = "") -> Reply:
        self.peer = peer  # the connection, for faults that key by it
        special = type(self).raw(self, body_frames)
        if special is not None:
            return Reply(special, None, None, "faulty")
        request: Message | None = None
        if len(body_frames) == 1:
            try:
                decoded = json.loads(body_frames[0])
                request = decoded if isinstance(decoded, dict) else None
            except (ValueError, RecursionError):  # RecursionError: deep nesting is the engine's to answer
                request = None
        if request is not None and isinstance(request.get("parameters"), dict):
            # Re-encode only when the fault changed something: re-encoding would also drop duplicate
            # keys and NaN spellings that the engine must see as sent.
            original = json.dumps(request)
            try:
                request = type(self).before(self, request)
            except (KeyError, TypeError, AttributeError):
                # A fault hook meets input it was not written for (generated messages): the request
                # goes in unchanged, so each faulty server has its one fault and never a crash besides.
                request = json.loads(original)
            if json.dumps(request) != original:
                body_frames = [json.dumps(request).encode()]
        answered = super().process(body_frames, peer)
        if answered.outcome == PENDING:  # a snapshot's reply comes from finish_commits, faulted there
            self.memory.setdefault("committing", {})[answered.ticket] = request
        if answered.outcome in (PENDING, DEFERRED):
            return answered
        return self._faulted(request, answered)

    def finish_commits(self) -> list[Reply]:
        committing = self.memory.get("committing", {})
        return [self._faulted(committing.pop(reply.ticket, None), reply) for reply in super().finish_commits()]

    def _faulted(self, request: Message | None, answered: Reply) -> Reply:
        out = type(self).after(self, request, json.loads(answered.body))
        body = SILENT if out is None else json.dumps(out).encode()
        return Reply(body, answered.command, answered.session_id, answered.outcome, answered.ticket)


class FaultyTransport(RouterTransport):
    """The reference transport, except that it sends nothing when the engine answers SILENT (the
    `silent-on-bad-json` fault). Its serving loop, framing and connection tracking are the reference's."""

    def _send(self, envelope: Envelope, body: bytes) -> None:
        if body != SILENT:
            super()._send(envelope, body)


def _ok(reply: Message, command: str) -> bool:
    return reply.get("status") == "success" and reply.get("command") == command


# -- the faults: name -> (before, after, raw, start-up hook) -----------------------------------------

def accepts_wrong_token_before(engine: FaultyEngine, m: Message) -> Message:
    tokens = engine.memory.setdefault("tokens", {})
    sid = m["parameters"].get("session_id")
    if isinstance(sid, str) and sid in tokens and "token" in m["parameters"]:
        m["parameters"]["token"] = tokens[sid]
    return m


def accepts_wrong_token_after(engine: FaultyEngine, _q: Message | None, r: Message) -> Message:
    if _ok(r, "session.create"):
        engine.memory.setdefault("tokens", {})[r["result"]["session_id"]] = r["result"]["token"]
    return r


def reuses_revision(_e: FaultyEngine, _q: Message | None, r: Message) -> Message:
    if _ok(r, "session.snapshot"):
        r["result"]["revision"] = min(r["result"]["revision"], 1)
    return r


def mislabels_closed(_e: FaultyEngine, _q: Message | None, r: Message) -> Message:
    error = r.get("error") or {}
    if error.get("code") == "SessionClosed":
        r["error"] = {"code": "SessionExpired", "message": "session expired",
                      "details": {"expired_at": error["details"]["closed_at"]}}
    return r


def silent_on_bad_json(_e: FaultyEngine, frames: list[bytes]) -> bytes | None:
    if len(frames) == 1:
        try:
            json.loads(frames[0])
        except (ValueError, UnicodeDecodeError):
            return SILENT
        except RecursionError:
            return None
    return None


def drops_result_field(_e: FaultyEngine, _q: Message | None, r: Message) -> Message:
    if _ok(r, "session.validate"):
        r["result"].pop("attached_clients", None)
    return r


def integers_as_floats(_e: FaultyEngine, _q: Message | None, r: Message) -> Message:
    if _ok(r, "hello"):
        r["result"]["limits"] = {k: float(v) for k, v in r["result"]["limits"].items()}
    return r


def echoes_wrong_id(_e: FaultyEngine, q: Message | None, r: Message) -> Message:
    if r.get("status") == "error" and isinstance(r.get("id"), str):
        r["id"] = r["id"] + "-x"
    return r


def leaks_wrong_token_details(engine: FaultyEngine, q: Message | None, r: Message) -> Message:
    if (r.get("error") or {}).get("code") == "InvalidToken":
        r["error"]["details"] = {"hint": "session is active"}
    return r


def executes_retry_twice(engine: FaultyEngine, m: Message) -> Message:
    if "session_id" in m["parameters"] and isinstance(m.get("id"), str):
        count = engine.memory.setdefault("count", 0) + 1
        engine.memory["count"] = count
        engine.memory.setdefault("ids", {})[f"{m['id']}#{count}"[:128]] = m["id"]
        m["id"] = f"{m['id']}#{count}"[:128]
    return m


def executes_retry_twice_after(engine: FaultyEngine, _q: Message | None, r: Message) -> Message:
    if isinstance(r.get("id"), str):
        r["id"] = engine.memory.get("ids", {}).get(r["id"], r["id"])
    return r


def ignores_expected_revision(_e: FaultyEngine, m: Message) -> Message:
    if m.get("command") == "session.snapshot" and isinstance(m["parameters"].get("expected_revision"), int):
        m["parameters"].pop("expected_revision")
    return m


def close_not_final(engine: FaultyEngine, m: Message) -> Message:
    if m.get("command") == "session.close":
        m["command"] = "session.validate"  # answered below as if it had closed; nothing closes
        engine.memory.setdefault("closing", set()).add(m.get("id"))
    return m


def close_not_final_after(engine: FaultyEngine, q: Message | None, r: Message) -> Message:
    if q is None or q.get("id") not in engine.memory.get("closing", set()) or q.get("command") != "session.validate":
        return r
    r["command"] = "session.close"
    if r.get("status") == "success":
        r["result"] = {"session_id": r["result"]["session_id"], "closed": True}
    return r


def frames_first_only(engine: FaultyEngine, frames: list[bytes]) -> bytes | None:
    if len(frames) > 1:
        return Engine.handle(engine, frames[:1])
    return None


def attached_always_one(_e: FaultyEngine, _q: Message | None, r: Message) -> Message:
    if _ok(r, "session.validate"):
        r["result"]["attached_clients"] = 1
    return r


def evaluate_wrong_class(_e: FaultyEngine, _q: Message | None, r: Message) -> Message:
    if _ok(r, "evaluate") and r["result"]["class"] == "LargePositiveInteger":
        r["result"]["class"] = "SmallInteger"
    return r


def inspect_reuses_ids(engine: FaultyEngine, q: Message | None, r: Message) -> Message:
    if _ok(r, "inspect"):
        r["result"]["object_id"] = "obj-1"
    return r


def wrong_supported_versions(_e: FaultyEngine, _q: Message | None, r: Message) -> Message:
    if (r.get("error") or {}).get("code") == "UnsupportedVersion":
        r["error"]["details"]["supported_versions"] = ["1.0", "1.1"]
    return r


def nulls_as_absent(_e: FaultyEngine, m: Message) -> Message:
    m["parameters"] = {k: v for k, v in m["parameters"].items() if v is not None}
    return m


def resume_always_durable(_e: FaultyEngine, _q: Message | None, r: Message) -> Message:
    if _ok(r, "session.resume"):
        r["result"]["source"] = "durable"
    return r


def version_checked_late(_e: FaultyEngine, q: Message | None, r: Message) -> Message:
    envelope = {"id", "version", "command", "parameters"}
    if (r.get("error") or {}).get("code") == "UnsupportedVersion" and q is not None and set(q) != envelope:
        r["error"] = {"code": "InvalidRequest", "message": "bad envelope", "details": {"reason": "schema"}}
    return r


def create_expiry_wrong(_e: FaultyEngine, _q: Message | None, r: Message) -> Message:
    if _ok(r, "session.create"):
        r["result"]["expires_at"] = r["result"]["created_at"]
    return r


def replays_create(engine: FaultyEngine, q: Message | None, r: Message) -> Message:
    """1.0.1's create replay: a repeat on the same connection (routing id), client_id and id gets the
    original reply, token included - the takeover of issue 10."""
    if _ok(r, "session.create") and q is not None:
        key = (engine.peer, q["parameters"]["client_id"], q["id"])
        return engine.memory.setdefault("creates", {}).setdefault(key, r)
    return r


def drops_durable_under_pressure(engine: FaultyEngine, m: Message) -> Message:
    """A byte-bounded cache that drops snapshot/close replies too once evaluate replies exceed
    retry_cache_bytes: the retry then executes again (renamed so the engine's cache misses)."""
    if m.get("command") in ("session.snapshot", "session.close") and isinstance(m.get("id"), str):
        seen = engine.memory.setdefault("durable_ids", {})
        if m["id"] in seen and engine.memory.get("pressure", 0) - seen[m["id"]] > engine.config.retry_cache_bytes:
            m["id"] = m["id"] + "#again"
        seen.setdefault(m["id"], engine.memory.get("pressure", 0))
    return m


def drops_durable_under_pressure_after(engine: FaultyEngine, q: Message | None, r: Message) -> Message:
    if isinstance(r.get("id"), str) and r["id"].endswith("#again"):
        r["id"] = r["id"][: -len("#again")]
    if _ok(r, "evaluate"):
        engine.memory["pressure"] = engine.memory.get("pressure", 0) + len(json.dumps(r))
    return r


def dies_on_close(_engine: FaultyEngine, q: Message | None, r: Message) -> Message:
    """The process ends without replying to the first session.close: a crash, as the suite sees it."""
    if q is not None and q.get("command") == "session.close":
        os._exit(3)
    return r


FAULTS: dict[str, dict[str, Any]] = {
    "accepts-wrong-token": {"before": accepts_wrong_token_before, "after": accepts_wrong_token_after},
    "loses-state-on-restart": {"wipe": True},
    "reuses-revision": {"after": reuses_revision},
    "mislabels-closed": {"after": mislabels_closed},
    "silent-on-bad-json": {"raw": silent_on_bad_json},
    "drops-result-field": {"after": drops_result_field},
    "integers-as-floats": {"after": integers_as_floats},
    "echoes-wrong-id": {"after": echoes_wrong_id},
    "leaks-wrong-token-details": {"after": leaks_wrong_token_details},
    "executes-retry-twice": {"before": executes_retry_twice, "after": executes_retry_twice_after},
    "ignores-expected-revision": {"before": ignores_expected_revision},
    "close-not-final": {"before": close_not_final, "after": close_not_final_after},
    "never-expires": {"never_expire": True},
    "accepts-extra-frames": {"raw": frames_first_only},
    "attached-always-one": {"after": attached_always_one},
    "evaluate-wrong-class": {"after": evaluate_wrong_class},
    "inspect-reuses-ids": {"after": inspect_reuses_ids},
    "wrong-supported-versions": {"after": wrong_supported_versions},
    "nulls-as-absent": {"before": nulls_as_absent},
    "resume-always-durable": {"after": resume_always_durable},
    "version-checked-late": {"after": version_checked_late},
    "create-expiry-wrong": {"after": create_expiry_wrong},
    "dies-on-close": {"after": dies_on_close},
    "replays-create": {"after": replays_create},
    "ignores-max-sessions": {"uncapped": True, "argv": ["--max-sessions", "40"]},
    "drops-durable-under-pressure": {"before": drops_durable_under_pressure,
                                     "after": drops_durable_under_pressure_after},
    **SEMANTIC,  # small patches of the reference server's logic (tests/faulty/semantic.py)
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--fault", required=True, choices=sorted(FAULTS))
    args, rest = parser.parse_known_args(argv)
    fault = FAULTS[args.fault]
    if fault.get("patch"):
        fault["patch"]()  # a semantic fault: one reference-server class changed, in this process only
    if fault.get("wipe"):
        # Each start is a fresh store: acknowledged sessions vanish across a restart.
        data_dir = rest[rest.index("--data-dir") + 1]
        shutil.rmtree(data_dir, ignore_errors=True)
    rest = [*rest, *fault.get("argv", [])]
    attrs = {key: staticmethod(fault[key]) for key in ("before", "after", "raw") if key in fault}
    base = NeverExpiringEngine if fault.get("never_expire") else UncappedEngine if fault.get("uncapped") \
        else FaultyEngine
    bases = (fault["engine"], base) if fault.get("engine") else (base,)
    engine_class = type("Faulty", bases, attrs)
    transport = type("FaultyTransport", (fault["transport"], FaultyTransport), {}) if fault.get("transport") \
        else FaultyTransport
    return cli.main(rest, engine_factory=engine_class, transport_factory=transport)


class NeverExpiringEngine(FaultyEngine):
    """Announces the configured timeouts but runs with 100,000 s ones (the `never-expires` fault)."""

    def __init__(self, config: Any, *args: Any, **kwargs: Any) -> None:
        from dataclasses import replace

        announced = config.limits()
        super().__init__(replace(config, idle_timeout_s=100_000, absolute_timeout_s=100_000), *args, **kwargs)
        self._hello_result["limits"] = announced  # announce the short timeouts anyway


class UncappedEngine(FaultyEngine):
    """Announces the configured max_sessions but never enforces it (the `ignores-max-sessions` fault)."""

    def __init__(self, config: Any, *args: Any, **kwargs: Any) -> None:
        from dataclasses import replace

        announced = config.limits()
        super().__init__(replace(config, max_sessions=10**9), *args, **kwargs)
        self._hello_result["limits"] = announced


if __name__ == "__main__":
    sys.exit(main())
