"""`stui-conformance diff OLD NEW`: classify every change between two versions of the schemas.

OLD and NEW are directories (a repository root with `schemas/`, or a schemas directory) or git refs
of the repository given by `--repo` (default: the current directory), read with `git archive` without
touching the work tree: `stui-conformance diff origin/main HEAD`. The engine is the package
`conformance/schema_diff/`; this module only parses arguments, reads the override file, picks the output
format and maps outcomes to exit status.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from stui_protocol_kit.conformance.output import Output
from stui_protocol_kit.conformance.schema_diff import render
from stui_protocol_kit.conformance.schema_diff.overrides import OverrideError, load_overrides
from stui_protocol_kit.conformance.schema_diff.report import FAIL_ON, diff_sides
from stui_protocol_kit.conformance.schema_diff.sources import SourceError, load_side

HELP = "classify schema changes between two versions (directories or git refs), with witness messages"
DESCRIPTION = """\
Compare two versions of the protocol's schemas message kind by message kind (request per command,
success per command, error reply per code, state document) and classify every change by direction:
breaking for old clients, breaking for old servers, compatible, or without effect. Each breaking
change is shown with a witness: a whole message one side accepts and the other rejects, checked with
jsonschema and jsonschema-rs against both sides. A breaking change also needs a new major protocol
version (schemas/request.json `version`) and spec edition (spec/README.md). The rule table, with the
spec's reason for every verdict, is docs/schema-diff.md.

OLD and NEW: an existing directory (a repository root holding schemas/, or a schemas directory) is
read as one; anything else is a git ref of --repo, read with `git archive` (the work tree is never
touched).
"""
EPILOG = """\
override file (--overrides, YAML), for a break accepted knowingly:
  overrides:
    - rule: RES-MEMBER-MADE-OPTIONAL
      severity: warning          # breaking | warning | info | ignore
      reason: "why this is accepted"          # required
      where: "success session.resume $.result*"  # optional glob over '<kind> <path>' or the location

exit status:
  0  no change at or above --fail-on (default: breaking)
  1  at least one such change (a breaking change, or the version check)
  2  usage or environment error: bad arguments, a side that is neither a readable directory nor a git
     ref, schemas that do not load, a bad override file
"""


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("diff", help=HELP, description=DESCRIPTION, epilog=EPILOG,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("old", metavar="OLD", help="directory or git ref of the old version (e.g. origin/main)")
    parser.add_argument("new", metavar="NEW", help="directory or git ref of the new version (e.g. HEAD)")
    parser.add_argument("--repo", metavar="PATH", default=".", help="git repository for refs (default: .)")
    parser.add_argument("--schemas-dir", default="schemas", metavar="DIR",
                        help="where the schemas are inside a repository (default: %(default)s)")
    parser.add_argument("--spec-dir", default="spec", metavar="DIR",
                        help="where spec/README.md (the spec edition) is (default: %(default)s)")
    parser.add_argument("--format", choices=("text", "json", "junit", "markdown"), default="text",
                        help="output on stdout (default: text; rich on a terminal, plain when piped)")
    parser.add_argument("--json", dest="format", action="store_const", const="json", help="same as --format json")
    parser.add_argument("--output", "-o", metavar="FILE", help="write the --format output to FILE instead of stdout")
    parser.add_argument("--junit-xml", metavar="FILE", help="also write a JUnit XML report to FILE")
    parser.add_argument("--fail-on", choices=FAIL_ON, default="breaking",
                        help="lowest severity that makes the exit status 1 (default: %(default)s)")
    parser.add_argument("--overrides", metavar="FILE", help="YAML file of per-rule severity overrides (see below)")
    parser.add_argument("--no-witness", action="store_true",
                        help="do not search witness messages (pattern and other-keyword changes are still decided by a "
                             "value search: the rule depends on it)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the witness search (default: %(default)s)")
    parser.add_argument("--witness-examples", type=int, default=200, metavar="N",
                        help="examples hypothesis may try per witness search (default: %(default)s)")
    parser.add_argument("--no-color", action="store_true", help="plain text even on a terminal")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    prog = "stui-conformance diff"
    if args.witness_examples < 1:
        print(f"{prog}: error: --witness-examples must be at least 1", file=sys.stderr)
        return 2
    try:
        overrides = load_overrides(args.overrides) if args.overrides else []
    except OverrideError as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return 2
    repo = Path(args.repo)
    sides = []
    try:
        for text in (args.old, args.new):
            sides.append(load_side(text, repo=repo, schemas_dir=args.schemas_dir, spec_dir=args.spec_dir))
        report = diff_sides(sides[0], sides[1], seed=args.seed, max_examples=args.witness_examples,
                            witnesses=not args.no_witness, overrides=overrides, fail_on=args.fail_on)
        if args.junit_xml:
            _write(args.junit_xml, render.junit(report))
        if args.format == "text":
            if args.output:
                with open(args.output, "w", encoding="utf-8") as stream:
                    render.text(report, Output(stream, no_color=True))
            else:
                render.text(report, Output(no_color=args.no_color))
        else:
            body = {"json": render.as_json, "junit": render.junit, "markdown": render.markdown}[args.format](report)
            if args.output:
                _write(args.output, body)
            else:
                sys.stdout.write(body)
                sys.stdout.flush()
        return report.exit_status
    except SourceError as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"{prog}: error: cannot write: {exc}", file=sys.stderr)
        return 2
    finally:
        for side in sides:
            side.close()


def _write(path: str, body: str) -> None:
    Path(path).write_text(body, encoding="utf-8")
