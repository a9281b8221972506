"""`stui-conformance report RESULT.json...`: read JSON run reports back, summarise them, compare them, and
write the HTML report (`--html OUT`).

Each file is read by the one reader (conformance.formats.read_run_report: another schema_version is
refused). A report of another spec edition than this kit's is refused too - its requirements may
differ - unless `--allow-other-edition`, which shows it flagged in every output. With several files,
the HTML page puts the implementations side by side (requirement x implementation) and shows what
changed between consecutive runs of the same implementation (same server name in hello). With
`--baseline FILE` every run is judged again against that baseline of expected non-passes (as `run
--baseline` would judge it; give the results of one implementation).

Exit status: 0 every run PASSes, 1 some run FAILs (a MUST requirement broken, or the baseline went
stale), 2 unreadable or refused input or usage error, or (else) some run's verdict is ERROR,
3 (else) some run is INCOMPLETE. This module reads and renders; it must never judge a case.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from stui_protocol_kit.conformance.case import load_cases
from stui_protocol_kit.conformance.formats import FormatError, read_baseline
from stui_protocol_kit.conformance.output import Output
from stui_protocol_kit.conformance.report import html_report
from stui_protocol_kit.conformance.report.compare import diff, pairs, rates
from stui_protocol_kit.conformance.report.loaded import EditionMismatch, LoadedRun, load, rejudge
from stui_protocol_kit.conformance.verdicts import EXIT_CODES, Verdict

HELP = "summarise and compare JSON run reports; write the HTML report"
EPILOG = ("exit status: 0 every run PASSes, 1 some run FAILs (or its baseline went stale), 2 unreadable or refused"
          " input or usage error (or else some run is ERROR), 3 else some run is INCOMPLETE")
_STYLE = {"PASS": "ok", "FAIL": "fail", "ERROR": "fail", "INCOMPLETE": "warn"}
_PRECEDENCE = (Verdict.FAIL, Verdict.ERROR, Verdict.INCOMPLETE, Verdict.PASS)


def register(subparsers: Any) -> None:
    p = subparsers.add_parser("report", help=HELP, description=__doc__.split("\n\n")[1] if __doc__ else HELP,
                              epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("results", nargs="+", metavar="RESULT.json", help="JSON run reports (`run --json FILE`)")
    p.add_argument("--html", metavar="OUT", help="write the HTML report (one self-contained file)")
    p.add_argument("--baseline", metavar="FILE", help="judge every run again against this baseline (YAML)")
    p.add_argument("--allow-other-edition", action="store_true",
                   help="read reports of another spec edition too, flagged, instead of refusing them")
    p.add_argument("--spec-url", default=html_report.DEFAULT_SPEC_URL, metavar="URL",
                   help="where the HTML report links requirements to: URL + '07-persistence.md#anchor'"
                        " (default %(default)s, relative to the page)")
    p.add_argument("--no-color", action="store_true", help="plain output even on a terminal")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    out = Output(no_color=args.no_color)
    try:
        runs = load(args.results, allow_other_edition=args.allow_other_edition)
        baseline = read_baseline(args.baseline) if args.baseline else None
    except (FormatError, EditionMismatch) as exc:
        print(f"stui-conformance report: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"stui-conformance report: cannot read {exc.filename}: {exc.strerror}", file=sys.stderr)
        return 2
    if baseline is not None:
        known = {c.id for c in load_cases()}
        for item in runs:
            item.document = rejudge(item.document, baseline, known | {c["id"] for c in item.document["cases"]})
    for item in runs:
        summarise(out, item)
    for older, newer in pairs(runs):
        changes(out, older, newer)
    if args.html:
        try:
            html_report.write(runs, args.html, args.spec_url)
        except OSError as exc:
            print(f"stui-conformance report: cannot write {args.html}: {exc.strerror}", file=sys.stderr)
            return 2
        out.line(f"HTML report: {args.html}")
    out.flush()
    verdicts = {Verdict(item.document["verdict"]) for item in runs}
    return next(EXIT_CODES[v] for v in _PRECEDENCE if v in verdicts)


def summarise(out: Output, item: LoadedRun) -> None:
    doc = item.document
    out.line((item.label, "heading"), f"  {item.source}")
    out.line(f"kit {doc['kit']['version']}, spec {doc['spec']['edition']}, seed {doc['config']['seed']},"
             f" {doc['started_at']}, target {doc['target']}", indent=2)
    for note in item.notes:
        out.line((f"flagged: {note}", "warn"), indent=2)
    out.line(", ".join(f"{n} {outcome}" for outcome, n in doc["counts"].items() if n), indent=2)
    for level, rate in rates(doc).items():
        out.line(f"{level}: {rate.text()}", indent=2)
    line = f"{doc['verdict']}"
    if doc["failed_must"]:
        line += f": MUST broken: {', '.join(doc['failed_must'])}"
    if doc["unchecked_must"]:
        line += f"; MUST not checked: {', '.join(doc['unchecked_must'])}"
    out.line((line, _STYLE[doc["verdict"]]), indent=2)
    baseline = doc.get("baseline")
    if baseline is not None:
        counts: dict[str, int] = {}
        for entry in baseline["entries"]:
            counts[entry["status"]] = counts.get(entry["status"], 0) + 1
        out.line(f"baseline {baseline['source']}: " + (", ".join(f"{n} {s}" for s, n in counts.items()) or "empty"),
                 indent=2)
        for entry in baseline["entries"]:
            if entry["status"] in ("stale", "unconfirmed"):
                out.line((f"{entry['case']}: {entry['why']}", "fail" if entry["status"] == "stale" else "warn"),
                         indent=4)


def changes(out: Output, older: LoadedRun, newer: LoadedRun) -> None:
    d = diff(older, newer)
    before, after = d.verdicts
    out.line(("changes", "heading"), f" {older.label} -> {newer.label}: verdict {before} -> {after}")
    for title, found, style in (("regressed", d.regressed_cases, "fail"), ("fixed", d.fixed_cases, "ok")):
        out.line(f"{len(found)} case(s) {title}", indent=2)
        for change in found:
            out.line((f"{change.id}: {change.before} -> {change.after}", style),
                     f"  {change.what}" if change.what else "", indent=4)
    if d.regressed_requirements or d.fixed_requirements:
        out.line(f"requirements regressed: {', '.join(c.id for c in d.regressed_requirements) or 'none'};"
                 f" fixed: {', '.join(c.id for c in d.fixed_requirements) or 'none'}", indent=2)
    if d.only_older or d.only_newer:
        out.line(f"{len(d.only_older)} case(s) only in the older run, {len(d.only_newer)} only in the newer"
                 " (another selection or kit)", indent=2)
    if d.other_cases:
        out.line(f"{len(d.other_cases)} other case change(s): " + ", ".join(
            f"{c.id} {c.before}->{c.after}" for c in d.other_cases[:20]) + (" ..." if len(d.other_cases) > 20 else ""),
            indent=2)
