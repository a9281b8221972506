"""The requirement index parser, token redaction, and the lifecycle table vs the spec's diagram."""

import re

import pytest

from stui_protocol_kit.protocol import lifecycle
from stui_protocol_kit.protocol.lifecycle import Event, State, TransitionError, next_state
from stui_protocol_kit.protocol.redaction import redact, secret_member_names
from stui_protocol_kit.protocol.requirements import load, parse, spec_dir

DOC = """# Envelope
- **[ENV-1]** A server MUST echo the id
  of the request.
- **[ENV-2]** A client SHOULD NOT send nulls.
- **[ENV-3]** A server MAY add members.

Prose with no keyword.
"""


def test_bullets_become_requirements_with_levels_and_joined_lines():
    reqs = parse(DOC, "02-envelope.md")
    assert [(r.id, r.level) for r in reqs] == [("ENV-1", "MUST"), ("ENV-2", "SHOULD"), ("ENV-3", "MAY")]
    assert reqs[0].text == "A server MUST echo the id of the request."
    assert reqs[0].heading == "Envelope"


def test_a_requirement_without_a_keyword_is_an_error():
    with pytest.raises(ValueError, match="ENV-9"):
        parse("- **[ENV-9]** The server echoes.\n", "x.md")


def test_retired_requirements_keep_their_id_but_are_not_indexed():
    assert parse("- **[ENV-7]** (retired in 1.1) replaced by ENV-12.\n", "x.md") == []


def test_duplicate_ids_across_files_are_an_error(tmp_path):
    (tmp_path / "a.md").write_text("- **[ENV-1]** X MUST y.\n")
    (tmp_path / "b.md").write_text("- **[ENV-1]** X MUST z.\n")
    with pytest.raises(ValueError, match="defined twice"):
        load(tmp_path)


def test_the_spec_has_requirements_in_every_section():
    index = load()
    assert len(index) >= 60
    prefixes = {rid.split("-")[0] for rid in index}
    for prefix in ("TRN", "ENV", "VER", "SEC", "PER", "ERR", "CMP", "LIF", "RTY"):
        assert prefix in prefixes


def test_lifecycle_table_allows_only_its_transitions():
    assert next_state(None, Event.CREATE) is State.ACTIVE
    assert next_state(State.ACTIVE, Event.CLOSE) is State.CLOSED
    with pytest.raises(TransitionError):
        next_state(State.CLOSED, Event.USE)
    with pytest.raises(TransitionError):
        next_state(State.EXPIRED, Event.CLOSE)


def test_spec_diagram_is_the_one_generated_from_the_table():
    text = (spec_dir() / "05-lifecycle.md").read_text()
    block = re.search(r"<!-- lifecycle-diagram:begin -->\s*```mermaid\n(.*?)```\s*<!-- lifecycle-diagram:end -->",
                      text, re.S)
    assert block, "spec/05-lifecycle.md lacks the generated diagram markers"
    assert block.group(1).strip() == lifecycle.mermaid().strip()


def test_secret_members_come_from_the_schemas_and_are_redacted_everywhere():
    assert "token" in secret_member_names()
    out = redact({"parameters": {"token": "secret-value", "nested": [{"token": "other"}]}, "id": "x"})
    assert "secret-value" not in repr(out) and "other" not in repr(out)
    assert out["id"] == "x"
    assert "secret-value" not in repr(redact({"token": ["secret-value"], "p": {"token": {"k": "secret-value"}}}))
