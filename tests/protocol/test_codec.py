"""Frame-level checks of spec/01-transport.md, in the spec's order."""

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from stui_protocol_kit.protocol.codec import FrameError, decode_body, encode, nesting_depth, parse_rfc3339, rfc3339


def reason(body: bytes, **kw) -> tuple[str, str | None]:
    with pytest.raises(FrameError) as info:
        decode_body(body, **kw)
    return info.value.code, info.value.reason


def test_oversize_body_is_payload_too_large_before_anything_is_parsed():
    assert reason(b"\xff" * 11, max_bytes=10) == ("PayloadTooLarge", None)
    with pytest.raises(FrameError) as info:
        decode_body(b"{}" * 6, max_bytes=10)
    assert info.value.received_bytes == 12


def test_body_exactly_at_the_limit_is_accepted():
    body = b'{"a":"' + b"x" * 10 + b'"}'
    assert decode_body(body, max_bytes=len(body)).message == {"a": "x" * 10}


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (b"\xc3\x28", ("InvalidRequest", "encoding")),
        (b"{not json", ("InvalidRequest", "json")),
        (b'{"a":1,"a":2}', ("InvalidRequest", "json")),
        (b"NaN", ("InvalidRequest", "json")),
        (b"[1,2]", ("InvalidRequest", "not_object")),
        (b'"text"', ("InvalidRequest", "not_object")),
        (b"", ("InvalidRequest", "json")),
        (b'{"a":"\\ud800"}', ("InvalidRequest", "json")),
        (b'{"\\udc00":1}', ("InvalidRequest", "json")),
        (b"\xef\xbb\xbf{}", ("InvalidRequest", "json")),
        (b'{"a":1e400}', ("InvalidRequest", "json")),
        (b'{"a":-1e400}', ("InvalidRequest", "json")),
        (b'{"a":' + b"9" * 310 + b"}", ("InvalidRequest", "json")),
    ],
)
def test_each_malformed_body_gets_its_reason(body, expected):
    assert reason(body) == expected


def test_numbers_within_binary64_range_are_kept():
    assert decode_body(b'{"a":1e308,"b":' + b"1" * 300 + b"}").message == {"a": 1e308, "b": int("1" * 300)}


def test_escaped_surrogate_pairs_are_valid_text():
    assert decode_body(b'{"a":"\\ud83d\\ude00"}').message == {"a": "\U0001F600"}


def test_nesting_deeper_than_the_limit_is_rejected_without_recursing():
    deep = b'{"a":' * 100_000 + b"1" + b"}" * 100_000
    assert reason(deep, max_bytes=10**7, max_depth=32) == ("InvalidRequest", "nesting_depth")


def test_brackets_inside_strings_do_not_count_as_nesting():
    body = json.dumps({"code": "[" * 200 + "{" * 200}).encode()
    assert decode_body(body, max_depth=4).message["code"].startswith("[[[")


def test_nesting_exactly_at_the_limit_is_accepted():
    value: dict = {}
    for _ in range(31):
        value = {"a": value}
    assert nesting_depth(value) == 32
    assert decode_body(encode(value), max_depth=32).message == value


def test_floats_are_noticed_so_the_integer_check_can_run():
    assert decode_body(b'{"a":1800.0}').has_float
    assert decode_body(b'{"a":1e3}').has_float
    assert not decode_body(b'{"a":1800,"b":"1.5"}').has_float


@given(st.binary(max_size=200))
def test_any_bytes_decode_or_raise_frame_error_only(body):
    try:
        decode_body(body, max_bytes=100)
    except FrameError as exc:
        assert exc.code in ("PayloadTooLarge", "InvalidRequest")


def test_encode_is_compact_utf8_and_refuses_nan():
    assert encode({"a": "é", "b": [1]}) == '{"a":"é","b":[1]}'.encode()
    with pytest.raises(ValueError):
        encode({"a": float("nan")})


def test_timestamps_are_utc_with_z_and_round_trip():
    text = rfc3339(1_790_000_000.25)
    assert text == "2026-09-21T14:13:20.250Z"
    assert parse_rfc3339(text).timestamp() == 1_790_000_000.25


def _bracket_depth_by_characters(text: str, limit: int) -> bool:
    """The character-by-character scan _bracket_depth replaced (0.3 s per MiB of brackets): the oracle."""
    depth, in_string, escaped = 0, False, False
    for ch in text:
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch in "[{":
            depth += 1
            if depth > limit:
                return True
        elif ch in "]}":
            depth -= 1
    return False


@given(st.text(alphabet='[]{}"\\a:, ', max_size=40), st.integers(min_value=0, max_value=4))
def test_the_bracket_depth_scan_agrees_with_the_character_scan(text: str, limit: int) -> None:
    from stui_protocol_kit.protocol.codec import _bracket_depth

    assert _bracket_depth(text, limit) == _bracket_depth_by_characters(text, limit)


def test_a_body_of_a_million_integers_skips_the_integer_hook(monkeypatch: pytest.MonkeyPatch) -> None:
    """The integer hook costs a Python call per literal (0.4 s per MiB of integers, issue 10): only a
    body with a literal long enough to leave binary64 takes it, and then it is still refused."""
    import stui_protocol_kit.protocol.codec as codec

    calls: list[str] = []
    original = codec._parse_int
    monkeypatch.setattr(codec, "_local", type(codec._local)())  # decoders built afresh with the spy
    monkeypatch.setattr(codec, "_parse_int", lambda literal: calls.append(literal) or original(literal))
    assert decode_body(b'{"v": [' + b",".join([b"7"] * 1000) + b"]}").message["v"][-1] == 7
    assert calls == []
    with pytest.raises(FrameError) as refused:
        decode_body(b'{"v": [1, ' + b"9" * 400 + b"]}")
    assert "binary64" in refused.value.message and calls
