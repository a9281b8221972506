"""Typed problems: one way a message or an exchange breaks the spec, as data.

Every check of the kit - the schema validator, the reply checks, the conformance cases' verifiers, the
stateful model, client-check and the proxy - reports what it found as `Problem`s, the way
python-jsonschema reports `ValidationError`s: which requirement is broken, where (a JSONPath into the
message concerned), what the spec expected there and what came instead. Reports render them; the
requirement matrix marks a requirement FAILED only when a problem names it.

This module must never decide whether something is a problem (checks do) and must never hold a secret:
`actual` and `expected` are set by checks that have already redacted tokens.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

_MISSING = object()


@dataclass(frozen=True)
class Problem:
    """One broken requirement.

    `requirement` is always a requirement ID of the spec (e.g. "ENV-3"); `path` is a JSONPath into the
    message named by `subject` ("reply", "request", or "sequence" for a stateful finding); `expected` and
    `actual` are JSON values or short texts; `rule` names the check that found it (a schema keyword such
    as "required", or a check such as "echo-id")."""

    requirement: str
    message: str
    path: str = "$"
    expected: Any = None
    actual: Any = None
    rule: str = ""
    subject: str = "reply"

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"requirement": self.requirement, "path": self.path, "message": self.message}
        if self.expected is not None:
            out["expected"] = self.expected
        if self.actual is not None:
            out["actual"] = self.actual
        if self.rule:
            out["rule"] = self.rule
        out["subject"] = self.subject
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Problem:
        return cls(data["requirement"], data["message"], data.get("path", "$"), data.get("expected"),
                   data.get("actual"), data.get("rule", ""), data.get("subject", "reply"))


def quote(value: Any, limit: int = 200) -> str:
    """A value in JSON notation with strings quoted (`"session.snapshop"`, `true`, `null`), shortened: for
    messages that name a value inside a sentence. Never Python's repr (`'x'`, `True`, `None`)."""
    text = json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def show(value: Any, limit: int = 200) -> str:
    """A value as the reports print it: JSON (`true`, `null`, `{"a": 1}`), shortened, never Python's repr."""
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= limit else text[: limit - 3] + "..."
