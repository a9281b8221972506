"""Both validators on one schema: the judge of every witness the diff shows.

A value is accepted by a schema only when python-jsonschema (in the kit's strict flavour:
`protocol.validation.strict_validator`) and jsonschema-rs both accept it, rejected only when both
reject it; when they disagree the value proves nothing and is never shown as a witness.

This module must never generate values or decide what a change means.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import jsonschema_rs

from stui_protocol_kit.protocol.schemas import DIALECT
from stui_protocol_kit.protocol.validation import strict_validator


@dataclass(frozen=True)
class Verdicts:
    jsonschema: bool
    jsonschema_rs: bool

    @property
    def agreed(self) -> bool | None:
        """True both accept, False both reject, None they disagree."""
        return self.jsonschema if self.jsonschema == self.jsonschema_rs else None

    def as_dict(self) -> dict[str, bool]:
        return {"jsonschema": self.jsonschema, "jsonschema_rs": self.jsonschema_rs}


class Checker:
    """One schema compiled with both validators."""

    def __init__(self, schema: Any, defs: dict[str, Any] | None = None):
        if schema is True:
            schema = {}
        elif schema is False:
            schema = {"not": {}}
        schema = dict(schema)
        schema.setdefault("$schema", DIALECT)
        if defs and "$defs" not in schema:
            schema["$defs"] = defs  # recursive references left in an inlined tree point here
        self.schema = schema
        self._rich = strict_validator(schema)
        self._fast = jsonschema_rs.validator_for(schema, validate_formats=False)

    def verdicts(self, value: Any) -> Verdicts:
        try:
            fast = bool(self._fast.is_valid(value))
        except (ValueError, OverflowError):  # a value jsonschema-rs cannot hold (e.g. an int beyond 64 bits)
            fast = not self._rich.is_valid(value)  # forces a disagreement: such a value proves nothing
        return Verdicts(bool(self._rich.is_valid(value)), fast)

    def accepts(self, value: Any) -> bool | None:
        return self.verdicts(value).agreed


@lru_cache(maxsize=4096)
def _checker(text: str, defs_text: str) -> Checker:
    return Checker(json.loads(text), json.loads(defs_text) or None)


def checker(schema: Any, defs: dict[str, Any] | None = None) -> Checker:
    """A cached Checker for `schema` (schemas are compared by their JSON text)."""
    return _checker(json.dumps(schema, sort_keys=True), json.dumps(defs or {}, sort_keys=True))
