"""`stui-conformance lint`: check that the protocol's schemas, spec, vectors, cases and bundles agree.

The checks live in `conformance/lint.py`; this module parses arguments, prints findings (each with the
file and line it is about) and maps them to the exit status: 0 no finding, 1 findings, 2 usage error.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from stui_protocol_kit.conformance.lint import CHECKS, lint
from stui_protocol_kit.conformance.output import Output
from stui_protocol_kit.protocol.schemas import schema_dir

HELP = "check that schemas, spec, vectors, cases and bundles are consistent"
DESCRIPTION = """\
Check the protocol's source for consistency: every schema valid against its meta-schema; every command
with Parameters and Result schemas and a section in spec/04-commands.md; every error code of the registry
documented in spec/12-errors.md and every error a command may answer in the registry; every vector in
spec/examples reaching its expected verdict; every MUST requirement covered by a conformance case;
requirement IDs unique and never reused; schemas/bundle/ up to date; protocol version and spec edition
in step.
"""
EPILOG = f"""\
checks: {', '.join(CHECKS)}; with --since REF also requirement-history

exit status:
  0  no finding
  1  at least one finding (each is printed as WHERE: [CHECK] MESSAGE)
  2  usage error: bad arguments, a root without schemas/ and spec/
"""


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("lint", help=HELP, description=DESCRIPTION, epilog=EPILOG,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--root", metavar="DIR",
                        help="directory holding schemas/ and spec/ (default: the kit's own, which in a source "
                             "checkout is the repository)")
    parser.add_argument("--check", dest="checks", action="append", choices=CHECKS, metavar="NAME",
                        help="run only this check (repeatable); default: all")
    parser.add_argument("--since", metavar="REF",
                        help="also compare requirement IDs with the spec at this git ref (requirement-history: "
                             "none disappeared instead of being retired, no retired ID reused)")
    parser.add_argument("--repo", metavar="PATH", help="git repository for --since (default: the root)")
    parser.add_argument("--json", action="store_true", help="one JSON object per finding (JSON Lines), no summary")
    parser.add_argument("--no-color", action="store_true", help="plain text even on a terminal")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    root = Path(args.root) if args.root else schema_dir().parent
    if not (root / "schemas").is_dir() or not (root / "spec").is_dir():
        print(f"stui-conformance lint: error: {root}: no schemas/ and spec/ directories here", file=sys.stderr)
        return 2
    checks = tuple(dict.fromkeys(args.checks)) if args.checks else CHECKS
    results = lint(root, checks, since=args.since, repo=Path(args.repo) if args.repo else None)
    checks = tuple(results)
    out = Output(no_color=args.no_color)
    total = 0
    for check, findings in results.items():
        total += len(findings)
        for finding in findings:
            if args.json:
                out.json(finding.as_dict())
            else:
                out.line((finding.where, "heading"), ": ", (f"[{check}]", "fail"), f" {finding.message}")
    if not args.json:
        failed = [name for name, findings in results.items() if findings]
        if total:
            out.line((f"{total} finding{'s' if total != 1 else ''} in {', '.join(failed)} "
                      f"({len(checks) - len(failed)} of {len(checks)} checks clean)", "fail"))
        else:
            out.line((f"{len(checks)} checks clean: {', '.join(checks)}", "ok"))
    out.flush()
    return 1 if total else 0
