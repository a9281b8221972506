"""The requirement index: every normative statement of `spec/*.md` with its stable ID and level.

A requirement is one Markdown bullet `- **[PREFIX-N]** sentence...`; its level is the first RFC 2119
keyword in the sentence. Conformance cases cite these IDs, reports quote the text, and a test fails
when a MUST has no case. This module only reads the spec; it never decides what a requirement means.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path

_BULLET = re.compile(r"^\s*[-*]\s+\*\*\[(?P<id>[A-Z]{2,4}-\d+)\]\*\*\s*(?P<text>.*)$")
# Order matters: "MUST NOT" before "MUST", "SHOULD NOT" before "SHOULD".
_KEYWORDS = [
    ("MUST NOT", "MUST"), ("MUST", "MUST"), ("REQUIRED", "MUST"), ("SHALL NOT", "MUST"),
    ("SHALL", "MUST"), ("SHOULD NOT", "SHOULD"), ("SHOULD", "SHOULD"), ("RECOMMENDED", "SHOULD"),
    ("MAY", "MAY"), ("OPTIONAL", "MAY"),
]
_KEYWORD_RE = re.compile(r"\b(" + "|".join(re.escape(k) for k, _ in _KEYWORDS) + r")\b")
_LEVEL = dict(_KEYWORDS)


@dataclass(frozen=True)
class Requirement:
    id: str
    level: str  # MUST | SHOULD | MAY
    text: str
    section: str  # spec file name, e.g. "04-commands.md"
    heading: str  # nearest heading above the bullet
    line: int
    topic: str = ""  # the nearest second-level heading (e.g. "4.7 evaluate" for a bullet under 4.7.2)


def spec_dir() -> Path:
    # Installed, `stui_protocol_kit/spec` sits beside `stui_protocol_kit/protocol`; in the source tree
    # `spec/` sits beside `protocol/`: the same relative place either way.
    return Path(__file__).resolve().parent.parent / "spec"


def parse(text: str, section: str) -> list[Requirement]:
    """Requirements in one Markdown document, with continuation lines joined to their bullet."""
    found: list[Requirement | None] = []
    heading = topic = ""
    current: dict | None = None
    for number, line in enumerate(text.splitlines(), start=1):
        if line.startswith("#"):
            heading = line.lstrip("#").strip()
            if line.startswith("## "):
                topic = heading
        match = _BULLET.match(line)
        if match:
            if current:
                found.append(_finish(current))
            current = {
                "id": match["id"], "text": match["text"], "section": section, "heading": heading, "line": number,
                "topic": topic,
            }
        elif current and line.startswith("  ") and line.strip() and not line.lstrip().startswith(("-", "*")):
            current["text"] += " " + line.strip()
        elif current:
            found.append(_finish(current))
            current = None
    if current:
        found.append(_finish(current))
    return [req for req in found if req is not None]


def _finish(raw: dict) -> Requirement | None:
    if raw["text"].lstrip().startswith("(retired"):
        return None  # a withdrawn requirement keeps its ID listed so it is never reused
    keyword = _KEYWORD_RE.search(raw["text"])
    if keyword is None:
        raise ValueError(f"{raw['section']}:{raw['line']}: requirement {raw['id']} has no RFC 2119 keyword")
    level = _LEVEL[keyword.group(1)]
    return Requirement(raw["id"], level, raw["text"].strip(), raw["section"], raw["heading"], raw["line"],
                       raw["topic"])


def load(directory: Path | None = None) -> dict[str, Requirement]:
    """All requirements of the spec, by ID; duplicate IDs are an error."""
    directory = directory or spec_dir()
    index: dict[str, Requirement] = {}
    for path in sorted(directory.glob("*.md")):
        for req in parse(path.read_text(encoding="utf-8"), path.name):
            if req.id in index:
                other = index[req.id]
                raise ValueError(
                    f"requirement {req.id} defined twice: {other.section}:{other.line} and {req.section}:{req.line}"
                )
            index[req.id] = req
    return index


@cache
def requirements() -> dict[str, Requirement]:
    """The process-wide index, read once."""
    return load()


@cache
def success_requirement(command: str) -> str:
    """The requirement a command's success reply is held to: the first one of the command's section of
    spec/04-commands.md (e.g. "RES-1" for session.resume). What a failure of a step that expected
    success breaks, when a case states nothing more precise."""
    for req in requirements().values():
        if req.section == "04-commands.md" and req.topic.split(" ", 1)[-1] == command:
            return req.id
    raise KeyError(f"spec/04-commands.md has no section for {command!r}")


@cache
def spec_edition() -> str:
    """The spec edition (`MAJOR.MINOR.PATCH`, spec/README.md "Spec edition: **X**"), named in every report."""
    match = re.search(r"Spec edition: \*\*(\d+\.\d+\.\d+)\*\*", (spec_dir() / "README.md").read_text(encoding="utf-8"))
    if match is None:
        raise ValueError("spec/README.md does not state the spec edition")
    return match.group(1)
