"""The classified diff: changes grouped, witnesses attached, overrides applied, the version checked.

`diff_sides(old, new)` runs the whole pipeline:

1. the message kinds of both sides (`kinds.py`) and the registry-level changes (`registry_changes.py`);
2. every kind present on both sides compared (`compare.py`);
3. pattern and other-keyword changes decided by witness search (`witness.py`), once per group;
4. the same change seen in several kinds (a `common.json` type used by seven requests) grouped into
   one `Change` that lists every place, keyed by rule, source location and detail;
5. a witness searched for each party a breaking change breaks;
6. overrides applied (`overrides.py`): the effective severity, with the reason shown;
7. the version check: breaking changes need a new major protocol version (request.json's `version`)
   and a new major spec edition (spec/README.md); additions and removals the spec files under MINOR or
   MAJOR get VERSION-BUMP-ADVISED when the version does not move accordingly.

The exit status: 1 when a change at or above `--fail-on` (default: breaking) remains, else 0.
This module must never print; `render.py` turns a `DiffReport` into text.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from stui_protocol_kit.conformance.schema_diff.compare import RawChange, compare_kind
from stui_protocol_kit.conformance.schema_diff.kinds import message_kinds
from stui_protocol_kit.conformance.schema_diff.overrides import Override
from stui_protocol_kit.conformance.schema_diff.registry_changes import registry_changes
from stui_protocol_kit.conformance.schema_diff.rules import RULES, SEVERITIES, Rule
from stui_protocol_kit.conformance.schema_diff.sources import Side, SourceError
from stui_protocol_kit.conformance.schema_diff.witness import Sides, WitnessResult, WitnessSearch

FAIL_ON = ("breaking", "warning", "never")
MAX_KINDS_SEARCHED = 4  # per broken party: the first kinds of a group in which a witness is sought


def severity_rank(severity: str) -> int:
    return SEVERITIES.index(severity) if severity in SEVERITIES else -1  # "ignore" ranks below everything


@dataclass
class Change:
    rule: Rule
    detail: str
    location: str  # where it is written: "common.json#/$defs/Token $" or "request.json $"
    places: list[tuple[str, str]]  # (message kind, JSON path) for every kind it shows in
    facts: dict[str, Any] = field(default_factory=dict)
    witnesses: list[WitnessResult] = field(default_factory=list)
    override: Override | None = None

    @property
    def severity(self) -> str:
        return self.override.severity if self.override else self.rule.severity

    @property
    def ignored(self) -> bool:
        return self.severity == "ignore"

    def place_texts(self) -> list[str]:
        return [f"{kind} {path}".rstrip() for kind, path in self.places]

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "rule": self.rule.id, "direction": self.rule.direction, "verdict": self.rule.verdict,
            "breaks": sorted(self.rule.breaks), "severity": self.severity, "rule_severity": self.rule.severity,
            "bump": self.rule.bump, "detail": self.detail, "location": self.location,
            "places": [{"kind": kind, "path": path} for kind, path in self.places], "why": self.rule.why,
            "witnesses": [w.as_dict() for w in self.witnesses],
        }
        if self.override is not None:
            out["override"] = self.override.as_dict()
        return out


@dataclass
class DiffReport:
    old: Side
    new: Side
    changes: list[Change]
    fail_on: str = "breaking"
    duration_s: float = 0.0
    witnesses_searched: bool = True

    def counts(self) -> dict[str, int]:
        out = {severity: 0 for severity in (*SEVERITIES, "ignore")}
        for change in self.changes:
            out[change.severity] += 1
        return out

    @property
    def failed(self) -> bool:
        if self.fail_on == "never":
            return False
        limit = severity_rank(self.fail_on)
        return any(severity_rank(c.severity) >= limit for c in self.changes)

    @property
    def exit_status(self) -> int:
        return 1 if self.failed else 0

    def version_info(self) -> dict[str, Any]:
        return {"old": {"protocol": self.old.protocol_version, "edition": self.old.edition_text,
                        "source": self.old.description},
                "new": {"protocol": self.new.protocol_version, "edition": self.new.edition_text,
                        "source": self.new.description}}

    def as_dict(self) -> dict[str, Any]:
        return {
            "old": self.version_info()["old"], "new": self.version_info()["new"],
            "fail_on": self.fail_on, "exit_status": self.exit_status, "counts": self.counts(),
            "witnesses_searched": self.witnesses_searched, "duration_s": round(self.duration_s, 3),
            "changes": [c.as_dict() for c in self.changes],
        }


def _kinds_of(side: Side) -> dict[str, Any]:
    try:
        return message_kinds(side.registry)
    except (KeyError, ValueError, TypeError) as exc:  # e.g. a command file without $defs/Result
        raise SourceError(f"{side.label}: the schemas load but cannot be bundled: {type(exc).__name__}: {exc} "
                          "(`stui-conformance lint` says where)") from None


def _group_key(raw: RawChange) -> tuple:
    return (raw.rule_id, raw.origin, tuple(raw.rel_steps), raw.detail)


def diff_sides(old: Side, new: Side, *, seed: int = 0, max_examples: int = 200, witnesses: bool = True,
               overrides: list[Override] | None = None, fail_on: str = "breaking") -> DiffReport:
    started = time.monotonic()
    old_kinds, new_kinds = _kinds_of(old), _kinds_of(new)
    raws: list[RawChange] = registry_changes(old.registry, new.registry)
    versions = (old.protocol_version, new.protocol_version)
    for key, kind in new_kinds.items():
        if key in old_kinds:
            raws.extend(compare_kind(old_kinds[key], kind, versions))
    search = WitnessSearch(Sides(old_kinds, new_kinds, old.registry, new.registry, seed, max_examples))

    # Decide each witness-decided family once per group (the same pattern seen in seven kinds).
    decided: dict[tuple, tuple[str, dict[str, Any]]] = {}
    for raw in raws:
        if raw.rule_id is None:
            key = (raw.family, raw.direction, raw.origin, tuple(raw.rel_steps), raw.detail)
            if key not in decided:
                rule_id = search.decide(raw)
                decided[key] = (rule_id, {k: v for k, v in raw.facts.items() if k.endswith("_values")})
            raw.rule_id = decided[key][0]
            raw.facts.update(decided[key][1])

    groups: dict[tuple, list[RawChange]] = {}
    for raw in raws:
        groups.setdefault(_group_key(raw), []).append(raw)
    changes: list[Change] = []
    for members in groups.values():
        first = members[0]
        rule = RULES[first.rule_id]  # type: ignore[index]
        change = Change(rule, first.detail, first.location, [(m.kind, m.path if m.steps else "") for m in members],
                        dict(first.facts))
        if witnesses and rule.breaks:
            for breaks in sorted(rule.breaks):
                result = None
                for member in members[:MAX_KINDS_SEARCHED]:
                    result = search.witness(member, rule, breaks)
                    if result.witness is not None:
                        break
                if result is not None:
                    change.witnesses.append(result)
        changes.append(change)

    for change in changes:
        for override in overrides or []:
            if override.matches(change.rule.id, change.place_texts(), change.location):
                change.override = override
                break
    changes.extend(version_findings(old, new, changes, overrides or []))
    changes.sort(key=lambda c: (-severity_rank(c.severity), c.rule.id, c.location, c.detail))
    return DiffReport(old, new, changes, fail_on, time.monotonic() - started, witnesses)


def version_findings(old: Side, new: Side, changes: list[Change], overrides: list[Override]) -> list[Change]:
    """VERSION-MAJOR-REQUIRED / VERSION-BUMP-ADVISED for the changes as their effective severities say."""
    (old_major, old_minor), (new_major, new_minor) = old.protocol_tuple, new.protocol_tuple
    protocol_major = new_major > old_major
    protocol_any = (new_major, new_minor) > (old_major, old_minor)
    if old.edition is None and new.edition is None:
        edition_major = edition_any = True  # no spec beside either side: only the protocol version is checked
        edition_note = " (no spec/README.md on either side: edition not checked)"
    elif old.edition is None or new.edition is None:
        edition_major = edition_any = False
        edition_note = " (spec/README.md edition missing on one side)"
    else:
        edition_major = new.edition[0] > old.edition[0]
        edition_any = new.edition[:2] > old.edition[:2]
        edition_note = ""
    versions = (f"protocol {old.protocol_version} -> {new.protocol_version}, "
                f"spec edition {old.edition_text} -> {new.edition_text}{edition_note}")
    out: list[Change] = []
    breaking = [c for c in changes if c.severity == "breaking"]
    if breaking and not (protocol_major and edition_major):
        need = []
        if not protocol_major:
            need.append(f"protocol version {old_major + 1}.0 (schemas/request.json `version`)")
        if not edition_major:
            need.append(f"spec edition {old.edition[0] + 1 if old.edition else old_major + 1}.0.0 "
                        "(spec/README.md 'Spec edition')")
        out.append(Change(RULES["VERSION-MAJOR-REQUIRED"],
                          f"{len(breaking)} breaking change{'s' if len(breaking) != 1 else ''} but {versions}: "
                          f"bump to {' and '.join(need)}, or accept the break in an override file", "", []))
    else:
        live = [c for c in changes if c.severity not in ("ignore", "none")]
        wants_major = [c for c in live if c.rule.bump == "major" and c.severity != "breaking"]
        wants_minor = [c for c in live if c.rule.bump == "minor"]
        if wants_major and not (protocol_major and edition_major):
            ids = sorted({c.rule.id for c in wants_major})
            out.append(Change(RULES["VERSION-BUMP-ADVISED"], f"{', '.join(ids)}: the spec files these under a new "
                              f"major version, but {versions}", "", []))
        elif wants_minor and not (protocol_any and edition_any):
            ids = sorted({c.rule.id for c in wants_minor})
            out.append(Change(RULES["VERSION-BUMP-ADVISED"], f"{', '.join(ids)}: the spec files these under a new "
                              f"minor version, but {versions}", "", []))
    for finding in out:
        for override in overrides:
            if override.matches(finding.rule.id, [], finding.location):
                finding.override = override
                break
    return out
