"""The HTML report as a document: self-contained, every requirement in spec order linked to its section,
failures shown with what was sent and received (redacted), the edition and kit version named, and
everything that came from a target escaped."""

from __future__ import annotations

import base64
import copy
import hashlib
import re
from html.parser import HTMLParser
from typing import Any

import pytest
from report_data import HOSTILE

from stui_protocol_kit.conformance.report import html_report
from stui_protocol_kit.conformance.report.json_report import kit_version
from stui_protocol_kit.conformance.report.loaded import LoadedRun, label_runs
from stui_protocol_kit.protocol.requirements import requirements, spec_edition


def page(*documents: dict[str, Any], **kwargs: Any) -> str:
    runs = [LoadedRun(d, f"run{i}.json") for i, d in enumerate(documents)]
    label_runs(runs)
    return html_report.render(runs, generated_at="2026-12-02T10:00:00+00:00", **kwargs)


class Tags(HTMLParser):
    """Every start tag with its attributes, and the text outside script and style."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []
        self._in: list[str] = []
        self.script = ""

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        self._in.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if self._in and self._in[-1] == tag:
            self._in.pop()

    def handle_data(self, data: str) -> None:
        if self._in and self._in[-1] == "script":
            self.script += data
        elif not (self._in and self._in[-1] == "style"):
            self.text.append(data)


def parse(text: str) -> Tags:
    tags = Tags()
    tags.feed(text)
    return tags


def test_the_page_is_self_contained(reference_doc: dict[str, Any], faulty_doc: dict[str, Any]) -> None:
    text = page(reference_doc, faulty_doc)
    tags = parse(text)
    names = [t for t, _ in tags.tags]
    assert names.count("script") == 1 and names.count("style") == 1
    for tag, attrs in tags.tags:
        assert "src" not in attrs, (tag, attrs)  # no external script, image, frame or font
        if tag == "link":
            assert attrs == {"rel": "icon", "href": "data:,"}
        href = attrs.get("href")
        if tag == "a" and href is not None:
            assert href.startswith(("#", "spec/")), href
    assert not re.search(r"url\(|@import|https?://", text.split("<style>")[1].split("</style>")[0])
    # The Content-Security-Policy allows nothing from outside and only this page's own script.
    (csp,) = [a["content"] for t, a in tags.tags if t == "meta" and a.get("http-equiv") == "Content-Security-Policy"]
    digest = base64.b64encode(hashlib.sha256(tags.script.encode()).digest()).decode()
    assert f"script-src 'sha256-{digest}'" in csp and "default-src 'none'" in csp


def test_the_page_names_the_spec_edition_and_kit_version(reference_doc: dict[str, Any]) -> None:
    tags = parse(page(reference_doc))
    meta = {a.get("name"): a.get("content") for t, a in tags.tags if t == "meta"}
    assert meta["stui-spec-edition"] == spec_edition() and meta["stui-kit-version"] == kit_version()
    text = "".join(tags.text)
    assert f"Spec edition {spec_edition()} · rendered by stui-protocol-kit {kit_version()}" in text
    assert f"kit version{reference_doc['kit']['version']}" in text.replace("\n", "")


def test_the_matrix_lists_every_requirement_in_spec_order_linked_to_its_section(reference_doc: dict[str, Any]) -> None:
    tags = parse(page(reference_doc))
    rows = [a["id"].removeprefix("req-") for t, a in tags.tags if t == "tr" and "req" in (a.get("class") or "")]
    assert rows == list(requirements())
    links = {a["href"] for t, a in tags.tags if t == "a" and "spec" in (a.get("class") or "")}
    # spec/07-persistence.md, "## 7.1 What is durable when a success reply is sent"
    assert "spec/07-persistence.md#71-what-is-durable-when-a-success-reply-is-sent" in links
    assert all(re.fullmatch(r"spec/\d\d-[a-z-]+\.md#[a-z0-9-]+", link) for link in links), links
    other = parse(page(reference_doc, spec_url="https://example.org/kit/v1.0.0/spec/"))
    assert any(a.get("href", "").startswith("https://example.org/kit/v1.0.0/spec/01-transport.md#")
               for t, a in other.tags if t == "a")


def test_failures_show_problems_exchange_and_never_a_token(faulty_doc: dict[str, Any]) -> None:
    text = page(faulty_doc)
    failed = [c for c in faulty_doc["cases"] if c["outcome"] == "FAILED"]
    assert failed
    for record in failed:
        assert f'id="f-0-{record["id"]}"' in text
        for problem in record["problems"]:
            assert html_report.e(problem["path"]) in text and html_report.e(problem["message"]) in text
    assert "what was sent and what came back" in text
    # Every token in an exchange shown is redacted (a stateful sequence may carry a made-up wrong token,
    # and placeholders for the real ones: it is not an exchange).
    exchanges = [block.split("</details>")[0] for block in text.split('<details class="transcript"')[1:]]
    tokens = [t for block in exchanges for t in re.findall(r"&quot;token&quot;: &quot;(.*?)&quot;", block)]
    assert tokens and all(t.startswith("&lt;redacted:") for t in tokens), tokens


def test_target_supplied_text_is_escaped_everywhere(hostile_doc: dict[str, Any]) -> None:
    text = page(hostile_doc)
    tags = parse(text)
    assert [t for t, _ in tags.tags].count("script") == 1
    assert not [t for t, _ in tags.tags if t in ("img", "iframe", "svg", "b", "style") and t != "style"]
    assert [t for t, _ in tags.tags].count("style") == 1
    for tag, attrs in tags.tags:
        assert not [name for name in attrs if name.startswith("on")], (tag, attrs)
        assert not any("javascript:" in (value or "") for value in attrs.values()), (tag, attrs)
    shown = "".join(tags.text)
    for name in ("title", "message", "server", "reason", "baseline", "sends"):
        assert HOSTILE[name] in shown, name  # shown as text, exactly as the target sent it
    assert "window.__xss='transcript'" in shown and "onerror=window.__xss=1" in shown


def test_a_stateful_failure_shows_its_sequence_and_replay_command(hostile_doc: dict[str, Any]) -> None:
    document = hostile_doc
    text = page(document)
    record = next(c for c in document["cases"] if c["id"] == "stateful.sessions")
    assert record["replay"] == "stui-conformance replay SEQUENCE.jsonl --target tcp://127.0.0.1:1"
    assert f'<pre class="replay-command">{record["replay"]}</pre>' in text
    assert '<pre class="sequence">' in text


def test_a_baselined_case_shows_its_outcome_and_reason(hostile_doc: dict[str, Any]) -> None:
    document = hostile_doc
    tags = parse(page(document))
    shown = "".join(tags.text)
    assert f"baselined: {HOSTILE['baseline']} - the outcome stands" in shown
    case_row = next(a for t, a in tags.tags if t == "tr" and a.get("id") == "case-snapshot.revision-conflict")
    assert case_row["data-outcomes"] == "BASELINED FAILED"


def test_the_same_implementation_twice_gets_a_diff(reference_doc: dict[str, Any], faulty_doc: dict[str, Any]) -> None:
    older, newer = copy.deepcopy(reference_doc), copy.deepcopy(faulty_doc)
    older["started_at"], newer["started_at"] = "2026-12-01T10:00:00+00:00", "2026-12-02T10:00:00+00:00"
    text = page(newer, older)  # the order given does not matter: the older run is the one that started first
    assert 'id="diff"' in text
    section = text.split('id="diff"')[1]
    regressed = section.split('class="regressed-cases"')[1].split("</ul>")[0]
    failing = [c["id"] for c in faulty_doc["cases"] if c["outcome"] == "FAILED"]
    for case_id in failing:
        assert f">{case_id}</a>" in regressed
    assert "Fixed cases (failed, now pass): 0" in section
    assert ">SEC-2</a>" in section.split('class="regressed-requirements"')[1].split("</ul>")[0]


def test_different_implementations_are_side_by_side_without_a_diff(reference_doc: dict[str, Any]) -> None:
    other = copy.deepcopy(reference_doc)
    other["hello"]["server"] = {"name": "pharo-stui", "version": "0.9"}
    text = page(reference_doc, other)
    assert 'id="diff"' not in text
    assert "Compatibility matrix: requirement x implementation" in text
    assert '<th class="run">pharo-stui 0.9</th>' in text


@pytest.mark.parametrize("verdict", ["PASS", "FAIL", "ERROR", "INCOMPLETE"])
def test_the_summary_states_the_verdict(reference_doc: dict[str, Any], verdict: str) -> None:
    document = copy.deepcopy(reference_doc)
    document["verdict"] = verdict
    assert f'<span class="verdict {verdict}">{verdict}</span>' in page(document)
