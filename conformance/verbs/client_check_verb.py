"""`stui-conformance client-check`: the kit plays a STUI v1 server and checks the client that talks to it.

It binds a ROUTER socket (REQ and DEALER clients) and answers like the reference server - it *is* the
reference server's engine, on a temporary store - while it checks every request against the request schemas
and the client rules of spec/16-clients.md, and provokes, one scenario after another, what a client must
survive. It prints "listening on ENDPOINT" on stdout once it serves (and writes ENDPOINT to --ready-file),
so a script starts the client without sleeping. It ends on SIGINT/SIGTERM, after --duration, or when the
client has closed its session (every session it created in the run is closed or ended), then reports every
violation and every scenario, live on stdout and in --json / --junit-xml.

This module parses options, wires signals and renders; the judging is protocol/client_rules.py and
conformance/client_check/scenarios.py, the serving conformance/client_check/kit_server.py (imported only when
the verb runs, so the CLI never loads the reference server otherwise).
"""

from __future__ import annotations

import argparse
import signal
import sys
import time
from datetime import UTC, datetime
from typing import Any

from stui_protocol_kit.conformance.client_check.catalog import CHECKS
from stui_protocol_kit.conformance.client_check.scenarios import SCENARIOS, Settings
from stui_protocol_kit.conformance.output import Output
from stui_protocol_kit.conformance.verbs import curve_options
from stui_protocol_kit.protocol.endpoints import bind_endpoint_arg

HELP = "play the server for a client: check every request it sends and provoke what it must survive"
EPILOG_HEAD = """\
scenarios (run one at a time, in this order unless --scenario says otherwise; each waits for a request it
can use, and the next waits until it has concluded; one the client never triggers is NOT EXERCISED):
"""
EPILOG_TAIL = """
exit status: 0 PASS (no MUST rule broken, every selected scenario exercised and passed), 1 FAIL (a MUST
requirement broken), 2 usage error or the endpoint cannot be bound, 3 INCOMPLETE (a selected scenario was
not exercised: select those your client can trigger with --scenario).

In a CI script:
  stui-conformance client-check --bind tcp://127.0.0.1:0 --ready-file ready --duration 120 \\
      --scenario slow-reply --json report.json &
  while [ ! -s ready ]; do sleep 0.05; done       # or read the "listening on" line
  my-client --endpoint "$(cat ready)"             # closes its session at the end: client-check ends
  wait $!                                         # client-check's exit status
"""


def _epilog() -> str:
    lines = [EPILOG_HEAD]
    for scenario in SCENARIOS:
        lines.append(f"  {scenario.name}\n      provokes: {scenario.provokes}\n      passes:   {scenario.passes}")
    lines.append("\nchecks (every request): " + "; ".join(f"{c.name} ({c.requirement})" for c in CHECKS))
    lines.append(EPILOG_TAIL)
    return "\n".join(lines)


def register(subparsers: Any) -> None:
    defaults = Settings()
    p = subparsers.add_parser("client-check", help=HELP, description=__doc__.split("\n\n")[1] if __doc__ else HELP,
                              epilog=_epilog(), formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--bind", default="tcp://127.0.0.1:5555", metavar="ADDR", type=bind_endpoint_arg,
                   help="ZeroMQ endpoint to serve on (default %(default)s; port 0 picks a free port, printed and"
                        " written to --ready-file)")
    p.add_argument("--scenario", action="append", default=[], metavar="NAME",
                   help="run this scenario (repeatable, in the order given; 'all' for every one, 'none' for the"
                        " checks only; default all)")
    p.add_argument("--duration", dest="duration_s", type=float, metavar="S",
                   help="end after S seconds (default: only on a signal or when the client closed its session)")
    p.add_argument("--ready-file", metavar="FILE",
                   help="write the endpoint to FILE (atomically) once serving: wait for it instead of sleeping")
    p.add_argument("--reply-delay", dest="reply_delay_s", type=float, default=defaults.reply_delay_s, metavar="S",
                   help="slow-reply: how long the reply is held; longer than the client's timeout"
                        " (default %(default)s)")
    p.add_argument("--restart-pause", dest="restart_pause_s", type=float, default=defaults.restart_pause_s,
                   metavar="S", help="server-restart: how long the endpoint stays unbound (default %(default)s)")
    p.add_argument("--data-dir", metavar="DIR", help="the kit's session store (default: a temporary directory)")
    p.add_argument("--keep-open", action="store_true",
                   help="do not end when the client closes its session (only on a signal or --duration)")
    p.add_argument("--strict", action="store_true", help="SHOULD rules broken (NON-STRICT) fail the run too")
    p.add_argument("--json", dest="json_file", metavar="FILE", help="write the JSON report")
    p.add_argument("--junit-xml", metavar="FILE", help="write a JUnit XML report")
    p.add_argument("--list", action="store_true", help="list the scenarios and checks and exit")
    p.add_argument("--no-color", action="store_true", help="plain output even on a terminal")
    p.add_argument("-v", "--verbose", action="store_true", help="show expected and actual of every violation")
    curve_options.add_server_options(p)
    p.set_defaults(handler=run)


