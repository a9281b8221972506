"""`stui-conformance`: the command-line entry point of the conformance kit.

Verbs are modules in `conformance/verbs/`, listed in `VERBS` below: each exposes `register(subparsers)`,
which adds its sub-parser and binds `handler=run`, and `run(args) -> int`. Adding a verb is one module
and one line here. This module owns argument parsing and the process exit status; it must never hold
a verb's logic, and verbs must never call `sys.exit` themselves.

Exit status conventions shared by every verb: 0 success, 1 the thing checked is not conformant,
2 usage error (bad arguments, unreadable input). Each verb's `--help` states its own meaning.
"""

from __future__ import annotations

import argparse
import os
import sys
from types import ModuleType

from stui_protocol_kit.conformance.verbs import (
    client_check_verb,
    diff_verb,
    fuzz_verb,
    keygen_verb,
    lint_verb,
    proxy_verb,
    replay_verb,
    report_verb,
    run_verb,
    validate_verb,
)
from stui_protocol_kit.protocol.command_line import Parser, add_version

# The verbs, in the order `--help` lists them.
VERBS: list[ModuleType] = [
    validate_verb, run_verb, report_verb, replay_verb, client_check_verb, proxy_verb, diff_verb, lint_verb,
    fuzz_verb, keygen_verb,
]

EPILOG = """\
exit status (every verb): 0 success, 1 something checked is not conformant, 2 usage error.
`stui-conformance VERB --help` says what each means for that verb.
"""


def build_parser() -> Parser:
    parser = Parser(
        prog="stui-conformance",
        description="STUI session protocol v1 conformance kit.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_version(parser)
    subparsers = parser.add_subparsers(dest="verb", metavar="VERB", required=True)
    for verb in VERBS:
        verb.register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Parse `argv` (default: sys.argv[1:]), run the verb, return its exit status."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:
        # argparse exits 2 on bad arguments and 0 after --help; return it so in-process callers get an int.
        return exc.code if isinstance(exc.code, int) else 2
    try:
        return int(args.handler(args))
    except BrokenPipeError:
        # `stui-conformance validate big.jsonl | head` closed our stdout. Point stdout at /dev/null so
        # the interpreter's final flush does not raise again, and report "not all valid" as unknown -> 1.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1


if __name__ == "__main__":
    sys.exit(main())
