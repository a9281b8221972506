"""Session.encoded_state (the snapshot's one encoding of each part) is byte for byte the encoding of
the state document, and its client size is what client_parts_size says."""

from __future__ import annotations

from stui_protocol_kit.protocol.codec import encode
from stui_protocol_kit.protocol.lifecycle import SessionLifecycle, Timeouts
from stui_protocol_kit.reference_server.evaluator import evaluate
from stui_protocol_kit.reference_server.sessions import Session, client_parts_size


def _session() -> Session:
    s = Session(session_id="s" * 22, client_id="c", token_digest=b"", revision=0, head_revision=0, object_epoch=3,
                lifecycle=SessionLifecycle.create(Timeouts(60, 600, 120), 0.0))
    s.start_empty()
    return s


def test_encoded_state_is_the_documents_encoding() -> None:
    s = _session()
    value, assignments = evaluate("a := 'héllo \u2603 \"q\"'. b := 12345678901234567890 * 3", s.variables or {})
    bindings, size = s.planned_bindings(assignments)
    s.bind(assignments, bindings, size)
    s.register_object(s.new_object_id(), value.to_binding())
    s.set_client_parts({"pane": [1, {"x": "\u00e9\n"}], "t": None}, {"theme": "dark"})
    for inspector, preferences in ((None, None), ({"k": ["\ud7ff", 1.5, True]}, None), (None, {}), ({}, {"a": {}})):
        encoded, client = s.encoded_state(inspector, preferences)
        assert encoded == encode(s.state_document(inspector, preferences))
        expected_i = s.inspector if inspector is None else inspector
        expected_p = s.preferences if preferences is None else preferences
        assert client == client_parts_size(expected_i, expected_p)


def test_kept_encoding_follows_every_change() -> None:
    s = _session()
    first, _ = s.encoded_state({"a": 1}, None)
    assert first == encode(s.state_document({"a": 1}, None))
    _, assignments = evaluate("x := 41 + 1", s.variables or {})
    bindings, size = s.planned_bindings(assignments)
    s.bind(assignments, bindings, size)
    after_bind, _ = s.encoded_state()
    assert after_bind == encode(s.state_document()) and b'"x"' in after_bind
    s.register_object(s.new_object_id(), {"class": "SmallInteger", "print_string": "7"})
    after_object, _ = s.encoded_state()
    assert after_object == encode(s.state_document()) and b'"7"' in after_object
    s.load_state({"workspace": {"variables": {}}, "objects": {}, "inspector": {}, "preferences": {}})
    assert s.encoded_state()[0] == encode(s.state_document()) and b'"x"' not in s.encoded_state()[0]
