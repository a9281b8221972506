"""Faulty variants of the reference engine that only the generated/stateful cases are meant to catch.

Run as a script: `python faulty_engines.py FAULT [reference server CLI arguments]`. Each fault is a
subclass of `stui_protocol_kit.reference_server.engine.Engine` that changes one behaviour, handed to
the reference server's own start-up (`cli.main(engine_factory=...)`), so the faulty server is served
over real ZeroMQ like any target. Faults:

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


class RevisionSkip(Engine):
    def _snapshot(self, session: Any, call: Any) -> bytes:
        try:
            return super()._snapshot(session, call)
        except engine_module._Failure as failure:
            # Only a conflict with an expected_revision *ahead* of the current one (a client that believes
            # in a snapshot the server never made) corrupts the counter: a narrow sequence.
            if failure.code == "RevisionConflict" and call.parameters.get("expected_revision", -1) > session.revision:
                session.head_revision += 1  # the next successful snapshot skips a revision number
            raise


class WorkspaceLeak(Engine):
    def _run_code(self, session: Any, code: str) -> Any:
        shared: dict[str, Any] = {}
        for other in self.sessions.live.values():
            if other is not session and other.variables:
                shared.update(other.variables)
        own = session.variables
        merged = {**shared, **own}
        session.variables = dict(merged)
        try:
            return super()._run_code(session, code)
        finally:
            # keep the session's own names and what this code assigned; drop what was only borrowed
            session.variables = {k: v for k, v in session.variables.items()
                                 if k in own or k not in shared or v is not merged[k]}


class LongId(Engine):
    def _session_scoped(self, command: str, request_id: str, parameters: dict[str, Any], now: float,
                        peer: str) -> Any:
        if len(request_id) == 128:
            return self._error_reply(
                request_id, command, now, engine_module.ErrorCode.InvalidRequest, "id too long",
                {"reason": "schema", "violations": [{"path": "$.id", "message": "too long", "rule": "maxLength"}]},
            )
        return super()._session_scoped(command, request_id, parameters, now, peer)


FAULTS: dict[str, type[Engine]] = {"revision-skip": RevisionSkip, "workspace-leak": WorkspaceLeak, "long-id": LongId}


if __name__ == "__main__":
    sys.exit(main(sys.argv[2:], engine_factory=FAULTS[sys.argv[1]]))
