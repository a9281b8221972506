"""`stui-conformance proxy`: a transparent ZeroMQ proxy between STUI clients and a server that validates
both directions live.

Clients connect to --listen instead of the server (REQ and DEALER, several at once); each gets its own
connection to --upstream, so the server sees distinct clients. Every message is forwarded unchanged and
then checked with the checks of `run` (every reply, paired with its request) and `client-check` (every
request): requirement ID, JSON path, expected and actual of every violation go to the terminal (rich on a
terminal, plain when piped) and to --violations as JSON Lines, never into the traffic. --transcript records
every message as JSON Lines, tokens redacted (conformance/formats/transcript.schema.json), which `validate`
checks and `replay` sends to another server.

This module parses options, wires signals and renders; relaying and judging are conformance/proxy.py and
protocol/traffic_checks.py.
"""

from __future__ import annotations

import argparse
import signal
import sys
from typing import Any

from stui_protocol_kit.conformance.output import Output
from stui_protocol_kit.conformance.proxy import THREAD_JUDGE_SWITCH_INTERVAL_S, Proxy, ProxyUnavailable
from stui_protocol_kit.conformance.verbs import curve_options
from stui_protocol_kit.protocol.curve import CurveKeyError
from stui_protocol_kit.protocol.endpoints import bind_endpoint_arg, endpoint_arg
from stui_protocol_kit.protocol.traffic_checks import DEFAULT_TIMEOUT_S, Finding, describe

HELP = "relay between clients and a server, checking both directions live (and record a transcript)"
EPILOG = """\
output: "listening on ENDPOINT" first (a script can wait for it), then one line per connection and per
violation: "VIOLATION [REQ-ID] c2 reply session.snapshot id=... at $.result.revision: ... (expected ...,
actual ...)", and a summary when the proxy stops (SIGINT/SIGTERM, or the first MUST violation with
--fail-fast).
--violations FILE: one JSON object per violation: requirement, level, message, path, expected, actual,
rule, subject, connection, direction, at (seconds since start), request_id, command.

exit status: 0 no MUST requirement broken, 1 a MUST requirement broken, 2 usage error or cannot listen.
"""


def register(subparsers: Any) -> None:
    p = subparsers.add_parser("proxy", help=HELP, description=__doc__.split("\n\n")[1] if __doc__ else HELP,
                              epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--listen", required=True, metavar="ADDR", type=bind_endpoint_arg,
                   help="ZeroMQ endpoint clients connect to (port 0 picks a free port, printed)")
    p.add_argument("--upstream", required=True, metavar="ADDR", type=endpoint_arg,
                   help="the server's ZeroMQ endpoint, tcp://HOST:PORT or ipc://PATH")
    p.add_argument("--transcript", metavar="FILE", help="record every message as JSON Lines (tokens redacted)")
    p.add_argument("--violations", metavar="FILE", help="write every violation as JSON Lines")
    p.add_argument("--fail-fast", action="store_true", help="stop at the first violation of a MUST requirement")
    p.add_argument("--timeout", dest="timeout_s", type=float, default=DEFAULT_TIMEOUT_S, metavar="S",
                   help="a request without a reply after S seconds is a violation (TRN-3; default %(default)s)")
    p.add_argument("--judge", choices=("thread", "process"), default="thread",
                   help="where the checks run: a thread of the relay's process (default; measured faster here,"
                        " bench/bench_proxy.py) or a process of their own (never holds the relay's interpreter"
                        " lock: for machines with cores to spare)")
    p.add_argument("--quiet", action="store_true", help="no line per connection; violations and summary only")
    p.add_argument("--no-color", action="store_true", help="plain output even on a terminal")
    curve_options.add_server_options(p)  # the clients' side: --curve-secret-key, --curve-allow
    curve_options.add_client_options(p, prefix="upstream-")  # the server's side
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    if not args.timeout_s > 0:
        print("stui-conformance proxy: --timeout must be positive", file=sys.stderr)
        return 2
    try:
        front_curve = curve_options.server_curve(args)
        upstream_curve = curve_options.client_curve(args, prefix="upstream-")
    except CurveKeyError as exc:
        print(f"stui-conformance proxy: {exc}", file=sys.stderr)
        return 2
    out = Output(no_color=args.no_color)

    def finding(found: Finding) -> None:
        out.line(("VIOLATION", "fail"), f" {describe(found)}")
        out.flush()

    def event(item: dict[str, Any]) -> None:
        if item["kind"] == "upstream-unavailable" or item["kind"] in ("judge-backlog", "judge-error"):
            out.line(("warning", "warn"), f": {item['detail']}")
        elif not args.quiet and item["kind"] in ("connect", "disconnect"):
            socket_kind = f" ({item['socket']})" if item.get("socket") else ""
            out.line((f"{item['connection']} {item['kind']}ed{socket_kind}", "dim"))
        out.flush()

    try:
        # A judge thread calls `finding`; a judge process prints violations itself (conformance/proxy.py).
        proxy = Proxy(args.listen, args.upstream, transcript=args.transcript, findings_file=args.violations,
                      on_finding=finding, on_event=event, timeout_s=args.timeout_s, fail_fast=args.fail_fast,
                      judge=args.judge, front_curve=front_curve, upstream_curve=upstream_curve)
    except OSError as exc:
        print(f"stui-conformance proxy: {exc}", file=sys.stderr)
        return 2
    previous: dict[int, Any] = {}
    if args.judge == "thread":
        # The relay waits for the judge thread's interpreter lock at most this long (default 5 ms).
        sys.setswitchinterval(THREAD_JUDGE_SWITCH_INTERVAL_S)
    try:
        try:
            endpoint = proxy.start()
        except (ProxyUnavailable, OSError) as exc:  # cannot listen, or the judge process did not start
            print(f"stui-conformance proxy: {exc}", file=sys.stderr)
            return 2
        for signum in (signal.SIGINT, signal.SIGTERM):
            previous[signum] = signal.signal(signum, lambda _s, _f: proxy.request_stop("signal"))
        print(f"listening on {endpoint}", flush=True)
        out.line((f"forwarding to {args.upstream}; checking both directions", "dim"))
        out.flush()
        proxy.serve()
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        proxy.close()
    counts = proxy.counts
    by_requirement = ", ".join(f"{req} x{n}" for req, n in sorted(counts.findings.items())) or "none"
    out.line(f"{counts.requests} requests and {counts.replies} replies on {counts.connections} connections;"
             f" violations: {by_requirement}")
    if proxy.stopped_by == "fail-fast":
        out.line(("stopped at the first MUST violation (--fail-fast)", "fail"))
    verdict = ("FAIL: a MUST requirement was broken", "fail") if counts.must_findings else (
        "no MUST requirement broken", "ok")
    out.line(verdict)
    out.flush()
    return 1 if counts.must_findings else 0
