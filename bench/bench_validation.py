"""Validation cost per request: the kit's hot path vs python-jsonschema alone, side by side.

Run: python bench/bench_validation.py [--seconds S]
Prints requests/s and microseconds per request for each validator on the same messages in one run,
and the ratio. Figures, not assertions: this machine is shared and noisy (tests check behaviour).
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import jsonschema

from stui_protocol_kit.protocol.validation import MessageValidator, _RichValidator

SID, TOKEN = "S" * 22, "T" * 43
MESSAGES = {
    "session.snapshot": {
        "id": "r-1", "version": "1.0", "command": "session.snapshot",
        "parameters": {"session_id": SID, "token": TOKEN, "expected_revision": 7,
                       "state": {"inspector": {"selection": "obj-3", "panes": [1, 2, 3]},
                                 "preferences": {"theme": "dark", "font": 12}}},
    },
    "session.validate": {
        "id": "r-2", "version": "1.0", "command": "session.validate",
        "parameters": {"session_id": SID, "token": TOKEN},
    },
}


def rate(fn: Callable[[], object], seconds: float) -> tuple[float, float]:
    """(median calls/s over 5 rounds, median us/call)."""
    rates = []
    for _ in range(5):
        n, start = 0, time.perf_counter()
        deadline = start + seconds / 5
        while time.perf_counter() < deadline:
            for _ in range(100):
                fn()
            n += 100
        rates.append(n / (time.perf_counter() - start))
    median = statistics.median(rates)
    return median, 1e6 / median


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=2.0, help="time per measurement")
    args = parser.parse_args()
    kit = MessageValidator()
    print(f"{'message':<18} {'validator':<34} {'req/s':>10} {'us/req':>8}")
    for name, message in MESSAGES.items():
        schema = kit.registry.request_schema(name)
        plain = jsonschema.Draft202012Validator(schema)
        rich = _RichValidator(schema)
        assert kit.check_request(message, has_float=False).ok and plain.is_valid(message)
        rows = [
            ("kit hot path (jsonschema-rs)", lambda m=message: kit.check_request(m, has_float=False)),
            ("python-jsonschema is_valid", lambda m=message, p=plain: p.is_valid(m)),
            ("python-jsonschema iter_errors (rich)", lambda m=message, r=rich: list(r.iter_errors(m))),
        ]
        results = [(label, *rate(fn, args.seconds)) for label, fn in rows]
        for label, per_s, us in results:
            print(f"{name:<18} {label:<34} {per_s:>10,.0f} {us:>8.1f}")
        print(f"{name:<18} ratio hot path / python-jsonschema: {results[0][1] / results[1][1]:.1f}x")


if __name__ == "__main__":
    main()
