"""The kit's own file formats, each with a JSON Schema here and one reader:

- the JSON run report (`run-report.schema.json`), written by conformance/report/json_report.py, read back
  by `read_run_report` here;
- the client-check report (`client-check-report.schema.json`, which shares the run report's case, problem
  and requirement definitions by `$ref`), written by conformance/client_check/report.py, read back by
  `read_client_check_report` here;
- test vectors (`vector.schema.json`, spec/examples/), read by conformance/vectors.py;
- request sequences (`sequence-step.schema.json`, one JSON Lines line), read by
  conformance/stateful/sequence.py (`from_jsonl`);
- baselines of expected non-passes (`baseline.schema.json`, YAML), read by `read_baseline` here,
  written by conformance/baseline.py.

Readers refuse a document that does not match its schema, so a malformed file - or a run report of
another `schema_version` - is never silently misread. Whether a run report of another spec edition may
be compared is its caller's decision (conformance/report/loaded.py refuses it unless asked to flag it).

This module must never write files; writers live with the reports.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import yaml
from referencing import Registry, Resource

from stui_protocol_kit.conformance.baseline import Baseline, BaselineEntry
from stui_protocol_kit.protocol.problems import quote

HERE = Path(__file__).resolve().parent


@cache
def schema(name: str) -> dict[str, Any]:
    """The JSON Schema of one kit format, e.g. `schema("run-report")`."""
    return json.loads((HERE / f"{name}.schema.json").read_text(encoding="utf-8"))


@cache
def _registry() -> Registry:
    """Every format schema by its `$id`, so one may `$ref` another (`run-report.schema.json#/$defs/Case`)."""
    resources = []
    for path in sorted(HERE.glob("*.schema.json")):
        document = json.loads(path.read_text(encoding="utf-8"))
        resources.append((document["$id"], Resource.from_contents(document)))
    return Registry().with_resources(resources)


@cache
def _validator(name: str) -> jsonschema.Draft202012Validator:
    return jsonschema.Draft202012Validator(schema(name), registry=_registry())


class FormatError(ValueError):
    """A document does not match the kit format it claims to be (the message says where and why)."""


# The run report's schema_version: its schema's `const` is the one home; the writer stamps it.
RUN_REPORT_VERSION: int = schema("run-report")["properties"]["schema_version"]["const"]


def check(name: str, document: Any) -> None:
    """Raise FormatError unless `document` matches the format's schema."""
    errors = sorted(_validator(name).iter_errors(document), key=lambda e: list(e.path))
    if errors:
        first = errors[0]
        raise FormatError(f"not a {name} document: {first.json_path}: {first.message}"[:500])


def read_run_report(path: str | Path) -> dict[str, Any]:
    """A JSON run report, checked against its schema. A report of another `schema_version` is refused
    with a message naming both versions (its members may mean something else). Errors name the file."""
    try:
        document = json.loads(Path(path).read_text(encoding="utf-8"))
    except ValueError as exc:
        raise FormatError(f"{path}: not a run-report document: not JSON: {exc}") from exc
    version = document.get("schema_version") if isinstance(document, dict) else None
    if version != RUN_REPORT_VERSION:
        raise FormatError(f"{path}: a run report of schema_version {quote(version)}; this kit reads schema_version "
                          f"{RUN_REPORT_VERSION} (re-run the suite with this kit, or read it with the kit that wrote"
                          " it)")
    try:
        check("run-report", document)
    except FormatError as exc:
        raise FormatError(f"{path}: {exc}") from exc
    return document


def read_baseline(path: str | Path) -> Baseline:
    """A baseline file (YAML), checked against its schema; an empty file is an empty baseline. A case
    listed twice is refused (which reason would count?)."""
    try:
        document = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise FormatError(f"not a baseline document: not YAML: {str(exc)[:300]}") from exc
    document = [] if document is None else document
    check("baseline", document)
    seen: set[str] = set()
    for item in document:
        if item["case"] in seen:
            raise FormatError(f"not a baseline document: case {item['case']} is listed twice")
        seen.add(item["case"])
    return Baseline(tuple(BaselineEntry(item["case"], item["reason"].strip()) for item in document), str(path))


def read_client_check_report(path: str | Path) -> dict[str, Any]:
    """A client-check JSON report, checked against its schema."""
    document = json.loads(Path(path).read_text(encoding="utf-8"))
    check("client-check-report", document)
    return document
