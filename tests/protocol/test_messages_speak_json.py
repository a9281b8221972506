"""Violation messages quote values as JSON - `true`, `null`, `"x"`, `{"session_id": ...}` - never with
Python's repr (`True`, `None`, `'x'`, `{'session_id': ...}`): their reader is a client developer looking
at a JSON message, in a report, a reply's error message or `validate`'s output."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from stui_protocol_kit.conformance.strategies import mutate
from stui_protocol_kit.protocol.schemas import registry
from stui_protocol_kit.protocol.validation import validator

ROOT = Path(__file__).resolve().parents[2]
# Python spellings: a quoted key or string in single quotes, the three constants as words.
PYTHON = re.compile(r"\bTrue\b|\bFalse\b|\bNone\b|\{'|\['|'[^'\s]*'[:,\]}]|'[^']*' (is|was|does)|\(\s*'")

ENVELOPE = {"id": "r-1", "version": "1.0", "command": "session.validate",
            "parameters": {"session_id": "S" * 22, "token": "T" * 43}}


def _request(**parameters: Any) -> dict[str, Any]:
    return {**ENVELOPE, "parameters": {**ENVELOPE["parameters"], **parameters}}


REQUESTS = [
    _request(session_id=True), _request(session_id=None), _request(session_id=["a", None]),
    _request(session_id={"session_id": False}), _request(extra={"a": None}), _request(token=1.5),
    {**ENVELOPE, "id": None}, {**ENVELOPE, "id": {"x": True}}, {**ENVELOPE, "version": "2.0"},
    {**ENVELOPE, "command": "session.validat"}, {**ENVELOPE, "parameters": None}, {"id": "x"},
    {**ENVELOPE, "command": "session.create", "parameters": {"client_id": "c", "mode": "turbo"}},
]
RESPONSES = [
    {"id": "r", "command": "hello", "status": "success", "version": "1.0", "timestamp": "2026-01-01T00:00:00Z",
     "result": {"protocol_versions": ["1.0"], "server": {"name": None, "version": True}, "capabilities": [],
                "limits": {}}},
    {"id": "r", "command": "hello", "status": "ok"},
    {"id": "r", "command": "session.validate", "status": "error", "version": "1.0",
     "timestamp": "2026-01-01T00:00:00Z", "error": {"code": "Nope", "message": "m", "details": {"x": None}}},
    {"id": "r", "command": "session.validate", "status": "error", "version": "1.0",
     "timestamp": "2026-01-01T00:00:00Z", "error": {"code": "InvalidToken", "message": False}},
]


def _messages_of(kind: str, message: Any) -> list[str]:
    check = validator()
    if kind == "request":
        verdict = check.check_request(message)
        return [verdict.message or "", *(v.message for v in verdict.violations)]
    return [v.message for v in check.check_response(message)]


def _vectors() -> list[tuple[str, Any]]:
    found = []
    for path in sorted((ROOT / "spec" / "examples").glob("*/invalid/*.json")):
        vector = json.loads(path.read_text(encoding="utf-8"))
        if vector.get("kind") in ("request", "response"):
            found.append((vector["kind"], vector["message"]))
    return found


@pytest.mark.parametrize(("kind", "message"), [("request", m) for m in REQUESTS] + [("response", m) for m in RESPONSES])
def test_violation_messages_quote_values_as_json(kind: str, message: Any) -> None:
    texts = [t for t in _messages_of(kind, message) if t]
    assert texts, "the message was meant to be invalid"
    python = [t for t in texts if PYTHON.search(t)]
    assert not python, python


def test_every_invalid_vector_and_mutation_is_reported_in_json_notation() -> None:
    python = []
    cases = _vectors()
    assert len(cases) > 50
    valid_requests = [json.loads(p.read_text(encoding="utf-8"))["message"]
                      for p in sorted((ROOT / "spec" / "examples" / "requests" / "valid").glob("*.json"))]
    assert {m["command"] for m in valid_requests} == set(registry().commands)
    for valid in valid_requests:
        for family in range(40):
            bad = mutate(valid, family, kind=family)
            if bad is not None:
                cases.append(("request", bad.message))
                if PYTHON.search(bad.mutation):
                    python.append(bad.mutation)
    for kind, message in cases:
        python.extend(t for t in _messages_of(kind, message) if t and PYTHON.search(t))
    assert not python, python[:10]