def selected_scenarios(names: list[str]) -> list[str]:
    """The scenario names in run order; ValueError for an unknown one."""
    if not names or names == ["all"]:
        return [s.name for s in SCENARIOS]
    if names == ["none"]:
        return []
    known = {s.name for s in SCENARIOS}
    unknown = [n for n in names if n not in known]
    if unknown:
        raise ValueError(f"unknown scenario {', '.join(unknown)}; known: {', '.join(sorted(known))}")
    if len(set(names)) != len(names):
        raise ValueError("a scenario is named twice")
    return list(names)


def run(args: argparse.Namespace) -> int:
    out = Output(no_color=args.no_color)
    if args.list:
        for scenario in SCENARIOS:
            out.line((f"scenario.{scenario.name}", "heading"), f"  [{', '.join(scenario.requirements)}]")
            out.line(f"provokes: {scenario.provokes}", indent=2)
            out.line(f"passes:   {scenario.passes}", indent=2)
        for check in CHECKS:
            out.line((f"client.{check.name}", "heading"), f"  [{check.requirement}] {check.title}")
        return 0
    try:
        names = selected_scenarios(args.scenario)
        if args.duration_s is not None and not args.duration_s > 0:
            raise ValueError("--duration must be positive")
        if args.reply_delay_s < 0 or args.restart_pause_s < 0:
            raise ValueError("--reply-delay and --restart-pause must not be negative")
        curve = curve_options.server_curve(args)
    except ValueError as exc:
        print(f"stui-conformance client-check: {exc}", file=sys.stderr)
        return 2
    # Imported here: the reference server's engine is loaded only when client-check runs.
    from stui_protocol_kit.conformance.client_check import terminal
    from stui_protocol_kit.conformance.client_check.kit_server import KitServer, KitUnavailable, write_ready_file
    from stui_protocol_kit.conformance.client_check.report import ClientCheckReport, write
    from stui_protocol_kit.conformance.config import RunConfig
    from stui_protocol_kit.conformance.report import junit

    live = terminal.LiveOutput(no_color=args.no_color, verbose=args.verbose)
    settings = Settings(reply_delay_s=args.reply_delay_s, restart_pause_s=args.restart_pause_s)
    kit = KitServer(args.bind, names, settings, duration_s=args.duration_s, data_dir=args.data_dir,
                    on_event=live.event, end_on_close=not args.keep_open, curve=curve)
    started_at = datetime.now(UTC).isoformat(timespec="seconds")
    previous: dict[int, Any] = {}
    try:
        try:
            endpoint = kit.start()
        except KitUnavailable as exc:
            print(f"stui-conformance client-check: cannot serve on {args.bind}: {exc}", file=sys.stderr)
            return 2
        for signum in (signal.SIGINT, signal.SIGTERM):
            previous[signum] = signal.signal(signum, lambda _s, _f: kit.request_stop("signal"))
        if args.ready_file:
            write_ready_file(args.ready_file, endpoint)
        print(f"listening on {endpoint}", flush=True)
        live.out.line((f"client-check: scenarios {', '.join(names) or 'none'}; checks on every request", "dim"))
        started = time.monotonic()
        kit.serve()
        results = kit.results()
        report = ClientCheckReport(
            results=results, hello={}, target=f"client of {endpoint}", config=RunConfig(strict=args.strict),
            started_at=started_at, duration_s=time.monotonic() - started, endpoint=endpoint,
            ended_by=kit.ended_by or "signal", scenarios=tuple(names), settings=settings,
            duration_limit_s=args.duration_s, stats=kit.stats, violations=list(kit.violations))
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        kit.close()
    terminal.summary(report, no_color=args.no_color, verbose=args.verbose)
    try:
        if args.json_file:
            write(report, args.json_file)
        if args.junit_xml:
            junit.write(report, args.junit_xml)
    except OSError as exc:
        print(f"stui-conformance client-check: cannot write report: {exc}", file=sys.stderr)
        return 2
    return report.exit_code
