"""Pairs of schema directories for the diff's tests: copies of this repository's `schemas/` (and the spec
README, for the edition) in tmp_path, with edits applied to one side or both, and an independent check
of every witness the diff reports.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jsonschema_rs

from stui_protocol_kit.conformance.schema_diff.report import DiffReport, diff_sides
from stui_protocol_kit.conformance.schema_diff.sources import load_directory
from stui_protocol_kit.conformance.schema_diff.witness import message_validator
from stui_protocol_kit.protocol.schemas import SchemaRegistry
from stui_protocol_kit.protocol.validation import MessageValidator, strict_validator

ROOT = Path(__file__).resolve().parents[2]
TEST_EXAMPLES = 40  # witness search budget in tests: small and fast; the cases are built to need little

Doc = dict[str, Any]


class Pair:
    """tmp_path/old and tmp_path/new, each a repository root with schemas/ and spec/README.md."""

    def __init__(self, tmp_path: Path):
        self.root = tmp_path
        for side in ("old", "new"):
            shutil.copytree(ROOT / "schemas", tmp_path / side / "schemas", ignore=shutil.ignore_patterns("bundle"))
            (tmp_path / side / "spec").mkdir()
            shutil.copy(ROOT / "spec" / "README.md", tmp_path / side / "spec" / "README.md")

    def schemas(self, side: str) -> Path:
        return self.root / side / "schemas"

    def edit(self, rel: str, change: Callable[[Doc], Any], side: str = "new") -> Pair:
        """Apply `change` to the JSON document `rel` of `side` ("old", "new" or "both")."""
        for name in (("old", "new") if side == "both" else (side,)):
            path = self.schemas(name) / rel
            doc = json.loads(path.read_text(encoding="utf-8"))
            change(doc)
            path.write_text(json.dumps(doc, indent=2), encoding="utf-8")
        return self

    def write(self, rel: str, doc: Doc, side: str = "new") -> Pair:
        for name in (("old", "new") if side == "both" else (side,)):
            (self.schemas(name) / rel).write_text(json.dumps(doc, indent=2), encoding="utf-8")
        return self

    def delete(self, rel: str, side: str = "new") -> Pair:
        (self.schemas(side) / rel).unlink()
        return self

    def set_edition(self, edition: str, side: str = "new") -> Pair:
        path = self.root / side / "spec" / "README.md"
        text = path.read_text(encoding="utf-8")
        start = text.index("Spec edition: **") + len("Spec edition: **")
        end = text.index("**", start)
        path.write_text(text[:start] + edition + text[end:], encoding="utf-8")
        return self

    def set_version(self, version: str, side: str = "new") -> Pair:
        """The protocol version, wherever this schema set writes it (common.json `$defs/Version`, or
        inline in request.json and response.json as older sets did)."""
        request = json.loads((self.schemas(side) / "request.json").read_text(encoding="utf-8"))
        if "$ref" in request["properties"]["version"]:
            return self.edit("common.json", lambda d: d["$defs"]["Version"].__setitem__("const", version), side)
        self.edit("request.json", lambda d: d["properties"]["version"].__setitem__("const", version), side)

        def response(doc: Doc) -> None:
            for name in ("Success", "Error"):
                doc["$defs"][name]["properties"]["version"]["const"] = version

        return self.edit("response.json", response, side)

    def diff(self, **options: Any) -> DiffReport:
        options.setdefault("max_examples", TEST_EXAMPLES)
        old = load_directory(self.root / "old", label="old", description="old")
        new = load_directory(self.root / "new", label="new", description="new")
        return diff_sides(old, new, **options)


# -- edits -----------------------------------------------------------------------------------------------

SNAPSHOT = "commands/session.snapshot.json"


def params(doc: Doc) -> Doc:
    return doc["$defs"]["Parameters"]


def result(doc: Doc) -> Doc:
    return doc["$defs"]["Result"]


def set_probe(where: Callable[[Doc], Doc], schema: Any, required: bool = False) -> Callable[[Doc], None]:
    """An edit that gives the object `where(doc)` a member `probe` with `schema` (None: no member)."""

    def change(doc: Doc) -> None:
        node = where(doc)
        node.setdefault("properties", {})
        node["properties"].pop("probe", None)
        node["required"] = [r for r in node.get("required", []) if r != "probe"]
        if schema is not None:
            node["properties"]["probe"] = schema
            if required:
                node["required"].append("probe")

    return change


def probe_pair(pair: Pair, where: Callable[[Doc], Doc], old: Any, new: Any) -> Pair:
    """The session.snapshot request (where=params) or result (where=result) with an optional member
    `probe` whose schema is `old` on one side and `new` on the other."""
    pair.edit(SNAPSHOT, set_probe(where, old), "old")
    return pair.edit(SNAPSHOT, set_probe(where, new), "new")


# -- reading a report ---------------------------------------------------------------------------------------


def rule_ids(report: DiffReport, *, versions: bool = False) -> set[str]:
    return {c.rule.id for c in report.changes if versions or not c.rule.id.startswith("VERSION-")}


def change_of(report: DiffReport, rule_id: str):
    found = [c for c in report.changes if c.rule.id == rule_id]
    assert found, f"{rule_id} not reported; got {sorted(rule_ids(report, versions=True))}"
    return found[0]


def bundle_for(registry: SchemaRegistry, kind: str) -> Doc | None:
    """The registry's bundled schema of one message kind, built here independently of the diff."""
    what, _, name = kind.partition(" ")
    if what == "request":
        return registry.request_schema(name) if name in registry.commands else None
    if what == "success":
        return registry.success_schema(name) if name in registry.commands else None
    if what == "error":
        return registry.error_response_schema(name) if name in registry.error_codes else None
    return registry.component_schema("state.json#/$defs/State")


