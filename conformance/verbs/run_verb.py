"""`stui-conformance run`: run the conformance suite against a target and report, requirement by requirement.

Without --target it starts the reference server itself (temporary data dir, short timeouts); with
--target ADDR it reaches any implementation over ZeroMQ. It reads the target's hello and adapts:
features not announced are UNSUPPORTED (their requirements do not apply), cases that need what the run
cannot provide (a restart without --restart-command, waits beyond --expiry-budget, limits the case
needs) are SKIPPED with the flag or setting that would let them run. Live progress and a summary go to
stdout; --junit-xml, --json and --html write files. --baseline FILE judges the run against a YAML list
of expected non-passes (listed failures do not fail the run; a listed case that passes, or an unknown
ID, does); --write-baseline FILE writes one from this run's failures.

Exit status: 0 PASS (every MUST requirement of the selected cases checked and held), 1 FAIL (a MUST
requirement broken or a reply missing; with --strict also a SHOULD), 2 ERROR (the suite could not do its
job for some case, nothing failed) or a usage error or unreachable target, 3 INCOMPLETE (nothing failed,
but some MUST requirements were not checked; the report lists them and why). This module parses options
and renders; it must never judge replies itself.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from stui_protocol_kit.conformance import baseline as baselines
from stui_protocol_kit.conformance.case import load_cases
from stui_protocol_kit.conformance.config import DEFAULTS, RunConfig
from stui_protocol_kit.conformance.formats import FormatError, read_baseline
from stui_protocol_kit.conformance.report import html_report, json_report, junit
from stui_protocol_kit.conformance.report.loaded import LoadedRun, label_runs
from stui_protocol_kit.conformance.report.terminal import TerminalReport
from stui_protocol_kit.conformance.runner import Runner, RunReport
from stui_protocol_kit.conformance.target import TargetUnavailable
from stui_protocol_kit.conformance.verbs import curve_options
from stui_protocol_kit.protocol.curve import CurveKeyError
from stui_protocol_kit.protocol.requirements import spec_edition

HELP = "run the conformance suite against a server (default: the embedded reference server)"
EPILOG = ("exit status: 0 PASS, 1 FAIL (a MUST requirement broken; --strict: also a SHOULD), 2 ERROR (suite trouble)"
          " or usage error or unreachable target, 3 INCOMPLETE (MUST requirements not checked)")


def register(subparsers: Any) -> None:
    d = DEFAULTS
    p = subparsers.add_parser("run", help=HELP, description=__doc__.split("\n\n")[1] if __doc__ else HELP,
                              epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--target", metavar="ADDR", help="ZeroMQ endpoint of the server under test "
                   "(default: start the reference server in a temporary directory)")
    p.add_argument("--socket", dest="socket_kind", choices=("dealer", "req"), default=d.socket_kind,
                   help="socket type for ordinary requests (default %(default)s; some cases use both)")
    p.add_argument("--timeout", dest="timeout_s", type=float, default=d.timeout_s, metavar="S",
                   help="per-request timeout in seconds (default %(default)s)")
    p.add_argument("--restart-command", metavar="CMD",
                   help="shell command that restarts the target (it must return; the suite waits for hello)")
    p.add_argument("--select", action="append", default=[], metavar="GLOB",
                   help="run only cases whose ID, group, tag or requirement matches (repeatable)")
    p.add_argument("--exclude", action="append", default=[], metavar="GLOB", help="leave out matching cases")
    p.add_argument("--seed", type=int, default=d.seed, help="seed for generated cases (default %(default)s)")
    p.add_argument("--examples", type=int, default=d.examples, metavar="N",
                   help="example budget for generated and stateful cases (default %(default)s)")
    p.add_argument("--expiry-budget", dest="expiry_budget_s", type=float, default=d.expiry_budget_s, metavar="S",
                   help="longest timeout (seconds) the expiry cases may wait out; cases needing longer waits are"
                        " SKIPPED (default %(default)s)")
    p.add_argument("--strict", action="store_true",
                   help="SHOULD requirements broken (NON-STRICT) fail the run too")
    p.add_argument("--differential", action="store_true",
                   help="also replay generated sequences against the embedded reference server and compare")
    p.add_argument("--junit-xml", metavar="FILE", help="write a JUnit XML report")
    p.add_argument("--json", dest="json_file", metavar="FILE", help="write a JSON report")
    p.add_argument("--html", metavar="FILE", help="write the HTML report (one self-contained file)")
    p.add_argument("--spec-url", default=html_report.DEFAULT_SPEC_URL, metavar="URL",
                   help="where the HTML report links requirements to (default %(default)s, relative to the page)")
    p.add_argument("--baseline", metavar="FILE",
                   help="YAML list of expected non-passes (`- case: ID` + `reason: TEXT`): listed failures do not fail"
                        " the run; a listed case that passes, or an unknown ID, fails it (the baseline went stale)")
    p.add_argument("--write-baseline", metavar="FILE",
                   help="write a baseline listing every case that fails this run (reasons kept from --baseline)")
    p.add_argument("--transcripts", choices=("failed", "all"), default=d.transcripts,
                   help="whose transcripts the JSON report keeps: cases that did not pass, or all"
                        " (default %(default)s)")
    p.add_argument("--list", action="store_true", help="list the selected cases and exit")
    p.add_argument("--no-color", action="store_true", help="plain output even on a terminal")
    p.add_argument("-v", "--verbose", action="store_true", help="show whole messages of failures")
    curve_options.add_client_options(p)
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    try:
        config = RunConfig(
            target=args.target, restart_command=args.restart_command, socket_kind=args.socket_kind,
            timeout_s=args.timeout_s, seed=args.seed, examples=args.examples, select=args.select,
            exclude=args.exclude, expiry_budget_s=args.expiry_budget_s, strict=args.strict,
            differential=args.differential, transcripts=args.transcripts, curve=curve_options.client_curve(args),
        )
    except CurveKeyError as exc:
        print(f"stui-conformance run: {exc}", file=sys.stderr)
        return 2
    except ValueError as exc:
        print(f"stui-conformance run: {exc} (--timeout must be positive, --examples and --expiry-budget"
              " non-negative)", file=sys.stderr)
        return 2
    baseline = None
    if args.baseline:
        try:
            baseline = read_baseline(args.baseline)
        except FormatError as exc:
            print(f"stui-conformance run: --baseline {args.baseline}: {exc}", file=sys.stderr)
            return 2
        except OSError as exc:
            print(f"stui-conformance run: cannot read --baseline {args.baseline}: {exc.strerror}", file=sys.stderr)
            return 2
    load_cases()
    terminal = TerminalReport(no_color=args.no_color, verbose=args.verbose, baseline=baseline)
    runner = Runner(config, progress=terminal.progress)
    cases = runner.selected()
    if args.list:
        for item in cases:
            terminal.out.line(f"{item.id:<48} {item.level:<6} {','.join(item.requirements):<28} {item.title}")
        terminal.out.line(f"{len(cases)} cases")
        return 0
    if not cases:
        print("stui-conformance run: no case matches --select/--exclude", file=sys.stderr)
        return 2
    terminal.start(len(cases), args.target or "the embedded reference server")
    try:
        report = runner.run()
    except TargetUnavailable as exc:
        terminal.stop()
        print(f"stui-conformance run: target unavailable: {exc}", file=sys.stderr)
        return 2
    finally:
        terminal.stop()  # also on Ctrl-C: leave the terminal clean
    report.baseline = baseline
    terminal.failures(report)
    terminal.summary(report)
    try:
        if args.junit_xml:
            junit.write(report, args.junit_xml)
        if args.json_file:
            json_report.write(report, args.json_file)
        if args.html:
            page = LoadedRun(json_report.build(report))
            label_runs([page])
            html_report.write([page], args.html, args.spec_url)
        if args.write_baseline:
            write_baseline(report, baseline, args.write_baseline)
            terminal.out.line(f"baseline written: {args.write_baseline}")
    except OSError as exc:
        print(f"stui-conformance run: cannot write report: {exc}", file=sys.stderr)
        return 2
    return report.exit_code


def write_baseline(report: RunReport, previous: baselines.Baseline | None, path: str) -> None:
    date = report.started_at[:10]
    made = baselines.from_results(report.results, report.config.strict, date, previous)
    server = report.hello.get("server", {}) if isinstance(report.hello, dict) else {}
    header = [
        "stui-conformance baseline: expected non-passes of one implementation (`run --baseline FILE`).",
        f"Written by stui-protocol-kit {json_report.kit_version()} (spec edition {spec_edition()}) from a run"
        f" against {server.get('name', '?')} {server.get('version', '?')} on {report.started_at}",
        f"with seed {report.config.seed}{' and --strict' if report.config.strict else ''}:"
        f" {len(made.entries)} case(s) failed.",
        "Say why each one is expected to fail (a ticket, a plan). A listed case that passes, or an ID the kit",
        "does not know, fails the run: remove the entry then.",
    ]
    with open(path, "w", encoding="utf-8") as stream:
        stream.write(baselines.to_yaml(made, header))
