"""The per-rule severity override file of `stui-conformance diff --overrides FILE`.

A team that accepts a break knowingly says so in a reviewed file, with a reason, instead of switching
the gate off:

    overrides:
      - rule: RES-MEMBER-MADE-OPTIONAL
        severity: warning            # breaking | warning | info | ignore
        reason: "no server ever left `fallback` out; agreed in PR #214"
        where: "success session.resume $.result.*"   # optional: a glob over "<kind> <path>" or the location

The shorter mapping form `RULE-ID: {severity: ..., reason: ...}` is read too. Every entry needs a
non-empty `reason` and a known rule ID; otherwise the file is refused (exit status 2), because a silent
typo would leave a break unguarded. An `ignore`d change is still listed in the report, as ignored.

This module only reads and matches overrides; `report.py` applies them.
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from stui_protocol_kit.conformance.schema_diff.rules import RULES

OVERRIDE_SEVERITIES = ("breaking", "warning", "info", "ignore")


class OverrideError(Exception):
    """The override file cannot be used: exit status 2."""


@dataclass(frozen=True)
class Override:
    rule: str
    severity: str
    reason: str
    where: str | None = None

    def matches(self, rule_id: str, places: list[str], location: str) -> bool:
        if rule_id != self.rule:
            return False
        if self.where is None:
            return True
        return fnmatch.fnmatchcase(location, self.where) or any(fnmatch.fnmatchcase(p, self.where) for p in places)

    def as_dict(self) -> dict[str, Any]:
        out = {"rule": self.rule, "severity": self.severity, "reason": self.reason}
        if self.where:
            out["where"] = self.where
        return out


def parse_overrides(data: Any, source: str = "overrides") -> list[Override]:
    if data is None:
        return []
    if isinstance(data, dict) and "overrides" in data:
        entries = data["overrides"]
        if not isinstance(entries, list):
            raise OverrideError(f"{source}: 'overrides' must be a list")
    elif isinstance(data, dict):
        entries = []
        for rule_id, spec in data.items():
            if not isinstance(spec, dict):
                raise OverrideError(f"{source}: {rule_id}: expected a mapping with severity and reason")
            entries.append({"rule": rule_id, **spec})
    else:
        raise OverrideError(f"{source}: expected a mapping")
    out: list[Override] = []
    for number, entry in enumerate(entries, start=1):
        where = f"{source}: entry {number}"
        if not isinstance(entry, dict):
            raise OverrideError(f"{where}: expected a mapping")
        unknown = set(entry) - {"rule", "severity", "reason", "where"}
        if unknown:
            raise OverrideError(f"{where}: unknown key(s) {', '.join(sorted(map(str, unknown)))}")
        rule_id = entry.get("rule")
        if rule_id not in RULES:
            raise OverrideError(f"{where}: unknown rule {rule_id!r} (see docs/schema-diff.md)")
        severity = entry.get("severity")
        if severity not in OVERRIDE_SEVERITIES:
            raise OverrideError(f"{where} ({rule_id}): severity must be one of {', '.join(OVERRIDE_SEVERITIES)}")
        reason = entry.get("reason")
        if not isinstance(reason, str) or not reason.strip():
            raise OverrideError(f"{where} ({rule_id}): a reason is required: say why the change is accepted")
        pattern = entry.get("where")
        if pattern is not None and not isinstance(pattern, str):
            raise OverrideError(f"{where} ({rule_id}): 'where' must be a string (a glob)")
        out.append(Override(rule_id, severity, reason.strip(), pattern))
    return out


def load_overrides(path: str | Path) -> list[Override]:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise OverrideError(f"{path}: cannot read: {exc.strerror or exc}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise OverrideError(f"{path}: not YAML: {exc}") from None
    return parse_overrides(data, str(path))
