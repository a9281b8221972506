"""The kit's own file formats, each with a JSON Schema here and one reader: the JSON run report
(`run-report.schema.json`, written by conformance/report/json_report.py and read back by
`read_run_report`), ... Readers refuse a document that does not match its schema, so a report of
another kit or spec edition is never silently misread.

This module must never write files; writers live with the reports.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema

HERE = Path(__file__).resolve().parent


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
    check("run-report", document)
    return document
