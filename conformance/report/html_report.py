"""The HTML report: one self-contained page for people (a backend team, a CI artifact) from one run or
several.

What it shows, from run report documents (the JSON report's format, read back by
conformance/report/loaded.py; `run --html` renders its own run the same way):
- a summary per implementation: server name and version from its hello, kit version, spec edition,
  seed, date, counts per outcome, MUST/SHOULD pass rates, the verdict with the unchecked MUST
  requirements and why, the baseline and what became of each entry;
- the requirement matrix: every requirement of the spec in spec order, its level and text, linked to
  its spec section, and per implementation its verdict and the cases that check it with their cells
  (with several runs this is the compatibility matrix, requirement x implementation);
- every case per implementation, and for each failed one what was sent and what came back (tokens are
  redacted when recorded), each problem's requirement, JSON path, expected and actual, the sequence and
  the replay command of a stateful failure;
- the diff between consecutive runs of one implementation (regressed, fixed, other changes);
- filters by outcome, level, group and free text (inline script, no network).

Self-contained and safe to open from file://: inline CSS and one inline script, no external fonts,
scripts or images, and a Content-Security-Policy that allows nothing else (default-src 'none'; the
script by its hash). Everything that came from a target or a file - titles, messages, transcripts,
server names - is HTML-escaped here and only here; the script never turns text into markup.

This module must never judge anything (the documents carry outcomes and verdicts) and never un-redact.
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
import re
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from stui_protocol_kit.conformance.case import GROUPS
from stui_protocol_kit.conformance.report.compare import RunDiff, diff, pairs, rates
from stui_protocol_kit.conformance.report.json_report import kit_version
from stui_protocol_kit.conformance.report.loaded import LoadedRun
from stui_protocol_kit.protocol.requirements import requirements, spec_edition

HERE = Path(__file__).resolve().parent
DEFAULT_SPEC_URL = "spec/"

# Filter values, in the order the filter bar lists them: case outcomes and requirement verdicts share
# PASSED and FAILED; BASELINED marks a failure the baseline expects.
FILTER_OUTCOMES = ("FAILED", "NON-STRICT", "TIMEOUT", "ERROR", "BASELINED", "NOT-CHECKED", "SKIPPED",
                   "UNSUPPORTED", "NOT-APPLICABLE", "UNSELECTED", "PASSED")
PROBLEM_OUTCOMES = ("FAILED", "NON-STRICT", "TIMEOUT", "ERROR")
# Longest text shown for one message or value; the JSON report keeps everything.
MESSAGE_LIMIT = 20_000
VALUE_LIMIT = 4_000


def e(value: Any) -> str:
    """HTML-escape any value (quotes too: safe in text and in attribute values)."""
    return html.escape(str(value), quote=True)


def pretty(value: Any, limit: int = MESSAGE_LIMIT) -> str:
    text = value if isinstance(value, str) else json.dumps(value, indent=2, ensure_ascii=False, default=str)
    if len(text) > limit:
        text = text[:limit] + f"\n... ({len(text) - limit} more characters in the JSON report)"
    return text


def slug(heading: str) -> str:
    """The anchor GitHub and most Markdown renderers give a heading ("7.1 What is durable" ->
    "71-what-is-durable")."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def badge(value: str, extra: str = "") -> str:
    title = f' title="{e(extra)}"' if extra else ""
    return f'<span class="b {e(value)}"{title}>{e(value)}</span>'


