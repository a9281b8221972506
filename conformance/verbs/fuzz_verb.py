"""`stui-conformance fuzz`: the fuzz profile (conformance/fuzz.py) against a target or the embedded server.

This module parses arguments, starts the embedded reference server when no --target is given, prints
the summary (and --json), and maps the result to the exit status: 0 every message answered correctly,
1 a problem or a missing reply, 2 usage error or unreachable target.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import TYPE_CHECKING, Any

from stui_protocol_kit.conformance.hypothesis_storage import hypothesis_storage
from stui_protocol_kit.conformance.target import EmbeddedServer, TargetUnavailable
from stui_protocol_kit.conformance.verbs import curve_options
from stui_protocol_kit.protocol.curve import CurveKeyError
from stui_protocol_kit.protocol.endpoints import endpoint_arg

if TYPE_CHECKING:
    from stui_protocol_kit.conformance.fuzz import FuzzReport

HELP = "send N hostile messages (seeded) and check each is answered exactly once, correctly"
EPILOG = """\
Every message must get one reply that passes the checks every reply gets; a message step P1 rejects
must be answered InvalidRequest or PayloadTooLarge with null id and command (TRN-13); hello and a
sentinel session stay served (TRN-14). InternalError replies are counted, not judged.

exit status: 0 all answered correctly, 1 a problem or a missing reply, 2 usage error or unreachable target
"""


def register(subparsers: Any) -> None:
    p = subparsers.add_parser("fuzz", help=HELP, description=HELP, epilog=EPILOG,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--target", metavar="ADDR", type=endpoint_arg,
                   help="ZeroMQ endpoint of the server, tcp://HOST:PORT or ipc://PATH (default: embedded reference)")
    p.add_argument("--frames", type=int, default=10_000, metavar="N", help="messages to send (default %(default)s)")
    p.add_argument("--seed", type=int, default=0, help="seed of the message mix (default %(default)s)")
    p.add_argument("--timeout", dest="timeout_s", type=float, default=5.0, metavar="S",
                   help="per-reply timeout (default %(default)s)")
    p.add_argument("--check-every", type=int, default=500, metavar="K",
                   help="hello and a sentinel session.validate every K messages (default %(default)s)")
    p.add_argument("--json", dest="json_file", metavar="FILE", help="write the summary as JSON")
    curve_options.add_client_options(p)
    p.set_defaults(handler=run)


def _print(report: FuzzReport) -> None:
    rate = report.frames / report.elapsed_s if report.elapsed_s else 0.0
    print(f"fuzz: {report.frames} messages (seed {report.seed}), {report.replies} replies, {report.missing} missing, "
          f"{report.internal_errors} InternalError, {report.liveness_checks} liveness checks, "
          f"{report.elapsed_s:.1f}s ({rate:.0f} messages/s)")
    print("  kinds: " + ", ".join(f"{k} {n}" for k, n in sorted(report.kinds.items())))
    print("  codes: " + ", ".join(f"{k} {n}" for k, n in sorted(report.codes.items())))
    for index, kind, problem in report.problems[:20]:
        print(f"  message {index} ({kind}): [{problem.requirement}] {problem.path}: {problem.message} "
              f"(expected {problem.expected!r}, got {problem.actual!r})")
    if report.problem_count > 20:
        print(f"  ... {report.problem_count - 20} more problems")
    print(f"verdict: {'PASS' if report.passed else 'FAIL'} ({report.problem_count} problems)")


def run(args: argparse.Namespace) -> int:
    # Imported here, inside hypothesis_storage: importing the generators (hypothesis-jsonschema) already
    # makes hypothesis write its caches, which must not land in the user's current directory.
    with hypothesis_storage(None):
        from stui_protocol_kit.conformance.fuzz import fuzz

        return _run(args, fuzz)


def _run(args: argparse.Namespace, fuzz: Any) -> int:
    if args.frames < 1 or args.check_every < 1 or not args.timeout_s > 0:
        print("stui-conformance fuzz: --frames and --check-every must be at least 1, --timeout positive",
              file=sys.stderr)
        return 2
    try:
        curve = curve_options.client_curve(args)
    except CurveKeyError as exc:
        print(f"stui-conformance fuzz: {exc}", file=sys.stderr)
        return 2
    server: EmbeddedServer | None = None
    try:
        if args.target:
            endpoint = args.target
        else:
            server = EmbeddedServer(name="fuzz")
            endpoint = server.start()
        report = fuzz(endpoint, frames=args.frames, seed=args.seed, timeout_s=args.timeout_s,
                      check_every=args.check_every, curve=curve)
    except (TargetUnavailable, RuntimeError) as exc:
        print(f"stui-conformance fuzz: target unavailable: {exc}", file=sys.stderr)
        return 2
    finally:
        if server is not None:
            server.cleanup()
    _print(report)
    if args.json_file:
        with open(args.json_file, "w", encoding="utf-8") as out:
            json.dump(report.as_json(), out, indent=2, default=str)
    return 0 if report.passed else 1
