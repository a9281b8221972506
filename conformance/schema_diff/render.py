"""The four faces of a `DiffReport`: terminal text, JSON, JUnit XML and Markdown (a pull-request comment).

Text goes through `conformance.output.Output`, so it is rich on a terminal and plain when piped, with the
same words either way. Every format lists every change, including those without effect and those an
override ignores (never silently dropped), every witness with the message and why the rejecting side
refuses it, and "no witness found" with its reason where there is none.

This module must never classify or search: it only formats what `report.py` decided.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from typing import Any

from stui_protocol_kit.conformance.output import Output
from stui_protocol_kit.conformance.schema_diff.report import Change, DiffReport, severity_rank

MAX_PLACES_SHOWN = 4
_STYLE = {"breaking": "fail", "warning": "warn", "info": "ok", "none": "dim", "ignore": "dim"}


def _plural(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


def summary_line(report: DiffReport) -> str:
    counts = report.counts()
    parts = [_plural(counts["breaking"], "breaking change"), _plural(counts["warning"], "warning"),
             f"{counts['info']} compatible", f"{counts['none']} without effect", f"{counts['ignore']} ignored"]
    return f"{', '.join(parts)} (fail on {report.fail_on}) -> exit {report.exit_status}"


def _places(change: Change) -> str:
    texts = change.place_texts()
    shown = ", ".join(texts[:MAX_PLACES_SHOWN])
    if len(texts) > MAX_PLACES_SHOWN:
        shown += f" and {len(texts) - MAX_PLACES_SHOWN} more"
    return shown


LONG_STRING = 80  # longer strings are abbreviated in text and Markdown (JSON output keeps them whole)


def abbreviate(value: Any) -> Any:
    """`value` with every string longer than LONG_STRING shortened to its start and its length."""
    if isinstance(value, str) and len(value) > LONG_STRING:
        return f"{value[:24]}...({len(value)} characters)"
    if isinstance(value, dict):
        return {abbreviate(k): abbreviate(v) for k, v in value.items()}
    if isinstance(value, list):
        return [abbreviate(v) for v in value]
    return value


def _short(text: str, limit: int = 300) -> str:
    return text if len(text) <= limit else text[:limit] + f"... ({len(text)} characters)"


def _compact(message: Any, limit: int = 2000) -> str:
    text = json.dumps(abbreviate(message), ensure_ascii=False, separators=(", ", ": "))
    return text if len(text) <= limit else text[:limit] + " ..."


def _has_long_strings(value: Any) -> bool:
    return abbreviate(value) != value


# -- text ----------------------------------------------------------------------------------------------


def text(report: DiffReport, out: Output) -> None:
    info = report.version_info()
    out.line(("stui-conformance diff", "heading"))
    for side in ("old", "new"):
        v = info[side]
        out.line(f"{side}: {v['source']}: protocol {v['protocol']}, spec edition {v['edition']}", indent=2)
    out.line("")
    quiet = [c for c in report.changes if c.severity in ("none", "ignore")]
    for change in report.changes:
        if change in quiet:
            continue
        _text_change(change, out)
    no_effect = [c for c in quiet if c.severity == "none"]
    if no_effect:
        out.line((f"without effect ({len(no_effect)}):", "dim"))
        for change in no_effect:
            out.line((f"{change.rule.id}: {change.detail} at {change.location}", "dim"), indent=2)
    ignored = [c for c in quiet if c.severity == "ignore"]
    if ignored:
        out.line((f"ignored by overrides ({len(ignored)}):", "warn"))
        for change in ignored:
            out.line(f"{change.rule.id}: {change.detail} at {change.location} "
                     f"(was {change.rule.severity}; reason: {change.override.reason if change.override else ''})",
                     indent=2)
    if not report.witnesses_searched:
        out.line(("witness search was switched off (--no-witness)", "warn"))
    out.line((summary_line(report), "fail" if report.failed else "ok"))
    out.flush()


def _text_change(change: Change, out: Output) -> None:
    rule = change.rule
    out.line((change.severity.upper(), _STYLE.get(change.severity)), " ", (rule.id, "heading"), f" ({rule.verdict})")
    out.line(change.detail, indent=2)
    if change.location.strip() or change.places:
        where = f"at {change.location.strip()}" if change.location.strip() else ""
        places = _places(change)
        out.line(where + (f"; in {places}" if places else ""), indent=2)
    if change.override is not None:
        out.line((f"override: {rule.severity} -> {change.severity}: {change.override.reason}", "warn"), indent=2)
    out.line(("why: " + rule.why, "dim"), indent=2)
    for result in change.witnesses:
        if result.witness is None:
            out.line((f"no witness found for {result.breaks}: {result.note}", "warn"), indent=2)
            continue
        w = result.witness
        reject = "new" if w.accepted_by == "old" else "old"
        out.line((f"witness for {result.breaks}", "heading"), f": {w.story} ({w.kind}; checked with jsonschema "
                 "and jsonschema-rs against both sides)", indent=2)
        out.line(_compact(w.message), indent=4)
        if _has_long_strings(w.message):
            out.line(("(long strings abbreviated; --format json shows the whole message)", "dim"), indent=4)
        for reason in w.rejection:
            out.line((f"{reject} rejects: {_short(reason)}", "detail"), indent=4)
        for note in w.notes:
            out.line((f"note: {note}", "warn"), indent=4)
    out.line("")


# -- JSON ------------------------------------------------------------------------------------------------


def as_json(report: DiffReport) -> str:
    return json.dumps(report.as_dict(), indent=2, ensure_ascii=False) + "\n"


# -- JUnit XML ---------------------------------------------------------------------------------------------


def junit(report: DiffReport) -> str:
    root = ET.Element("testsuites", name="stui-schema-diff", time=f"{report.duration_s:.3f}")
    limit = severity_rank(report.fail_on) if report.fail_on != "never" else 99
    failing = [c for c in report.changes if severity_rank(c.severity) >= limit]
    skipped = [c for c in report.changes if c.severity in ("ignore", "none")]
    suite = ET.SubElement(root, "testsuite", name="schema diff", tests=str(max(1, len(report.changes))),
                          failures=str(len(failing)), errors="0", skipped=str(len(skipped)),
                          time=f"{report.duration_s:.3f}")
    props = ET.SubElement(suite, "properties")
    for side, values in report.version_info().items():
        for key, value in values.items():
            ET.SubElement(props, "property", name=f"{side}.{key}", value=str(value))
    if not report.changes:
        ET.SubElement(suite, "testcase", classname="schema-diff", name="no schema changes")
    for change in report.changes:
        case = ET.SubElement(suite, "testcase", classname=f"schema-diff.{change.rule.id}",
                             name=f"{change.location or change.rule.id}: {change.detail}"[:300])
        cprops = ET.SubElement(case, "properties")
        for key, value in (("rule", change.rule.id), ("severity", change.severity), ("verdict", change.rule.verdict)):
            ET.SubElement(cprops, "property", name=key, value=value)
        for place in change.place_texts():
            ET.SubElement(cprops, "property", name="place", value=place)
        body = _plain_change(change)
        if change in failing:
            ET.SubElement(case, "failure", message=f"{change.rule.id}: {change.detail}"[:500],
                          type=change.severity).text = body
        elif change in skipped:
            ET.SubElement(case, "skipped", message=f"{change.severity}: {change.rule.id}")
            ET.SubElement(case, "system-out").text = body
        else:
            ET.SubElement(case, "system-out").text = body
    ET.indent(root)
    return ET.tostring(root, encoding="unicode", xml_declaration=True) + "\n"


def _plain_change(change: Change) -> str:
    lines = [f"{change.severity.upper()} {change.rule.id} ({change.rule.verdict})", change.detail,
             f"at {change.location}", "in " + "; ".join(change.place_texts()), f"why: {change.rule.why}"]
    if change.override is not None:
        lines.append(f"override: {change.rule.severity} -> {change.severity}: {change.override.reason}")
    for result in change.witnesses:
        if result.witness is None:
            lines.append(f"no witness found for {result.breaks}: {result.note}")
        else:
            w = result.witness
            lines.append(f"witness for {result.breaks}: {w.story}")
            lines.append(json.dumps(w.message, ensure_ascii=False))
            lines.extend(f"  rejected: {r}" for r in w.rejection)
            lines.extend(f"  note: {n}" for n in w.notes)
    return "\n".join(lines)


# -- Markdown --------------------------------------------------------------------------------------------


def _md_cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def markdown(report: DiffReport) -> str:
    counts = report.counts()
    info = report.version_info()
    verdict = "**breaking**" if counts["breaking"] else ("compatible, with warnings" if counts["warning"]
                                                         else "compatible")
    lines = [f"## STUI protocol schema diff: {verdict}", "",
             f"`{report.old.label}` -> `{report.new.label}`: protocol {info['old']['protocol']} -> "
             f"{info['new']['protocol']}, spec edition {info['old']['edition']} -> {info['new']['edition']}", "",
             summary_line(report), ""]
    shown = [c for c in report.changes if c.severity not in ("none",)]
    if shown:
        lines += ["| Severity | Rule | Change | Where | Verdict |", "|---|---|---|---|---|"]
        for c in shown:
            where = c.location.strip() or "-"
            if c.places:
                where += f" ({_places(c)})"
            lines.append(f"| {c.severity} | `{c.rule.id}` | {_md_cell(c.detail)} | {_md_cell(where)} | "
                         f"{_md_cell(c.rule.verdict)} |")
        lines.append("")
    with_witness = [c for c in shown if c.witnesses]
    for c in with_witness:
        lines += [f"<details><summary><code>{c.rule.id}</code>: {_html(c.detail)}</summary>", ""]
        lines.append(f"Why: {c.rule.why}")
        lines.append("")
        for result in c.witnesses:
            if result.witness is None:
                lines += [f"No witness found for {result.breaks}: {result.note}", ""]
                continue
            w = result.witness
            reject = "new" if w.accepted_by == "old" else "old"
            lines += [f"Witness for {result.breaks}: {w.story} (`{w.kind}`; checked with jsonschema and "
                      "jsonschema-rs against both sides):", "", "```json",
                      json.dumps(abbreviate(w.message), indent=2, ensure_ascii=False), "```", ""]
            if _has_long_strings(w.message):
                lines += ["(long strings abbreviated; `--format json` shows the whole message)", ""]
            lines += [f"- {reject} rejects: `{_short(r)}`" for r in w.rejection]
            lines += [f"- note: {n}" for n in w.notes] + [""]
        lines += ["</details>", ""]
    overridden = [c for c in report.changes if c.override is not None]
    if overridden:
        lines += ["Overrides applied:", ""]
        lines += [f"- `{c.rule.id}` {c.rule.severity} -> {c.severity}: {_md_cell(c.override.reason)}"
                  for c in overridden if c.override]
        lines.append("")
    no_effect = [c for c in report.changes if c.severity == "none"]
    if no_effect:
        lines.append(f"{len(no_effect)} change(s) without effect on the wire (annotations, respelled patterns).")
        lines.append("")
    return "\n".join(lines)


def _html(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