class _Page:
    def __init__(self, runs: list[LoadedRun], spec_url: str, generated_at: str) -> None:
        self.runs = runs
        self.spec_url = spec_url
        self.generated_at = generated_at
        self.index = requirements()
        self.out: list[str] = []
        self._diffs: list[RunDiff] | None = None

    def w(self, *parts: str) -> None:
        self.out.extend(parts)

    # -- page --------------------------------------------------------------------------------------

    def render(self) -> str:
        script = (HERE / "html_report.js").read_text(encoding="utf-8")
        style = (HERE / "html_report.css").read_text(encoding="utf-8")
        digest = base64.b64encode(hashlib.sha256(script.encode("utf-8")).digest()).decode("ascii")
        csp = (f"default-src 'none'; script-src 'sha256-{digest}'; style-src 'unsafe-inline'; img-src data:;"
               " base-uri 'none'; form-action 'none'")
        names = ", ".join(run.label for run in self.runs)
        self.w('<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n',
               f'<meta http-equiv="Content-Security-Policy" content="{e(csp)}">\n',
               '<meta name="viewport" content="width=device-width, initial-scale=1">\n',
               f'<meta name="stui-spec-edition" content="{e(spec_edition())}">\n',
               f'<meta name="stui-kit-version" content="{e(kit_version())}">\n',
               '<link rel="icon" href="data:,">\n',
               f"<title>STUI conformance: {e(names)}</title>\n<style>\n{style}</style>\n</head>\n<body>\n")
        self.header()
        self.w("<main>\n")
        self.summaries()
        self.filters()
        self.matrix()
        self.cases()
        self.failures()
        self.diffs()
        self.w("</main>\n", f"<script>{script}</script>\n</body>\n</html>\n")
        return "".join(self.out)

    def header(self) -> None:
        count = len(self.runs)
        self.w('<header class="page">\n<h1>STUI conformance report</h1>\n',
               f'<p id="edition">Spec edition <strong>{e(spec_edition())}</strong> · rendered by stui-protocol-kit '
               f'<strong>{e(kit_version())}</strong> · {e(self.generated_at)} · {count} run{"s" if count > 1 else ""}:'
               f" {e(', '.join(r.label for r in self.runs))}</p>\n",
               '<nav class="toc"><a href="#summary">Summary</a><a href="#matrix">Requirements</a>'
               '<a href="#cases">Cases</a><a href="#failures">Failures</a>')
        if self._pairs():
            self.w('<a href="#diff">Changes between runs</a>')
        self.w("</nav>\n</header>\n")

    # -- summary -----------------------------------------------------------------------------------

    def summaries(self) -> None:
        self.w('<h2 id="summary">Summary</h2>\n<div class="cards">\n')
        for i, run in enumerate(self.runs):
            self.summary(i, run)
        self.w("</div>\n")

    def summary(self, i: int, run: LoadedRun) -> None:
        doc = run.document
        hello = doc.get("hello", {})
        cfg = doc["config"]
        verdict = doc["verdict"]
        self.w(f'<section class="card" id="run-{i}" data-verdict="{e(verdict)}">\n<h3>{e(run.label)}</h3>\n',
               f'<div><span class="verdict {e(verdict)}">{e(verdict)}</span> <span class="muted">exit code '
               f'{e(doc["exit_code"])}</span></div>\n')
        self.w(f'<p class="verdict-text">{e(_verdict_text(doc))}</p>\n')
        for note in run.notes:
            self.w(f'<div class="flag bad edition-flag">{e(note)}</div>\n')
        if doc.get("partial"):
            self.w('<div class="flag">partial: the run was interrupted; only the cases that finished are'
                   " listed</div>\n")
        server = hello.get("server") if isinstance(hello.get("server"), dict) else {}
        selection = " ".join([*(f"--select {s}" for s in cfg["select"]), *(f"--exclude {s}" for s in cfg["exclude"])])
        facts = [
            ("server", f"{server.get('name', '?')} {server.get('version', '?')}"),
            ("target", doc["target"]),
            ("protocol versions", ", ".join(map(str, hello.get("protocol_versions", []))) or "?"),
            ("capabilities", ", ".join(map(str, hello.get("capabilities", []))) or "none"),
            ("kit version", doc["kit"]["version"]),
            ("spec edition", f"{doc['spec']['edition']} (protocol {doc['spec']['protocol_version']})"),
            ("seed", f"{cfg['seed']} (examples {cfg['examples']})"),
            ("date", doc["started_at"]),
            ("duration", f"{doc['duration_s']:.1f} s"),
            ("settings", ", ".join([
                f"socket {cfg['socket']}", f"timeout {cfg['timeout_s']} s", f"expiry budget {cfg['expiry_budget_s']} s",
                *(["strict"] if cfg["strict"] else []), *(["differential"] if cfg["differential"] else []),
                "restart command given" if cfg["restart_command"] else "no restart command"])),
            ("selection", selection or "all cases"),
        ]
        if run.source:
            facts.append(("report file", run.source))
        self.w("<dl>\n", *(f"<dt>{e(k)}</dt><dd>{e(v)}</dd>\n" for k, v in facts), "</dl>\n")
        counts = doc["counts"]
        # Chips that wrap: the cards stay short enough to see the matrix below them.
        self.w('<ul class="counts">',
               *(f'<li>{badge(o)} <span class="num" data-outcome="{e(o)}">{e(n)}</span></li>'
                 for o, n in counts.items()),
               f'<li>total <span class="num">{sum(counts.values())}</span></li></ul>\n')
        self.w('<dl class="rates">\n')
        for level, rate in rates(doc).items():
            self.w(f'<dt>{e(level)} requirements</dt><dd class="rate" data-level="{e(level)}">{e(rate.text())}</dd>\n')
        self.w("</dl>\n")
        baselined = set(doc.get("baseline", {}).get("baselined_requirements", []))
        if doc["failed_must"]:
            self.w(f"<p>MUST requirements broken: {self._req_links(doc['failed_must'], baselined)}</p>\n")
        if doc["failed_should"]:
            self.w(f"<p>SHOULD requirements broken: {self._req_links(doc['failed_should'], baselined)}</p>\n")
        if doc["unchecked_must"]:
            self.w(f'<details class="unchecked" open><summary>{len(doc["unchecked_must"])} MUST requirement(s) not'
                   " checked, and why</summary><ul>\n")
            for req_id in doc["unchecked_must"]:
                why = "; ".join(doc["requirements"].get(req_id, {}).get("why_not_checked", []))
                self.w(f'<li><a href="#req-{e(req_id)}">{e(req_id)}</a>: {e(why)}</li>\n')
            self.w("</ul></details>\n")
        if "baseline" in doc:
            self.baseline(doc["baseline"])
        self.w("</section>\n")

    def baseline(self, baseline: dict[str, Any]) -> None:
        entries = baseline["entries"]
        self.w(f'<details class="baseline" open><summary>Baseline {e(baseline["source"])}: {len(entries)} '
               f"entr{'y' if len(entries) == 1 else 'ies'}</summary>\n")
        if entries:
            self.w('<table class="small"><thead><tr><th>case</th><th>status</th><th>reason</th><th>this run</th>'
                   "</tr></thead><tbody>\n")
            for entry in entries:
                self.w(f'<tr class="baseline-entry" data-status="{e(entry["status"])}"><td class="mono">'
                       f'{e(entry["case"])}</td><td>{badge(entry["status"])}</td><td>{e(entry["reason"])}</td>'
                       f'<td>{e(entry["why"])}</td></tr>\n')
            self.w("</tbody></table>\n")
        self.w("</details>\n")

    def _req_links(self, ids: Iterable[str], baselined: set[str]) -> str:
        return ", ".join(f'<a href="#req-{e(r)}">{e(r)}</a>' + (" (baselined)" if r in baselined else "")
                         for r in ids)

    # -- filters -----------------------------------------------------------------------------------

    def filters(self) -> None:
        self.w('<form id="filters" class="filters" aria-label="Filters">\n<fieldset><legend>Outcome</legend>')
        for outcome in FILTER_OUTCOMES:
            self.w(f'<label><input type="checkbox" name="outcome" value="{e(outcome)}" checked> '
                   f"{badge(outcome)}</label>")
        self.w('</fieldset>\n<fieldset><legend>Level</legend>')
        for level in ("MUST", "SHOULD", "MAY"):
            self.w(f'<label><input type="checkbox" name="level" value="{level}" checked> {level}</label>')
        groups = [g for g in GROUPS if any(c["id"].split(".", 1)[0] == g for r in self.runs
                                           for c in r.document["cases"])]
        self.w('</fieldset>\n<label>Group <select name="group"><option value="">all groups</option>',
               *(f'<option value="{e(g)}">{e(g)}</option>' for g in groups), "</select></label>\n",
               '<label>Text <input type="search" name="q" placeholder="ID, words, path..."></label>\n',
               '<button type="button" id="only-problems">Only problems</button>'
               '<button type="button" id="show-all">Show all</button>\n</form>\n')

    # -- requirement matrix ------------------------------------------------------------------------

    def matrix(self) -> None:
        ids: list[str] = []
        for run in self.runs:
            ids += [r for r in run.document["requirements"] if r not in ids]
        title = "Compatibility matrix: requirement x implementation" if len(self.runs) > 1 else "Requirement matrix"
        self.w(f'<h2 id="matrix">{title} <span class="shown" data-section="matrix"></span></h2>\n',
               '<p class="muted small">Every requirement of the spec in spec order. A requirement is FAILED only when '
               "a check of it failed; NOT-CHECKED when its cases were skipped, erred or stopped first; NOT-APPLICABLE "
               "when the implementation does not announce the optional feature. Cells: what each case says about "
               "it.</p>\n<table class=\"matrix\"><thead><tr><th>Requirement</th><th>Level</th><th>Text</th>")
        for run in self.runs:
            self.w(f'<th class="run">{e(run.label)}</th>')
        self.w("</tr></thead><tbody>\n")
        for req_id in ids:
            self.requirement_row(req_id)
        self.w("</tbody></table>\n")

    def requirement_row(self, req_id: str) -> None:
        row = next(r.document["requirements"][req_id] for r in self.runs if req_id in r.document["requirements"])
        verdicts, groups = [], set()
        for run in self.runs:
            mine = run.document["requirements"].get(req_id)
            verdicts.append(mine["verdict"] if mine else "absent")
            for case_id in (mine or {}).get("cases", {}):
                groups.add(case_id.split(".", 1)[0])
        outcomes = set(verdicts) | ({"BASELINED"} if self._baselined_req(req_id) else set())
        self.w(f'<tr class="f-item req" id="req-{e(req_id)}" data-section="matrix" '
               f'data-outcomes="{e(" ".join(sorted(outcomes)))}" data-level="{e(row["level"])}" '
               f'data-groups="{e(" ".join(sorted(groups)))}">')
        self.w(f"<td>{self._spec_link(req_id, row['section'])}</td><td>{e(row['level'])}</td>"
               f'<td class="text">{e(row["text"])}</td>')
        for i, run in enumerate(self.runs):
            self.w(f'<td class="run" data-run="{i}">')
            mine = run.document["requirements"].get(req_id)
            if mine is None:
                self.w(badge("absent", "this report does not have this requirement (another edition?)"), "</td>")
                continue
            self.w(badge(mine["verdict"]))
            if req_id in run.document.get("baseline", {}).get("baselined_requirements", []):
                self.w(" ", badge("BASELINED", "broken only by cases the baseline lists"))
            if mine.get("why_not_checked"):
                self.w(f'<div class="small muted">{e("; ".join(mine["why_not_checked"]))}</div>')
            cells = list(mine["cases"].items())
            if cells:
                shown = [(c, v) for c, v in cells if v != "PASSED"]
                passed = [c for c, v in cells if v == "PASSED"]
                self.w('<ul class="cells">', *(f"<li>{self._case_link(i, c, v)} {badge(v)}</li>" for c, v in shown),
                       "</ul>")
                if passed:
                    self.w(f'<details class="small"><summary>{len(passed)} case{"s" if len(passed) > 1 else ""} '
                           'PASSED</summary><ul class="cells">',
                           *(f"<li>{self._case_link(i, c, 'PASSED')}</li>" for c in passed), "</ul></details>")
            self.w("</td>")
        self.w("</tr>\n")

    def _baselined_req(self, req_id: str) -> bool:
        return any(req_id in r.document.get("baseline", {}).get("baselined_requirements", []) for r in self.runs)

    def _spec_link(self, req_id: str, section: str) -> str:
        known = self.index.get(req_id)
        anchor = f"#{slug(known.heading)}" if known is not None and known.section == section and known.heading else ""
        if not section:
            return f'<span class="mono">{e(req_id)}</span>'
        where = f"{section} {known.heading}" if known is not None and known.heading else section
        return (f'<a class="spec mono" href="{e(self.spec_url + section + anchor)}" title="{e(where)}">{e(req_id)}</a>'
                f'<div class="small muted">{e(section)}</div>')

    def _case_link(self, run: int, case_id: str, cell: str) -> str:
        target = f"f-{run}-{case_id}" if cell in ("FAILED", "NOT-REACHED", "ERROR") else f"case-{case_id}"
        return f'<a class="mono" href="#{e(target)}">{e(case_id)}</a>'

    # -- cases -------------------------------------------------------------------------------------

    def cases(self) -> None:
        order: dict[str, dict[str, Any]] = {}
        for run in self.runs:
            for record in run.document["cases"]:
                order.setdefault(record["id"], record)
        rank = {g: n for n, g in enumerate(GROUPS)}
        ids = sorted(order, key=lambda c: rank.get(c.split(".", 1)[0], len(rank)))  # stable: keeps run order
        self.w('<h2 id="cases">Cases <span class="shown" data-section="cases"></span></h2>\n'
               '<table class="cases"><thead><tr><th>Case</th><th>Level</th><th>Title</th><th>Requirements</th>')
        for run in self.runs:
            self.w(f'<th class="run">{e(run.label)}</th>')
        self.w("</tr></thead><tbody>\n")
        by_run = [{c["id"]: c for c in run.document["cases"]} for run in self.runs]
        for case_id in ids:
            record = order[case_id]
            outcomes = set()
            for mine in by_run:
                if case_id in mine:
                    outcomes.add(mine[case_id]["outcome"])
                    if "baselined" in mine[case_id]:
                        outcomes.add("BASELINED")
            reqs = ", ".join(f'<a href="#req-{e(r)}">{e(r)}</a>' for r in record["requirements"])
            self.w(f'<tr class="f-item case" id="case-{e(case_id)}" data-section="cases" '
                   f'data-outcomes="{e(" ".join(sorted(outcomes)))}" data-level="{e(record["level"])}" '
                   f'data-groups="{e(record["group"])}"><td class="mono">{e(case_id)}</td><td>{e(record["level"])}'
                   f'</td><td>{e(record["title"])}</td><td class="mono small">{reqs}</td>')
            for i, mine in enumerate(by_run):
                self.w(f'<td class="run" data-run="{i}">')
                if case_id not in mine:
                    self.w(badge("absent", "not in this run (not selected)"), "</td>")
                    continue
                this = mine[case_id]
                link = this["outcome"] in PROBLEM_OUTCOMES
                text = badge(this["outcome"])
                self.w(f'<a href="#f-{i}-{e(case_id)}">{text}</a>' if link else text)
                if "baselined" in this:
                    self.w(" ", badge("BASELINED", this["baselined"]))
                    self.w(f'<div class="small">baselined: {e(this["baselined"])}</div>')
                note = _headline(this)
                if note:
                    self.w(f'<div class="small muted">{e(note)}</div>')
                self.w("</td>")
            self.w("</tr>\n")
        self.w("</tbody></table>\n")

    # -- failures ----------------------------------------------------------------------------------

    def failures(self) -> None:
        self.w('<h2 id="failures">Failures and errors <span class="shown" data-section="failures"></span></h2>\n')
        for i, run in enumerate(self.runs):
            bad = [c for c in run.document["cases"] if c["outcome"] in PROBLEM_OUTCOMES]
            self.w(f"<h3>{e(run.label)}: {len(bad)} case{'s' if len(bad) != 1 else ''}</h3>\n")
            if not bad:
                self.w('<p class="muted">No case failed, timed out or erred.</p>\n')
            for record in bad:
                self.failure(i, run, record)

    def failure(self, i: int, run: LoadedRun, record: dict[str, Any]) -> None:
        baselined = "baselined" in record
        outcomes = {record["outcome"], *(["BASELINED"] if baselined else [])}
        classes = "failure f-item" + (" is-baselined" if baselined else "")
        self.w(f'<section class="{classes}" id="f-{i}-{e(record["id"])}" data-section="failures" '
               f'data-outcomes="{e(" ".join(sorted(outcomes)))}" data-level="{e(record["level"])}" '
               f'data-groups="{e(record["group"])}">\n<h4>{badge(record["outcome"])} '
               f'<span class="mono">{e(record["id"])}</span> <span class="muted">[{e(record["level"])}]</span> '
               f"{e(record['title'])}</h4>\n")
        if len(self.runs) > 1:
            self.w(f'<div class="small muted">{e(run.label)}</div>\n')
        if baselined:
            self.w(f'<div class="flag">baselined: {e(record["baselined"])} - the outcome stands; it does not fail'
                   " the run</div>\n")
        if record["sends"]:
            self.w(f'<div class="small">sends: {e(record["sends"])}</div>\n')
        if record.get("allows"):
            self.w(f'<div class="small">the spec allows: {e(", ".join(record["allows"]))}</div>\n')
        if record.get("reason"):
            label = "suite error (not the target's fault)" if record["outcome"] == "ERROR" else "reason"
            self.w(f'<div class="reason"><strong>{e(label)}:</strong> {e(record["reason"])}</div>\n')
        if record["problems"]:
            self.w('<table class="problems"><thead><tr><th>Requirement</th><th>Where</th><th>Problem</th>'
                   "<th>Expected</th><th>Actual</th></tr></thead><tbody>\n")
            for p in record["problems"]:
                text = run.document["requirements"].get(p["requirement"], {}).get("text", "")
                expected = e(pretty(p["expected"], VALUE_LIMIT)) if "expected" in p else "-"
                actual = e(pretty(p["actual"], VALUE_LIMIT)) if "actual" in p else "-"
                self.w(f'<tr class="problem"><td><a class="mono" href="#req-{e(p["requirement"])}">'
                       f'{e(p["requirement"])}</a><div class="small muted">{e(text)}</div></td>'
                       f'<td class="mono">{e(p["subject"])} <span class="path">{e(p["path"])}</span></td>'
                       f'<td>{e(p["message"])}</td>'
                       f'<td><pre class="expected">{expected}</pre></td><td><pre class="actual">{actual}</pre></td>'
                       "</tr>\n")
            self.w("</tbody></table>\n")
        if record.get("violations"):
            self.w(f'<details><summary>schema violations ({len(record["violations"])})</summary>'
                   f'<pre>{e(pretty(record["violations"]))}</pre></details>\n')
        if record.get("sequence"):
            self.w('<div class="replay"><strong>Minimal failing sequence</strong> (JSON Lines, secrets as '
                   "placeholders): save it as SEQUENCE.jsonl and replay it with</div>\n"
                   f'<pre class="replay-command">{e(record.get("replay", "stui-conformance replay SEQUENCE.jsonl"))}'
                   f'</pre>\n<pre class="sequence">{e(record["sequence"])}</pre>\n')
        for note in record.get("notes", []):
            self.w(f'<div class="small">note: {e(note)}</div>\n')
        if record.get("detail"):
            self.w(f'<details><summary>traceback (for the kit\'s authors)</summary><pre>{e(record["detail"])}</pre>'
                   "</details>\n")
        transcript = record.get("transcript", [])
        if transcript:
            # Open when short: a long exchange (a stateful run) would bury the next failure.
            opened = " open" if len(transcript) <= 12 else ""
            self.w(f'<details class="transcript"{opened}><summary>what was sent and what came back ({len(transcript)}'
                   " messages; tokens redacted)</summary>\n")
            start = transcript[0].get("at")
            for entry in transcript:
                self.w(f'<div class="entry {e(entry["direction"])}"><span class="dir">{e(entry["direction"])}</span> '
                       f'<span class="muted small">{e(_offset(entry.get("at"), start))}</span>'
                       f'<pre>{e(pretty(entry.get("message")))}</pre></div>\n')
            self.w("</details>\n")
        self.w("</section>\n")

    # -- diff --------------------------------------------------------------------------------------

    def _pairs(self) -> list[RunDiff]:
        if self._diffs is None:
            self._diffs = [diff(old, new) for old, new in pairs(self.runs)]
        return self._diffs

    def diffs(self) -> None:
        found = self._pairs()
        if not found:
            return
        self.w('<h2 id="diff">Changes between runs of the same implementation</h2>\n')
        for d in found:
            before, after = d.verdicts
            self.w(f'<section class="diff"><h3>{e(d.older.label)} → {e(d.newer.label)}</h3>\n'
                   f"<p>verdict {badge(before)} → {badge(after)} · started {e(d.older.document['started_at'])} → "
                   f"{e(d.newer.document['started_at'])}</p>\n")
            self._changes("Regressed cases (passed, now fail)", "regressed-cases", d.regressed_cases, True)
            self._changes("Fixed cases (failed, now pass)", "fixed-cases", d.fixed_cases, True)
            self._changes("Regressed requirements", "regressed-requirements", d.regressed_requirements, False)
            self._changes("Fixed requirements", "fixed-requirements", d.fixed_requirements, False)
            others = d.other_cases + d.other_requirements
            if others:
                self.w(f"<details><summary>{len(others)} other change(s)</summary>")
                self._changes("Other case changes", "other-cases", d.other_cases, True)
                self._changes("Other requirement changes", "other-requirements", d.other_requirements, False)
                self.w("</details>")
            if d.only_older or d.only_newer:
                self.w(f'<p class="small muted">{len(d.only_older)} case(s) only in the older run, {len(d.only_newer)}'
                       " only in the newer (another selection or kit): not compared.</p>\n")
            self.w("</section>\n")

    def _changes(self, title: str, kind: str, changes: list[Any], cases: bool) -> None:
        self.w(f'<h4>{e(title)}: {len(changes)}</h4>\n')
        if not changes:
            return
        self.w(f'<ul class="{e(kind)}">')
        for c in changes:
            link = f"case-{c.id}" if cases else f"req-{c.id}"
            self.w(f'<li><a class="mono" href="#{e(link)}">{e(c.id)}</a> {badge(c.before)} → {badge(c.after)}'
                   + (f' <span class="small muted">{e(c.what)}</span>' if c.what else "") + "</li>")
        self.w("</ul>\n")