def accepted(schema: Doc, message: Any) -> bool:
    """Both validators' verdict; they must agree for a witness."""
    rich = strict_validator(schema).is_valid(message)
    fast = jsonschema_rs.validator_for(schema, validate_formats=False).is_valid(message)
    assert rich == fast, f"validators disagree on {message!r}"
    return rich


def _validator(registry: SchemaRegistry) -> MessageValidator:
    """The kit's MessageValidator for a schema set (shared with the diff's cache by content: compiling
    one per side per test is most of a test's cost; the bundle checks below stay independent)."""
    return message_validator(registry)


def assert_witnesses_hold(pair: Pair, report: DiffReport) -> int:
    """Re-check every witness of `report` against freshly loaded registries of both sides; the number
    checked. A breaking change must carry a witness for each party it breaks, unless it says why not."""
    registries = {side: SchemaRegistry(pair.schemas(side)) for side in ("old", "new")}
    validators = {side: _validator(reg) for side, reg in registries.items()}
    checked = 0
    for change in report.changes:
        if not change.rule.breaks or change.severity == "ignore":
            continue
        assert {w.breaks for w in change.witnesses} == set(change.rule.breaks), change.rule.id
        for result in change.witnesses:
            if result.witness is None:
                assert result.note, change.rule.id
                continue
            w = result.witness
            accept, reject = w.accepted_by, "new" if w.accepted_by == "old" else "old"
            direction = "request" if w.kind.startswith("request") else "response"
            schema_a = bundle_for(registries[accept], w.kind)
            assert schema_a is not None and accepted(schema_a, w.message), (change.rule.id, w.message)
            assert validators[accept].check(w.message, direction)[1] == [], (change.rule.id, w.message)
            assert validators[reject].check(w.message, direction)[1], (change.rule.id, w.message)
            schema_r = bundle_for(registries[reject], w.kind)
            if schema_r is not None and change.rule.id != "CMD-ERROR-ADDED":
                assert not accepted(schema_r, w.message), (change.rule.id, w.message)
            checked += 1
    return checked
