"""Write or check the generated schema bundles in `schemas/bundle/`.

    python -m stui_protocol_kit.protocol.bundle          # (re)write schemas/bundle/*.json
    python -m stui_protocol_kit.protocol.bundle --check  # exit 1 if any bundle is missing, stale or unexpected

The bundles are self-contained copies of the source schemas (`SchemaRegistry.bundles()`), for tools that
fetch no `$ref` (hypothesis-jsonschema, typify, quicktype, other languages' validators). This module only
serialises what the registry derives; it must never edit a bundle by hand-written rules, and never read
the bundles back as a source: `schemas/*.json` stay the only place a field list lives.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from stui_protocol_kit.protocol.schemas import SchemaRegistry


def render(document: dict[str, Any]) -> str:
    """The exact text of a bundle file: stable key order from the registry, 2-space indent, final newline,
    so regenerating an unchanged schema set is byte-identical (the check compares text)."""
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"


def expected_files(registry: SchemaRegistry | None = None) -> dict[str, str]:
    """Bundle file name -> the text it must have."""
    registry = registry or SchemaRegistry()
    return {name: render(doc) for name, doc in sorted(registry.bundles().items())}


def stale_files(directory: Path, expected: dict[str, str]) -> list[str]:
    """Names under `directory` that are missing, differ from `expected`, or are not expected at all."""
    problems = []
    for name, text in expected.items():
        path = directory / name
        if not path.is_file():
            problems.append(f"{name}: missing")
        elif path.read_text(encoding="utf-8") != text:
            problems.append(f"{name}: stale")
    if directory.is_dir():
        problems.extend(f"{p.name}: not generated from schemas/" for p in sorted(directory.glob("*.json"))
                        if p.name not in expected)
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m stui_protocol_kit.protocol.bundle",
        description="Write (or with --check, verify) the generated self-contained schemas in schemas/bundle/.",
        epilog="Exit status: 0 written / up to date, 1 --check found missing or stale bundles.",
    )
    parser.add_argument("--check", action="store_true", help="only compare; change nothing")
    args = parser.parse_args(argv)
    registry = SchemaRegistry()
    directory = registry.directory / "bundle"
    expected = expected_files(registry)
    if args.check:
        problems = stale_files(directory, expected)
        for problem in problems:
            print(f"schemas/bundle/{problem}", file=sys.stderr)
        if problems:
            print("run `python -m stui_protocol_kit.protocol.bundle` to regenerate", file=sys.stderr)
        return 1 if problems else 0
    directory.mkdir(exist_ok=True)
    for path in directory.glob("*.json"):
        if path.name not in expected:
            path.unlink()  # a bundle for a removed command or code must not linger
    for name, text in expected.items():
        path = directory / name
        if not path.is_file() or path.read_text(encoding="utf-8") != text:
            path.write_text(text, encoding="utf-8")
    print(f"{len(expected)} bundles in {directory}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
