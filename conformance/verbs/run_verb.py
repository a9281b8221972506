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
import os
import signal
import sys
from typing import Any

from stui_protocol_kit.conformance import baseline as baselines
from stui_protocol_kit.conformance.case import load_cases
from stui_protocol_kit.conformance.config import DEFAULTS, RunConfig
from stui_protocol_kit.conformance.formats import FormatError, read_baseline
from stui_protocol_kit.conformance.hypothesis_storage import hypothesis_storage
from stui_protocol_kit.conformance.report import html_report, json_report, junit
from stui_protocol_kit.conformance.report.loaded import LoadedRun, label_runs
from stui_protocol_kit.conformance.report.terminal import TerminalReport
from stui_protocol_kit.conformance.runner import NOT_RUN_INTERRUPTED, RunInterrupted, Runner, RunReport
from stui_protocol_kit.conformance.target import TargetUnavailable
from stui_protocol_kit.conformance.verbs import curve_options
from stui_protocol_kit.protocol.curve import CurveKeyError
from stui_protocol_kit.protocol.endpoints import endpoint_arg
from stui_protocol_kit.protocol.requirements import spec_edition

HELP = "run the conformance suite against a server (default: the embedded reference server)"
EPILOG = ("exit status: 0 PASS, 1 FAIL (a MUST requirement broken; --strict: also a SHOULD), 2 ERROR (suite trouble)"
          " or usage error or unreachable target, 3 INCOMPLETE (MUST requirements not checked)")


def register(subparsers: Any) -> None:
    d = DEFAULTS
    p = subparsers.add_parser("run", help=HELP, description=__doc__.split("\n\n")[1] if __doc__ else HELP,
                              epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--target", metavar="ADDR", type=endpoint_arg, help="ZeroMQ endpoint of the server under test,"
                   " tcp://HOST:PORT or ipc://PATH (default: start the reference server in a temporary directory)")
    p.add_argument("--socket", dest="socket_kind", choices=("dealer", "req"), default=d.socket_kind,
                   help="socket type for ordinary requests (default %(default)s; some cases use both)")
    p.add_argument("--timeout", dest="timeout_s", type=float, default=d.timeout_s, metavar="S",
                   help="per-request timeout in seconds (default %(default)s)")
    p.add_argument("--restart-command", metavar="CMD",
                   help="shell command that restarts the target (it must return; the suite waits for hello)")
    p.add_argument("--corrupt-newest-revision-command", dest="corrupt_command", metavar="CMD",
                   help="shell command that damages the newest stored revision of a session; the suite appends the"
                        " session id as its last argument and restarts the target afterwards (with --restart-command;"
                        " the fallback cases are SKIPPED without it)")
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
    p.add_argument("--json", dest="json_file", metavar="FILE", help="write a JSON report (- for stdout: progress and"
                   " summary then go to stderr)")
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
    p.add_argument("--hypothesis-dir", metavar="DIR",
                   help="where hypothesis keeps its caches during the run (default: a temporary directory, removed"
                        " after; never ./.hypothesis). No example database is kept: --seed reproduces a run")
    p.add_argument("--list", action="store_true", help="list the selected cases and exit")
    p.add_argument("--no-color", action="store_true", help="plain output even on a terminal")
    p.add_argument("-v", "--verbose", action="store_true", help="show whole messages of failures")
    curve_options.add_client_options(p)
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    # Loading the cases already makes hypothesis write caches: redirect it before anything else.
    with hypothesis_storage(args.hypothesis_dir):
        return _run(args)


def _run(args: argparse.Namespace) -> int:
    try:
        config = RunConfig(
            target=args.target, restart_command=args.restart_command, corrupt_command=args.corrupt_command,
            socket_kind=args.socket_kind,
            timeout_s=args.timeout_s, seed=args.seed, examples=args.examples, select=args.select,
            exclude=args.exclude, expiry_budget_s=args.expiry_budget_s, strict=args.strict,
            differential=args.differential, transcripts=args.transcripts, curve=curve_options.client_curve(args),
            hypothesis_dir=args.hypothesis_dir,
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
    unwritable = check_report_paths(args)
    if unwritable:
        print(f"stui-conformance run: {unwritable}", file=sys.stderr)
        return 2
    load_cases()
    # `--json -` owns stdout: the progress and the summary go to stderr then.
    terminal = TerminalReport(sys.stderr if args.json_file == "-" else None, no_color=args.no_color,
                              verbose=args.verbose, baseline=baseline)
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
    signals = _StopOnSignal()
    interrupted: int | None = None
    try:
        with signals:
            report = runner.run()
    except TargetUnavailable as exc:
        terminal.stop()
        print(f"stui-conformance run: target unavailable: {exc}", file=sys.stderr)
        return 2
    except RunInterrupted as stop:
        # Every embedded server is stopped and its data removed (the runner did it); report what finished.
        report = stop.report
        interrupted = signals.received or signal.SIGINT
    finally:
        terminal.stop()  # also on Ctrl-C: leave the terminal clean
    report.baseline = baseline
    terminal.failures(report)
    terminal.summary(report)
    status = _write_reports(args, report, baseline, terminal)
    if interrupted is not None:
        name = signal.Signals(interrupted).name
        finished = sum(1 for r in report.results if r.reason != NOT_RUN_INTERRUPTED)
        print(f"stui-conformance run: interrupted by {name}: {finished} of {len(cases)} cases finished;"
              " the reports are partial", file=sys.stderr)
        return 128 + interrupted
    return status if status is not None else report.exit_code


class _StopOnSignal:
    """SIGINT and SIGTERM raise KeyboardInterrupt in the main thread while the run lasts (the runner
    then stops every embedded server and removes its data); a second signal during that cleanup is
    ignored, so cleanup always completes. The previous handlers come back afterwards."""

    def __init__(self) -> None:
        self.received: int | None = None
        self._previous: dict[int, Any] = {}

    def _handle(self, signum: int, _frame: Any) -> None:
        if self.received is not None:
            return
        self.received = signum
        raise KeyboardInterrupt

    def __enter__(self) -> _StopOnSignal:
        for signum in (signal.SIGINT, signal.SIGTERM):
            self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(self, *_: object) -> None:
        # Still ignoring while the reports are written: restore only after the caller is done.
        for signum, handler in self._previous.items():
            signal.signal(signum, handler if self.received is None else signal.SIG_IGN)


def check_report_paths(args: argparse.Namespace) -> str | None:
    """Why a report could not be written, said before the run rather than after it (None: all fine)."""
    paths = [("--junit-xml", args.junit_xml), ("--json", args.json_file), ("--html", args.html),
             ("--write-baseline", args.write_baseline)]
    for flag, path in paths:
        if path is None or (path == "-" and flag == "--json"):
            continue
        problem = unwritable_reason(path)
        if problem:
            return f"cannot write {flag} {path}: {problem}"
    return None


def unwritable_reason(path: str) -> str | None:
    """Why `path` cannot be written as a file, or None. Creates nothing."""
    target = os.path.abspath(path)
    if os.path.isdir(target):
        return "it is a directory"
    parent = os.path.dirname(target)
    if not os.path.isdir(parent):
        return f"the directory {parent} does not exist"
    if os.path.exists(target):
        return None if os.access(target, os.W_OK) else "permission denied"
    return None if os.access(parent, os.W_OK | os.X_OK) else f"the directory {parent} is not writable"


def _write_reports(args: argparse.Namespace, report: RunReport, baseline: baselines.Baseline | None,
                   terminal: TerminalReport) -> int | None:
    """Write the requested report files; 2 when one cannot be written, else None."""
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
    return None


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
