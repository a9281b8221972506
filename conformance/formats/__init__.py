"""The kit's own file formats, each with a JSON Schema here and one reader:

- the JSON run report (`run-report.schema.json`), written by conformance/report/json_report.py, read back
  by `read_run_report` here;
- test vectors (`vector.schema.json`, spec/examples/), read by conformance/vectors.py;
- request sequences (`sequence-step.schema.json`, one JSON Lines line), read by
  conformance/stateful/sequence.py (`from_jsonl`).

Readers refuse a document that does not match its schema, so a malformed file - or a report of another
kit or spec edition - is never silently misread.

This module must never write files; writers live with the reports.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema

HERE = Path(__file__).resolve().parent
RUN_REPORT_VERSION = 2  # the run report's schema_version (its schema's `const`); the writer stamps it


@cache
def schema(name: str) -> dict[str, Any]:
    """The JSON Schema of one kit format, e.g. `schema("run-report")`."""
    return json.loads((HERE / f"{name}.schema.json").read_text(encoding="utf-8"))


class FormatError(ValueError):
    """A document does not match the kit format it claims to be (the message says where and why)."""


def check(name: str, document: Any) -> None:
    """Raise FormatError unless `document` matches the format's schema."""
    validator = jsonschema.Draft202012Validator(schema(name))
    errors = sorted(validator.iter_errors(document), key=lambda e: list(e.path))
    if errors:
        first = errors[0]
        raise FormatError(f"not a {name} document: {first.json_path}: {first.message}"[:500])


def read_run_report(path: str | Path) -> dict[str, Any]:
    """A JSON run report, checked against its schema."""
    document = json.loads(Path(path).read_text(encoding="utf-8"))
    version = document.get("schema_version") if isinstance(document, dict) else None
    if version != RUN_REPORT_VERSION:
        raise FormatError(f"{path}: a run report of schema_version {version!r}; this kit reads schema_version "
                          f"{RUN_REPORT_VERSION} (re-run the suite with this kit, or read it with the kit that wrote"
                          " it)")
    check("run-report", document)
    return document