def _verdict_text(doc: dict[str, Any]) -> str:
    verdict = doc["verdict"]
    baseline = doc.get("baseline")
    forgiven = set(baseline["baselined_requirements"]) if baseline else set()
    stale = [x for x in baseline["entries"] if x["status"] == "stale"] if baseline else []
    must = [r for r in doc["failed_must"] if r not in forgiven]
    if verdict == "PASS":
        if baseline and any(x["status"] == "baselined" for x in baseline["entries"]):
            return ("nothing failed beyond the cases the baseline lists, and none of them is fixed: passing against"
                    " the baseline, not yet conformant")
        return "every MUST requirement of the selected cases was checked and held"
    if verdict == "FAIL":
        parts = []
        if must:
            parts.append(f"{len(must)} MUST requirement(s) broken: {', '.join(must)}")
        if stale:
            parts.append(f"the baseline went stale ({len(stale)} entr{'y' if len(stale) == 1 else 'ies'}: "
                         + "; ".join(x["why"] for x in stale) + ")")
        return "; ".join(parts) or "a reply was missing, or a SHOULD requirement broken under --strict"
    if verdict == "ERROR":
        return "the suite could not check some cases (its own trouble, never the target's); nothing failed"
    return (f"nothing failed, but {len(doc['unchecked_must'])} MUST requirement(s) were not checked (listed below,"
            " with what would let them run)")


def _headline(record: dict[str, Any]) -> str:
    if record["problems"]:
        first = record["problems"][0]
        return f"{first['requirement']} at {first['path']}: {first['message']}"[:300]
    return record.get("reason", "")[:300]


def _offset(value: Any, start: Any) -> str:
    """When a message went or came, in seconds after the first of the exchange."""
    if isinstance(value, int | float) and isinstance(start, int | float):
        return f"+{value - start:.3f} s"
    return ""


def render(runs: list[LoadedRun], spec_url: str = DEFAULT_SPEC_URL, generated_at: str | None = None) -> str:
    """The page for `runs` (one or more run report documents, labelled)."""
    if not runs:
        raise ValueError("an HTML report needs at least one run")
    when = generated_at or datetime.now(UTC).isoformat(timespec="seconds")
    return _Page(runs, spec_url, when).render()


def write(runs: list[LoadedRun], path: str | Path, spec_url: str = DEFAULT_SPEC_URL) -> None:
    Path(path).write_text(render(runs, spec_url), encoding="utf-8")
