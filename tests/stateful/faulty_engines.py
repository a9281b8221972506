"""Faulty variants of the reference engine that only the generated/stateful cases are meant to catch.

Run as a script: `python faulty_engines.py FAULT [reference server CLI arguments]`. It patches one
behaviour of `stui_protocol_kit.reference_server.engine.Engine` and then runs the reference server's CLI, so the faulty
server is served over real ZeroMQ like any target. Faults:

- `revision-skip`: after a RevisionConflict whose expected_revision is ahead of the current one, the
  next successful snapshot of that session skips a revision number (SNP-1) - only a sequence
  conflict-ahead-then-snapshot shows it.
- `workspace-leak`: an evaluation that reads a name unbound in its session finds it in any other
  session's workspace (CON-4).
- `long-id`: a session-scoped request whose id is exactly 128 characters (valid: 1..128) is answered
  InvalidRequest (ENV-1) - hand-written cases use long ids only with hello.

This module must never be imported by the suite: it exists only for the tests.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from stui_protocol_kit.reference_server import engine as engine_module  # noqa: E402
from stui_protocol_kit.reference_server.cli import main  # noqa: E402

Engine = engine_module.Engine
FAULTS = ("revision-skip", "workspace-leak", "long-id")


def revision_skip() -> None:
    original = Engine._snapshot

    def snapshot(self: Any, session: Any, call: Any) -> bytes:
        try:
            return original(self, session, call)
        except engine_module._Failure as failure:
            # Only a conflict with an expected_revision *ahead* of the current one (a client that believes
            # in a snapshot the server never made) corrupts the counter: a narrow sequence.
            if failure.code == "RevisionConflict" and call.parameters.get("expected_revision", -1) > session.revision:
                session.head_revision += 1  # the next successful snapshot skips a revision number
            raise

    Engine._snapshot = snapshot


def workspace_leak() -> None:
    original = Engine._run_code

    def run_code(self: Any, session: Any, code: str) -> Any:
        shared: dict[str, Any] = {}
        for other in self.sessions.live.values():
            if other is not session and other.variables:
                shared.update(other.variables)
        own = session.variables
        merged = {**shared, **own}
        session.variables = dict(merged)
        try:
            return original(self, session, code)
        finally:
            # keep the session's own names and what this code assigned; drop what was only borrowed
            session.variables = {k: v for k, v in session.variables.items()
                                 if k in own or k not in shared or v is not merged[k]}

    Engine._run_code = run_code


def long_id() -> None:
    original = Engine._session_scoped

    def session_scoped(self: Any, command: str, request_id: str, parameters: dict[str, Any], now: float,
                       peer: str) -> Any:
        if len(request_id) == 128:
            return self._error_reply(
                request_id, command, now, "InvalidRequest", "id too long",
                {"reason": "schema", "violations": [{"path": "$.id", "message": "too long", "rule": "maxLength"}]},
            )
        return original(self, command, request_id, parameters, now, peer)

    Engine._session_scoped = session_scoped


if __name__ == "__main__":
    fault = sys.argv[1]
    {"revision-skip": revision_skip, "workspace-leak": workspace_leak, "long-id": long_id}[fault]()
    sys.exit(main(sys.argv[2:]))
